//! Short-lived signed tickets that carry a half-finished sign-in from one
//! request to the next: the `mfaToken` between a password and its second
//! factor, the `linkToken` between an outside sign-in and the password that
//! proves the account it would join.
//!
//! `<purpose>.<payload>.<HMAC-SHA-256>`, with a key per purpose derived from
//! `AUTH_REFRESH_SECRET`; the payload holds the body, a random `jti` (which
//! makes a ticket single-use where the caller marks it spent) and `exp`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a ticket says, once its signature and expiry are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket<T> {
    pub body: T,
    pub jti: String,
    pub exp: i64,
}

/// Signs and checks the tickets of one purpose.
#[derive(Clone)]
pub struct TicketCodec {
    key: Hmac<Sha256>,
    purpose: &'static str,
}

/// The longest ticket read; anything longer is not one of ours.
const MAX_TICKET_LEN: usize = 2048;

impl TicketCodec {
    /// `purpose` (short, no dots) names the ticket kind and keys its MAC.
    pub fn new(refresh_secret: &SecretString, purpose: &'static str) -> Self {
        let key = crate::seal::labelled_hmac(refresh_secret, &format!("gatehouse-ticket-{purpose}:"));
        Self { key, purpose }
    }

    pub fn issue<T: Serialize + Clone>(&self, body: &T, now: i64, ttl_secs: i64) -> (String, Ticket<T>) {
        let mut jti = [0u8; 16];
        rand::fill(&mut jti);
        let ticket = Ticket { body: body.clone(), jti: URL_SAFE_NO_PAD.encode(jti), exp: now + ttl_secs };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&ticket).expect("a ticket serialises"));
        let signed = format!("{}.{payload}", self.purpose);
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        (format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())), ticket)
    }

    /// The ticket, when `token` is one of this purpose, untouched and unexpired.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, now: i64) -> Option<Ticket<T>> {
        if token.len() > MAX_TICKET_LEN {
            return None;
        }
        let (signed, tag) = token.rsplit_once('.')?;
        let (purpose, payload) = signed.split_once('.')?;
        if purpose != self.purpose {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&tag).ok()?;
        let ticket: Ticket<T> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (ticket.exp > now).then_some(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn tickets_are_signed_expire_and_cannot_be_altered_or_repurposed() {
        let codec = TicketCodec::new(&secret("ticket-test-secret-0123456789abcdef"), "mfa");
        let account = Uuid::new_v4();
        let (token, ticket) = codec.issue(&account, 1_000, 300);
        assert_eq!(codec.verify::<Uuid>(&token, 1_299), Some(ticket));
        assert_eq!(codec.verify::<Uuid>(&token, 1_300), None, "expired");
        let other_secret = TicketCodec::new(&secret("another-secret-0123456789abcdef"), "mfa");
        assert_eq!(other_secret.verify::<Uuid>(&token, 1_000), None);
        let other_purpose = TicketCodec::new(&secret("ticket-test-secret-0123456789abcdef"), "link");
        assert_eq!(other_purpose.verify::<Uuid>(&token, 1_000), None, "an mfaToken is no linkToken");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(format!(r#"{{"body":"{}","jti":"x","exp":9999999999}}"#, Uuid::new_v4()));
        parts[1] = &forged;
        assert_eq!(codec.verify::<Uuid>(&parts.join("."), 1_000), None);
        for junk in ["", "mfa", "mfa..", "link.e30.AAAA", &"a".repeat(3000)] {
            assert_eq!(codec.verify::<Uuid>(junk, 1_000), None, "{junk:?}");
        }
    }
}
