//! Seeding the SYS_ADMIN account from configuration (and, in development,
//! verified demo accounts). Idempotent; never over HTTP.
//!
//! Seeded accounts are registered like any other: version 1 with a
//! `registered` event in the outbox, so the users service learns about them.

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use gatehouse_common::settings::{Environment, SharedSettings};

use crate::accounts::{self, InsertError, NewAccount};
use crate::config::{AuthConfig, DEV_ADMIN_PASSWORD};
use crate::credentials::{HashParams, Hasher};
use crate::domain::{Email, Role};

/// A development demo account, printed in the start-up banner.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub role: Role,
    pub email: String,
    pub username: String,
    pub password: String,
}

/// What seeding did, for the start-up banner.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub admin_email: String,
    /// The password, only when it is the development default (safe to print).
    pub dev_password: Option<String>,
    pub created: bool,
    /// Development only: verified USER, ADMIN and GUEST accounts.
    pub demo_accounts: Vec<DemoAccount>,
}

const DEMO: [(Role, &str, &str, &str); 3] = [
    (Role::User, "user@gatehouse.local", "demo_user", "gatehouse-user-dev"),
    (Role::Admin, "admin.demo@gatehouse.local", "demo_admin", "gatehouse-admin-demo-dev"),
    (Role::Guest, "guest@gatehouse.local", "demo_guest", "gatehouse-guest-dev"),
];

pub async fn seed(pool: &PgPool, config: &AuthConfig, shared: &SharedSettings) -> anyhow::Result<SeedReport> {
    let development = shared.environment == Environment::Development;
    let (password, dev_password) = match (&config.admin_password, shared.environment) {
        (Some(p), Environment::Production) if p.expose_secret() == DEV_ADMIN_PASSWORD => {
            anyhow::bail!("GATEHOUSE_ADMIN_PASSWORD is the development default; production needs its own")
        }
        (Some(p), Environment::Production) => {
            // The most powerful account gets at least the rule every user's
            // password meets (length and zxcvbn strength, with its own
            // email and username counted as guessable).
            let inputs = [config.admin_email.as_str(), "admin", "gatehouse"];
            if let Err(weak) = crate::domain::Password::parse(p.expose_secret(), &inputs) {
                anyhow::bail!("GATEHOUSE_ADMIN_PASSWORD is refused in production: it {}", weak.message);
            }
            (p.clone(), None)
        }
        (Some(p), Environment::Development) => (p.clone(), None),
        (None, Environment::Development) => {
            (SecretString::from(DEV_ADMIN_PASSWORD.to_owned()), Some(DEV_ADMIN_PASSWORD.to_owned()))
        }
        (None, Environment::Production) => anyhow::bail!("GATEHOUSE_ADMIN_PASSWORD is required in production"),
    };
    let email = Email::parse(&config.admin_email).map_err(|e| anyhow::anyhow!("GATEHOUSE_ADMIN_EMAIL {e}"))?;
    let params = HashParams {
        memory_kib: config.argon2_memory_kib,
        iterations: config.argon2_iterations,
        parallelism: config.argon2_parallelism,
    };
    let hasher = Hasher::new(params, 2).await?;
    let created = ensure(pool, &hasher, email.as_str(), "admin", password, Role::SysAdmin).await?;

    let mut demo_accounts = Vec::new();
    if development {
        for (role, email, username, password) in DEMO {
            ensure(pool, &hasher, email, username, SecretString::from(password.to_owned()), role).await?;
            demo_accounts.push(DemoAccount {
                role,
                email: email.into(),
                username: username.into(),
                password: password.into(),
            });
        }
    }
    Ok(SeedReport { admin_email: email.as_str().to_owned(), dev_password, created, demo_accounts })
}

/// Creates a verified account unless one with that email exists; answers whether it created one.
async fn ensure(
    pool: &PgPool,
    hasher: &Hasher,
    email: &str,
    username: &str,
    password: SecretString,
    role: Role,
) -> anyhow::Result<bool> {
    if accounts::by_email(pool, email).await?.is_some() {
        return Ok(false);
    }
    let hash = hasher.hash(password).await?;
    let mut tx = pool.begin().await?;
    let new = NewAccount { email, username, display_name: username, password_hash: &hash, role, email_verified: true };
    match accounts::insert(&mut tx, &new).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
        // A concurrent seed created it first.
        Err(InsertError::EmailTaken) => Ok(false),
        Err(InsertError::UsernameTaken) => {
            anyhow::bail!("cannot seed {email}: the username {username:?} belongs to another account")
        }
        Err(InsertError::Database(e)) => Err(e.into()),
    }
}
