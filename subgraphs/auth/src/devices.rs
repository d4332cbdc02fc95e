//! Device cookies: how a login recognises a browser or client that signed
//! in to an account before.
//!
//! Wrong passwords are limited per account (`AUTH_LOGIN_LIMIT_PER_ACCOUNT`),
//! so a stranger who knows an account's email could otherwise keep it locked
//! for good. Once an account is over its limit, a login is still weighed
//! when it comes from a device that signed in to that account before (its
//! own budget of attempts), or from a client address with attempts left in
//! its own small budget for that account (`AUTH_LOGIN_LIMIT_LOCKED_PER_IP`):
//! the owner gets in, the stranger's guesses stay bounded. This is the
//! device-cookie defence OWASP describes, in the spirit of Keycloak's and
//! Kratos' lock-out policies.
//!
//! A device token is `v1.<device id>.<account id>.<issued at>.<mac>`, the MAC
//! an HMAC-SHA256 under a key derived from the refresh secret; it is good for
//! [`DEVICE_TOKEN_LIFETIME`] and names the one account it signed in to.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

/// How long a device is remembered after its last successful login.
pub const DEVICE_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A device that signed in to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub id: Uuid,
    pub account: Uuid,
}

#[derive(Clone)]
pub struct DeviceCodec {
    key: Hmac<Sha256>,
}

impl DeviceCodec {
    pub fn new(refresh_secret: &SecretString) -> Self {
        let mut derive = Hmac::<Sha256>::new_from_slice(refresh_secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        derive.update(b"gatehouse device cookies v1");
        let key = derive.finalize().into_bytes();
        Self { key: Hmac::new_from_slice(&key).expect("HMAC accepts keys of any length") }
    }

    fn mac(&self, text: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The token for `device`, issued at `now` (Unix seconds).
    pub fn issue(&self, device: Device, now: i64) -> String {
        let text = format!("v1.{}.{}.{now}", device.id.simple(), device.account.simple());
        format!("{text}.{}", self.mac(&text))
    }

    /// The device a token names, if its MAC holds and it is not too old.
    pub fn verify(&self, token: &str, now: i64) -> Option<Device> {
        let (text, mac) = token.rsplit_once('.')?;
        let expected = self.mac(text);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes())) {
            return None;
        }
        let mut parts = text.split('.');
        let (Some("v1"), Some(id), Some(account), Some(issued), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let issued: i64 = issued.parse().ok()?;
        if issued > now + 60 || now - issued > DEVICE_TOKEN_LIFETIME.as_secs() as i64 {
            return None;
        }
        Some(Device { id: Uuid::parse_str(id).ok()?, account: Uuid::parse_str(account).ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(secret: &str) -> DeviceCodec {
        DeviceCodec::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_device_token_names_its_device_and_account_until_it_is_too_old() {
        let codec = codec("refresh-secret-for-device-tests-0123");
        let device = Device { id: Uuid::new_v4(), account: Uuid::new_v4() };
        let token = codec.issue(device, 1_000_000);
        assert_eq!(codec.verify(&token, 1_000_000), Some(device));
        assert_eq!(codec.verify(&token, 1_000_000 + DEVICE_TOKEN_LIFETIME.as_secs() as i64), Some(device));
        assert_eq!(codec.verify(&token, 1_000_001 + DEVICE_TOKEN_LIFETIME.as_secs() as i64), None);
        assert_eq!(codec.verify(&token, 1_000_000 - 61), None, "issued in the future");
    }

    #[test]
    fn forged_or_altered_tokens_name_nothing() {
        let ours = codec("refresh-secret-for-device-tests-0123");
        let theirs = codec("another-secret-altogether-456789012");
        let device = Device { id: Uuid::new_v4(), account: Uuid::new_v4() };
        let token = ours.issue(device, 1_000_000);
        assert_eq!(ours.verify(&theirs.issue(device, 1_000_000), 1_000_000), None);
        let other_account = token.replace(&device.account.simple().to_string(), &Uuid::new_v4().simple().to_string());
        assert_eq!(ours.verify(&other_account, 1_000_000), None);
        for junk in ["", "v1", "v1.a.b.c.d", &format!("{token}x"), &token.replacen("v1", "v2", 1)] {
            assert_eq!(ours.verify(junk, 1_000_000), None, "{junk:?}");
        }
    }
}
