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

/// Characters no single-line value may hold: controls; the invisible
/// separators and byte-order mark that break rendering and logs; the
/// bidirectional marks, embeddings, overrides and isolates that make a name
/// read backwards (`admin\u{202e}exe.txt`); and the invisible zero-width
/// characters that make two names look alike.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}'
            | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            | '\u{200b}' | '\u{2060}'..='\u{2064}' | '\u{180e}'
        )
}

/// The zero-width joiner and non-joiner are part of writing in Persian,
/// Indic scripts and emoji sequences (`👩‍💻`), but beside plain ASCII or at
/// either end they only make a name look like another: they are allowed
/// between two characters that are neither ASCII nor space.
fn misplaced_joiner(value: &str) -> bool {
    let chars: Vec<char> = value.chars().collect();
    chars.iter().enumerate().any(|(i, c)| {
        matches!(c, '\u{200c}' | '\u{200d}') && {
            let fits = |n: Option<&char>| n.is_some_and(|n| !n.is_ascii() && !n.is_whitespace());
            !(i > 0 && fits(chars.get(i - 1)) && fits(chars.get(i + 1)))
        }
    })
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
        if value.chars().any(is_forbidden_char) || misplaced_joiner(value) {
            return Err(InvalidInput::new(
                "displayName",
                "must not contain control, direction-changing or zero-width characters",
            ));
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
        // Names that read backwards or pass for another.
        for bad in [
            "admin\u{202e}txt.exe",
            "\u{202d}Ada",
            "Ada\u{2066}x\u{2069}",
            "Ad\u{200b}a",
            "Ada\u{200d}",
            "A\u{2060}da",
            "Ada\u{200f}",
            "Ada\u{061c}",
            "\u{200d}Ada",
            "Ad\u{200c}a",
        ] {
            let error = DisplayName::parse(bad).unwrap_err();
            assert_eq!(error.field, "displayName", "{bad:?}");
        }
        // Joiners where scripts and emoji need them stay.
        for good in ["می\u{200c}خواهم", "👩\u{200d}💻 Ada", "क्\u{200d}ष"] {
            assert!(DisplayName::parse(good).is_ok(), "{good:?}");
        }
    }
}
