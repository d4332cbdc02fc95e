//! Audit scenario `simple-override`: `Post.createdAt` is `@override(from:)`
//! the subgraph that still declares it, so it must always be read from the
//! overriding subgraph, even for posts the overridden one returned.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, createdAt
const POSTS: [(&str, &str); 2] = [("p1", "p1-createdAt"), ("p2", "p2-createdAt")];

fn post(p: &(&str, &str)) -> Value {
    json!({"__typename": "Post", "id": p.0, "createdAt": p.1})
}

fn by_id(rep: &Value) -> Option<&'static (&'static str, &'static str)> {
    POSTS.iter().find(|p| p.0 == rep["id"])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // `a` lost `createdAt` to the override: what it would answer is wrong.
    let stale = |p: &(&str, &str)| json!({"__typename": "Post", "id": p.0, "createdAt": "overridden"});
    let a = JsonSubgraph::new("a")
        .query(json!({"feed": POSTS.iter().map(stale).collect::<Value>(), "aFeed": [stale(&POSTS[1])]}))
        .entities(move |rep| by_id(rep).map_or(Value::Null, stale));
    let b = JsonSubgraph::new("b")
        .query(json!({"feed": POSTS.iter().map(post).collect::<Value>(), "bFeed": [post(&POSTS[0])]}))
        .entities(|rep| by_id(rep).map_or(Value::Null, post));
    start("simple-override", vec![a, b]).await
}

#[tokio::test]
async fn shared_root_with_an_overridden_field() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ feed { createdAt } }").await,
        json!({"data": {"feed": [{"createdAt": "p1-createdAt"}, {"createdAt": "p2-createdAt"}]}})
    );
}

#[tokio::test]
async fn overridden_field_from_the_overridden_subgraphs_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ aFeed { createdAt } bFeed { createdAt } }").await,
        json!({"data": {"aFeed": [{"createdAt": "p2-createdAt"}], "bFeed": [{"createdAt": "p1-createdAt"}]}})
    );
}
