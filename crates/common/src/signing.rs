//! Signatures on what the services tell each other over NATS.
//!
//! Anyone who can publish on the broker could otherwise write account events
//! (a `role_changed` to SYS_ADMIN at the next version, after which the
//! genuine event is dropped as a duplicate) or revoke any live session at the
//! gateways. Every account event and revocation notice therefore carries a
//! [`SIGNATURE_HEADER`]: `v1=<hex HMAC-SHA256>` over the subject and the
//! payload, keyed by a key derived from the identity secret (which only the
//! gateway and the subgraphs hold). Receivers refuse a message whose
//! signature is missing or wrong: the users projection dead-letters it, the
//! gateway ignores the notice.
//!
//! The subject is part of the signed text, so a message cannot be replayed
//! on another subject (an event as a revocation notice, say). Replaying a
//! genuine message on its own subject changes no state: events apply once,
//! in version order, and a revocation is final anyway. What a replay can do
//! is tell watching clients again; the users subgraph's live feed drops
//! anything older than a minute, so an old message is not news.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The NATS header that carries a message's signature.
pub const SIGNATURE_HEADER: &str = "Gatehouse-Signature";

const VERSION_PREFIX: &str = "v1=";

/// Why a message's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the message is not signed")]
    Missing,
    #[error("the message's signature is malformed")]
    Malformed,
    #[error("the message's signature does not match")]
    Mismatch,
}

/// Signs and checks NATS messages; cheap to clone.
#[derive(Clone)]
pub struct MessageSigner {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for MessageSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageSigner(..)")
    }
}

impl MessageSigner {
    /// The signer every service derives from the shared identity secret.
    /// The derivation keeps this key apart from the identity header's.
    pub fn from_identity_secret(secret: &SecretString) -> Self {
        let mut derive =
            Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC accepts keys of any length");
        derive.update(b"gatehouse nats message signatures v1");
        let key = derive.finalize().into_bytes();
        Self { key: Hmac::new_from_slice(&key).expect("HMAC accepts keys of any length") }
    }

    fn mac(&self, subject: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        // The subject's length first, so no subject/payload split is ambiguous.
        mac.update(&(subject.len() as u64).to_be_bytes());
        mac.update(subject.as_bytes());
        mac.update(payload);
        mac
    }

    /// The header value for a message on `subject` with `payload`.
    pub fn sign(&self, subject: &str, payload: &[u8]) -> String {
        format!("{VERSION_PREFIX}{}", hex::encode(self.mac(subject, payload).finalize().into_bytes()))
    }

    /// Checks the header value (absent: `None`) of a received message, in
    /// constant time.
    pub fn verify(&self, subject: &str, payload: &[u8], signature: Option<&str>) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        let hex = signature.trim().strip_prefix(VERSION_PREFIX).ok_or(SignatureError::Malformed)?;
        let bytes = hex::decode(hex).map_err(|_| SignatureError::Malformed)?;
        if bytes.len() != 32 {
            return Err(SignatureError::Malformed);
        }
        self.mac(subject, payload).verify_slice(&bytes).map_err(|_| SignatureError::Mismatch)
    }

    /// NATS headers holding the signature of a message on `subject` with `payload`.
    pub fn headers(&self, subject: &str, payload: &[u8]) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, self.sign(subject, payload).as_str());
        headers
    }

    /// Checks a received NATS message.
    pub fn verify_message(&self, message: &async_nats::Message) -> Result<(), SignatureError> {
        let signature = message.headers.as_ref().and_then(|h| h.get(SIGNATURE_HEADER)).map(|v| v.as_str());
        self.verify(message.subject.as_str(), &message.payload, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> MessageSigner {
        MessageSigner::from_identity_secret(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_signature_holds_for_its_subject_and_payload_only() {
        let signer = signer("the-identity-secret-of-this-deployment");
        let signature = signer.sign("auth.user.role_changed", br#"{"version":2}"#);
        assert!(signature.starts_with("v1=") && signature.len() == 3 + 64);
        assert_eq!(signer.verify("auth.user.role_changed", br#"{"version":2}"#, Some(&signature)), Ok(()));
        assert_eq!(
            signer.verify("auth.user.role_changed", br#"{"version":3}"#, Some(&signature)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            signer.verify("auth.session.revoked", br#"{"version":2}"#, Some(&signature)),
            Err(SignatureError::Mismatch)
        );
        // The subject/payload boundary is part of what is signed.
        let split = signer.sign("auth.user.a", b"bc");
        assert_eq!(signer.verify("auth.user.ab", b"c", Some(&split)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn missing_malformed_and_foreign_signatures_are_refused() {
        let ours = signer("the-identity-secret-of-this-deployment");
        let theirs = signer("somebody-elses-secret-of-some-length");
        let payload = b"payload";
        assert_eq!(ours.verify("s", payload, None), Err(SignatureError::Missing));
        for junk in ["", "v1=", "v1=zz", "v2=00", "00ff"] {
            assert_eq!(ours.verify("s", payload, Some(junk)), Err(SignatureError::Malformed), "{junk:?}");
        }
        assert_eq!(ours.verify("s", payload, Some(&theirs.sign("s", payload))), Err(SignatureError::Mismatch));
        assert_eq!(ours.verify("s", payload, Some(&format!("v1={}", "0".repeat(64)))), Err(SignatureError::Mismatch));
    }
}
