//! Password hashing with argon2id, always off the async runtime.
//!
//! Hashing costs tens of milliseconds of CPU and ~19 MiB of memory, so every
//! hash runs on a blocking thread behind a semaphore: a login burst queues
//! instead of exhausting memory or stalling the runtime's worker threads.
//! Unknown users are checked against a dummy hash so that "no such account"
//! and "wrong password" take the same time.

use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's minimum for argon2id: m=19456 KiB, t=2, p=1.
    pub const OWASP: HashParams = HashParams { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    pub fn meets_owasp_minimum(&self) -> bool {
        self.memory_kib >= Self::OWASP.memory_kib && self.iterations >= Self::OWASP.iterations && self.parallelism >= 1
    }

    fn argon2(&self) -> anyhow::Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// The password is right and the stored hash uses weaker parameters than
    /// today's: here is the hash to store instead.
    YesRehashed(String),
}

impl Verified {
    pub fn is_ok(&self) -> bool {
        !matches!(self, Verified::No)
    }
}

/// Hashes and verifies passwords on blocking threads, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    params: HashParams,
    permits: Arc<Semaphore>,
    /// A hash of a random password with today's parameters, verified against
    /// when the account does not exist.
    dummy: Arc<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Hasher {
    pub async fn new(params: HashParams, concurrency: usize) -> anyhow::Result<Self> {
        params.argon2()?;
        let mut random = [0u8; 32];
        rand::fill(&mut random);
        let dummy = tokio::task::spawn_blocking(move || hash_with(params, &hex::encode(random))).await??;
        Ok(Self { params, permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy: Arc::new(dummy) })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let params = self.params;
        self.blocking(move || hash_with(params, password.expose_secret())).await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when
    /// there is no account, so both cases cost the same.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> anyhow::Result<Verified> {
        let params = self.params;
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.as_str().to_owned());
        self.blocking(move || {
            let parsed = match PasswordHash::new(&stored) {
                Ok(parsed) => parsed,
                // A corrupt stored hash must not be a way in, nor a crash.
                Err(_) => return Ok(Verified::No),
            };
            let argon2 = params.argon2()?;
            if argon2.verify_password(password.expose_secret().as_bytes(), &parsed).is_err() || !exists {
                return Ok(Verified::No);
            }
            if needs_rehash(&parsed, params) {
                return Ok(Verified::YesRehashed(hash_with(params, password.expose_secret())?));
            }
            Ok(Verified::Yes)
        })
        .await?
    }

    async fn blocking<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await?;
        Ok(tokio::task::spawn_blocking(work).await?)
    }
}

fn hash_with(params: HashParams, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    params
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// True when the stored hash is not argon2id or any cost is below today's.
fn needs_rehash(hash: &PasswordHash<'_>, params: HashParams) -> bool {
    if hash.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(hash) {
        Ok(stored) => {
            stored.m_cost() < params.memory_kib
                || stored.t_cost() < params.iterations
                || stored.p_cost() < params.parallelism
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Hasher::new(HashParams::OWASP, 2).await.unwrap();
        let hash = hasher.hash(secret("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(hasher.verify(secret("correct horse"), Some(hash.clone())).await.unwrap(), Verified::Yes);
        assert_eq!(hasher.verify(secret("wrong horse"), Some(hash)).await.unwrap(), Verified::No);
        assert_eq!(hasher.verify(secret("anything"), None).await.unwrap(), Verified::No);
        assert_eq!(hasher.verify(secret("anything"), Some("garbage".into())).await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn raising_the_parameters_rehashes_at_the_next_login() {
        let weak = Hasher::new(HashParams { memory_kib: 8192, iterations: 1, parallelism: 1 }, 1).await.unwrap();
        let old = weak.hash(secret("correct horse")).await.unwrap();
        let strong = Hasher::new(HashParams::OWASP, 1).await.unwrap();
        match strong.verify(secret("correct horse"), Some(old)).await.unwrap() {
            Verified::YesRehashed(new) => assert!(new.contains("m=19456,t=2,p=1")),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }
}
