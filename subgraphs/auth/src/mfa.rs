//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of
//! skew either way) with ten single-use recovery codes, and the short-lived
//! token that carries a login whose password was proven to its second step.
//!
//! Every code is single-use: a TOTP code only for a time step later than the
//! last one accepted (an UPDATE that moves `last_used_step` forward, so two
//! concurrent attempts with one code cannot both win), a recovery code by
//! marking its row used. TOTP secrets are sealed at rest; recovery codes are
//! kept only as keyed hashes. The `mfaToken` is a [`crate::ticket`].

use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use sqlx::{PgConnection, PgExecutor};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use crate::seal::Seal;

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Steps accepted either side of the current one (clock drift, typing time).
const SKEW: u64 = 1;
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// How many recovery codes an enrollment hands out.
pub const RECOVERY_CODES: usize = 10;
/// Letters and digits that cannot be mistaken for one another.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const RECOVERY_LEN: usize = 10;

/// The authentication methods (RFC 8176 `amr` values) a session proved.
pub const AMR_PASSWORD: &str = "pwd";
pub const AMR_ONE_TIME_CODE: &str = "otp";
pub const AMR_MULTI_FACTOR: &str = "mfa";
/// The scope an access token carries when its session proved a second
/// factor, so `@requiresScopes(scopes: [["mfa"]])` guards work at the gateway.
pub const MFA_SCOPE: &str = "mfa";

/// Whether `amr` records a second factor.
pub fn is_multi_factor(amr: &[String]) -> bool {
    amr.iter().any(|method| method == AMR_MULTI_FACTOR)
}

/// The second-factor methods an account can complete a login with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum MfaMethod {
    /// A code from an authenticator app.
    Totp,
    /// One of the recovery codes handed out at enrollment.
    RecoveryCode,
}

impl MfaMethod {
    /// The GraphQL enum value.
    pub fn name(self) -> &'static str {
        match self {
            MfaMethod::Totp => "TOTP",
            MfaMethod::RecoveryCode => "RECOVERY_CODE",
        }
    }
}

/// A TOTP secret: generated, sealed and turned into a code checker.
pub struct TotpSecret {
    bytes: Vec<u8>,
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::fill(bytes.as_mut_slice());
        Self { bytes }
    }

    fn totp(&self, issuer: &str, account_name: &str) -> TOTP {
        // A colon would split the otpauth label; neither a username nor the
        // configured issuer holds one, but the label must never be ambiguous.
        let issuer = issuer.replace(':', " ");
        let account_name = account_name.replace(':', " ");
        TOTP::new(Algorithm::SHA1, DIGITS, SKEW as u8, STEP_SECS, self.bytes.clone(), Some(issuer), account_name)
            .expect("a 160-bit secret and 6 digits are valid TOTP parameters")
    }

    /// The base32 secret and the `otpauth://` URI an authenticator app reads.
    pub fn enrollment(&self, issuer: &str, account_name: &str) -> (String, String) {
        let totp = self.totp(issuer, account_name);
        (totp.get_secret_base32(), totp.get_url())
    }

    /// The time step `code` belongs to, within the skew around `now`, if it
    /// is this secret's code for that step (compared in constant time).
    pub fn matching_step(&self, code: &str, now: u64) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp("", "");
        let current = now / STEP_SECS;
        // Every step of the window is computed, match or not: the time taken
        // says nothing about which step matched.
        let mut found = None;
        for step in current.saturating_sub(SKEW)..=current + SKEW {
            let expected = totp.generate(step * STEP_SECS);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step as i64);
            }
        }
        found
    }

    pub fn seal(&self, seal: &Seal, account: Uuid) -> Vec<u8> {
        seal.seal(account.as_bytes(), &self.bytes)
    }

    pub fn open(seal: &Seal, account: Uuid, sealed: &[u8]) -> Option<Self> {
        seal.open(account.as_bytes(), sealed).filter(|bytes| bytes.len() == SECRET_BYTES).map(|bytes| Self { bytes })
    }

    /// The secret an authenticator app was given (`TotpEnrollment.secret`).
    pub fn from_base32(encoded: &str) -> Option<Self> {
        let bytes = totp_rs::Secret::Encoded(encoded.trim().to_owned()).to_bytes().ok()?;
        (bytes.len() == SECRET_BYTES).then_some(Self { bytes })
    }

    /// The code for the step of `time`, as an authenticator app shows it.
    pub fn code_at(&self, time: u64) -> String {
        self.totp("", "").generate(time)
    }
}

/// The sealing key of TOTP secrets.
pub fn totp_seal(refresh_secret: &SecretString) -> Seal {
    Seal::derive(refresh_secret, "gatehouse mfa totp secrets v1")
}

/// Hashes recovery codes with a key of their own.
#[derive(Clone)]
pub struct RecoveryCodes {
    key: Hmac<Sha256>,
}

impl RecoveryCodes {
    pub fn new(refresh_secret: &SecretString) -> Self {
        Self { key: crate::seal::labelled_hmac(refresh_secret, "gatehouse-mfa-recovery:") }
    }

    /// Fresh codes, written `xxxxx-xxxxx`, from the OS CSPRNG (about 49 bits each).
    pub fn generate() -> Vec<String> {
        (0..RECOVERY_CODES)
            .map(|_| {
                let mut bytes = [0u8; RECOVERY_LEN];
                rand::fill(&mut bytes);
                let letters: String =
                    bytes.iter().map(|b| RECOVERY_ALPHABET[*b as usize % RECOVERY_ALPHABET.len()] as char).collect();
                format!("{}-{}", &letters[..5], &letters[5..])
            })
            .collect()
    }

    /// The stored hash of `code` for `account`, ignoring case, spaces and
    /// dashes; `None` for anything that cannot be a recovery code.
    pub fn hash(&self, account: Uuid, code: &str) -> Option<String> {
        let normal: String = code.chars().filter(|c| !matches!(c, '-' | ' ')).flat_map(char::to_lowercase).collect();
        if normal.len() != RECOVERY_LEN || !normal.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
            return None;
        }
        let mut mac = self.key.clone();
        mac.update(account.as_bytes());
        mac.update(normal.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }
}

// ----- storage --------------------------------------------------------------

/// An account's TOTP row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub sealed_secret: Vec<u8>,
    pub confirmed: bool,
    pub last_used_step: i64,
}

pub async fn totp(db: impl PgExecutor<'_>, account: Uuid) -> Result<Option<TotpRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sealed_secret, confirmed_at IS NOT NULL AS confirmed, last_used_step FROM mfa_totp WHERE account_id = $1",
    )
    .bind(account)
    .fetch_optional(db)
    .await
}

/// Whether the account has a confirmed second factor.
pub async fn enabled(db: impl PgExecutor<'_>, account: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mfa_totp WHERE account_id = $1 AND confirmed_at IS NOT NULL)")
        .bind(account)
        .fetch_one(db)
        .await
}

/// Starts (or restarts) an enrollment; `false` when a confirmed secret is
/// already in place (it is never replaced this way).
pub async fn begin(db: impl PgExecutor<'_>, account: Uuid, sealed: &[u8]) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO mfa_totp (account_id, sealed_secret) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, created_at = now(),
             last_used_step = 0
         WHERE mfa_totp.confirmed_at IS NULL",
    )
    .bind(account)
    .bind(sealed)
    .execute(db)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Confirms the pending secret with the step of its first code and stores
/// the recovery codes' hashes; `false` when nothing was pending.
pub async fn confirm(
    conn: &mut PgConnection,
    account: Uuid,
    step: i64,
    recovery_hashes: &[String],
) -> Result<bool, sqlx::Error> {
    let confirmed = sqlx::query(
        "UPDATE mfa_totp SET confirmed_at = now(), last_used_step = $2
         WHERE account_id = $1 AND confirmed_at IS NULL",
    )
    .bind(account)
    .bind(step)
    .execute(&mut *conn)
    .await?;
    if confirmed.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE account_id = $1").bind(account).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO mfa_recovery_codes (account_id, code_hash) SELECT $1, unnest($2::text[])")
        .bind(account)
        .bind(recovery_hashes)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Spends a TOTP step: `true` only for the one attempt that moves
/// `last_used_step` forward.
pub async fn spend_step(db: impl PgExecutor<'_>, account: Uuid, step: i64) -> Result<bool, sqlx::Error> {
    let spent = sqlx::query(
        "UPDATE mfa_totp SET last_used_step = $2
         WHERE account_id = $1 AND confirmed_at IS NOT NULL AND last_used_step < $2",
    )
    .bind(account)
    .bind(step)
    .execute(db)
    .await?;
    Ok(spent.rows_affected() == 1)
}

/// Spends a recovery code: `true` only the first time.
pub async fn spend_recovery_code(db: impl PgExecutor<'_>, account: Uuid, hash: &str) -> Result<bool, sqlx::Error> {
    let spent = sqlx::query(
        "UPDATE mfa_recovery_codes SET used_at = now()
         WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(account)
    .bind(hash)
    .execute(db)
    .await?;
    Ok(spent.rows_affected() == 1)
}

/// How many recovery codes are still unused.
pub async fn recovery_codes_left(db: impl PgExecutor<'_>, account: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM mfa_recovery_codes WHERE account_id = $1 AND used_at IS NULL")
        .bind(account)
        .fetch_one(db)
        .await
}

/// Removes every second factor of the account.
pub async fn disable(conn: &mut PgConnection, account: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE account_id = $1").bind(account).execute(&mut *conn).await?;
    let removed = sqlx::query("DELETE FROM mfa_totp WHERE account_id = $1").bind(account).execute(&mut *conn).await?;
    Ok(removed.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("mfa-test-secret-0123456789abcdef".to_owned())
    }

    #[test]
    fn rfc6238_sha1_vectors_are_reproduced() {
        // RFC 6238 appendix B, SHA-1, with its 20-byte ASCII secret, last 6 digits.
        let secret = TotpSecret { bytes: b"12345678901234567890".to_vec() };
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(secret.code_at(time), code, "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbours_only() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_015;
        let step = (now / STEP_SECS) as i64;
        assert_eq!(secret.matching_step(&secret.code_at(now), now), Some(step));
        assert_eq!(secret.matching_step(&secret.code_at(now - 30), now), Some(step - 1));
        assert_eq!(secret.matching_step(&secret.code_at(now + 30), now), Some(step + 1));
        assert_eq!(secret.matching_step(&secret.code_at(now - 60), now), None);
        assert_eq!(secret.matching_step(&format!(" {} ", secret.code_at(now)), now), Some(step));
        for junk in ["", "12345", "1234567", "12a456", "１２３４５６", "000000\n1"] {
            assert_eq!(secret.matching_step(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn the_enrollment_uri_names_the_issuer_and_account() {
        let secret = TotpSecret::generate();
        let (base32, uri) = secret.enrollment("Gatehouse", "ann");
        assert_eq!(base32.len(), 32);
        assert!(uri.starts_with("otpauth://totp/Gatehouse:ann?"), "{uri}");
        assert!(uri.contains(&format!("secret={base32}")) && uri.contains("issuer=Gatehouse"), "{uri}");
        let (_, colon) = secret.enrollment("Acme: SSO", "a:b");
        assert!(colon.starts_with("otpauth://totp/Acme%20%20SSO:a%20b?"), "{colon}");
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account() {
        let seal = totp_seal(&secret());
        let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let secret_bytes = TotpSecret::generate();
        let sealed = secret_bytes.seal(&seal, ann);
        assert_eq!(TotpSecret::open(&seal, ann, &sealed).unwrap().bytes, secret_bytes.bytes);
        assert!(TotpSecret::open(&seal, bob, &sealed).is_none());
        assert!(TotpSecret::open(&seal, ann, &sealed[1..]).is_none());
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_per_account_whatever_their_spelling() {
        let codes = RecoveryCodes::generate();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), RECOVERY_CODES);
        let hasher = RecoveryCodes::new(&secret());
        let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let hash = hasher.hash(ann, &codes[0]).unwrap();
        assert_eq!(hasher.hash(ann, &codes[0].to_uppercase().replace('-', " ")), Some(hash.clone()));
        assert_ne!(hasher.hash(bob, &codes[0]), Some(hash));
        for junk in ["", "abcde", "abcde-fghi1", "abcde-fghij-k", "ab0de-fghjk", "abcde-fghjk\u{0}"] {
            assert_eq!(hasher.hash(ann, junk), None, "{junk:?}");
        }
    }
}
