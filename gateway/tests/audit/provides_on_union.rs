//! Audit scenario `provides-on-union`: a root field whose `@provides` goes
//! through a union member's type condition; the provided field must come
//! from that subgraph, the other member's field from an entity call.

use crate::{audit_support, common};

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

fn medias() -> Value {
    json!([
        {"__typename": "Book", "id": "m1", "title": "Book 1"},
        {"__typename": "Movie", "id": "m2", "title": "Movie 1"}
    ])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // `a` can serve `media` too, but a good plan never needs it.
    let a = JsonSubgraph::new("a").query(json!({"media": {"__error": "subgraph a should not be used"}}));
    let b_media: Vec<Value> = medias()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m["__typename"].as_str() {
            Some("Book") => m.clone(),
            _ => json!({"__typename": m["__typename"], "id": m["id"]}),
        })
        .collect();
    let b = JsonSubgraph::new("b").query(json!({ "media": b_media })).possible("Media", &["Book", "Movie"]);
    let c = JsonSubgraph::new("c").entities(|rep| {
        if rep["__typename"] == "Book" {
            return json!({"__error": "Book.title should come from subgraph b"});
        }
        find_by(&medias(), "id", rep)
    });
    start("provides-on-union", vec![a, b, c]).await
}

#[tokio::test]
async fn provided_member_field_needs_no_entity_call() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ media { ... on Book { id title } ... on Movie { id } } }").await;
    assert_eq!(response, json!({"data": {"media": [{"id": "m1", "title": "Book 1"}, {"id": "m2"}]}}));
    assert_eq!(subs[2].recorder.requests(), 0);
}

#[tokio::test]
async fn unprovided_member_field_comes_from_an_entity_call() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ media { ... on Book { id title } ... on Movie { id title } } }").await;
    assert_eq!(
        response,
        json!({"data": {"media": [{"id": "m1", "title": "Book 1"}, {"id": "m2", "title": "Movie 1"}]}})
    );
}
