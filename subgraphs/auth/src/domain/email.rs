use std::fmt;

use super::InvalidInput;

/// A normalised (trimmed, lower-case) email address of a shape mail servers accept.
///
/// The rules are deliberately narrower than RFC 5322: ASCII only, no quoted
/// local parts, no comments, no IP-literal domains. What passes is safe to put
/// in a `To:` header and to use as a lookup key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::new("email", "is not a valid email address");
        let value = input.trim().to_ascii_lowercase();
        if value.is_empty() || value.len() > MAX_LEN || !value.is_ascii() {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > MAX_LOCAL_LEN || domain.contains('@') {
            return Err(invalid());
        }
        let local_ok = local.chars().all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
            && labels.last().is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
        if local_ok && domain_ok {
            Ok(Self(value))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("  Alice.Smith+tag@Example.COM ").unwrap().as_str(), "alice.smith+tag@example.com");
    }

    #[test]
    fn malformed_and_hostile_addresses_are_refused() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b".repeat(260));
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@example.com",
            "a@exa mple.com",
            "a b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example..com",
            "a@example.c",
            "a@127.0.0.1",
            "a@example.com\r\nBcc: victim@example.com",
            "a@example.com\nX: y",
            "\"quoted\"@example.com",
            "a@[127.0.0.1]",
            "ünï@example.com",
            "a'; DROP TABLE accounts; --@example.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
