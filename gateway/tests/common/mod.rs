//! Shared harness for the gateway's end-to-end tests: builders for test
//! subgraphs (async-graphql schemas or raw axum handlers on port 0) and a
//! test gateway pointed at them.

#![allow(dead_code)]

pub mod auth;
pub mod media;
pub mod shop;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::{ObjectType, Schema, SubscriptionType};
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use gatehouse_gateway::{Application, Gateway, GatewayConfig};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a test subgraph saw: every request body and its headers.
#[derive(Clone, Default)]
pub struct Recorder {
    pub count: Arc<AtomicUsize>,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    pub headers: Arc<Mutex<Vec<HeaderMap>>>,
    /// The HTTP version of each request.
    pub versions: Arc<Mutex<Vec<axum::http::Version>>>,
}

impl Recorder {
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The HTTP versions requests came in, in order.
    pub fn versions(&self) -> Vec<axum::http::Version> {
        self.versions.lock().unwrap().clone()
    }

    fn record(&self, body: &Value, headers: &HeaderMap, version: axum::http::Version) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.versions.lock().unwrap().push(version);
        self.bodies.lock().unwrap().push(body.clone());
        self.headers.lock().unwrap().push(headers.clone());
    }
}

/// A running test subgraph.
pub struct TestSubgraph {
    pub name: String,
    pub url: String,
    pub recorder: Recorder,
    shutdown: CancellationToken,
}

impl Drop for TestSubgraph {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(router: Router) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(token.cancelled_owned()).await.unwrap();
    });
    (format!("http://127.0.0.1:{port}/graphql"), shutdown)
}

/// Serves through a Gatehouse listener (TLS when `server` has it, HTTP/2
/// by ALPN or prior knowledge): `https://localhost:<port>/graphql` or
/// `http://127.0.0.1:<port>/graphql`.
async fn serve_on(router: Router, server: Arc<gatehouse_listener::Server>, tls: bool) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    tokio::spawn(gatehouse_listener::serve(server, listener, router, shutdown.clone()));
    let url =
        if tls { format!("https://localhost:{port}/graphql") } else { format!("http://127.0.0.1:{port}/graphql") };
    (url, shutdown)
}

/// Answers async-graphql requests at `/graphql`, recording them.
fn schema_router<Q, M, S>(schema: Schema<Q, M, S>, rec: Recorder) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    Router::new().route(
        "/graphql",
        post(move |version: axum::http::Version, headers: HeaderMap, body: Bytes| {
            let schema = schema.clone();
            let rec = rec.clone();
            async move {
                let value: Value = serde_json::from_slice(&body).unwrap();
                rec.record(&value, &headers, version);
                let request: async_graphql::Request = serde_json::from_value(value).unwrap();
                let response = schema.execute(request).await;
                axum::Json(serde_json::to_value(response).unwrap()).into_response()
            }
        }),
    )
}

impl TestSubgraph {
    /// Serves an async-graphql schema at `/graphql`.
    pub async fn schema<Q, M, S>(name: &str, schema: Schema<Q, M, S>) -> Self
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let recorder = Recorder::default();
        let router = schema_router(schema, recorder.clone());
        let (url, shutdown) = serve(router).await;
        Self { name: name.to_string(), url, recorder, shutdown }
    }

    /// Serves an async-graphql schema at `/graphql` (POST), with `get` (a
    /// WebSocket upgrade, say) on the same path.
    pub async fn schema_with_route<Q, M, S>(
        name: &str,
        schema: Schema<Q, M, S>,
        get: axum::routing::MethodRouter,
    ) -> Self
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let recorder = Recorder::default();
        let router = schema_router(schema, recorder.clone()).route("/graphql", get);
        let (url, shutdown) = serve(router).await;
        Self { name: name.to_string(), url, recorder, shutdown }
    }

    /// Serves an async-graphql schema at `/graphql` through a Gatehouse
    /// listener: over TLS (an `https://localhost` URL) when `server` has it.
    pub async fn schema_on<Q, M, S>(
        name: &str,
        schema: Schema<Q, M, S>,
        server: Arc<gatehouse_listener::Server>,
        tls: bool,
    ) -> Self
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let recorder = Recorder::default();
        let (url, shutdown) = serve_on(schema_router(schema, recorder.clone()), server, tls).await;
        Self { name: name.to_string(), url, recorder, shutdown }
    }

    /// Serves a raw handler: it gets the request body and returns any response.
    pub async fn raw<F, Fut>(name: &str, handler: F) -> Self
    where
        F: Fn(Value) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let recorder = Recorder::default();
        let rec = recorder.clone();
        let router = Router::new().route(
            "/graphql",
            post(move |version: axum::http::Version, headers: HeaderMap, body: Bytes| {
                let handler = handler.clone();
                let rec = rec.clone();
                async move {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    rec.record(&value, &headers, version);
                    handler(value).await
                }
            }),
        );
        let (url, shutdown) = serve(router).await;
        Self { name: name.to_string(), url, recorder, shutdown }
    }
}

pub fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// A running gateway over a temporary copy of a supergraph.
pub struct TestGateway {
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin listener, when configured.
    pub admin_base: Option<String>,
    pub http: reqwest::Client,
    pub gateway: Arc<Gateway>,
    pub supergraph_path: PathBuf,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A change to the gateway's configuration before it starts.
type ConfigTweak = Box<dyn FnOnce(&mut GatewayConfig)>;

pub struct GatewayBuilder {
    sdl: String,
    subgraphs: Vec<(String, String)>,
    tweak: Vec<ConfigTweak>,
    shared: Option<gatehouse_common::settings::SharedSettings>,
}

impl GatewayBuilder {
    pub fn new(sdl: impl Into<String>) -> Self {
        Self { sdl: sdl.into(), subgraphs: Vec::new(), tweak: Vec::new(), shared: None }
    }

    pub fn subgraph(mut self, subgraph: &TestSubgraph) -> Self {
        self.subgraphs.push((subgraph.name.clone(), subgraph.url.clone()));
        self
    }

    pub fn subgraph_url(mut self, name: &str, url: &str) -> Self {
        self.subgraphs.push((name.to_string(), url.to_string()));
        self
    }

    /// The shared settings authentication needs (identity secret, Redis, NATS).
    pub fn shared(mut self, shared: gatehouse_common::settings::SharedSettings) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut GatewayConfig) + 'static) -> Self {
        self.tweak.push(Box::new(f));
        self
    }

    pub async fn start(self) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("supergraph.graphql");
        std::fs::write(&path, &self.sdl).unwrap();
        let mut config = GatewayConfig::new(path.clone(), "127.0.0.1:0".parse().unwrap());
        // The federation tests run without authentication; the security tests
        // turn it on (and pass the shared settings it needs).
        config.security = gatehouse_gateway::security::SecurityConfig::off();
        config.subgraph_urls = self.subgraphs.iter().map(|(n, u)| format!("{n}={u}")).collect();
        config.subgraph_timeout_ms = 5_000;
        for tweak in self.tweak {
            tweak(&mut config);
        }
        let app = Application::build_with(config, self.shared).await.unwrap();
        let port = app.port();
        let admin_base = app.admin_port().map(|port| format!("http://127.0.0.1:{port}"));
        let gateway = app.gateway();
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestGateway {
            base: format!("http://127.0.0.1:{port}"),
            admin_base,
            http: reqwest::Client::new(),
            gateway,
            supergraph_path: path,
            shutdown,
            _dir: dir,
        }
    }
}

impl TestGateway {
    /// Asks the gateway to stop, as the CLI does on Ctrl-C.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap()
    }

    /// POSTs a JSON body and returns (status, parsed body).
    pub async fn post_json(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.graphql_url())
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn query(&self, query: &str) -> Value {
        self.post_json(json!({ "query": query })).await.1
    }

    pub async fn query_vars(&self, query: &str, variables: Value) -> Value {
        self.post_json(json!({ "query": query, "variables": variables })).await.1
    }

    /// The response body as raw text, for checking key order.
    pub async fn query_text(&self, query: &str) -> String {
        self.http
            .post(self.graphql_url())
            .header("content-type", "application/json")
            .body(json!({ "query": query }).to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The plan for a document, pretty-printed the way the planner prints it.
    pub fn plan(&self, query: &str) -> String {
        match self.gateway.plan_for(query, None) {
            Ok(Some(plan)) => plan.to_string(),
            Ok(None) => "no plan".to_string(),
            Err(e) => format!("error: {:?}", e.into_errors()),
        }
    }
}

/// Sends `{ me { id } }` through `gateway` `n` times at once, each from its
/// own task (a task aborted mid-flight is a client that hung up).
pub fn fire_me_queries(gateway: &Arc<TestGateway>, n: usize) -> Vec<tokio::task::JoinHandle<Value>> {
    (0..n)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move { gateway.query("{ me { id } }").await })
        })
        .collect()
}

/// A gate test subgraphs wait at until the test opens it. Opening is never
/// lost: a handler that reaches the gate after it opened passes at once
/// (`Notify::notify_waiters` would leave it waiting for good).
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Gate {
    pub async fn wait(&self) {
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }
}
