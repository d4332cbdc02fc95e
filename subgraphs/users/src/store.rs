//! Reading and writing user records. The only module besides the projection
//! that speaks SQL; resolvers call it with parsed values.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{AvatarUrl, Bio, DisplayName};

/// One row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    /// The highest role held (`GUEST`, `USER`, `ADMIN`, `SYS_ADMIN`).
    pub role: String,
    pub active: bool,
    pub email_verified: bool,
    pub display_name: String,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    /// The last account event version applied.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, username, email, role, active, email_verified, display_name, bio, avatar_url, \
                       version, created_at, updated_at";

/// A profile edit: `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Option<Bio>>,
    pub avatar_url: Option<Option<AvatarUrl>>,
}

#[tracing::instrument(name = "users.find", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "users"))]
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<UserRecord>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1")).bind(id).fetch_optional(pool).await
}

/// Turns free text into a `LIKE` pattern matching it as a case-insensitive
/// substring: `%`, `_` and `\` in the input match themselves, not wildcards.
pub fn search_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

const SEARCH_CLAUSE: &str =
    "($1::text IS NULL OR lower(username) LIKE $1 OR lower(email) LIKE $1 OR lower(display_name) LIKE $1)";

/// Up to `limit` users after `after` (by id), matching `search` if given, and
/// whether more follow.
#[tracing::instrument(name = "users.page", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "users"))]
pub async fn page(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
    search: Option<&str>,
) -> Result<(Vec<UserRecord>, bool), sqlx::Error> {
    let pattern = search.map(search_pattern);
    let mut rows: Vec<UserRecord> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE {SEARCH_CLAUSE} AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id
         LIMIT $3"
    ))
    .bind(pattern)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_next))
}

/// How many users match `search` (all of them without one).
#[tracing::instrument(name = "users.count", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "SELECT", db.collection.name = "users"))]
pub async fn count(pool: &PgPool, search: Option<&str>) -> Result<i64, sqlx::Error> {
    let pattern = search.map(search_pattern);
    sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {SEARCH_CLAUSE}")).bind(pattern).fetch_one(pool).await
}

/// Applies a profile edit; `None` when the user has no record (yet, or any more).
#[tracing::instrument(name = "users.update_profile", skip_all, fields(otel.kind = "client", db.system.name = "postgresql", db.operation.name = "UPDATE", db.collection.name = "users"))]
pub async fn update_profile(
    pool: &PgPool,
    id: Uuid,
    change: &ProfileChange,
) -> Result<Option<UserRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE users SET
             display_name = COALESCE($2, display_name),
             bio = CASE WHEN $3 THEN $4 ELSE bio END,
             avatar_url = CASE WHEN $5 THEN $6 ELSE avatar_url END,
             updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(change.display_name.as_ref().map(DisplayName::as_str))
    .bind(change.bio.is_some())
    .bind(change.bio.as_ref().and_then(|b| b.as_ref().map(Bio::as_str)))
    .bind(change.avatar_url.is_some())
    .bind(change.avatar_url.as_ref().and_then(|a| a.as_ref().map(AvatarUrl::as_str)))
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::search_pattern;

    #[test]
    fn wildcards_in_search_text_match_literally() {
        assert_eq!(search_pattern("Ada"), "%ada%");
        assert_eq!(search_pattern("100%_\\"), "%100\\%\\_\\\\%");
    }
}
