//! Union members the planner narrows away: the union `Action` has different
//! members in `a` (`Common | OnlyA | Priced`) and `b` (`Common | OnlyB`), below
//! the shareable `Container.wrapper` / `Wrapper.actions`. The planner keeps
//! only `Common` wherever both could resolve the wrapper; the gateway puts a
//! member back into a fetch when the fetch's subgraph has it and resolves
//! everything the client selected on it (`pipeline::partial_unions`).
//!
//! Every subgraph here validates each request against its own SDL, so a
//! fragment sent to a subgraph that does not have it fails the test.

use crate::audit_support;
use crate::common;

use audit_support::{request_counts, start_fixture_with, JsonSubgraph};
use serde_json::{json, Value};

const ID: &str = "c1";

const ALL_MEMBERS: &str =
    "__typename ... on Common { label } ... on OnlyA { a detail { note } } ... on OnlyB { b } ... on Priced { id }";

fn common_action() -> Value {
    json!({"__typename": "Common", "label": "common label", "code": "common-code"})
}

fn only_a() -> Value {
    json!({
        "__typename": "OnlyA",
        "a": "only a",
        "code": "a-code",
        "detail": {"__typename": "Detail", "note": "a's note"}
    })
}

fn only_b() -> Value {
    json!({"__typename": "OnlyB", "b": "only b"})
}

fn priced() -> Value {
    json!({"__typename": "Priced", "id": "p1"})
}

fn container(actions: Value) -> Value {
    json!({"__typename": "Container", "id": ID, "wrapper": {"__typename": "Wrapper", "actions": actions}})
}

fn a_actions() -> Value {
    json!([common_action(), only_a(), priced()])
}

fn b_actions() -> Value {
    json!([common_action(), only_b()])
}

fn is_the_container(rep: &Value) -> bool {
    rep["__typename"] == "Container" && rep["id"] == ID
}

async fn stack() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({"rootA": container(a_actions())}))
        .possible("Action", &["Common", "OnlyA", "Priced"])
        .entities(|rep| if is_the_container(rep) { container(a_actions()) } else { Value::Null })
        .fields(|parent, field, args| match field {
            "excerpt" => {
                let length = args["length"].as_u64().unwrap_or(0) as usize;
                parent["a"].as_str().map(|a| json!(a.chars().take(length).collect::<String>()))
            }
            _ => None,
        });
    let b = JsonSubgraph::new("b")
        .query(json!({"rootB": container(b_actions())}))
        .possible("Action", &["Common", "OnlyB"])
        .entities(|rep| if is_the_container(rep) { container(b_actions()) } else { Value::Null });
    let c = JsonSubgraph::new("c")
        .query(json!({
            "rootC": {"__typename": "Container", "id": ID},
            "rootD": {"__typename": "Container", "id": ID}
        }))
        .entities(|rep| match rep["__typename"].as_str() {
            Some("Priced") => json!({"__typename": "Priced", "id": rep["id"], "price": 10}),
            Some("Container") if is_the_container(rep) => json!({"__typename": "Container", "id": ID}),
            _ => Value::Null,
        });
    start_fixture_with("partial-unions", vec![a, b, c], |c| c.restore_partial_unions = true).await
}

/// The actions as the client selected them with [`ALL_MEMBERS`].
fn selected(actions: &[Value]) -> Value {
    actions
        .iter()
        .map(|action| match action["__typename"].as_str() {
            Some("Common") => json!({"__typename": "Common", "label": action["label"]}),
            Some("OnlyA") => {
                json!({"__typename": "OnlyA", "a": action["a"], "detail": {"note": action["detail"]["note"]}})
            }
            Some("OnlyB") => json!({"__typename": "OnlyB", "b": action["b"]}),
            Some("Priced") => json!({"__typename": "Priced", "id": action["id"]}),
            other => panic!("unexpected action {other:?}"),
        })
        .collect()
}

fn all_members_below(root: &str) -> String {
    format!("{{ {root} {{ wrapper {{ actions {{ {ALL_MEMBERS} }} }} }} }}")
}

/// The request bodies subgraph `index` of `subgraphs` received.
fn queries_sent(subgraphs: &[common::TestSubgraph], index: usize) -> Vec<String> {
    subgraphs[index].recorder.bodies().iter().map(|b| b["query"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn a_member_only_the_fetching_subgraph_has_comes_back_with_its_fields() {
    let (subs, gateway) = stack().await;
    let query = all_members_below("rootA");

    let plan = gateway.plan(&query);
    assert!(plan.contains("... on OnlyA"), "a's own member is asked of a:\n{plan}");
    assert!(!plan.contains("... on OnlyB"), "b's member never reaches a:\n{plan}");
    insta::assert_snapshot!("restored_member", plan, &query);

    let response = gateway.query(&query).await;
    let actions = a_actions();
    assert_eq!(response, json!({"data": {"rootA": {"wrapper": {"actions": selected(actions.as_array().unwrap())}}}}));
    assert_eq!(request_counts(&subs), vec![1, 0, 0], "one fetch, to a");
}

#[tokio::test]
async fn variables_of_a_restored_member_are_declared_and_sent_with_it() {
    let (subs, gateway) = stack().await;
    let query = "query($withA: Boolean!, $length: Int!) { rootA { wrapper { actions { \
                 __typename ... on OnlyA @include(if: $withA) { excerpt(length: $length) } } } } }";

    let included = gateway.query_vars(query, json!({"withA": true, "length": 4})).await;
    assert_eq!(
        included,
        json!({"data": {"rootA": {"wrapper": {"actions": [
            {"__typename": "Common"},
            {"__typename": "OnlyA", "excerpt": "only"},
            {"__typename": "Priced"}
        ]}}}})
    );
    let skipped = gateway.query_vars(query, json!({"withA": false, "length": 4})).await;
    assert_eq!(
        skipped,
        json!({"data": {"rootA": {"wrapper": {"actions": [
            {"__typename": "Common"},
            {"__typename": "OnlyA"},
            {"__typename": "Priced"}
        ]}}}})
    );

    let bodies = subs[0].recorder.bodies();
    assert_eq!(bodies.len(), 2);
    for (body, with_a) in bodies.iter().zip([true, false]) {
        assert_eq!(body["variables"], json!({"withA": with_a, "length": 4}), "both variables go to a: {body}");
    }
}

#[tokio::test]
async fn a_restored_member_below_an_entity_fetch_comes_from_the_subgraph_asked() {
    let (subs, gateway) = stack().await;
    let response = gateway.query(&all_members_below("rootC")).await;

    // c has the container's key only; the planner picks a or b for its wrapper.
    let counts = request_counts(&subs);
    let actions = match counts.as_slice() {
        [1, 0, 1] => a_actions(),
        [0, 1, 1] => b_actions(),
        other => panic!("expected c, then one of a or b: {other:?}"),
    };
    assert_eq!(response, json!({"data": {"rootC": {"wrapper": {"actions": selected(actions.as_array().unwrap())}}}}));
}

#[tokio::test]
async fn restored_members_reach_every_entity_fetch_of_a_batch() {
    let (subs, gateway) = stack().await;
    let query = format!(
        "{{ rootC {{ wrapper {{ actions {{ {ALL_MEMBERS} }} }} }} rootD {{ wrapper {{ actions {{ {ALL_MEMBERS} }} }} }} }}"
    );
    let plan = gateway.plan(&query);
    assert!(plan.contains("BatchFetch"), "both containers are resolved in one batch:\n{plan}");

    let response = gateway.query(&query).await;
    let actions = match request_counts(&subs).as_slice() {
        [1, 0, 1] => a_actions(),
        [0, 1, 1] => b_actions(),
        other => panic!("expected c, then one batch to a or b: {other:?}"),
    };
    let wrapper = json!({"actions": selected(actions.as_array().unwrap())});
    assert_eq!(response, json!({"data": {"rootC": {"wrapper": wrapper}, "rootD": {"wrapper": wrapper}}}));
}

#[tokio::test]
async fn a_member_whose_fields_live_in_another_subgraph_is_not_asked_of_the_fetching_one() {
    let (subs, gateway) = stack().await;
    let response = gateway.query("{ rootA { wrapper { actions { __typename ... on Priced { price } } } } }").await;

    // `price` lives in c: restoring the member would send a a field it does
    // not have, so the fetch stays as planned (the member reads as its
    // `__typename` and a null `price`) and no subgraph rejects its request.
    assert!(response.get("errors").is_none(), "no subgraph rejected its request: {response}");
    assert_eq!(
        response["data"]["rootA"]["wrapper"]["actions"],
        json!([{"__typename": "Common"}, {"__typename": "OnlyA"}, {"__typename": "Priced", "price": null}])
    );
    let sent = queries_sent(&subs, 0);
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].contains("price") && !sent[0].contains("Priced"), "a was asked for c's field: {}", sent[0]);
}

#[tokio::test]
async fn a_member_whose_field_would_clash_with_another_members_is_left_as_planned() {
    let (subs, gateway) = stack().await;
    // `code` is `ID!` on Common but `ID` on OnlyA in a: side by side below
    // one union they break the same-shape rule, which is why a planner
    // aliases such fields; a restored fragment must not bring the clash back.
    let query = "{ rootA { wrapper { actions { __typename ... on Common { code } ... on OnlyA { code a } } } } }";
    let plan = gateway.plan(query);
    assert!(!plan.contains("... on OnlyA"), "OnlyA is not restored:\n{plan}");

    let response = gateway.query(query).await;
    assert!(response.get("errors").is_none(), "a accepted its request: {response}");
    assert_eq!(
        response["data"]["rootA"]["wrapper"]["actions"][0],
        json!({"__typename": "Common", "code": "common-code"})
    );
    assert_eq!(request_counts(&subs), vec![1, 0, 0]);
}
