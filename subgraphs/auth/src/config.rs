//! Settings of the auth service as the operator wrote them (flags or environment).
//!
//! [`AuthConfig`] is raw; [`crate::settings::AuthSettings`] is what the service
//! runs with, resolved once at start-up (secrets filled in, production rules applied).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use secrecy::SecretString;

use gatehouse_common::settings::parse_secret;

/// Auth service settings.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Auth subgraph")]
pub struct AuthConfig {
    /// Address the auth subgraph listens on. Default: 127.0.0.1:4001.
    #[arg(id = "auth-listen", long = "auth-listen", env = "AUTH_LISTEN", default_value = "127.0.0.1:4001")]
    pub listen: SocketAddr,

    /// The auth database (created if missing). Default: postgres://postgres@127.0.0.1:5432/gatehouse_auth.
    #[arg(
        id = "auth-database-url",
        long = "auth-database-url",
        env = "AUTH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/gatehouse_auth"
    )]
    pub database_url: String,

    /// Largest number of PostgreSQL connections the auth service opens. Default: 16.
    #[arg(
        id = "auth-database-max-connections",
        long = "auth-database-max-connections",
        env = "AUTH_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub database_max_connections: u32,

    /// Email of the seeded SYS_ADMIN. Default: admin@gatehouse.local.
    #[arg(
        id = "admin-email",
        long = "admin-email",
        env = "GATEHOUSE_ADMIN_EMAIL",
        default_value = "admin@gatehouse.local"
    )]
    pub admin_email: String,

    /// Password of the seeded SYS_ADMIN. Default in development: `gatehouse-admin-dev`;
    /// required in production.
    #[arg(id = "admin-password", long = "admin-password", env = "GATEHOUSE_ADMIN_PASSWORD", value_parser = parse_secret, hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// `iss` of access tokens; also the base of `/.well-known/openid-configuration`.
    /// Default: http://127.0.0.1:4001.
    #[arg(id = "auth-issuer", long = "auth-issuer", env = "AUTH_ISSUER", default_value = "http://127.0.0.1:4001")]
    pub issuer: String,

    /// `aud` of access tokens. Default: gatehouse.
    #[arg(id = "auth-audience", long = "auth-audience", env = "AUTH_AUDIENCE", default_value = "gatehouse")]
    pub audience: String,

    /// Access-token lifetime in seconds. Default: 900 (15 minutes).
    #[arg(
        id = "auth-access-token-ttl",
        long = "auth-access-token-ttl",
        env = "AUTH_ACCESS_TOKEN_TTL_SECS",
        default_value_t = 900
    )]
    pub access_token_ttl_secs: u64,

    /// A session ends when unused for this many seconds. Default: 604800 (7 days).
    #[arg(
        id = "auth-refresh-idle-ttl",
        long = "auth-refresh-idle-ttl",
        env = "AUTH_REFRESH_IDLE_TTL_SECS",
        default_value_t = 604_800
    )]
    pub refresh_idle_ttl_secs: u64,

    /// A session ends this many seconds after login, however often it is
    /// refreshed. Default: 2592000 (30 days).
    #[arg(
        id = "auth-refresh-absolute-ttl",
        long = "auth-refresh-absolute-ttl",
        env = "AUTH_REFRESH_ABSOLUTE_TTL_SECS",
        default_value_t = 2_592_000
    )]
    pub refresh_absolute_ttl_secs: u64,

    /// How long the refresh token just rotated away may still be presented
    /// (answering with the same successor) before it counts as reuse. Default: 10.
    #[arg(
        id = "auth-refresh-grace",
        long = "auth-refresh-grace",
        env = "AUTH_REFRESH_GRACE_SECS",
        default_value_t = 10
    )]
    pub refresh_grace_secs: u64,

    /// HS256 secret for refresh tokens (and the keyed hash of verification codes).
    /// Default: generated under the dev folder in development; required (32+
    /// characters) in production.
    #[arg(id = "auth-refresh-secret", long = "auth-refresh-secret", env = "AUTH_REFRESH_SECRET", value_parser = parse_secret, hide_env_values = true)]
    pub refresh_secret: Option<SecretString>,

    /// Name of the refresh-token cookie; must start with `__Host-`.
    /// Default: __Host-gatehouse-refresh.
    #[arg(
        id = "auth-refresh-cookie",
        long = "auth-refresh-cookie",
        env = "AUTH_REFRESH_COOKIE_NAME",
        default_value = "__Host-gatehouse-refresh"
    )]
    pub refresh_cookie_name: String,

    /// Name of the cookie that remembers a device that signed in to an
    /// account, so its owner gets in while strangers keep the account over
    /// its limit of wrong passwords; must start with `__Host-`.
    /// Default: __Host-gatehouse-device.
    #[arg(
        id = "auth-device-cookie",
        long = "auth-device-cookie",
        env = "AUTH_DEVICE_COOKIE_NAME",
        default_value = "__Host-gatehouse-device"
    )]
    pub device_cookie_name: String,

    /// A folder of PEM signing keys `current.pem`, `next.pem` and
    /// `previous.pem`, imported into the key ring in the auth database when
    /// that ring is empty (ignored after). Default: none.
    #[arg(id = "auth-keys-dir", long = "auth-keys-dir", env = "AUTH_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,

    /// The current signing key as PEM, imported like `AUTH_KEYS_DIR` (and
    /// taking its place when both are set). Default: none.
    #[arg(id = "auth-signing-key", long = "auth-signing-key", env = "AUTH_SIGNING_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub signing_key: Option<SecretString>,

    /// The next signing key as PEM, imported with `AUTH_SIGNING_KEY`. Default: none.
    #[arg(id = "auth-signing-key-next", long = "auth-signing-key-next", env = "AUTH_SIGNING_KEY_NEXT", value_parser = parse_secret, hide_env_values = true)]
    pub signing_key_next: Option<SecretString>,

    /// The previous signing key as PEM, imported with `AUTH_SIGNING_KEY`. Default: none.
    #[arg(id = "auth-signing-key-previous", long = "auth-signing-key-previous", env = "AUTH_SIGNING_KEY_PREVIOUS", value_parser = parse_secret, hide_env_values = true)]
    pub signing_key_previous: Option<SecretString>,

    /// Algorithm of the signing keys generated from now on (`RS256` or
    /// `ES256`); keys already in the ring keep theirs. Default: RS256.
    #[arg(
        id = "auth-signing-alg",
        long = "auth-signing-alg",
        env = "AUTH_SIGNING_ALG",
        value_enum,
        default_value = "RS256"
    )]
    pub signing_alg: crate::keys::Algorithm,

    /// Size of generated RSA keys in bits (2048, 3072 or 4096). Default: 3072.
    #[arg(id = "auth-rsa-key-bits", long = "auth-rsa-key-bits", env = "AUTH_RSA_KEY_BITS", default_value_t = 3072)]
    pub rsa_key_bits: u32,

    /// How often (seconds) each auth replica re-reads the key ring from the
    /// database, so `gatehouse keys rotate` takes effect without a restart. A
    /// rotation waits this long (plus the JWKS cache age) after the next key
    /// was published. 0 disables. Default: 30.
    #[arg(id = "auth-keys-reload", long = "auth-keys-reload", env = "AUTH_KEYS_RELOAD_SECS", default_value_t = 30)]
    pub keys_reload_secs: u64,

    /// `Cache-Control: max-age` of `/.well-known/jwks.json`, in seconds. Default: 300.
    #[arg(id = "auth-jwks-max-age", long = "auth-jwks-max-age", env = "AUTH_JWKS_MAX_AGE_SECS", default_value_t = 300)]
    pub jwks_max_age_secs: u64,

    /// Argon2id memory cost in KiB. Default: 19456 (OWASP minimum).
    #[arg(
        id = "auth-argon2-memory-kib",
        long = "auth-argon2-memory-kib",
        env = "AUTH_ARGON2_MEMORY_KIB",
        default_value_t = 19_456
    )]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations. Default: 2 (OWASP minimum).
    #[arg(
        id = "auth-argon2-iterations",
        long = "auth-argon2-iterations",
        env = "AUTH_ARGON2_ITERATIONS",
        default_value_t = 2
    )]
    pub argon2_iterations: u32,

    /// Argon2id parallelism. Default: 1.
    #[arg(
        id = "auth-argon2-parallelism",
        long = "auth-argon2-parallelism",
        env = "AUTH_ARGON2_PARALLELISM",
        default_value_t = 1
    )]
    pub argon2_parallelism: u32,

    /// Password hashes computed at once; the rest queue, so a login burst
    /// cannot exhaust memory or starve the runtime. Default: the number of CPUs.
    #[arg(id = "auth-hash-concurrency", long = "auth-hash-concurrency", env = "AUTH_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Lifetime of an email-verification code in seconds. Default: 900.
    #[arg(
        id = "auth-verification-ttl",
        long = "auth-verification-ttl",
        env = "AUTH_VERIFICATION_TTL_SECS",
        default_value_t = 900
    )]
    pub verification_ttl_secs: u64,

    /// Wrong tries allowed per verification code before a new one is needed. Default: 5.
    #[arg(
        id = "auth-verification-max-attempts",
        long = "auth-verification-max-attempts",
        env = "AUTH_VERIFICATION_MAX_ATTEMPTS",
        default_value_t = 5
    )]
    pub verification_max_attempts: i32,

    /// Lifetime of a password-reset token in seconds. Default: 1800.
    #[arg(id = "auth-reset-ttl", long = "auth-reset-ttl", env = "AUTH_RESET_TTL_SECS", default_value_t = 1800)]
    pub reset_ttl_secs: u64,

    /// Window of every rate limit, in seconds. Default: 900.
    #[arg(id = "auth-rate-window", long = "auth-rate-window", env = "AUTH_RATE_WINDOW_SECS", default_value_t = 900)]
    pub rate_window_secs: u64,

    /// Login attempts per account (email or username) per window. Default: 10.
    #[arg(
        id = "auth-login-limit-account",
        long = "auth-login-limit-account",
        env = "AUTH_LOGIN_LIMIT_PER_ACCOUNT",
        default_value_t = 10
    )]
    pub login_limit_per_account: u64,

    /// Login attempts per client IP per window. Default: 100.
    #[arg(
        id = "auth-login-limit-ip",
        long = "auth-login-limit-ip",
        env = "AUTH_LOGIN_LIMIT_PER_IP",
        default_value_t = 100
    )]
    pub login_limit_per_ip: u64,

    /// Login attempts each client IP may still make, per window, on an
    /// account past `AUTH_LOGIN_LIMIT_PER_ACCOUNT` wrong passwords (a device
    /// that signed in to it before gets `AUTH_LOGIN_LIMIT_PER_ACCOUNT` of its
    /// own instead), so strangers cannot lock its owner out. 0 locks the
    /// account for everyone but its known devices. Default: 3.
    #[arg(
        id = "auth-login-limit-locked-ip",
        long = "auth-login-limit-locked-ip",
        env = "AUTH_LOGIN_LIMIT_LOCKED_PER_IP",
        default_value_t = 3
    )]
    pub login_limit_locked_per_ip: u64,

    /// `verifyEmail` attempts per email per window. Default: 10.
    #[arg(id = "auth-verify-limit", long = "auth-verify-limit", env = "AUTH_VERIFY_LIMIT", default_value_t = 10)]
    pub verify_limit: u64,

    /// Second-factor codes (`completeMfaLogin`, `confirmTotpEnrollment`) per
    /// account per window; right or wrong, each counts. Default: 10.
    #[arg(id = "auth-mfa-limit", long = "auth-mfa-limit", env = "AUTH_MFA_LIMIT", default_value_t = 10)]
    pub mfa_limit: u64,

    /// How long the `mfaToken` of a login waiting for its second factor
    /// lasts, in seconds. Default: 300.
    #[arg(
        id = "auth-mfa-token-ttl",
        long = "auth-mfa-token-ttl",
        env = "AUTH_MFA_TOKEN_TTL_SECS",
        default_value_t = 300
    )]
    pub mfa_token_ttl_secs: u64,

    /// Outside OpenID providers people may sign in with, repeatable
    /// (comma-separated in the environment), each `NAME issuer=URL
    /// client_id=ID [client_secret=SECRET] redirect=URL… [scopes=openid+email+profile]`;
    /// `externalLoginUrl` accepts only the listed redirect URIs. Default: none.
    #[arg(
        id = "auth-oidc-provider",
        long = "auth-oidc-provider",
        env = "AUTH_OIDC_PROVIDERS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub oidc_providers: Vec<crate::external::ExternalProviderSpec>,

    /// The issuer name authenticator apps show beside the account. Default: Gatehouse.
    #[arg(id = "auth-totp-issuer", long = "auth-totp-issuer", env = "AUTH_TOTP_ISSUER", default_value = "Gatehouse")]
    pub totp_issuer: String,

    /// Verification mails (sign-up and resend) per email per window. Default: 3.
    #[arg(id = "auth-resend-limit", long = "auth-resend-limit", env = "AUTH_RESEND_LIMIT", default_value_t = 3)]
    pub resend_limit: u64,

    /// Password-reset requests per email per window. Default: 3.
    #[arg(id = "auth-reset-limit", long = "auth-reset-limit", env = "AUTH_RESET_LIMIT", default_value_t = 3)]
    pub reset_limit: u64,

    /// Requests that send mail (sign-up, resend, reset) per client IP per window. Default: 30.
    #[arg(
        id = "auth-mail-limit-ip",
        long = "auth-mail-limit-ip",
        env = "AUTH_MAIL_LIMIT_PER_IP",
        default_value_t = 30
    )]
    pub mail_limit_per_ip: u64,

    /// Proxies in front of this service that append to `X-Forwarded-For`
    /// (the gateway counts as one). 0 means the client IP is the connection's
    /// peer and the header is ignored. Default: 0.
    #[arg(
        id = "auth-trusted-proxy-hops",
        long = "auth-trusted-proxy-hops",
        env = "AUTH_TRUSTED_PROXY_HOPS",
        default_value_t = 0
    )]
    pub trusted_proxy_hops: usize,

    /// Oldest (seconds) a forwarded identity header may be. Default: 30.
    #[arg(
        id = "auth-identity-max-age",
        long = "auth-identity-max-age",
        env = "AUTH_IDENTITY_MAX_AGE_SECS",
        default_value_t = 30
    )]
    pub identity_max_age_secs: i64,

    /// SMTP server for outgoing mail, e.g. `smtp://127.0.0.1:1025` or
    /// `smtps://user:pass@mail.example.com`. Default: none (development writes
    /// `.eml` files instead; production requires it).
    #[arg(id = "smtp-url", long = "smtp-url", env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Folder for `.eml` files when no SMTP server is configured (development
    /// only). Default: `<dev dir>/mail`.
    #[arg(id = "auth-mail-dir", long = "auth-mail-dir", env = "AUTH_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,

    /// `From:` of outgoing mail. Default: Gatehouse <no-reply@gatehouse.local>.
    #[arg(
        id = "auth-mail-from",
        long = "auth-mail-from",
        env = "AUTH_MAIL_FROM",
        default_value = "Gatehouse <no-reply@gatehouse.local>"
    )]
    pub mail_from: String,

    /// How often (seconds) the mail sender looks for due mail when nothing
    /// woke it. Default: 5.
    #[arg(id = "auth-mail-poll", long = "auth-mail-poll", env = "AUTH_MAIL_POLL_SECS", default_value_t = 5)]
    pub mail_poll_secs: u64,

    /// Largest accepted request body in bytes. Default: 65536.
    #[arg(
        id = "auth-max-body-bytes",
        long = "auth-max-body-bytes",
        env = "AUTH_MAX_BODY_BYTES",
        default_value_t = 65_536
    )]
    pub max_body_bytes: usize,

    /// Connection limit and client timeouts.
    #[command(flatten)]
    pub listener: AuthListenerArgs,
}

gatehouse_listener::listener_args!(
    AuthListenerArgs,
    service = "auth",
    heading = "Auth subgraph",
    env = "AUTH",
    id = "auth",
    long = "auth-",
    max_connections = 1000
);

/// The development SYS_ADMIN password, printed at start-up; production refuses it.
pub const DEV_ADMIN_PASSWORD: &str = "gatehouse-admin-dev";

impl Default for AuthConfig {
    /// Every field at its default (environment variables still apply).
    fn default() -> Self {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: AuthConfig,
        }
        Wrapper::parse_from(["auth"]).config
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        shared: gatehouse_common::settings::SharedConfig,
        #[command(flatten)]
        auth: super::AuthConfig,
    }

    #[test]
    fn the_flags_are_well_formed_next_to_the_shared_ones() {
        Cli::command().debug_assert();
    }
}
