//! A form whose answer shows something only once (a token's secret) must not act again
//! when the browser sends it again: a refresh of its answer, or Back then Forward,
//! re-posts it, and would make a second token whose first secret nobody copied. Each
//! rendering of such a form carries an id of its own; the session remembers the ids it
//! acted on. A form sent without an id (a script) acts every time, as before.

use actix_session::Session;

use super::keys;

/// The id a form came with, read from its body beside the form's own fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SentOnce {
    #[serde(default)]
    pub form_id: String,
}

impl SentOnce {
    pub fn read(body: &[u8]) -> Self {
        super::form::decode(body).unwrap_or_default()
    }
}

/// The ids remembered: a form older than this many later ones acts again if re-sent.
const REMEMBERED: usize = 20;

/// The id of one rendering of the form.
pub fn new_form_id() -> String {
    crate::domain::tokens::generate()
}

fn sent_ids(session: &Session) -> Vec<String> {
    session
        .get(keys::FORMS_SENT)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The ids this page makes are 43 characters; anything longer was not made here, and is
/// not worth a place in the session's row.
const MAX_ID: usize = 64;

fn usable(form_id: &str) -> bool {
    !form_id.is_empty() && form_id.len() <= MAX_ID
}

/// Whether this session already acted on the form this id came with.
pub fn already_sent(session: &Session, form_id: &str) -> bool {
    usable(form_id) && sent_ids(session).iter().any(|id| id == form_id)
}

/// Remembers that the form this id came with has acted: only once it has, so a form
/// that failed can be sent again as it was.
pub fn mark_sent(session: &Session, form_id: &str) {
    if !usable(form_id) {
        return;
    }
    let mut ids = sent_ids(session);
    ids.push(form_id.to_string());
    let excess = ids.len().saturating_sub(REMEMBERED);
    ids.drain(..excess);
    let _ = session.insert(keys::FORMS_SENT, ids);
}
