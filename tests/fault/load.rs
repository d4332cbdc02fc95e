//! The load: clients that sign up, verify, log in, refresh and ask `me`
//! through the gateways' balancer, each answer recorded with its time and
//! its `extensions.code`; and a prober that revokes sessions and times how
//! long each gateway takes to refuse their access tokens.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SIGN_UP: &str = "mutation($input: SignUpInput!) { signUp(input: $input) }";
const VERIFY: &str = "mutation($e: String!, $c: String!) { verifyEmail(email: $e, code: $c) }";
const LOGIN: &str = "mutation($l: String!, $p: String!) { login(login: $l, password: $p, refreshTokenIn: BODY) { \
                     accessToken refreshToken } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
const ME: &str = "{ me { id username displayName } }";
const LOGOUT: &str = "mutation { logout }";

/// One answer: when it came (seconds into the run), to what, and the
/// failure's code (`None`: it succeeded).
#[derive(Debug, Clone)]
pub struct Record {
    /// When the request was sent and when its answer (or failure) came.
    pub at: f64,
    pub done: f64,
    pub op: &'static str,
    pub failure: Option<String>,
}

/// Everything the clients saw.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    records: Arc<Mutex<Vec<Record>>>,
}

impl Recorder {
    pub fn new(started: Instant) -> Self {
        Self { started, records: Arc::default() }
    }

    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn record(&self, at: f64, op: &'static str, failure: Option<String>) {
        let done = self.now();
        self.records.lock().unwrap().push(Record { at, done, op, failure });
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

/// A GraphQL call; answers `data` or the failure's code.
pub async fn graphql(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    bearer: Option<&str>,
) -> Result<Value, String> {
    let mut request = http.post(url).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|_| "CONNECTION".to_owned())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.map_err(|_| format!("HTTP_{status}"))?;
    if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
        return Err(error["extensions"]["code"].as_str().unwrap_or("NO_CODE").to_owned());
    }
    if body["data"].is_null() {
        return Err(format!("HTTP_{status}"));
    }
    Ok(body["data"].clone())
}

/// The verification codes of the mail folder, by recipient.
#[derive(Clone)]
pub struct MailFolder {
    dir: PathBuf,
    codes: Arc<Mutex<Mailbox>>,
}

/// The codes found so far, by recipient, and the mail files already read.
#[derive(Default)]
struct Mailbox {
    codes: HashMap<String, String>,
    read: std::collections::HashSet<PathBuf>,
}

impl MailFolder {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, codes: Arc::default() }
    }

    fn scan(&self) {
        let mut mailbox = self.codes.lock().unwrap();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if mailbox.read.contains(&path) || path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let to = text.lines().find_map(|l| l.strip_prefix("To: ")).map(|t| t.trim().trim_matches(['<', '>']));
            let code = text.lines().find_map(|l| l.trim().strip_prefix("Code: ")).map(str::trim);
            if let (Some(to), Some(code)) = (to, code) {
                mailbox.codes.insert(to.to_owned(), code.to_owned());
                mailbox.read.insert(path);
            }
        }
    }

    /// The code mailed to `email`, waiting up to `limit` for the mail.
    pub async fn code(&self, email: &str, limit: Duration) -> Option<String> {
        let started = Instant::now();
        loop {
            if let Some(code) = self.codes.lock().unwrap().codes.get(email).cloned() {
                return Some(code);
            }
            if started.elapsed() > limit {
                return None;
            }
            self.scan();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A client's account and its tokens.
pub struct Account {
    pub login: String,
    pub password: String,
    access: Option<String>,
    refresh: Option<String>,
}

/// One client: signs up an account, then logs in, asks `me` and refreshes
/// over and over, until `stop`.
pub async fn client(
    worker: usize,
    run: String,
    gateway: String,
    mail: MailFolder,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut serial = 0;
    while !stop.load(Ordering::Relaxed) {
        serial += 1;
        let Some(mut account) = sign_up(&http, &gateway, &mail, &recorder, &format!("{run}_{worker}_{serial}")).await
        else {
            continue;
        };
        for _ in 0..6 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if account.access.is_none() {
                log_in(&http, &gateway, &recorder, &mut account).await;
                continue;
            }
            for _ in 0..2 {
                let at = recorder.now();
                let answer = graphql(&http, &gateway, ME, json!({}), account.access.as_deref()).await;
                let failure = match answer {
                    Ok(data) if data["me"]["username"] == account.login.as_str() => None,
                    // The users subgraph has no record of the account yet.
                    Ok(data) if data["me"].is_null() => Some("NOT_SYNCED".to_owned()),
                    Ok(data) => Some(format!("BAD_DATA {data}")),
                    Err(code) => Some(code),
                };
                recorder.record(at, "me", failure);
            }
            let at = recorder.now();
            let token = account.refresh.clone().unwrap_or_default();
            match graphql(&http, &gateway, REFRESH, json!({ "t": token }), None).await {
                Ok(data) => {
                    account.access = data["refreshSession"]["accessToken"].as_str().map(str::to_owned);
                    account.refresh = data["refreshSession"]["refreshToken"].as_str().map(str::to_owned);
                    recorder.record(at, "refreshSession", None);
                }
                Err(code) => {
                    // A lost rotation is answered as a refused token: log in again.
                    account.access = None;
                    recorder.record(at, "refreshSession", Some(code));
                }
            }
        }
    }
}

/// Records the answer of mutation `op`, which succeeds when it answers
/// `true`; answers whether it did.
fn record_true(recorder: &Recorder, at: f64, op: &'static str, answer: Result<Value, String>) -> bool {
    let failure = match answer {
        Ok(data) if data[op] == true => None,
        Ok(data) => Some(format!("BAD_DATA {data}")),
        Err(code) => Some(code),
    };
    let succeeded = failure.is_none();
    recorder.record(at, op, failure);
    succeeded
}

/// Signs up `name`, verifies the mailed code and logs in.
pub async fn sign_up(
    http: &reqwest::Client,
    gateway: &str,
    mail: &MailFolder,
    recorder: &Recorder,
    name: &str,
) -> Option<Account> {
    let email = format!("{name}@fault.example.com");
    let password = format!("Fault-{}!", uuid::Uuid::new_v4().simple());
    let input = json!({ "email": email, "username": name, "password": password });
    let at = recorder.now();
    let answer = graphql(http, gateway, SIGN_UP, json!({ "input": input }), None).await;
    if !record_true(recorder, at, "signUp", answer) {
        return None;
    }
    let at = recorder.now();
    let Some(code) = mail.code(&email, Duration::from_secs(20)).await else {
        recorder.record(at, "verifyEmail", Some("NO_MAIL".into()));
        return None;
    };
    let at = recorder.now();
    let answer = graphql(http, gateway, VERIFY, json!({ "e": email, "c": code }), None).await;
    if !record_true(recorder, at, "verifyEmail", answer) {
        return None;
    }
    let mut account = Account { login: name.to_owned(), password, access: None, refresh: None };
    log_in(http, gateway, recorder, &mut account).await;
    Some(account)
}

async fn log_in(http: &reqwest::Client, gateway: &str, recorder: &Recorder, account: &mut Account) {
    let at = recorder.now();
    match graphql(http, gateway, LOGIN, json!({ "l": account.login, "p": account.password }), None).await {
        Ok(data) => {
            account.access = data["login"]["accessToken"].as_str().map(str::to_owned);
            account.refresh = data["login"]["refreshToken"].as_str().map(str::to_owned);
            recorder.record(at, "login", None);
        }
        Err(code) => recorder.record(at, "login", Some(code)),
    }
}

/// How long each gateway took to refuse a revoked session's access token.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    /// Per gateway index: every measured delay, in milliseconds.
    pub delays_ms: Vec<Vec<u64>>,
    /// Logouts that failed (inside a fault window, say) and were not measured.
    pub skipped: usize,
}

/// Every `every`: logs in, checks each live gateway accepts the token, logs
/// out, and polls every gateway directly until it refuses the token.
pub async fn revocation_prober(
    balancer: String,
    gateways: Vec<String>,
    login: (String, String),
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Revocations {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut result = Revocations { delays_ms: vec![Vec::new(); gateways.len()], skipped: 0 };
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(every).await;
        let Ok(data) = graphql(&http, &balancer, LOGIN, json!({ "l": login.0, "p": login.1 }), None).await else {
            result.skipped += 1;
            continue;
        };
        let Some(token) = data["login"]["accessToken"].as_str().map(str::to_owned) else { continue };
        // Only gateways that serve the token now take part (a killed one does not).
        let mut live = Vec::new();
        for (i, url) in gateways.iter().enumerate() {
            if graphql(&http, url, ME, json!({}), Some(&token)).await.is_ok() {
                live.push(i);
            }
        }
        if graphql(&http, &balancer, LOGOUT, json!({}), Some(&token)).await.is_err() {
            result.skipped += 1;
            continue;
        }
        let revoked = Instant::now();
        let polls = live.iter().map(|&i| {
            let (http, url, token) = (http.clone(), gateways[i].clone(), token.clone());
            async move {
                loop {
                    let answer = graphql(&http, &url, ME, json!({}), Some(&token)).await;
                    if matches!(&answer, Err(code) if code == "UNAUTHENTICATED") {
                        return (i, revoked.elapsed().as_millis() as u64);
                    }
                    if revoked.elapsed() > Duration::from_secs(10) {
                        return (i, u64::MAX);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        for (i, delay) in futures::future::join_all(polls).await {
            result.delays_ms[i].push(delay);
        }
    }
    result
}
