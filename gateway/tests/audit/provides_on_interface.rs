//! Audit scenario `provides-on-interface`: a root field of interface type
//! provides a list of another interface; a member-only field (`Cat.age`)
//! lives where the member is not reachable directly, so it comes through
//! the parent entity (`Book`).

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::{json, Value};

fn animals() -> Value {
    json!([
        {"__typename": "Dog", "id": "a1", "name": "Fido", "age": 3},
        {"__typename": "Cat", "id": "a2", "name": "Whiskers", "age": 6}
    ])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // `a` can serve `media`, but the provided path through `b` is the good plan.
    let a = JsonSubgraph::new("a").query(json!({"media": {"__error": "subgraph a should not be used"}}));
    let provided: Vec<Value> = animals()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!({"__typename": a["__typename"], "id": a["id"], "name": a["name"]}))
        .collect();
    let b = JsonSubgraph::new("b")
        .query(json!({"media": {"__typename": "Book", "id": "m1", "animals": provided}}))
        .possible("Media", &["Book"])
        .possible("Animal", &["Dog", "Cat"]);
    let c =
        JsonSubgraph::new("c").possible("Media", &["Book"]).possible("Animal", &["Dog", "Cat"]).entities(|rep| match (
            rep["__typename"].as_str(),
            rep["id"].as_str(),
        ) {
            (Some("Book"), Some("m1")) => json!({"__typename": "Book", "id": "m1", "animals": animals()}),
            (Some("Dog"), _) => json!({"__error": "Dog entities should not be needed"}),
            (Some("Cat"), Some(id)) => {
                animals().as_array().unwrap().iter().find(|a| a["id"] == id).cloned().unwrap_or(Value::Null)
            }
            _ => Value::Null,
        });
    start("provides-on-interface", vec![a, b, c]).await
}

#[tokio::test]
async fn provided_interface_list_in_one_fetch() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ media { id animals { id name } } }").await;
    assert_eq!(
        response,
        json!({"data": {"media": {"id": "m1", "animals": [{"id": "a1", "name": "Fido"}, {"id": "a2", "name": "Whiskers"}]}}})
    );
    assert_eq!(request_counts(&subs), vec![0, 1, 0]);
}

#[tokio::test]
async fn a_member_field_through_the_parent_entity() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ media { id animals { id name ... on Cat { age } } } }").await;
    assert_eq!(
        response,
        json!({"data": {"media": {"id": "m1", "animals": [{"id": "a1", "name": "Fido"}, {"id": "a2", "name": "Whiskers", "age": 6}]}}})
    );
}
