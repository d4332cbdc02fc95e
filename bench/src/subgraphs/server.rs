//! Serves the four subgraphs over HTTP/1.1 (and h2c), one listener each,
//! with plain hyper: no router, no middleware, one small handler; and, for
//! the `tls` variant, the same four over TLS (HTTP/2 or HTTP/1.1 by ALPN).
//!
//! Every port also answers `GET /counters` with the requests each subgraph
//! has served, which is how the runner counts subgraph requests per client
//! request without trusting any gateway's own metrics.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::exec::{self, Document};
use super::resolve::Subgraph;

/// Requests served, per subgraph in [`Subgraph::ALL`] order.
#[derive(Debug, Default)]
pub struct Counters {
    requests: [AtomicU64; 4],
    with_authorization: [AtomicU64; 4],
}

/// A snapshot of [`Counters`], as `GET /counters` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// GraphQL requests per subgraph, keyed by subgraph name.
    pub requests: HashMap<String, u64>,
    /// Of those, the ones that carried an `authorization` header.
    pub with_authorization: HashMap<String, u64>,
}

impl CounterSnapshot {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn total_with_authorization(&self) -> u64 {
        self.with_authorization.values().sum()
    }
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |counters: &[AtomicU64; 4]| {
            Subgraph::ALL.iter().map(|s| (s.name().to_owned(), counters[s.index()].load(Ordering::Relaxed))).collect()
        };
        CounterSnapshot { requests: read(&self.requests), with_authorization: read(&self.with_authorization) }
    }
}

/// The state the four servers share.
#[derive(Default)]
pub struct State {
    pub counters: Counters,
    /// Parsed operations by query text: gateways send the same few queries
    /// over and over, so each is parsed once.
    documents: Mutex<HashMap<String, Arc<Document>>>,
}

impl State {
    fn document(&self, query: &str) -> Result<Arc<Document>, String> {
        if let Some(doc) = self.documents.lock().unwrap_or_else(|e| e.into_inner()).get(query) {
            return Ok(doc.clone());
        }
        let doc = Arc::new(exec::parse(query)?);
        let mut documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        // A gateway with unique queries per request would grow this forever.
        if documents.len() > 10_000 {
            documents.clear();
        }
        documents.insert(query.to_owned(), doc.clone());
        Ok(doc)
    }

    /// Answers one GraphQL request body for `subgraph`.
    pub fn answer(&self, subgraph: Subgraph, body: &[u8], out: &mut Vec<u8>) {
        #[derive(Deserialize)]
        struct GraphQLRequest {
            query: String,
            #[serde(default, rename = "operationName")]
            operation_name: Option<String>,
            #[serde(default)]
            variables: Json,
        }
        let request: GraphQLRequest = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(error) => return exec::write_request_error(out, &format!("bad request body: {error}")),
        };
        match self.document(&request.query) {
            Ok(doc) => exec::execute(subgraph, &doc, request.operation_name.as_deref(), &request.variables, out),
            Err(error) => exec::write_request_error(out, &error),
        }
    }
}

/// Binds the four subgraphs on `host` at `base_port`, `base_port + 1`, …
/// (in [`Subgraph::ALL`] order); port 0 binds each on a free port.
pub async fn bind(host: &str, base_port: u16) -> std::io::Result<Vec<(Subgraph, TcpListener)>> {
    let mut listeners = Vec::new();
    for (offset, subgraph) in Subgraph::ALL.into_iter().enumerate() {
        let port = if base_port == 0 { 0 } else { base_port + offset as u16 };
        listeners.push((subgraph, TcpListener::bind((host, port)).await?));
    }
    Ok(listeners)
}

/// Serves the bound subgraphs until the task is dropped; with `tls`, each
/// connection is a TLS one.
pub async fn serve(listeners: Vec<(Subgraph, TcpListener)>, state: Arc<State>, tls: Option<TlsAcceptor>) {
    let mut tasks = tokio::task::JoinSet::new();
    for (subgraph, listener) in listeners {
        tasks.spawn(accept_loop(subgraph, listener, state.clone(), tls.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// A TLS acceptor serving `cert` and `key` (PEM), offering HTTP/2 and
/// HTTP/1.1 by ALPN.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    let pair = gatehouse_listener::tls::KeyPair::load(cert, key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(gatehouse_listener::tls::provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(pair);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(subgraph: Subgraph, listener: TcpListener, state: Arc<State>, tls: Option<TlsAcceptor>) {
    loop {
        let (stream, _peer): (_, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(subgraph, state.clone(), request));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}

async fn handle(
    subgraph: Subgraph,
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, _) => {
            state.counters.requests[subgraph.index()].fetch_add(1, Ordering::Relaxed);
            if request.headers().contains_key(header::AUTHORIZATION) {
                state.counters.with_authorization[subgraph.index()].fetch_add(1, Ordering::Relaxed);
            }
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "could not read the body")),
            };
            let mut out = Vec::with_capacity(4096);
            state.answer(subgraph, &body, &mut out);
            json(out)
        }
        (&Method::GET, "/counters") => json(serde_json::to_vec(&state.counters.snapshot()).unwrap_or_default()),
        (&Method::GET, "/health") => plain(StatusCode::OK, "ok"),
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(response)
}

fn json(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
