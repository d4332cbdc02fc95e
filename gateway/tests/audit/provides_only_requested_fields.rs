//! Audit scenario `provides-only-requested-fields`: `b`'s root fields
//! `@provides(fields: "name description")` of an entity `a` owns. The
//! provided fields are a way to skip an entity call for what the client
//! selects, not a selection to always send: `b` may only be asked for the
//! provided fields the client selected (through aliases, fragments and
//! `@skip`/`@include` alike), `a` only for what `b` cannot provide (`extra`),
//! and `b` never through `_entities`. No query here selects `description`,
//! and both subgraphs fail a field they should not have been asked for.

use crate::{audit_support, common};

use audit_support::{find_by, request_counts, start, JsonSubgraph};
use serde_json::{json, Value};

fn entities() -> Value {
    json!([
        {"__typename": "Entity", "id": "e1", "name": "Entity One", "description": "Description One", "extra": "Extra One"},
        {"__typename": "Entity", "id": "e2", "name": "Entity Two", "description": "Description Two", "extra": "Extra Two"}
    ])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a").entities(|rep| find_by(&entities(), "id", rep)).fields(|parent, field, _| {
        match (parent["__typename"].as_str()?, field) {
            ("Entity", "name" | "description") => {
                Some(json!({"__error": format!("{field} should come from subgraph b, which provides it")}))
            }
            _ => None,
        }
    });
    let provided: Vec<Value> = entities()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"__typename": "Entity", "id": e["id"], "name": e["name"], "description": e["description"]}))
        .collect();
    let b = JsonSubgraph::new("b")
        .query(json!({"entity": provided[0], "entities": provided}))
        .entities(|_| json!({"__error": "subgraph b should not be entered through _entities"}))
        .fields(|parent, field, _| match (parent["__typename"].as_str()?, field) {
            ("Entity", "description") => {
                Some(json!({"__error": "over-fetch: description was sent to subgraph b but no query selects it"}))
            }
            _ => None,
        });
    // Request counts below are [owner a, provider b].
    start("provides-only-requested-fields", vec![a, b]).await
}

/// No subgraph was sent `description`, which no query here selects.
fn assert_description_never_sent(subs: &[common::TestSubgraph]) {
    for sub in subs {
        for body in sub.recorder.bodies() {
            let query = body["query"].as_str().unwrap_or_default();
            assert!(!query.contains("description"), "subgraph {} was asked for description: {query}", sub.name);
        }
    }
}

#[tokio::test]
async fn only_the_key_is_asked_of_the_providing_subgraph() {
    let (subs, gateway) = suite().await;
    assert_eq!(gateway.query("query { entity { id } }").await, json!({"data": {"entity": {"id": "e1"}}}));
    assert_eq!(request_counts(&subs), [0, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn one_provided_field_is_asked_without_the_other() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id name } }").await,
        json!({"data": {"entity": {"id": "e1", "name": "Entity One"}}})
    );
    assert_eq!(request_counts(&subs), [0, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn an_aliased_provided_field_keeps_its_alias() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id displayName: name } }").await,
        json!({"data": {"entity": {"id": "e1", "displayName": "Entity One"}}})
    );
    assert_eq!(request_counts(&subs), [0, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn a_provided_field_in_an_inline_fragment_is_asked_alone() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id ... on Entity { name } } }").await,
        json!({"data": {"entity": {"id": "e1", "name": "Entity One"}}})
    );
    assert_eq!(request_counts(&subs), [0, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn a_provided_field_in_a_named_fragment_is_asked_alone() {
    let (subs, gateway) = suite().await;
    let query = "query { entity { id ...EntityName } } fragment EntityName on Entity { name }";
    assert_eq!(gateway.query(query).await, json!({"data": {"entity": {"id": "e1", "name": "Entity One"}}}));
    assert_eq!(request_counts(&subs), [0, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn only_the_unprovided_field_comes_from_the_owner() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id name extra } }").await,
        json!({"data": {"entity": {"id": "e1", "name": "Entity One", "extra": "Extra One"}}})
    );
    assert_eq!(request_counts(&subs), [1, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn a_list_of_entities_gets_only_the_selected_provided_field() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entities { id name } }").await,
        json!({"data": {"entities": [{"id": "e1", "name": "Entity One"}, {"id": "e2", "name": "Entity Two"}]}})
    );
    assert_eq!(request_counts(&subs), [0, 1]);
    assert_description_never_sent(&subs);
}

#[tokio::test]
async fn a_list_of_entities_gets_only_the_unprovided_field_from_the_owner() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entities { id name extra } }").await,
        json!({"data": {"entities": [
            {"id": "e1", "name": "Entity One", "extra": "Extra One"},
            {"id": "e2", "name": "Entity Two", "extra": "Extra Two"}
        ]}})
    );
    assert_eq!(request_counts(&subs), [1, 1]);
    assert_description_never_sent(&subs);
}

// In the two cases below `description` may travel to `b` as long as its
// `@skip`/`@include` goes with it: `b` fails the field if it resolves it.

#[tokio::test]
async fn a_provided_field_in_a_skipped_fragment_is_not_resolved() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id ... on Entity @skip(if: true) { description } } }").await,
        json!({"data": {"entity": {"id": "e1"}}})
    );
    assert_eq!(request_counts(&subs), [0, 1]);
}

#[tokio::test]
async fn a_provided_field_in_an_excluded_fragment_is_not_resolved() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id ... on Entity @include(if: false) { description } } }").await,
        json!({"data": {"entity": {"id": "e1"}}})
    );
    assert_eq!(request_counts(&subs), [0, 1]);
}

#[tokio::test]
async fn sibling_untyped_fragments_each_keep_their_field() {
    let (subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query { entity { id ... { name } ... { extra } } }").await,
        json!({"data": {"entity": {"id": "e1", "name": "Entity One", "extra": "Extra One"}}})
    );
    assert_eq!(request_counts(&subs), [1, 1]);
    assert_description_never_sent(&subs);
}
