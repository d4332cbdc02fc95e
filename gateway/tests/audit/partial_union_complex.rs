//! Audit scenario `partial-union-complex`: the union `Action` sits below the
//! shareable `Container.wrapper` / `Wrapper.actions`, and subgraphs `a` and
//! `b` declare different members (`Common | OnlyA` and `Common | OnlyB`).
//! A fragment the subgraph that resolves the path does not know must not
//! reach it, and the entity hop to `bWrapper` keeps the members `b` knows.
//!
//! Upstream expects the members outside the intersection (`OnlyA` under
//! `rootA`, `OnlyB` under `rootB`) to come back with their typename but
//! their fields null: `wrapper` is shareable, so the planner narrows the
//! union to the members both subgraphs share. The first two cases need the
//! gateway's union-restoring pass (`pipeline::partial_unions`) off, which
//! would otherwise fetch those fields.

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::{json, Value};

const CONTAINER_ID: &str = "container-1";

const ALL_MEMBERS: &str = "__typename ... on Common { label } ... on OnlyA { a } ... on OnlyB { b }";

fn common_action() -> Value {
    json!({"__typename": "Common", "label": "common label"})
}

fn only_a() -> Value {
    json!({"__typename": "OnlyA", "a": "only a"})
}

fn only_b() -> Value {
    json!({"__typename": "OnlyB", "b": "only b"})
}

fn wrapper(actions: Value) -> Value {
    json!({"__typename": "Wrapper", "actions": actions})
}

/// The container as subgraph `a` serves it, its wrapper holding `actions`.
fn a_container(actions: Value) -> Value {
    json!({"__typename": "Container", "id": CONTAINER_ID, "wrapper": wrapper(actions)})
}

/// The container as subgraph `b` serves it: `bWrapper` always holds b's actions.
fn b_container(actions: Value) -> Value {
    json!({
        "__typename": "Container",
        "id": CONTAINER_ID,
        "wrapper": wrapper(actions),
        "bWrapper": wrapper(json!([common_action(), only_b()]))
    })
}

fn is_the_container(rep: &Value) -> bool {
    rep["__typename"] == "Container" && rep["id"] == CONTAINER_ID
}

/// Subgraph `a` resolves the container with its own actions.
fn a_entity(rep: &Value) -> Value {
    if is_the_container(rep) {
        a_container(json!([common_action(), only_a()]))
    } else {
        Value::Null
    }
}

/// Subgraph `b` resolves the container with its own actions.
fn b_entity(rep: &Value) -> Value {
    if is_the_container(rep) {
        b_container(json!([common_action(), only_b()]))
    } else {
        Value::Null
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "rootA": a_container(json!([common_action(), only_a()])),
            "shared": a_container(json!([common_action()]))
        }))
        .possible("Action", &["Common", "OnlyA"])
        .entities(a_entity);
    let b = JsonSubgraph::new("b")
        .query(json!({
            "rootB": b_container(json!([common_action(), only_b()])),
            "shared": b_container(json!([common_action()]))
        }))
        .possible("Action", &["Common", "OnlyB"])
        .entities(b_entity);
    start("partial-union-complex", vec![a, b]).await
}

#[tokio::test]
async fn wrapper_under_a_root_of_a_gives_only_the_shared_members_fields() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(&format!("{{ rootA {{ wrapper {{ actions {{ {ALL_MEMBERS} }} }} }} }}")).await;
    assert_eq!(
        response,
        json!({"data": {"rootA": {"wrapper": {"actions": [
            {"__typename": "Common", "label": "common label"},
            {"__typename": "OnlyA", "a": null}
        ]}}}})
    );
}

#[tokio::test]
async fn wrapper_under_a_root_of_b_gives_only_the_shared_members_fields() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(&format!("{{ rootB {{ wrapper {{ actions {{ {ALL_MEMBERS} }} }} }} }}")).await;
    assert_eq!(
        response,
        json!({"data": {"rootB": {"wrapper": {"actions": [
            {"__typename": "Common", "label": "common label"},
            {"__typename": "OnlyB", "b": null}
        ]}}}})
    );
}

#[tokio::test]
async fn only_a_member_unknown_to_a_leaves_just_the_typenames() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ rootA { wrapper { actions { __typename ... on OnlyB { b } } } } }").await;
    assert_eq!(
        response,
        json!({"data": {"rootA": {"wrapper": {"actions": [
            {"__typename": "Common"},
            {"__typename": "OnlyA"}
        ]}}}})
    );
}

#[tokio::test]
async fn shared_root_resolved_by_either_subgraph_gives_the_common_member() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(&format!("{{ shared {{ wrapper {{ actions {{ {ALL_MEMBERS} }} }} }} }}")).await;
    assert_eq!(
        response,
        json!({"data": {"shared": {"wrapper": {"actions": [
            {"__typename": "Common", "label": "common label"}
        ]}}}})
    );
}

#[tokio::test]
async fn entity_hop_to_b_keeps_the_members_b_knows() {
    let (subs, gateway) = suite().await;
    let response = gateway.query(&format!("{{ rootA {{ bWrapper {{ actions {{ {ALL_MEMBERS} }} }} }} }}")).await;
    assert_eq!(
        response,
        json!({"data": {"rootA": {"bWrapper": {"actions": [
            {"__typename": "Common", "label": "common label"},
            {"__typename": "OnlyB", "b": "only b"}
        ]}}}})
    );
    assert_eq!(request_counts(&subs), vec![1, 1], "rootA from a, then bWrapper from b");
}
