//! The page every destructive action passes through: it says what will happen and asks
//! for one more press, without JavaScript. The buttons that start such an action are
//! links to a GET page built from this; the POST it submits is the action itself.

use askama::Template;

use super::layout::Layout;

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub layout: Layout,
    pub heading: String,
    /// Paragraphs saying what the action does and what cannot be undone.
    pub lines: Vec<String>,
    /// What the action applies to, one line each (the members of a bulk action).
    pub items: Vec<String>,
    pub action: String,
    /// Hidden fields the POST carries besides the CSRF token.
    pub fields: Vec<(String, String)>,
    pub button: String,
    pub danger: bool,
    pub cancel_href: String,
}

impl ConfirmPage {
    pub fn new(layout: Layout, heading: impl Into<String>, action: impl Into<String>) -> Self {
        ConfirmPage {
            layout,
            heading: heading.into(),
            lines: Vec::new(),
            items: Vec::new(),
            action: action.into(),
            fields: Vec::new(),
            button: "Confirm".into(),
            danger: true,
            cancel_href: "/orgs".into(),
        }
    }

    pub fn line(mut self, text: impl Into<String>) -> Self {
        self.lines.push(text.into());
        self
    }

    pub fn field(mut self, name: &str, value: impl Into<String>) -> Self {
        self.fields.push((name.to_string(), value.into()));
        self
    }

    pub fn button(mut self, label: impl Into<String>) -> Self {
        self.button = label.into();
        self
    }

    pub fn harmless(mut self) -> Self {
        self.danger = false;
        self
    }

    pub fn cancel(mut self, href: impl Into<String>) -> Self {
        self.cancel_href = href.into();
        self
    }
}
