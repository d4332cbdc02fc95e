//! What the auth service runs with: [`AuthConfig`] resolved once at start-up.
//!
//! Request code reads only these types; it never looks at raw configuration.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use gatehouse_common::dev_secrets;
use gatehouse_common::identity::IdentityCodec;
use gatehouse_common::settings::{require_strong_secret, Environment, SharedSettings};

use crate::config::AuthConfig;
use crate::credentials::HashParams;

/// Token and session lifetimes.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_idle_ttl: Duration,
    pub refresh_absolute_ttl: Duration,
    pub refresh_grace: Duration,
    pub cookie_name: String,
    /// The device cookie (see [`crate::devices`]).
    pub device_cookie_name: String,
}

/// One fixed-window limit: at most `max` events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

/// Every rate limit the service applies.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub login_per_account: Limit,
    pub login_per_ip: Limit,
    /// Per client IP, on an account past `login_per_account`.
    pub login_locked_per_ip: Limit,
    pub verify_per_email: Limit,
    pub resend_per_email: Limit,
    pub reset_per_email: Limit,
    pub mail_per_ip: Limit,
    /// Second-factor codes per account.
    pub mfa_per_account: Limit,
}

/// Where outgoing mail goes.
#[derive(Debug, Clone)]
pub enum MailTransportKind {
    Smtp(String),
    Folder(PathBuf),
}

/// The auth service's runtime settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub environment: Environment,
    pub tokens: TokenSettings,
    pub refresh_secret: SecretString,
    pub identity: IdentityCodec,
    pub hash: HashParams,
    pub hash_concurrency: usize,
    pub verification_ttl: Duration,
    pub verification_max_attempts: i32,
    pub reset_ttl: Duration,
    pub limits: RateLimits,
    /// Lifetime of the `mfaToken` between a login's password and its second factor.
    pub mfa_ticket_ttl: Duration,
    /// The issuer name in `otpauth://` URIs.
    pub totp_issuer: String,
    /// Outside OpenID providers people may sign in with.
    pub oidc_providers: Vec<crate::external::ExternalProviderSpec>,
    pub trusted_proxy_hops: usize,
    pub mail: MailTransportKind,
    pub mail_from: String,
    pub mail_poll: Duration,
    pub jwks_max_age: Duration,
    pub max_body_bytes: usize,
    /// How long a whole request body may take to arrive.
    pub body_read_timeout: Duration,
    pub redis_key_prefix: String,
    /// NATS Core subject of session-revocation notices.
    pub revocation_subject: String,
    /// Where live account notices are published ([`gatehouse_common::live`]).
    pub live_subject: String,
}

impl AuthSettings {
    /// Resolves the configuration, generating development secrets and
    /// refusing what production must not run with.
    pub fn resolve(config: &AuthConfig, shared: &SharedSettings) -> anyhow::Result<Self> {
        let production = shared.environment == Environment::Production;
        let refresh_secret = match (&config.refresh_secret, production) {
            (Some(secret), true) => {
                require_strong_secret("AUTH_REFRESH_SECRET", secret)?;
                secret.clone()
            }
            (Some(secret), false) => secret.clone(),
            (None, true) => anyhow::bail!("AUTH_REFRESH_SECRET is required in production"),
            (None, false) => dev_secrets::load_or_create(&shared.dev_dir, "refresh-secret")?,
        };
        // The issuer is public: it is in every token and names the discovery
        // document, so production serves it over HTTPS only.
        if production && !config.issuer.starts_with("https://") {
            anyhow::bail!("AUTH_ISSUER must be an https:// URL in production");
        }
        if !config.refresh_cookie_name.starts_with("__Host-") {
            anyhow::bail!("AUTH_REFRESH_COOKIE_NAME must start with __Host-");
        }
        if !config.device_cookie_name.starts_with("__Host-") || config.device_cookie_name == config.refresh_cookie_name
        {
            anyhow::bail!("AUTH_DEVICE_COOKIE_NAME must start with __Host- and differ from AUTH_REFRESH_COOKIE_NAME");
        }
        if config.access_token_ttl_secs == 0
            || config.refresh_idle_ttl_secs == 0
            || config.refresh_absolute_ttl_secs == 0
        {
            anyhow::bail!("token lifetimes must be positive");
        }
        let hash = HashParams {
            memory_kib: config.argon2_memory_kib,
            iterations: config.argon2_iterations,
            parallelism: config.argon2_parallelism,
        };
        if production && !hash.meets_owasp_minimum() {
            anyhow::bail!(
                "argon2id parameters below the OWASP minimum (m=19456 KiB, t=2, p=1) are refused in production"
            );
        }
        let mail = match (&config.smtp_url, production) {
            (Some(url), _) => MailTransportKind::Smtp(url.clone()),
            (None, true) => anyhow::bail!("SMTP_URL is required in production"),
            (None, false) => {
                MailTransportKind::Folder(config.mail_dir.clone().unwrap_or_else(|| shared.dev_dir.join("mail")))
            }
        };
        let window = Duration::from_secs(config.rate_window_secs.max(1));
        let limit = |max| Limit { max, window };
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            environment: shared.environment,
            tokens: TokenSettings {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                access_ttl: Duration::from_secs(config.access_token_ttl_secs),
                refresh_idle_ttl: Duration::from_secs(config.refresh_idle_ttl_secs),
                refresh_absolute_ttl: Duration::from_secs(config.refresh_absolute_ttl_secs),
                refresh_grace: Duration::from_secs(config.refresh_grace_secs),
                cookie_name: config.refresh_cookie_name.clone(),
                device_cookie_name: config.device_cookie_name.clone(),
            },
            refresh_secret,
            identity: IdentityCodec::new(&shared.identity_secret, config.identity_max_age_secs),
            hash,
            hash_concurrency: config.hash_concurrency.unwrap_or(cpus).max(1),
            verification_ttl: Duration::from_secs(config.verification_ttl_secs),
            verification_max_attempts: config.verification_max_attempts.max(1),
            reset_ttl: Duration::from_secs(config.reset_ttl_secs),
            limits: RateLimits {
                login_per_account: limit(config.login_limit_per_account),
                login_per_ip: limit(config.login_limit_per_ip),
                login_locked_per_ip: limit(config.login_limit_locked_per_ip),
                verify_per_email: limit(config.verify_limit),
                resend_per_email: limit(config.resend_limit),
                reset_per_email: limit(config.reset_limit),
                mail_per_ip: limit(config.mail_limit_per_ip),
                mfa_per_account: limit(config.mfa_limit),
            },
            mfa_ticket_ttl: Duration::from_secs(config.mfa_token_ttl_secs.max(1)),
            totp_issuer: config.totp_issuer.clone(),
            oidc_providers: {
                let mut names = std::collections::HashSet::new();
                if let Some(twice) = config.oidc_providers.iter().find(|p| !names.insert(p.name.as_str())) {
                    anyhow::bail!("AUTH_OIDC_PROVIDERS names {:?} twice", twice.name);
                }
                config.oidc_providers.clone()
            },
            trusted_proxy_hops: config.trusted_proxy_hops,
            mail,
            mail_from: config.mail_from.clone(),
            mail_poll: Duration::from_secs(config.mail_poll_secs.max(1)),
            jwks_max_age: Duration::from_secs(config.jwks_max_age_secs),
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.listener.limits().body_read_timeout,
            redis_key_prefix: shared.redis_key_prefix.clone(),
            revocation_subject: shared.revocation_subject(),
            live_subject: shared.live_subject(),
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn production() -> SharedSettings {
        let mut shared = SharedSettings::for_tests("p:", "S", "s");
        shared.environment = Environment::Production;
        shared
    }

    fn strong(value: &str) -> Option<SecretString> {
        Some(SecretString::from(value.to_owned()))
    }

    fn production_config() -> AuthConfig {
        AuthConfig {
            issuer: "https://auth.example.com".into(),
            refresh_secret: strong("Zq8vJ3kP0wX7nR2mL5tY9cB4hG6dF1sA-refresh"),
            smtp_url: Some("smtp://mail.example.com:25".into()),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn production_accepts_its_own_secrets_and_an_smtp_server() {
        assert!(AuthSettings::resolve(&production_config(), &production()).is_ok());
    }

    #[test]
    fn production_refuses_a_plain_http_issuer() {
        let config = AuthConfig { issuer: "http://auth.example.com".into(), ..production_config() };
        let error = AuthSettings::resolve(&config, &production()).unwrap_err().to_string();
        assert!(error.contains("AUTH_ISSUER must be an https:// URL"), "{error}");
    }

    #[test]
    fn production_refuses_missing_development_and_short_refresh_secrets() {
        for secret in [None, strong("dev-only-0123456789012345678901234567890123"), strong("short")] {
            let config = AuthConfig { refresh_secret: secret, ..production_config() };
            assert!(AuthSettings::resolve(&config, &production()).is_err());
        }
    }

    #[test]
    fn production_refuses_weak_argon2_parameters_and_a_missing_smtp_server() {
        let weak = AuthConfig { argon2_memory_kib: 4096, ..production_config() };
        assert!(AuthSettings::resolve(&weak, &production()).is_err());
        let no_smtp = AuthConfig { smtp_url: None, ..production_config() };
        assert!(AuthSettings::resolve(&no_smtp, &production()).is_err());
    }

    #[test]
    fn the_refresh_cookie_must_be_a_host_cookie() {
        let config = AuthConfig { refresh_cookie_name: "refresh".into(), ..production_config() };
        assert!(AuthSettings::resolve(&config, &production()).is_err());
    }
}
