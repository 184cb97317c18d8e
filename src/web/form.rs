//! The one decoder for form bodies and query strings: `serde_html_form`, which reads
//! repeated fields (`group_ids=a&group_ids=b`) into a `Vec` as browsers send them, and
//! writes query strings for links the same way.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::input::MAX_FORM_BYTES;
use crate::error::AppError;

const UNREADABLE: &str = "This form could not be read. Please go back and try again.";

/// The return a button carries (`next`: the list as it was); every other field is
/// ignored. Follow it only through `domain::redirect::back_to`.
#[derive(serde::Deserialize, Default)]
pub struct Return {
    pub next: Option<String>,
}

/// An `application/x-www-form-urlencoded` body.
pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Form<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|_| too_large_or_unreadable())?;
            decode(&body).map(Form)
        })
    }
}

/// The request's query string.
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            serde_html_form::from_str(req.query_string())
                .map(Query)
                .map_err(|_| AppError::BadRequest("This address could not be read.".into())),
        )
    }
}

/// Decodes a form body; for handlers that read the body themselves.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_html_form::from_bytes(body).map_err(|_| AppError::BadRequest(UNREADABLE.into()))
}

/// A query string for a link: `to_query(&[("next", "/orgs")])` → `next=%2Forgs`.
pub fn to_query<T: Serialize + ?Sized>(pairs: &T) -> String {
    serde_html_form::to_string(pairs).unwrap_or_default()
}

fn too_large_or_unreadable() -> AppError {
    // The input guard answers oversized bodies first; this is the backstop.
    AppError::PayloadTooLarge(format!(
        "This form is larger than the {} KB limit.",
        MAX_FORM_BYTES / 1024
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Invite {
        emails: String,
        #[serde(default)]
        group_ids: Vec<String>,
    }

    #[test]
    fn repeated_fields_become_a_list() {
        let form: Invite = decode(b"emails=a%40x.io&group_ids=g1&group_ids=g2").unwrap();
        assert_eq!(form.group_ids, ["g1", "g2"]);
        let none: Invite = decode(b"emails=a%40x.io").unwrap();
        assert!(none.group_ids.is_empty());
    }

    #[test]
    fn links_are_encoded() {
        assert_eq!(to_query(&[("next", "/orgs/a b")]), "next=%2Forgs%2Fa+b");
    }
}
