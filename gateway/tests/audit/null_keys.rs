//! Audit scenario `null-keys`: the only way to the subgraph owning `author`
//! goes through a subgraph that answers `null` for one entity, so that
//! entity has no key for the next hop and its `author` must come back null.

use crate::audit_support;

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

fn books() -> Value {
    json!([
        {"__typename": "Book", "id": "1", "upc": "b1", "author": {"__typename": "Author", "id": "w1", "name": "Alice"}},
        {"__typename": "Book", "id": "2", "upc": "b2", "author": {"__typename": "Author", "id": "w2", "name": "Bob"}},
        {"__typename": "Book", "id": "3", "upc": "b3", "author": {"__typename": "Author", "id": "w3", "name": "Cid"}}
    ])
}

#[tokio::test]
async fn an_entity_the_middle_subgraph_cannot_find_gets_a_null_field() {
    let containers: Vec<Value> = books()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"__typename": "BookContainer", "book": {"__typename": "Book", "upc": b["upc"]}}))
        .collect();
    let a = JsonSubgraph::new("a").query(json!({ "bookContainers": containers }));
    let b = JsonSubgraph::new("b").entities(|rep| {
        let key = if rep.get("id").is_some() { "id" } else { "upc" };
        let book = find_by(&books(), key, rep);
        if book.is_null() {
            return json!({"__error": "Invalid reference"});
        }
        // The third book is unknown here.
        if book["id"] == "3" {
            return Value::Null;
        }
        json!({"__typename": "Book", "id": book["id"], "upc": book["upc"]})
    });
    let c = JsonSubgraph::new("c").entities(|rep| {
        let book = find_by(&books(), "id", rep);
        if book.is_null() {
            return json!({"__error": "Invalid reference"});
        }
        book
    });
    let (subs, gateway) = start("null-keys", vec![a, b, c]).await;
    let response = gateway.query("{ bookContainers { book { upc author { name } } } }").await;
    assert_eq!(
        response,
        json!({"data": {"bookContainers": [
            {"book": {"upc": "b1", "author": {"name": "Alice"}}},
            {"book": {"upc": "b2", "author": {"name": "Bob"}}},
            {"book": {"upc": "b3", "author": null}}
        ]}})
    );
    // Only the two books with an id were sent on to `c`.
    let reps = &subs[2].recorder.bodies()[0]["variables"]["representations"];
    assert_eq!(reps, &json!([{"__typename": "Book", "id": "1"}, {"__typename": "Book", "id": "2"}]));
}
