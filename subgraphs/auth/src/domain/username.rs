use std::fmt;

use super::InvalidInput;

/// A username: 3 to 32 characters of `[a-z0-9_]`, stored lower-case.
///
/// It never contains `@`, so a login string with an `@` is always an email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let value = input.trim().to_ascii_lowercase();
        let length = value.chars().count();
        if !(3..=32).contains(&length) {
            return Err(InvalidInput::new("username", "must be 3 to 32 characters long"));
        }
        if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(InvalidInput::new("username", "may only contain letters, digits and underscores"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DisplayName;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        assert_eq!(Username::parse("Alice_01").unwrap().as_str(), "alice_01");
        for bad in ["ab", &"a".repeat(33), "al ice", "alice@x", "al-ice", "ålice", "x'; --", "a\nb"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn display_names_refuse_control_characters_and_length() {
        assert!(DisplayName::parse("Alice Smith").is_ok());
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
        assert!(DisplayName::parse("Alice\r\nBcc: x@y.z").is_err());
    }
}
