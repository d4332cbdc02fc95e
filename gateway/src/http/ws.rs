//! GraphQL over WebSocket: the `graphql-transport-ws` subprotocol (the
//! graphql-ws library's), on `GET /graphql` with an upgrade.
//!
//! - The upgrade is refused (403) when a browser's `Origin` is neither the
//!   gateway's own nor in `GATEWAY_CORS_ORIGINS`: browsers open WebSockets
//!   to any site without asking, so CORS alone would not stop another site
//!   from using a signed-in user's connection.
//! - Credentials come in `connection_init`'s payload (`Authorization`, or
//!   `headers.Authorization`), or on the upgrade request; a refused token
//!   closes with 4403. Without `connection_init` within
//!   `GATEWAY_WEBSOCKET_INIT_TIMEOUT_MS`: 4408.
//! - A client authenticates again, without dropping its subscriptions, by
//!   sending `{"type":"ping","payload":{"Authorization":"Bearer <token>"}}`
//!   with a fresh token of the same session; its subscriptions then live to
//!   the new token's expiry. Another user's or session's token closes the
//!   connection with 4403.
//! - Each subscription ends with `next` carrying an error, then `complete`,
//!   when its session is revoked or its token expires (`UNAUTHENTICATED`),
//!   when it falls behind (`SLOW_CONSUMER`) or at shutdown (`SHUTTING_DOWN`).
//! - The gateway pings every heartbeat and closes a connection silent for
//!   three of them, or one that takes longer than that to take a message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{admit_credentials, request_from_json, respond, Admitted, MediaType};
use crate::error::{codes, GraphQLError};
use crate::pipeline::project::write_errors;
use crate::pipeline::Gateway;
use crate::subscription::{Item, Subscriber};

const PROTOCOL: &str = "graphql-transport-ws";
/// Longest operation id accepted.
const MAX_ID_BYTES: usize = 128;
/// Messages waiting for the socket, per connection.
const OUTBOX: usize = 64;
/// The socket's read buffer: a few messages of the protocol.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Answers a WebSocket upgrade of `/graphql`.
pub(super) fn upgrade(
    gateway: Arc<Gateway>,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    peer: Option<IpAddr>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !gateway.security.cors.allows(origin, headers.get(header::HOST)) {
            metrics::counter!("gateway_websocket_refused_total", "reason" => "origin").increment(1);
            let error = GraphQLError::new("This origin may not open WebSockets to the gateway", codes::FORBIDDEN);
            return respond(StatusCode::FORBIDDEN, MediaType::Json, write_errors(&[error]));
        }
    }
    if !gateway.subscriptions.config.enabled {
        let error = GraphQLError::new("Subscriptions are not enabled on this gateway", codes::OPERATION_NOT_SUPPORTED);
        return respond(StatusCode::BAD_REQUEST, MediaType::Json, write_errors(&[error]));
    }
    let Some(slot) = gateway.subscriptions.websocket_slot() else {
        metrics::counter!("gateway_websocket_refused_total", "reason" => "limit").increment(1);
        let error = GraphQLError::new("Too many WebSocket connections; try again later", codes::LIMIT_EXCEEDED);
        let mut response = respond(StatusCode::SERVICE_UNAVAILABLE, MediaType::Json, write_errors(&[error]));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let max = gateway.subscriptions.config.max_message_bytes;
    // tungstenite zeroes its whole read buffer before each read: at its
    // default (128 KiB) that is resident memory per idle connection. The
    // protocol's messages are small; a larger one grows the buffer.
    let ws = ws.protocols([PROTOCOL]).max_message_size(max).max_frame_size(max).read_buffer_size(READ_BUFFER_BYTES);
    let agreed = ws.selected_protocol().is_some();
    ws.on_upgrade(move |socket| async move {
        let _slot = slot;
        if agreed {
            Connection::new(gateway, headers, peer).serve(socket).await;
        } else {
            // What graphql-ws servers answer a client without the subprotocol.
            let mut socket = socket;
            let _ = socket.send(close(4406, "Subprotocol not acceptable")).await;
        }
    })
    .into_response()
}

fn close(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(truncate(reason, 123)) }))
}

fn text(json: String) -> Message {
    Message::Text(Utf8Bytes::from(json))
}

/// `{"id":..,"type":..,"payload":<payload>}` with the payload as JSON text.
fn message(id: &str, kind: &str, payload: Option<&[u8]>) -> Message {
    let mut out = String::with_capacity(payload.map_or(0, <[u8]>::len) + id.len() + 48);
    out.push_str("{\"id\":");
    out.push_str(&Value::String(id.to_owned()).to_string());
    out.push_str(",\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(payload) = payload {
        out.push_str(",\"payload\":");
        out.push_str(&String::from_utf8_lossy(payload));
    }
    out.push('}');
    text(out)
}

/// A connection's running operations by id: their number and their token.
type Operations = Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>;

/// How to close after a read failed: 1009 for a message above the limit.
fn closing_for(error: axum::Error) -> Closing {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match error.into_inner().downcast::<Error>().map(|e| *e) {
        Ok(Error::Capacity(CapacityError::MessageTooLong { .. })) => {
            metrics::counter!("gateway_websocket_closed_total", "reason" => "too_large").increment(1);
            Closing(1009, "Message too big".into())
        }
        _ => Closing(1000, String::new()),
    }
}

/// What `connection_init` established.
struct Session {
    admitted: Admitted,
    /// The upgrade request's headers, with the credentials in force.
    headers: HeaderMap,
    expires_at: watch::Sender<u64>,
}

struct Connection {
    gateway: Arc<Gateway>,
    upgrade_headers: HeaderMap,
    peer: Option<IpAddr>,
    session: Option<Arc<Mutex<Arc<Session>>>>,
    operations: Operations,
    tasks: TaskTracker,
    /// Numbers each subscribe, so an ended one removes only its own entry.
    subscribed: u64,
}

/// Why the connection is closing.
struct Closing(u16, String);

impl Connection {
    fn new(gateway: Arc<Gateway>, upgrade_headers: HeaderMap, peer: Option<IpAddr>) -> Self {
        Self {
            gateway,
            upgrade_headers: crate::subscription::detached(&upgrade_headers),
            peer,
            session: None,
            operations: Arc::default(),
            tasks: TaskTracker::new(),
            subscribed: 0,
        }
    }

    async fn serve(mut self, socket: WebSocket) {
        metrics::gauge!("gateway_websockets").increment(1.0);
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut pending) = mpsc::channel::<Message>(OUTBOX);
        let config = self.gateway.subscriptions.config.clone();
        let heartbeat = config.heartbeat();
        // Writes what the connection and its subscriptions send; a client
        // that takes more than three heartbeats to take one message is gone.
        // The writer's end is the connection's: `writer_gone` tells the loop
        // below, and dropping `pending` fails every later send at once.
        let writer_gone = CancellationToken::new();
        let gone = writer_gone.clone();
        let writer = tokio::spawn(async move {
            let _gone = gone.drop_guard();
            while let Some(message) = pending.recv().await {
                let closing = matches!(message, Message::Close(_));
                match tokio::time::timeout(heartbeat * 3, sink.send(message)).await {
                    Ok(Ok(())) if !closing => {}
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => break,
                    Err(_) => {
                        // A socket that takes nothing takes no close frame either.
                        metrics::counter!("gateway_websocket_closed_total", "reason" => "slow").increment(1);
                        return;
                    }
                }
            }
            drop(pending);
            let _ = tokio::time::timeout(heartbeat * 3, sink.close()).await;
        });
        let init_deadline = tokio::time::sleep(config.init_timeout());
        tokio::pin!(init_deadline);
        let mut pings = tokio::time::interval(heartbeat);
        pings.tick().await;
        let mut last_heard = Instant::now();
        let closing_gateway = self.gateway.subscriptions.closing().clone();
        let closing = loop {
            let received = tokio::select! {
                () = &mut init_deadline, if self.session.is_none() => {
                    break Closing(4408, "Connection initialisation timeout".into());
                }
                () = closing_gateway.cancelled() => break Closing(1012, "The gateway is restarting".into()),
                () = writer_gone.cancelled() => break Closing(4499, "The client is not reading".into()),
                _ = pings.tick() => {
                    if last_heard.elapsed() > heartbeat * 3 {
                        metrics::counter!("gateway_websocket_closed_total", "reason" => "silent").increment(1);
                        break Closing(4499, "No pong received".into());
                    }
                    if outbox.try_send(text(r#"{"type":"ping"}"#.into())).is_err() {
                        break Closing(4499, "The client is not reading".into());
                    }
                    continue;
                }
                received = stream.next() => received,
            };
            last_heard = Instant::now();
            let text = match received {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    break Closing(4400, "Binary messages are not part of the protocol".into())
                }
                Some(Ok(Message::Close(_))) | None => break Closing(1000, String::new()),
                Some(Err(error)) => break closing_for(error),
                Some(Ok(_)) => continue,
            };
            if let Err(closing) = self.receive(text.as_str(), &outbox).await {
                break closing;
            }
        };
        // Subscriptions end first (each says why, at shutdown), then the socket.
        for (_, token) in self.operations.lock().unwrap_or_else(|e| e.into_inner()).values() {
            if closing.0 != 1012 {
                token.cancel();
            }
        }
        self.tasks.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.tasks.wait()).await;
        if !(closing.0 == 1000 && closing.1.is_empty()) {
            tracing::debug!(code = closing.0, reason = %closing.1, "closing a WebSocket");
        }
        let _ = outbox.send(close(closing.0, &closing.1)).await;
        drop(outbox);
        let _ = writer.await;
        metrics::gauge!("gateway_websockets").decrement(1.0);
    }

    /// Handles one client message; `Err` closes the connection.
    async fn receive(&mut self, raw: &str, outbox: &mpsc::Sender<Message>) -> Result<(), Closing> {
        let invalid = |why: &str| Closing(4400, why.to_owned());
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(raw) else {
            return Err(invalid("Invalid message received: not a JSON object"));
        };
        let Some(Value::String(kind)) = message.remove("type") else {
            return Err(invalid("Invalid message received: no \"type\""));
        };
        match kind.as_str() {
            "connection_init" => {
                if self.session.is_some() {
                    return Err(Closing(4429, "Too many initialisation requests".into()));
                }
                let payload = message.remove("payload");
                let headers = self.headers_with(payload.as_ref())?;
                match admit_credentials(&self.gateway, &headers, self.peer).await {
                    Ok(admitted) => {
                        let expires_at = watch::Sender::new(admitted.expires_at.unwrap_or(u64::MAX));
                        let session = Session { admitted, headers, expires_at };
                        self.session = Some(Arc::new(Mutex::new(Arc::new(session))));
                        let _ = outbox.send(text(r#"{"type":"connection_ack"}"#.into())).await;
                        Ok(())
                    }
                    Err(refusal) => Err(Closing(4403, format!("Forbidden: {}", refusal.error.message))),
                }
            }
            "ping" => {
                if let Some(payload) = message.get("payload").filter(|p| credentials(p).is_some()) {
                    self.authenticate_again(payload).await?;
                }
                let pong = match message.get("payload") {
                    Some(payload) if !payload.is_null() && credentials(payload).is_none() => {
                        format!(r#"{{"type":"pong","payload":{payload}}}"#)
                    }
                    _ => r#"{"type":"pong"}"#.to_owned(),
                };
                let _ = outbox.try_send(text(pong));
                Ok(())
            }
            "pong" => Ok(()),
            "subscribe" => {
                let Some(session) = &self.session else { return Err(Closing(4401, "Unauthorized".into())) };
                let Some(Value::String(id)) = message.remove("id") else {
                    return Err(invalid("Invalid message received: a subscribe without a string \"id\""));
                };
                if id.is_empty() || id.len() > MAX_ID_BYTES {
                    return Err(invalid("Invalid message received: the id must be 1 to 128 bytes"));
                }
                let Some(payload) = message.remove("payload") else {
                    return Err(invalid("Invalid message received: a subscribe without a payload"));
                };
                let token = CancellationToken::new();
                let admitted = {
                    let mut operations = self.operations.lock().unwrap_or_else(|e| e.into_inner());
                    if operations.contains_key(&id) {
                        return Err(Closing(4409, format!("Subscriber for {id} already exists")));
                    }
                    let room = operations.len() < self.gateway.subscriptions.config.max_per_connection;
                    if room {
                        self.subscribed += 1;
                        operations.insert(id.clone(), (self.subscribed, token.clone()));
                    }
                    room
                };
                if !admitted {
                    let error = GraphQLError::new("Too many subscriptions on this connection", codes::LIMIT_EXCEEDED);
                    let _ = outbox.send(message_of_errors(&id, &[error])).await;
                    return Ok(());
                }
                let session = session.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let task = Operation {
                    number: self.subscribed,
                    gateway: self.gateway.clone(),
                    session,
                    peer: self.peer,
                    id,
                    operations: self.operations.clone(),
                    outbox: outbox.clone(),
                };
                self.tasks.spawn(task.run(payload, token));
                Ok(())
            }
            "complete" => {
                if let Some(Value::String(id)) = message.get("id") {
                    if let Some((_, token)) = self.operations.lock().unwrap_or_else(|e| e.into_inner()).remove(id) {
                        token.cancel();
                    }
                }
                Ok(())
            }
            other => Err(invalid(&format!("Invalid message received: unknown type {:?}", truncate(other, 32)))),
        }
    }

    /// The upgrade request's headers with the credentials `connection_init`
    /// carries in its payload, which win.
    fn headers_with(&self, payload: Option<&Value>) -> Result<HeaderMap, Closing> {
        let mut headers = self.upgrade_headers.clone();
        match payload {
            None | Some(Value::Null) => {}
            Some(payload @ Value::Object(_)) => {
                if let Some(authorization) = credentials(payload) {
                    let value = HeaderValue::from_str(authorization)
                        .map_err(|_| Closing(4403, "Forbidden: the Authorization value is malformed".into()))?;
                    headers.insert(header::AUTHORIZATION, value);
                }
            }
            Some(_) => return Err(Closing(4400, "Invalid message received: the payload must be an object".into())),
        }
        Ok(headers)
    }

    /// A fresh token for the same session: subscriptions live on to its expiry.
    async fn authenticate_again(&mut self, payload: &Value) -> Result<(), Closing> {
        let Some(current) = &self.session else { return Err(Closing(4401, "Unauthorized".into())) };
        let before = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let headers = self.headers_with(Some(payload))?;
        let admitted = admit_credentials(&self.gateway, &headers, self.peer)
            .await
            .map_err(|refusal| Closing(4403, format!("Forbidden: {}", refusal.error.message)))?;
        let same = match (&before.admitted.identity, &admitted.identity) {
            (Some(old), Some(new)) => old.user_id == new.user_id && old.session_id == new.session_id,
            _ => false,
        };
        if !same {
            return Err(Closing(4403, "Forbidden: the new token belongs to another session".into()));
        }
        before.expires_at.send_replace(admitted.expires_at.unwrap_or(u64::MAX));
        let session = Session { admitted, headers, expires_at: before.expires_at.clone() };
        *current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(session);
        metrics::counter!("gateway_websocket_reauthenticated_total").increment(1);
        Ok(())
    }
}

/// The `Authorization` value a payload carries: `Authorization` in any case,
/// at its top level or in `headers`.
fn credentials(payload: &Value) -> Option<&str> {
    fn find(object: &serde_json::Map<String, Value>) -> Option<&str> {
        object.iter().find(|(key, _)| key.eq_ignore_ascii_case("authorization")).and_then(|(_, v)| v.as_str())
    }
    let object = payload.as_object()?;
    find(object).or_else(|| object.get("headers").and_then(Value::as_object).and_then(find))
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn message_of_errors(id: &str, errors: &[GraphQLError]) -> Message {
    let payload = serde_json::to_vec(errors).unwrap_or_else(|_| b"[]".to_vec());
    message(id, "error", Some(&payload))
}

/// One subscription (or single operation) of a connection.
struct Operation {
    number: u64,
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    peer: Option<IpAddr>,
    id: String,
    operations: Operations,
    outbox: mpsc::Sender<Message>,
}

impl Operation {
    async fn run(self, payload: Value, cancelled: CancellationToken) {
        self.stream(payload, &cancelled).await;
        let mut operations = self.operations.lock().unwrap_or_else(|e| e.into_inner());
        if operations.get(&self.id).is_some_and(|(number, _)| *number == self.number) {
            operations.remove(&self.id);
        }
    }

    async fn stream(&self, payload: Value, cancelled: &CancellationToken) {
        let request = match request_from_json(payload) {
            Ok(request) => request,
            Err(error) => {
                let _ = self.outbox.send(message_of_errors(&self.id, &error.into_errors())).await;
                return;
            }
        };
        let session = &self.session;
        // Each subscribe counts against the caller's rate limit, as each
        // item of a batch does.
        if let (Some(limits), Some(key)) = (&self.gateway.rate_limits, &session.admitted.caller_key) {
            if let Err(error) = limits.check_caller(key).await {
                let _ = self.outbox.send(message_of_errors(&self.id, &error.into_errors())).await;
                return;
            }
        }
        let meta = session.admitted.meta(&session.headers, false, super::traceparent(&session.headers));
        let caller = session.admitted.subscription_caller(self.peer);
        let expires_at = session.admitted.identity.as_ref().map(|_| session.expires_at.subscribe());
        let subscriber = Subscriber { caller, expires_at };
        let subscribed = tokio::select! {
            () = cancelled.cancelled() => return,
            subscribed = self.gateway.subscribe(request, meta, subscriber) => subscribed,
        };
        let mut live = match subscribed {
            Ok(subscribed) => subscribed.into_live(),
            Err(error) => {
                let _ = self.outbox.send(message_of_errors(&self.id, &error.into_errors())).await;
                return;
            }
        };
        loop {
            let item = tokio::select! {
                // The client completed it: nothing more is sent for this id.
                () = cancelled.cancelled() => return,
                item = live.next() => item,
            };
            let sent = match item {
                Some(Item::Next(body)) => self.outbox.send(message(&self.id, "next", Some(&body[..]))).await,
                Some(Item::Ended(error)) => {
                    let body = write_errors(&[error]);
                    let _ = self.outbox.send(message(&self.id, "next", Some(&body))).await;
                    break;
                }
                None => break,
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = self.outbox.send(message(&self.id, "complete", None)).await;
    }
}
