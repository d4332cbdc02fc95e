//! Audit scenario `partial-union`: the shareable `Response.actions` is a
//! union that subgraph `a` declares in full (`Alpha | Beta | Gamma`) and
//! subgraph `b` only partly (`Alpha`). No member has a `@key`, so `Beta` and
//! `Gamma` can only come from `a`: the gateway must keep their type
//! conditions in the fetch from `a` rather than drop them as members some
//! other subgraph lacks.

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::{json, Value};

const MESSAGE: &str = "Hello, Federation!";

fn alpha() -> Value {
    json!({"__typename": "Alpha", "id": "alpha-1", "value": "alpha value"})
}

fn beta() -> Value {
    json!({"__typename": "Beta", "id": "beta-1", "name": "beta name", "details": "beta details"})
}

fn gamma() -> Value {
    json!({"__typename": "Gamma", "id": "gamma-1", "label": "gamma label"})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "getResponse": {"__typename": "Response", "message": MESSAGE, "actions": [alpha(), beta(), gamma()]}
        }))
        .possible("Action", &["Alpha", "Beta", "Gamma"]);
    // `b` has no root field and no entity: it only makes `Action` partial.
    let b = JsonSubgraph::new("b").possible("Action", &["Alpha"]);
    start("partial-union", vec![a, b]).await
}

/// The whole answer is one fetch from `a`; `b` is never asked.
fn assert_only_a_is_called(subs: &[common::TestSubgraph]) {
    assert_eq!(request_counts(subs), vec![1, 0], "requests to a, b");
}

#[tokio::test]
async fn every_member_of_the_full_union_is_resolved_from_the_subgraph_declaring_it() {
    let (subs, gateway) = suite().await;
    let response = gateway
        .query(
            "{ getResponse { message actions { __typename \
               ... on Alpha { id value } \
               ... on Beta { id name details } \
               ... on Gamma { id label } } } }",
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"getResponse": {
            "message": MESSAGE,
            "actions": [
                {"__typename": "Alpha", "id": "alpha-1", "value": "alpha value"},
                {"__typename": "Beta", "id": "beta-1", "name": "beta name", "details": "beta details"},
                {"__typename": "Gamma", "id": "gamma-1", "label": "gamma label"}
            ]
        }}})
    );
    assert_only_a_is_called(&subs);
}

#[tokio::test]
async fn members_missing_from_the_partial_subgraph_still_get_their_fields() {
    let (subs, gateway) = suite().await;
    let response =
        gateway.query("{ getResponse { actions { __typename ... on Beta { name } ... on Gamma { label } } } }").await;
    assert_eq!(
        response,
        json!({"data": {"getResponse": {"actions": [
            {"__typename": "Alpha"},
            {"__typename": "Beta", "name": "beta name"},
            {"__typename": "Gamma", "label": "gamma label"}
        ]}}})
    );
    assert_only_a_is_called(&subs);
}
