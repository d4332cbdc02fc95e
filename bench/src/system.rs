//! The system's own numbers, on the real stack: `gatehouse dev` (the
//! bench-release build) with its own databases, Redis key prefix, event
//! stream and dev folder, started, measured through its gateway, stopped and
//! torn down again.
//!
//! - login: argon2id verification and an RS256 access token per answer;
//! - refreshSession: each connection rotates its own refresh-token chain;
//! - sign-up → the users subgraph returns the account (outbox relay →
//!   JetStream → users projection), one sign-up at a time;
//! - `me` through the gateway (auth + users), and the gateway's overhead over
//!   asking the users subgraph directly with the same, signed, identity.
//!
//! Every answer is parsed and checked before it counts (see `closed_loop`).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use http::{HeaderName, Method, Request};
use http_body_util::Full;
use secrecy::SecretString;
use serde_json::{json, Value};

use gatehouse_common::identity::{Identity, IdentityCodec, IDENTITY_HEADER};

use crate::closed_loop::{self, excerpt, Conversation, LoopOutcome, LoopSpec, Repeat, Step};
use crate::procstat::{self, TICKS_PER_SECOND};
use crate::report::{num, SystemLine};
use crate::stats::percentile;

/// Rate limits the benchmark raises: a load test is one client hammering a
/// handful of accounts from one address, which the defaults rightly refuse.
pub const RAISED_LIMITS: [&str; 3] =
    ["AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP", "AUTH_MAIL_LIMIT_PER_IP"];
const RAISED_LIMIT: &str = "1000000000";

/// How often the sign-up measurement asks the users subgraph.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// What the system measurement is told.
#[derive(Debug, Clone)]
pub struct SystemSettings {
    /// The `gatehouse` binary (bench-release build).
    pub bin: PathBuf,
    /// Working directory of the stack (the workspace: its supergraph and example app).
    pub workspace: PathBuf,
    /// Where the stack's log goes.
    pub run_dir: PathBuf,
    pub connections: u32,
    pub warmup: Duration,
    pub duration: Duration,
    /// Sign-ups of the sync-latency measurement.
    pub signups: usize,
}

/// The table's lines and the notes printed under it.
#[derive(Debug, Clone, Default)]
pub struct SystemReport {
    pub lines: Vec<SystemLine>,
    pub notes: Vec<String>,
}

/// A login the banner printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

/// What `gatehouse dev` printed at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Banner {
    pub gateway: Option<u16>,
    pub auth: Option<u16>,
    pub users: Option<u16>,
    pub mail: Option<String>,
    pub admin: Option<Credentials>,
    /// `(role, credentials)` of each demo account, e.g. `("USER", …)`.
    pub demo: Vec<(String, Credentials)>,
    /// The last line (`Stop with Ctrl-C.`) was read.
    pub complete: bool,
}

impl Banner {
    /// Reads one banner line into `self`.
    pub fn read_line(&mut self, line: &str) {
        let line = line.trim();
        if line == "Stop with Ctrl-C." {
            self.complete = true;
            return;
        }
        let Some((label, rest)) = line.split_once(':') else { return };
        let rest = rest.trim();
        let port =
            || rest.split("http://localhost:").nth(1).and_then(|after| after.split(['/', ' ']).next()?.parse().ok());
        let credentials = || {
            let (login, password) = rest.split_once(" / ")?;
            (!password.starts_with('('))
                .then(|| Credentials { login: login.trim().to_owned(), password: password.trim().to_owned() })
        };
        match label.trim() {
            "Gateway" => self.gateway = port(),
            "Auth" => self.auth = port(),
            "Users" => self.users = port(),
            "Mail" => self.mail = Some(rest.to_owned()),
            "SYS_ADMIN" => self.admin = credentials(),
            other => {
                if let (Some(role), Some(credentials)) = (other.strip_prefix("Demo "), credentials()) {
                    self.demo.push((role.trim().to_owned(), credentials));
                }
            }
        }
    }

    pub fn demo(&self, role: &str) -> Option<&Credentials> {
        self.demo.iter().find(|(r, _)| r == role).map(|(_, c)| c)
    }
}

/// Runs every measurement; a failure becomes that line's result, and the
/// stack is always stopped and torn down.
pub fn run(settings: &SystemSettings) -> SystemReport {
    let mut report = SystemReport { lines: Vec::new(), notes: notes(settings) };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report.lines.push(failed_line("the system's numbers", &format!("no runtime: {e}")));
            return report;
        }
    };
    let isolation = Isolation::new(settings);
    let mut stack = match Stack::start(settings, &isolation) {
        Ok(stack) => stack,
        Err(e) => {
            say(&format!("the stack did not start: {e:#}"));
            report.lines.push(failed_line("`gatehouse dev`", &format!("did not start: {e:#}")));
            runtime.block_on(isolation.clean_up());
            return report;
        }
    };
    let pid = stack.child.id();
    runtime.block_on(async {
        if let Err(e) = measure_all(settings, &stack, &isolation, pid, &mut report).await {
            say(&format!("system numbers stopped early: {e:#}"));
            report.lines.push(failed_line("the system's numbers", &format!("{e:#} (log: {})", stack.log.display())));
        }
    });
    if let Ok(Some(status)) = stack.child.try_wait() {
        report.notes.push(format!("The stack exited during the run ({status}); see {}.", stack.log.display()));
    }
    stack.stop();
    runtime.block_on(isolation.clean_up());
    report
}

fn notes(settings: &SystemSettings) -> Vec<String> {
    vec![
        "The stack: `gatehouse dev` built with `--profile bench-release`, in development mode with its defaults \
         (argon2id 19 MiB × 2 iterations, RS256 with a 3072-bit key, 15-minute access tokens), its own databases, \
         Redis key prefix, event stream and dev folder, all removed afterwards; it shares the 2 cores with the load."
            .to_owned(),
        format!(
            "Rate limits raised for the run: {} = {RAISED_LIMIT} (defaults 10, 100 and 30 per 15 minutes would \
             refuse one client logging in thousands of times from one address).",
            RAISED_LIMITS.join(", ")
        ),
        format!(
            "Load: a Rust closed loop (`bench/src/closed_loop.rs`), {} keep-alive connections, {} s warm-up then {} s \
             measured; every answer is parsed and checked (token present and for the right account, the exact \
             `me` answer); refused answers count as failed, not as throughput, and latencies are those of accepted \
             answers. Stack CPU is the `gatehouse` process's CPU time over the measured window (PostgreSQL, \
             Redis and NATS not included).",
            settings.connections,
            settings.warmup.as_secs(),
            settings.duration.as_secs()
        ),
        "Sign-up sync: `signUp` through the gateway, then the users subgraph is asked directly, every 2 ms, with a \
         SYS_ADMIN identity header signed with the stack's identity secret, `users(search: <new username>)`, until it \
         returns the account; the latency runs from `signUp`'s answer (account and outbox row committed) to that \
         first answer, so it covers the outbox relay (LISTEN/NOTIFY), JetStream and the users projection, ±2 ms."
            .to_owned(),
        "login and refreshSession: the seeded demo USER, `refreshTokenIn: BODY`; every login opens a session, \
         and each refresh connection rotates its own chain, begun by a login before the load (after a failure a \
         new login, not measured, starts a new chain, since presenting a rotated token twice revokes the family)."
            .to_owned(),
        "`me`: each connection has its own session (its own bearer token), as separate clients would, so the \
         gateway's in-flight de-duplication (on by default) cannot merge them. Overhead: the same \
         `{ me { id displayName bio } }` through the gateway (RS256 check, revocation check, plan, signed \
         identity, one users fetch) and straight at the users subgraph with an identity header signed for the \
         same user and session, the two answers checked equal; over one connection (the overhead of a request \
         itself) and over all of them (where latency is mostly queueing, and CPU per request is the fairer figure)."
            .to_owned(),
    ]
}

fn say(line: &str) {
    eprintln!("[bench] {line}");
}

fn failed_line(name: &str, why: &str) -> SystemLine {
    SystemLine { name: name.to_owned(), result: format!("failed: {why}") }
}

/// The names of everything one run creates, so it can all be removed.
struct Isolation {
    id: String,
    dev_dir: PathBuf,
    identity_secret: String,
    postgres: String,
    redis_url: String,
    nats_url: String,
}

impl Isolation {
    fn new(settings: &SystemSettings) -> Self {
        let id = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Isolation {
            dev_dir: settings.run_dir.join(format!("stack-{id}")),
            identity_secret: format!("bench-identity-{}", uuid::Uuid::new_v4().simple()),
            postgres: env("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
            redis_url: env("REDIS_URL", "redis://127.0.0.1:6379"),
            nats_url: env("NATS_URL", "nats://127.0.0.1:4222"),
            id,
        }
    }

    fn database_url(&self, service: &str) -> String {
        format!("{}/gh_{}_{service}", self.postgres.trim_end_matches('/'), self.id)
    }

    fn stream(&self) -> String {
        self.id.to_uppercase()
    }

    fn redis_prefix(&self) -> String {
        format!("{}:", self.id)
    }

    fn codec(&self) -> IdentityCodec {
        IdentityCodec::new(&SecretString::from(self.identity_secret.clone()), 30)
    }

    /// Drops the databases, deletes the stream and the Redis keys, removes the dev folder.
    async fn clean_up(&self) {
        for service in ["auth", "users"] {
            if let Err(e) = gatehouse_store::drop_database(&self.database_url(service)).await {
                say(&format!("could not drop the {service} database: {e}"));
            }
        }
        match async_nats::connect(&self.nats_url).await {
            Ok(client) => {
                let _ = async_nats::jetstream::new(client).delete_stream(self.stream()).await;
            }
            Err(e) => say(&format!("could not delete the event stream {}: {e}", self.stream())),
        }
        if let Err(e) = self.delete_redis_keys().await {
            say(&format!("could not delete the Redis keys {}*: {e}", self.redis_prefix()));
        }
        let _ = std::fs::remove_dir_all(&self.dev_dir);
    }

    async fn delete_redis_keys(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let pattern = format!("{}*", self.redis_prefix());
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("UNLINK").arg(&keys).query_async(&mut connection).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// The running `gatehouse dev`.
struct Stack {
    child: Child,
    banner: Banner,
    log: PathBuf,
}

impl Stack {
    fn start(settings: &SystemSettings, isolation: &Isolation) -> anyhow::Result<Stack> {
        if !settings.bin.exists() {
            bail!("no binary at {}", settings.bin.display());
        }
        let log_path = settings.run_dir.join("stack.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(&settings.bin);
        command
            .arg("dev")
            .current_dir(&settings.workspace)
            .env("GATEWAY_LISTEN", "127.0.0.1:0")
            .env("AUTH_LISTEN", "127.0.0.1:0")
            .env("USERS_LISTEN", "127.0.0.1:0")
            .env("DEV_APP_LISTEN", "127.0.0.1:0")
            .env("AUTH_DATABASE_URL", isolation.database_url("auth"))
            .env("USERS_DATABASE_URL", isolation.database_url("users"))
            .env("REDIS_URL", &isolation.redis_url)
            .env("NATS_URL", &isolation.nats_url)
            .env("REDIS_KEY_PREFIX", isolation.redis_prefix())
            .env("GATEHOUSE_EVENTS_STREAM", isolation.stream())
            .env("GATEHOUSE_EVENTS_SUBJECT_PREFIX", &isolation.id)
            .env("GATEHOUSE_DEV_DIR", &isolation.dev_dir)
            .env("GATEHOUSE_IDENTITY_SECRET", &isolation.identity_secret)
            .env("RUST_LOG", "warn")
            .env_remove("GATEHOUSE_ENV")
            .env_remove("GATEHOUSE_ADMIN_EMAIL")
            .env_remove("GATEHOUSE_ADMIN_PASSWORD")
            .env_remove("GATEWAY_SUBGRAPH_URLS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone()?);
        for limit in RAISED_LIMITS {
            command.env(limit, RAISED_LIMIT);
        }
        say(&format!("starting gatehouse dev ({})", isolation.id));
        let mut child = command.spawn().with_context(|| format!("starting {}", settings.bin.display()))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        // A thread hands the banner's lines over, then keeps copying stdout
        // into the log so the stack never writes into a full pipe.
        let (lines, received) = mpsc::channel::<String>();
        let mut log_copy = log;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_copy, "{line}");
                let _ = lines.send(line);
            }
        });
        let mut banner = Banner::default();
        let started = Instant::now();
        while !banner.complete {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("gatehouse dev exited during start-up ({status}); log: {}", log_path.display());
            }
            if started.elapsed() > Duration::from_secs(180) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("no banner within 180 s; log: {}", log_path.display());
            }
            if let Ok(line) = received.recv_timeout(Duration::from_millis(200)) {
                banner.read_line(&line);
            }
        }
        let stack = Stack { child, banner, log: log_path };
        if stack.banner.gateway.is_none() || stack.banner.users.is_none() {
            let mut stack = stack;
            stack.stop();
            bail!("the banner named no gateway or users port");
        }
        say(&format!(
            "stack up: gateway :{}, auth :{}, users :{}",
            stack.banner.gateway.unwrap_or(0),
            stack.banner.auth.unwrap_or(0),
            stack.banner.users.unwrap_or(0)
        ));
        Ok(stack)
    }

    /// SIGTERM (the stack drains and stops), then SIGKILL after 15 s.
    fn stop(&mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        say("the stack did not stop within 15 s of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One request outside the load.
async fn post(
    address: SocketAddr,
    path: &str,
    body: String,
    headers: &[(HeaderName, String)],
) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = closed_loop::connect(address).await?;
    let mut request = Request::builder()
        .method(if body.is_empty() { Method::GET } else { Method::POST })
        .uri(path)
        .header(http::header::HOST, address.to_string())
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    tokio::time::timeout(Duration::from_secs(30), closed_loop::exchange(&mut sender, request))
        .await
        .context("no answer within 30 s")?
}

/// A GraphQL answer's `data`, or why there is none.
pub fn graphql_data(status: u16, body: &[u8]) -> Result<Value, String> {
    if status != 200 {
        return Err(format!("HTTP {status}: {}", excerpt(body)));
    }
    let mut answer: Value = serde_json::from_slice(body).map_err(|_| format!("not JSON: {}", excerpt(body)))?;
    if let Some(errors) = answer.get("errors").filter(|e| !e.is_null()) {
        let first = &errors[0];
        let code = first["extensions"]["code"].as_str().unwrap_or("no code");
        return Err(format!("GraphQL error {code}: {}", first["message"].as_str().unwrap_or("")));
    }
    match answer.get_mut("data").map(Value::take) {
        Some(data) if data.is_object() => Ok(data),
        _ => Err(format!("no data: {}", excerpt(body))),
    }
}

async fn graphql(
    address: SocketAddr,
    query: &str,
    variables: Value,
    headers: &[(HeaderName, String)],
) -> anyhow::Result<Value> {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let (status, answer) = post(address, "/graphql", body, headers).await?;
    graphql_data(status, &answer).map_err(anyhow::Error::msg)
}

/// The claims the benchmark reads from an access token (not verified here:
/// the gateway does that; this only tells whose token it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub sub: String,
    pub sid: String,
    pub scopes: Vec<String>,
}

pub fn token_claims(token: &str) -> Result<TokenClaims, String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("the access token is not a JWS".into());
    };
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "the access token's payload is not base64url")?;
    let claims: Value = serde_json::from_slice(&json).map_err(|_| "the access token's payload is not JSON")?;
    let text = |name: &str| claims[name].as_str().map(str::to_owned).ok_or(format!("the access token has no {name}"));
    Ok(TokenClaims {
        sub: text("sub")?,
        sid: text("sid")?,
        scopes: text("scope")?.split_whitespace().map(str::to_owned).collect(),
    })
}

/// Checks an `AuthPayload`: a bearer access token for `user_id` (and, when
/// asked, a refresh token in the body). Returns the refresh token.
pub fn check_auth_payload(payload: &Value, user_id: &str, want_refresh: bool) -> Result<Option<String>, String> {
    let token = payload["accessToken"].as_str().ok_or("no accessToken")?;
    if payload["tokenType"] != "Bearer" {
        return Err(format!("tokenType {}", payload["tokenType"]));
    }
    let claims = token_claims(token)?;
    if claims.sub != user_id || payload["user"]["id"] != user_id {
        return Err(format!("a token for {} instead of {user_id}", claims.sub));
    }
    let refresh = payload["refreshToken"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
    if want_refresh && refresh.is_none() {
        return Err("no refreshToken in the body".into());
    }
    Ok(refresh)
}

const LOGIN: &str = "mutation($login: String!, $password: String!) { login(login: $login, password: $password, \
                     refreshTokenIn: BODY) { accessToken tokenType expiresIn refreshToken user { id } } }";
const REFRESH: &str = "mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken tokenType \
                       expiresIn refreshToken user { id } } }";

fn login_body(credentials: &Credentials) -> Bytes {
    Bytes::from(
        json!({ "query": LOGIN, "variables": { "login": credentials.login, "password": credentials.password } })
            .to_string(),
    )
}

/// Logs in, over and over; each answer must carry a token for the account.
#[derive(Clone)]
struct Login {
    body: Bytes,
    user_id: String,
}

impl Conversation for Login {
    fn next_step(&mut self) -> Step {
        Step::measured(self.body.clone())
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        let data = graphql_data(status, body)?;
        check_auth_payload(&data["login"], &self.user_id, true).map(|_| ())
    }
}

/// One refresh-token chain: a login (not measured) starts it, then every
/// refresh presents the token the previous one returned. A failed or lost
/// answer ends the chain (its token may have rotated) and a new login starts
/// another.
struct RefreshChain {
    login: Bytes,
    user_id: String,
    token: Option<String>,
}

impl Conversation for RefreshChain {
    fn next_step(&mut self) -> Step {
        match &self.token {
            None => Step::setup(self.login.clone()),
            Some(token) => Step::measured(json!({ "query": REFRESH, "variables": { "token": token } }).to_string()),
        }
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        let field = if self.token.is_some() { "refreshSession" } else { "login" };
        let previous = self.token.take();
        let data = graphql_data(status, body)?;
        let fresh = check_auth_payload(&data[field], &self.user_id, true)?;
        if fresh.is_some() && fresh == previous {
            return Err("refreshSession returned the token it was given".into());
        }
        self.token = fresh;
        Ok(())
    }

    fn interrupted(&mut self) {
        self.token = None;
    }
}

/// A logged-in account: its tokens and what the access token says.
struct Session {
    token: String,
    refresh: String,
    claims: TokenClaims,
}

impl Session {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::new(
            self.claims.sub.parse().context("sub is not a UUID")?,
            self.claims.sid.parse().context("sid is not a UUID")?,
            self.claims.scopes.clone(),
        ))
    }
}

async fn log_in(gateway: SocketAddr, credentials: &Credentials) -> anyhow::Result<Session> {
    let body = String::from_utf8_lossy(&login_body(credentials)).into_owned();
    let (status, answer) = post(gateway, "/graphql", body, &[]).await?;
    let data = graphql_data(status, &answer).map_err(anyhow::Error::msg)?;
    let token = data["login"]["accessToken"].as_str().context("login answered no accessToken")?.to_owned();
    let claims = token_claims(&token).map_err(anyhow::Error::msg)?;
    let refresh = check_auth_payload(&data["login"], &claims.sub, true).map_err(anyhow::Error::msg)?;
    Ok(Session { token, refresh: refresh.unwrap_or_default(), claims })
}

/// `count` sessions of one account, logged in concurrently.
async fn log_in_many(gateway: SocketAddr, credentials: &Credentials, count: usize) -> anyhow::Result<Vec<Session>> {
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..count {
        let credentials = credentials.clone();
        logins.spawn(async move { log_in(gateway, &credentials).await });
    }
    let mut sessions = Vec::with_capacity(count);
    while let Some(joined) = logins.join_next().await {
        sessions.push(joined.context("a login task failed")?.context("logging in a session per connection")?);
    }
    Ok(sessions)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A function that signs `identity` afresh each time it is called.
fn identity_signer(codec: IdentityCodec, identity: Identity) -> Arc<dyn Fn() -> String + Send + Sync> {
    Arc::new(move || codec.sign(&identity, now_unix()))
}

fn identity_header() -> HeaderName {
    HeaderName::from_static(IDENTITY_HEADER)
}

/// A load's numbers plus the stack's CPU over its measured window.
struct Measured {
    outcome: LoopOutcome,
    cpu_cores: f64,
}

impl Measured {
    fn cpu_ms_per_ok(&self) -> Option<f64> {
        let rate = self.outcome.result.ok_per_second();
        (rate > 0.0).then(|| self.cpu_cores * 1000.0 / rate)
    }

    /// `74.1 logins/s, p50 … ms, p99 … ms; 741 answers checked, 0 failed; stack CPU …`.
    fn describe(&self, unit: &str, one: &str) -> String {
        let r = &self.outcome.result;
        let mut text = format!(
            "{} {unit}/s, p50 {} ms, p99 {} ms; {} answers checked, {} failed",
            num(r.ok_per_second()),
            num(r.p50_us as f64 / 1000.0),
            num(r.p99_us as f64 / 1000.0),
            r.requests,
            r.failed()
        );
        if self.outcome.setup_failures > 0 {
            text.push_str(&format!(", {} set-up logins failed", self.outcome.setup_failures));
        }
        if let Some(ms) = self.cpu_ms_per_ok() {
            text.push_str(&format!("; stack CPU {} cores, {} ms per {one}", num(self.cpu_cores), num(ms)));
        }
        if let Some(first) = self.outcome.failure_samples.first().filter(|_| r.failed() > 0) {
            text.push_str(&format!(" (first failure: {first})"));
        }
        text
    }
}

/// A difference with its sign: `+1.20`, `−0.35`.
fn signed(value: f64) -> String {
    if value < 0.0 {
        format!("−{}", num(-value))
    } else {
        format!("+{}", num(value))
    }
}

async fn load<C: Conversation>(
    settings: &SystemSettings,
    pid: u32,
    address: SocketAddr,
    conversations: Vec<C>,
) -> Measured {
    let spec = LoopSpec {
        address,
        path: "/graphql".into(),
        warmup: settings.warmup,
        duration: settings.duration,
        timeout: Duration::from_secs(10),
    };
    // The stack's CPU over the measured window only: sampled when the
    // warm-up ends and when the window closes, while the load runs.
    let window = async {
        tokio::time::sleep(settings.warmup).await;
        let before = procstat::tree_cpu_ticks(pid);
        let started = Instant::now();
        tokio::time::sleep(settings.duration).await;
        let ticks = procstat::tree_cpu_ticks(pid).saturating_sub(before) as f64;
        ticks / TICKS_PER_SECOND / started.elapsed().as_secs_f64().max(f64::EPSILON)
    };
    let (outcome, cpu_cores) = tokio::join!(closed_loop::run(&spec, conversations), window);
    for sample in &outcome.failure_samples {
        say(&format!("  failure: {sample}"));
    }
    Measured { outcome, cpu_cores }
}

async fn measure_all(
    settings: &SystemSettings,
    stack: &Stack,
    isolation: &Isolation,
    pid: u32,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let banner = &stack.banner;
    let gateway = local(banner.gateway.context("no gateway port")?);
    let users = local(banner.users.context("no users port")?);
    let admin_credentials = banner.admin.clone().context("the banner printed no SYS_ADMIN password")?;
    let user_credentials = banner.demo("USER").cloned().context("the banner printed no demo USER")?;
    let connections = settings.connections.max(1) as usize;
    let codec = isolation.codec();

    wait_for(Duration::from_secs(60), || async {
        matches!(post(gateway, "/ready", String::new(), &[]).await, Ok((200, _)))
    })
    .await
    .context("the gateway was not ready within 60 s")?;
    let user = log_in(gateway, &user_credentials).await.context("logging in the demo USER")?;
    let admin = log_in(gateway, &admin_credentials).await.context("logging in the SYS_ADMIN")?;
    let bearer = vec![(http::header::AUTHORIZATION, format!("Bearer {}", user.token))];

    // `me` through both subgraphs, once the demo account has reached users.
    let me_full = "{ me { id username email roles displayName bio } }";
    let started = Instant::now();
    let full_expected = loop {
        let answer = post(gateway, "/graphql", json!({ "query": me_full }).to_string(), &bearer).await;
        if let Ok((status, body)) = answer {
            if let Ok(data) = graphql_data(status, &body) {
                if data["me"]["id"] == user.claims.sub.as_str() && data["me"]["displayName"].is_string() {
                    break body;
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the demo USER's `me` did not answer with both subgraphs' fields within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let check: Value = serde_json::from_slice(&full_expected)?;
    if check["data"]["me"]["email"] != user_credentials.login.as_str() {
        bail!("`me` answered another account: {}", excerpt(&full_expected));
    }

    // One session per connection, as separate clients would have: identical
    // in-flight requests (same query, same identity) would otherwise be
    // merged by the gateway's de-duplication, which is on by default.
    let sessions = log_in_many(gateway, &user_credentials, connections).await?;
    let me_step = |session: &Session, query: &str| {
        Step::measured(json!({ "query": query }).to_string())
            .header(http::header::AUTHORIZATION, &format!("Bearer {}", session.token))
    };
    let repeat_all = |query: &str, expected: &Bytes| -> anyhow::Result<Vec<Repeat>> {
        sessions.iter().map(|session| Repeat::new(me_step(session, query), expected.clone())).collect()
    };
    say("system: `me` through the gateway (auth + users)");
    let measured = load(settings, pid, gateway, repeat_all(me_full, &full_expected)?).await;
    report.lines.push(SystemLine {
        name: format!(
            "`me {{ id username email roles displayName bio }}` through gateway + auth + users, {connections} connections"
        ),
        result: measured.describe("requests", "request"),
    });

    // The gateway's overhead: the same users-only `me` both ways.
    let me_users = "{ me { id displayName bio } }";
    let through = graphql(gateway, me_users, json!({}), &bearer).await.context("`me` through the gateway")?;
    let signer = identity_signer(codec.clone(), user.identity()?);
    let direct = graphql(users, me_users, json!({}), &[(identity_header(), signer())])
        .await
        .context("`me` at the users subgraph")?;
    if through != direct || through["me"]["id"] != user.claims.sub.as_str() {
        bail!("`me` differs through the gateway ({through}) and at the users subgraph ({direct})");
    }
    let expected = Bytes::from(json!({ "data": through }).to_string());
    say("system: `me` (users fields) through the gateway");
    let via_gateway = load(settings, pid, gateway, repeat_all(me_users, &expected)?).await;
    say("system: `me` straight at the users subgraph");
    let mut straight = Vec::with_capacity(connections);
    for session in &sessions {
        let step = Step::measured(json!({ "query": me_users }).to_string());
        let signer = identity_signer(codec.clone(), session.identity()?);
        straight.push(Repeat::new(step, expected.clone())?.with_fresh_header(identity_header(), signer));
    }
    let lone_direct = straight[..1].to_vec();
    let at_users = load(settings, pid, users, straight).await;
    // Unloaded, one connection each way: the per-request overhead itself
    // (at 50 connections the latencies are mostly queueing).
    say("system: the same `me` over one connection, both ways");
    let lone_via = repeat_all(me_users, &expected)?.into_iter().take(1).collect();
    let lone_via = load(settings, pid, gateway, lone_via).await;
    let lone_direct = load(settings, pid, users, lone_direct).await;
    let (g, u) = (&via_gateway.outcome.result, &at_users.outcome.result);
    let (lg, lu) = (&lone_via.outcome.result, &lone_direct.outcome.result);
    report.lines.push(SystemLine {
        name: format!("`me {{ id displayName bio }}` through the gateway, {connections} connections"),
        result: via_gateway.describe("requests", "request"),
    });
    report.lines.push(SystemLine {
        name: format!("the same straight at the users subgraph (signed identity header), {connections} connections"),
        result: at_users.describe("requests", "request"),
    });
    let clean = [g, u, lg, lu].iter().all(|r| r.failed() == 0 && r.ok_per_second() > 0.0);
    let ms = |us: u64| us as f64 / 1000.0;
    let overhead = if clean {
        format!(
            "one connection: p50 {} ms through the gateway, {} ms direct ({} ms), p99 {} ms vs {} ms; \
             {connections} connections: p50 {} ms, p99 {} ms, {}× the direct RPS{}",
            num(ms(lg.p50_us)),
            num(ms(lu.p50_us)),
            signed(ms(lg.p50_us) - ms(lu.p50_us)),
            num(ms(lg.p99_us)),
            num(ms(lu.p99_us)),
            signed((g.p50_us as f64 - u.p50_us as f64) / 1000.0),
            signed((g.p99_us as f64 - u.p99_us as f64) / 1000.0),
            format_args!("{:.2}", g.ok_per_second() / u.ok_per_second()),
            match (via_gateway.cpu_ms_per_ok(), at_users.cpu_ms_per_ok()) {
                (Some(a), Some(b)) => format!("; {} stack CPU ms per request", signed(a - b)),
                _ => String::new(),
            }
        )
    } else {
        "not computed: a run had failures".to_owned()
    };
    report.lines.push(SystemLine { name: "the gateway's overhead on that `me`".into(), result: overhead });

    say("system: login");
    let login = Login { body: login_body(&user_credentials), user_id: user.claims.sub.clone() };
    let measured = load(settings, pid, gateway, vec![login; connections]).await;
    report.lines.push(SystemLine {
        name: format!("login (argon2id verify + RS256 sign) through the gateway, {connections} connections"),
        result: measured.describe("logins", "login"),
    });

    say("system: refreshSession");
    // Each chain starts from a login made before the load, so the logins'
    // argon2 work does not fall into the measured window.
    let chains = log_in_many(gateway, &user_credentials, connections)
        .await?
        .into_iter()
        .map(|session| RefreshChain {
            login: login_body(&user_credentials),
            user_id: session.claims.sub.clone(),
            token: Some(session.refresh),
        })
        .collect();
    let measured = load(settings, pid, gateway, chains).await;
    report.lines.push(SystemLine {
        name: format!(
            "refreshSession (rotation in Redis + RS256 sign) through the gateway, {connections} connections, \
             one token chain each"
        ),
        result: measured.describe("refreshes", "refresh"),
    });

    say(&format!("system: {} sign-ups, each until the users subgraph has it", settings.signups));
    let admin_signer = identity_signer(codec, admin.identity()?);
    let result = sign_up_latency(settings.signups, gateway, users, &isolation.id, &admin_signer).await;
    report.lines.push(SystemLine {
        name: format!(
            "sign-up → the users subgraph returns the account (outbox → JetStream → projection), {} sign-ups one \
             at a time",
            settings.signups
        ),
        result: result.unwrap_or_else(|e| format!("failed: {e:#}")),
    });
    Ok(())
}

async fn wait_for<F, Fut>(limit: Duration, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out after {} s", limit.as_secs())
}

const SIGN_UP: &str = "mutation($input: SignUpInput!) { signUp(input: $input) }";
const FIND: &str = "query($search: String!) { users(search: $search, first: 2) { totalCount edges { node { id \
                    displayName } } } }";

/// Signs up `count` accounts one after another through the gateway and
/// times, for each, how long after `signUp` answered the users subgraph
/// first returns it.
async fn sign_up_latency(
    count: usize,
    gateway: SocketAddr,
    users: SocketAddr,
    run_id: &str,
    admin: &Arc<dyn Fn() -> String + Send + Sync>,
) -> anyhow::Result<String> {
    let tag = run_id.trim_start_matches("bench_");
    let mut sync_us = Vec::with_capacity(count);
    let mut sign_up_us = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for i in 0..count {
        let username = format!("su_{tag}_{i}");
        let input = json!({
            "email": format!("{username}@bench.example.com"),
            "username": username,
            "password": format!("Bench-{}-{i}!", uuid::Uuid::new_v4().simple()),
        });
        let sent = Instant::now();
        match graphql(gateway, SIGN_UP, json!({ "input": input }), &[]).await {
            Ok(data) if data["signUp"] == true => {}
            Ok(data) => {
                failures.push(format!("signUp answered {data}"));
                continue;
            }
            Err(e) => {
                failures.push(format!("signUp: {e:#}"));
                continue;
            }
        }
        let answered = Instant::now();
        sign_up_us.push(answered.duration_since(sent).as_micros() as u64);
        let seen = loop {
            let headers = [(identity_header(), admin())];
            if let Ok(data) = graphql(users, FIND, json!({ "search": username }), &headers).await {
                let found = &data["users"];
                if found["totalCount"] == 1 && found["edges"][0]["node"]["displayName"] == username.as_str() {
                    break Some(Instant::now());
                }
            }
            if answered.elapsed() > Duration::from_secs(30) {
                break None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        match seen {
            Some(at) => sync_us.push(at.duration_since(answered).as_micros() as u64),
            None => failures.push(format!("{username} did not reach the users subgraph within 30 s")),
        }
    }
    for failure in failures.iter().take(closed_loop::MAX_SAMPLES) {
        say(&format!("  failure: {failure}"));
    }
    if sync_us.is_empty() {
        bail!("no sign-up reached the users subgraph ({})", failures.first().map_or("", String::as_str));
    }
    sync_us.sort_unstable();
    sign_up_us.sort_unstable();
    let ms = |values: &[u64], q: f64| num(percentile(values, q).unwrap_or(0) as f64 / 1000.0);
    let mut text = format!(
        "p50 {} ms, p99 {} ms, max {} ms after `signUp` answered ({} of {count} seen, {} failed); `signUp` itself p50 \
         {} ms",
        ms(&sync_us, 0.5),
        ms(&sync_us, 0.99),
        ms(&sync_us, 1.0),
        sync_us.len(),
        failures.len(),
        ms(&sign_up_us, 0.5),
    );
    if let Some(first) = failures.first() {
        text.push_str(&format!(" (first failure: {first})"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "\n  Gatehouse is running (Development)\n  Playground:  http://localhost:41001/graphql\n  \
        Gateway:     http://localhost:41001   (health /health, ready /ready, metrics /metrics)\n  \
        Auth:        http://localhost:41002/graphql\n  Users:       http://localhost:41003/graphql\n  \
        App:         http://localhost:41004/   (the example single-page app)\n  \
        Mail:        /tmp/dev/mail\n  SYS_ADMIN:   admin@gatehouse.local / gatehouse-admin-dev\n  \
        Demo USER:   user@gatehouse.local / gatehouse-user-dev\n  \
        Demo ADMIN:  admin.demo@gatehouse.local / gatehouse-admin-demo-dev\n  Stop with Ctrl-C.\n\n";

    #[test]
    fn the_banner_gives_ports_mail_folder_and_logins() {
        let mut banner = Banner::default();
        for line in BANNER.lines() {
            banner.read_line(line);
        }
        assert!(banner.complete);
        assert_eq!((banner.gateway, banner.auth, banner.users), (Some(41001), Some(41002), Some(41003)));
        assert_eq!(banner.mail.as_deref(), Some("/tmp/dev/mail"));
        let admin = banner.admin.clone().unwrap();
        assert_eq!((admin.login.as_str(), admin.password.as_str()), ("admin@gatehouse.local", "gatehouse-admin-dev"));
        assert_eq!(banner.demo("USER").unwrap().password, "gatehouse-user-dev");
        assert_eq!(banner.demo("ADMIN").unwrap().login, "admin.demo@gatehouse.local");
        assert!(banner.demo("GUEST").is_none());
    }

    #[test]
    fn an_admin_password_from_the_environment_is_not_read_as_one() {
        let mut banner = Banner::default();
        banner.read_line("  SYS_ADMIN:   root@example.com (password from GATEHOUSE_ADMIN_PASSWORD)");
        assert_eq!(banner.admin, None);
        assert!(!banner.complete);
    }

    fn token(claims: Value) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn graphql_errors_and_http_errors_are_refusals() {
        assert_eq!(graphql_data(200, br#"{"data":{"signUp":true}}"#), Ok(json!({"signUp": true})));
        let refused = graphql_data(
            200,
            br#"{"data":null,"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED"}}]}"#,
        );
        assert_eq!(refused, Err("GraphQL error RATE_LIMITED: slow down".to_owned()));
        assert!(graphql_data(502, b"bad gateway").unwrap_err().starts_with("HTTP 502"));
        assert!(graphql_data(200, b"<html>").unwrap_err().starts_with("not JSON"));
        assert!(graphql_data(200, br#"{"data":null}"#).unwrap_err().starts_with("no data"));
    }

    #[test]
    fn an_auth_payload_must_hold_a_token_for_the_account() {
        let alice = "0192c6a0-0000-7000-8000-000000000001";
        let good = json!({
            "accessToken": token(json!({"sub": alice, "sid": "s1", "scope": "guest user"})),
            "tokenType": "Bearer",
            "refreshToken": "r1",
            "user": {"id": alice},
        });
        assert_eq!(check_auth_payload(&good, alice, true), Ok(Some("r1".to_owned())));
        let mut other = good.clone();
        other["accessToken"] = json!(token(json!({"sub": "someone-else", "sid": "s1", "scope": "user"})));
        assert!(check_auth_payload(&other, alice, true).unwrap_err().contains("instead of"));
        let mut no_refresh = good.clone();
        no_refresh["refreshToken"] = Value::Null;
        assert!(check_auth_payload(&no_refresh, alice, true).is_err());
        assert_eq!(check_auth_payload(&no_refresh, alice, false), Ok(None));
        assert!(check_auth_payload(&json!(null), alice, false).is_err());
    }

    #[test]
    fn a_refresh_chain_carries_each_new_token_and_restarts_after_a_failure() {
        let alice = "0192c6a0-0000-7000-8000-000000000001";
        let payload = |refresh: &str| {
            json!({
                "accessToken": token(json!({"sub": alice, "sid": "s1", "scope": "user"})),
                "tokenType": "Bearer", "refreshToken": refresh, "user": {"id": alice},
            })
        };
        let mut chain = RefreshChain { login: Bytes::from_static(b"login"), user_id: alice.into(), token: None };
        let first = chain.next_step();
        assert!(!first.measured && first.body == "login");
        let login_answer = json!({ "data": { "login": payload("r1") } }).to_string();
        assert_eq!(chain.check(200, login_answer.as_bytes()), Ok(()));
        let refresh = chain.next_step();
        assert!(refresh.measured && String::from_utf8_lossy(&refresh.body).contains("\"token\":\"r1\""));
        let rotated = json!({ "data": { "refreshSession": payload("r2") } }).to_string();
        assert_eq!(chain.check(200, rotated.as_bytes()), Ok(()));
        assert!(String::from_utf8_lossy(&chain.next_step().body).contains("\"token\":\"r2\""));
        let same = json!({ "data": { "refreshSession": payload("r2") } }).to_string();
        assert!(chain.check(200, same.as_bytes()).is_err(), "a token that did not rotate is refused");
        assert!(!chain.next_step().measured, "after a failure the chain starts again with a login");
        chain.token = Some("r3".into());
        let reused = br#"{"data":null,"errors":[{"message":"reused","extensions":{"code":"REFRESH_TOKEN_REUSED"}}]}"#;
        assert!(chain.check(200, reused).unwrap_err().contains("REFRESH_TOKEN_REUSED"));
        assert!(!chain.next_step().measured);
    }

    #[test]
    fn token_claims_name_the_account_session_and_scopes() {
        let claims = token_claims(&token(json!({"sub": "u", "sid": "s", "scope": "guest user admin"}))).unwrap();
        assert_eq!(claims.scopes, vec!["guest", "user", "admin"]);
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u", "s"));
        assert!(token_claims("not-a-token").is_err());
    }
}
