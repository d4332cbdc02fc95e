//! Audit scenario `simple-entity-call`: the root subgraph keys `User` by `id`,
//! the other only by `email` (an `@external` key field), so the gateway must
//! fetch the entity with a key other than the one the client asked about.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::json;

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let email = JsonSubgraph::new("email")
        .query(json!({"user": {"__typename": "User", "id": "1", "email": "user1@example.com"}}))
        .entities(|rep| {
            if rep["id"] == "1" {
                json!({"__typename": "User", "id": "1", "email": "user1@example.com"})
            } else {
                serde_json::Value::Null
            }
        });
    let nickname = JsonSubgraph::new("nickname").entities(|rep| {
        if rep["email"] == "user1@example.com" {
            json!({"__typename": "User", "nickname": "user1"})
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
        json!({"data": {"user": {"id": "1", "nickname": "user1"}}})
    );
}

/// The audit subgraphs answer requests their own schema rejects with the
/// validation errors a real server would, so a gateway sending one shows.
#[test]
fn test_subgraphs_reject_what_their_schema_does_not_have() {
    let email = JsonSubgraph::new("email").sdl(&common::fixture("audit/simple-entity-call/email.graphql"));
    let rejected = email.answer(&json!({"query": "{ user { nickname } }"}));
    assert!(rejected["errors"][0]["message"].as_str().is_some_and(|m| m.contains("nickname")), "{rejected}");
    let accepted = email.answer(&json!({
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { email } } }",
        "variables": {"r": []}
    }));
    assert!(accepted.get("errors").is_none(), "{accepted}");
}
