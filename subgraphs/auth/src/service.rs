//! The auth use cases: one method per operation, free of GraphQL and HTTP.
//!
//! Resolvers parse nothing and decide nothing: they hand raw input and the
//! [`RequestContext`] to [`AuthService`] and turn its answer into GraphQL.

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use uuid::Uuid;

use gatehouse_common::identity::Identity;

use crate::accounts::{self, Account, InsertError, NewAccount};
use crate::credentials::{Hasher, Verified};
use crate::devices::{Device, DeviceCodec};
use crate::domain::{DisplayName, Email, Password, Role, Username};
use crate::error::{AuthError, AuthResult};
use crate::external::{self, ExternalError, ExternalLogins, ExternalPerson, PendingSignIn};
use crate::keys::Keys;
use crate::mail::{self, Mail};
use crate::mfa::{self, MfaMethod, RecoveryCodes, TotpSecret};
use crate::rate_limit::RateLimiter;
use crate::seal::Seal;
use crate::sessions::{RevokeReason, Rotation, SessionInfo, SessionStore};
use crate::settings::AuthSettings;
use crate::ticket::TicketCodec;
use crate::tokens::{issue_access_token, AccessToken, RefreshCodec};

/// What the HTTP layer learned about a request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The verified identity the gateway forwarded; `None` for anonymous callers.
    pub caller: Option<Identity>,
    pub client_ip: IpAddr,
    pub user_agent: Option<String>,
    /// The refresh token from the `__Host-` cookie, if the request carried one.
    pub refresh_cookie: Option<String>,
    /// The device cookie ([`crate::devices`]), if the request carried one.
    pub device_cookie: Option<String>,
    /// Sessions this request's logins started, each with the response key
    /// of its login field: one whose answer ends up `null` (a failure in a
    /// non-null field below it) reached nobody, and is ended.
    pub started_sessions: Arc<std::sync::Mutex<Vec<StartedSession>>>,
}

/// A session a login started, and where its answer is in the response.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub session: Uuid,
    pub user: Uuid,
    pub response_key: String,
}

impl RequestContext {
    pub fn require_caller(&self) -> AuthResult<&Identity> {
        self.caller.as_ref().ok_or(AuthError::Unauthenticated)
    }
}

/// Tokens issued by a login or a refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access: AccessToken,
    pub refresh_token: String,
    /// Unix time the refresh token expires (the cookie's lifetime).
    pub refresh_expires_at: i64,
    pub account: Account,
    /// After a login: the device token that remembers this client (set as a cookie).
    pub device_token: Option<String>,
    /// The session the tokens belong to.
    pub session: Uuid,
}

/// Raw sign-up input.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub email: String,
    pub username: String,
    pub password: SecretString,
    pub display_name: Option<String>,
}

#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    settings: AuthSettings,
    hasher: Hasher,
    keys: Arc<Keys>,
    sessions: SessionStore,
    limiter: RateLimiter,
    refresh: RefreshCodec,
    code_key: Hmac<Sha256>,
    mail_seal: mail::MailSeal,
    devices: DeviceCodec,
    mail_wake: Arc<Notify>,
    totp_seal: Seal,
    recovery: RecoveryCodes,
    mfa_tickets: TicketCodec,
    link_tickets: TicketCodec,
    external: ExternalLogins,
}

/// What an `mfaToken` carries: whose password (or outside sign-in) was
/// proven, and how (the session's first `amr` values).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MfaPending {
    account: Uuid,
    amr: Vec<String>,
}

/// What a `linkToken` carries: an outside identity whose verified email is
/// an existing account's, to be linked once the account's owner proves it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LinkPending {
    provider: String,
    subject: String,
    email: String,
    account: Uuid,
}

/// How long a `linkToken` lasts.
const LINK_TICKET_TTL_SECS: i64 = 600;
/// `amr` of a session an outside provider vouched for.
const AMR_FEDERATED: &str = "fed";

/// What `beginTotpEnrollment` hands the client to show.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// The base32 secret, for typing into an authenticator app.
    pub secret: String,
    /// The `otpauth://totp/…` URI, for a QR code.
    pub otpauth_uri: String,
}

/// The longest login string (an email is at most 254 characters).
const MAX_LOGIN_LEN: usize = 254;

impl AuthService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: PgPool,
        settings: AuthSettings,
        hasher: Hasher,
        keys: Arc<Keys>,
        sessions: SessionStore,
        limiter: RateLimiter,
        mail_wake: Arc<Notify>,
    ) -> Self {
        let refresh = RefreshCodec::new(&settings.refresh_secret, &settings.tokens.issuer);
        let code_key = crate::seal::labelled_hmac(&settings.refresh_secret, "gatehouse-verification-code:");
        Self {
            inner: Arc::new(Inner {
                mail_seal: mail::MailSeal::from_secret(&settings.refresh_secret),
                devices: DeviceCodec::new(&settings.refresh_secret),
                totp_seal: mfa::totp_seal(&settings.refresh_secret),
                recovery: RecoveryCodes::new(&settings.refresh_secret),
                mfa_tickets: TicketCodec::new(&settings.refresh_secret, "mfa"),
                link_tickets: TicketCodec::new(&settings.refresh_secret, "link"),
                external: ExternalLogins::new(&settings.oidc_providers),
                pool,
                settings,
                hasher,
                keys,
                sessions,
                limiter,
                refresh,
                code_key,
                mail_wake,
            }),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    pub fn keys(&self) -> &Arc<Keys> {
        &self.inner.keys
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    // ----- accounts ------------------------------------------------------

    #[tracing::instrument(skip_all)]
    pub async fn sign_up(&self, input: SignUp, ctx: &RequestContext) -> AuthResult<bool> {
        let email = Email::parse(&input.email)?;
        let username = Username::parse(&input.username)?;
        let display_name = match input.display_name.as_deref() {
            Some(name) => DisplayName::parse(name)?,
            None => DisplayName::parse(username.as_str())?,
        };
        let password = {
            let (email, username, display) =
                (email.as_str().to_owned(), username.as_str().to_owned(), display_name.as_str().to_owned());
            let raw = input.password;
            // zxcvbn is CPU work on long inputs: keep it off the runtime threads.
            tokio::task::spawn_blocking(move || {
                Password::parse(raw.expose_secret(), &[email.as_str(), username.as_str(), display.as_str()])
            })
            .await
            .map_err(anyhow::Error::from)??
        };
        let limits = &self.inner.settings.limits;
        self.inner
            .limiter
            .hit(&[
                (format!("resend:{email}"), limits.resend_per_email),
                (format!("mail:ip:{}", ctx.client_ip), limits.mail_per_ip),
            ])
            .await??;
        // Hash before looking anything up, so a taken email costs the same time.
        let hash = self.inner.hasher.hash(password.into_secret()).await?;

        let mut tx = self.inner.pool.begin().await?;
        if accounts::by_email(&mut *tx, email.as_str()).await?.is_some() {
            drop(tx);
            return self.mail_instead(&Mail::sign_up_attempt(&email)).await;
        }
        let new = NewAccount {
            email: email.as_str(),
            username: username.as_str(),
            display_name: display_name.as_str(),
            password_hash: &hash,
            role: Role::User,
            email_verified: false,
        };
        let account = match accounts::insert(&mut tx, &new).await {
            Ok(account) => account,
            // Answered like a taken email, so the answer tells nobody which
            // usernames exist; the mail tells the address's owner.
            Err(InsertError::UsernameTaken) => {
                drop(tx);
                return self.mail_instead(&Mail::username_taken(&email, username.as_str())).await;
            }
            Err(InsertError::EmailTaken) => {
                // Registered concurrently by someone else: answer as for any taken email.
                drop(tx);
                return self.mail_instead(&Mail::sign_up_attempt(&email)).await;
            }
            Err(InsertError::Database(e)) => return Err(e.into()),
        };
        self.queue_verification_code(&mut tx, account.id, &email).await?;
        tx.commit().await?;
        self.inner.mail_wake.notify_one();
        tracing::info!(user_id = %account.id, "account registered");
        Ok(true)
    }

    /// A sign-up that creates nothing answers `true` all the same, and the
    /// address's owner learns why by mail.
    async fn mail_instead(&self, mail: &Mail) -> AuthResult<bool> {
        let mut tx = self.inner.pool.begin().await?;
        mail::enqueue(&mut tx, &self.inner.mail_seal, mail).await?;
        tx.commit().await?;
        self.inner.mail_wake.notify_one();
        Ok(true)
    }

    async fn queue_verification_code(
        &self,
        conn: &mut sqlx::PgConnection,
        account: Uuid,
        email: &Email,
    ) -> AuthResult<()> {
        let code = format!("{:06}", rand::random_range(0..1_000_000u32));
        let ttl = self.inner.settings.verification_ttl;
        accounts::store_verification(conn, account, &self.code_hash(account, &code), ttl.as_secs_f64()).await?;
        mail::enqueue(conn, &self.inner.mail_seal, &Mail::verification(email, &code, ttl)).await?;
        Ok(())
    }

    fn code_hash(&self, account: Uuid, code: &str) -> String {
        let mut mac = self.inner.code_key.clone();
        mac.update(account.as_bytes());
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, email: &str, code: &str) -> AuthResult<bool> {
        let email = Email::parse(email)?;
        let invalid = || AuthError::bad_input("code", "is invalid or has expired");
        let code = code.trim();
        if code.is_empty() || code.len() > 32 {
            return Err(invalid());
        }
        self.inner.limiter.hit(&[(format!("verify:{email}"), self.inner.settings.limits.verify_per_email)]).await??;
        let mut tx = self.inner.pool.begin().await?;
        // The row lock makes the code single-use under concurrent attempts.
        let Some(pending) = accounts::pending_verification(&mut tx, email.as_str()).await? else {
            return Err(invalid());
        };
        if pending.expired {
            accounts::drop_verification(&mut tx, pending.account_id).await?;
            tx.commit().await?;
            return Err(invalid());
        }
        let expected = pending.code_hash.as_bytes();
        let actual = self.code_hash(pending.account_id, code);
        if !bool::from(expected.ct_eq(actual.as_bytes())) {
            if pending.failed_attempts + 1 >= self.inner.settings.verification_max_attempts {
                accounts::drop_verification(&mut tx, pending.account_id).await?;
            } else {
                accounts::count_failed_verification(&mut tx, pending.account_id).await?;
            }
            tx.commit().await?;
            return Err(invalid());
        }
        accounts::drop_verification(&mut tx, pending.account_id).await?;
        accounts::mark_verified(&mut tx, pending.account_id).await?;
        tx.commit().await?;
        tracing::info!(user_id = %pending.account_id, "email verified");
        Ok(true)
    }

    /// Always `true` (for unknown and verified emails too), after the rate limit.
    #[tracing::instrument(skip_all)]
    pub async fn resend_verification(&self, email: &str, ctx: &RequestContext) -> AuthResult<bool> {
        let email = Email::parse(email)?;
        let limits = &self.inner.settings.limits;
        self.inner
            .limiter
            .hit(&[
                (format!("resend:{email}"), limits.resend_per_email),
                (format!("mail:ip:{}", ctx.client_ip), limits.mail_per_ip),
            ])
            .await??;
        // The work happens after the answer, so the answer takes the same
        // time whether or not the account exists.
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(error) = service.resend_in_background(&email).await {
                tracing::error!(error = %error.log_line(), "resending a verification code failed");
            }
        });
        Ok(true)
    }

    async fn resend_in_background(&self, email: &Email) -> AuthResult<()> {
        let mut tx = self.inner.pool.begin().await?;
        match accounts::by_email(&mut *tx, email.as_str()).await? {
            Some(account) if !account.email_verified => {
                self.queue_verification_code(&mut tx, account.id, email).await?;
                tx.commit().await?;
                self.inner.mail_wake.notify_one();
            }
            _ => {}
        }
        Ok(())
    }

    // ----- login and sessions ---------------------------------------------

    #[tracing::instrument(skip_all)]
    pub async fn login(&self, login: &str, password: SecretString, ctx: &RequestContext) -> AuthResult<Issued> {
        let login = login.trim().to_lowercase();
        if login.is_empty() || login.chars().count() > MAX_LOGIN_LEN {
            return Err(AuthError::bad_input("login", "must be an email or a username"));
        }
        let account = if login.contains('@') {
            match Email::parse(&login) {
                Ok(email) => accounts::by_email(&self.inner.pool, email.as_str()).await?,
                Err(_) => None,
            }
        } else {
            accounts::by_username(&self.inner.pool, &login).await?
        };
        // Counted per account, not per spelling: the email and the username
        // of one account share one budget.
        let account_key = match &account {
            Some(account) => format!("login:account:{}", account.id),
            None => format!("login:account:{login}"),
        };
        let limits = &self.inner.settings.limits;
        let now = Self::now();
        self.inner.limiter.hit(&[(format!("login:ip:{}", ctx.client_ip), limits.login_per_ip)]).await??;
        // A device that signed in to this very account before.
        let known_device = self
            .device_of(ctx, now)
            .filter(|device| account.as_ref().is_some_and(|account| account.id == device.account));
        let device_key = known_device.map(|device| format!("login:device:{}", device.id));
        if let Err(locked) = self.inner.limiter.hit(&[(account_key.clone(), limits.login_per_account)]).await? {
            // Past its limit of attempts the account is closed to strangers,
            // but not to its owner: a known device has a budget of its own,
            // any other client a small one per address (crate::devices).
            let budget = match &device_key {
                Some(key) => (key.clone(), limits.login_per_account),
                None => (format!("{account_key}:ip:{}", ctx.client_ip), limits.login_locked_per_ip),
            };
            if self.inner.limiter.hit(&[budget]).await?.is_err() {
                return Err(locked.into());
            }
        }
        // No account's password is longer than this, so nothing can match;
        // skipping the hash here reveals nothing about the account.
        if password.expose_secret().chars().count() > crate::domain::PASSWORD_MAX_LEN {
            return Err(AuthError::InvalidCredentials);
        }
        let verified = self.inner.hasher.verify(password, account.as_ref().map(|a| a.password_hash.clone())).await?;
        let account = match (account, &verified) {
            (Some(account), v) if v.is_ok() => account,
            _ => return Err(AuthError::InvalidCredentials),
        };
        // Only now, with the password proven, may the answer say more.
        if !account.active {
            return Err(AuthError::AccountDisabled);
        }
        if !account.email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        if let Verified::YesRehashed(new_hash) = verified {
            accounts::set_password_hash(&self.inner.pool, account.id, &new_hash).await?;
            tracing::info!(user_id = %account.id, "password re-hashed with the current parameters");
        }
        self.inner.limiter.clear(&account_key).await?;
        if let Some(key) = &device_key {
            self.inner.limiter.clear(key).await?;
        }
        let issued = self.first_factor_proven(account, mfa::AMR_PASSWORD, ctx, now).await?;
        tracing::info!(user_id = %issued.account.id, "logged in");
        Ok(issued)
    }

    /// The first factor is proven: a session, or, for an account with two-step
    /// login, `MFA_REQUIRED` and the ticket that carries the login on.
    async fn first_factor_proven(
        &self,
        account: Account,
        method: &str,
        ctx: &RequestContext,
        now: i64,
    ) -> AuthResult<Issued> {
        if mfa::enabled(&self.inner.pool, account.id).await? {
            let ttl = self.inner.settings.mfa_ticket_ttl.as_secs() as i64;
            let pending = MfaPending { account: account.id, amr: vec![method.to_owned()] };
            let (mfa_token, _) = self.inner.mfa_tickets.issue(&pending, now, ttl);
            tracing::info!(user_id = %account.id, method, "first factor accepted; waiting for the second");
            return Err(AuthError::MfaRequired {
                mfa_token,
                expires_in: ttl,
                methods: vec![MfaMethod::Totp, MfaMethod::RecoveryCode],
            });
        }
        self.start_remembered_session(account, &[method.to_owned()], ctx, now).await
    }

    /// The device the request's device cookie names, if it is valid.
    fn device_of(&self, ctx: &RequestContext, now: i64) -> Option<Device> {
        ctx.device_cookie.as_deref().and_then(|token| self.inner.devices.verify(token, now))
    }

    /// A session for a login that has proven everything it must, with the
    /// device token that remembers this client for the account.
    async fn start_remembered_session(
        &self,
        account: Account,
        amr: &[String],
        ctx: &RequestContext,
        now: i64,
    ) -> AuthResult<Issued> {
        let known_device = self.device_of(ctx, now).filter(|device| device.account == account.id);
        let device = Device { id: known_device.map_or_else(Uuid::new_v4, |device| device.id), account: account.id };
        let mut issued = self.start_session(account, amr, ctx).await?;
        issued.device_token = Some(self.inner.devices.issue(device, now));
        Ok(issued)
    }

    /// Finishes a login that answered `MFA_REQUIRED`: the ticket must be
    /// valid and unused, and the code a TOTP code of an unused step or an
    /// unused recovery code.
    #[tracing::instrument(skip_all)]
    pub async fn complete_mfa_login(&self, mfa_token: &str, code: &str, ctx: &RequestContext) -> AuthResult<Issued> {
        let now = Self::now();
        let ticket =
            self.inner.mfa_tickets.verify::<MfaPending>(mfa_token.trim(), now).ok_or(AuthError::InvalidMfaToken)?;
        let limits = &self.inner.settings.limits;
        self.inner
            .limiter
            .hit(&[
                (format!("mfa:{}", ticket.body.account), limits.mfa_per_account),
                (format!("login:ip:{}", ctx.client_ip), limits.login_per_ip),
            ])
            .await??;
        let account = match accounts::by_id(&self.inner.pool, ticket.body.account).await? {
            Some(account) if account.active => account,
            Some(_) => return Err(AuthError::AccountDisabled),
            None => return Err(AuthError::InvalidMfaToken),
        };
        // The ticket is spent only with a right code, so a typo can be
        // retried within the limit; a used ticket is refused before it can
        // burn a code.
        let ticket_key = format!("mfa-ticket:{}", ticket.jti);
        if self.inner.limiter.is_claimed(&ticket_key).await? {
            return Err(AuthError::InvalidMfaToken);
        }
        let method = self.spend_code(account.id, code, now).await?;
        let ttl = std::time::Duration::from_secs((ticket.exp - now).max(1) as u64);
        if !self.inner.limiter.claim_once(&ticket_key, ttl).await? {
            return Err(AuthError::InvalidMfaToken);
        }
        let mut amr = ticket.body.amr.clone();
        amr.extend([mfa::AMR_ONE_TIME_CODE, mfa::AMR_MULTI_FACTOR].map(String::from));
        let issued = self.start_remembered_session(account, &amr, ctx, now).await?;
        self.inner.limiter.clear(&format!("mfa:{}", issued.account.id)).await?;
        tracing::info!(user_id = %issued.account.id, method = method.name(), "logged in with a second factor");
        Ok(issued)
    }

    /// Spends `code` for the account: a TOTP code (six digits) or a recovery code.
    async fn spend_code(&self, account: Uuid, code: &str, now: i64) -> AuthResult<MfaMethod> {
        let code = code.trim();
        if code.len() > 64 {
            return Err(AuthError::InvalidMfaCode);
        }
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let row = mfa::totp(&self.inner.pool, account).await?.filter(|row| row.confirmed);
            let secret =
                row.as_ref().and_then(|row| TotpSecret::open(&self.inner.totp_seal, account, &row.sealed_secret));
            let Some(secret) = secret else {
                if row.is_some() {
                    tracing::error!(user_id = %account, "a TOTP secret does not open: was AUTH_REFRESH_SECRET changed?");
                }
                return Err(AuthError::InvalidMfaCode);
            };
            let step = secret.matching_step(code, now.max(0) as u64).ok_or(AuthError::InvalidMfaCode)?;
            return match mfa::spend_step(&self.inner.pool, account, step).await? {
                true => Ok(MfaMethod::Totp),
                false => Err(AuthError::InvalidMfaCode),
            };
        }
        let hash = self.inner.recovery.hash(account, code).ok_or(AuthError::InvalidMfaCode)?;
        match mfa::spend_recovery_code(&self.inner.pool, account, &hash).await? {
            true => {
                tracing::warn!(user_id = %account, "a recovery code was used");
                Ok(MfaMethod::RecoveryCode)
            }
            false => Err(AuthError::InvalidMfaCode),
        }
    }

    // ----- outside sign-in -------------------------------------------------

    /// The configured outside providers' names.
    pub fn external_providers(&self) -> Vec<String> {
        self.inner.external.names().into_iter().map(str::to_owned).collect()
    }

    /// Starts an outside sign-in: the URL to send the browser to. Its
    /// `state` keys the record of this sign-in for ten minutes.
    #[tracing::instrument(skip_all, fields(provider = provider))]
    pub async fn external_login_url(&self, provider: &str, redirect: &str, ctx: &RequestContext) -> AuthResult<String> {
        let limits = &self.inner.settings.limits;
        self.inner.limiter.hit(&[(format!("login:ip:{}", ctx.client_ip), limits.login_per_ip)]).await??;
        let (url, state, pending) = self.inner.external.start(provider, redirect).await.map_err(external_failure)?;
        let record = serde_json::to_string(&pending).map_err(anyhow::Error::from)?;
        self.inner.limiter.stash(&format!("oidc-state:{state}"), &record, external::STATE_TTL).await?;
        Ok(url)
    }

    /// Finishes an outside sign-in with the `code` and `state` the provider
    /// sent back: the known identity's account, a new account, or
    /// `ACCOUNT_LINK_REQUIRED` when the verified email is an account's here.
    #[tracing::instrument(skip_all, fields(provider = provider))]
    pub async fn complete_external_login(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        ctx: &RequestContext,
    ) -> AuthResult<Issued> {
        let limits = &self.inner.settings.limits;
        self.inner.limiter.hit(&[(format!("login:ip:{}", ctx.client_ip), limits.login_per_ip)]).await??;
        if code.is_empty() || code.len() > 2048 || state.is_empty() || state.len() > 256 {
            return Err(AuthError::InvalidExternalLogin);
        }
        let record = self.inner.limiter.take(&format!("oidc-state:{state}")).await?;
        let pending: PendingSignIn = record
            .and_then(|record| serde_json::from_str(&record).ok())
            .filter(|pending: &PendingSignIn| pending.provider == provider)
            .ok_or(AuthError::InvalidExternalLogin)?;
        let person = self.inner.external.finish(&pending, code).await.map_err(external_failure)?;
        let now = Self::now();
        if let Some(account_id) = external::account_of(&self.inner.pool, provider, &person.subject).await? {
            let account = accounts::by_id(&self.inner.pool, account_id).await?.ok_or(AuthError::ExternalLoginFailed)?;
            if !account.active {
                return Err(AuthError::AccountDisabled);
            }
            let issued = self.first_factor_proven(account, AMR_FEDERATED, ctx, now).await?;
            tracing::info!(user_id = %issued.account.id, provider, "logged in with an outside provider");
            return Ok(issued);
        }
        let email = match (&person.email, person.email_verified) {
            (Some(email), true) => Email::parse(email).map_err(|_| AuthError::ExternalEmailNotVerified)?,
            _ => return Err(AuthError::ExternalEmailNotVerified),
        };
        if let Some(existing) = accounts::by_email(&self.inner.pool, email.as_str()).await? {
            // Never linked on a matching email alone: the owner proves the account.
            let pending = LinkPending {
                provider: provider.to_owned(),
                subject: person.subject.clone(),
                email: email.as_str().to_owned(),
                account: existing.id,
            };
            let (link_token, _) = self.inner.link_tickets.issue(&pending, now, LINK_TICKET_TTL_SECS);
            return Err(AuthError::AccountLinkRequired { link_token, expires_in: LINK_TICKET_TTL_SECS });
        }
        let account = self.create_external_account(provider, &person, &email).await?;
        tracing::info!(user_id = %account.id, provider, "account created by an outside sign-in");
        self.start_remembered_session(account, &[AMR_FEDERATED.to_owned()], ctx, now).await
    }

    /// A new USER account for an outside identity, with a random password
    /// nobody knows (a password reset can set one) and the identity linked.
    async fn create_external_account(
        &self,
        provider: &str,
        person: &ExternalPerson,
        email: &Email,
    ) -> AuthResult<Account> {
        let mut unknown = [0u8; 32];
        rand::fill(&mut unknown);
        let hash = self.inner.hasher.hash(SecretString::from(hex::encode(unknown))).await?;
        let base = external::username_base(person);
        for attempt in 0..8 {
            let candidate = match attempt {
                0 => base.clone(),
                _ => format!("{base}{}", rand::random_range(10..100_000u32)),
            };
            let Ok(username) = Username::parse(&candidate) else { continue };
            let display_name = person
                .name
                .as_deref()
                .and_then(|name| DisplayName::parse(name).ok())
                .map_or_else(|| DisplayName::parse(username.as_str()), Ok)?;
            let new = NewAccount {
                email: email.as_str(),
                username: username.as_str(),
                display_name: display_name.as_str(),
                password_hash: &hash,
                role: Role::User,
                email_verified: true,
            };
            let mut tx = self.inner.pool.begin().await?;
            let account = match accounts::insert(&mut tx, &new).await {
                Ok(account) => account,
                Err(InsertError::UsernameTaken) => continue,
                // Registered a moment ago by someone else: a retry links it.
                Err(InsertError::EmailTaken) => return Err(AuthError::InvalidExternalLogin),
                Err(InsertError::Database(e)) => return Err(e.into()),
            };
            external::mark_password_unusable(&mut *tx, account.id).await?;
            if !external::link(&mut *tx, provider, &person.subject, account.id, Some(email.as_str())).await? {
                return Err(AuthError::InvalidExternalLogin);
            }
            tx.commit().await?;
            return Ok(account);
        }
        Err(AuthError::ExternalLoginFailed)
    }

    /// Links the outside identity of a `linkToken` to its account once the
    /// account's password is proven, and signs in.
    #[tracing::instrument(skip_all)]
    pub async fn link_external_identity(
        &self,
        link_token: &str,
        password: SecretString,
        ctx: &RequestContext,
    ) -> AuthResult<Issued> {
        let now = Self::now();
        let ticket =
            self.inner.link_tickets.verify::<LinkPending>(link_token.trim(), now).ok_or(AuthError::InvalidLinkToken)?;
        let pending = &ticket.body;
        let account = self.check_own_password(pending.account, password).await?;
        if account.email != pending.email {
            return Err(AuthError::InvalidLinkToken);
        }
        if !account.active {
            return Err(AuthError::AccountDisabled);
        }
        let ttl = std::time::Duration::from_secs((ticket.exp - now).max(1) as u64);
        if !self.inner.limiter.claim_once(&format!("link-ticket:{}", ticket.jti), ttl).await? {
            return Err(AuthError::InvalidLinkToken);
        }
        let linked =
            external::link(&self.inner.pool, &pending.provider, &pending.subject, account.id, Some(&pending.email))
                .await?;
        let owner = external::account_of(&self.inner.pool, &pending.provider, &pending.subject).await?;
        if !linked && owner != Some(account.id) {
            return Err(AuthError::InvalidLinkToken);
        }
        tracing::info!(user_id = %account.id, provider = %pending.provider, "outside identity linked");
        self.first_factor_proven(account, AMR_FEDERATED, ctx, now).await
    }

    pub async fn linked_identities(&self, account: Uuid) -> AuthResult<Vec<external::LinkedIdentity>> {
        Ok(external::linked(&self.inner.pool, account).await?)
    }

    /// Unlinks the caller's identity at `provider`; refused when it is the
    /// account's last way in.
    #[tracing::instrument(skip_all)]
    pub async fn unlink_identity(&self, caller: &Identity, provider: &str) -> AuthResult<bool> {
        let mut tx = self.inner.pool.begin().await?;
        let removed = external::unlink(&mut tx, caller.user_id, provider).await?;
        tx.commit().await?;
        match removed {
            Some(count) => Ok(count > 0),
            None => Err(AuthError::Forbidden(
                "this is the account's only way in: set a password (request a password reset) first",
            )),
        }
    }

    // ----- second factors ---------------------------------------------------

    /// Whether the account logs in with a second factor.
    pub async fn mfa_enabled(&self, account: Uuid) -> AuthResult<bool> {
        Ok(mfa::enabled(&self.inner.pool, account).await?)
    }

    /// How many unused recovery codes the account has.
    pub async fn recovery_codes_left(&self, account: Uuid) -> AuthResult<i64> {
        Ok(mfa::recovery_codes_left(&self.inner.pool, account).await?)
    }

    /// A new TOTP secret for the caller, pending until `confirm_totp_enrollment`.
    #[tracing::instrument(skip_all)]
    pub async fn begin_totp_enrollment(&self, caller: &Identity) -> AuthResult<TotpEnrollment> {
        let account = accounts::by_id(&self.inner.pool, caller.user_id).await?.ok_or(AuthError::Unauthenticated)?;
        let secret = TotpSecret::generate();
        let sealed = secret.seal(&self.inner.totp_seal, account.id);
        if !mfa::begin(&self.inner.pool, account.id, &sealed).await? {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        let (secret, otpauth_uri) = secret.enrollment(&self.inner.settings.totp_issuer, &account.username);
        Ok(TotpEnrollment { secret, otpauth_uri })
    }

    /// Turns TOTP on with a first code from the app; answers the recovery
    /// codes, which are shown this once and kept only as hashes.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_totp_enrollment(&self, caller: &Identity, code: &str) -> AuthResult<Vec<String>> {
        let account = caller.user_id;
        self.inner.limiter.hit(&[(format!("mfa:{account}"), self.inner.settings.limits.mfa_per_account)]).await??;
        let no_enrollment = || AuthError::bad_input("code", "no TOTP enrollment is pending: call beginTotpEnrollment");
        let row = mfa::totp(&self.inner.pool, account).await?.ok_or_else(no_enrollment)?;
        if row.confirmed {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        let secret = TotpSecret::open(&self.inner.totp_seal, account, &row.sealed_secret).ok_or_else(no_enrollment)?;
        let step = secret.matching_step(code, Self::now().max(0) as u64).ok_or(AuthError::InvalidMfaCode)?;
        let codes = RecoveryCodes::generate();
        let hashes: Vec<String> =
            codes.iter().map(|code| self.inner.recovery.hash(account, code).expect("generated codes hash")).collect();
        let mut tx = self.inner.pool.begin().await?;
        if !mfa::confirm(&mut tx, account, step, &hashes).await? {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        tx.commit().await?;
        self.inner.limiter.clear(&format!("mfa:{account}")).await?;
        tracing::info!(user_id = %account, "two-step login turned on");
        Ok(codes)
    }

    /// Turns every second factor off after checking the password.
    #[tracing::instrument(skip_all)]
    pub async fn disable_mfa(&self, caller: &Identity, password: SecretString) -> AuthResult<bool> {
        let account = self.check_own_password(caller.user_id, password).await?;
        let mut tx = self.inner.pool.begin().await?;
        let removed = mfa::disable(&mut tx, account.id).await?;
        tx.commit().await?;
        if removed {
            tracing::info!(user_id = %account.id, "two-step login turned off");
        }
        Ok(removed)
    }

    async fn start_session(&self, account: Account, amr: &[String], ctx: &RequestContext) -> AuthResult<Issued> {
        let tokens = &self.inner.settings.tokens;
        let now = Self::now();
        let sid = Uuid::new_v4();
        let jti = RefreshCodec::random_jti();
        let absolute_exp = now + tokens.refresh_absolute_ttl.as_secs() as i64;
        let exp = (now + tokens.refresh_idle_ttl.as_secs() as i64).min(absolute_exp);
        let user_agent = ctx.user_agent.as_deref().map(|ua| truncate(ua, 256));
        let successor = self.inner.refresh.successor_jti(&jti);
        self.inner
            .sessions
            .create(sid, account.id, [&jti, &successor], now, absolute_exp, user_agent.as_deref())
            .await?;
        let refresh_token = self.inner.refresh.sign(account.id, sid, jti, now, exp, amr)?;
        let access = issue_access_token(&self.inner.keys.ring(), tokens, account.id, sid, account.role(), amr, now)?;
        Ok(Issued { access, refresh_token, refresh_expires_at: exp, account, device_token: None, session: sid })
    }

    /// Ends a session a login started whose answer never reached the client.
    pub async fn end_undelivered(&self, started: &StartedSession) -> AuthResult<()> {
        self.inner.sessions.revoke_proven(started.session, started.user, RevokeReason::Undelivered).await?;
        tracing::warn!(user_id = %started.user, sid = %started.session, "ended a session whose login answer was null");
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, token: &str) -> AuthResult<Issued> {
        let claims = self.inner.refresh.verify(token).ok_or(AuthError::InvalidRefreshToken)?;
        let tokens = &self.inner.settings.tokens;
        let successor = self.inner.refresh.successor_jti(&claims.jti);
        let after = self.inner.refresh.successor_jti(&successor);
        let now = Self::now();
        let rotation = self
            .inner
            .sessions
            .rotate(claims.sid, claims.sub, &claims.jti, [&successor, &after], now, tokens.refresh_grace)
            .await?;
        let (iat, absolute_exp) = match rotation {
            Rotation::Rotated { iat, absolute_exp } | Rotation::Grace { iat, absolute_exp } => (iat, absolute_exp),
            Rotation::Reused => {
                tracing::warn!(sid = %claims.sid, user_id = %claims.sub, "refresh token reused; session revoked");
                metrics::counter!("gatehouse_auth_refresh_reuse_total").increment(1);
                return Err(AuthError::RefreshTokenReused);
            }
            Rotation::Missing => return Err(AuthError::InvalidRefreshToken),
        };
        let account = match accounts::by_id(&self.inner.pool, claims.sub).await? {
            Some(account) if account.active => account,
            _ => {
                self.inner.sessions.revoke(claims.sid, Some(claims.sub), RevokeReason::Deactivated).await?;
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        let exp = (iat + tokens.refresh_idle_ttl.as_secs() as i64).min(absolute_exp);
        let refresh_token = self.inner.refresh.sign(claims.sub, claims.sid, successor, iat, exp, &claims.amr)?;
        let access = issue_access_token(
            &self.inner.keys.ring(),
            tokens,
            account.id,
            claims.sid,
            account.role(),
            &claims.amr,
            now,
        )?;
        Ok(Issued { access, refresh_token, refresh_expires_at: exp, account, device_token: None, session: claims.sid })
    }

    /// Ends the session of `token`, or without one the caller's current session.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, token: Option<&str>, ctx: &RequestContext) -> AuthResult<bool> {
        // The token's signature (or the gateway's verified identity) proves
        // the session was issued: its record is written even if Redis lost it.
        if let Some(token) = token {
            let claims = self.inner.refresh.verify_ignoring_expiry(token).ok_or(AuthError::InvalidRefreshToken)?;
            self.inner.sessions.revoke_proven(claims.sid, claims.sub, RevokeReason::Logout).await?;
            return Ok(true);
        }
        match &ctx.caller {
            Some(caller) => {
                self.inner.sessions.revoke_proven(caller.session_id, caller.user_id, RevokeReason::Logout).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub async fn logout_all(&self, caller: &Identity) -> AuthResult<i32> {
        let count = self.inner.sessions.revoke_all(caller.user_id, None, RevokeReason::LogoutAll).await?;
        Ok(count as i32)
    }

    pub async fn revoke_session(&self, caller: &Identity, id: &str) -> AuthResult<bool> {
        let Ok(sid) = Uuid::parse_str(id) else { return Ok(false) };
        Ok(self.inner.sessions.revoke(sid, Some(caller.user_id), RevokeReason::Revoked).await?)
    }

    /// True when the caller's session was revoked: the gateway should have
    /// refused the access token already; this is the subgraph's own check.
    pub async fn is_session_revoked(&self, caller: &Identity) -> AuthResult<bool> {
        Ok(self.inner.sessions.is_revoked(caller.session_id).await?)
    }

    pub async fn sessions(&self, user: Uuid) -> AuthResult<Vec<SessionInfo>> {
        Ok(self.inner.sessions.list(user).await?)
    }

    // ----- passwords ------------------------------------------------------

    /// Checks the caller's password (rate limited per account).
    async fn check_own_password(&self, user: Uuid, password: SecretString) -> AuthResult<Account> {
        self.inner.limiter.hit(&[(format!("password:{user}"), self.inner.settings.limits.login_per_account)]).await??;
        let account = accounts::by_id(&self.inner.pool, user).await?;
        let verified = self.inner.hasher.verify(password, account.as_ref().map(|a| a.password_hash.clone())).await?;
        match account {
            Some(account) if verified.is_ok() => Ok(account),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        caller: &Identity,
        current: SecretString,
        new: SecretString,
    ) -> AuthResult<bool> {
        let account = self.check_own_password(caller.user_id, current).await?;
        let new = Password::parse(new.expose_secret(), &[account.email.as_str(), account.username.as_str()])?;
        let hash = self.inner.hasher.hash(new.into_secret()).await?;
        let mut tx = self.inner.pool.begin().await?;
        accounts::set_password_hash(&mut *tx, account.id, &hash).await?;
        accounts::drop_resets(&mut tx, account.id).await?;
        tx.commit().await?;
        self.inner.sessions.revoke_all(account.id, Some(caller.session_id), RevokeReason::PasswordChanged).await?;
        self.announce_password_changed(account.id).await;
        Ok(true)
    }

    /// Tells the account's live subscriptions (its other devices) at once.
    async fn announce_password_changed(&self, user_id: Uuid) {
        let subject = &self.inner.settings.live_subject;
        self.inner.sessions.announce_live(subject, user_id, gatehouse_common::live::LiveKind::PasswordChanged).await;
    }

    /// Always `true` and equally fast: the lookup and the mail happen after the answer.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &str, ctx: &RequestContext) -> AuthResult<bool> {
        let email = Email::parse(email)?;
        let limits = &self.inner.settings.limits;
        self.inner
            .limiter
            .hit(&[
                (format!("reset:{email}"), limits.reset_per_email),
                (format!("mail:ip:{}", ctx.client_ip), limits.mail_per_ip),
            ])
            .await??;
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(error) = service.reset_in_background(&email).await {
                tracing::error!(error = %error.log_line(), "queueing a password reset failed");
            }
        });
        Ok(true)
    }

    async fn reset_in_background(&self, email: &Email) -> AuthResult<()> {
        let mut tx = self.inner.pool.begin().await?;
        let Some(account) = accounts::by_email(&mut *tx, email.as_str()).await? else { return Ok(()) };
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let ttl = self.inner.settings.reset_ttl;
        accounts::store_reset(&mut tx, account.id, &sha256_hex(&token), ttl.as_secs_f64()).await?;
        mail::enqueue(&mut tx, &self.inner.mail_seal, &Mail::password_reset(email, &token, ttl)).await?;
        tx.commit().await?;
        self.inner.mail_wake.notify_one();
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn reset_password(&self, token: &str, new: SecretString) -> AuthResult<bool> {
        let invalid = || AuthError::bad_input("token", "is invalid or has expired");
        let token = token.trim();
        if token.is_empty() || token.len() > 128 {
            return Err(invalid());
        }
        let token_hash = sha256_hex(token);
        let owner = accounts::reset_owner(&self.inner.pool, &token_hash).await?.ok_or_else(invalid)?;
        let account = accounts::by_id(&self.inner.pool, owner).await?.ok_or_else(invalid)?;
        let new = Password::parse(new.expose_secret(), &[account.email.as_str(), account.username.as_str()])?;
        let hash = self.inner.hasher.hash(new.into_secret()).await?;
        let mut tx = self.inner.pool.begin().await?;
        // Deleting the row is the redemption: of concurrent attempts, one wins.
        let Some(account_id) = accounts::redeem_reset(&mut tx, &token_hash).await? else {
            return Err(invalid());
        };
        accounts::set_password_hash(&mut *tx, account_id, &hash).await?;
        accounts::drop_resets(&mut tx, account_id).await?;
        tx.commit().await?;
        self.inner.sessions.revoke_all(account_id, None, RevokeReason::PasswordReset).await?;
        self.announce_password_changed(account_id).await;
        tracing::info!(user_id = %account_id, "password reset");
        Ok(true)
    }

    // ----- administration -------------------------------------------------

    fn caller_role(caller: &Identity) -> Role {
        Role::highest_in(&caller.scopes).unwrap_or(Role::Guest)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn set_user_roles(&self, caller: &Identity, user: Uuid, roles: &[Role]) -> AuthResult<Account> {
        let caller_role = Self::caller_role(caller);
        let Some(new_role) = roles.iter().copied().max() else {
            return Err(AuthError::bad_input("roles", "must name at least one role"));
        };
        if new_role == Role::SysAdmin && caller_role != Role::SysAdmin {
            return Err(AuthError::Forbidden("only a SYS_ADMIN may grant SYS_ADMIN"));
        }
        let mut tx = self.inner.pool.begin().await?;
        accounts::lock_sys_admins(&mut tx).await?;
        let target = accounts::by_id_for_update(&mut tx, user)
            .await?
            .ok_or_else(|| AuthError::bad_input("userId", "no such user"))?;
        let old_role = target.role();
        if old_role == Role::SysAdmin && caller_role != Role::SysAdmin {
            return Err(AuthError::Forbidden("an ADMIN may not change a SYS_ADMIN"));
        }
        if old_role == new_role {
            return Ok(target);
        }
        if old_role == Role::SysAdmin && accounts::other_active_sys_admins(&mut tx, target.id).await? == 0 {
            return Err(AuthError::Forbidden("the last SYS_ADMIN cannot be removed"));
        }
        let updated = accounts::set_role(&mut tx, target.id, new_role).await?;
        tx.commit().await?;
        if new_role < old_role {
            // Access tokens carry the old scopes; end the sessions that hold them.
            self.inner.sessions.revoke_all(target.id, None, RevokeReason::RoleLowered).await?;
        }
        tracing::info!(by = %caller.user_id, from = %old_role, to = %new_role, "role changed");
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn set_user_active(&self, caller: &Identity, user: Uuid, active: bool) -> AuthResult<Account> {
        let caller_role = Self::caller_role(caller);
        let mut tx = self.inner.pool.begin().await?;
        accounts::lock_sys_admins(&mut tx).await?;
        let target = accounts::by_id_for_update(&mut tx, user)
            .await?
            .ok_or_else(|| AuthError::bad_input("userId", "no such user"))?;
        if target.role() == Role::SysAdmin && caller_role != Role::SysAdmin {
            return Err(AuthError::Forbidden("an ADMIN may not change a SYS_ADMIN"));
        }
        if target.active == active {
            return Ok(target);
        }
        if !active
            && target.role() == Role::SysAdmin
            && accounts::other_active_sys_admins(&mut tx, target.id).await? == 0
        {
            return Err(AuthError::Forbidden("the last SYS_ADMIN cannot be removed"));
        }
        let updated = accounts::set_active(&mut tx, target.id, active).await?;
        tx.commit().await?;
        if !active {
            self.inner.sessions.revoke_all(target.id, None, RevokeReason::Deactivated).await?;
        }
        tracing::info!(by = %caller.user_id, active, "account activity changed");
        Ok(updated)
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_account(&self, caller: &Identity, password: SecretString) -> AuthResult<bool> {
        let account = self.check_own_password(caller.user_id, password).await?;
        let mut tx = self.inner.pool.begin().await?;
        accounts::lock_sys_admins(&mut tx).await?;
        if account.role() == Role::SysAdmin && accounts::other_active_sys_admins(&mut tx, account.id).await? == 0 {
            return Err(AuthError::Forbidden("the last SYS_ADMIN cannot be removed"));
        }
        accounts::delete(&mut tx, account.id).await?;
        tx.commit().await?;
        self.inner.sessions.revoke_all(account.id, None, RevokeReason::Deleted).await?;
        tracing::info!(user_id = %account.id, "account deleted");
        Ok(true)
    }

    // ----- reads ----------------------------------------------------------

    pub async fn account(&self, id: Uuid) -> AuthResult<Option<Account>> {
        Ok(accounts::by_id(&self.inner.pool, id).await?)
    }
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn truncate(value: &str, max_chars: usize) -> String {
    value.chars().filter(|c| !c.is_control()).take(max_chars).collect()
}

/// An outside sign-in's failure as the client sees it; the cause is logged.
fn external_failure(error: ExternalError) -> AuthError {
    match error {
        ExternalError::UnknownProvider(_) => AuthError::bad_input("provider", "is not a configured sign-in provider"),
        ExternalError::RedirectNotAllowed(_) => {
            AuthError::bad_input("redirectUri", "is not a redirect URI registered for this provider")
        }
        ExternalError::Provider(details) => {
            tracing::warn!(error = %details, "an outside sign-in failed");
            AuthError::ExternalLoginFailed
        }
    }
}
