//! Subscriptions to subgraphs over graphql-ws (the `graphql-transport-ws`
//! subprotocol).
//!
//! Identical subscriptions (same subgraph, same headers, the signed identity
//! among them, same document and variables) share one upstream connection:
//! its events go to every subscriber through a broadcast channel, and the
//! connection is completed when the last subscriber leaves. A subscriber
//! that falls more than the channel's capacity behind is told so
//! ([`broadcast::error::RecvError::Lagged`]) and ended by its caller.
//!
//! The connection carries the subgraph request's headers twice: on the
//! upgrade request, and as the `connection_init` payload (names in lower
//! case), for servers that read only one of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::{HeaderMap, Uri};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::SubgraphResponse;
use crate::error::{codes, GraphQLError};

/// What an upstream subscription tells its subscribers.
#[derive(Clone)]
pub(crate) enum Upstream {
    /// One event: the subgraph's `next` payload, parsed once for all.
    Event(Arc<Event>),
    /// The subgraph refused the subscription or the connection failed; the
    /// subscription is over.
    Failed(GraphQLError),
    /// The subgraph completed the subscription.
    Complete,
}

/// One event of an upstream subscription, and its completions so far.
pub(crate) struct Event {
    pub response: Arc<SubgraphResponse>,
    /// The event completed for each kind of subscriber (see `State`'s
    /// `completion`): the first subscriber of a kind completes it, the
    /// others wait for that and share the bytes. Kept as long as the event
    /// is in the channel's buffer.
    completions: Mutex<HashMap<u128, Arc<tokio::sync::OnceCell<bytes::Bytes>>>>,
}

impl Event {
    fn new(response: SubgraphResponse) -> Self {
        Event { response: Arc::new(response), completions: Mutex::default() }
    }

    /// The completion of this event for subscribers of kind `key`.
    pub(crate) fn completion(&self, key: u128) -> Arc<tokio::sync::OnceCell<bytes::Bytes>> {
        let mut completions = self.completions.lock().unwrap_or_else(|e| e.into_inner());
        completions.entry(key).or_default().clone()
    }
}

/// Where and how to subscribe.
pub(crate) struct Target {
    pub service: Arc<str>,
    pub url: Uri,
    pub headers: HeaderMap,
    /// The `subscribe` payload: `{"query":..,"variables":{..}}`.
    pub payload: Vec<u8>,
    /// TLS for `https` subgraphs (ALPN `http/1.1`).
    pub tls: Arc<rustls::ClientConfig>,
    pub connect_timeout: Duration,
    pub max_message_bytes: usize,
    pub heartbeat: Duration,
    /// Events kept for the slowest subscriber.
    pub buffer: usize,
}

/// One upstream subscription, alive while a subscriber holds it.
pub(crate) struct Shared {
    sender: broadcast::Sender<Upstream>,
    _stop: DropGuard,
}

/// A subscriber's end of an upstream subscription.
pub(crate) struct Feed {
    pub receiver: broadcast::Receiver<Upstream>,
    /// Keeps the upstream subscription open.
    _shared: Arc<Shared>,
}

type Registry = Arc<Mutex<HashMap<u128, Weak<Shared>>>>;

/// The upstream subscriptions this gateway holds, by what they subscribe to.
#[derive(Default)]
pub(crate) struct Upstreams {
    live: Registry,
}

impl Upstreams {
    /// Joins the upstream subscription `key` names, or opens it.
    pub fn subscribe(&self, key: u128, target: impl FnOnce() -> Target) -> Feed {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = live.get(&key).and_then(Weak::upgrade) {
            metrics::counter!("gateway_subscription_upstreams_shared_total").increment(1);
            return Feed { receiver: shared.sender.subscribe(), _shared: shared };
        }
        let target = target();
        let (sender, receiver) = broadcast::channel(target.buffer.max(1));
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared { sender: sender.clone(), _stop: stop.clone().drop_guard() });
        live.insert(key, Arc::downgrade(&shared));
        let registry = Arc::downgrade(&self.live);
        tokio::spawn(async move {
            metrics::gauge!("gateway_subscription_upstreams").increment(1.0);
            let ending = run(&target, &sender, &stop).await;
            metrics::gauge!("gateway_subscription_upstreams").decrement(1.0);
            // Gone from the registry before the last word, so nobody joins a
            // subscription that will send nothing more.
            if let Some(registry) = registry.upgrade() {
                let mut live = registry.lock().unwrap_or_else(|e| e.into_inner());
                if live.get(&key).is_some_and(|weak| weak.upgrade().is_none_or(|s| s.sender.same_channel(&sender))) {
                    live.remove(&key);
                }
            }
            if let Some(ending) = ending {
                let _ = sender.send(ending);
            }
        });
        Feed { receiver, _shared: shared }
    }

    /// How many upstream subscriptions are open.
    pub fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|w| w.strong_count() > 0).count()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why an upstream connection could not be used.
#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("{0}")]
    Connect(String),
    #[error("the subgraph broke the graphql-ws protocol: {0}")]
    Protocol(String),
}

/// Runs one upstream subscription until the subgraph ends it, it fails, or
/// `stop` (the last subscriber left). Returns the last word for the
/// subscribers, if any.
async fn run(target: &Target, sender: &broadcast::Sender<Upstream>, stop: &CancellationToken) -> Option<Upstream> {
    let failed = |detail: &str| {
        Upstream::Failed(
            GraphQLError::new(
                format!("Subscription to subgraph \"{}\" failed: {detail}", target.service),
                codes::SUBGRAPH_REQUEST_FAILED,
            )
            .with_extension("serviceName", Value::String(target.service.to_string())),
        )
    };
    let connected = tokio::select! {
        () = stop.cancelled() => return None,
        connected = tokio::time::timeout(target.connect_timeout, connect(target)) => connected,
    };
    let mut socket = match connected {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => {
            tracing::warn!(subgraph = %target.service, %error, "subgraph subscription connection failed");
            return Some(failed("the subgraph could not be reached"));
        }
        Err(_) => {
            tracing::warn!(subgraph = %target.service, "subgraph subscription connection timed out");
            return Some(failed("timed out"));
        }
    };
    let mut subscribe = Vec::with_capacity(target.payload.len() + 48);
    subscribe.extend_from_slice(br#"{"id":"1","type":"subscribe","payload":"#);
    subscribe.extend_from_slice(&target.payload);
    subscribe.push(b'}');
    let subscribe = String::from_utf8(subscribe).unwrap_or_default();
    if let Err(error) = socket.send(Message::text(subscribe)).await {
        tracing::warn!(subgraph = %target.service, %error, "subgraph subscription could not be sent");
        return Some(failed("the subgraph could not be reached"));
    }
    let mut heartbeat = tokio::time::interval(target.heartbeat);
    heartbeat.tick().await;
    let mut silent_beats = 0u32;
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => {
                let _ = socket.send(Message::text(r#"{"id":"1","type":"complete"}"#)).await;
                let _ = socket.close(None).await;
                return None;
            }
            _ = heartbeat.tick() => {
                silent_beats += 1;
                if silent_beats > 2 {
                    tracing::warn!(subgraph = %target.service, "subgraph subscription connection went silent");
                    return Some(failed("the subgraph stopped answering"));
                }
                if socket.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                    return Some(failed("the connection was lost"));
                }
                continue;
            }
            message = socket.next() => message,
        };
        silent_beats = 0;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                tracing::info!(subgraph = %target.service, ?frame, "subgraph closed a subscription connection");
                return Some(failed("the subgraph closed the connection"));
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                tracing::warn!(subgraph = %target.service, %error, "subgraph subscription connection failed");
                return Some(failed("the connection was lost"));
            }
            None => return Some(failed("the connection was lost")),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut message)) => match message.get("type").and_then(Value::as_str) {
                Some("next") => {
                    let Some(payload) = message.remove("payload") else { continue };
                    match serde_json::from_value::<SubgraphResponse>(payload) {
                        Ok(response) => {
                            metrics::counter!("gateway_subscription_upstream_events_total").increment(1);
                            // Nobody listening just now is no reason to stop:
                            // the subscribers' guard decides that.
                            let _ = sender.send(Upstream::Event(Arc::new(Event::new(response))));
                        }
                        Err(error) => {
                            tracing::warn!(subgraph = %target.service, %error, "subgraph sent an event that is not a GraphQL response");
                        }
                    }
                }
                Some("error") => {
                    let errors = message.get("payload").and_then(Value::as_array).cloned().unwrap_or_default();
                    let first = errors.first().cloned().unwrap_or(Value::Null);
                    return Some(Upstream::Failed(crate::executor::subgraph_error(&first, &target.service, None)));
                }
                Some("complete") => return Some(Upstream::Complete),
                Some("ping") => {
                    let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                }
                _ => {}
            },
            _ => {
                let error = UpstreamError::Protocol("a message that is not a JSON object".into());
                tracing::warn!(subgraph = %target.service, %error, "closing a subgraph subscription");
                return Some(failed("the subgraph broke the protocol"));
            }
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// Opens the WebSocket and completes the graphql-ws handshake.
async fn connect(target: &Target) -> Result<Socket, UpstreamError> {
    let connect_error = |e: &dyn std::fmt::Display| UpstreamError::Connect(e.to_string());
    let secure = target.url.scheme_str() == Some("https");
    let host = target.url.host().ok_or_else(|| UpstreamError::Connect("the URL has no host".into()))?;
    let port = target.url.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let host_for_dns = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((host_for_dns, port)).await.map_err(|e| connect_error(&e))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if secure {
        let name = rustls::pki_types::ServerName::try_from(host_for_dns.to_owned()).map_err(|e| connect_error(&e))?;
        let tls = tokio_rustls::TlsConnector::from(target.tls.clone());
        Box::new(tls.connect(name, tcp).await.map_err(|e| connect_error(&e))?)
    } else {
        Box::new(tcp)
    };
    let scheme = if secure { "wss" } else { "ws" };
    let path = target.url.path_and_query().map_or("/", |p| p.as_str());
    let authority = target.url.authority().map_or(host, |a| a.as_str());
    let mut request = format!("{scheme}://{authority}{path}").into_client_request().map_err(|e| connect_error(&e))?;
    for (name, value) in &target.headers {
        request.headers_mut().append(name, value.clone());
    }
    request.headers_mut().insert("sec-websocket-protocol", http::HeaderValue::from_static("graphql-transport-ws"));
    let config = WebSocketConfig::default()
        .max_message_size(Some(target.max_message_bytes))
        .max_frame_size(Some(target.max_message_bytes));
    let (mut socket, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| connect_error(&e))?;
    let protocol = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
    if protocol != Some("graphql-transport-ws") {
        return Err(UpstreamError::Protocol(format!("the subprotocol {protocol:?} was chosen")));
    }
    let init: serde_json::Map<String, Value> = target
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), Value::String(value.to_str().ok()?.to_owned()))))
        .collect();
    let init = serde_json::json!({ "type": "connection_init", "payload": init }).to_string();
    socket.send(Message::text(init)).await.map_err(|e| connect_error(&e))?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let kind = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned));
                match kind.as_deref() {
                    Some("connection_ack") => return Ok(socket),
                    Some("ping") => {
                        let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                    }
                    other => return Err(UpstreamError::Protocol(format!("{other:?} before connection_ack"))),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let reason = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                return Err(UpstreamError::Connect(format!("closed before connection_ack: {reason}")));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(connect_error(&error)),
            None => return Err(UpstreamError::Connect("closed before connection_ack".into())),
        }
    }
}
