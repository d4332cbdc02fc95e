//! Domain types: parsed once at the edge, valid for the rest of their life.
//!
//! Nothing here knows about GraphQL, HTTP or SQL; every constructor is a
//! `parse` that either returns a value that keeps the rule or says which rule
//! it broke, in a message that is safe to show the client.

mod email;
mod password;
mod role;
mod username;

pub use email::Email;
pub use password::{Password, MAX_LEN as PASSWORD_MAX_LEN};
pub use role::Role;
pub use username::{DisplayName, Username};

/// Why an input was refused: which field, and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// True for characters that must never reach a header, a log line or a mail.
fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}
