//! The `accounts` table and the rows around it (verification codes, reset tokens).
//!
//! Every function that changes what the users service copies bumps
//! `accounts.version` and writes the outbox event in the caller's transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use gatehouse_common::events::AccountChange;
use gatehouse_store::outbox;

use crate::domain::Role;

/// One account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    role: String,
    pub email_verified: bool,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// The highest role held. An unknown stored value (impossible under the
    /// table's CHECK) degrades to the least privilege.
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Guest)
    }
}

const COLUMNS: &str = "id, email, username, password_hash, role, email_verified, active, version, created_at";

#[tracing::instrument(name = "accounts.by_id", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "accounts"))]
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE id = $1")).bind(id).fetch_optional(db).await
}

#[tracing::instrument(name = "accounts.by_ids", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "accounts"))]
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<Vec<Account>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ANY($1)")).bind(ids).fetch_all(db).await
}

#[tracing::instrument(name = "accounts.by_id_for_update", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "accounts"))]
pub async fn by_id_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

#[tracing::instrument(name = "accounts.by_email", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "accounts"))]
pub async fn by_email(db: impl PgExecutor<'_>, email: &str) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE email = $1")).bind(email).fetch_optional(db).await
}

#[tracing::instrument(name = "accounts.by_username", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "accounts"))]
pub async fn by_username(db: impl PgExecutor<'_>, username: &str) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE username = $1"))
        .bind(username)
        .fetch_optional(db)
        .await
}

/// A new account to insert.
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub email_verified: bool,
}

/// Why an insert failed on a unique key.
pub enum InsertError {
    EmailTaken,
    UsernameTaken,
    Database(sqlx::Error),
}

/// Inserts an account at version 1 with its `registered` event.
#[tracing::instrument(name = "accounts.insert", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "INSERT", db.collection.name = "accounts"))]
pub async fn insert(conn: &mut PgConnection, new: &NewAccount<'_>) -> Result<Account, InsertError> {
    let inserted: Result<Account, sqlx::Error> = sqlx::query_as(&format!(
        "INSERT INTO accounts (id, email, username, password_hash, role, email_verified, version)
         VALUES ($1, $2, $3, $4, $5, $6, 1)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.email)
    .bind(new.username)
    .bind(new.password_hash)
    .bind(new.role.as_str())
    .bind(new.email_verified)
    .fetch_one(&mut *conn)
    .await;
    let account = match inserted {
        Ok(account) => account,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(match db.constraint() {
                Some("accounts_username_key") => InsertError::UsernameTaken,
                _ => InsertError::EmailTaken,
            })
        }
        Err(e) => return Err(InsertError::Database(e)),
    };
    let change = AccountChange::Registered {
        username: account.username.clone(),
        email: account.email.clone(),
        role: account.role.clone(),
        display_name: new.display_name.to_owned(),
        email_verified: account.email_verified,
        active: account.active,
    };
    outbox::enqueue(conn, account.id, account.version, change).await.map_err(InsertError::Database)?;
    Ok(account)
}

/// Applies `set` (an SQL assignment list over `$2..`) to an account, bumps its
/// version and writes `change` to the outbox, all in the caller's transaction.
#[tracing::instrument(name = "accounts.change", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE", db.collection.name = "accounts"))]
async fn change(
    conn: &mut PgConnection,
    id: Uuid,
    set: &str,
    bind: impl FnOnce(
        sqlx::query::QueryAs<'_, sqlx::Postgres, Account, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'_, sqlx::Postgres, Account, sqlx::postgres::PgArguments>,
    change: AccountChange,
) -> Result<Account, sqlx::Error> {
    let sql = format!(
        "UPDATE accounts SET {set}, version = version + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    let account = bind(sqlx::query_as(&sql).bind(id)).fetch_one(&mut *conn).await?;
    outbox::enqueue(conn, account.id, account.version, change).await?;
    Ok(account)
}

pub async fn mark_verified(conn: &mut PgConnection, id: Uuid) -> Result<Account, sqlx::Error> {
    change(conn, id, "email_verified = true", |q| q, AccountChange::EmailVerified).await
}

pub async fn set_role(conn: &mut PgConnection, id: Uuid, role: Role) -> Result<Account, sqlx::Error> {
    let change_event = AccountChange::RoleChanged { role: role.as_str().to_owned() };
    change(conn, id, "role = $2", |q| q.bind(role.as_str()), change_event).await
}

pub async fn set_active(conn: &mut PgConnection, id: Uuid, active: bool) -> Result<Account, sqlx::Error> {
    change(conn, id, "active = $2", |q| q.bind(active), AccountChange::ActiveChanged { active }).await
}

/// Deletes an account after writing its `deleted` event (at the next version).
#[tracing::instrument(name = "accounts.delete", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "DELETE", db.collection.name = "accounts"))]
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("UPDATE accounts SET version = version + 1 WHERE id = $1 RETURNING version")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    outbox::enqueue(conn, id, version, AccountChange::Deleted).await?;
    sqlx::query("DELETE FROM accounts WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Replaces a password hash (no event: the users service does not copy it).
#[tracing::instrument(name = "accounts.set_password_hash", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE", db.collection.name = "accounts"))]
pub async fn set_password_hash(db: impl PgExecutor<'_>, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_hash = $2, password_usable = true, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Serialises every transaction that might remove a SYS_ADMIN, so two of them
/// cannot each believe the other SYS_ADMIN remains.
pub async fn lock_sys_admins(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(7104251001)").execute(conn).await?;
    Ok(())
}

/// Active SYS_ADMINs other than `except`.
pub async fn other_active_sys_admins(conn: &mut PgConnection, except: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM accounts WHERE role = 'SYS_ADMIN' AND active AND id <> $1")
        .bind(except)
        .fetch_one(conn)
        .await
}

/// Stores a fresh verification code for an account, replacing any earlier one.
#[tracing::instrument(name = "accounts.store_verification", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.collection.name = "email_verifications"))]
pub async fn store_verification(
    conn: &mut PgConnection,
    account: Uuid,
    code_hash: &str,
    ttl_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_verifications (account_id, code_hash, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (account_id) DO UPDATE
         SET code_hash = EXCLUDED.code_hash, failed_attempts = 0, expires_at = EXCLUDED.expires_at, created_at = now()",
    )
    .bind(account)
    .bind(code_hash)
    .bind(ttl_secs)
    .execute(conn)
    .await?;
    Ok(())
}

/// The pending verification of the account with `email`, locked for this transaction.
#[derive(Debug, sqlx::FromRow)]
pub struct PendingVerification {
    pub account_id: Uuid,
    pub code_hash: String,
    pub failed_attempts: i32,
    pub expired: bool,
}

#[tracing::instrument(name = "accounts.pending_verification", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "email_verifications"))]
pub async fn pending_verification(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<PendingVerification>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.account_id, v.code_hash, v.failed_attempts, v.expires_at <= now() AS expired
         FROM email_verifications v JOIN accounts a ON a.id = v.account_id
         WHERE a.email = $1
         FOR UPDATE OF v",
    )
    .bind(email)
    .fetch_optional(conn)
    .await
}

pub async fn drop_verification(conn: &mut PgConnection, account: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM email_verifications WHERE account_id = $1").bind(account).execute(conn).await?;
    Ok(())
}

pub async fn count_failed_verification(conn: &mut PgConnection, account: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE email_verifications SET failed_attempts = failed_attempts + 1 WHERE account_id = $1")
        .bind(account)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(name = "accounts.store_reset", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.collection.name = "password_resets"))]
pub async fn store_reset(
    conn: &mut PgConnection,
    account: Uuid,
    token_hash: &str,
    ttl_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO password_resets (token_hash, account_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(token_hash)
    .bind(account)
    .bind(ttl_secs)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account a live reset token belongs to, without redeeming it.
pub async fn reset_owner(db: impl PgExecutor<'_>, token_hash: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM password_resets WHERE token_hash = $1 AND expires_at > now()")
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// Redeems a reset token: deletes it and answers its account, at most once.
#[tracing::instrument(name = "accounts.redeem_reset", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.collection.name = "password_resets"))]
pub async fn redeem_reset(conn: &mut PgConnection, token_hash: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > now() RETURNING account_id")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
}

pub async fn drop_resets(conn: &mut PgConnection, account: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM password_resets WHERE account_id = $1").bind(account).execute(conn).await?;
    Ok(())
}
