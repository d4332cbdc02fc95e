//! Audit scenario `requires-requires`: a `@requires` on a field that is itself
//! computed with `@requires` in another subgraph (a chain a → c → d, and
//! b → c → d), including an `@inaccessible` input of the chain.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Map, Value};

const ID: &str = "p5";
const PRICE: f64 = 812.5;
const HAS_DISCOUNT: bool = true;

/// An entity answer: the key plus whatever `compute` derives from the representation.
fn entity(rep: &Value, compute: impl Fn(&Map<String, Value>, &mut Map<String, Value>)) -> Value {
    if rep["id"] != ID {
        return Value::Null;
    }
    let mut out = Map::new();
    out.insert("__typename".into(), json!("Product"));
    out.insert("id".into(), json!(ID));
    compute(rep.as_object().unwrap(), &mut out);
    Value::Object(out)
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a").entities(|rep| entity(rep, |_, out| drop(out.insert("price".into(), json!(PRICE)))));
    let b = JsonSubgraph::new("b")
        .query(json!({"product": {"__typename": "Product", "id": ID, "hasDiscount": HAS_DISCOUNT}}))
        .entities(|rep| entity(rep, |_, out| drop(out.insert("hasDiscount".into(), json!(HAS_DISCOUNT)))));
    let c = JsonSubgraph::new("c").entities(|rep| {
        entity(rep, |rep, out| {
            if let Some(price) = rep.get("price").and_then(Value::as_f64) {
                out.insert("isExpensive".into(), json!(price > 500.0));
            }
            if let Some(discount) = rep.get("hasDiscount").and_then(Value::as_bool) {
                out.insert("isExpensiveWithDiscount".into(), json!(!discount));
            }
        })
    });
    let d = JsonSubgraph::new("d").entities(|rep| {
        entity(rep, |rep, out| {
            if let Some(expensive) = rep.get("isExpensive").and_then(Value::as_bool) {
                out.insert("canAfford".into(), json!(!expensive));
            }
            if let Some(expensive) = rep.get("isExpensiveWithDiscount").and_then(Value::as_bool) {
                out.insert("canAffordWithDiscount".into(), json!(!expensive));
            }
        })
    });
    start("requires-requires", vec![a, b, c, d]).await
}

#[tokio::test]
async fn a_requirement_computed_from_another_requirement() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ product { canAfford } }").await, json!({"data": {"product": {"canAfford": false}}}));
}

#[tokio::test]
async fn the_field_required_by_the_chain_alone() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ product { isExpensive } }").await, json!({"data": {"product": {"isExpensive": true}}}));
}

#[tokio::test]
async fn a_field_and_the_field_requiring_it() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ product { isExpensive canAfford } }").await,
        json!({"data": {"product": {"isExpensive": true, "canAfford": false}}})
    );
}

#[tokio::test]
async fn a_chain_starting_at_the_root_subgraph() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ product { canAffordWithDiscount } }").await,
        json!({"data": {"product": {"canAffordWithDiscount": true}}})
    );
}

#[tokio::test]
async fn two_chains_at_once() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ product { canAfford canAffordWithDiscount } }").await,
        json!({"data": {"product": {"canAfford": false, "canAffordWithDiscount": true}}})
    );
}
