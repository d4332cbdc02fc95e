//! Audit scenario `override-type-interface`: `ImagePost.createdAt` is
//! overridden away from the subgraph whose root returns it as a `Post`, so
//! the interface field must be routed per concrete type; a fragment on a type
//! the root subgraph never returns yields empty objects.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, createdAt
const IMAGES: [(&str, &str); 2] = [("i1", "i1-createdAt"), ("i2", "i2-createdAt")];
/// id, createdAt, body
const TEXTS: [(&str, &str, &str); 1] = [("t1", "t1-createdAt", "t1-body")];

fn image(p: &(&str, &str)) -> Value {
    json!({"__typename": "ImagePost", "id": p.0, "createdAt": p.1})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // `a` lost `createdAt` to the override: what it would answer is wrong.
    let stale = |p: &(&str, &str)| json!({"__typename": "ImagePost", "id": p.0, "createdAt": "overridden"});
    let a = JsonSubgraph::new("a")
        .query(json!({"feed": IMAGES.iter().map(stale).collect::<Value>()}))
        .possible("Post", &["ImagePost"])
        .entities(move |rep| IMAGES.iter().find(|p| p.0 == rep["id"]).map_or(Value::Null, stale));
    let b = JsonSubgraph::new("b")
        .query(json!({"anotherFeed": IMAGES.iter().map(image).collect::<Value>()}))
        .possible("Post", &["TextPost"])
        .possible("AnotherPost", &["ImagePost"])
        .entities(|rep| match rep["__typename"].as_str() {
            Some("ImagePost") => IMAGES.iter().find(|p| p.0 == rep["id"]).map_or(Value::Null, image),
            Some("TextPost") => TEXTS
                .iter()
                .find(|p| p.0 == rep["id"])
                .map_or(Value::Null, |p| json!({"__typename": "TextPost", "id": p.0, "createdAt": p.1, "body": p.2})),
            _ => Value::Null,
        });
    start("override-type-interface", vec![a, b]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn overridden_interface_field_routed_per_type() {
    check(
        "{ feed { id createdAt } }",
        json!({"feed": [{"id": "i1", "createdAt": "i1-createdAt"}, {"id": "i2", "createdAt": "i2-createdAt"}]}),
    )
    .await;
}

#[tokio::test]
async fn fragment_on_a_type_the_root_never_returns() {
    check("{ feed { ... on TextPost { id body } } }", json!({"feed": [{}, {}]})).await;
}

#[tokio::test]
async fn overriding_subgraphs_own_root() {
    check(
        "{ anotherFeed { createdAt } }",
        json!({"anotherFeed": [{"createdAt": "i1-createdAt"}, {"createdAt": "i2-createdAt"}]}),
    )
    .await;
}

#[tokio::test]
async fn overriding_subgraphs_root_with_a_fragment() {
    check(
        "{ anotherFeed { createdAt id ... on ImagePost { createdAt id } } }",
        json!({"anotherFeed": [{"createdAt": "i1-createdAt", "id": "i1"}, {"createdAt": "i2-createdAt", "id": "i2"}]}),
    )
    .await;
}
