//! Errors the auth service answers with, and how they reach clients.
//!
//! Every client error has a stable code that becomes `extensions.code`.
//! [`AuthError::Internal`] carries the cause for the logs; clients only ever
//! see "internal error".

use std::time::Duration;

use async_graphql::ErrorExtensions;

use crate::domain::InvalidInput;
use crate::rate_limit::Exceeded;

/// A failure answered to the client. Deliberately not `Display`: the only
/// way out is [`From<AuthError> for async_graphql::Error`], which sets the
/// code and logs internal causes (async-graphql's blanket conversion for
/// `Display` types would drop both).
#[derive(Debug)]
pub enum AuthError {
    Unauthenticated,
    /// The caller's identity lacks a scope the field requires.
    UnauthorizedField,
    Forbidden(&'static str),
    BadInput(InvalidInput),
    InvalidCredentials,
    EmailNotVerified,
    AccountDisabled,
    InvalidRefreshToken,
    RefreshTokenReused,
    /// The password was right and the account has a second factor: the
    /// login goes on with `completeMfaLogin(mfaToken:, code:)`.
    MfaRequired {
        mfa_token: String,
        expires_in: i64,
        methods: Vec<crate::mfa::MfaMethod>,
    },
    /// An `mfaToken` that is forged, expired or already used.
    InvalidMfaToken,
    /// A second-factor code that is wrong, expired or already used.
    InvalidMfaCode,
    /// TOTP is already on: turn it off (`disableMfa`) before enrolling again.
    MfaAlreadyEnabled,
    /// The `state` of an outside sign-in is unknown, expired or used.
    InvalidExternalLogin,
    /// The outside provider refused or answered something unusable (logged).
    ExternalLoginFailed,
    /// The provider gave no email, or one it has not verified.
    ExternalEmailNotVerified,
    /// The provider's verified email belongs to an account here: its owner
    /// must prove it with `linkExternalIdentity(linkToken:, password:)`.
    AccountLinkRequired {
        link_token: String,
        expires_in: i64,
    },
    /// A `linkToken` that is forged, expired or already used.
    InvalidLinkToken,
    RateLimited {
        retry_after: Duration,
    },
    /// A dependency (PostgreSQL, Redis) is down or overloaded: retryable.
    Unavailable(anyhow::Error),
    Internal(anyhow::Error),
}

impl AuthError {
    /// The message clients see.
    pub fn message(&self) -> String {
        match self {
            AuthError::Unauthenticated => "authentication required".into(),
            AuthError::UnauthorizedField => "not authorized to access this field".into(),
            AuthError::Forbidden(why) => (*why).into(),
            AuthError::BadInput(input) => format!("{}: {}", input.field, input.message),
            AuthError::InvalidCredentials => "invalid credentials".into(),
            AuthError::EmailNotVerified => "the email address is not verified".into(),
            AuthError::AccountDisabled => "the account is disabled".into(),
            AuthError::InvalidRefreshToken => "invalid refresh token".into(),
            AuthError::RefreshTokenReused => "refresh token reused; the session has been revoked".into(),
            AuthError::MfaRequired { .. } => {
                "a second factor is required: call completeMfaLogin with the mfaToken and a code".into()
            }
            AuthError::InvalidMfaToken => "the mfaToken is invalid, expired or already used; log in again".into(),
            AuthError::InvalidMfaCode => "the code is wrong, expired or already used".into(),
            AuthError::MfaAlreadyEnabled => "two-step login is already on; disable it first to enroll again".into(),
            AuthError::InvalidExternalLogin => "this sign-in expired or was already used; start it again".into(),
            AuthError::ExternalLoginFailed => "the sign-in provider did not confirm who you are; start again".into(),
            AuthError::ExternalEmailNotVerified => {
                "the sign-in provider has no verified email for you; verify it there first".into()
            }
            AuthError::AccountLinkRequired { .. } => {
                "an account with this email exists: prove it is yours with linkExternalIdentity and its password".into()
            }
            AuthError::InvalidLinkToken => "the linkToken is invalid, expired or already used; sign in again".into(),
            AuthError::RateLimited { .. } => "too many attempts; retry later".into(),
            AuthError::Unavailable(_) => "the service is briefly unavailable; retry shortly".into(),
            AuthError::Internal(_) => "internal error".into(),
        }
    }

    /// For logs: the message, and for internal errors the whole cause chain.
    pub fn log_line(&self) -> String {
        match self {
            AuthError::Internal(cause) | AuthError::Unavailable(cause) => format!("{cause:#}"),
            other => other.message(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unauthenticated => "UNAUTHENTICATED",
            AuthError::UnauthorizedField => "UNAUTHORIZED_FIELD_OR_TYPE",
            AuthError::Forbidden(_) => "FORBIDDEN",
            AuthError::BadInput(_) => "BAD_USER_INPUT",
            AuthError::InvalidCredentials => "INVALID_CREDENTIALS",
            AuthError::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            AuthError::AccountDisabled => "ACCOUNT_DISABLED",
            AuthError::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            AuthError::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            AuthError::MfaRequired { .. } => "MFA_REQUIRED",
            AuthError::InvalidMfaToken => "INVALID_MFA_TOKEN",
            AuthError::InvalidMfaCode => "INVALID_MFA_CODE",
            AuthError::MfaAlreadyEnabled => "MFA_ALREADY_ENABLED",
            AuthError::InvalidExternalLogin => "INVALID_EXTERNAL_LOGIN",
            AuthError::ExternalLoginFailed => "EXTERNAL_LOGIN_FAILED",
            AuthError::ExternalEmailNotVerified => "EXTERNAL_EMAIL_NOT_VERIFIED",
            AuthError::AccountLinkRequired { .. } => "ACCOUNT_LINK_REQUIRED",
            AuthError::InvalidLinkToken => "INVALID_LINK_TOKEN",
            AuthError::RateLimited { .. } => "RATE_LIMITED",
            AuthError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            AuthError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        AuthError::BadInput(InvalidInput::new(field, message))
    }
}

impl From<anyhow::Error> for AuthError {
    fn from(value: anyhow::Error) -> Self {
        AuthError::Internal(value)
    }
}

impl From<InvalidInput> for AuthError {
    fn from(value: InvalidInput) -> Self {
        AuthError::BadInput(value)
    }
}

impl From<Exceeded> for AuthError {
    fn from(value: Exceeded) -> Self {
        AuthError::RateLimited { retry_after: value.retry_after }
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(value: sqlx::Error) -> Self {
        use gatehouse_store::{classify_database_error, DatabaseFailure};
        match classify_database_error(&value) {
            DatabaseFailure::NulInInput => AuthError::bad_input("input", "must not contain NUL characters"),
            DatabaseFailure::Unavailable => AuthError::Unavailable(anyhow::Error::new(value).context("database")),
            DatabaseFailure::Other => AuthError::Internal(anyhow::Error::new(value).context("database")),
        }
    }
}

impl From<redis::RedisError> for AuthError {
    fn from(value: redis::RedisError) -> Self {
        if gatehouse_common::infra::is_redis_unavailable(&value) {
            AuthError::Unavailable(anyhow::Error::new(value).context("redis"))
        } else {
            AuthError::Internal(anyhow::Error::new(value).context("redis"))
        }
    }
}

impl From<AuthError> for async_graphql::Error {
    fn from(error: AuthError) -> Self {
        let code = error.code();
        match &error {
            AuthError::Internal(cause) => tracing::error!(error = %format!("{cause:#}"), "internal error"),
            AuthError::Unavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "a dependency is unavailable")
            }
            _ => {}
        }
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", code);
            match &error {
                AuthError::BadInput(input) => extensions.set("field", input.field),
                AuthError::MfaRequired { mfa_token, expires_in, methods } => {
                    extensions.set("mfaToken", mfa_token.as_str());
                    extensions.set("expiresIn", *expires_in);
                    let names = methods.iter().map(|m| async_graphql::Value::Enum(async_graphql::Name::new(m.name())));
                    extensions.set("methods", async_graphql::Value::List(names.collect()));
                }
                AuthError::AccountLinkRequired { link_token, expires_in } => {
                    extensions.set("linkToken", link_token.as_str());
                    extensions.set("expiresIn", *expires_in);
                }
                AuthError::RateLimited { retry_after } => {
                    // Whole seconds, rounded up, never 0.
                    let seconds = retry_after.as_millis().div_ceil(1000).max(1) as u64;
                    extensions.set("retryAfter", seconds);
                }
                _ => {}
            }
        })
    }
}

pub type AuthResult<T> = Result<T, AuthError>;
