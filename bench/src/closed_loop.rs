//! A closed-loop load generator for conversations that wrk's fixed request
//! cannot hold: each connection keeps its own state (a refresh-token chain,
//! a freshly signed identity header) and every answer is checked before it
//! counts.
//!
//! N tasks, one HTTP/1.1 keep-alive connection each, send one request at a
//! time for the warm-up and then the measured window. A response counts when
//! it completes inside the window; its latency is recorded only when the
//! conversation accepted it, so a fast error never flatters the percentiles.
//! Refused answers, HTTP errors, broken connections and timeouts are counted
//! apart, and a few refusal reasons are kept for the report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::load::LoadResult;
use crate::stats::percentile;

/// One request of a conversation.
#[derive(Debug, Clone)]
pub struct Step {
    /// The JSON body.
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// False for set-up steps that are not what is measured (the login that
    /// starts a refresh chain): they are sent and checked but not counted.
    pub measured: bool,
}

impl Step {
    pub fn measured(body: impl Into<Bytes>) -> Self {
        Step { body: body.into(), headers: Vec::new(), measured: true }
    }

    pub fn setup(body: impl Into<Bytes>) -> Self {
        Step { body: body.into(), headers: Vec::new(), measured: false }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }
}

/// What one connection says and how it judges the answers.
pub trait Conversation: Send + 'static {
    /// The next request.
    fn next_step(&mut self) -> Step;
    /// Judges the answer to the last step; `Err` (with a reason) counts it as
    /// failed. Also called with the HTTP status, so a conversation may accept
    /// only 200.
    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String>;
    /// The connection broke or timed out before an answer came.
    fn interrupted(&mut self) {}
}

/// Where and how long to load.
#[derive(Debug, Clone)]
pub struct LoopSpec {
    pub address: SocketAddr,
    /// Path and query, e.g. `/graphql`.
    pub path: String,
    pub warmup: Duration,
    pub duration: Duration,
    /// Longest wait for one answer before it counts as a timeout.
    pub timeout: Duration,
}

/// The numbers, plus up to [`MAX_SAMPLES`] distinct failure reasons.
#[derive(Debug, Clone, Default)]
pub struct LoopOutcome {
    /// `graphql_errors` counts answers the conversation refused (a GraphQL
    /// error, a wrong field, a missing token) that came with a 2xx status.
    pub result: LoadResult,
    /// Failures of unmeasured set-up steps (anywhere in the run).
    pub setup_failures: u64,
    pub failure_samples: Vec<String>,
}

pub const MAX_SAMPLES: usize = 5;

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    requests: u64,
    non2xx: u64,
    refused: u64,
    socket_errors: u64,
    timeouts: u64,
    setup_failures: u64,
    samples: Vec<String>,
}

impl Tally {
    fn sample(&mut self, reason: String) {
        if self.samples.len() < MAX_SAMPLES && !self.samples.contains(&reason) {
            self.samples.push(reason);
        }
    }
}

/// Runs one conversation per connection for `spec.warmup + spec.duration`.
pub async fn run<C: Conversation>(spec: &LoopSpec, conversations: Vec<C>) -> LoopOutcome {
    let start = Instant::now();
    let window_start = start + spec.warmup;
    let deadline = window_start + spec.duration;
    let spec = Arc::new(spec.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for conversation in conversations {
        let spec = spec.clone();
        tasks.spawn(connection(spec, conversation, window_start, deadline));
    }
    let mut total = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        let tally = match joined {
            Ok(tally) => tally,
            Err(e) => {
                total.sample(format!("a load task panicked: {e}"));
                continue;
            }
        };
        total.latencies_us.extend(tally.latencies_us);
        total.requests += tally.requests;
        total.non2xx += tally.non2xx;
        total.refused += tally.refused;
        total.socket_errors += tally.socket_errors;
        total.timeouts += tally.timeouts;
        total.setup_failures += tally.setup_failures;
        for reason in tally.samples {
            total.sample(reason);
        }
    }
    total.latencies_us.sort_unstable();
    let at = |q: f64| percentile(&total.latencies_us, q).unwrap_or(0);
    LoopOutcome {
        result: LoadResult {
            requests: total.requests,
            duration_us: spec.duration.as_micros() as u64,
            non2xx: total.non2xx,
            socket_errors: total.socket_errors,
            timeouts: total.timeouts,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: total.latencies_us.last().copied().unwrap_or(0),
            graphql_errors: Some(total.refused),
        },
        setup_failures: total.setup_failures,
        failure_samples: total.samples,
    }
}

pub(crate) type Sender = http1::SendRequest<Full<Bytes>>;

pub(crate) async fn connect(address: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(address).await.with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

pub(crate) async fn exchange(sender: &mut Sender, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn connection<C: Conversation>(
    spec: Arc<LoopSpec>,
    mut conversation: C,
    window_start: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let host = spec.address.to_string();
    let mut sender: Option<Sender> = None;
    while Instant::now() < deadline {
        let current = match sender.as_mut() {
            Some(current) => current,
            None => match connect(spec.address).await {
                Ok(fresh) => sender.insert(fresh),
                Err(e) => {
                    if Instant::now() >= window_start {
                        tally.socket_errors += 1;
                    }
                    tally.sample(format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let step = conversation.next_step();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(spec.path.as_str())
            .header(header::HOST, host.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        for (name, value) in &step.headers {
            request = request.header(name, value);
        }
        let Ok(request) = request.body(Full::new(step.body.clone())) else {
            tally.sample("a request could not be built".into());
            break;
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout(spec.timeout, exchange(current, request)).await;
        let done = Instant::now();
        let counted = step.measured && done >= window_start && done <= deadline;
        match answer {
            Ok(Ok((status, body))) => {
                let verdict = conversation.check(status, &body);
                if !step.measured {
                    if let Err(reason) = verdict {
                        tally.setup_failures += 1;
                        tally.sample(format!("set-up step: {reason}"));
                    }
                    continue;
                }
                if !counted {
                    continue;
                }
                tally.requests += 1;
                match verdict {
                    Ok(()) => tally.latencies_us.push(done.duration_since(sent).as_micros() as u64),
                    Err(reason) => {
                        if status >= 400 {
                            tally.non2xx += 1;
                        } else {
                            tally.refused += 1;
                        }
                        tally.sample(reason);
                    }
                }
            }
            Ok(Err(e)) => {
                conversation.interrupted();
                sender = None;
                if counted {
                    tally.socket_errors += 1;
                }
                tally.sample(format!("connection: {e:#}"));
            }
            Err(_) => {
                conversation.interrupted();
                sender = None;
                if step.measured && done >= window_start {
                    tally.timeouts += 1;
                }
                tally.sample(format!("no answer within {} s", spec.timeout.as_secs()));
            }
        }
    }
    tally
}

/// A conversation that sends the same request again and again and accepts
/// only one answer: the body the first, separately checked, answer had.
#[derive(Clone)]
pub struct Repeat {
    pub step: Step,
    /// The accepted answer (parsed, so key order and spacing do not matter;
    /// equal bytes skip the parse).
    pub expected: Bytes,
    pub expected_json: Arc<serde_json::Value>,
    /// Re-signs a header for every request (e.g. a fresh identity header).
    pub fresh_header: Option<(HeaderName, Arc<dyn Fn() -> String + Send + Sync>)>,
}

impl Repeat {
    pub fn new(step: Step, expected: Bytes) -> anyhow::Result<Self> {
        let expected_json = serde_json::from_slice(&expected).context("the expected answer is not JSON")?;
        Ok(Repeat { step, expected, expected_json: Arc::new(expected_json), fresh_header: None })
    }

    pub fn with_fresh_header(mut self, name: HeaderName, sign: Arc<dyn Fn() -> String + Send + Sync>) -> Self {
        self.fresh_header = Some((name, sign));
        self
    }
}

impl Conversation for Repeat {
    fn next_step(&mut self) -> Step {
        match &self.fresh_header {
            Some((name, sign)) => self.step.clone().header(name.clone(), &sign()),
            None => self.step.clone(),
        }
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        if status != 200 {
            return Err(format!("HTTP {status}: {}", excerpt(body)));
        }
        if body == self.expected.as_ref() {
            return Ok(());
        }
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) if value == *self.expected_json => Ok(()),
            _ => Err(format!("unexpected answer: {}", excerpt(body))),
        }
    }
}

/// The first 200 characters of a body, for failure reasons.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_accepts_the_expected_answer_in_any_key_order_and_nothing_else() {
        let step = Step::measured(r#"{"query":"{ me { id } }"}"#);
        let mut repeat = Repeat::new(step, Bytes::from_static(br#"{"data":{"me":{"id":"1","name":"a"}}}"#)).unwrap();
        assert!(repeat.check(200, br#"{"data":{"me":{"id":"1","name":"a"}}}"#).is_ok());
        assert!(repeat.check(200, br#"{ "data": {"me": {"name":"a","id":"1"}} }"#).is_ok());
        let wrong = repeat.check(200, br#"{"data":{"me":null},"errors":[{"message":"no"}]}"#);
        assert!(wrong.unwrap_err().contains("unexpected answer"));
        assert!(repeat.check(503, br#"{"data":{"me":{"id":"1","name":"a"}}}"#).unwrap_err().starts_with("HTTP 503"));
    }

    #[test]
    fn a_fresh_header_is_signed_for_every_request() {
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let signer = {
            let counter = counter.clone();
            Arc::new(move || format!("v{}", counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
        };
        let mut repeat = Repeat::new(Step::measured("{}"), Bytes::from_static(b"{}"))
            .unwrap()
            .with_fresh_header(HeaderName::from_static("x-test"), signer);
        let first = repeat.next_step();
        let second = repeat.next_step();
        assert_eq!(first.headers, vec![(HeaderName::from_static("x-test"), HeaderValue::from_static("v0"))]);
        assert_eq!(second.headers, vec![(HeaderName::from_static("x-test"), HeaderValue::from_static("v1"))]);
    }
}
