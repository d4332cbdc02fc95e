//! Audit scenario `simple-entity-call`: the root subgraph keys `User` by `id`,
//! the other only by `email` (an `@external` key field), so the gateway must
//! fetch the entity with a key other than the one the client asked about.

mod audit_support;
mod common;

use audit_support::{start, JsonSubgraph};
use serde_json::json;

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let email = JsonSubgraph::new("email")
        .query(json!({"user": {"__typename": "User", "id": "u7", "email": "kim@example.org"}}))
        .entities(|rep| {
            if rep["id"] == "u7" {
                json!({"__typename": "User", "id": "u7", "email": "kim@example.org"})
            } else {
                serde_json::Value::Null
            }
        });
    let nickname = JsonSubgraph::new("nickname").entities(|rep| {
        if rep["email"] == "kim@example.org" {
            json!({"__typename": "User", "nickname": "kimmy"})
        } else {
            serde_json::Value::Null
        }
    });
    start("simple-entity-call", vec![email, nickname]).await
}

#[tokio::test]
async fn entity_call_by_a_different_key() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ user { id nickname } }").await,
        json!({"data": {"user": {"id": "u7", "nickname": "kimmy"}}})
    );
}
