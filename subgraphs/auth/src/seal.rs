//! Secrets kept at rest in the auth database: AES-256-GCM under a key derived
//! from the refresh secret, one key per purpose, with associated data that
//! ties each sealed value to its row (a sealed value moved to another row
//! does not open).

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};

/// An HMAC-SHA-256 key of its own for one use of a secret: the key is
/// `label ‖ secret`, so uses with different labels never share a key.
pub fn labelled_hmac(secret: &SecretString, label: &str) -> hmac::Hmac<sha2::Sha256> {
    hmac::Hmac::new_from_slice(&[label.as_bytes(), secret.expose_secret().as_bytes()].concat())
        .expect("HMAC accepts keys of any length")
}

/// One purpose's sealing key.
#[derive(Clone)]
pub struct Seal {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal").finish_non_exhaustive()
    }
}

impl Seal {
    /// The key for `purpose`, derived from `secret` (HMAC-SHA-256 over the
    /// purpose label, so purposes never share a key).
    pub fn derive(secret: &SecretString, purpose: &str) -> Self {
        let mut derive = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        derive.update(purpose.as_bytes());
        let bytes = derive.finalize().into_bytes();
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes make an AES-256 key");
        Self { key: Arc::new(LessSafeKey::new(key)) }
    }

    /// `nonce ‖ ciphertext ‖ tag`, with a random nonce.
    pub fn seal(&self, associated: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated), &mut sealed)
            .expect("AES-GCM seals any value shorter than 64 GiB");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The plain value, or `None` when `sealed` was not sealed by this key
    /// with this associated data (or was changed since).
    pub fn open(&self, associated: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(associated), &mut buffer).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_purpose_and_row() {
        let seal = Seal::derive(&secret("one secret"), "purpose a");
        let sealed = seal.seal(b"row 1", b"hello");
        assert_eq!(seal.open(b"row 1", &sealed).as_deref(), Some(b"hello".as_slice()));
        assert_eq!(seal.open(b"row 2", &sealed), None, "moved to another row");
        assert_eq!(Seal::derive(&secret("one secret"), "purpose b").open(b"row 1", &sealed), None);
        assert_eq!(Seal::derive(&secret("another secret"), "purpose a").open(b"row 1", &sealed), None);
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(seal.open(b"row 1", &flipped), None, "changed");
        assert_eq!(seal.open(b"row 1", &sealed[..5]), None, "truncated");
        assert_ne!(seal.seal(b"row 1", b"hello"), sealed, "a fresh nonce each time");
    }
}
