//! Profile values, parsed once at the edge: a [`DisplayName`], [`Bio`] or
//! [`AvatarUrl`] that exists is valid, so the store never re-checks them.

use url::Url;

pub use gatehouse_common::profile::{DisplayName, InvalidInput};

/// Control characters other than line breaks and tabs are refused everywhere:
/// they break logs and terminals and never belong in a profile.
fn has_forbidden_control(value: &str, allow_newlines: bool) -> bool {
    value.chars().any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\t' | '\r')))
}

/// A biography: at most 500 characters; line breaks allowed. Empty clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    pub const MAX_CHARS: usize = 500;

    /// `None` when the trimmed input is empty (the bio is cleared).
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        let value = raw.trim();
        if value.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new("bio", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        if has_forbidden_control(value, true) {
            return Err(InvalidInput::new("bio", "must not contain control characters"));
        }
        Ok((!value.is_empty()).then(|| Self(value.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An avatar URL: absolute `https`, with a host, no credentials, at most 2048
/// characters. Empty clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub const MAX_CHARS: usize = 2048;

    /// `None` when the trimmed input is empty (the avatar is cleared).
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.len() > Self::MAX_CHARS {
            return Err(InvalidInput::new("avatarUrl", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        let url = Url::parse(value).map_err(|_| InvalidInput::new("avatarUrl", "must be an absolute https URL"))?;
        if url.scheme() != "https" {
            return Err(InvalidInput::new("avatarUrl", "must use https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidInput::new("avatarUrl", "must have a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidInput::new("avatarUrl", "must not contain credentials"));
        }
        // Store the normalised form the URL parser produced (punycode host, escaped path).
        Ok(Some(Self(url.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(DisplayName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(65)).is_err());
        assert!(DisplayName::parse("Ada\u{0}").is_err());
        assert!(DisplayName::parse("Ada\nLovelace").is_err());
    }

    #[test]
    fn bios_allow_line_breaks_and_empty_clears() {
        assert_eq!(Bio::parse("line one\nline two").unwrap().unwrap().as_str(), "line one\nline two");
        assert_eq!(Bio::parse("  ").unwrap(), None);
        assert!(Bio::parse(&"x".repeat(500)).is_ok());
        assert!(Bio::parse(&"x".repeat(501)).is_err());
        assert!(Bio::parse("bell\u{7}").is_err());
    }

    #[test]
    fn avatars_must_be_https_urls_without_credentials() {
        assert!(AvatarUrl::parse("https://cdn.example.com/a.png").unwrap().is_some());
        assert_eq!(AvatarUrl::parse("").unwrap(), None);
        for bad in [
            "http://cdn.example.com/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "//cdn.example.com/a.png",
            "https://user:pw@cdn.example.com/a.png",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(AvatarUrl::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(AvatarUrl::parse(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }
}
