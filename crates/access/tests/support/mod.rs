//! Shared helpers: RSA test keys, signed tokens and a fake JWKS endpoint.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use url::Url;
use uuid::Uuid;

pub const ISSUER: &str = "https://auth.test";
pub const AUDIENCE: &str = "gatehouse";

/// An RSA signing key and its JWK, for RS256 (or PS256) tokens.
pub struct TestKey {
    pub kid: String,
    pub der: Vec<u8>,
    pub jwk: Value,
    pub alg: Algorithm,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        Self::generate_for(kid, Algorithm::RS256)
    }

    /// A key published for `alg` (RS256 or PS256) that signs with it.
    pub fn generate_for(kid: &str, alg: Algorithm) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let components: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": format!("{alg:?}"), "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&components.n), "e": URL_SAFE_NO_PAD.encode(&components.e),
        });
        let der = pkcs1_from_pkcs8(pair.as_der().expect("PKCS#8 export").as_ref());
        Self { kid: kid.into(), der, jwk, alg }
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }

    /// A token whose JOSE header is exactly `header` (JSON), signed with
    /// this key: for headers the `Header` type cannot express.
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_rsa_der(&self.der), self.alg)
            .expect("signing");
        format!("{message}.{signature}")
    }

    pub fn sign_with(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&self.der)).expect("signing")
    }
}

/// A P-256 signing key and its JWK, for ES256 tokens.
pub struct EcTestKey {
    pub kid: String,
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    pub jwk: Value,
}

impl EcTestKey {
    pub fn generate(kid: &str) -> Self {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation");
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Self { kid: kid.into(), pair, jwk }
    }

    /// A token whose JOSE header is exactly `header`, signed ES256 (r ‖ s).
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.pair.sign(&aws_lc_rs::rand::SystemRandom::new(), message.as_bytes()).expect("signing");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}), claims)
    }
}

/// An Ed25519 signing key and its JWK, for EdDSA tokens.
pub struct EdTestKey {
    pub kid: String,
    pair: aws_lc_rs::signature::Ed25519KeyPair,
    pub jwk: Value,
}

impl EdTestKey {
    pub fn generate(kid: &str) -> Self {
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().expect("Ed25519 key generation");
        let jwk = json!({
            "kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        });
        Self { kid: kid.into(), pair, jwk }
    }

    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.pair.sign(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid}), claims)
    }
}

/// jsonwebtoken's aws-lc backend reads PKCS#1 `RSAPrivateKey` DER, aws-lc-rs
/// writes PKCS#8: unwrap the OCTET STRING that holds the PKCS#1 structure.
pub fn pkcs1_from_pkcs8(der: &[u8]) -> Vec<u8> {
    fn header(bytes: &[u8]) -> (usize, usize) {
        // (header length, content length) of a DER element.
        if bytes[1] < 0x80 {
            return (2, bytes[1] as usize);
        }
        let n = (bytes[1] & 0x7f) as usize;
        let len = bytes[2..2 + n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + n, len)
    }
    let (outer, _) = header(der);
    let mut rest = &der[outer..];
    for _ in 0..2 {
        // Skip the version INTEGER and the AlgorithmIdentifier SEQUENCE.
        let (h, len) = header(rest);
        rest = &rest[h + len..];
    }
    assert_eq!(rest[0], 0x04, "PrivateKeyInfo.privateKey is an OCTET STRING");
    let (h, len) = header(rest);
    rest[h..h + len].to_vec()
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": Uuid::new_v4(), "sid": Uuid::new_v4(),
        "jti": Uuid::new_v4().to_string(), "iat": now(), "exp": now() + 900, "scope": "guest user",
    })
}

pub fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

pub fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

/// What the fake JWKS endpoint serves next.
#[derive(Clone)]
pub enum Serve {
    Keys(Vec<Value>, Option<&'static str>),
    Status(StatusCode),
    Body(&'static str),
    /// A body of this many bytes: a valid start of a key set, then padding,
    /// streamed in chunks without a `Content-Length`.
    Huge(usize),
}

pub struct Endpoint {
    pub url: Url,
    serve: Arc<Mutex<Serve>>,
    hits: Arc<AtomicUsize>,
}

impl Endpoint {
    pub async fn start(initial: Serve) -> Self {
        let serve = Arc::new(Mutex::new(initial));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (serve.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let (s, h) = (s.clone(), h.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    match s.lock().unwrap().clone() {
                        Serve::Keys(keys, cache) => {
                            let body = json!({ "keys": keys }).to_string();
                            let cc = cache.unwrap_or("no-cache");
                            (StatusCode::OK, [(header::CACHE_CONTROL, cc)], body).into_response()
                        }
                        Serve::Status(status) => status.into_response(),
                        Serve::Body(body) => (StatusCode::OK, body).into_response(),
                        Serve::Huge(size) => {
                            let chunks = (0..size.div_ceil(64 * 1024)).map(move |i| {
                                let mut chunk = vec![b' '; (size - i * 64 * 1024).min(64 * 1024)];
                                if i == 0 {
                                    chunk[..9].copy_from_slice(br#"{"keys":["#);
                                }
                                Ok::<_, std::io::Error>(chunk)
                            });
                            let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
                            (StatusCode::OK, body).into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, serve, hits }
    }

    pub fn set(&self, serve: Serve) {
        *self.serve.lock().unwrap() = serve;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
