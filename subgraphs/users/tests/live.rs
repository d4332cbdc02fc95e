//! The users subgraph's subscriptions over graphql-ws, as the gateway uses
//! them: the signed identity on the upgrade or in `connection_init`, events
//! from the JetStream stream, revocation notices and live notices, forged
//! messages ignored.

mod support;

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use futures::{SinkExt, StreamExt};
use gatehouse_common::events::AccountChange;
use gatehouse_common::identity::{Identity, IDENTITY_HEADER};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use support::{identity, TestApp};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-ws connection with `header` on the upgrade and
/// `payload` in `connection_init`; the HTTP status when refused.
async fn open(app: &TestApp, header: Option<&str>, payload: Value) -> Result<Socket, u16> {
    let mut request = format!("{}/graphql", app.address.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    if let Some(header) = header {
        request.headers_mut().insert(IDENTITY_HEADER, header.parse().unwrap());
    }
    let mut socket = match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => socket,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => return Err(response.status().as_u16()),
        Err(other) => panic!("{other}"),
    };
    send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
    Ok(socket)
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

/// The next message that is not a ping; `None` when nothing came for `wait`.
async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next()).await.ok()??.ok()?;
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    send(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                return Some(value);
            }
            Message::Close(frame) => return Some(json!({ "closed": frame.map(|f| u16::from(f.code)) })),
            _ => continue,
        }
    }
}

async fn next(socket: &mut Socket) -> Value {
    next_within(socket, Duration::from_secs(10)).await.expect("a message within 10 s")
}

async fn subscribe(app: &TestApp, caller: &Identity, query: &str) -> Socket {
    let mut socket = open(app, Some(&app.sign(caller)), json!({})).await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": query } })).await;
    socket
}

/// Publishes `notice` signed (or not) on `subject`, as the auth service would.
async fn notify(app: &TestApp, subject: &str, notice: Value, signed: bool) {
    let payload = notice.to_string();
    let headers = if signed {
        app.settings.message_signer().headers(subject, payload.as_bytes())
    } else {
        async_nats::HeaderMap::new()
    };
    app.nats.publish_with_headers(subject.to_owned(), headers, payload.into()).await.unwrap();
    app.nats.flush().await.unwrap();
}

const ACCOUNT_EVENTS: &str = "subscription { accountEvents { type occurredAt } }";

#[tokio::test]
async fn account_events_reach_their_owner_only_and_forged_notices_nobody() {
    let app = TestApp::spawn().await;
    let me = app.register("alice", "Alice", "USER").await;
    let other = app.register("bob", "Bob", "USER").await;
    let mut socket = subscribe(&app, &identity(me, &["user"]), ACCOUNT_EVENTS).await;
    // The subscription is live once the feed has a subscriber; events
    // published before that are not this subscription's.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Someone else's event, and a forged notice about me: nothing arrives.
    app.apply(other, 2, AccountChange::RoleChanged { role: "ADMIN".into() }).await;
    // And a genuine notice an hour old (history replayed, or a captured
    // notice played again): old news, not sent.
    let revocations = app.settings.revocation_subject();
    let now = Utc::now().timestamp();
    let revoked_at =
        |user: Uuid, at: i64| json!({ "sid": Uuid::new_v4(), "user_id": user, "reason": "logout", "revoked_at": at });
    notify(&app, &revocations, revoked_at(me, now), false).await;
    notify(&app, &revocations, revoked_at(me, now - 3600), true).await;
    assert_eq!(next_within(&mut socket, Duration::from_millis(500)).await, None);

    // My role changed (a JetStream event), a session of mine ended (a
    // notice), my password changed and my profile changed (live notices).
    app.apply(me, 2, AccountChange::RoleChanged { role: "ADMIN".into() }).await;
    let event = next(&mut socket).await;
    assert_eq!(event["payload"]["data"]["accountEvents"]["type"], "ROLES_CHANGED", "{event}");
    assert!(event["payload"]["data"]["accountEvents"]["occurredAt"].is_string());
    notify(&app, &revocations, revoked_at(me, now), true).await;
    assert_eq!(next(&mut socket).await["payload"]["data"]["accountEvents"]["type"], "SESSION_REVOKED");
    let live = app.settings.live_subject();
    let at = Utc::now().trunc_subsecs(0);
    let changed = json!({ "user_id": me, "kind": "PASSWORD_CHANGED", "occurred_at": at });
    notify(&app, &live, changed, true).await;
    let event = next(&mut socket).await;
    assert_eq!(event["payload"]["data"]["accountEvents"]["type"], "PASSWORD_CHANGED");
    assert_eq!(event["payload"]["data"]["accountEvents"]["occurredAt"], at.to_rfc3339());
    let edit = "mutation { updateProfile(input: { bio: \"new\" }) { bio } }";
    let answer = app.graphql(edit, json!({}), Some(&identity(me, &["user"]))).await;
    assert_eq!(answer["data"]["updateProfile"]["bio"], "new", "{answer}");
    assert_eq!(next(&mut socket).await["payload"]["data"]["accountEvents"]["type"], "PROFILE_UPDATED");
    app.apply(me, 3, AccountChange::ActiveChanged { active: false }).await;
    assert_eq!(next(&mut socket).await["payload"]["data"]["accountEvents"]["type"], "ACCOUNT_DEACTIVATED");
    app.cleanup().await;
}

#[tokio::test]
async fn user_events_are_for_administrators_and_name_the_user() {
    let app = TestApp::spawn().await;
    let someone = app.register("carol", "Carol", "USER").await;
    let mut plain = subscribe(&app, &identity(Uuid::new_v4(), &["user"]), "subscription { userEvents { type } }").await;
    let refused = next(&mut plain).await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(next(&mut plain).await["type"], "complete");

    let query = "subscription { userEvents { type userId user { id displayName } } }";
    let mut admin = subscribe(&app, &identity(Uuid::new_v4(), &["user", "admin"]), query).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.apply(someone, 2, AccountChange::EmailVerified).await;
    let event = next(&mut admin).await;
    assert_eq!(
        event["payload"]["data"]["userEvents"],
        json!({ "type": "EMAIL_VERIFIED", "userId": someone.to_string(),
                "user": { "id": someone.to_string(), "displayName": "Carol" } }),
        "{event}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_forged_missing_or_stale_identity_gets_no_subscription() {
    let app = TestApp::spawn().await;
    // A forged header on the upgrade: refused before the upgrade.
    assert_eq!(open(&app, Some("v1.forged.mac"), json!({})).await.err(), Some(401));
    // A forged one in `connection_init`: the connection closes (1002, as
    // async-graphql closes on a refused `connection_init`), no ack.
    let mut socket = open(&app, None, json!({ IDENTITY_HEADER: "v1.forged.mac" })).await.unwrap();
    assert_eq!(next(&mut socket).await["closed"], 1002);
    // A genuine one in `connection_init` works as on the upgrade.
    let me = app.register("dave", "Dave", "USER").await;
    let mut socket = open(&app, None, json!({ IDENTITY_HEADER: app.sign(&identity(me, &["user"])) })).await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    // None at all: an anonymous caller, whom `accountEvents` refuses.
    let mut anonymous = open(&app, None, json!({})).await.unwrap();
    assert_eq!(next(&mut anonymous).await["type"], "connection_ack");
    send(&mut anonymous, json!({ "id": "1", "type": "subscribe", "payload": { "query": ACCOUNT_EVENTS } })).await;
    let refused = next(&mut anonymous).await;
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
    app.cleanup().await;
}
