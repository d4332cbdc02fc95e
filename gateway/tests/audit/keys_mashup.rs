//! Audit scenario `keys-mashup`: an entity with several keys, most of them
//! not resolvable, one composite; a `@requires` field forces a hop out by
//! `id` and back by `id compositeId { two three }`.

use crate::audit_support;

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

fn a_item(id: &str) -> Value {
    json!({
        "__typename": "A", "id": id, "pId": format!("{id}-pid"), "name": format!("a.{id}"),
        "compositeId": {"__typename": "CompositeID", "one": format!("{id}-one"), "two": format!("{id}-two"), "three": format!("{id}-three")}
    })
}

#[tokio::test]
async fn requires_through_a_composite_key() {
    let a = JsonSubgraph::new("a").entities(|rep| match rep["id"].as_str() {
        Some(id @ ("1" | "2")) => a_item(id),
        _ => Value::Null,
    });
    let b = JsonSubgraph::new("b")
        .query(json!({"b": {"__typename": "B", "id": "100", "a": [{
            "__typename": "A", "id": "1", "pId": "1-pid", "compositeId": a_item("1")["compositeId"]
        }]}}))
        .entities(|rep| {
            if rep["__typename"] != "A" {
                return Value::Null;
            }
            let Some(id) = rep["id"].as_str() else { return json!({"__error": "no id"}) };
            // The resolvable key here is `id compositeId { two three }`.
            if rep["compositeId"]["two"] != json!(format!("{id}-two")) || rep["compositeId"]["three"].is_null() {
                return json!({"__error": "representation lacks its compositeId"});
            }
            let mut item = a_item(id);
            item.as_object_mut().unwrap().remove("name");
            match rep["name"].as_str() {
                Some(name) => item["nameInB"] = json!(format!("b.a.nameInB {name}")),
                None => item["nameInB"] = json!({"__error": "A.name was not provided"}),
            }
            item
        });
    let (_subs, gateway) = start("keys-mashup", vec![a, b]).await;
    let response = gateway.query("{ b { id a { id name nameInB } } }").await;
    assert_eq!(
        response,
        json!({"data": {"b": {"id": "100", "a": [{"id": "1", "name": "a.1", "nameInB": "b.a.nameInB a.1"}]}}})
    );
}
