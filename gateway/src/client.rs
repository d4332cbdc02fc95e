//! The pooled keep-alive HTTP client every subgraph request goes through,
//! with optional in-flight de-duplication: identical query requests to the
//! same subgraph (same URL, headers and body) that overlap in time share one
//! HTTP exchange.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::{BoxFuture, WeakShared};
use futures::FutureExt;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::executor::tree::Node;
use crate::supergraph::SubgraphEndpoint;
use crate::transport::{self, Connector, Transport};

/// Subgraph responses larger than this are refused rather than buffered.
const MAX_SUBGRAPH_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("the request timed out after {0:?}")]
    Timeout(Duration),
    #[error("the request failed: {0}")]
    Transport(String),
    #[error("the TLS handshake with the subgraph failed: {0}")]
    Tls(String),
    #[error("the subgraph answered with HTTP status {0}")]
    Status(u16),
}

/// What makes two subgraph requests identical.
#[derive(Clone, PartialEq, Eq, Hash)]
struct InflightKey {
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
}

type InflightFetch = BoxFuture<'static, Result<SubgraphReply, FetchError>>;

/// The exchanges in flight, held weakly: an exchange every waiter has given
/// up on (their clients went away) is dropped, with its connection turn,
/// instead of living on in the map.
type InflightMap = Arc<Mutex<HashMap<InflightKey, WeakShared<InflightFetch>>>>;

/// Takes an exchange's entry out of the map when the exchange ends, or when
/// it is dropped unfinished.
struct Forget {
    map: InflightMap,
    key: Option<InflightKey>,
}

impl Forget {
    /// The exchange ended: its entry goes, while its waiters read the result.
    fn now(mut self) {
        if let Some(key) = self.key.take() {
            self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        }
    }
}

impl Drop for Forget {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Only our own, now dead, entry: a new exchange may already have
        // taken the key.
        if map.get(&key).is_some_and(|weak| weak.upgrade().is_none()) {
            map.remove(&key);
        }
    }
}

/// A subgraph's GraphQL response.
#[derive(Debug, Default, Deserialize)]
pub struct SubgraphResponse {
    #[serde(default)]
    pub data: Node,
    #[serde(default)]
    pub errors: Option<Vec<Value>>,
}

/// One subgraph answer: its body and the cookies it asked to set.
#[derive(Debug, Clone)]
pub struct SubgraphReply {
    pub body: Bytes,
    pub set_cookies: Vec<HeaderValue>,
    /// The response headers its endpoint passes back to clients.
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
    /// The body parsed, shared by every request that joined this exchange.
    decoded: Arc<OnceLock<Result<Arc<SubgraphResponse>, String>>>,
}

impl SubgraphReply {
    fn new(body: Bytes, set_cookies: Vec<HeaderValue>, headers: Vec<(http::HeaderName, HeaderValue)>) -> Self {
        Self { body, set_cookies, headers, decoded: Arc::default() }
    }

    /// The body as a GraphQL response. A reply that several de-duplicated
    /// requests share is parsed once, and they all read the one parsed
    /// answer, each copying into its own response tree only what it merges
    /// (a copy of the whole answer per request was a fifth of the heap with
    /// de-duplication on). A reply nobody else holds is parsed into an
    /// answer of the caller's own, to take apart.
    pub fn decode(self) -> Result<Received, String> {
        // sonic-rs finds string ends and escapes with SIMD, where serde_json
        // goes a word at a time: a quarter of the gateway's instructions
        // were parsing before. It checks UTF-8 as it goes.
        let parse = |body: &[u8]| sonic_rs::from_slice::<SubgraphResponse>(body).map_err(|e| e.to_string());
        if Arc::strong_count(&self.decoded) == 1 {
            return match Arc::try_unwrap(self.decoded).map(OnceLock::into_inner) {
                // Parsed for requests that have all finished with it since.
                Ok(Some(decoded)) => decoded.map(Received::from),
                _ => parse(&self.body).map(Received::Own),
            };
        }
        self.decoded.get_or_init(|| parse(&self.body).map(Arc::new)).clone().map(Received::from)
    }
}

/// A subgraph answer as one request holds it: its own, to take apart, or
/// shared with the requests that joined the same exchange, to read and copy
/// from.
pub enum Received {
    Own(SubgraphResponse),
    Shared(Arc<SubgraphResponse>),
}

impl From<Arc<SubgraphResponse>> for Received {
    /// Own when no other request holds the answer any more.
    fn from(response: Arc<SubgraphResponse>) -> Self {
        match Arc::try_unwrap(response) {
            Ok(own) => Received::Own(own),
            Err(shared) => Received::Shared(shared),
        }
    }
}

impl Received {
    /// The answer's errors and its `data`, moved out when the answer is
    /// this request's own.
    pub fn parts(&mut self) -> (&[Value], Cow<'_, Node>) {
        match self {
            Received::Own(own) => {
                (own.errors.as_deref().unwrap_or_default(), Cow::Owned(std::mem::take(&mut own.data)))
            }
            Received::Shared(shared) => (shared.errors.as_deref().unwrap_or_default(), Cow::Borrowed(&shared.data)),
        }
    }
}

/// Each subgraph connection reads into a buffer of this size. hyper's default
/// buffer grows after every read that fills it, and an idle pooled connection
/// keeps a buffer of the grown size reserved for its next read: with a few
/// hundred connections open that was the largest single use of the heap.
const READ_BUFFER_BYTES: usize = 16 * 1024;

type Pool = Client<Connector, Full<Bytes>>;

/// Shared by all requests and all supergraph reloads, so connections are reused.
#[derive(Clone)]
pub struct SubgraphClient {
    /// How subgraphs are reached; [`SubgraphEndpoint::transport`] indexes it.
    transports: Arc<[Transport]>,
    /// A connection pool per transport.
    pools: Vec<Pool>,
    inflight: InflightMap,
    /// Most exchanges in flight per host (`host:port`), when limited.
    per_host: Option<usize>,
    /// The turns of each host, made on its first request.
    turns: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Default for SubgraphClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SubgraphClient {
    /// A client reaching every subgraph over plain HTTP/1.1, or TLS trusting
    /// the system's certificate authorities.
    pub fn new() -> Self {
        Self::with_transports(vec![Transport::system()])
    }

    /// A client with these transports; the first serves every subgraph whose
    /// endpoint names no other.
    pub fn with_transports(transports: Vec<Transport>) -> Self {
        let transports: Arc<[Transport]> =
            if transports.is_empty() { Arc::new([Transport::system()]) } else { transports.into() };
        Self {
            pools: Self::pools(&transports),
            transports,
            inflight: Arc::default(),
            per_host: None,
            turns: Arc::default(),
        }
    }

    fn pools(transports: &[Transport]) -> Vec<Pool> {
        transports
            .iter()
            .map(|transport| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(512)
                    .http1_read_buf_exact_size(READ_BUFFER_BYTES)
                    .http2_only(transport.http2_only)
                    .build(transport.connector.clone())
            })
            .collect()
    }

    /// TLS for WebSocket connections to the subgraphs of transport `index`.
    pub fn websocket_tls(&self, index: usize) -> Arc<rustls::ClientConfig> {
        self.transports.get(index).unwrap_or(&self.transports[0]).websocket_tls.clone()
    }

    /// The transports' client certificates, to watch for renewal.
    pub fn client_certificates(&self) -> impl Iterator<Item = &Arc<gatehouse_listener::tls::KeyPair>> {
        self.transports.iter().filter_map(|transport| transport.client_pair.as_ref())
    }

    /// A client with connection pools of its own, for one server thread (a
    /// connection's I/O runs on the runtime that opened it), sharing the
    /// in-flight exchanges and the per-host turns with this one.
    pub fn with_own_pool(&self) -> Self {
        Self { pools: Self::pools(&self.transports), ..self.clone() }
    }

    /// Lets at most `limit` exchanges (and so connections) be in flight to
    /// one host at a time; the rest wait for a turn, within their timeout.
    /// `None` sets no limit.
    pub fn with_max_connections_per_host(mut self, limit: Option<usize>) -> Self {
        self.per_host = limit.map(|n| n.max(1));
        self
    }

    /// The semaphore that hands out turns at `endpoint`'s host, when limited.
    fn turns(&self, endpoint: &SubgraphEndpoint) -> Option<Arc<Semaphore>> {
        let limit = self.per_host?;
        // Endpoint URLs are canonical (`supergraph::endpoint_url`): no
        // default port written out, so one host has one key.
        let host = endpoint.url.authority().map(|a| a.as_str());
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        // Every request looks its host up; only the first one allocates the key.
        if let Some(turns) = host.and_then(|host| turns.get(host)) {
            return Some(turns.clone());
        }
        let host = host.map_or_else(|| endpoint.url.to_string(), str::to_string);
        Some(turns.entry(host).or_insert_with(|| Arc::new(Semaphore::new(limit))).clone())
    }

    /// POSTs a GraphQL request body and returns the response body and its
    /// `Set-Cookie` headers (the executor decides which subgraphs may set
    /// cookies). With
    /// `dedupe`, an identical request already in flight is joined instead of
    /// sent again; only pass it for queries.
    pub async fn post(
        &self,
        endpoint: &SubgraphEndpoint,
        body: Vec<u8>,
        headers: &HeaderMap,
        dedupe: bool,
    ) -> Result<SubgraphReply, FetchError> {
        let body = Bytes::from(body);
        if !dedupe {
            return self.exchange(endpoint, body, headers).await;
        }
        let key = InflightKey {
            url: endpoint.url.to_string(),
            // Trace context and the client address differ per request by
            // design; the shared request carries the first caller's.
            headers: headers
                .iter()
                .filter(|(n, _)| !matches!(n.as_str(), "traceparent" | "tracestate" | "x-forwarded-for"))
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.clone(),
        };
        let shared = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key).and_then(WeakShared::upgrade) {
                Some(existing) => {
                    metrics::counter!("gateway_subgraph_requests_deduplicated_total").increment(1);
                    existing
                }
                None => {
                    let (client, endpoint, headers) = (self.clone(), endpoint.clone(), headers.clone());
                    let forget = Forget { map: self.inflight.clone(), key: Some(key.clone()) };
                    let fetch = async move {
                        let result = client.exchange(&endpoint, body, &headers).await;
                        forget.now();
                        result
                    }
                    .boxed()
                    .shared();
                    if let Some(weak) = fetch.downgrade() {
                        inflight.insert(key, weak);
                    }
                    fetch
                }
            }
        };
        shared.await
    }

    /// How many shared exchanges are in flight (for tests and diagnostics).
    pub fn in_flight_exchanges(&self) -> usize {
        let inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        inflight.values().filter(|weak| weak.upgrade().is_some()).count()
    }

    /// How many callers are waiting on shared in-flight requests (for tests
    /// and diagnostics).
    pub fn in_flight_waiters(&self) -> usize {
        let inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        // Upgrading makes one more clone; the rest belong to waiters.
        inflight.values().filter_map(WeakShared::upgrade).map(|f| f.strong_count().unwrap_or(1).saturating_sub(1)).sum()
    }

    async fn exchange(
        &self,
        endpoint: &SubgraphEndpoint,
        body: Bytes,
        headers: &HeaderMap,
    ) -> Result<SubgraphReply, FetchError> {
        let mut request = Request::post(endpoint.url.clone())
            .body(Full::new(body))
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let request_headers = request.headers_mut();
        for (name, value) in headers {
            request_headers.append(name.clone(), value.clone());
        }
        request_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request_headers
            .insert(ACCEPT, HeaderValue::from_static("application/graphql-response+json, application/json;q=0.9"));

        let turns = self.turns(endpoint);
        let exchange = async {
            // Held until the whole body is read: the connection is busy until then.
            let _turn = match turns {
                Some(turns) => Some(turns.acquire_owned().await.map_err(|e| FetchError::Transport(e.to_string()))?),
                None => None,
            };
            let pool = self.pools.get(endpoint.transport).unwrap_or(&self.pools[0]);
            let response = pool.request(request).await.map_err(|e| match transport::tls_failure(&e) {
                Some(reason) => FetchError::Tls(reason),
                None => FetchError::Transport(transport::describe(&e)),
            })?;
            let status = response.status();
            let set_cookies: Vec<HeaderValue> = response.headers().get_all(SET_COOKIE).iter().cloned().collect();
            let passed = endpoint
                .response_headers
                .iter()
                .flat_map(|name| response.headers().get_all(name).iter().map(|value| (name.clone(), value.clone())))
                .collect();
            let body = Limited::new(response.into_body(), MAX_SUBGRAPH_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| FetchError::Transport(transport::describe(&*e)))?
                .to_bytes();
            // GraphQL-over-HTTP allows 4xx with a GraphQL body; keep it if it parses.
            let graphql_error_body = status.is_client_error() && body.starts_with(b"{");
            if !(status.is_success() || graphql_error_body) {
                return Err(FetchError::Status(status.as_u16()));
            }
            Ok(SubgraphReply::new(body, set_cookies, passed))
        };
        match tokio::time::timeout(endpoint.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(endpoint.timeout)),
        }
    }
}
