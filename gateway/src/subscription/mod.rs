//! Subscriptions: a client subscribes over one of the streaming transports
//! (`crate::http::ws`, `crate::http::stream`), the gateway subscribes to
//! the subgraph that owns the root field ([`upstream`]), and every event is
//! completed through the rest of the query plan (entity fetches to other
//! subgraphs, guards, projection) like a query's answer.
//!
//! A subscription ends when the client leaves, the subgraph completes it,
//! the caller's session is revoked ([`session`]) or their access token
//! expires (each with an `UNAUTHENTICATED` error), the subscriber falls too
//! far behind (`SLOW_CONSUMER`), or the gateway shuts down
//! (`SHUTTING_DOWN`).

pub mod config;
mod session;
mod upstream;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;
use hive_router_query_planner::planner::plan_nodes::{FetchNode, PlanNode};
use hive_router_query_planner::state::supergraph_state::OperationKind;
use http::HeaderMap;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::client::Received;
use crate::error::{codes, GraphQLError, RequestError};
use crate::executor::Execution;
use crate::pipeline::{
    denied_error, project, Admission, Answer, Gateway, GraphQLRequest, PreparedOperation, RequestMeta,
};
use crate::supergraph::Supergraph;
pub use config::SubscriptionConfig;
use gatehouse_access::revocation::Revocations;
use gatehouse_common::identity::Identity;
use upstream::{Feed, Target, Upstream, Upstreams};

/// What a subscription stream yields.
#[derive(Debug)]
pub enum Item {
    /// One response (`{"data":..,"errors":..}`), serialised; shared by the
    /// subscribers whose completion it is.
    Next(Bytes),
    /// The subscription ended for a reason the client should hear; nothing
    /// follows. A stream that simply ends was completed.
    Ended(GraphQLError),
}

/// A live subscription (or a single answer, for a query or mutation sent
/// over a streaming transport).
pub type Live = Pin<Box<dyn Stream<Item = Item> + Send>>;

/// What a request sent to a streaming transport turned into.
pub enum Subscribed {
    /// A subscription: results until it ends.
    Live(Live),
    /// A query, a mutation or `subscription { __typename }`: one answer,
    /// which a transport that can also answer plainly sends as such.
    Answer(Answer),
}

impl Subscribed {
    /// The results as a stream, a single answer being a stream of one.
    pub fn into_live(self) -> Live {
        match self {
            Self::Live(live) => live,
            Self::Answer(answer) => Box::pin(futures::stream::iter([Item::Next(answer.body.into())])),
        }
    }
}

/// The gateway's live subscriptions: limits, upstream connections, session
/// watch.
pub struct Subscriptions {
    pub config: SubscriptionConfig,
    upstreams: Upstreams,
    sessions: Arc<session::SessionWatch>,
    total: Arc<AtomicUsize>,
    per_caller: Arc<Mutex<HashMap<String, usize>>>,
    websockets: Arc<AtomicUsize>,
    /// Cancelled when the gateway shuts down.
    closing: CancellationToken,
}

/// One open WebSocket, counted against `GATEWAY_WEBSOCKET_MAX_CONNECTIONS`.
pub struct WebSocketSlot(Arc<AtomicUsize>);

impl Drop for WebSocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one subscription against the limits while it lives.
struct Permit {
    total: Arc<AtomicUsize>,
    per_caller: Arc<Mutex<HashMap<String, usize>>>,
    caller: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("gateway_subscriptions").decrement(1.0);
        let mut callers = self.per_caller.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = callers.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                callers.remove(&self.caller);
            }
        }
    }
}

impl Subscriptions {
    pub fn new(config: SubscriptionConfig) -> Self {
        Self {
            config,
            upstreams: Upstreams::default(),
            sessions: Arc::default(),
            total: Arc::default(),
            per_caller: Arc::default(),
            websockets: Arc::default(),
            closing: CancellationToken::new(),
        }
    }

    /// Starts the session watch (when sessions can be revoked) and ends every
    /// subscription when `shutdown` is cancelled.
    pub fn start(self: &Arc<Self>, revocations: Option<Revocations>, shutdown: CancellationToken) {
        if let Some(revocations) = revocations {
            tokio::spawn(self.sessions.clone().run(revocations, shutdown.clone()));
        }
        let closing = self.closing.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            closing.cancel();
        });
    }

    /// Subscriptions live now.
    pub fn live(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Upstream subscriptions open now (identical subscriptions share one).
    pub fn upstreams(&self) -> usize {
        self.upstreams.len()
    }

    /// Sessions with live subscriptions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// A place for one more WebSocket, unless the limit is reached.
    pub fn websocket_slot(&self) -> Option<WebSocketSlot> {
        if self.websockets.fetch_add(1, Ordering::Relaxed) >= self.config.max_websockets {
            self.websockets.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(WebSocketSlot(self.websockets.clone()))
    }

    /// A token cancelled when the gateway shuts down.
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    fn permit(&self, caller: String) -> Result<Permit, RequestError> {
        let limit = |what: &str| {
            metrics::counter!("gateway_subscriptions_refused_total", "limit" => what.to_owned()).increment(1);
            RequestError::BadRequest(GraphQLError::new(
                format!("Too many subscriptions {what}; end one first"),
                codes::LIMIT_EXCEEDED,
            ))
        };
        let mut callers = self.per_caller.lock().unwrap_or_else(|e| e.into_inner());
        let count = callers.get(&caller).copied().unwrap_or(0);
        if count >= self.config.max_per_caller {
            return Err(limit("for this caller"));
        }
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.config.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(limit("on this gateway"));
        }
        callers.insert(caller.clone(), count + 1);
        metrics::gauge!("gateway_subscriptions").increment(1.0);
        Ok(Permit { total: self.total.clone(), per_caller: self.per_caller.clone(), caller })
    }
}

/// Who subscribes, beyond the request's own metadata.
pub struct Subscriber {
    /// Whom the per-caller limit counts: the user, or the address.
    pub caller: String,
    /// The access token's expiry, which a WebSocket client may move by
    /// authenticating again; `None` for anonymous callers.
    pub expires_at: Option<watch::Receiver<u64>>,
}

/// What rendering a subscription's events needs, owned by its stream.
struct Operation {
    gateway: Arc<Gateway>,
    supergraph: Arc<Supergraph>,
    prepared: Arc<PreparedOperation>,
    variables: Map<String, Value>,
    headers: HeaderMap,
    traceparent: Option<http::HeaderValue>,
    identity: Option<Identity>,
}

impl Operation {
    /// One event, completed through the plan and written in the client's shape.
    async fn render(&self, event: Arc<crate::client::SubgraphResponse>) -> Bytes {
        let Some(plan) = &self.prepared.plan else { return Bytes::new() };
        // Signed per event: subgraphs refuse a stale identity, and a
        // subscription outlives the signature's freshness window.
        let identity_header = match (&self.identity, &self.gateway.security.gatekeeper) {
            (Some(identity), Some(gatekeeper)) => Some(gatekeeper.identity_header(identity)),
            _ => None,
        };
        let execution = Execution::new(
            &self.supergraph,
            self.gateway.client(),
            &self.variables,
            &self.headers,
            self.traceparent.clone(),
            self.gateway.config.dedupe_subgraph_requests,
        )
        .with_identity(identity_header, self.identity.as_ref())
        .with_event(Received::from(event));
        execution.run(plan).await;
        let size_hint = execution.received_bytes();
        let (data, mut errors, _headers) = execution.finish();
        errors.extend(self.prepared.denied.iter().map(denied_error));
        project::write_response(
            &self.supergraph.schema,
            &self.prepared.operation,
            &self.prepared.root_type,
            &self.variables,
            &data,
            errors,
            size_hint,
        )
        .into()
    }
}

/// The subscription node of a plan: its root, or the first step of its
/// root sequence.
fn subscription_fetch(node: &PlanNode) -> Option<&FetchNode> {
    match node {
        PlanNode::Subscription(subscription) => Some(&subscription.primary),
        PlanNode::Sequence(sequence) => sequence.nodes.first().and_then(subscription_fetch),
        _ => None,
    }
}

/// A copy of `headers` that holds no part of the connection's read buffer.
///
/// hyper's header values are slices of the buffer the request head was read
/// into; a subscription that kept them would keep that buffer (8 KB or more)
/// for as long as it lives, beside the one hyper reads the next bytes into.
pub(crate) fn detached(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        copy.append(name.clone(), detached_value(value));
    }
    copy
}

/// A copy of one header value in memory of its own.
fn detached_value(value: &http::HeaderValue) -> http::HeaderValue {
    let mut owned = http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
    owned.set_sensitive(value.is_sensitive());
    owned
}

/// Whether a header sent to a subgraph says who asks or what for, rather
/// than which request it is (the trace context) or when it was signed (the
/// identity header, whose caller is keyed on its own).
fn is_shared_header(name: &http::HeaderName) -> bool {
    name != "traceparent" && name.as_str() != gatehouse_common::identity::IDENTITY_HEADER
}

fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn unauthenticated(message: &str) -> GraphQLError {
    GraphQLError::new(message, codes::UNAUTHENTICATED)
}

impl Gateway {
    /// Starts a subscription. A query or mutation sent this way is answered
    /// once.
    pub async fn subscribe(
        self: &Arc<Self>,
        mut request: GraphQLRequest,
        meta: RequestMeta<'_>,
        subscriber: Subscriber,
    ) -> Result<Subscribed, RequestError> {
        let admission: Admission = self.admit_operation(&mut request, &meta).await?;
        let fetch = admission.prepared.plan.as_ref().and_then(|plan| plan.node.as_ref()).and_then(subscription_fetch);
        let is_subscription = matches!(admission.prepared.kind, OperationKind::Subscription);
        let Some(fetch) = fetch.filter(|_| is_subscription).cloned() else {
            if is_subscription && admission.prepared.plan.is_some() {
                tracing::error!("a subscription's plan does not start with a subscription fetch");
                return Err(RequestError::Internal(GraphQLError::internal()));
            }
            // `subscription { __typename }` and single-answer operations.
            return Ok(Subscribed::Answer(self.run_admitted(admission, &request, &meta).await));
        };
        if !self.subscriptions.config.enabled {
            return Err(RequestError::BadRequest(GraphQLError::new(
                "Subscriptions are not enabled on this gateway",
                codes::OPERATION_NOT_SUPPORTED,
            )));
        }
        let Admission { supergraph, prepared, variables, .. } = admission;
        let permit = self.subscriptions.permit(subscriber.caller)?;
        let Some(endpoint) = supergraph.subgraphs.get(fetch.service_name.as_str()) else {
            tracing::error!(subgraph = %fetch.service_name, "the plan names a subgraph the supergraph does not define");
            return Err(RequestError::Internal(GraphQLError::internal()));
        };
        let execution =
            Execution::new(&supergraph, self.client(), &variables, meta.headers, meta.traceparent.clone(), false)
                .with_identity(meta.identity_header.clone(), meta.identity.as_ref());
        let upstream_headers = execution.subgraph_headers(&fetch.service_name);
        // What each subgraph would be sent, less the trace context and the
        // identity's signing time, which differ per request; who the caller
        // is stays in.
        let mut sent: Vec<(&str, String, Vec<u8>)> = supergraph
            .subgraphs
            .keys()
            .flat_map(|service| {
                let other;
                let headers = if *service == fetch.service_name {
                    &upstream_headers
                } else {
                    other = execution.subgraph_headers(service);
                    &other
                };
                headers
                    .iter()
                    .filter(|(name, _)| is_shared_header(name))
                    .map(|(name, value)| (service.as_str(), name.as_str().to_owned(), value.as_bytes().to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        sent.sort_unstable();
        drop(execution);
        let payload = crate::executor::request_body(
            &fetch.operation.document_str,
            &variables,
            fetch.variable_usages.as_ref(),
            &[],
        );
        // Identical subscriptions share an upstream one: same subgraph,
        // document, variables, caller and headers to that subgraph.
        let to_upstream: Vec<_> = sent.iter().filter(|(service, ..)| *service == fetch.service_name).collect();
        let who = meta.identity.as_ref().map(|identity| {
            let mut scopes = identity.scopes.clone();
            scopes.sort_unstable();
            (identity.user_id, scopes)
        });
        let key = crate::pipeline::fingerprint(&(&*endpoint.name, &to_upstream, &who, &payload));
        // Subscribers of one feed whose completion of an event cannot differ
        // (same operation, variables, session and headers to every subgraph)
        // share it: the first completes, the others take its bytes.
        let session = meta.identity.as_ref().map(|identity| identity.session_id);
        let completion = crate::pipeline::fingerprint(&(
            key,
            prepared.fingerprint(),
            serde_json::to_string(&variables).unwrap_or_default(),
            session,
            &sent,
        ));
        let config = &self.subscriptions.config;
        let feed = self.subscriptions.upstreams.subscribe(key, || Target {
            service: endpoint.name.clone(),
            url: endpoint.url.clone(),
            headers: upstream_headers.clone(),
            payload,
            tls: self.client.websocket_tls(endpoint.transport),
            connect_timeout: endpoint.timeout.min(Duration::from_secs(30)),
            max_message_bytes: config.max_message_bytes,
            heartbeat: config.heartbeat(),
            buffer: config.buffer,
        });
        let registration =
            meta.identity.as_ref().map(|identity| self.subscriptions.sessions.register(identity.session_id));
        metrics::counter!("gateway_subscriptions_started_total").increment(1);
        let operation = Operation {
            gateway: self.clone(),
            supergraph,
            prepared,
            variables,
            headers: detached(meta.headers),
            traceparent: meta.traceparent.as_ref().map(detached_value),
            identity: meta.identity.clone(),
        };
        let state = State {
            operation,
            completion,
            feed,
            revoked: registration.as_ref().map(|r| r.ended.clone()),
            _registration: registration,
            expires_at: subscriber.expires_at,
            closing: self.subscriptions.closing.clone(),
            _permit: permit,
            done: false,
        };
        Ok(Subscribed::Live(Box::pin(futures::stream::unfold(state, State::next))))
    }
}

/// A subscription's state between events.
struct State {
    operation: Operation,
    /// Which completion of an event this subscriber can share.
    completion: u128,
    feed: Feed,
    revoked: Option<CancellationToken>,
    _registration: Option<session::Registration>,
    expires_at: Option<watch::Receiver<u64>>,
    closing: CancellationToken,
    _permit: Permit,
    done: bool,
}

/// Completes when the access token behind `expires_at` has expired; a new
/// expiry (the client authenticated again) moves the deadline.
async fn expiry(expires_at: &mut Option<watch::Receiver<u64>>) {
    let Some(receiver) = expires_at else { return std::future::pending().await };
    loop {
        let at = *receiver.borrow_and_update();
        let left = Duration::from_secs(at.saturating_sub(now_seconds()));
        tokio::select! {
            () = tokio::time::sleep(left) => {
                if *receiver.borrow() <= now_seconds() {
                    return;
                }
            }
            changed = receiver.changed() => {
                // The connection is gone: its expiry stands.
                if changed.is_err() {
                    tokio::time::sleep(Duration::from_secs(at.saturating_sub(now_seconds()))).await;
                    return;
                }
            }
        }
    }
}

impl State {
    async fn next(mut self) -> Option<(Item, Self)> {
        if self.done {
            return None;
        }
        let revoked = self.revoked.clone();
        let revoked = async move {
            match revoked {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let ended = |state: Self, error: GraphQLError| {
            let mut state = state;
            state.done = true;
            Some((Item::Ended(error), state))
        };
        let received = tokio::select! {
            biased;
            () = revoked => {
                metrics::counter!("gateway_subscriptions_ended_total", "reason" => "revoked").increment(1);
                return ended(self, unauthenticated("The session of this subscription was ended"));
            }
            () = expiry(&mut self.expires_at) => {
                metrics::counter!("gateway_subscriptions_ended_total", "reason" => "expired").increment(1);
                return ended(self, unauthenticated("The access token of this subscription expired"));
            }
            () = self.closing.cancelled() => {
                metrics::counter!("gateway_subscriptions_ended_total", "reason" => "shutdown").increment(1);
                return ended(self, GraphQLError::new("The gateway is shutting down; subscribe again", codes::SHUTTING_DOWN));
            }
            received = self.feed.receiver.recv() => received,
        };
        match received {
            Ok(Upstream::Event(event)) => {
                let cell = event.completion(self.completion);
                let body = cell.get_or_init(|| self.operation.render(event.response.clone())).await.clone();
                Some((Item::Next(body), self))
            }
            Ok(Upstream::Failed(error)) => {
                metrics::counter!("gateway_subscriptions_ended_total", "reason" => "upstream").increment(1);
                ended(self, error)
            }
            Ok(Upstream::Complete) | Err(broadcast::error::RecvError::Closed) => {
                metrics::counter!("gateway_subscriptions_ended_total", "reason" => "complete").increment(1);
                None
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics::counter!("gateway_subscriptions_ended_total", "reason" => "slow").increment(1);
                tracing::info!(missed, "ending a subscription whose client fell behind");
                ended(
                    self,
                    GraphQLError::new(
                        format!("The subscriber fell {missed} events behind; subscribe again"),
                        codes::SLOW_CONSUMER,
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_headers_are_equal_copies_that_share_no_buffer() {
        let buffer = bytes::Bytes::from_static(b"Bearer abc; text/plain");
        let mut headers = HeaderMap::new();
        let mut token = http::HeaderValue::from_maybe_shared(buffer.slice(0..10)).unwrap();
        token.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, token);
        headers.append("x-tag", http::HeaderValue::from_static("a"));
        headers.append("x-tag", http::HeaderValue::from_static("b"));
        let copy = detached(&headers);
        assert_eq!(copy, headers);
        assert!(copy[http::header::AUTHORIZATION].is_sensitive(), "sensitivity is kept");
        assert_eq!(copy.get_all("x-tag").iter().count(), 2, "repeated headers stay repeated");
        let original = headers[http::header::AUTHORIZATION].as_bytes().as_ptr();
        assert_ne!(copy[http::header::AUTHORIZATION].as_bytes().as_ptr(), original);
    }
}
