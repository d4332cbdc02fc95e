//! Audit scenario `unavailable-override`: `@override(from:)` names a
//! subgraph that does not exist, so it overrides nothing and the shareable
//! field can still be read from either subgraph (both answer the same).

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, createdAt
const POSTS: [(&str, &str); 2] = [("p1", "p1-createdAt"), ("p2", "p2-createdAt")];

fn post(p: &(&str, &str)) -> Value {
    json!({"__typename": "Post", "id": p.0, "createdAt": p.1})
}

fn subgraph(name: &str, own_root: &str, own: usize) -> JsonSubgraph {
    JsonSubgraph::new(name)
        .query(json!({"feed": POSTS.iter().map(post).collect::<Value>(), own_root: [post(&POSTS[own])]}))
        .entities(|rep| POSTS.iter().find(|p| p.0 == rep["id"]).map_or(Value::Null, post))
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    start("unavailable-override", vec![subgraph("a", "aFeed", 1), subgraph("b", "bFeed", 0)]).await
}

#[tokio::test]
async fn shared_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ feed { createdAt } }").await,
        json!({"data": {"feed": [{"createdAt": "p1-createdAt"}, {"createdAt": "p2-createdAt"}]}})
    );
}

#[tokio::test]
async fn each_subgraphs_own_root() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ aFeed { createdAt } bFeed { createdAt } }").await,
        json!({"data": {"aFeed": [{"createdAt": "p2-createdAt"}], "bFeed": [{"createdAt": "p1-createdAt"}]}})
    );
    // Nothing is overridden: each root answers its own field, no entity hop.
    assert!(subs.iter().all(|s| s.recorder.requests() == 1), "one request per subgraph");
}
