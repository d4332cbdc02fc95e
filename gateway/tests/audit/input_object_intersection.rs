//! Audit scenario `input-object-intersection`: an input type whose `offset`
//! field exists in only one subgraph, so the composed input has just the
//! fields both share and a client sending `offset` must be rejected for
//! either root field.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

fn users() -> Value {
    json!([{"__typename": "User", "id": "u1", "name": "Uma"}, {"__typename": "User", "id": "u2", "name": "Vic"}])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // Both answer nothing when they see an `offset`, which must never get through.
    let answer = |root: &'static str| {
        move |parent: &Value, field: &str, args: &Value| -> Option<Value> {
            (parent["__typename"] == "Query" && field == root).then(|| {
                if args["filter"].get("offset").is_some() {
                    json!([])
                } else {
                    users()
                }
            })
        }
    };
    let a = JsonSubgraph::new("a").fields(answer("usersInA"));
    let b = JsonSubgraph::new("b").fields(answer("usersInB"));
    start("input-object-intersection", vec![a, b]).await
}

#[tokio::test]
async fn shared_input_field() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ usersInA(filter: { first: 1 }) { id } }").await,
        json!({"data": {"usersInA": [{"id": "u1"}, {"id": "u2"}]}})
    );
}

async fn assert_rejected(query: &str) {
    let (subs, gateway) = suite().await;
    let response = gateway.query(query).await;
    assert!(response["data"].is_null(), "{response}");
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
    assert!(subs.iter().all(|s| s.recorder.requests() == 0), "no subgraph is called");
}

#[tokio::test]
async fn field_missing_from_the_other_subgraph_is_rejected() {
    assert_rejected("{ usersInA(filter: { first: 1, offset: 2 }) { id } }").await;
}

#[tokio::test]
async fn field_of_the_same_subgraph_is_rejected_too() {
    assert_rejected("{ usersInB(filter: { first: 1, offset: 2 }) { id } }").await;
}
