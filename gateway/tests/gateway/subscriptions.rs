//! Subscriptions end to end: a client on each transport (graphql-ws, SSE,
//! multipart), a gateway, a `feed` subgraph that owns the subscription root
//! fields and a `people` subgraph that completes each event's `sender`
//! through an entity fetch. Hostile clients, upstream failures, limits and
//! sessions that end are covered here too.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, EmptyMutation, Object, Schema, SimpleObject, Subscription, ID};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use futures::{SinkExt, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::{fixture, GatewayBuilder, TestGateway, TestSubgraph};

#[derive(SimpleObject, Clone, Debug)]
struct Message {
    id: ID,
    text: String,
    room: String,
}

/// What the feed subgraph publishes to its subscribers.
type Feed = broadcast::Sender<Message>;

struct FeedQuery;

#[Object]
impl FeedQuery {
    async fn room(&self, name: String) -> Option<String> {
        Some(name)
    }

    #[graphql(entity)]
    async fn find_message(&self, id: ID) -> Message {
        Message { id, text: String::new(), room: String::new() }
    }
}

struct FeedSubscription;

fn messages(feed: &Feed, room: Option<String>) -> impl Stream<Item = Message> {
    let receiver = feed.subscribe();
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(message) => return Some((message, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |message| futures::future::ready(room.as_ref().is_none_or(|room| *room == message.room)))
}

#[Subscription]
impl FeedSubscription {
    async fn messages(&self, ctx: &Context<'_>, room: String) -> impl Stream<Item = Message> {
        messages(ctx.data_unchecked::<Feed>(), Some(room))
    }

    async fn secrets(&self, ctx: &Context<'_>) -> impl Stream<Item = Message> {
        messages(ctx.data_unchecked::<Feed>(), Some("secret".into()))
    }

    async fn audit(&self, ctx: &Context<'_>) -> impl Stream<Item = Message> {
        messages(ctx.data_unchecked::<Feed>(), Some("audit".into()))
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Message")]
struct PeopleMessage {
    id: ID,
    sender: String,
}

struct PeopleQuery;

#[Object]
impl PeopleQuery {
    #[graphql(entity)]
    async fn find_message(&self, id: ID) -> PeopleMessage {
        PeopleMessage { sender: format!("sender-of-{}", id.as_str()), id }
    }
}

/// The feed subgraph: queries over POST, subscriptions over graphql-ws on
/// GET. Every upgrade's headers are recorded.
async fn feed_subgraph(feed: Feed) -> (TestSubgraph, Arc<std::sync::Mutex<Vec<HeaderMap>>>) {
    let schema = Schema::build(FeedQuery, EmptyMutation, FeedSubscription).enable_federation().data(feed).finish();
    let upgrades: Arc<std::sync::Mutex<Vec<HeaderMap>>> = Arc::default();
    let seen = upgrades.clone();
    let ws_schema = schema.clone();
    let ws = axum::routing::get(move |headers: HeaderMap, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade| {
        let schema = ws_schema.clone();
        seen.lock().unwrap().push(headers);
        async move {
            upgrade
                .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
                .on_upgrade(move |socket| GraphQLWebSocket::new(socket, schema, protocol).serve())
        }
    });
    let subgraph = TestSubgraph::schema_with_route("feed", schema, ws).await;
    (subgraph, upgrades)
}

struct Setup {
    gateway: TestGateway,
    feed: Feed,
    upgrades: Arc<std::sync::Mutex<Vec<HeaderMap>>>,
    _subgraphs: (TestSubgraph, TestSubgraph),
}

async fn setup(tweak: impl FnOnce(&mut gatehouse_gateway::GatewayConfig) + 'static) -> Setup {
    let (feed, _) = broadcast::channel(1024);
    let (feed_graph, upgrades) = feed_subgraph(feed.clone()).await;
    let people = TestSubgraph::schema(
        "people",
        Schema::build(PeopleQuery, EmptyMutation, async_graphql::EmptySubscription).enable_federation().finish(),
    )
    .await;
    let gateway = GatewayBuilder::new(fixture("live/supergraph.graphql"))
        .subgraph(&feed_graph)
        .subgraph(&people)
        .config(tweak)
        .start()
        .await;
    Setup { gateway, feed, upgrades, _subgraphs: (feed_graph, people) }
}

fn message(id: &str, room: &str) -> Message {
    Message { id: ID(id.into()), text: format!("text {id}"), room: room.into() }
}

/// Publishes `message` until a subscriber of the feed is there to take it
/// (the gateway subscribes upstream asynchronously).
async fn publish_when_subscribed(feed: &Feed, subscribers: usize, message: Message) {
    wait_for(|| feed.receiver_count() >= subscribers, "the feed to have its subscribers").await;
    feed.send(message).unwrap();
}

/// The next piece of a streamed body, within 5 s.
async fn next_chunk(response: &mut reqwest::Response) -> bytes::Bytes {
    let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk()).await.expect("a chunk within 5 s");
    chunk.unwrap().expect("the stream is open")
}

/// POSTs `body` to the gateway with this `Accept` header.
async fn post_accepting(s: &Setup, accept: &str, body: serde_json::Value) -> reqwest::Response {
    let request = s.gateway.http.post(s.gateway.graphql_url()).header("content-type", "application/json");
    request.header("accept", accept).body(body.to_string()).send().await.unwrap()
}

/// Reads a streamed body until what was read contains `needle`.
async fn read_until(response: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    while !text.contains(needle) {
        text.push_str(&String::from_utf8_lossy(&next_chunk(response).await));
    }
    text
}

async fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A graphql-ws client speaking the protocol message by message.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsClient {
    /// Opens the socket with the subprotocol and `extra` headers; no message sent.
    pub async fn open(gateway: &TestGateway, extra: &[(&str, &str)]) -> Result<Self, u16> {
        Self::open_with(gateway, extra, None).await
    }

    /// As [`WsClient::open`], with the socket's receive buffer set to
    /// `receive_buffer` bytes (the kernel may round it up).
    pub async fn open_with(
        gateway: &TestGateway,
        extra: &[(&str, &str)],
        receive_buffer: Option<u32>,
    ) -> Result<Self, u16> {
        let url = gateway.graphql_url().replace("http://", "ws://");
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        for (name, value) in extra {
            request
                .headers_mut()
                .insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        let address = request.uri().authority().unwrap().as_str().parse::<std::net::SocketAddr>().unwrap();
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = receive_buffer {
            tcp.set_recv_buffer_size(size).unwrap();
        }
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp.connect(address).await.unwrap());
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("the WebSocket did not open: {other}"),
        }
    }

    /// Opens and initialises with `payload`; expects the ack.
    pub async fn connect(gateway: &TestGateway, payload: Value) -> Self {
        let mut client = Self::open(gateway, &[]).await.unwrap();
        client.send(json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(client.next().await["type"], "connection_ack");
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(WsMessage::text(message.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: WsMessage) {
        self.socket.send(message).await.unwrap();
    }

    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    }

    /// The next protocol message, answering the gateway's pings; panics on
    /// a close or after 5 s.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("a message within 5 s")
                .expect("the connection is open")
                .expect("a readable message");
            match message {
                WsMessage::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return value;
                }
                WsMessage::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Waits for the close; returns its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(5), self.socket.next()).await.expect("the close within 5 s");
            match message {
                Some(Ok(WsMessage::Close(Some(frame)))) => return (frame.code.into(), frame.reason.to_string()),
                Some(Ok(WsMessage::Close(None))) | None | Some(Err(_)) => return (1005, String::new()),
                Some(Ok(_)) => continue,
            }
        }
    }
}

const MESSAGES: &str = r#"subscription { messages(room: "a") { id text sender } }"#;

#[tokio::test]
async fn graphql_ws_events_are_completed_through_the_plan_across_two_subgraphs() {
    let s = setup(|_| {}).await;
    let mut client = WsClient::connect(&s.gateway, json!({})).await;
    client.subscribe("1", MESSAGES).await;
    publish_when_subscribed(&s.feed, 1, message("m1", "a")).await;
    let next = client.next().await;
    assert_eq!(
        next,
        json!({ "id": "1", "type": "next", "payload": { "data": { "messages": {
            "id": "m1", "text": "text m1", "sender": "sender-of-m1" } } } })
    );
    // Another room's message is not this subscription's.
    s.feed.send(message("m2", "b")).unwrap();
    s.feed.send(message("m3", "a")).unwrap();
    assert_eq!(client.next().await["payload"]["data"]["messages"]["id"], "m3");
    // The client completes it: the upstream subscription goes too.
    client.send(json!({ "id": "1", "type": "complete" })).await;
    wait_for(|| s.feed.receiver_count() == 0, "the upstream subscription to end").await;
    wait_for(|| s.gateway.gateway.subscriptions.live() == 0, "the subscription to be released").await;
    // The upstream connection carried the subgraph request's headers.
    let upgrades = s.upgrades.lock().unwrap().clone();
    assert!(upgrades[0].contains_key("traceparent"), "{upgrades:?}");
}

#[tokio::test]
async fn identical_subscriptions_share_one_upstream_and_each_event_is_completed_once_per_kind() {
    // No in-flight de-duplication: only shared completions can merge fetches.
    let s = setup(|config| config.dedupe_subgraph_requests = false).await;
    let mut first = WsClient::connect(&s.gateway, json!({})).await;
    let mut second = WsClient::connect(&s.gateway, json!({})).await;
    let mut other = WsClient::connect(&s.gateway, json!({})).await;
    first.subscribe("a", MESSAGES).await;
    second.subscribe("b", MESSAGES).await;
    // The same upstream subscription, a different selection elsewhere.
    other.subscribe("c", r#"subscription { messages(room: "a") { id text sender __typename } }"#).await;
    wait_for(|| s.gateway.gateway.subscriptions.live() == 3, "three subscriptions").await;
    publish_when_subscribed(&s.feed, 1, message("m1", "a")).await;
    assert_eq!(first.next().await["payload"]["data"]["messages"]["sender"], "sender-of-m1");
    assert_eq!(second.next().await["payload"]["data"]["messages"]["sender"], "sender-of-m1");
    let answer = other.next().await;
    assert_eq!(answer["payload"]["data"]["messages"]["sender"], "sender-of-m1");
    assert_eq!(answer["payload"]["data"]["messages"]["__typename"], "Message");
    assert_eq!(s.feed.receiver_count(), 1, "one upstream subscription for all three");
    assert_eq!(s.gateway.gateway.subscriptions.upstreams(), 1);
    // The two identical subscriptions shared one completion of the event:
    // one entity fetch for them, one for the third.
    let people = &s._subgraphs.1.recorder;
    assert_eq!(people.requests(), 2, "{:?}", people.bodies());
    // A query over the same socket: one `next`, then `complete`.
    first.subscribe("q", r#"{ room(name: "x") }"#).await;
    assert_eq!(first.next().await, json!({ "id": "q", "type": "next", "payload": { "data": { "room": "x" } } }));
    assert_eq!(first.next().await, json!({ "id": "q", "type": "complete" }));
}

#[tokio::test]
async fn server_sent_events_stream_results_then_complete() {
    let s = setup(|_| {}).await;
    let response = post_accepting(&s, "text/event-stream", json!({ "query": MESSAGES })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut body = response;
    publish_when_subscribed(&s.feed, 1, message("m1", "a")).await;
    let text = read_until(&mut body, "\n\n").await;
    assert_eq!(
        text,
        "event: next\ndata: {\"data\":{\"messages\":{\"id\":\"m1\",\"text\":\"text m1\",\"sender\":\"sender-of-m1\"}}}\n\n"
    );
    drop(body);
    wait_for(|| s.gateway.gateway.subscriptions.live() == 0, "a closed stream to end its subscription").await;

    // GET works too, and a query is one event, then `complete`.
    let response = s
        .gateway
        .http
        .get(format!("{}?query={}", s.gateway.graphql_url(), "%7B%20room(name%3A%20%22y%22)%20%7D"))
        .header("accept", "text/event-stream")
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        "event: next\ndata: {\"data\":{\"room\":\"y\"}}\n\nevent: complete\ndata:\n\n"
    );
}

/// What urql sends on every request: JSON first, the streaming formats after.
const URQL_ACCEPT: &str = "application/graphql-response+json, application/graphql+json, application/json, \
                           text/event-stream, multipart/mixed";

#[tokio::test]
async fn a_client_accepting_json_and_streams_gets_json_for_a_query_and_a_stream_for_a_subscription() {
    let s = setup(|_| {}).await;
    let url = format!("{}?query={}", s.gateway.graphql_url(), "%7B%20room(name%3A%20%22y%22)%20%7D");
    let response = s
        .gateway
        .http
        .get(url)
        .header("accept", URQL_ACCEPT)
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/graphql-response+json; charset=utf-8");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({ "data": { "room": "y" } }));

    // A refusal is the JSON one too, with the status of the media type asked.
    let response = post_accepting(&s, URQL_ACCEPT, json!({ "query": "{ nope }" })).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

    // A subscription with the same header is streamed.
    let response = post_accepting(&s, URQL_ACCEPT, json!({ "query": MESSAGES })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut body = response;
    publish_when_subscribed(&s.feed, 1, message("m2", "a")).await;
    let text = read_until(&mut body, "\n\n").await;
    assert!(text.starts_with("event: next\ndata: {\"data\":{\"messages\":{\"id\":\"m2\""), "{text:?}");
}

#[tokio::test]
async fn multipart_subscriptions_follow_apollos_format() {
    let s = setup(|config| config.subscriptions.heartbeat_ms = 200).await;
    let response =
        post_accepting(&s, "multipart/mixed;subscriptionSpec=\"1.0\", application/json", json!({ "query": MESSAGES }))
            .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"");
    let mut body = response;
    publish_when_subscribed(&s.feed, 1, message("m1", "a")).await;
    let text = read_until(&mut body, "sender-of-m1").await;
    let part = "\r\n--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n";
    let payload = r#"{"payload":{"data":{"messages":{"id":"m1","text":"text m1","sender":"sender-of-m1"}}}}"#;
    assert!(text.ends_with(&format!("{part}{payload}")), "{text:?}");
    // Heartbeats are empty parts.
    let text = read_until(&mut body, "{}").await;
    assert_eq!(text, format!("{part}{{}}"));
}

#[tokio::test]
async fn a_subscription_over_plain_http_is_refused_with_a_code_and_no_server_error() {
    let s = setup(|_| {}).await;
    let (status, body) = s.gateway.post_json(json!({ "query": MESSAGES })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "SUBSCRIPTION_TRANSPORT_REQUIRED");
    let (status, body) = s.gateway.post_json(json!({ "query": "subscription { nope }" })).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn an_unreachable_subgraph_ends_the_subscription_with_an_error() {
    let (feed, _) = broadcast::channel(16);
    let (feed_graph, _) = feed_subgraph(feed).await;
    let people = TestSubgraph::raw("people", |_| async { axum::http::StatusCode::OK.into_response() }).await;
    let closed = gatehouse_common::testing::free_port();
    let gateway = GatewayBuilder::new(fixture("live/supergraph.graphql"))
        .subgraph_url("feed", &format!("http://127.0.0.1:{closed}/graphql"))
        .subgraph(&people)
        .start()
        .await;
    drop(feed_graph);
    let mut client = WsClient::connect(&gateway, json!({})).await;
    client.subscribe("1", MESSAGES).await;
    let next = client.next().await;
    assert_eq!(next["type"], "next");
    assert_eq!(next["payload"]["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED", "{next}");
    assert_eq!(client.next().await, json!({ "id": "1", "type": "complete" }));
    assert_eq!(gateway.gateway.subscriptions.live(), 0);
}

use axum::response::IntoResponse;

#[tokio::test]
async fn protocol_violations_close_the_socket_with_the_protocols_codes() {
    let s = setup(|config| config.subscriptions.init_timeout_ms = 300).await;
    let gateway = &s.gateway;

    let mut client = WsClient::open(gateway, &[]).await.unwrap();
    assert_eq!(client.closed().await.0, 4408, "no connection_init in time");

    let mut client = WsClient::open(gateway, &[]).await.unwrap();
    client.subscribe("1", MESSAGES).await;
    assert_eq!(client.closed().await.0, 4401, "subscribe before the ack");

    let mut client = WsClient::connect(gateway, json!({})).await;
    client.send(json!({ "type": "connection_init" })).await;
    assert_eq!(client.closed().await.0, 4429, "a second connection_init");

    let mut client = WsClient::connect(gateway, json!({})).await;
    client.subscribe("1", MESSAGES).await;
    client.subscribe("1", MESSAGES).await;
    let (code, reason) = client.closed().await;
    assert_eq!((code, reason.as_str()), (4409, "Subscriber for 1 already exists"));

    for junk in ["not json", "[]", "{}", r#"{"type": 3}"#, r#"{"type":"subscribe"}"#, r#"{"type":"what"}"#] {
        let mut client = WsClient::connect(gateway, json!({})).await;
        client.send_raw(WsMessage::text(junk)).await;
        assert_eq!(client.closed().await.0, 4400, "{junk}");
    }
    let mut client = WsClient::connect(gateway, json!({})).await;
    client.send_raw(WsMessage::binary(vec![1, 2, 3])).await;
    assert_eq!(client.closed().await.0, 4400, "a binary message");

    let mut client = WsClient::connect(gateway, json!({})).await;
    let huge = "x".repeat(300 * 1024);
    client.send_raw(WsMessage::text(format!(r#"{{"type":"ping","payload":{{"x":"{huge}"}}}}"#))).await;
    assert_eq!(client.closed().await.0, 1009, "a message above the limit");

    // Without the subprotocol: the graphql-ws answer.
    let url = gateway.graphql_url().replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    match socket.next().await {
        Some(Ok(WsMessage::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4406),
        other => panic!("expected 4406, got {other:?}"),
    }

    // A bad document is an `error` for that id; the connection stays.
    let mut client = WsClient::connect(gateway, json!({})).await;
    client.subscribe("bad", "subscription { nope }").await;
    let error = client.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    client.send(json!({ "type": "ping", "payload": { "n": 1 } })).await;
    assert_eq!(client.next().await, json!({ "type": "pong", "payload": { "n": 1 } }));
    assert_eq!(gateway.gateway.subscriptions.live(), 0);
}

#[tokio::test]
async fn a_foreign_origin_cannot_open_a_websocket() {
    let s = setup(|config| config.security.cors_origins = vec!["https://app.example.com".into()]).await;
    assert_eq!(WsClient::open(&s.gateway, &[("origin", "https://evil.example")]).await.err(), Some(403));
    assert!(WsClient::open(&s.gateway, &[("origin", "https://app.example.com")]).await.is_ok());
    let own = s.gateway.base.clone();
    assert!(WsClient::open(&s.gateway, &[("origin", own.as_str())]).await.is_ok());
}

#[tokio::test]
async fn limits_bound_subscriptions_per_connection_and_websockets() {
    let s = setup(|config| {
        config.subscriptions.max_per_connection = 2;
        config.subscriptions.max_websockets = 3;
    })
    .await;
    let mut client = WsClient::connect(&s.gateway, json!({})).await;
    client.subscribe("1", MESSAGES).await;
    client.subscribe("2", MESSAGES).await;
    client.subscribe("3", MESSAGES).await;
    let refused = client.next().await;
    assert_eq!(refused["id"], "3");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
    let _b = WsClient::open(&s.gateway, &[]).await.unwrap();
    let _c = WsClient::open(&s.gateway, &[]).await.unwrap();
    assert_eq!(WsClient::open(&s.gateway, &[]).await.err(), Some(503));
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_its_subscription_released() {
    let s = setup(|config| {
        config.subscriptions.heartbeat_ms = 200;
        config.subscriptions.buffer = 4;
    })
    .await;
    // A client whose socket takes little: how much the kernel buffers for
    // a reader that never reads depends on the machine (tcp_rmem reaches
    // 32 MiB on some), and the feed may skip events it cannot keep up with.
    let mut client = WsClient::open_with(&s.gateway, &[], Some(8 * 1024)).await.unwrap();
    client.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(client.next().await["type"], "connection_ack");
    client.subscribe("1", MESSAGES).await;
    wait_for(|| s.feed.receiver_count() == 1, "the upstream subscription").await;
    // Large events, never read: the socket's buffers fill, the gateway
    // stops writing, and the subscription falls behind; events go on until
    // the gateway gives up on the client.
    let text = "x".repeat(64 * 1024);
    for i in 0..3000 {
        if s.gateway.gateway.subscriptions.live() == 0 {
            break;
        }
        let _ = s.feed.send(Message { id: ID(format!("m{i}")), text: text.clone(), room: "a".into() });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    wait_for(|| s.gateway.gateway.subscriptions.live() == 0, "the slow client's subscription to end").await;
    wait_for(|| s.feed.receiver_count() == 0, "the upstream subscription to end").await;
    drop(client);
}

mod sessions {
    //! Subscriptions of authenticated callers: guards at subscribe time, and
    //! the end of the session or of the token ending the subscription.

    use super::*;
    use crate::common::auth::{jwks_endpoint, now, token_for, token_until, verify_tokens};
    use gatehouse_common::settings::SharedSettings;
    use uuid::Uuid;

    async fn secured(extra: impl FnOnce(&mut gatehouse_gateway::GatewayConfig) + 'static) -> (Setup, SharedSettings) {
        let id = Uuid::new_v4().simple().to_string();
        let shared = SharedSettings::for_tests(&format!("gw-sub:{id}:"), &format!("GWSUB_{id}"), &format!("gwsub{id}"));
        let jwks = jwks_endpoint().await;
        let (feed, _) = broadcast::channel(1024);
        let (feed_graph, upgrades) = feed_subgraph(feed.clone()).await;
        let people = TestSubgraph::schema(
            "people",
            Schema::build(PeopleQuery, EmptyMutation, async_graphql::EmptySubscription).enable_federation().finish(),
        )
        .await;
        let gateway = GatewayBuilder::new(fixture("live/supergraph.graphql"))
            .subgraph(&feed_graph)
            .subgraph(&people)
            .shared(shared.clone())
            .config(move |c| {
                verify_tokens(c, jwks);
                extra(c);
            })
            .start()
            .await;
        (Setup { gateway, feed, upgrades, _subgraphs: (feed_graph, people) }, shared)
    }

    const SECRETS: &str = "subscription { secrets { id sender } }";

    async fn subscribed(s: &Setup, token: &str) -> WsClient {
        let mut client = WsClient::connect(&s.gateway, json!({ "Authorization": format!("Bearer {token}") })).await;
        client.subscribe("s", SECRETS).await;
        wait_for(|| s.gateway.gateway.subscriptions.live() == 1, "the subscription").await;
        client
    }

    #[tokio::test]
    async fn guards_apply_at_subscribe_time_and_the_identity_travels_upstream() {
        let (s, shared) = secured(|_| {}).await;
        // Anonymous: the guarded field is removed, as for a query.
        let mut anonymous = WsClient::connect(&s.gateway, json!({})).await;
        anonymous.subscribe("1", SECRETS).await;
        let denied = anonymous.next().await;
        assert_eq!(denied["payload"]["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{denied}");
        // A bad token never gets an ack.
        let mut forged = WsClient::open(&s.gateway, &[]).await.unwrap();
        forged.send(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nope" } })).await;
        assert_eq!(forged.closed().await.0, 4403);
        // Without the admin scope, `audit` is refused; with it, it runs.
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let mut client = WsClient::connect(
            &s.gateway,
            json!({ "Authorization": format!("Bearer {}", token_for(user, sid, "user")) }),
        )
        .await;
        client.subscribe("a", "subscription { audit { id } }").await;
        assert_eq!(client.next().await["payload"]["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE");
        assert_eq!(client.next().await, json!({ "id": "a", "type": "complete" }));
        client.subscribe("s", SECRETS).await;
        publish_when_subscribed(&s.feed, 1, message("x1", "secret")).await;
        assert_eq!(client.next().await["payload"]["data"]["secrets"]["sender"], "sender-of-x1");
        // The subgraph was told who subscribes, in the signed header.
        let upgrades = s.upgrades.lock().unwrap().clone();
        let signed = upgrades[0][gatehouse_common::identity::IDENTITY_HEADER].to_str().unwrap().to_owned();
        let codec = gatehouse_common::identity::IdentityCodec::new(&shared.identity_secret, 30);
        assert_eq!(codec.verify(&signed, now()).unwrap().user_id, user);
    }

    #[tokio::test]
    async fn a_revoked_session_ends_its_subscription_with_unauthenticated() {
        let (s, shared) = secured(|_| {}).await;
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let mut client = subscribed(&s, &token_for(user, sid, "user")).await;
        // Another session's subscription goes on.
        let mut other = subscribed_second(&s, &token_for(user, Uuid::new_v4(), "user")).await;
        let mut redis = redis::Client::open(shared.redis_url.as_str()).unwrap().get_connection_manager().await.unwrap();
        let key = format!("{}revoked:sid:{{{sid}}}", shared.redis_key_prefix);
        let revoked_at = std::time::Instant::now();
        let _: () = redis::cmd("SET").arg(&key).arg("1").arg("EX").arg(60).query_async(&mut redis).await.unwrap();
        let ended = client.next().await;
        let took = revoked_at.elapsed();
        assert_eq!(ended["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{ended}");
        assert_eq!(client.next().await, json!({ "id": "s", "type": "complete" }));
        // Found by the sweep within the revocation recheck (1 s) and a sweep.
        assert!(took < Duration::from_secs(3), "{took:?}");
        s.feed.send(message("x2", "secret")).unwrap();
        assert_eq!(other.next().await["payload"]["data"]["secrets"]["id"], "x2");
    }

    async fn subscribed_second(s: &Setup, token: &str) -> WsClient {
        let mut client = WsClient::connect(&s.gateway, json!({ "Authorization": format!("Bearer {token}") })).await;
        client.subscribe("s", SECRETS).await;
        wait_for(|| s.gateway.gateway.subscriptions.live() == 2, "the second subscription").await;
        client
    }

    #[tokio::test]
    async fn a_revocation_notice_ends_the_subscription_at_once() {
        // With an hour-long recheck, only the notice can end it.
        let (s, shared) = secured(|c| c.security.revocation_recheck_ms = 3_600_000).await;
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let mut client = subscribed(&s, &token_for(user, sid, "user")).await;
        let nats = async_nats::connect(shared.nats.url.as_str()).await.unwrap();
        let subject = shared.revocation_subject();
        let payload = json!({ "sid": sid, "user_id": user, "reason": "logout", "revoked_at": now() }).to_string();
        // A forged notice changes nothing.
        nats.publish(subject.clone(), payload.clone().into()).await.unwrap();
        nats.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.gateway.gateway.subscriptions.live(), 1);
        let headers = shared.message_signer().headers(&subject, payload.as_bytes());
        nats.publish_with_headers(subject.clone(), headers, payload.into()).await.unwrap();
        nats.flush().await.unwrap();
        let ended = client.next().await;
        assert_eq!(ended["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{ended}");
    }

    #[tokio::test]
    async fn an_expiring_token_ends_the_subscription_unless_renewed_on_the_socket() {
        let (s, _) = secured(|_| {}).await;
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let mut expiring = subscribed(&s, &token_until(user, sid, "user", now() + 2)).await;
        let ended = expiring.next().await;
        assert_eq!(ended["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{ended}");
        assert!(ended["payload"]["errors"][0]["message"].as_str().unwrap().contains("expired"));

        let mut renewed = subscribed(&s, &token_until(user, sid, "user", now() + 2)).await;
        let fresh = token_for(user, sid, "user");
        renewed.send(json!({ "type": "ping", "payload": { "Authorization": format!("Bearer {fresh}") } })).await;
        assert_eq!(renewed.next().await, json!({ "type": "pong" }));
        tokio::time::sleep(Duration::from_secs(3)).await;
        s.feed.send(message("x3", "secret")).unwrap();
        assert_eq!(renewed.next().await["payload"]["data"]["secrets"]["id"], "x3");
        // Another session's token is not a renewal.
        let foreign = token_for(user, Uuid::new_v4(), "user");
        renewed.send(json!({ "type": "ping", "payload": { "Authorization": format!("Bearer {foreign}") } })).await;
        assert_eq!(renewed.closed().await.0, 4403);
    }
}
