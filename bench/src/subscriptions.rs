//! The subscription benchmark: many concurrent subscribers on our gateway,
//! half over graphql-ws and half over Server-Sent Events, all subscribed to
//! one subscription of a `ticker` subgraph; each event the ticker publishes
//! is fanned out to every one of them.
//!
//! The ticker is served here, over graphql-ws, and stamps each event with
//! the time it was published; a subscriber's latency is its receipt time
//! minus that stamp (one machine, one clock). The gateway's memory is read
//! from `/proc` before the subscribers connect and once they are all idle;
//! its CPU time over the fan-out phase, likewise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::percentile;
use crate::{closed_loop, procstat};

/// The document every subscriber sends.
const TICKS: &str = "subscription Ticks { ticks { n publishedAt } }";
const PROTOCOL: &str = "graphql-transport-ws";

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Subscribers in all; the first half use graphql-ws, the rest SSE.
    pub subscribers: usize,
    /// Events published once every subscriber is idle.
    pub events: usize,
    /// Time between two events.
    pub interval: Duration,
    /// Connections opened at once while subscribing.
    pub connect_concurrency: usize,
    /// Our gateway's binary.
    pub gatehouse_bin: PathBuf,
    /// Where the supergraph and the gateway's log go.
    pub run_dir: PathBuf,
}

/// What it measured.
#[derive(Debug, Clone)]
pub struct Results {
    pub websocket: usize,
    pub sse: usize,
    pub events: usize,
    /// Events received, over all subscribers.
    pub delivered: usize,
    /// `events × subscribers`.
    pub expected: usize,
    pub connect_seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The gateway's RSS after one warm subscription ended, with the
    /// graphql-ws half connected and idle, then with everyone.
    pub baseline_rss_kb: u64,
    pub websocket_rss_kb: u64,
    pub idle_rss_kb: u64,
    /// The gateway's CPU time over the publishing phase, per event, and as
    /// a share of one core over that phase.
    pub cpu_ms_per_event: f64,
    pub cpu_percent: f64,
}

impl Results {
    /// Memory per idle subscription, in bytes: over all, graphql-ws, SSE.
    pub fn bytes_per_idle_subscription(&self) -> (f64, f64, f64) {
        let per = |from: u64, to: u64, n: usize| to.saturating_sub(from) as f64 * 1024.0 / n.max(1) as f64;
        (
            per(self.baseline_rss_kb, self.idle_rss_kb, self.websocket + self.sse),
            per(self.baseline_rss_kb, self.websocket_rss_kb, self.websocket),
            per(self.websocket_rss_kb, self.idle_rss_kb, self.sse),
        )
    }

    /// The markdown table the command prints.
    pub fn markdown(&self) -> String {
        let (all, websocket, sse) = self.bytes_per_idle_subscription();
        let kb = |bytes: f64| format!("{:.1} KB", bytes / 1024.0);
        let mut out = String::new();
        out.push_str("| Subscribers (graphql-ws + SSE) | Events | Delivered | p50 | p99 | max | Memory per idle subscription (graphql-ws / SSE) | Gateway RSS idle | Gateway CPU per event | Gateway CPU while publishing |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        out.push_str(&format!(
            "| {} ({} + {}) | {} | {} / {} | {:.1} ms | {:.1} ms | {:.1} ms | {} ({} / {}) | {} MB (from {} MB) | {:.0} ms | {:.0} % of a core |\n",
            self.websocket + self.sse,
            self.websocket,
            self.sse,
            self.events,
            self.delivered,
            self.expected,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            kb(all),
            kb(websocket),
            kb(sse),
            self.idle_rss_kb / 1024,
            self.baseline_rss_kb / 1024,
            self.cpu_ms_per_event,
            self.cpu_percent,
        ));
        out
    }
}

/// Runs the benchmark; the gateway is started and stopped here.
pub fn run(settings: &Settings) -> anyhow::Result<Results> {
    if settings.subscribers < 2 || settings.events == 0 {
        bail!("at least 2 subscribers and 1 event");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run_async(settings))
}

async fn run_async(settings: &Settings) -> anyhow::Result<Results> {
    std::fs::create_dir_all(&settings.run_dir)?;
    let ticker = Ticker::start().await?;
    let supergraph = settings.run_dir.join("subscriptions-supergraph.graphql");
    std::fs::write(&supergraph, supergraph_text(ticker.address))?;
    let port = free_port()?;
    let mut gateway = GatewayProcess::start(&settings.gatehouse_bin, &supergraph, port, settings)?;
    let pid = gateway.child.id();
    wait_ready(port, &mut gateway.child).await?;

    // Warm: one subscription and one event, so the upstream connection's
    // and the plan cache's memory is in the baseline, then none.
    {
        let mut warm = Subscriber::websocket(port).await.context("the warm-up subscriber")?;
        ticker.wait_for_upstreams(1).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        ticker.publish(u64::MAX);
        tokio::time::timeout(Duration::from_secs(10), warm.next_event())
            .await
            .context("the warm-up event did not arrive within 10 s")??;
    }
    wait_for_gauge(port, "gateway_subscriptions", 0).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline_rss_kb = procstat::tree_rss_kb(pid);

    // Subscribe everyone, a few at a time: graphql-ws first, then SSE, the
    // memory read once each half is idle (connected, nothing sent but
    // heartbeats).
    let websocket = settings.subscribers / 2;
    let sse = settings.subscribers - websocket;
    let mut connect_seconds = 0.0;
    let gate = Arc::new(Semaphore::new(settings.connect_concurrency.max(1)));
    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(settings.subscribers);
    let mut rss_kb = Vec::with_capacity(2);
    for (transport, count, total) in
        [(Transport::WebSocket, websocket, websocket), (Transport::Sse, sse, settings.subscribers)]
    {
        let wave = Instant::now();
        for _ in 0..count {
            let (gate, connected, events) = (gate.clone(), connected.clone(), settings.events);
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.map_err(|_| anyhow::anyhow!("closed"))?;
                let mut subscriber = Subscriber::connect(transport, port).await?;
                drop(permit);
                connected.fetch_add(1, Ordering::Relaxed);
                let mut latencies = Vec::with_capacity(events);
                while latencies.len() < events {
                    let published_at = subscriber.next_event().await?;
                    latencies.push(now_nanos().saturating_sub(published_at) / 1000);
                }
                Ok::<Vec<u64>, anyhow::Error>(latencies)
            }));
        }
        wait_for_gauge(port, "gateway_subscriptions", total)
            .await
            .with_context(|| format!("{} of {total} subscribers connected", connected.load(Ordering::Relaxed)))?;
        connect_seconds += wave.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss_kb.push(procstat::tree_rss_kb(pid));
    }
    let (websocket_rss_kb, idle_rss_kb) = (rss_kb[0], rss_kb[1]);

    // Publish, and time the gateway's CPU over it.
    let cpu_before = procstat::tree_cpu_ticks(pid);
    let publishing = Instant::now();
    for n in 0..settings.events {
        ticker.publish(n as u64);
        tokio::time::sleep(settings.interval).await;
    }
    let cpu_ticks = procstat::tree_cpu_ticks(pid).saturating_sub(cpu_before);
    let publish_seconds = publishing.elapsed().as_secs_f64();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu_seconds = cpu_ticks as f64 / ticks_per_second;

    // Collect; whatever has not arrived 10 s after the last event is lost.
    let mut latencies = Vec::with_capacity(settings.subscribers * settings.events);
    let mut failures = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for task in tasks {
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(Ok(mine))) => latencies.extend(mine),
            Ok(Ok(Err(error))) => failures.push(format!("{error:#}")),
            Ok(Err(error)) => failures.push(error.to_string()),
            Err(_) => failures.push("events still missing 10 s after the last one".into()),
        }
    }
    gateway.stop();
    if !failures.is_empty() {
        failures.sort();
        failures.dedup();
        eprintln!("{} subscriber(s) failed; first reasons: {:?}", failures.len(), &failures[..failures.len().min(3)]);
    }
    latencies.sort_unstable();
    let ms = |q: f64| percentile(&latencies, q).map_or(f64::NAN, |us| us as f64 / 1000.0);
    Ok(Results {
        websocket,
        sse,
        events: settings.events,
        delivered: latencies.len(),
        expected: settings.subscribers * settings.events,
        connect_seconds,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        max_ms: latencies.last().map_or(f64::NAN, |&us| us as f64 / 1000.0),
        baseline_rss_kb,
        websocket_rss_kb,
        idle_rss_kb,
        cpu_ms_per_event: cpu_seconds * 1000.0 / settings.events as f64,
        cpu_percent: cpu_seconds * 100.0 / publish_seconds,
    })
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A one-subgraph supergraph: `Subscription.ticks` on the ticker.
fn supergraph_text(ticker: SocketAddr) -> String {
    format!(
        r#"schema @link(url: "https://specs.apollo.dev/link/v1.0") @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION) {{
  query: Query
  subscription: Subscription
}}

directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

scalar join__FieldSet
scalar link__Import

enum link__Purpose {{
  SECURITY
  EXECUTION
}}

enum join__Graph {{
  TICKER @join__graph(name: "ticker", url: "http://{ticker}/graphql")
}}

type Query @join__type(graph: TICKER) {{
  ping: String
}}

type Tick @join__type(graph: TICKER) {{
  n: String!
  publishedAt: String!
}}

type Subscription @join__type(graph: TICKER) {{
  ticks: Tick!
}}
"#
    )
}

/// Our gateway, running for the benchmark.
struct GatewayProcess {
    child: Child,
}

impl GatewayProcess {
    fn start(bin: &Path, supergraph: &Path, port: u16, settings: &Settings) -> anyhow::Result<Self> {
        if !bin.is_file() {
            bail!("no gateway binary at {} (build it with --profile bench-release)", bin.display());
        }
        let room = (settings.subscribers + 1000).to_string();
        let log = std::fs::File::create(settings.run_dir.join("subscriptions-gateway.log"))?;
        let child = Command::new(bin)
            .arg("gateway")
            .arg("--supergraph")
            .arg(supergraph)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--watch-supergraph", "false", "--graphiql", "false", "--auth", "false"])
            // Every subscriber comes from 127.0.0.1: one caller, as far as
            // the per-caller limit can tell without tokens.
            .args(["--max-connections", &room])
            .args(["--subscription-max-total", &room])
            .args(["--subscription-max-per-caller", &room])
            .args(["--websocket-max-connections", &room])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(GatewayProcess { child })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One GET to the gateway on `port`: status and body.
async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = closed_loop::connect(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let request = http::Request::get(path).header("host", format!("127.0.0.1:{port}")).body(Full::new(Bytes::new()))?;
    closed_loop::exchange(&mut sender, request).await
}

async fn wait_ready(port: u16, child: &mut Child) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Some(status) = child.try_wait()? {
            bail!("the gateway exited ({status}) before it was ready");
        }
        if matches!(http_get(port, "/ready").await, Ok((200, _))) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the gateway was not ready within 30 s")
}

/// Waits until the gateway's gauge `name` (on `/metrics`) reads `value`.
async fn wait_for_gauge(port: u16, name: &str, value: usize) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..1200 {
        if let Ok((200, body)) = http_get(port, "/metrics").await {
            last = gauge(&String::from_utf8_lossy(&body), name);
            if last == Some(value as f64) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{name} read {last:?} after 120 s, not {value}")
}

/// A gauge's value in Prometheus text (an unset gauge is absent: 0).
fn gauge(text: &str, name: &str) -> Option<f64> {
    let value = text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        rest.strip_prefix(' ').or_else(|| rest.strip_prefix('{').and_then(|r| r.split_once("} ")).map(|(_, v)| v))
    });
    match value {
        Some(v) => v.trim().parse().ok(),
        None => text.contains("# TYPE").then_some(0.0),
    }
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    WebSocket,
    Sse,
}

/// One client of the gateway, on one transport.
enum Subscriber {
    WebSocket(Box<tokio_tungstenite::WebSocketStream<TcpStream>>),
    Sse { body: hyper::body::Incoming, pending: Vec<u8> },
}

impl Subscriber {
    async fn connect(transport: Transport, port: u16) -> anyhow::Result<Self> {
        match transport {
            Transport::WebSocket => Self::websocket(port).await,
            Transport::Sse => Self::sse(port).await,
        }
    }

    /// graphql-ws: `connection_init`, `connection_ack`, `subscribe`.
    async fn websocket(port: u16) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let mut request = format!("ws://127.0.0.1:{port}/graphql").into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", http::HeaderValue::from_static(PROTOCOL));
        let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
        socket.send(Message::text(json!({ "type": "connection_init" }).to_string())).await?;
        loop {
            match socket.next().await.context("closed before connection_ack")?? {
                Message::Text(text) if text.contains("connection_ack") => break,
                Message::Close(frame) => bail!("closed before connection_ack: {frame:?}"),
                _ => {}
            }
        }
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": TICKS } });
        socket.send(Message::text(subscribe.to_string())).await?;
        Ok(Subscriber::WebSocket(Box::new(socket)))
    }

    /// GraphQL over SSE, distinct connections: one POST per subscription.
    async fn sse(port: u16) -> anyhow::Result<Self> {
        let mut sender = closed_loop::connect(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let request = http::Request::post("/graphql")
            .header("host", format!("127.0.0.1:{port}"))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::from(json!({ "query": TICKS }).to_string())))?;
        let response = sender.send_request(request).await?;
        if response.status() != 200 {
            bail!("SSE subscription answered {}", response.status());
        }
        Ok(Subscriber::Sse { body: response.into_body(), pending: Vec::new() })
    }

    /// The next event's publication stamp (Unix nanoseconds).
    async fn next_event(&mut self) -> anyhow::Result<u64> {
        match self {
            Subscriber::WebSocket(socket) => loop {
                match socket.next().await.context("the socket closed")?? {
                    Message::Text(text) => {
                        let message: Value = serde_json::from_str(&text)?;
                        match message["type"].as_str() {
                            Some("next") => return stamp(&message["payload"]),
                            Some("ping") => socket.send(Message::text(r#"{"type":"pong"}"#)).await?,
                            Some(other) => bail!("unexpected {other}: {text}"),
                            None => bail!("a message without a type: {text}"),
                        }
                    }
                    Message::Close(frame) => bail!("closed: {frame:?}"),
                    _ => {}
                }
            },
            Subscriber::Sse { body, pending } => loop {
                // One event: lines up to a blank line; comments are heartbeats.
                if let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = pending.drain(..end + 2).collect();
                    let text = std::str::from_utf8(&event)?;
                    if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                        if text.starts_with("event: next") {
                            return stamp(&serde_json::from_str(data)?);
                        }
                        bail!("unexpected event: {text}");
                    }
                    continue;
                }
                let frame = body.frame().await.context("the stream ended")??;
                if let Ok(data) = frame.into_data() {
                    pending.extend_from_slice(&data);
                }
            },
        }
    }
}

fn stamp(payload: &Value) -> anyhow::Result<u64> {
    let Some(at) = payload["data"]["ticks"]["publishedAt"].as_str() else {
        bail!("not a tick: {payload}");
    };
    Ok(at.parse()?)
}

/// The `ticker` subgraph: graphql-ws only, one subscription field whose
/// events are whatever [`Ticker::publish`] sends.
struct Ticker {
    address: SocketAddr,
    events: broadcast::Sender<Arc<str>>,
    upstreams: Arc<AtomicUsize>,
}

impl Ticker {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (events, _) = broadcast::channel(64);
        let upstreams = Arc::new(AtomicUsize::new(0));
        let (sender, counter) = (events.clone(), upstreams.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (events, counter) = (sender.subscribe(), counter.clone());
                tokio::spawn(async move {
                    let _ = serve_ticker_connection(stream, events, counter).await;
                });
            }
        });
        Ok(Ticker { address, events, upstreams })
    }

    /// Sends tick `n` to every upstream subscription, stamped now.
    fn publish(&self, n: u64) {
        let payload = json!({ "data": { "ticks": { "n": n.to_string(), "publishedAt": now_nanos().to_string() } } });
        let _ = self.events.send(payload.to_string().into());
    }

    async fn wait_for_upstreams(&self, n: usize) -> anyhow::Result<()> {
        for _ in 0..100 {
            if self.upstreams.load(Ordering::Relaxed) >= n {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the gateway did not subscribe to the ticker within 10 s")
    }
}

// The handshake callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn serve_ticker_connection(
    stream: TcpStream,
    mut events: broadcast::Receiver<Arc<str>>,
    upstreams: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let choose = |request: &WsRequest, mut response: WsResponse| -> Result<WsResponse, ErrorResponse> {
        let offered = request.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
        if offered.split(',').any(|p| p.trim() == PROTOCOL) {
            response.headers_mut().insert("sec-websocket-protocol", http::HeaderValue::from_static(PROTOCOL));
        }
        Ok(response)
    };
    let mut socket = tokio_tungstenite::accept_hdr_async(stream, choose).await?;
    let mut subscription: Option<String> = None;
    loop {
        tokio::select! {
            message = socket.next() => {
                let Some(message) = message else { break };
                let Message::Text(text) = message? else { continue };
                let message: Value = serde_json::from_str(&text)?;
                match message["type"].as_str() {
                    Some("connection_init") => {
                        socket.send(Message::text(r#"{"type":"connection_ack"}"#)).await?;
                    }
                    Some("ping") => socket.send(Message::text(r#"{"type":"pong"}"#)).await?,
                    Some("subscribe") => {
                        subscription = message["id"].as_str().map(str::to_owned);
                        upstreams.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("complete") if subscription.take().is_some() => {
                        upstreams.fetch_sub(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            event = events.recv() => {
                let Ok(event) = event else { continue };
                if let Some(id) = &subscription {
                    let next = format!(r#"{{"id":{},"type":"next","payload":{event}}}"#, Value::from(id.as_str()));
                    socket.send(Message::text(next)).await?;
                }
            }
        }
    }
    if subscription.is_some() {
        upstreams.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_gauge_with_and_without_labels_and_an_unset_one() {
        let text = "# TYPE gateway_subscriptions gauge\ngateway_subscriptions 12\ngateway_websockets{a=\"b\"} 3\n";
        assert_eq!(gauge(text, "gateway_subscriptions"), Some(12.0));
        assert_eq!(gauge(text, "gateway_websockets"), Some(3.0));
        assert_eq!(gauge(text, "gateway_nothing"), Some(0.0));
        assert_eq!(gauge("", "gateway_subscriptions"), None);
    }

    #[test]
    fn memory_per_idle_subscription_is_the_growth_over_the_subscribers() {
        let results = Results {
            websocket: 5,
            sse: 5,
            events: 1,
            delivered: 10,
            expected: 10,
            connect_seconds: 1.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
            baseline_rss_kb: 1000,
            websocket_rss_kb: 1040,
            idle_rss_kb: 1100,
            cpu_ms_per_event: 1.0,
            cpu_percent: 10.0,
        };
        let kb = 1024.0;
        assert_eq!(results.bytes_per_idle_subscription(), (100.0 * kb / 10.0, 40.0 * kb / 5.0, 60.0 * kb / 5.0));
        assert!(results.markdown().contains("| 10 (5 + 5) | 1 | 10 / 10 |"));
    }
}
