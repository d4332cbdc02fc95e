//! Errors the users API can return, each with a stable `extensions.code`.
//!
//! Client errors say what the caller can fix. Internal errors are logged with
//! their cause chain and reach the client only as `INTERNAL_SERVER_ERROR`.

use async_graphql::ErrorExtensions;

use crate::domain::InvalidInput;

/// An error a resolver returns.
///
/// Deliberately not `Display`: async-graphql converts any `Display` type into
/// an error *without* a code, so `?` on an `ApiError` must go through the
/// conversion below, which adds one.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden,
    BadUserInput {
        field: Option<&'static str>,
        message: String,
    },
    AccountDisabled,
    /// A subscriber fell too far behind the live events: its subscription
    /// ends rather than keep them without bound.
    SlowConsumer,
    /// The database is down or overloaded: retryable.
    Unavailable(anyhow::Error),
    /// Logged with its cause chain; the client sees only "internal error".
    Internal(anyhow::Error),
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::AccountDisabled => "ACCOUNT_DISABLED",
            ApiError::SlowConsumer => "SLOW_CONSUMER",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The client-safe message.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => "authentication required".into(),
            ApiError::Forbidden => "not allowed".into(),
            ApiError::BadUserInput { message, .. } => message.clone(),
            ApiError::AccountDisabled => "this account is disabled".into(),
            ApiError::SlowConsumer => "the subscriber fell too far behind; subscribe again".into(),
            ApiError::Unavailable(_) => "the service is briefly unavailable; retry shortly".into(),
            ApiError::Internal(_) => "internal error".into(),
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        ApiError::BadUserInput { field: None, message: message.into() }
    }
}

impl From<InvalidInput> for ApiError {
    fn from(invalid: InvalidInput) -> Self {
        ApiError::BadUserInput { field: Some(invalid.field), message: invalid.to_string() }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        use gatehouse_store::{classify_database_error, DatabaseFailure};
        match classify_database_error(&error) {
            DatabaseFailure::NulInInput => ApiError::bad_input("text values must not contain NUL characters"),
            DatabaseFailure::Unavailable => ApiError::Unavailable(error.into()),
            DatabaseFailure::Other => ApiError::Internal(error.into()),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        match &error {
            ApiError::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "users API internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(error = format!("{cause:#}"), "the database is unavailable"),
            _ => {}
        }
        let code = error.code();
        let field = match &error {
            ApiError::BadUserInput { field, .. } => *field,
            _ => None,
        };
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", code);
            if let Some(field) = field {
                extensions.set("field", field);
            }
        })
    }
}
