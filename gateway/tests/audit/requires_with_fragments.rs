//! Audit scenario `requires-with-fragments`: a `@requires` whose field set
//! goes through an interface and nested type conditions, and an object type
//! (`Baz`) that is `@inaccessible` to clients but still travels in
//! representations.

use crate::{audit_support, common};

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

fn items() -> (Value, Value) {
    let entities = json!([
        {"__typename": "Entity", "id": "e1", "data": "b1"},
        {"__typename": "Entity", "id": "e2", "data": "q1"}
    ]);
    let datas = json!({
        "b1": {"__typename": "Baz", "foo": "b1-foo", "bar": "b1-bar", "baz": "b1-baz"},
        "q1": {"__typename": "Qux", "foo": "q1-foo", "bar": "q1-bar", "qux": "q1-qux"}
    });
    (entities, datas)
}

fn with_data(entity: &Value, datas: &Value) -> Value {
    let mut entity = entity.clone();
    if entity.is_object() {
        let key = entity["data"].as_str().unwrap_or_default().to_string();
        entity["data"] = datas[&key].clone();
    }
    entity
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let (entities, datas) = items();
    let (ea, da) = (entities.clone(), datas.clone());
    let a = JsonSubgraph::new("a")
        .query(json!({"a": with_data(&entities[1], &datas)}))
        .possible("Foo", &["Baz", "Qux"])
        .possible("Bar", &["Baz", "Qux"])
        .entities(move |rep| with_data(&find_by(&ea, "id", rep), &da));
    let eb = entities.clone();
    let b = JsonSubgraph::new("b")
        .query(json!({"b": entities[0], "bb": entities[1]}))
        .possible("Foo", &["Baz", "Qux"])
        .possible("Bar", &["Baz", "Qux"])
        .entities(move |rep| {
            let mut entity = find_by(&eb, "id", rep);
            if entity.is_null() {
                return Value::Null;
            }
            // The representation's fields (the required `data`) win.
            for (k, v) in rep.as_object().unwrap() {
                entity[k] = v.clone();
            }
            entity
        })
        .fields(|parent, field, _| {
            let data_foo = || parent["data"]["foo"].as_str().map(str::to_string);
            match field {
                "requirer" => Some(match data_foo() {
                    Some(value) => json!(format!("{value}_requirer")),
                    None => json!({"__error": "Expected entity to have a data field"}),
                }),
                "requirer2" => Some(match data_foo() {
                    Some(value) => json!(format!("{value}_requirer2")),
                    None => json!({"__error": "Expected entity to have a data field"}),
                }),
                _ => None,
            }
        });
    start("requires-with-fragments", vec![a, b]).await
}

#[tokio::test]
async fn an_inaccessible_object_type_is_returned_as_null() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ b { id data { __typename } } bb { id data { __typename } } }").await;
    assert_eq!(
        response,
        json!({"data": {"b": {"id": "e1", "data": null}, "bb": {"id": "e2", "data": {"__typename": "Qux"}}}})
    );
}

#[tokio::test]
async fn requires_with_nested_fragments_from_the_owning_subgraph() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ a { requirer } }").await;
    assert_eq!(response, json!({"data": {"a": {"requirer": "q1-foo_requirer"}}}));
}

#[tokio::test]
async fn requires_with_nested_fragments_next_to_the_required_field() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ a { data { __typename } requirer } }").await;
    assert_eq!(response, json!({"data": {"a": {"data": {"__typename": "Qux"}, "requirer": "q1-foo_requirer"}}}));
}

#[tokio::test]
async fn requires_with_nested_fragments_after_an_entity_hop() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ bb { data { __typename } requirer } }").await;
    assert_eq!(response, json!({"data": {"bb": {"data": {"__typename": "Qux"}, "requirer": "q1-foo_requirer"}}}));
    // The representation carried the nested fields of the required selection.
    let sent = subs[1].recorder.bodies();
    let reps = &sent.last().unwrap()["variables"]["representations"];
    assert_eq!(reps[0]["data"], json!({"foo": "q1-foo", "bar": "q1-bar", "qux": "q1-qux"}));
}

#[tokio::test]
async fn requires_through_an_inaccessible_member_still_resolves() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ b { data { __typename } requirer } }").await;
    assert_eq!(response, json!({"data": {"b": {"data": null, "requirer": "b1-foo_requirer"}}}));
}

#[tokio::test]
async fn requires_with_an_interface_fragment() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ bb { data { __typename } requirer2 } }").await;
    assert_eq!(response, json!({"data": {"bb": {"data": {"__typename": "Qux"}, "requirer2": "q1-foo_requirer2"}}}));
}
