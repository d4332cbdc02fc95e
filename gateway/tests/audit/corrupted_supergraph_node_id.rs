//! Audit scenario `corrupted-supergraph-node-id`: both subgraphs serve the
//! shareable `Query.node`, but each one has `id` as `@external` on the type
//! the other owns, so `node { id }` has no correct plan and must be an
//! error, while selections the subgraphs can resolve must be routed to the
//! subgraph that owns the type asked for (never trusting an external `id`).

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

const ACCOUNT: (&str, &str) = ("a1", "a1-username");
const CHAT: (&str, &str) = ("c1", "c1-text");

fn account_in_a() -> Value {
    json!({"__typename": "Account", "id": ACCOUNT.0, "username": ACCOUNT.1})
}

fn chat_in_b() -> Value {
    json!({"__typename": "Chat", "id": CHAT.0, "text": CHAT.1})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // Each subgraph answers a wrong `id` for the type whose `id` is external
    // to it, so a plan reading it from there shows up in the data.
    let a = JsonSubgraph::new("a")
        .possible("Node", &["Account", "Chat"])
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Query", "node") if args["id"] == ACCOUNT.0 => Some(account_in_a()),
            ("Query", "node") if args["id"] == CHAT.0 => {
                Some(json!({"__typename": "Chat", "id": "wrong", "accountId": ACCOUNT.0}))
            }
            ("Query", "node") => Some(Value::Null),
            ("Query", "account") if args["id"] == ACCOUNT.0 => Some(account_in_a()),
            ("Query", "account") => Some(Value::Null),
            ("Chat", "account") => Some(account_in_a()),
            _ => None,
        })
        .entities(|rep| match (rep["__typename"].as_str(), rep["id"].as_str()) {
            (Some("Account"), Some(id)) if id == ACCOUNT.0 => account_in_a(),
            (Some("Chat"), Some(id)) if id == CHAT.0 => json!({"__typename": "Chat", "id": id, "accountId": ACCOUNT.0}),
            _ => Value::Null,
        });
    let b = JsonSubgraph::new("b")
        .possible("Node", &["Account", "Chat"])
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Query", "node") if args["id"] == ACCOUNT.0 => Some(json!({"__typename": "Account", "id": "wrong"})),
            ("Query", "node") if args["id"] == CHAT.0 => Some(chat_in_b()),
            ("Query", "node") => Some(Value::Null),
            ("Query", "chat") if args["id"] == CHAT.0 => Some(chat_in_b()),
            ("Query", "chat") => Some(Value::Null),
            ("Account", "chats") => Some(json!([chat_in_b()])),
            _ => None,
        })
        .entities(|rep| match (rep["__typename"].as_str(), rep["id"].as_str()) {
            (Some("Account"), Some(id)) if id == ACCOUNT.0 => json!({"__typename": "Account", "id": id}),
            (Some("Chat"), Some(id)) if id == CHAT.0 => chat_in_b(),
            _ => Value::Null,
        });
    start("corrupted-supergraph-node-id", vec![a, b]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

/// No subgraph can resolve `id` for every `Node`: the request fails as a whole.
async fn check_unplannable(query: &str) {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(query).await;
    assert!(response["data"].is_null(), "{query}: {response}");
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{query}: {response}");
}

#[tokio::test]
async fn node_id_has_no_plan() {
    check_unplannable(r#"{ node(id: "a1") { id } }"#).await;
}

#[tokio::test]
async fn node_typename_from_either_subgraph() {
    check(
        r#"{ account: node(id: "a1") { __typename } chat: node(id: "c1") { __typename } }"#,
        json!({"account": {"__typename": "Account"}, "chat": {"__typename": "Chat"}}),
    )
    .await;
}

#[tokio::test]
async fn node_fragments_routed_to_the_owning_subgraph() {
    check(
        r#"{ account: node(id: "a1") { ... on Account { id username } } chat: node(id: "c1") { ... on Chat { id text } } }"#,
        json!({"account": {"id": "a1", "username": "a1-username"}, "chat": {"id": "c1", "text": "c1-text"}}),
    )
    .await;
}

#[tokio::test]
async fn node_fragments_that_do_not_match() {
    check(
        r#"{ account: node(id: "a1") { ... on Chat { id } } chat: node(id: "c1") { ... on Account { id } } }"#,
        json!({"account": {}, "chat": {}}),
    )
    .await;
}

#[tokio::test]
async fn node_typename_next_to_fragments_that_do_not_match() {
    check(
        r#"{ account: node(id: "a1") { __typename ... on Chat { id } } chat: node(id: "c1") { __typename ... on Account { id } } }"#,
        json!({"account": {"__typename": "Account"}, "chat": {"__typename": "Chat"}}),
    )
    .await;
}

#[tokio::test]
async fn node_id_next_to_a_fragment_has_no_plan() {
    check_unplannable(
        r#"{ account: node(id: "a1") { id ... on Chat { id } } chat: node(id: "c1") { __typename ... on Account { id } } }"#,
    )
    .await;
}

#[tokio::test]
async fn chat_by_id() {
    check(r#"{ chat(id: "c1") { id } }"#, json!({"chat": {"id": "c1"}})).await;
}

#[tokio::test]
async fn account_by_id() {
    check(r#"{ account(id: "a1") { id } }"#, json!({"account": {"id": "a1"}})).await;
}

#[tokio::test]
async fn chat_with_its_account() {
    check(
        r#"{ chat(id: "c1") { id text account { id } } }"#,
        json!({"chat": {"id": "c1", "text": "c1-text", "account": {"id": "a1"}}}),
    )
    .await;
}

#[tokio::test]
async fn account_with_its_chats() {
    check(
        r#"{ account(id: "a1") { id username chats { id } } }"#,
        json!({"account": {"id": "a1", "username": "a1-username", "chats": [{"id": "c1"}]}}),
    )
    .await;
}
