use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::InvalidInput;

/// A new password that meets the rules: 8 to 128 characters and not weak.
///
/// Strength is judged by zxcvbn (a well-kept estimator with the common-password
/// lists built in), with the account's email and username as extra words so a
/// password made of them counts as weak. The value never prints.
pub struct Password(SecretString);

/// The lowest acceptable zxcvbn score (0-4).
const MIN_SCORE: u8 = 3;
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

impl Password {
    /// Checks a new password. `user_inputs` are words the password must not
    /// lean on (email, username, display name).
    pub fn parse(input: &str, user_inputs: &[&str]) -> Result<Self, InvalidInput> {
        let length = input.chars().count();
        if length < MIN_LEN {
            return Err(InvalidInput::new("password", format!("must be at least {MIN_LEN} characters long")));
        }
        if length > MAX_LEN {
            return Err(InvalidInput::new("password", format!("must be at most {MAX_LEN} characters long")));
        }
        let entropy = zxcvbn::zxcvbn(input, user_inputs);
        if (entropy.score() as u8) < MIN_SCORE {
            return Err(InvalidInput::new("password", "is too common or too easy to guess"));
        }
        Ok(Self(SecretString::from(input.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_short_and_oversized_passwords_are_refused() {
        for bad in ["short", "password", "password123", "12345678", "qwertyuiop", "aaaaaaaaaaaa"] {
            assert!(Password::parse(bad, &[]).is_err(), "{bad:?} was accepted");
        }
        assert!(Password::parse(&"Zq8v!".repeat(26), &[]).is_err());
    }

    #[test]
    fn passwords_built_from_the_username_are_refused() {
        assert!(Password::parse("alice_wonder1", &["alice_wonder"]).is_err());
    }

    #[test]
    fn a_long_unusual_password_is_accepted_and_never_printed() {
        let password = Password::parse("correct horse battery staple", &[]).unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}
