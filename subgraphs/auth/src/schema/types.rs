//! GraphQL object and input types.

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{TimeZone, Utc};
use gatehouse_subgraph::DateTime;

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

/// A new account's details.
#[derive(Debug, InputObject)]
pub struct SignUpInput {
    /// Where the verification code goes; also a login. At most 254 characters.
    pub email: String,
    /// A public name and a login: 3 to 32 letters, digits and underscores
    /// (upper case is folded to lower).
    pub username: String,
    /// 8 to 128 characters, and not easy to guess (zxcvbn score 3 or more,
    /// the email, username and display name counted as guessable).
    #[graphql(secret)]
    pub password: String,
    /// Shown to people; defaults to the username.
    pub display_name: Option<String>,
}

/// An account, as the auth subgraph knows it.
pub struct User {
    account: Account,
    /// In the answer of a login or a refresh: whoever holds the tokens it
    /// came with owns the account, though the request carried no identity.
    issued: bool,
}

impl User {
    pub fn new(account: Account) -> Self {
        Self { account, issued: false }
    }

    /// The account a login or refresh just issued tokens for.
    pub fn issued(account: Account) -> Self {
        Self { account, issued: true }
    }

    /// Fields about the account itself (not its public name) are its owner's
    /// and the administrators' to read; anyone else gets `null` and FORBIDDEN.
    fn owner_or_admin(&self, ctx: &Context<'_>) -> Result<()> {
        let request = ctx.data::<RequestContext>()?;
        let allowed = self.issued
            || request
                .caller
                .as_ref()
                .is_some_and(|caller| caller.user_id == self.account.id || caller.has_scope(Role::Admin.scope()));
        if allowed {
            Ok(())
        } else {
            Err(AuthError::Forbidden("only the account's owner and administrators may read this field").into())
        }
    }
}

/// A person's account: who they are to Gatehouse (auth) and their profile (users).
#[Object]
impl User {
    /// The account id, shared by every subgraph.
    async fn id(&self) -> ID {
        ID(self.account.id.to_string())
    }

    /// The public name, unique, lower case; also a login.
    async fn username(&self) -> &str {
        &self.account.username
    }

    /// Readable by the account's owner and by ADMIN and above.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.owner_or_admin(ctx)?;
        Ok(Some(&self.account.email))
    }

    /// Readable by the account's owner and by ADMIN and above.
    async fn email_verified(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        self.owner_or_admin(ctx)?;
        Ok(Some(self.account.email_verified))
    }

    /// The account's role and every role it implies, lowest first. Readable
    /// by the account's owner and by ADMIN and above.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Option<Vec<Role>>> {
        self.owner_or_admin(ctx)?;
        Ok(Some(self.account.role().implied()))
    }

    /// False once an administrator disabled the account. Readable by the
    /// account's owner and by ADMIN and above.
    async fn active(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        self.owner_or_admin(ctx)?;
        Ok(Some(self.account.active))
    }

    /// When the account was registered. Readable by the account's owner and
    /// by ADMIN and above.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        self.owner_or_admin(ctx)?;
        Ok(Some(DateTime(self.account.created_at)))
    }

    /// Whether logging in takes a second factor (TOTP or a recovery code).
    /// Readable by the account's owner and by ADMIN and above.
    async fn mfa_enabled(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        self.owner_or_admin(ctx)?;
        Ok(Some(ctx.data::<AuthService>()?.mfa_enabled(self.account.id).await?))
    }

    /// How many unused recovery codes the account has (0 without two-step
    /// login). Readable by the account's owner and by ADMIN and above.
    async fn recovery_codes_left(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        self.owner_or_admin(ctx)?;
        let left = ctx.data::<AuthService>()?.recovery_codes_left(self.account.id).await?;
        Ok(Some(i32::try_from(left).unwrap_or(i32::MAX)))
    }

    /// The outside sign-in providers linked to the account. Readable by the
    /// account's owner and by ADMIN and above.
    async fn linked_identities(&self, ctx: &Context<'_>) -> Result<Option<Vec<LinkedIdentity>>> {
        self.owner_or_admin(ctx)?;
        let linked = ctx.data::<AuthService>()?.linked_identities(self.account.id).await?;
        Ok(Some(
            linked
                .into_iter()
                .map(|identity| LinkedIdentity {
                    provider: identity.provider,
                    subject: identity.subject,
                    email: identity.email,
                    linked_at: DateTime(identity.linked_at),
                })
                .collect(),
        ))
    }

    /// The account's live sessions; only its owner may list them.
    #[graphql(guard = "AUTHENTICATED")]
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let request = ctx.data::<RequestContext>()?;
        let caller = request.require_caller()?;
        if caller.user_id != self.account.id {
            return Err(AuthError::Forbidden("only the owner may list sessions").into());
        }
        let service = ctx.data::<AuthService>()?;
        let sessions = service.sessions(self.account.id).await?;
        Ok(sessions.into_iter().map(|info| Session::new(info, caller.session_id)).collect())
    }
}

/// One signed-in device or browser (a refresh-token family).
#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct Session {
    /// Pass to `revokeSession` to end this session.
    pub id: ID,
    /// When the session started (the login).
    pub created_at: DateTime,
    /// When its refresh token was last used.
    pub last_used_at: DateTime,
    /// When it ends unless used again before: its idle lifetime after the
    /// last use, never past its absolute lifetime.
    pub expires_at: DateTime,
    /// The `User-Agent` of the client that logged in, as it sent it.
    pub user_agent: Option<String>,
    /// True for the session the request was made with.
    pub current: bool,
}

#[ComplexObject]
impl Session {}

impl Session {
    fn new(info: SessionInfo, current: uuid::Uuid) -> Self {
        let time = |t: i64| DateTime(Utc.timestamp_opt(t, 0).single().unwrap_or_default());
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

/// An outside sign-in linked to an account.
#[derive(SimpleObject)]
pub struct LinkedIdentity {
    /// The provider's name, as `externalLoginProviders` lists it.
    pub provider: String,
    /// The person's id at the provider.
    pub subject: String,
    /// The email the provider gave when it was linked.
    pub email: Option<String>,
    pub linked_at: DateTime,
}

/// A TOTP secret to add to an authenticator app; pending until
/// `confirmTotpEnrollment` receives a first code from it.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    /// The `otpauth://totp/…` URI, for a QR code.
    pub otpauth_uri: String,
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
    /// Whose tokens these are.
    pub user: User,
}
