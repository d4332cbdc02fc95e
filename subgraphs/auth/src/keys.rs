//! Signing keys: one ring in PostgreSQL that every auth replica reads.
//!
//! A key is `next` (published in JWKS, not signing yet), `current` (signs
//! every access token), `previous` (published until the tokens it signed
//! have expired) or `retired` (unpublished, private key erased). [`rotate`]
//! moves next → current → previous and creates a new next, in one
//! transaction; [`retire`] takes a key out of the JWKS. Both take the ring's
//! advisory lock, so administrators on several hosts cannot interleave.
//!
//! Why no valid token is refused across a rotation: verifiers learn a key
//! while it is next, and `rotate` refuses to promote a next key published
//! for less than the JWKS cache age plus the ring's reload interval. A
//! replica that has not re-read the ring yet keeps signing with the key just
//! demoted, so a demoted key stays published for the access-token lifetime
//! plus that interval plus a minute.
//!
//! Private keys are sealed ([`Seal`]) with the kid as associated data, and
//! every public key the JWKS publishes is derived from an opened private key
//! whose thumbprint must equal its kid: a row written by someone without the
//! refresh secret cannot put a key into the JWKS.
//!
//! Access tokens are signed with a parsed `aws-lc-rs` key kept in memory:
//! `jsonwebtoken` re-parses the DER key on every signature, which costs as
//! much as the signature itself.

use std::fs;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use gatehouse_common::settings::{Environment, SharedSettings};

use crate::config::AuthConfig;
use crate::seal::Seal;
use crate::settings::AuthSettings;

/// Present in a keys folder whose keys were generated for development;
/// production refuses to import such a folder.
const DEV_MARKER: &str = "DEVELOPMENT-KEYS-DO-NOT-USE-IN-PRODUCTION";
/// The `pg_advisory_xact_lock` key every change to the ring takes.
const RING_LOCK: i64 = 0x6761_7465_6b65_7973; // "gatekeys"
/// Clock difference between the auth replicas and the verifiers that a
/// demoted key's publication also covers.
const CLOCK_MARGIN: Duration = Duration::from_secs(60);

/// A signature algorithm the ring signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA keys of `AUTH_RSA_KEY_BITS`).
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// One private key with its JWKS identity.
pub struct SigningKey {
    pub kid: String,
    pair: Pair,
    jwk: serde_json::Value,
    /// `base64url({"alg":...,"typ":"at+jwt","kid":...})`, computed once.
    header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.algorithm()).finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pair(pair: Pair) -> anyhow::Result<Self> {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        // RFC 7638 thumbprint: SHA-256 over the required members in lexical order.
        let (thumbprint, jwk) = match &pair {
            Pair::Rsa(rsa) => {
                let public = rsa.public_key();
                let n = b64(public.modulus().big_endian_without_leading_zero());
                let e = b64(public.exponent().big_endian_without_leading_zero());
                let thumbprint = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                (thumbprint, serde_json::json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "n": n, "e": e }))
            }
            Pair::Ec(ec) => {
                // An uncompressed P-256 point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
                let point = ec.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    anyhow::bail!("not an uncompressed P-256 public key");
                }
                let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
                let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                let jwk =
                    serde_json::json!({ "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "x": x, "y": y });
                (thumbprint, jwk)
            }
        };
        let kid = b64(&Sha256::digest(thumbprint.as_bytes()));
        let mut jwk = jwk;
        jwk["kid"] = kid.clone().into();
        let alg = jwk["alg"].as_str().unwrap_or_default().to_owned();
        let header = serde_json::json!({ "alg": alg, "typ": "at+jwt", "kid": kid });
        Ok(Self { kid, pair, jwk, header_b64: b64(header.to_string().as_bytes()) })
    }

    /// Parses a PKCS#8 private key of `algorithm`.
    fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> anyhow::Result<Self> {
        let pair = match algorithm {
            Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| anyhow::anyhow!("not an RSA private key: {e}"))?;
                if pair.public_modulus_len() < 256 {
                    anyhow::bail!("RSA keys shorter than 2048 bits are refused");
                }
                Pair::Rsa(pair)
            }
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| anyhow::anyhow!("not a P-256 private key: {e}"))?,
            ),
        };
        Self::from_pair(pair)
    }

    /// Parses a PEM private key: RSA (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA
    /// PRIVATE KEY`) or P-256 (PKCS#8).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let der = pem_decode(pem)?;
        if let Ok(pair) = RsaKeyPair::from_der(&der) {
            return Self::from_pkcs8(
                Algorithm::Rs256,
                pair.as_der().map_err(|_| anyhow::anyhow!("bad RSA key"))?.as_ref(),
            );
        }
        Self::from_pkcs8(Algorithm::Rs256, &der).or_else(|rsa| {
            Self::from_pkcs8(Algorithm::Es256, &der)
                .map_err(|_| anyhow::anyhow!("{rsa}; nor is it a P-256 private key"))
        })
    }

    /// Generates a new key: RSA of `rsa_bits` bits, or P-256.
    pub fn generate(algorithm: Algorithm, rsa_bits: u32) -> anyhow::Result<Self> {
        let pair = match algorithm {
            Algorithm::Rs256 => {
                let size = match rsa_bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    other => anyhow::bail!("unsupported RSA key size {other}; use 2048, 3072 or 4096"),
                };
                Pair::Rsa(RsaKeyPair::generate(size).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?)
            }
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?,
            ),
        };
        Self::from_pair(pair)
    }

    fn pkcs8(&self) -> anyhow::Result<Vec<u8>> {
        let der = match &self.pair {
            Pair::Rsa(rsa) => rsa.as_der().map(|d| d.as_ref().to_vec()),
            Pair::Ec(ec) => ec.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
        };
        der.map_err(|_| anyhow::anyhow!("cannot encode the key"))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Rsa(_) => Algorithm::Rs256,
            Pair::Ec(_) => Algorithm::Es256,
        }
    }

    /// Signs a JWT whose claims are `claims`, with header `typ: at+jwt`,
    /// this key's algorithm and its `kid`.
    pub fn sign_jwt(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let signing_input = format!("{}.{payload}", self.header_b64);
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = match &self.pair {
            Pair::Rsa(rsa) => {
                let mut signature = vec![0u8; rsa.public_modulus_len()];
                rsa.sign(&RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut signature)
                    .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
                signature
            }
            // The FIXED encoding is r ‖ s, as JWS wants it.
            Pair::Ec(ec) => ec
                .sign(&rng, signing_input.as_bytes())
                .map_err(|_| anyhow::anyhow!("ECDSA signing failed"))?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    pub fn jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// The key size in bits.
    pub fn bits(&self) -> usize {
        match &self.pair {
            Pair::Rsa(rsa) => rsa.public_modulus_len() * 8,
            Pair::Ec(_) => 256,
        }
    }
}

/// The keys one replica signs with and publishes.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub next: Option<SigningKey>,
    /// Demoted keys still published, the most recently demoted first.
    pub previous: Vec<SigningKey>,
    /// The JWKS document, rendered once.
    jwks: String,
}

impl KeyRing {
    fn new(current: SigningKey, next: Option<SigningKey>, previous: Vec<SigningKey>) -> Self {
        let keys: Vec<&serde_json::Value> =
            std::iter::once(&current).chain(next.iter()).chain(previous.iter()).map(SigningKey::jwk).collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        Self { current, next, previous, jwks }
    }

    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// The published kids in JWKS order, to tell whether a re-read changed anything.
    fn kids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(self.next.iter())
            .chain(self.previous.iter())
            .map(|k| k.kid.as_str())
            .collect()
    }
}

/// What the ring's rules follow from the service's settings.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// The algorithm of keys generated from now on.
    pub algorithm: Algorithm,
    pub rsa_bits: u32,
    /// How long a next key must have been published before `rotate`
    /// promotes it: every verifier's cached JWKS has it by then.
    pub min_published: Duration,
    /// How long a demoted key stays published.
    pub keep_published: Duration,
}

impl KeyPolicy {
    pub fn new(config: &AuthConfig, settings: &AuthSettings) -> Self {
        let reload = Duration::from_secs(config.keys_reload_secs);
        Self {
            algorithm: config.signing_alg,
            rsa_bits: config.rsa_key_bits,
            min_published: settings.jwks_max_age + reload,
            keep_published: settings.tokens.access_ttl + reload + CLOCK_MARGIN,
        }
    }
}

/// The seal of private keys at rest.
pub fn key_seal(refresh_secret: &SecretString) -> Seal {
    Seal::derive(refresh_secret, "gatehouse signing keys v1")
}

/// Why a key command was refused. The messages are for the operator.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no key {0} in the ring (`gatehouse keys list` shows them)")]
    NotFound(String),
    #[error("{0} is already retired")]
    AlreadyRetired(String),
    #[error("{0} signs the tokens issued now: rotate first, then retire it")]
    SignsNow(String),
    #[error(
        "the next key {kid} was published at {published}; verifiers may not have fetched it until {ready} \
         (JWKS cache age plus AUTH_KEYS_RELOAD_SECS). Rotate then, or pass --force: a verifier that has not \
         fetched it yet refuses its tokens until it does"
    )]
    NextTooNew { kid: String, published: DateTime<Utc>, ready: DateTime<Utc> },
    #[error(
        "tokens signed with {kid} may be valid until {until}; pass --force to retire it now \
         (they are refused from then on, as a compromised key's should be)"
    )]
    StillInUse { kid: String, until: DateTime<Utc> },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for KeyError {
    fn from(error: sqlx::Error) -> Self {
        KeyError::Other(error.into())
    }
}

/// A key as `gatehouse keys list` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub published: bool,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub demoted_at: Option<DateTime<Utc>>,
    pub publish_until: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Every key the ring has held, current first, then next, previous and retired.
pub async fn list(pool: &PgPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kid, alg, state,
                state IN ('current', 'next') OR (state = 'previous' AND publish_until > now()) AS published,
                created_at, activated_at, demoted_at, publish_until, retired_at
         FROM signing_keys
         ORDER BY array_position(ARRAY['current', 'next', 'previous', 'retired'], state),
                  coalesce(demoted_at, created_at) DESC",
    )
    .fetch_all(pool)
    .await
}

#[derive(sqlx::FromRow)]
struct PublishedRow {
    kid: String,
    alg: String,
    state: String,
    sealed_private_key: Vec<u8>,
}

/// The live ring of one replica, re-read from the database.
#[derive(Debug)]
pub struct Keys {
    pool: PgPool,
    seal: Seal,
    ring: RwLock<Arc<KeyRing>>,
}

impl Keys {
    /// Reads the ring, creating it first when the database has none: from the
    /// keys of `AUTH_KEYS_DIR` or `AUTH_SIGNING_KEY*` when configured (so an
    /// upgrade keeps its kids), else generated.
    pub async fn load(
        pool: PgPool,
        config: &AuthConfig,
        settings: &AuthSettings,
        shared: &SharedSettings,
    ) -> anyhow::Result<Self> {
        let seal = key_seal(&settings.refresh_secret);
        ensure_ring(&pool, &seal, &KeyPolicy::new(config, settings), config, shared).await?;
        let ring = read_ring(&pool, &seal).await?;
        tracing::info!(kid = %ring.current.kid, alg = %ring.current.algorithm(), "signing keys loaded");
        Ok(Self { pool, seal, ring: RwLock::new(Arc::new(ring)) })
    }

    /// The keys in use right now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().expect("key ring lock").clone()
    }

    /// Re-reads the ring; answers whether it changed. An unreadable ring
    /// (database down, a row that does not open) keeps the last good one.
    pub async fn reload(&self) -> bool {
        match self.read_if_changed().await {
            Ok(Some(ring)) => {
                tracing::info!(kid = %ring.current.kid, alg = %ring.current.algorithm(), "signing keys reloaded");
                *self.ring.write().expect("key ring lock") = Arc::new(ring);
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "signing keys unreadable, keeping the last good ones");
                false
            }
        }
    }

    async fn read_if_changed(&self) -> anyhow::Result<Option<KeyRing>> {
        let rows = published_rows(&self.pool).await?;
        let kids: Vec<&str> = rows.iter().map(|row| row.kid.as_str()).collect();
        if kids == self.ring().kids() {
            return Ok(None);
        }
        Ok(Some(ring_from_rows(rows, &self.seal)?))
    }

    /// Re-reads the ring every `every` until shutdown.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        if every.is_zero() {
            return;
        }
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => { self.reload().await; }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// The published keys in JWKS order: current, next, then previous keys, the
/// most recently demoted first.
async fn published_rows(pool: &PgPool) -> Result<Vec<PublishedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kid, alg, state, sealed_private_key FROM signing_keys
         WHERE state IN ('current', 'next') OR (state = 'previous' AND publish_until > now())
         ORDER BY array_position(ARRAY['current', 'next', 'previous'], state), demoted_at DESC",
    )
    .fetch_all(pool)
    .await
}

async fn read_ring(pool: &PgPool, seal: &Seal) -> anyhow::Result<KeyRing> {
    ring_from_rows(published_rows(pool).await?, seal)
}

fn ring_from_rows(rows: Vec<PublishedRow>, seal: &Seal) -> anyhow::Result<KeyRing> {
    let (mut current, mut next, mut previous) = (None, None, Vec::new());
    for row in rows {
        let key = open_key(seal, &row)?;
        match row.state.as_str() {
            "current" => current = Some(key),
            "next" => next = Some(key),
            _ => previous.push(key),
        }
    }
    let current = current.ok_or_else(|| anyhow::anyhow!("the signing key ring has no current key"))?;
    Ok(KeyRing::new(current, next, previous))
}

fn open_key(seal: &Seal, row: &PublishedRow) -> anyhow::Result<SigningKey> {
    let algorithm =
        Algorithm::parse(&row.alg).ok_or_else(|| anyhow::anyhow!("key {}: unknown algorithm {}", row.kid, row.alg))?;
    let der = seal.open(row.kid.as_bytes(), &row.sealed_private_key).ok_or_else(|| {
        anyhow::anyhow!(
            "key {} does not open: it was sealed with another AUTH_REFRESH_SECRET, or changed in the database",
            row.kid
        )
    })?;
    let key = SigningKey::from_pkcs8(algorithm, &der).map_err(|e| anyhow::anyhow!("key {}: {e}", row.kid))?;
    if key.kid != row.kid {
        anyhow::bail!("key {}: its public key's thumbprint is {}, not its kid", row.kid, key.kid);
    }
    Ok(key)
}

/// Takes the ring's lock for the rest of the transaction.
async fn lock_ring(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(RING_LOCK).execute(conn).await.map(drop)
}

async fn insert_key(conn: &mut PgConnection, seal: &Seal, key: &SigningKey, state: &str) -> Result<(), KeyError> {
    let sealed = seal.seal(key.kid.as_bytes(), &key.pkcs8()?);
    let inserted = sqlx::query(
        "INSERT INTO signing_keys (kid, alg, state, sealed_private_key, activated_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $3 = 'current' THEN now() END)
         ON CONFLICT (kid) DO NOTHING",
    )
    .bind(&key.kid)
    .bind(key.algorithm().as_str())
    .bind(state)
    .bind(sealed)
    .execute(conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(anyhow::anyhow!("key {} has been in the ring before; a key never comes back", key.kid).into());
    }
    Ok(())
}

async fn generate(policy: &KeyPolicy, algorithm: Algorithm) -> anyhow::Result<SigningKey> {
    let bits = policy.rsa_bits;
    // RSA key generation takes up to seconds: not on a runtime thread.
    tokio::task::spawn_blocking(move || SigningKey::generate(algorithm, bits)).await?
}

const HAS_CURRENT: &str = "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE state = 'current')";

/// Creates the ring when the database has no current key: imported from the
/// configured PEM keys, else a generated current and next key.
async fn ensure_ring(
    pool: &PgPool,
    seal: &Seal,
    policy: &KeyPolicy,
    config: &AuthConfig,
    shared: &SharedSettings,
) -> anyhow::Result<bool> {
    if sqlx::query_scalar(HAS_CURRENT).fetch_one(pool).await? {
        note_import_ignored(config);
        return Ok(false);
    }
    let imported = {
        let (config, shared) = (config.clone(), shared.clone());
        tokio::task::spawn_blocking(move || imported_keys(&config, &shared)).await??
    };
    let mut tx = pool.begin().await?;
    lock_ring(&mut tx).await?;
    // Another replica starting at the same time may have made it meanwhile.
    if sqlx::query_scalar(HAS_CURRENT).fetch_one(&mut *tx).await? {
        return Ok(false);
    }
    match imported {
        Some(Imported { current, next, previous }) => {
            insert_key(&mut tx, seal, &current, "current").await?;
            if let Some(next) = &next {
                insert_key(&mut tx, seal, next, "next").await?;
            }
            if let Some(previous) = &previous {
                insert_key(&mut tx, seal, previous, "previous").await?;
                demote(&mut tx, &previous.kid, policy).await?;
            }
            tracing::info!(kid = %current.kid, "signing keys imported into the database");
        }
        None => {
            let current = generate(policy, policy.algorithm).await?;
            let next = generate(policy, policy.algorithm).await?;
            insert_key(&mut tx, seal, &current, "current").await?;
            insert_key(&mut tx, seal, &next, "next").await?;
            tracing::info!(kid = %current.kid, alg = %policy.algorithm, "signing keys generated");
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Marks `kid` previous, published for `policy.keep_published` from now.
async fn demote(conn: &mut PgConnection, kid: &str, policy: &KeyPolicy) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE signing_keys
         SET state = 'previous', demoted_at = now(), publish_until = now() + make_interval(secs => $2)
         WHERE kid = $1",
    )
    .bind(kid)
    .bind(policy.keep_published.as_secs_f64())
    .execute(conn)
    .await
    .map(drop)
}

/// Retires previous keys no longer published: their private keys are erased.
async fn retire_expired(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE signing_keys SET state = 'retired', retired_at = now(), sealed_private_key = NULL
         WHERE state = 'previous' AND publish_until <= now()",
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The ring after a change, for the command's report.
#[derive(Debug)]
pub struct Rotation {
    /// True when the ring did not exist and was created instead.
    pub created: bool,
    /// The key that signs from now on, when a next key was promoted (a ring
    /// without a next key only gains one).
    pub promoted: Option<String>,
    pub keys: Vec<KeyInfo>,
}

/// `gatehouse keys rotate`: next → current, current → previous, and a new
/// next of `algorithm` (default: the configured one). A ring with no next
/// key only gains one. Creates the ring when there is none.
pub async fn rotate(
    pool: &PgPool,
    config: &AuthConfig,
    settings: &AuthSettings,
    shared: &SharedSettings,
    algorithm: Option<Algorithm>,
    force: bool,
) -> Result<Rotation, KeyError> {
    let seal = key_seal(&settings.refresh_secret);
    let policy = KeyPolicy::new(config, settings);
    if ensure_ring(pool, &seal, &policy, config, shared).await? {
        return Ok(Rotation { created: true, promoted: None, keys: list(pool).await? });
    }
    let new_next = generate(&policy, algorithm.unwrap_or(policy.algorithm)).await?;
    let mut tx = pool.begin().await?;
    lock_ring(&mut tx).await?;
    let ring: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT kid, state, created_at, created_at + make_interval(secs => $1) FROM signing_keys
         WHERE state IN ('current', 'next') FOR UPDATE",
    )
    .bind(policy.min_published.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(&mut *tx).await?;
    let current = ring.iter().find(|k| k.1 == "current").map(|k| k.0.clone());
    let next = ring.iter().find(|k| k.1 == "next");
    let current = current.ok_or_else(|| anyhow::anyhow!("the signing key ring has no current key"))?;
    retire_expired(&mut tx).await?;
    let promoted = next.map(|k| k.0.clone());
    if let Some((next_kid, _, published, ready)) = next {
        if *ready > now && !force {
            return Err(KeyError::NextTooNew { kid: next_kid.clone(), published: *published, ready: *ready });
        }
        demote(&mut tx, &current, &policy).await?;
        sqlx::query("UPDATE signing_keys SET state = 'current', activated_at = now() WHERE kid = $1")
            .bind(next_kid)
            .execute(&mut *tx)
            .await?;
        tracing::info!(current = %next_kid, previous = %current, "signing keys rotated");
    }
    insert_key(&mut tx, &seal, &new_next, "next").await?;
    tx.commit().await?;
    Ok(Rotation { created: false, promoted, keys: list(pool).await? })
}

/// `gatehouse keys retire KID`: takes a key out of the JWKS and erases its
/// private key. A previous key is refused while tokens it signed may still
/// be valid, unless `force` (a compromised key); a next key is replaced by a
/// new one at once; the current key must be rotated away first.
pub async fn retire(
    pool: &PgPool,
    config: &AuthConfig,
    settings: &AuthSettings,
    kid: &str,
    force: bool,
) -> Result<Vec<KeyInfo>, KeyError> {
    let seal = key_seal(&settings.refresh_secret);
    let policy = KeyPolicy::new(config, settings);
    let mut tx = pool.begin().await?;
    lock_ring(&mut tx).await?;
    let row: Option<(String, String, Option<DateTime<Utc>>, bool)> = sqlx::query_as(
        "SELECT state, alg, publish_until, coalesce(publish_until > now(), false) FROM signing_keys
         WHERE kid = $1 FOR UPDATE",
    )
    .bind(kid)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((state, alg, publish_until, in_use)) = row else {
        return Err(KeyError::NotFound(kid.to_owned()));
    };
    match state.as_str() {
        "retired" => return Err(KeyError::AlreadyRetired(kid.to_owned())),
        "current" => return Err(KeyError::SignsNow(kid.to_owned())),
        "previous" if in_use && !force => {
            let until = publish_until.unwrap_or_else(Utc::now);
            return Err(KeyError::StillInUse { kid: kid.to_owned(), until });
        }
        _ => {}
    }
    sqlx::query(
        "UPDATE signing_keys SET state = 'retired', retired_at = now(), sealed_private_key = NULL WHERE kid = $1",
    )
    .bind(kid)
    .execute(&mut *tx)
    .await?;
    if state == "next" {
        let algorithm = Algorithm::parse(&alg).unwrap_or(policy.algorithm);
        let replacement = generate(&policy, algorithm).await?;
        insert_key(&mut tx, &seal, &replacement, "next").await?;
    }
    tx.commit().await?;
    tracing::info!(%kid, was = %state, "signing key retired");
    Ok(list(pool).await?)
}

/// PEM keys configured for import into an empty ring.
struct Imported {
    current: SigningKey,
    next: Option<SigningKey>,
    previous: Option<SigningKey>,
}

/// The keys of `AUTH_SIGNING_KEY*` or of the folder `AUTH_KEYS_DIR`, if set.
fn imported_keys(config: &AuthConfig, shared: &SharedSettings) -> anyhow::Result<Option<Imported>> {
    if let Some(pem) = &config.signing_key {
        let parse = |name: &str, pem: &SecretString| {
            SigningKey::from_pem(pem.expose_secret()).map_err(|e| anyhow::anyhow!("{name}: {e}"))
        };
        return Ok(Some(Imported {
            current: parse("AUTH_SIGNING_KEY", pem)?,
            next: config.signing_key_next.as_ref().map(|p| parse("AUTH_SIGNING_KEY_NEXT", p)).transpose()?,
            previous: config
                .signing_key_previous
                .as_ref()
                .map(|p| parse("AUTH_SIGNING_KEY_PREVIOUS", p))
                .transpose()?,
        }));
    }
    let Some(dir) = &config.keys_dir else { return Ok(None) };
    if shared.environment == Environment::Production && dir.join(DEV_MARKER).exists() {
        anyhow::bail!("{} holds development keys; production needs its own", dir.display());
    }
    let read = |name: &str| -> anyhow::Result<Option<SigningKey>> {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(pem) => SigningKey::from_pem(&pem).map(Some).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    };
    let current = read("current.pem")?.ok_or_else(|| anyhow::anyhow!("{} has no current.pem", dir.display()))?;
    Ok(Some(Imported { current, next: read("next.pem")?, previous: read("previous.pem")? }))
}

/// Import happens once, into an empty ring: say so when keys are still
/// configured for it.
fn note_import_ignored(config: &AuthConfig) {
    if config.signing_key.is_some() || config.keys_dir.is_some() {
        tracing::info!(
            "the signing keys live in the auth database; AUTH_KEYS_DIR and AUTH_SIGNING_KEY* are imported only into \
             an empty ring and are ignored now (`gatehouse keys list` shows the ring)"
        );
    }
}

/// Writes `key` as a PKCS#8 PEM file readable by its owner only (for
/// `AUTH_KEYS_DIR` fixtures and exports).
pub fn write_pem(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(pem_encode("PRIVATE KEY", &key.pkcs8()?).as_bytes())?;
    file.sync_all()?;
    Ok(())
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
    fn keys_survive_pkcs8_and_pem_with_their_kid_and_sign_what_their_jwk_verifies() {
        for algorithm in [Algorithm::Rs256, Algorithm::Es256] {
            let key = SigningKey::generate(algorithm, 2048).unwrap();
            let again = SigningKey::from_pkcs8(algorithm, &key.pkcs8().unwrap()).unwrap();
            assert_eq!(again.kid, key.kid);
            let pem = pem_encode("PRIVATE KEY", &key.pkcs8().unwrap());
            let parsed = SigningKey::from_pem(&pem).unwrap();
            assert_eq!((parsed.kid.as_str(), parsed.algorithm()), (key.kid.as_str(), algorithm));
            assert_eq!(key.jwk()["alg"], algorithm.as_str());
            assert_eq!(key.jwk()["kid"], key.kid.as_str());

            let token = key.sign_jwt(&serde_json::json!({ "sub": "someone" })).unwrap();
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header, serde_json::json!({ "alg": algorithm.as_str(), "typ": "at+jwt", "kid": key.kid }));
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk().clone()).unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(match algorithm {
                Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
                Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            });
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap().claims;
            assert_eq!(claims["sub"], "someone");
        }
    }

    #[test]
    fn a_key_of_the_wrong_algorithm_or_junk_is_refused() {
        let ec = SigningKey::generate(Algorithm::Es256, 0).unwrap();
        assert!(SigningKey::from_pkcs8(Algorithm::Rs256, &ec.pkcs8().unwrap()).is_err());
        let rsa = SigningKey::generate(Algorithm::Rs256, 2048).unwrap();
        assert!(SigningKey::from_pkcs8(Algorithm::Es256, &rsa.pkcs8().unwrap()).is_err());
        assert!(SigningKey::from_pem("no pem here").is_err());
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
        assert!(SigningKey::generate(Algorithm::Rs256, 1024).is_err());
    }
}
