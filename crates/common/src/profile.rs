//! Profile values both subgraphs accept: one rule, so a display name that
//! auth takes at sign-up is one users takes in `updateProfile`, and back.

/// Why an input was refused: the input field's GraphQL name and a message
/// for the client.
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

/// Characters no single-line value may hold: controls, and the invisible
/// separators and byte-order mark that break rendering and logs.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A display name: 1 to 64 characters after trimming, none of them forbidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let value = raw.trim();
        let chars = value.chars().count();
        if chars == 0 {
            return Err(InvalidInput::new("displayName", "must not be empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(InvalidInput::new("displayName", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        if value.chars().any(is_forbidden_char) {
            return Err(InvalidInput::new("displayName", "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(DisplayName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        for bad in ["", "   ", &"é".repeat(65), "Ada\u{0}", "Ada\nLovelace", "Ada\u{2028}Lovelace", "\u{feff}Ada"] {
            let error = DisplayName::parse(bad).unwrap_err();
            assert_eq!(error.field, "displayName", "{bad:?}");
        }
    }
}
