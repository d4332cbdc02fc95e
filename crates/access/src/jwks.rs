//! Reading JWKS documents.
//!
//! One malformed key must never cost the good ones, so keys are read one by
//! one and the unusable ones are skipped (and logged). A document with no
//! usable key at all is an error: the caller keeps the set it had.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{
    ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;

/// The JWS algorithms a token may be signed with: asymmetric ones only, so
/// `none` and HMAC with a public key as the secret cannot even be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The algorithm a JWS `alg` names, when it is one of these (exactly, as
    /// RFC 7515 names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One verification key, parsed once: aws-lc keeps the parsed RSA key (and
/// its Montgomery constants) between calls, where rebuilding it from `n` and
/// `e` for every token cost about seven times the verification itself.
pub struct VerificationKey {
    /// The one JWS `alg` this key verifies: a token's header must name it.
    pub alg: Algorithm,
    key: ParsedPublicKey,
}

impl VerificationKey {
    /// Checks `signature` over `message`.
    pub fn verify_sig(&self, message: &[u8], signature: &[u8]) -> Result<(), aws_lc_rs::error::Unspecified> {
        self.key.verify_sig(message, signature)
    }
}

/// Verification keys by `kid`: RSA keys for RS256 or PS256, P-256 keys for
/// ES256 and Ed25519 keys for EdDSA.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.kids()).finish()
    }
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&Arc<VerificationKey>> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// Why a JWKS document was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("the JWKS document is not JSON with a `keys` array")]
    NotAJwks,
    #[error("the JWKS document holds no usable RS256, PS256, ES256 or EdDSA signing key")]
    NoUsableKey,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS document, keeping every usable signing key and skipping the rest.
pub fn parse(body: &[u8]) -> Result<KeySet, JwksError> {
    let raw: RawSet = serde_json::from_slice(body).map_err(|_| JwksError::NotAJwks)?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        match usable_key(value) {
            Ok((kid, key)) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(reason) => tracing::warn!(reason, "skipping a JWKS key"),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(KeySet { keys })
}

fn usable_key(value: serde_json::Value) -> Result<(String, VerificationKey), &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a JWK")?;
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty()).ok_or("no kid")?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("not a signing key");
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('='));
    let key = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            // An RSA key that names no algorithm is taken for RS256, the
            // common case; a PS256 key must say so.
            let (alg, params) = match jwk.common.key_algorithm {
                None | Some(KeyAlgorithm::RS256) => (Algorithm::RS256, &RSA_PKCS1_2048_8192_SHA256),
                Some(KeyAlgorithm::PS256) => (Algorithm::PS256, &RSA_PSS_2048_8192_SHA256),
                Some(_) => return Err("an RSA key not for RS256 or PS256"),
            };
            let n = decode(&rsa.n).map_err(|_| "unreadable RSA modulus")?;
            let e = decode(&rsa.e).map_err(|_| "unreadable RSA exponent")?;
            let der = PublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                .as_der()
                .map_err(|_| "invalid RSA public key")?;
            let key = ParsedPublicKey::new(params, der.as_ref()).map_err(|_| "RSA key too small or invalid")?;
            VerificationKey { alg, key }
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            if matches!(jwk.common.key_algorithm, Some(alg) if alg != KeyAlgorithm::ES256) {
                return Err("an EC key not for ES256");
            }
            if ec.curve != EllipticCurve::P256 {
                return Err("an EC key not on P-256");
            }
            let (x, y) = (decode(&ec.x).map_err(|_| "unreadable EC x")?, decode(&ec.y).map_err(|_| "unreadable EC y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates are 32 bytes");
            }
            // The uncompressed point; aws-lc checks that it lies on the curve.
            let point = [&[4u8][..], &x, &y].concat();
            let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).map_err(|_| "not a point on P-256")?;
            VerificationKey { alg: Algorithm::ES256, key }
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if matches!(jwk.common.key_algorithm, Some(alg) if alg != KeyAlgorithm::EdDSA) {
                return Err("an OKP key not for EdDSA");
            }
            if okp.curve != EllipticCurve::Ed25519 {
                return Err("an OKP key not on Ed25519");
            }
            let x = decode(&okp.x).map_err(|_| "unreadable Ed25519 x")?;
            if x.len() != 32 {
                return Err("an Ed25519 public key is 32 bytes");
            }
            let key = ParsedPublicKey::new(&ED25519, &x).map_err(|_| "not an Ed25519 public key")?;
            VerificationKey { alg: Algorithm::EdDSA, key }
        }
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key is never trusted"),
    };
    Ok((kid, key))
}

/// `max-age` from a `Cache-Control` header value, when present and sane.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        value.trim().trim_matches('"').parse::<u64>().ok().map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real 2048-bit public modulus (base64url), so DecodingKey accepts it.
    pub(crate) const N: &str = "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw";

    // The P-256 public key of RFC 7517's examples.
    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    // The Ed25519 public key of RFC 8037's examples.
    const ED: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn key(kid: &str) -> serde_json::Value {
        serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": N, "e": "AQAB"})
    }

    #[test]
    fn good_keys_survive_their_bad_neighbours() {
        let doc = serde_json::json!({"keys": [
            key("good-1"),
            {"kty": "RSA", "kid": "broken", "n": "!!!", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "kid": "ec-rs256", "alg": "RS256", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "kid": "ec-es384", "alg": "ES384", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": X, "y": Y},
            {"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": X, "y": X},
            {"kty": "EC", "kid": "short", "crv": "P-256", "x": "AAAA", "y": Y},
            {"kty": "RSA", "kid": "rsa-es256", "alg": "ES256", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "rs384", "alg": "RS384", "n": N, "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": ED},
            {"kty": "OKP", "kid": "ed-es256", "alg": "ES256", "crv": "Ed25519", "x": ED},
            {"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": ED},
            {"kty": "OKP", "kid": "ed-short", "crv": "Ed25519", "x": X.get(..20).unwrap()},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": N, "e": "AQAB"},
            "not even an object",
            key("good-2"),
        ]});
        let set = parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.kids(), vec!["ec", "ed", "good-1", "good-2", "ps"]);
        assert_eq!(set.get("ec").unwrap().alg, Algorithm::ES256);
        assert_eq!(set.get("ed").unwrap().alg, Algorithm::EdDSA);
        assert_eq!(set.get("good-1").unwrap().alg, Algorithm::RS256);
        assert_eq!(set.get("ps").unwrap().alg, Algorithm::PS256);
    }

    #[test]
    fn junk_documents_are_refused() {
        for body in [&b""[..], b"<html>", b"{}", b"{\"keys\": 3}", b"null", b"\xff\xfe"] {
            assert_eq!(parse(body).unwrap_err(), JwksError::NotAJwks, "{body:?}");
        }
        assert_eq!(parse(br#"{"keys": []}"#).unwrap_err(), JwksError::NoUsableKey);
        assert_eq!(
            parse(br#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#).unwrap_err(),
            JwksError::NoUsableKey
        );
    }

    #[test]
    fn algorithm_names_are_exact() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for name in ["none", "HS256", "rs256", "RS384", "ES512", "EdDSA ", ""] {
            assert_eq!(Algorithm::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("MAX-AGE=\"60\", must-revalidate"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
