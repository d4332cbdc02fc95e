//! Gateway configuration: the flags and `GATEWAY_*` variables ([`GatewayConfig`]),
//! compiled once at start-up into the runtime types request code reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use http::HeaderName;

use crate::header_rules::{Matcher, Rule};

/// The de-facto proxy header naming the client and each proxy on the way.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Gateway settings, read from flags or `GATEWAY_*` environment variables.
///
/// Per-subgraph settings use `NAME=VALUE` pairs where `NAME` is the subgraph
/// name from the supergraph's `@join__graph(name:)`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Gateway")]
pub struct GatewayConfig {
    /// The Federation v2 supergraph SDL to serve. Default `schema/supergraph.graphql`.
    /// The file is watched: a change (or SIGHUP) reloads it, and a supergraph that
    /// fails to load leaves the previous one serving.
    #[arg(
        id = "gateway-supergraph",
        long = "supergraph",
        env = "GATEWAY_SUPERGRAPH",
        default_value = "schema/supergraph.graphql"
    )]
    pub supergraph: PathBuf,

    /// Address to listen on (port 0 picks a free port). Default `127.0.0.1:4000`.
    #[arg(id = "gateway-listen", long = "listen", env = "GATEWAY_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,

    /// Subgraph URL overrides as `NAME=URL`, repeatable (comma-separated in the
    /// environment). Default: the URLs written in the supergraph.
    #[arg(id = "gateway-subgraph-url", long = "subgraph-url", env = "GATEWAY_SUBGRAPH_URLS", value_delimiter = ',')]
    pub subgraph_urls: Vec<String>,

    /// Timeout for one subgraph request, in milliseconds. Default 30000.
    #[arg(
        id = "gateway-subgraph-timeout-ms",
        long = "subgraph-timeout-ms",
        env = "GATEWAY_SUBGRAPH_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub subgraph_timeout_ms: u64,

    /// Per-subgraph timeout overrides as `NAME=MILLISECONDS`, repeatable
    /// (comma-separated in the environment). Default: none.
    #[arg(
        id = "gateway-subgraph-timeout",
        long = "subgraph-timeout",
        env = "GATEWAY_SUBGRAPH_TIMEOUTS",
        value_delimiter = ','
    )]
    pub subgraph_timeouts: Vec<String>,

    /// Largest request body a subgraph accepts, as `NAME=BYTES`, repeatable
    /// (comma-separated in the environment): a request to it that would be
    /// larger is refused at the gateway with `LIMIT_EXCEEDED`, naming the
    /// subgraph, instead of being sent. `gatehouse dev` sets it for auth and
    /// users from their own limits. Default: none.
    #[arg(
        id = "gateway-subgraph-max-request-bytes",
        long = "subgraph-max-request-bytes",
        env = "GATEWAY_SUBGRAPH_MAX_REQUEST_BYTES",
        value_delimiter = ','
    )]
    pub subgraph_max_request_bytes: Vec<String>,

    /// PEM certificate authorities trusted for every `https://` subgraph, on
    /// top of the system's (which honour `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`). Default: none.
    #[arg(id = "gateway-subgraph-ca-file", long = "subgraph-ca-file", env = "GATEWAY_SUBGRAPH_CA_FILE")]
    pub subgraph_ca_file: Option<PathBuf>,

    /// PEM certificate authorities trusted for one subgraph, as
    /// `NAME=PATH`, repeatable (comma-separated in the environment), on top
    /// of the system's and `GATEWAY_SUBGRAPH_CA_FILE`. Default: none.
    #[arg(
        id = "gateway-subgraph-ca-files",
        long = "subgraph-ca-files",
        env = "GATEWAY_SUBGRAPH_CA_FILES",
        value_delimiter = ','
    )]
    pub subgraph_ca_files: Vec<String>,

    /// PEM client certificate presented to `https://` subgraphs that require
    /// one (mutual TLS), with `GATEWAY_SUBGRAPH_CLIENT_KEY`. Default: none.
    #[arg(
        id = "gateway-subgraph-client-cert",
        long = "subgraph-client-cert",
        env = "GATEWAY_SUBGRAPH_CLIENT_CERT",
        requires = "gateway-subgraph-client-key"
    )]
    pub subgraph_client_cert: Option<PathBuf>,

    /// PEM private key of `GATEWAY_SUBGRAPH_CLIENT_CERT`. Default: none.
    #[arg(
        id = "gateway-subgraph-client-key",
        long = "subgraph-client-key",
        env = "GATEWAY_SUBGRAPH_CLIENT_KEY",
        requires = "gateway-subgraph-client-cert"
    )]
    pub subgraph_client_key: Option<PathBuf>,

    /// A client certificate for one subgraph, as `NAME=CERT_PATH:KEY_PATH`,
    /// repeatable (comma-separated in the environment); instead of
    /// `GATEWAY_SUBGRAPH_CLIENT_CERT` for that subgraph. Default: none.
    #[arg(
        id = "gateway-subgraph-client-certs",
        long = "subgraph-client-certs",
        env = "GATEWAY_SUBGRAPH_CLIENT_CERTS",
        value_delimiter = ','
    )]
    pub subgraph_client_certs: Vec<String>,

    /// Plain-text (`http://`) subgraphs that speak HTTP/2 only, with prior
    /// knowledge (h2c), repeatable (comma-separated in the environment).
    /// `https://` subgraphs get HTTP/2 by ALPN when they offer it. Default: none.
    #[arg(id = "gateway-subgraph-h2c", long = "subgraph-h2c", env = "GATEWAY_SUBGRAPH_H2C", value_delimiter = ',')]
    pub subgraph_h2c: Vec<String>,

    /// Client request headers forwarded to every subgraph, repeatable
    /// (comma-separated in the environment). Default: none.
    #[arg(
        id = "gateway-propagate-header",
        long = "propagate-header",
        env = "GATEWAY_PROPAGATE_HEADERS",
        value_delimiter = ','
    )]
    pub propagate_headers: Vec<String>,

    /// Client request headers forwarded to one subgraph, as `NAME=HEADER`,
    /// repeatable (comma-separated in the environment). Default: none.
    #[arg(
        id = "gateway-subgraph-propagate-header",
        long = "subgraph-propagate-header",
        env = "GATEWAY_SUBGRAPH_PROPAGATE_HEADERS",
        value_delimiter = ','
    )]
    pub subgraph_propagate_headers: Vec<String>,

    /// Header rules for every subgraph request, in order, repeatable
    /// (comma-separated in the environment): `propagate NAME`, `propagate
    /// PREFIX*`, `propagate NAME as NEW`, `insert NAME: VALUE`, `insert NAME:
    /// claim sub|sid|scope|provider` (from the verified token) and `remove NAME`.
    /// `Authorization` is sent only when named. Default: none.
    #[arg(id = "gateway-header-rule", long = "header-rule", env = "GATEWAY_HEADER_RULES", value_delimiter = ',')]
    pub header_rules: Vec<String>,

    /// Header rules for one subgraph, as `NAME=RULE`, repeatable
    /// (comma-separated in the environment); they run after the rules for
    /// every subgraph. Default: none.
    #[arg(
        id = "gateway-subgraph-header-rule",
        long = "subgraph-header-rule",
        env = "GATEWAY_SUBGRAPH_HEADER_RULES",
        value_delimiter = ','
    )]
    pub subgraph_header_rules: Vec<String>,

    /// Subgraph response headers passed back to the client, by name,
    /// repeatable (comma-separated in the environment); every value any
    /// subgraph of the request sent, once each. Default: none.
    #[arg(
        id = "gateway-response-header",
        long = "response-header",
        env = "GATEWAY_RESPONSE_HEADERS",
        value_delimiter = ','
    )]
    pub response_headers: Vec<String>,

    /// Response headers passed back from one subgraph, as `NAME=HEADER`,
    /// repeatable (comma-separated in the environment). Default: none.
    #[arg(
        id = "gateway-subgraph-response-header",
        long = "subgraph-response-header",
        env = "GATEWAY_SUBGRAPH_RESPONSE_HEADERS",
        value_delimiter = ','
    )]
    pub subgraph_response_headers: Vec<String>,

    /// Append the client's address to `X-Forwarded-For` and send that header
    /// to every subgraph, so their per-IP rate limits see the real client (the
    /// auth subgraph then needs `AUTH_TRUSTED_PROXY_HOPS` of at least 1).
    /// Default: true.
    #[arg(id = "gateway-forwarded-for", long = "forwarded-for", env = "GATEWAY_FORWARDED_FOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub forwarded_for: bool,

    /// Largest accepted request body, in bytes. Default 2097152 (2 MiB).
    #[arg(id = "gateway-max-body-bytes", long = "max-body-bytes", env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest selection nesting an operation may have (fragments followed). Default 32.
    #[arg(id = "gateway-max-depth", long = "max-depth", env = "GATEWAY_MAX_DEPTH", default_value_t = 32)]
    pub max_depth: usize,

    /// Most aliased fields an operation may have. Default 256.
    #[arg(id = "gateway-max-aliases", long = "max-aliases", env = "GATEWAY_MAX_ALIASES", default_value_t = 256)]
    pub max_aliases: usize,

    /// Most fields an operation may select at its root. Default 64.
    #[arg(
        id = "gateway-max-root-fields",
        long = "max-root-fields",
        env = "GATEWAY_MAX_ROOT_FIELDS",
        default_value_t = 64
    )]
    pub max_root_fields: usize,

    /// Most lexical tokens a document may have. Default 15000.
    #[arg(id = "gateway-max-tokens", long = "max-tokens", env = "GATEWAY_MAX_TOKENS", default_value_t = 15_000)]
    pub max_tokens: usize,

    /// Whether `__schema` and `__type` are answered. Default: on in
    /// development, off when `GATEHOUSE_ENV=production` (schema tools then
    /// read the checked-in schema, or this is turned on explicitly).
    #[arg(id = "gateway-introspection", long = "introspection", env = "GATEWAY_INTROSPECTION", action = clap::ArgAction::Set)]
    pub introspection: Option<bool>,

    /// Whether browsers get GraphiQL at `GET /graphql`. Default: on in
    /// development, off when `GATEHOUSE_ENV=production`.
    #[arg(id = "gateway-graphiql", long = "graphiql", env = "GATEWAY_GRAPHIQL", action = clap::ArgAction::Set)]
    pub graphiql: Option<bool>,

    /// What GraphiQL's sample operations and sign-in bar are filled with
    /// (`gatehouse dev` passes the seeded development admin); never a flag.
    #[arg(skip)]
    pub graphiql_samples: crate::http::GraphiqlConfig,

    /// Whether a JSON array of requests is accepted in one POST. Default false.
    #[arg(id = "gateway-batching", long = "batching", env = "GATEWAY_BATCHING", default_value_t = false, action = clap::ArgAction::Set)]
    pub batching: bool,

    /// Most requests in one batch, when batching is on. Default 10.
    #[arg(
        id = "gateway-max-batch-size",
        long = "max-batch-size",
        env = "GATEWAY_MAX_BATCH_SIZE",
        default_value_t = 10
    )]
    pub max_batch_size: usize,

    /// How many prepared operations (parsed, validated, planned) are cached
    /// at most. Default 1024.
    #[arg(
        id = "gateway-plan-cache-size",
        long = "plan-cache-size",
        env = "GATEWAY_PLAN_CACHE_SIZE",
        default_value_t = 1024
    )]
    pub plan_cache_size: u64,

    /// Memory, in bytes, the cache of prepared operations may hold (estimated
    /// from each operation's parsed form and plan; the cache of plans beside
    /// it has the same bound). Whichever of this and
    /// `GATEWAY_PLAN_CACHE_SIZE` is reached first evicts. Default 67108864 (64 MiB).
    #[arg(
        id = "gateway-plan-cache-bytes",
        long = "plan-cache-bytes",
        env = "GATEWAY_PLAN_CACHE_BYTES",
        default_value_t = 64 * 1024 * 1024
    )]
    pub plan_cache_bytes: u64,

    /// Put back into a fetch the union members the pinned planner narrows to
    /// those every candidate subgraph shares (below a shareable field), when
    /// the fetch's own subgraph has the member and resolves all the client
    /// selected on it alone. Off by default: the public
    /// federation-gateway-audit expects the narrowed answers. Default false.
    #[arg(id = "gateway-restore-partial-unions", long = "restore-partial-unions", env = "GATEWAY_RESTORE_PARTIAL_UNIONS", default_value_t = false, action = clap::ArgAction::Set)]
    pub restore_partial_unions: bool,

    /// Longest time planning one operation may take, in milliseconds. Default 10000.
    #[arg(
        id = "gateway-planning-timeout-ms",
        long = "planning-timeout-ms",
        env = "GATEWAY_PLANNING_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub planning_timeout_ms: u64,

    /// Whether identical query requests to a subgraph that are in flight at the
    /// same time share one HTTP exchange. Mutations are never shared. Default true.
    #[arg(id = "gateway-dedupe-subgraph-requests", long = "dedupe-subgraph-requests", env = "GATEWAY_DEDUPE_SUBGRAPH_REQUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub dedupe_subgraph_requests: bool,

    /// Most requests in flight to one subgraph host (host and port) at a time,
    /// and so most connections open to it; further requests wait for a turn
    /// within their timeout. Protects subgraphs from bursts and bounds the
    /// gateway's memory under load. 0 means no limit. Default 100.
    #[arg(
        id = "gateway-max-connections-per-subgraph",
        long = "max-connections-per-subgraph",
        env = "GATEWAY_MAX_CONNECTIONS_PER_SUBGRAPH",
        default_value_t = 100
    )]
    pub max_connections_per_subgraph: usize,

    /// Threads that serve client connections, each with its own runtime and
    /// subgraph connection pool; a connection is handed to one of them when
    /// accepted (in turn) and stays there, so its requests never move between
    /// threads. 0 means one per CPU core. Default 0.
    #[arg(id = "gateway-server-threads", long = "server-threads", env = "GATEWAY_SERVER_THREADS", default_value_t = 0)]
    pub server_threads: usize,

    /// Whether the supergraph file is watched for changes. Default true.
    #[arg(id = "gateway-watch-supergraph", long = "watch-supergraph", env = "GATEWAY_WATCH_SUPERGRAPH", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_supergraph: bool,

    /// Serve `/metrics`, `/health` and `/ready` on this separate address as
    /// well, and `/metrics` no longer on the main listener: a port only the
    /// monitoring reaches. Default: none (all on the main listener).
    #[arg(id = "gateway-admin-listen", long = "admin-listen", env = "GATEWAY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Compress responses as the client's `Accept-Encoding` allows (br,
    /// gzip, or zstd when ranked above the others) when they are larger than
    /// 1 KiB, and accept request bodies compressed with any of them
    /// (`Content-Encoding`). Default: true.
    #[arg(id = "gateway-compression", long = "compression", env = "GATEWAY_COMPRESSION", default_value_t = true, action = clap::ArgAction::Set)]
    pub compression: bool,

    /// Custom `@override(label:)` labels switched on, repeatable
    /// (comma-separated in the environment): fields overridden under one of
    /// these labels are resolved by their new subgraph. `percent(N)` labels
    /// need no setting: each operation draws its side. Default: none.
    #[arg(
        id = "gateway-override-labels",
        long = "override-label",
        env = "GATEWAY_OVERRIDE_LABELS",
        value_delimiter = ','
    )]
    pub override_labels: Vec<String>,

    /// Automatic persisted queries and trusted documents.
    #[command(flatten)]
    pub documents: crate::persisted::DocumentsConfig,

    /// Demand control from `@cost` and `@listSize`.
    #[command(flatten)]
    pub demand_control: crate::cost::DemandControlConfig,

    #[command(flatten)]
    pub subscriptions: crate::subscription::SubscriptionConfig,

    /// Rate limits per caller and per operation.
    #[command(flatten)]
    pub rate_limits: crate::rate_limit::RateLimitConfig,

    /// Authentication, authorization and browser-safety settings.
    #[command(flatten)]
    pub security: crate::security::SecurityConfig,

    /// Connection limit and client timeouts.
    #[command(flatten)]
    pub listener: GatewayListenerArgs,
}

gatehouse_listener::listener_args!(
    GatewayListenerArgs,
    service = "gateway",
    heading = "Gateway",
    env = "GATEWAY",
    id = "gateway",
    long = "",
    max_connections = 10000
);

impl GatewayConfig {
    /// A configuration with every default, serving `supergraph` on `listen`.
    pub fn new(supergraph: PathBuf, listen: SocketAddr) -> Self {
        Self {
            supergraph,
            listen,
            subgraph_urls: Vec::new(),
            subgraph_timeout_ms: 30_000,
            subgraph_timeouts: Vec::new(),
            subgraph_max_request_bytes: Vec::new(),
            subgraph_ca_file: None,
            subgraph_ca_files: Vec::new(),
            subgraph_client_cert: None,
            subgraph_client_key: None,
            subgraph_client_certs: Vec::new(),
            subgraph_h2c: Vec::new(),
            propagate_headers: Vec::new(),
            subgraph_propagate_headers: Vec::new(),
            header_rules: Vec::new(),
            subgraph_header_rules: Vec::new(),
            response_headers: Vec::new(),
            subgraph_response_headers: Vec::new(),
            forwarded_for: true,
            max_body_bytes: 2 * 1024 * 1024,
            max_depth: 32,
            max_aliases: 256,
            max_root_fields: 64,
            max_tokens: 15_000,
            introspection: None,
            graphiql: None,
            graphiql_samples: Default::default(),
            batching: false,
            max_batch_size: 10,
            plan_cache_size: 1024,
            plan_cache_bytes: 64 * 1024 * 1024,
            restore_partial_unions: false,
            planning_timeout_ms: 10_000,
            dedupe_subgraph_requests: true,
            max_connections_per_subgraph: 100,
            server_threads: 0,
            watch_supergraph: true,
            admin_listen: None,
            compression: true,
            override_labels: Vec::new(),
            documents: Default::default(),
            rate_limits: Default::default(),
            demand_control: Default::default(),
            subscriptions: Default::default(),
            security: crate::security::SecurityConfig::default(),
            listener: GatewayListenerArgs::default(),
        }
    }
}

/// Whether `GATEHOUSE_ENV` says production (then GraphiQL and introspection
/// are off unless asked for; `gatehouse gateway --env production` sets them
/// off explicitly too).
fn production_by_environment() -> bool {
    std::env::var("GATEHOUSE_ENV").is_ok_and(|e| e.eq_ignore_ascii_case("production"))
}

/// Limits applied while parsing and before planning.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_tokens: usize,
}

/// Settings for one subgraph, resolved against the supergraph at load time.
#[derive(Debug, Clone, Default)]
pub struct SubgraphOverrides {
    pub url: Option<String>,
    pub timeout: Option<Duration>,
    /// Its own header rules, after those of every subgraph.
    pub header_rules: Vec<crate::header_rules::Rule>,
    /// Its own response headers passed back to clients.
    pub response_headers: Vec<HeaderName>,
    pub max_request_bytes: Option<usize>,
    /// Index into [`RuntimeConfig::transports`].
    pub transport: usize,
}

/// How the gateway reaches a subgraph: whom it trusts, what certificate it
/// presents, and whether plain-text connections speak HTTP/2 only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TransportSpec {
    /// Certificate authorities trusted besides the system's.
    pub ca_files: Vec<PathBuf>,
    /// A client certificate and its key (mutual TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub h2c: bool,
}

/// The configuration as request code uses it: parsed once, never re-read.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub supergraph_path: PathBuf,
    pub limits: Limits,
    pub max_body_bytes: usize,
    /// How long a whole request body may take to arrive.
    pub body_read_timeout: Duration,
    /// How subgraphs are reached; the first is every subgraph's unless
    /// configured otherwise ([`SubgraphOverrides::transport`]).
    pub transports: Vec<TransportSpec>,
    pub introspection: bool,
    pub graphiql: bool,
    /// Whether `/metrics` is served on a separate admin listener only.
    pub admin_listener: bool,
    pub compression: bool,
    pub graphiql_samples: crate::http::GraphiqlConfig,
    pub batching: bool,
    pub max_batch_size: usize,
    pub plan_cache_size: u64,
    pub plan_cache_bytes: u64,
    pub restore_partial_unions: bool,
    pub planning_timeout: Duration,
    pub watch_supergraph: bool,
    pub dedupe_subgraph_requests: bool,
    /// Requests in flight per subgraph host; `None` for no limit.
    pub max_connections_per_subgraph: Option<usize>,
    /// Threads serving client connections (at least 1).
    pub server_threads: usize,
    pub default_timeout: Duration,
    /// Header rules of every subgraph request (`--propagate-header` comes
    /// first, as `propagate` rules).
    pub header_rules: Vec<crate::header_rules::Rule>,
    /// Response headers passed back to clients from every subgraph.
    pub response_headers: Vec<HeaderName>,
    /// Whether the HTTP layer appends the client's address to `X-Forwarded-For`.
    pub forwarded_for: bool,
    /// Keyed by subgraph name.
    pub subgraphs: HashMap<String, SubgraphOverrides>,
    /// Custom progressive-override labels switched on.
    pub override_labels: Vec<String>,
    pub demand_control: crate::cost::DemandControlConfig,
}

fn split_pair<'a>(raw: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match raw.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => Ok((name.trim(), value.trim())),
        _ => bail!("{what} must look like NAME=VALUE, got {raw:?}"),
    }
}

/// A header name as configured: trimmed, any case.
pub(crate) fn header_name(raw: &str) -> anyhow::Result<HeaderName> {
    HeaderName::from_bytes(raw.trim().to_ascii_lowercase().as_bytes())
        .with_context(|| format!("{raw:?} is not a valid header name"))
}

impl TryFrom<&GatewayConfig> for RuntimeConfig {
    type Error = anyhow::Error;

    fn try_from(config: &GatewayConfig) -> anyhow::Result<Self> {
        let mut subgraphs: HashMap<String, SubgraphOverrides> = HashMap::new();
        for raw in config.subgraph_urls.iter().filter(|s| !s.trim().is_empty()) {
            let (name, url) = split_pair(raw, "--subgraph-url")?;
            crate::supergraph::endpoint_url(name, url).context("GATEWAY_SUBGRAPH_URLS")?;
            subgraphs.entry(name.to_string()).or_default().url = Some(url.to_string());
        }
        for raw in config.subgraph_timeouts.iter().filter(|s| !s.trim().is_empty()) {
            let (name, ms) = split_pair(raw, "--subgraph-timeout")?;
            let ms: u64 = ms.parse().with_context(|| format!("timeout {ms:?} is not a number"))?;
            subgraphs.entry(name.to_string()).or_default().timeout = Some(Duration::from_millis(ms));
        }
        for raw in config.subgraph_max_request_bytes.iter().filter(|s| !s.trim().is_empty()) {
            let (name, bytes) = split_pair(raw, "--subgraph-max-request-bytes")?;
            let bytes: usize = bytes.parse().with_context(|| format!("byte limit {bytes:?} is not a number"))?;
            subgraphs.entry(name.to_string()).or_default().max_request_bytes = Some(bytes);
        }
        for raw in config.subgraph_propagate_headers.iter().filter(|s| !s.trim().is_empty()) {
            let (name, header) = split_pair(raw, "--subgraph-propagate-header")?;
            let rule = Rule::Propagate { from: Matcher::Exact(header_name(header)?), to: None };
            subgraphs.entry(name.to_string()).or_default().header_rules.push(rule);
        }
        for raw in config.subgraph_header_rules.iter().filter(|s| !s.trim().is_empty()) {
            let (name, rule) = split_pair(raw, "--subgraph-header-rule")?;
            let rule = rule.parse().context("GATEWAY_SUBGRAPH_HEADER_RULES")?;
            subgraphs.entry(name.to_string()).or_default().header_rules.push(rule);
        }
        for raw in config.subgraph_response_headers.iter().filter(|s| !s.trim().is_empty()) {
            let (name, header) = split_pair(raw, "--subgraph-response-header")?;
            let header = crate::header_rules::response_header(header).context("GATEWAY_SUBGRAPH_RESPONSE_HEADERS")?;
            subgraphs.entry(name.to_string()).or_default().response_headers.push(header);
        }
        // The transports: the default first, then one per subgraph that
        // differs from it; subgraphs with the same settings share one.
        let mut specs: HashMap<String, TransportSpec> = HashMap::new();
        let default_spec = TransportSpec {
            ca_files: config.subgraph_ca_file.iter().cloned().collect(),
            client_cert: config.subgraph_client_cert.clone().zip(config.subgraph_client_key.clone()),
            h2c: false,
        };
        fn spec_of<'a>(
            specs: &'a mut HashMap<String, TransportSpec>,
            default: &TransportSpec,
            name: &str,
        ) -> &'a mut TransportSpec {
            specs.entry(name.to_owned()).or_insert_with(|| default.clone())
        }
        for raw in config.subgraph_ca_files.iter().filter(|s| !s.trim().is_empty()) {
            let (name, path) = split_pair(raw, "--subgraph-ca-files")?;
            spec_of(&mut specs, &default_spec, name).ca_files.push(PathBuf::from(path));
        }
        for raw in config.subgraph_client_certs.iter().filter(|s| !s.trim().is_empty()) {
            let (name, paths) = split_pair(raw, "--subgraph-client-certs")?;
            let (cert, key) =
                paths.split_once(':').with_context(|| format!("{raw:?} must be NAME=CERT_PATH:KEY_PATH"))?;
            spec_of(&mut specs, &default_spec, name).client_cert = Some((PathBuf::from(cert), PathBuf::from(key)));
        }
        for name in config.subgraph_h2c.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            spec_of(&mut specs, &default_spec, name).h2c = true;
        }
        let mut transports = vec![default_spec];
        for (name, spec) in specs {
            let index = match transports.iter().position(|known| *known == spec) {
                Some(index) => index,
                None => {
                    transports.push(spec);
                    transports.len() - 1
                }
            };
            subgraphs.entry(name).or_default().transport = index;
        }
        let mut propagate_headers = config
            .propagate_headers
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|h| header_name(h))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if config.forwarded_for && !propagate_headers.contains(&X_FORWARDED_FOR) {
            propagate_headers.push(X_FORWARDED_FOR);
        }
        let mut header_rules: Vec<Rule> = propagate_headers
            .into_iter()
            .map(|name| Rule::Propagate { from: Matcher::Exact(name), to: None })
            .collect();
        for raw in config.header_rules.iter().filter(|s| !s.trim().is_empty()) {
            header_rules.push(raw.parse().context("GATEWAY_HEADER_RULES")?);
        }
        let response_headers = config
            .response_headers
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|h| crate::header_rules::response_header(h).context("GATEWAY_RESPONSE_HEADERS"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if config.max_body_bytes == 0 || config.max_depth == 0 || config.max_tokens == 0 {
            bail!("body, depth and token limits must be positive");
        }
        Ok(Self {
            supergraph_path: config.supergraph.clone(),
            limits: Limits {
                max_depth: config.max_depth,
                max_aliases: config.max_aliases,
                max_root_fields: config.max_root_fields.max(1),
                max_tokens: config.max_tokens,
            },
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.listener.limits().body_read_timeout,
            transports,
            introspection: config.introspection.unwrap_or_else(|| !production_by_environment()),
            graphiql: config.graphiql.unwrap_or_else(|| !production_by_environment()),
            admin_listener: config.admin_listen.is_some(),
            compression: config.compression,
            graphiql_samples: config.graphiql_samples.clone(),
            batching: config.batching,
            max_batch_size: config.max_batch_size.max(1),
            plan_cache_size: config.plan_cache_size.max(1),
            plan_cache_bytes: config.plan_cache_bytes.max(1),
            restore_partial_unions: config.restore_partial_unions,
            planning_timeout: Duration::from_millis(config.planning_timeout_ms.max(1)),
            watch_supergraph: config.watch_supergraph,
            dedupe_subgraph_requests: config.dedupe_subgraph_requests,
            max_connections_per_subgraph: Some(config.max_connections_per_subgraph).filter(|&n| n > 0),
            server_threads: match config.server_threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            },
            default_timeout: Duration::from_millis(config.subgraph_timeout_ms.max(1)),
            header_rules,
            response_headers,
            forwarded_for: config.forwarded_for,
            subgraphs,
            override_labels: config
                .override_labels
                .iter()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
            demand_control: config.demand_control.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        gateway: GatewayConfig,
    }

    #[test]
    fn the_flags_are_consistent_and_their_defaults_match_new() {
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from(["gateway"]).unwrap().gateway;
        let built = GatewayConfig::new("schema/supergraph.graphql".into(), "127.0.0.1:4000".parse().unwrap());
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
    }

    #[test]
    fn per_subgraph_settings_are_compiled_once() {
        let parsed = Cli::try_parse_from([
            "gateway",
            "--subgraph-url",
            "accounts=http://127.0.0.1:9/graphql",
            "--subgraph-timeout",
            "accounts=250",
            "--subgraph-propagate-header",
            "accounts=X-Tenant",
            "--introspection",
            "false",
        ])
        .unwrap()
        .gateway;
        let runtime = RuntimeConfig::try_from(&parsed).unwrap();
        let accounts = &runtime.subgraphs["accounts"];
        assert_eq!(accounts.url.as_deref(), Some("http://127.0.0.1:9/graphql"));
        assert_eq!(accounts.timeout, Some(Duration::from_millis(250)));
        assert_eq!(
            accounts.header_rules[0],
            Rule::Propagate { from: Matcher::Exact(HeaderName::from_static("x-tenant")), to: None }
        );
        assert!(!runtime.introspection);
    }

    #[test]
    fn server_threads_default_to_one_per_core_and_refuse_non_numbers() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let default = Cli::try_parse_from(["gateway"]).unwrap().gateway;
        assert_eq!(RuntimeConfig::try_from(&default).unwrap().server_threads, cores);
        let three = Cli::try_parse_from(["gateway", "--server-threads", "3"]).unwrap().gateway;
        assert_eq!(RuntimeConfig::try_from(&three).unwrap().server_threads, 3);
        for bad in ["-1", "many", "", "1e3"] {
            assert!(Cli::try_parse_from(["gateway", "--server-threads", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_pairs_are_refused_at_start_up() {
        let mut config = GatewayConfig::new("x".into(), "127.0.0.1:0".parse().unwrap());
        config.subgraph_timeouts = vec!["accounts".into()];
        assert!(RuntimeConfig::try_from(&config).is_err());
        config.subgraph_timeouts = vec!["accounts=soon".into()];
        assert!(RuntimeConfig::try_from(&config).is_err());
    }
}
