//! RSA signing keys: the current one signs, the next and previous ones are
//! published, and `rotate` moves them along.
//!
//! Keys live in a folder as PKCS#8 PEM files `current.pem`, `next.pem` and
//! `previous.pem` (or come from environment variables in production). JWKS
//! publishes all three, so a verifier knows a key before it signs its first
//! token and keeps it until its last token has expired. Rotation moves
//! next → current → previous and creates a new next; running services pick
//! the change up by re-reading the folder.
//!
//! Access tokens are signed here with a parsed `aws-lc-rs` key kept in memory:
//! `jsonwebtoken` re-parses the DER key on every signature, which costs as much
//! as the signature itself.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use gatehouse_common::settings::{Environment, SharedSettings};

use crate::config::AuthConfig;

/// Present in a keys folder whose keys were generated for development;
/// production refuses such a folder.
const DEV_MARKER: &str = "DEVELOPMENT-KEYS-DO-NOT-USE-IN-PRODUCTION";
const CURRENT: &str = "current.pem";
const NEXT: &str = "next.pem";
const PREVIOUS: &str = "previous.pem";

/// One RSA key with its JWKS identity.
pub struct SigningKey {
    pub kid: String,
    pair: RsaKeyPair,
    jwk: Jwk,
    /// `base64url({"alg":"RS256","typ":"at+jwt","kid":...})`, computed once.
    header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A public key as JWKS publishes it.
#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub n: String,
    pub e: String,
}

impl SigningKey {
    fn from_pair(pair: RsaKeyPair) -> Self {
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638 thumbprint: SHA-256 over the required members in lexical order.
        let thumbprint = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        let header = serde_json::json!({ "alg": "RS256", "typ": "at+jwt", "kid": kid });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        let jwk = Jwk { kty: "RSA", use_: "sig", alg: "RS256", kid: kid.clone(), n, e };
        Self { kid, pair, jwk, header_b64 }
    }

    /// Parses a PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let der = pem_decode(pem)?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map_err(|e| anyhow::anyhow!("not an RSA private key: {e}"))?;
        if pair.public_modulus_len() < 256 {
            anyhow::bail!("RSA keys shorter than 2048 bits are refused");
        }
        Ok(Self::from_pair(pair))
    }

    /// Generates a new key of `bits` bits.
    pub fn generate(bits: u32) -> anyhow::Result<Self> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            other => anyhow::bail!("unsupported RSA key size {other}; use 2048, 3072 or 4096"),
        };
        let pair = RsaKeyPair::generate(size).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        Ok(Self::from_pair(pair))
    }

    fn to_pem(&self) -> anyhow::Result<String> {
        let der = self.pair.as_der().map_err(|_| anyhow::anyhow!("cannot encode the key"))?;
        Ok(pem_encode("PRIVATE KEY", der.as_ref()))
    }

    /// Signs a JWT whose claims are `claims`, with header `alg: RS256`,
    /// `typ: at+jwt` and this key's `kid`.
    pub fn sign_jwt(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let signing_input = format!("{}.{payload}", self.header_b64);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The key size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }
}

/// The three keys in play.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub next: Option<SigningKey>,
    pub previous: Option<SigningKey>,
    /// The JWKS document, rendered once.
    jwks: String,
}

impl KeyRing {
    fn new(current: SigningKey, next: Option<SigningKey>, previous: Option<SigningKey>) -> Self {
        let keys: Vec<&Jwk> =
            std::iter::once(&current).chain(next.iter()).chain(previous.iter()).map(SigningKey::jwk).collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        Self { current, next, previous, jwks }
    }

    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }
}

/// Where keys come from.
#[derive(Debug, Clone)]
enum KeySource {
    Folder(PathBuf),
    Environment,
}

/// The live key ring, swappable when the folder changes.
#[derive(Debug)]
pub struct Keys {
    source: KeySource,
    ring: RwLock<Arc<KeyRing>>,
    stamp: RwLock<Option<Vec<Option<SystemTime>>>>,
}

impl Keys {
    /// Loads the keys the configuration points at. In development a missing
    /// folder or key is generated (and kept, so restarts reuse it); production
    /// never generates and refuses development keys.
    pub fn load(config: &AuthConfig, shared: &SharedSettings) -> anyhow::Result<Self> {
        let production = shared.environment == Environment::Production;
        if let Some(pem) = &config.signing_key {
            let parse = |name: &str, pem: &SecretString| {
                SigningKey::from_pem(pem.expose_secret()).map_err(|e| anyhow::anyhow!("{name}: {e}"))
            };
            let current = parse("AUTH_SIGNING_KEY", pem)?;
            let next = config.signing_key_next.as_ref().map(|p| parse("AUTH_SIGNING_KEY_NEXT", p)).transpose()?;
            let previous =
                config.signing_key_previous.as_ref().map(|p| parse("AUTH_SIGNING_KEY_PREVIOUS", p)).transpose()?;
            let ring = KeyRing::new(current, next, previous);
            return Ok(Self {
                source: KeySource::Environment,
                ring: RwLock::new(Arc::new(ring)),
                stamp: RwLock::new(None),
            });
        }
        let dir = keys_dir(config, shared)?;
        if production {
            if dir.join(DEV_MARKER).exists() {
                anyhow::bail!(
                    "{} holds development keys; production needs its own (AUTH_KEYS_DIR or AUTH_SIGNING_KEY)",
                    dir.display()
                );
            }
        } else {
            ensure_dev_keys(&dir, config.rsa_key_bits)?;
        }
        let ring = read_folder(&dir)?;
        let stamp = folder_stamp(&dir);
        Ok(Self { source: KeySource::Folder(dir), ring: RwLock::new(Arc::new(ring)), stamp: RwLock::new(Some(stamp)) })
    }

    /// The keys in use right now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().expect("key ring lock").clone()
    }

    /// Re-reads the folder if it changed. A folder caught mid-rotation (or
    /// broken) keeps the last good ring; the next call tries again.
    pub fn reload_if_changed(&self) -> bool {
        let KeySource::Folder(dir) = &self.source else { return false };
        let stamp = folder_stamp(dir);
        if self.stamp.read().expect("stamp lock").as_ref() == Some(&stamp) {
            return false;
        }
        match read_folder(dir) {
            Ok(ring) => {
                tracing::info!(kid = %ring.current.kid, "signing keys reloaded");
                *self.ring.write().expect("key ring lock") = Arc::new(ring);
                *self.stamp.write().expect("stamp lock") = Some(stamp);
                true
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "keys folder unreadable, keeping the previous keys");
                false
            }
        }
    }

    /// Re-reads the folder every `every` until shutdown.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        if every.is_zero() || matches!(self.source, KeySource::Environment) {
            return;
        }
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => { self.reload_if_changed(); }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// `gatehouse keys rotate`: next → current → previous, and a new next.
///
/// Verifiers already trust the next key (JWKS has published it since the last
/// rotation), so tokens it signs verify at once; the old current key stays
/// published as previous until the rotation after this one. Rotate no more
/// often than the access-token lifetime plus the JWKS cache age.
pub async fn rotate(config: &AuthConfig, shared: &SharedSettings) -> anyhow::Result<Rotated> {
    if config.signing_key.is_some() {
        anyhow::bail!("keys come from AUTH_SIGNING_KEY*; rotate by moving the variables along (next → current → previous) and setting a new next");
    }
    let dir = keys_dir(config, shared)?;
    let bits = config.rsa_key_bits;
    let production = shared.environment == Environment::Production;
    tokio::task::spawn_blocking(move || {
        rotate_folder(&dir, bits, production)?;
        let ring = read_folder(&dir)?;
        Ok(Rotated {
            current: ring.current.kid.clone(),
            next: ring.next.as_ref().map(|k| k.kid.clone()),
            previous: ring.previous.as_ref().map(|k| k.kid.clone()),
            dir,
        })
    })
    .await?
}

/// The key folder after a rotation: the key ids now in each place.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub dir: PathBuf,
    pub current: String,
    pub next: Option<String>,
    pub previous: Option<String>,
}

fn rotate_folder(dir: &Path, bits: u32, production: bool) -> anyhow::Result<()> {
    if production && dir.join(DEV_MARKER).exists() {
        anyhow::bail!("{} holds development keys; production needs its own", dir.display());
    }
    if !dir.join(CURRENT).exists() {
        if production {
            anyhow::bail!("{} has no {CURRENT}; install a key first", dir.display());
        }
        ensure_dev_keys(dir, bits)?;
        return Ok(());
    }
    let new_next = SigningKey::generate(bits)?;
    if dir.join(NEXT).exists() {
        // Renames are atomic; a reader between them sees no current key for a
        // moment and keeps its previous ring.
        fs::rename(dir.join(CURRENT), dir.join(PREVIOUS))?;
        fs::rename(dir.join(NEXT), dir.join(CURRENT))?;
        tracing::info!(dir = %dir.display(), "next key promoted to current");
    }
    write_key(dir, NEXT, &new_next)?;
    tracing::info!(kid = %new_next.kid, "new next key created");
    Ok(())
}

fn keys_dir(config: &AuthConfig, shared: &SharedSettings) -> anyhow::Result<PathBuf> {
    match (&config.keys_dir, shared.environment) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Environment::Development) => Ok(shared.dev_dir.join("keys")),
        (None, Environment::Production) => {
            anyhow::bail!("production needs signing keys: set AUTH_KEYS_DIR or AUTH_SIGNING_KEY")
        }
    }
}

/// Creates the development folder, marker, current and next keys when missing.
fn ensure_dev_keys(dir: &Path, bits: u32) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    if !dir.join(DEV_MARKER).exists() {
        fs::write(dir.join(DEV_MARKER), "Generated by gatehouse in development mode.\n")?;
    }
    for name in [CURRENT, NEXT] {
        if !dir.join(name).exists() {
            let key = SigningKey::generate(bits)?;
            // Replicas starting together on one keys folder (a shared
            // volume) each generate a key: the first one written is kept
            // and every replica reads that one.
            if write_key_if_absent(dir, name, &key)? {
                tracing::info!(kid = %key.kid, file = name, "generated a development signing key");
            }
        }
    }
    Ok(())
}

/// Writes `key` as `name` unless a file of that name exists by then;
/// answers whether it was written.
fn write_key_if_absent(dir: &Path, name: &str, key: &SigningKey) -> anyhow::Result<bool> {
    let tmp = write_temporary(dir, name, key)?;
    // A hard link fails when the name is taken, where a rename would replace it.
    let linked = fs::hard_link(&tmp, dir.join(name));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn read_folder(dir: &Path) -> anyhow::Result<KeyRing> {
    let read = |name: &str| -> anyhow::Result<Option<SigningKey>> {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(pem) => SigningKey::from_pem(&pem).map(Some).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    };
    let current = read(CURRENT)?.ok_or_else(|| anyhow::anyhow!("{} has no {CURRENT}", dir.display()))?;
    Ok(KeyRing::new(current, read(NEXT)?, read(PREVIOUS)?))
}

fn folder_stamp(dir: &Path) -> Vec<Option<SystemTime>> {
    [CURRENT, NEXT, PREVIOUS].iter().map(|name| fs::metadata(dir.join(name)).and_then(|m| m.modified()).ok()).collect()
}

/// Writes a key through a temporary file and a rename, readable by the owner only.
fn write_key(dir: &Path, name: &str, key: &SigningKey) -> anyhow::Result<()> {
    let tmp = write_temporary(dir, name, key)?;
    fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

/// Writes `key` (mode 0600) to a temporary file in `dir`, synced, and answers its path.
fn write_temporary(dir: &Path, name: &str, key: &SigningKey) -> anyhow::Result<PathBuf> {
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), uuid::Uuid::new_v4().simple()));
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(key.to_pem()?.as_bytes())?;
        file.sync_all()?;
    }
    Ok(tmp)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END "))
        .collect();
    if body.is_empty() {
        anyhow::bail!("no PEM block found");
    }
    Ok(STANDARD.decode(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_a_pem_round_trip_with_the_same_kid() {
        let key = SigningKey::generate(2048).unwrap();
        let again = SigningKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(key.kid, again.kid);
        assert_eq!(again.bits(), 2048);
    }

    #[test]
    fn replicas_generating_development_keys_together_all_load_the_same_ones() {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let loaded: Vec<(String, String)> = (0..4)
            .map(|_| {
                let (dir, barrier) = (dir.path().to_owned(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    ensure_dev_keys(&dir, 2048).unwrap();
                    let ring = read_folder(&dir).unwrap();
                    (ring.current.kid.clone(), ring.next.as_ref().unwrap().kid.clone())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        assert!(loaded.windows(2).all(|pair| pair[0] == pair[1]), "{loaded:?}");
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn rotation_moves_next_to_current_and_current_to_previous() {
        let dir = tempfile::tempdir().unwrap();
        ensure_dev_keys(dir.path(), 2048).unwrap();
        let before = read_folder(dir.path()).unwrap();
        rotate_folder(dir.path(), 2048, false).unwrap();
        let after = read_folder(dir.path()).unwrap();
        assert_eq!(after.current.kid, before.next.as_ref().unwrap().kid);
        assert_eq!(after.previous.as_ref().unwrap().kid, before.current.kid);
        assert_ne!(after.next.as_ref().unwrap().kid, before.current.kid);
        let jwks: serde_json::Value = serde_json::from_str(after.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn production_never_generates_keys_and_refuses_development_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut shared = SharedSettings::for_tests("p:", "S", "s");
        shared.environment = Environment::Production;
        let config = AuthConfig { keys_dir: Some(dir.path().to_owned()), ..AuthConfig::default() };
        assert!(Keys::load(&config, &shared).is_err(), "an empty folder is not generated into");
        assert!(!dir.path().join(CURRENT).exists());
        ensure_dev_keys(dir.path(), 2048).unwrap();
        assert!(Keys::load(&config, &shared).is_err(), "development keys are refused");
        let unset = AuthConfig { keys_dir: None, ..AuthConfig::default() };
        assert!(Keys::load(&unset, &shared).is_err(), "production must name its keys");
    }

    #[test]
    fn production_refuses_a_development_folder() {
        let dir = tempfile::tempdir().unwrap();
        ensure_dev_keys(dir.path(), 2048).unwrap();
        assert!(rotate_folder(dir.path(), 2048, true).is_err());
    }
}
