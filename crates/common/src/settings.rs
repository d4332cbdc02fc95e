//! Settings every service shares, parsed once from flags or environment.
//!
//! Raw settings ([`SharedConfig`]) are what the operator wrote; [`SharedSettings`]
//! is what services run with, after development secrets are filled in and the
//! production rules are checked.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::dev_secrets;
use crate::telemetry::LogFormat;

/// Development or production. Production refuses development keys and secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Parses a secret from a flag or variable without ever printing it.
pub fn parse_secret(value: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(SecretString::from(value.to_owned()))
}

/// Settings shared by the gateway and both subgraphs.
#[derive(Debug, Clone, clap::Args)]
pub struct SharedConfig {
    /// `development` or `production`. Default: development.
    #[arg(long = "env", env = "GATEHOUSE_ENV", value_enum, default_value = "development", global = true)]
    pub environment: Environment,

    /// Secret for the HMAC that signs the identity the gateway forwards to
    /// subgraphs. Default: generated under the dev folder in development;
    /// required (at least 32 characters) in production.
    #[arg(long, env = "GATEHOUSE_IDENTITY_SECRET", value_parser = parse_secret, hide_env_values = true, global = true)]
    pub identity_secret: Option<SecretString>,

    /// Redis URL (sessions, revocation, rate limits). Default: redis://127.0.0.1:6379.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", global = true)]
    pub redis_url: String,

    /// Prefix of every Redis key, so several deployments or tests share one Redis.
    /// Default: `gatehouse:`.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "gatehouse:", global = true)]
    pub redis_key_prefix: String,

    /// NATS URL (JetStream for account events). Default: nats://127.0.0.1:4222.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222", global = true)]
    pub nats_url: String,

    /// JetStream stream that carries account events. Default: AUTH_EVENTS.
    #[arg(long, env = "GATEHOUSE_EVENTS_STREAM", default_value = "AUTH_EVENTS", global = true)]
    pub events_stream: String,

    /// First token of every event subject (`<prefix>.user.<type>`). Default: auth.
    #[arg(long, env = "GATEHOUSE_EVENTS_SUBJECT_PREFIX", default_value = "auth", global = true)]
    pub events_subject_prefix: String,

    /// Folder for development keys and secrets (git-ignored). Default: .dev.
    #[arg(long, env = "GATEHOUSE_DEV_DIR", default_value = ".dev", global = true)]
    pub dev_dir: PathBuf,

    /// Log format: `pretty` or `json`. Default: pretty. Filter with `RUST_LOG`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,
}

/// The shared settings services run with.
#[derive(Debug, Clone)]
pub struct SharedSettings {
    pub environment: Environment,
    pub identity_secret: SecretString,
    pub redis_url: String,
    pub redis_key_prefix: String,
    pub nats_url: String,
    pub events_stream: String,
    pub events_subject_prefix: String,
    pub dev_dir: PathBuf,
}

/// A setting that production refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl SharedConfig {
    /// Fills in development secrets and applies the production rules.
    pub fn resolve(&self) -> Result<SharedSettings, ConfigError> {
        let identity_secret = match (&self.identity_secret, self.environment) {
            (Some(secret), Environment::Production) => {
                require_strong_secret("GATEHOUSE_IDENTITY_SECRET", secret)?;
                secret.clone()
            }
            (Some(secret), Environment::Development) => secret.clone(),
            (None, Environment::Production) => {
                return Err(ConfigError("GATEHOUSE_IDENTITY_SECRET is required in production".into()))
            }
            (None, Environment::Development) => {
                dev_secrets::load_or_create(&self.dev_dir, "identity-secret").map_err(|e| {
                    ConfigError(format!("cannot keep development secrets in {}: {e}", self.dev_dir.display()))
                })?
            }
        };
        Ok(SharedSettings {
            environment: self.environment,
            identity_secret,
            redis_url: self.redis_url.clone(),
            redis_key_prefix: self.redis_key_prefix.clone(),
            nats_url: self.nats_url.clone(),
            events_stream: self.events_stream.clone(),
            events_subject_prefix: self.events_subject_prefix.clone(),
            dev_dir: self.dev_dir.clone(),
        })
    }
}

/// Production secrets must be long and must not be a development secret.
pub fn require_strong_secret(name: &str, secret: &SecretString) -> Result<(), ConfigError> {
    let value = secret.expose_secret();
    if value.len() < 32 {
        return Err(ConfigError(format!("{name} must be at least 32 characters in production")));
    }
    if value.starts_with(dev_secrets::DEV_PREFIX) || value.contains("change-me") {
        return Err(ConfigError(format!("{name} is a development or example secret; production needs its own")));
    }
    Ok(())
}

impl SharedSettings {
    /// Settings for tests: a fixed identity secret and the local services.
    pub fn for_tests(redis_key_prefix: &str, events_stream: &str, events_subject_prefix: &str) -> Self {
        Self {
            environment: Environment::Development,
            identity_secret: SecretString::from("test-identity-secret-0123456789abcdef".to_owned()),
            redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            redis_key_prefix: redis_key_prefix.to_owned(),
            nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            events_stream: events_stream.to_owned(),
            events_subject_prefix: events_subject_prefix.to_owned(),
            dev_dir: std::env::temp_dir().join("gatehouse-test-dev"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_short_and_development_secrets() {
        let short = SecretString::from("short".to_owned());
        assert!(require_strong_secret("X", &short).is_err());
        let dev = SecretString::from(format!("{}{}", dev_secrets::DEV_PREFIX, "a".repeat(40)));
        assert!(require_strong_secret("X", &dev).is_err());
        let example = SecretString::from("change-me-change-me-change-me-change-me".to_owned());
        assert!(require_strong_secret("X", &example).is_err());
        let good = SecretString::from("Zq8vJ3kP0wX7nR2mL5tY9cB4hG6dF1sA-longer".to_owned());
        assert!(require_strong_secret("X", &good).is_ok());
    }
}
