//! Settings every service shares, parsed once from flags or environment.
//!
//! Raw settings ([`SharedConfig`]) are what the operator wrote; [`SharedSettings`]
//! is what services run with, after development secrets are filled in and the
//! production rules are checked.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::dev_secrets;
pub use crate::redis_conn::{RedisMode, RedisSettings};
use crate::telemetry::{LogFormat, OtlpConfig, OtlpProtocol};

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
#[command(next_help_heading = "Every service")]
pub struct SharedConfig {
    /// `development` or `production`. Default: development.
    #[arg(long = "env", env = "GATEHOUSE_ENV", value_enum, default_value = "development", global = true)]
    pub environment: Environment,

    /// Secret for the HMAC that signs the identity the gateway forwards to
    /// subgraphs. Default: generated under the dev folder in development;
    /// required (at least 32 characters) in production.
    #[arg(long, env = "GATEHOUSE_IDENTITY_SECRET", value_parser = parse_secret, hide_env_values = true, global = true)]
    pub identity_secret: Option<SecretString>,

    /// Redis URL (sessions, revocation, rate limits); with `REDIS_MODE`
    /// `cluster` a comma-separated list of some of the cluster's nodes, with
    /// `sentinel` the list of sentinels. Default: redis://127.0.0.1:6379.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", global = true)]
    pub redis_url: String,

    /// How Redis is deployed: `standalone` (one server), `cluster` (Redis
    /// Cluster) or `sentinel` (a primary that Sentinel fails over). Default:
    /// standalone.
    #[arg(long, env = "REDIS_MODE", value_enum, default_value = "standalone", global = true)]
    pub redis_mode: RedisMode,

    /// With `REDIS_MODE=sentinel`, the name the sentinels know the primary
    /// by. Default: none.
    #[arg(long, env = "REDIS_SENTINEL_MASTER", global = true)]
    pub redis_sentinel_master: Option<String>,

    /// Prefix of every Redis key, so several deployments or tests share one
    /// Redis; without `{` or `}`, which would choose the keys' cluster slot.
    /// Default: `gatehouse:`.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "gatehouse:", value_parser = parse_key_prefix, global = true)]
    pub redis_key_prefix: String,

    /// NATS server URL (JetStream for account events), or a comma-separated
    /// list of them, as the nats CLI takes: the client connects to one and
    /// reconnects across the list. `tls://` requires TLS. Credentials may be
    /// in the URL (`nats://user:password@host`). Default: nats://127.0.0.1:4222.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222", global = true)]
    pub nats_url: String,

    /// A NATS credentials file (the user JWT and NKey seed that `nsc`
    /// writes). At most one of this, `NATS_NKEY_SEED`, `NATS_USER` and
    /// `NATS_TOKEN`. Default: none.
    #[arg(long, env = "NATS_CREDS_FILE", global = true)]
    pub nats_creds_file: Option<PathBuf>,

    /// A NATS NKey seed (`SU...`) to authenticate with. Default: none.
    #[arg(long, env = "NATS_NKEY_SEED", value_parser = parse_secret, hide_env_values = true, global = true)]
    pub nats_nkey_seed: Option<SecretString>,

    /// NATS user name, with `NATS_PASSWORD`. Default: none.
    #[arg(long, env = "NATS_USER", global = true)]
    pub nats_user: Option<String>,

    /// NATS password of `NATS_USER`. Default: none.
    #[arg(long, env = "NATS_PASSWORD", value_parser = parse_secret, hide_env_values = true, global = true)]
    pub nats_password: Option<SecretString>,

    /// NATS authentication token. Default: none.
    #[arg(long, env = "NATS_TOKEN", value_parser = parse_secret, hide_env_values = true, global = true)]
    pub nats_token: Option<SecretString>,

    /// PEM file of the certificate authorities that sign the NATS servers'
    /// certificates (besides the system's). Setting it requires TLS. Default: none.
    #[arg(long, env = "NATS_TLS_CA_FILE", global = true)]
    pub nats_tls_ca_file: Option<PathBuf>,

    /// PEM client certificate for NATS servers that require one (mutual
    /// TLS), with `NATS_TLS_KEY_FILE`. Default: none.
    #[arg(long, env = "NATS_TLS_CERT_FILE", global = true, requires = "nats_tls_key_file")]
    pub nats_tls_cert_file: Option<PathBuf>,

    /// PEM private key of `NATS_TLS_CERT_FILE`. Default: none.
    #[arg(long, env = "NATS_TLS_KEY_FILE", global = true, requires = "nats_tls_cert_file")]
    pub nats_tls_key_file: Option<PathBuf>,

    /// Refuse to talk to NATS without TLS. Default: false (on when a `tls://`
    /// URL or a CA or client certificate is given).
    #[arg(long, env = "NATS_TLS_REQUIRED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub nats_tls_required: bool,

    /// JetStream stream that carries account events. Default: AUTH_EVENTS.
    #[arg(long, env = "GATEHOUSE_EVENTS_STREAM", default_value = "AUTH_EVENTS", global = true)]
    pub events_stream: String,

    /// How many JetStream servers keep a copy of the events stream and its
    /// dead-letter stream: 1 on a single server, 3 (or 5) on a cluster, so
    /// the stream survives losing a server. A running stream is updated to
    /// it at start-up. Default: 1.
    #[arg(long, env = "GATEHOUSE_EVENTS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5), global = true)]
    pub events_replicas: u8,

    /// First token of every event subject (`<prefix>.user.<type>`). Default: auth.
    #[arg(long, env = "GATEHOUSE_EVENTS_SUBJECT_PREFIX", default_value = "auth", global = true)]
    pub events_subject_prefix: String,

    /// Folder for development secrets and files (git-ignored). Default: .dev.
    #[arg(long, env = "GATEHOUSE_DEV_DIR", default_value = ".dev", global = true)]
    pub dev_dir: PathBuf,

    /// Log format: `pretty` or `json`. Default: pretty. Filter with `RUST_LOG`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,

    /// OpenTelemetry collector to export traces to over OTLP, e.g.
    /// `http://127.0.0.1:4318` (HTTP) or `http://127.0.0.1:4317` (gRPC).
    /// Headers for it go in `OTEL_EXPORTER_OTLP_HEADERS`. Default: none
    /// (no traces exported, and nothing of OpenTelemetry runs).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint, global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// OTLP transport: `http/protobuf` (spans POSTed to `<endpoint>/v1/traces`)
    /// or `grpc` (plain HTTP/2). Default: http/protobuf.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum, default_value = "http/protobuf", global = true)]
    pub otel_exporter_otlp_protocol: OtlpProtocol,

    /// Share of new traces recorded, from 0 to 1; a request that arrives with
    /// a sampled `traceparent` is recorded as its caller decided. Default: 1.
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", value_parser = parse_ratio, default_value = "1", global = true)]
    pub otel_traces_sampler_arg: f64,

    /// `service.name` of the traces, for every service the process runs.
    /// Default: gatehouse-gateway, gatehouse-auth and gatehouse-users, each
    /// service its own, also inside one `gatehouse dev` process.
    #[arg(long, env = "OTEL_SERVICE_NAME", global = true)]
    pub otel_service_name: Option<String>,
}

/// An OTLP endpoint: an `http://` or `https://` URL.
fn parse_otlp_endpoint(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        // Set but empty, as a template's `OTEL_EXPORTER_OTLP_ENDPOINT=` leaves it: off.
        return Ok(String::new());
    }
    let url = url::Url::parse(value.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(value.trim().to_owned())
}

/// A sampling ratio from 0 to 1.
fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("must be a number from 0 to 1".into()),
    }
}

/// How to authenticate to NATS.
#[derive(Debug, Clone, Default)]
pub enum NatsAuth {
    /// None, or what the URL carries.
    #[default]
    None,
    CredsFile(PathBuf),
    NKey(SecretString),
    UserPassword(String, SecretString),
    Token(SecretString),
}

/// Where NATS is and how to reach it.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// One URL or a comma-separated list.
    pub url: String,
    pub auth: NatsAuth,
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key, for servers that require mutual TLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    pub tls_required: bool,
}

impl NatsSettings {
    /// The local server, no authentication (tests and development).
    pub fn plain(url: impl Into<String>) -> Self {
        Self { url: url.into(), auth: NatsAuth::None, tls_ca_file: None, tls_client: None, tls_required: false }
    }

    /// The servers of [`NatsSettings::url`], each trimmed, empty entries dropped.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|s| !s.is_empty())
    }
}

/// The shared settings services run with.
#[derive(Debug, Clone)]
pub struct SharedSettings {
    pub environment: Environment,
    pub identity_secret: SecretString,
    pub redis_url: String,
    pub redis_mode: RedisMode,
    pub redis_sentinel_master: Option<String>,
    pub redis_key_prefix: String,
    pub nats: NatsSettings,
    pub events_stream: String,
    pub events_replicas: u8,
    pub events_subject_prefix: String,
    pub dev_dir: PathBuf,
}

/// A setting that production refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl SharedConfig {
    /// Where Redis is and how it is deployed.
    pub fn redis(&self) -> RedisSettings {
        RedisSettings {
            url: self.redis_url.clone(),
            mode: self.redis_mode,
            sentinel_master: self.redis_sentinel_master.clone(),
        }
    }

    /// Where traces go, when an OTLP endpoint is set.
    pub fn otlp(&self) -> Option<OtlpConfig> {
        let endpoint = self.otel_exporter_otlp_endpoint.clone().filter(|e| !e.is_empty())?;
        Some(OtlpConfig {
            endpoint,
            protocol: self.otel_exporter_otlp_protocol,
            sample_ratio: self.otel_traces_sampler_arg,
            service_name: self.otel_service_name.clone().filter(|name| !name.trim().is_empty()),
        })
    }

    /// The NATS settings, refusing more than one way to authenticate.
    pub fn nats(&self) -> Result<NatsSettings, ConfigError> {
        let mut chosen = Vec::new();
        if let Some(path) = &self.nats_creds_file {
            chosen.push(("NATS_CREDS_FILE", NatsAuth::CredsFile(path.clone())));
        }
        if let Some(seed) = &self.nats_nkey_seed {
            chosen.push(("NATS_NKEY_SEED", NatsAuth::NKey(seed.clone())));
        }
        match (&self.nats_user, &self.nats_password) {
            (Some(user), Some(password)) => {
                chosen.push(("NATS_USER", NatsAuth::UserPassword(user.clone(), password.clone())))
            }
            (None, None) => {}
            _ => return Err(ConfigError("NATS_USER and NATS_PASSWORD go together".into())),
        }
        if let Some(token) = &self.nats_token {
            chosen.push(("NATS_TOKEN", NatsAuth::Token(token.clone())));
        }
        if chosen.len() > 1 {
            let names: Vec<&str> = chosen.iter().map(|(name, _)| *name).collect();
            return Err(ConfigError(format!("NATS takes one way to authenticate, not {}", names.join(" and "))));
        }
        let tls_client = self.nats_tls_cert_file.clone().zip(self.nats_tls_key_file.clone());
        let tls_url = self.nats_url.split(',').any(|url| url.trim().starts_with("tls://"));
        Ok(NatsSettings {
            url: self.nats_url.clone(),
            auth: chosen.pop().map(|(_, auth)| auth).unwrap_or_default(),
            tls_required: self.nats_tls_required || tls_url || self.nats_tls_ca_file.is_some() || tls_client.is_some(),
            tls_ca_file: self.nats_tls_ca_file.clone(),
            tls_client,
        })
    }

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
            redis_mode: self.redis_mode,
            redis_sentinel_master: self.redis_sentinel_master.clone(),
            redis_key_prefix: self.redis_key_prefix.clone(),
            nats: self.nats()?,
            events_stream: self.events_stream.clone(),
            events_replicas: self.events_replicas,
            events_subject_prefix: self.events_subject_prefix.clone(),
            dev_dir: self.dev_dir.clone(),
        })
    }
}

/// A Redis key prefix: any text but the hash-tag braces, which would put
/// every key in the prefix's one cluster slot.
fn parse_key_prefix(value: &str) -> Result<String, String> {
    if value.contains(['{', '}']) {
        return Err("must not contain `{` or `}` (they would choose every key's cluster slot)".into());
    }
    Ok(value.to_owned())
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
    /// `<events subject prefix>.session.revoked`: revocation notices, outside
    /// the events stream's `<prefix>.user.>` subjects, so they stay on NATS Core.
    pub fn revocation_subject(&self) -> String {
        format!("{}.session.revoked", self.events_subject_prefix)
    }

    /// `<events subject prefix>.live.account`: live account notices
    /// ([`crate::live`]), on NATS Core.
    pub fn live_subject(&self) -> String {
        crate::live::subject(&self.events_subject_prefix)
    }

    /// Where Redis is and how it is deployed.
    pub fn redis(&self) -> RedisSettings {
        RedisSettings {
            url: self.redis_url.clone(),
            mode: self.redis_mode,
            sentinel_master: self.redis_sentinel_master.clone(),
        }
    }

    /// The signer of account events and revocation notices on NATS.
    pub fn message_signer(&self) -> crate::signing::MessageSigner {
        crate::signing::MessageSigner::from_identity_secret(&self.identity_secret)
    }

    /// Settings for tests: a fixed identity secret and the local services.
    pub fn for_tests(redis_key_prefix: &str, events_stream: &str, events_subject_prefix: &str) -> Self {
        Self {
            environment: Environment::Development,
            identity_secret: SecretString::from("test-identity-secret-0123456789abcdef".to_owned()),
            redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            redis_mode: RedisMode::Standalone,
            redis_sentinel_master: None,
            redis_key_prefix: redis_key_prefix.to_owned(),
            nats: NatsSettings::plain(std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())),
            events_stream: events_stream.to_owned(),
            events_replicas: 1,
            events_subject_prefix: events_subject_prefix.to_owned(),
            dev_dir: std::env::temp_dir().join("gatehouse-test-dev"),
        }
    }
}

/// The name that starts a one-line list entry (a token provider, a sign-in
/// provider: `NAME key=value…`) and the words after it. A name is 1 to 32
/// lower-case letters, digits, `-` or `_`; `what` names the entry in errors
/// and `rest` says what follows the name.
pub fn entry_name<'a>(
    line: &'a str,
    what: &str,
    rest: &str,
) -> Result<(&'a str, std::str::SplitAsciiWhitespace<'a>), String> {
    let mut words = line.split_ascii_whitespace();
    let name = words.next().ok_or_else(|| format!("a {what} needs a name, then `{rest}`"))?;
    let name_ok = name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(format!(
            "{what} name {name:?}: the line starts with a name of up to 32 lower-case letters, digits, `-` or `_`"
        ));
    }
    Ok((name, words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        shared: SharedConfig,
    }

    fn nats(args: &[&str]) -> Result<NatsSettings, ConfigError> {
        Cli::try_parse_from(std::iter::once("gatehouse").chain(args.iter().copied()))
            .expect("flags parse")
            .shared
            .nats()
    }

    #[test]
    fn nats_takes_one_way_to_authenticate_and_tls_follows_its_settings() {
        let plain = nats(&[]).unwrap();
        assert!(matches!(plain.auth, NatsAuth::None) && !plain.tls_required);
        assert!(matches!(nats(&["--nats-token", "t"]).unwrap().auth, NatsAuth::Token(_)));
        assert!(matches!(
            nats(&["--nats-user", "u", "--nats-password", "p"]).unwrap().auth,
            NatsAuth::UserPassword(user, _) if user == "u"
        ));
        let both = nats(&["--nats-token", "t", "--nats-creds-file", "/x.creds"]).unwrap_err().to_string();
        assert!(both.contains("NATS_CREDS_FILE and NATS_TOKEN"), "{both}");
        assert!(nats(&["--nats-user", "u"]).unwrap_err().to_string().contains("go together"));
        assert!(nats(&["--nats-url", "tls://a:4222, nats://b:4222"]).unwrap().tls_required);
        assert!(nats(&["--nats-tls-ca-file", "/ca.pem"]).unwrap().tls_required);
        let listed = nats(&["--nats-url", "nats://a:4222, ,nats://b:4222"]).unwrap();
        assert_eq!(listed.servers().collect::<Vec<_>>(), ["nats://a:4222", "nats://b:4222"]);
    }

    #[test]
    fn redis_and_stream_settings_refuse_what_cannot_work() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("gatehouse").chain(args.iter().copied()));
        let defaults = parse(&[]).unwrap().shared;
        assert_eq!((defaults.redis_mode, defaults.events_replicas), (RedisMode::Standalone, 1));
        let cluster = parse(&["--redis-mode", "cluster", "--redis-url", "redis://a:1,redis://b:2"]).unwrap().shared;
        assert_eq!(cluster.redis().urls().count(), 2);
        assert!(!cluster.redis().legacy_keys());
        let sentinel = parse(&["--redis-mode", "sentinel", "--redis-sentinel-master", "gh"]).unwrap().shared;
        assert_eq!(sentinel.redis().sentinel_master.as_deref(), Some("gh"));
        for hostile in [
            &["--redis-mode", "replicated"][..],
            &["--redis-key-prefix", "app{1}:"],
            &["--redis-key-prefix", "}"],
            &["--events-replicas", "0"],
            &["--events-replicas", "6"],
            &["--events-replicas", "three"],
        ] {
            let error = parse(hostile).err().unwrap_or_else(|| panic!("{hostile:?} was accepted"));
            assert!(!error.to_string().is_empty());
        }
        let braces = parse(&["--redis-key-prefix", "a{b"]).err().unwrap().to_string();
        assert!(braces.contains("cluster slot"), "{braces}");
    }

    #[test]
    fn traces_are_exported_only_to_a_configured_endpoint() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("gatehouse").chain(args.iter().copied())).map(|cli| cli.shared.otlp())
        };
        assert_eq!(parse(&[]).unwrap(), None);
        let otlp =
            parse(&["--otel-exporter-otlp-endpoint", "http://collector:4317", "--otel-exporter-otlp-protocol", "grpc"])
                .unwrap()
                .unwrap();
        assert_eq!((otlp.protocol, otlp.sample_ratio, otlp.service_name), (OtlpProtocol::Grpc, 1.0, None));
        let otlp = parse(&["--otel-exporter-otlp-endpoint", "https://c", "--otel-traces-sampler-arg", "0.25"])
            .unwrap()
            .unwrap();
        assert_eq!((otlp.protocol, otlp.sample_ratio), (OtlpProtocol::HttpProtobuf, 0.25));
        assert!(parse(&["--otel-traces-sampler-arg", "1.5"]).is_err());
        assert!(parse(&["--otel-exporter-otlp-endpoint", "collector:4317"]).is_err());
        assert!(parse(&["--otel-exporter-otlp-protocol", "http/json"]).is_err());
    }

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
