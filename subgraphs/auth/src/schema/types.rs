//! GraphQL object and input types.

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, TimeZone, Utc};

use crate::accounts::Account;
use crate::domain::Role;
use crate::error::AuthError;
use crate::service::{AuthService, RequestContext};
use crate::sessions::SessionInfo;

use super::guard::AUTHENTICATED;

/// How `login` hands out the refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TokenTransport {
    /// In a `__Host-` cookie (HttpOnly, Secure, SameSite=Strict), never in the body.
    Cookie,
    /// In `AuthPayload.refreshToken`; no cookie is set.
    Body,
}

#[derive(Debug, InputObject)]
pub struct SignUpInput {
    pub email: String,
    pub username: String,
    #[graphql(secret)]
    pub password: String,
    /// Shown to people; defaults to the username.
    pub display_name: Option<String>,
}

/// An account, as the auth subgraph knows it.
pub struct User(pub Account);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn username(&self) -> &str {
        &self.0.username
    }

    /// Readable by the account's owner and by ADMIN and above.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let request = ctx.data::<RequestContext>()?;
        let allowed = request
            .caller
            .as_ref()
            .is_some_and(|caller| caller.user_id == self.0.id || caller.has_scope(Role::Admin.scope()));
        if allowed {
            Ok(Some(&self.0.email))
        } else {
            Err(AuthError::Forbidden("only the owner and administrators may read the email").into())
        }
    }

    async fn email_verified(&self) -> bool {
        self.0.email_verified
    }

    /// The account's role and every role it implies, lowest first.
    async fn roles(&self) -> Vec<Role> {
        self.0.role().implied()
    }

    async fn active(&self) -> bool {
        self.0.active
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The account's live sessions; only its owner may list them.
    #[graphql(guard = "AUTHENTICATED")]
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let request = ctx.data::<RequestContext>()?;
        let caller = request.require_caller()?;
        if caller.user_id != self.0.id {
            return Err(AuthError::Forbidden("only the owner may list sessions").into());
        }
        let service = ctx.data::<AuthService>()?;
        let sessions = service.sessions(self.0.id).await?;
        Ok(sessions.into_iter().map(|info| Session::new(info, caller.session_id)).collect())
    }
}

/// One signed-in device or browser (a refresh-token family).
#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct Session {
    pub id: ID,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    /// True for the session the request was made with.
    pub current: bool,
}

#[ComplexObject]
impl Session {}

impl Session {
    fn new(info: SessionInfo, current: uuid::Uuid) -> Self {
        let time = |t: i64| Utc.timestamp_opt(t, 0).single().unwrap_or_default();
        Self {
            id: ID(info.id.to_string()),
            created_at: time(info.created_at),
            last_used_at: time(info.last_used_at),
            expires_at: time(info.expires_at),
            user_agent: info.user_agent,
            current: info.id == current,
        }
    }
}

/// What `login` and `refreshSession` answer.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// An RS256 JWT (`typ: at+jwt`) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i32,
    /// Only when the refresh token was asked for in the body (`BODY`, or
    /// `refreshSession(refreshToken: ...)`); otherwise it is in the cookie.
    pub refresh_token: Option<String>,
    pub user: User,
}
