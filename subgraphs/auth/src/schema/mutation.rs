//! The mutation root: every auth operation of the public contract.

use async_graphql::{Context, Object, Result, ID};
use secrecy::SecretString;

use crate::domain::Role;
use crate::error::AuthError;
use crate::service::{AuthService, Issued, RequestContext, SignUp, StartedSession};

use super::guard::{ADMIN, AUTHENTICATED};
use super::types::{AuthPayload, SignUpInput, TokenTransport, TotpEnrollment, User};

pub struct Mutation;

fn secret(value: String) -> SecretString {
    SecretString::from(value)
}

fn parts<'a>(ctx: &'a Context<'_>) -> Result<(&'a AuthService, &'a RequestContext)> {
    Ok((ctx.data::<AuthService>()?, ctx.data::<RequestContext>()?))
}

fn parse_user_id(id: &ID) -> Result<uuid::Uuid, AuthError> {
    uuid::Uuid::parse_str(id).map_err(|_| AuthError::bad_input("userId", "no such user"))
}

/// `Set-Cookie` for a refresh or device token, or for clearing it (`None`).
fn refresh_cookie(name: &str, token: Option<(&str, i64)>) -> String {
    match token {
        Some((value, max_age)) => {
            format!("{name}={value}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict", max_age.max(0))
        }
        None => format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
    }
}

/// Builds the payload, putting the refresh token in the body or in the cookie.
fn deliver(ctx: &Context<'_>, service: &AuthService, issued: Issued, transport: TokenTransport) -> AuthPayload {
    if let Some(device) = &issued.device_token {
        let lifetime = crate::devices::DEVICE_TOKEN_LIFETIME.as_secs() as i64;
        let name = &service.settings().tokens.device_cookie_name;
        ctx.append_http_header("set-cookie", refresh_cookie(name, Some((device, lifetime))));
    }
    let refresh_token = match transport {
        TokenTransport::Body => Some(issued.refresh_token),
        TokenTransport::Cookie => {
            let max_age = issued.refresh_expires_at - chrono::Utc::now().timestamp();
            let cookie_name = &service.settings().tokens.cookie_name;
            ctx.append_http_header("set-cookie", refresh_cookie(cookie_name, Some((&issued.refresh_token, max_age))));
            None
        }
    };
    AuthPayload {
        access_token: issued.access.token,
        token_type: "Bearer".into(),
        expires_in: issued.access.expires_in as i32,
        refresh_token,
        user: User::issued(issued.account),
    }
}

/// Records the session a login started (to end it if its answer is lost)
/// and builds the answer.
fn started(
    ctx: &Context<'_>,
    service: &AuthService,
    request: &RequestContext,
    issued: Issued,
    transport: Option<TokenTransport>,
) -> AuthPayload {
    request.started_sessions.lock().unwrap_or_else(|e| e.into_inner()).push(StartedSession {
        session: issued.session,
        user: issued.account.id,
        response_key: ctx.item.node.response_key().node.to_string(),
    });
    deliver(ctx, service, issued, transport.unwrap_or(TokenTransport::Cookie))
}

/// What changes data: sign-up, sessions and roles (auth), profiles (users).
#[Object]
impl Mutation {
    /// Registers an account and mails a verification code. Answers `true`
    /// whether or not the email is already registered.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        let input = SignUp {
            email: input.email,
            username: input.username,
            password: secret(input.password),
            display_name: input.display_name,
        };
        Ok(service.sign_up(input, request).await?)
    }

    /// Redeems the code from the verification mail.
    async fn verify_email(&self, ctx: &Context<'_>, email: String, code: String) -> Result<bool> {
        let (service, _) = parts(ctx)?;
        Ok(service.verify_email(&email, &code).await?)
    }

    /// Mails a new verification code if the account exists and is unverified.
    /// Always answers `true`.
    async fn resend_verification_email(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.resend_verification(&email, request).await?)
    }

    /// Logs in with an email or a username and starts a session. With
    /// two-step login on, answers the error `MFA_REQUIRED` instead, whose
    /// extensions hold `mfaToken`, `expiresIn` and `methods`: finish with
    /// `completeMfaLogin`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        login: String,
        #[graphql(secret)] password: String,
        #[graphql(default_with = "Some(TokenTransport::Cookie)")] refresh_token_in: Option<TokenTransport>,
    ) -> Result<AuthPayload> {
        let (service, request) = parts(ctx)?;
        let issued = service.login(&login, secret(password), request).await?;
        Ok(started(ctx, service, request, issued, refresh_token_in))
    }

    /// The second step of a login that answered `MFA_REQUIRED`: the
    /// `mfaToken` from that answer and a code from the authenticator app
    /// (six digits) or a recovery code. Each code works once.
    async fn complete_mfa_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] mfa_token: String,
        #[graphql(secret)] code: String,
        #[graphql(default_with = "Some(TokenTransport::Cookie)")] refresh_token_in: Option<TokenTransport>,
    ) -> Result<AuthPayload> {
        let (service, request) = parts(ctx)?;
        let issued = service.complete_mfa_login(&mfa_token, &code, request).await?;
        Ok(started(ctx, service, request, issued, refresh_token_in))
    }

    /// Starts signing in with an outside provider: the URL to send the
    /// browser to. `redirectUri` must be one the provider's configuration
    /// lists; the provider sends the browser back there with `code` and
    /// `state` for `completeExternalLogin`. A mutation: it starts a sign-in
    /// that lasts ten minutes.
    async fn external_login_url(&self, ctx: &Context<'_>, provider: String, redirect_uri: String) -> Result<String> {
        let (service, request) = parts(ctx)?;
        Ok(service.external_login_url(&provider, &redirect_uri, request).await?)
    }

    /// Finishes signing in with an outside provider. A first sign-in
    /// creates a USER account; when the provider's verified email is an
    /// account's here, answers `ACCOUNT_LINK_REQUIRED` with a `linkToken`
    /// instead (see `linkExternalIdentity`). Two-step login applies.
    async fn complete_external_login(
        &self,
        ctx: &Context<'_>,
        provider: String,
        #[graphql(secret)] code: String,
        state: String,
        #[graphql(default_with = "Some(TokenTransport::Cookie)")] refresh_token_in: Option<TokenTransport>,
    ) -> Result<AuthPayload> {
        let (service, request) = parts(ctx)?;
        let issued = service.complete_external_login(&provider, &code, &state, request).await?;
        Ok(started(ctx, service, request, issued, refresh_token_in))
    }

    /// Links an outside identity to the existing account its
    /// `ACCOUNT_LINK_REQUIRED` named, once the account's password proves it
    /// is the caller's, and signs in.
    async fn link_external_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] link_token: String,
        #[graphql(secret)] password: String,
        #[graphql(default_with = "Some(TokenTransport::Cookie)")] refresh_token_in: Option<TokenTransport>,
    ) -> Result<AuthPayload> {
        let (service, request) = parts(ctx)?;
        let issued = service.link_external_identity(&link_token, secret(password), request).await?;
        Ok(started(ctx, service, request, issued, refresh_token_in))
    }

    /// Unlinks the caller's sign-in with `provider`; `false` if none was
    /// linked. Refused when it is the account's only way in.
    #[graphql(guard = "AUTHENTICATED")]
    async fn unlink_identity(&self, ctx: &Context<'_>, provider: String) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.unlink_identity(request.require_caller()?, &provider).await?)
    }

    /// Starts turning on two-step login: a new TOTP secret for an
    /// authenticator app, pending until `confirmTotpEnrollment`.
    #[graphql(guard = "AUTHENTICATED")]
    async fn begin_totp_enrollment(&self, ctx: &Context<'_>) -> Result<TotpEnrollment> {
        let (service, request) = parts(ctx)?;
        let enrollment = service.begin_totp_enrollment(request.require_caller()?).await?;
        Ok(TotpEnrollment { secret: enrollment.secret, otpauth_uri: enrollment.otpauth_uri })
    }

    /// Turns two-step login on with a first code from the app; answers ten
    /// single-use recovery codes, shown this once.
    #[graphql(guard = "AUTHENTICATED")]
    async fn confirm_totp_enrollment(&self, ctx: &Context<'_>, #[graphql(secret)] code: String) -> Result<Vec<String>> {
        let (service, request) = parts(ctx)?;
        Ok(service.confirm_totp_enrollment(request.require_caller()?, &code).await?)
    }

    /// Turns two-step login off after checking the password; `false` if it was off.
    #[graphql(guard = "AUTHENTICATED")]
    async fn disable_mfa(&self, ctx: &Context<'_>, #[graphql(secret)] password: String) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.disable_mfa(request.require_caller()?, secret(password)).await?)
    }

    /// Rotates the refresh token (from the argument, else from the cookie)
    /// and answers the way it came: argument → body, cookie → cookie.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: Option<String>,
    ) -> Result<AuthPayload> {
        let (service, request) = parts(ctx)?;
        let (token, transport) = match (refresh_token, &request.refresh_cookie) {
            (Some(token), _) => (token, TokenTransport::Body),
            (None, Some(cookie)) => (cookie.clone(), TokenTransport::Cookie),
            (None, None) => return Err(AuthError::InvalidRefreshToken.into()),
        };
        match service.refresh(&token).await {
            Ok(issued) => Ok(deliver(ctx, service, issued, transport)),
            Err(error) => {
                if transport == TokenTransport::Cookie {
                    // A dead cookie is useless to the browser: clear it.
                    ctx.append_http_header("set-cookie", refresh_cookie(&service.settings().tokens.cookie_name, None));
                }
                Err(error.into())
            }
        }
    }

    /// Ends the session of the refresh token (from the argument, else the
    /// cookie, else the caller's current session) and clears the cookie.
    async fn logout(&self, ctx: &Context<'_>, #[graphql(secret)] refresh_token: Option<String>) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        let from_cookie = refresh_token.is_none() && request.refresh_cookie.is_some();
        let token = refresh_token.or_else(|| request.refresh_cookie.clone());
        if from_cookie {
            ctx.append_http_header("set-cookie", refresh_cookie(&service.settings().tokens.cookie_name, None));
        }
        Ok(service.logout(token.as_deref(), request).await?)
    }

    /// Ends every session of the caller; answers how many.
    #[graphql(guard = "AUTHENTICATED")]
    async fn logout_all(&self, ctx: &Context<'_>) -> Result<i32> {
        let (service, request) = parts(ctx)?;
        Ok(service.logout_all(request.require_caller()?).await?)
    }

    /// Ends one of the caller's own sessions; `false` if there is no such session.
    #[graphql(guard = "AUTHENTICATED")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.revoke_session(request.require_caller()?, &id).await?)
    }

    /// Changes the caller's password and ends every other session.
    #[graphql(guard = "AUTHENTICATED")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current_password: String,
        #[graphql(secret)] new_password: String,
    ) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.change_password(request.require_caller()?, secret(current_password), secret(new_password)).await?)
    }

    /// Mails a reset token if the account exists. Always answers `true`.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.request_password_reset(&email, request).await?)
    }

    /// Redeems a reset token, sets the password and ends every session.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] token: String,
        #[graphql(secret)] new_password: String,
    ) -> Result<bool> {
        let (service, _) = parts(ctx)?;
        Ok(service.reset_password(&token, secret(new_password)).await?)
    }

    /// Sets a user's roles (the highest one counts). ADMIN grants up to ADMIN
    /// and cannot touch a SYS_ADMIN; only SYS_ADMIN grants SYS_ADMIN.
    #[graphql(guard = "ADMIN")]
    async fn set_user_roles(&self, ctx: &Context<'_>, user_id: ID, roles: Vec<Role>) -> Result<User> {
        let (service, request) = parts(ctx)?;
        let account = service.set_user_roles(request.require_caller()?, parse_user_id(&user_id)?, &roles).await?;
        Ok(User::new(account))
    }

    /// Enables or disables an account; disabling ends its sessions.
    #[graphql(guard = "ADMIN")]
    async fn set_user_active(&self, ctx: &Context<'_>, user_id: ID, active: bool) -> Result<User> {
        let (service, request) = parts(ctx)?;
        let account = service.set_user_active(request.require_caller()?, parse_user_id(&user_id)?, active).await?;
        Ok(User::new(account))
    }

    /// Deletes the caller's account after checking the password.
    #[graphql(guard = "AUTHENTICATED")]
    async fn delete_account(&self, ctx: &Context<'_>, #[graphql(secret)] password: String) -> Result<bool> {
        let (service, request) = parts(ctx)?;
        Ok(service.delete_account(request.require_caller()?, secret(password)).await?)
    }
}
