//! Audit scenario `mutations`: a mutation whose result is completed by an
//! entity call with `@requires`, root mutation fields spread over three
//! subgraphs that must run one after another, in document order, and a
//! shareable mutation field (`addCategory`, in `a` and `b`) that must run
//! exactly once.

use crate::{audit_support, common};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// State shared by the three subgraphs: products, categories and one number
/// per request id.
#[derive(Default)]
struct Store {
    products: Vec<Value>,
    categories: Vec<Value>,
    numbers: HashMap<String, i64>,
}

/// Adds the category of a request id, once: a second call for the same
/// request id (the field run twice) is an error.
fn add_category(store: &mut Store, args: &Value) -> Value {
    let id = format!("c-added-{}", args["requestId"].as_str().unwrap());
    if store.categories.iter().any(|c| c["id"] == id) {
        return json!({"__error": "Category with this requestId was already added"});
    }
    let category = json!({"__typename": "Category", "id": id, "name": args["name"]});
    store.categories.push(category.clone());
    category
}

fn category(store: &Store, rep: &Value) -> Value {
    store.categories.iter().find(|c| c["id"] == rep["id"]).cloned().unwrap_or(Value::Null)
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let store = Arc::new(Mutex::new(Store {
        products: vec![json!({"__typename": "Product", "id": "p1", "name": "p1-name", "price": 9.99})],
        ..Default::default()
    }));
    let find = |store: &Store, id: &Value| store.products.iter().find(|p| &p["id"] == id).cloned();
    let (s1, s2, s3, s4) = (store.clone(), store.clone(), store.clone(), store.clone());
    let a = JsonSubgraph::new("a")
        .entities(move |rep| {
            let store = s1.lock().unwrap();
            match rep["__typename"].as_str() {
                // `a` knows a category by its id only.
                Some("Category") => match category(&store, rep) {
                    Value::Null => Value::Null,
                    found => json!({"__typename": "Category", "id": found["id"]}),
                },
                _ => find(&store, &rep["id"]).unwrap_or(Value::Null),
            }
        })
        .fields(move |parent, field, args| {
            let mut store = s2.lock().unwrap();
            match (parent["__typename"].as_str(), field) {
                (Some("Query"), "product") => find(&store, &args["id"]),
                (Some("Query"), "products") => Some(Value::Array(store.products.clone())),
                (Some("Mutation"), "addCategory") => Some(add_category(&mut store, args)),
                (Some("Mutation"), "addProduct") => {
                    let id = format!("p-added-{}", store.products.len());
                    let product = json!({"__typename": "Product", "id": id, "name": args["input"]["name"], "price": args["input"]["price"]});
                    store.products.push(product.clone());
                    Some(product)
                }
                (Some("Mutation"), "multiply") => {
                    let n = store.numbers.entry(args["requestId"].as_str().unwrap().to_string()).or_insert(0);
                    *n *= args["by"].as_i64().unwrap();
                    Some(json!(*n))
                }
                _ => None,
            }
        });
    let b = JsonSubgraph::new("b")
        .entities(move |rep| {
            let store = s3.lock().unwrap();
            if rep["__typename"] == "Category" {
                return category(&store, rep);
            }
            match find(&store, &rep["id"]) {
                None => Value::Null,
                Some(product) => {
                    let expensive = match rep["price"].as_f64() {
                        Some(price) => json!(price > 100.0),
                        None => json!({"__error": "Price is not available"}),
                    };
                    json!({"__typename": "Product", "id": product["id"], "isAvailable": true, "isExpensive": expensive})
                }
            }
        })
        .fields({
            let store = s4.clone();
            move |parent, field, args| match (parent["__typename"].as_str(), field) {
                (Some("Mutation"), "delete") => {
                    let n = store.lock().unwrap().numbers.remove(args["requestId"].as_str().unwrap()).unwrap_or(-1);
                    Some(json!(n))
                }
                (Some("Mutation"), "addCategory") => Some(add_category(&mut store.lock().unwrap(), args)),
                _ => None,
            }
        });
    let c = JsonSubgraph::new("c").fields(move |parent, field, args| {
        (parent["__typename"] == "Mutation" && field == "add").then(|| {
            let mut store = s4.lock().unwrap();
            let n = store.numbers.entry(args["requestId"].as_str().unwrap().to_string()).or_insert(0);
            *n += args["num"].as_i64().unwrap();
            json!(*n)
        })
    });
    start("mutations", vec![a, b, c]).await
}

#[tokio::test]
async fn a_mutation_result_completed_with_requires() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(
            r#"mutation { addProduct(input: { name: "new", price: 599.99 }) { name price isExpensive isAvailable } }"#,
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"addProduct": {"name": "new", "price": 599.99, "isExpensive": true, "isAvailable": true}}})
    );
}

#[tokio::test]
async fn a_query_over_the_same_entities() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(r#"{ product(id: "p1") { id name price isExpensive isAvailable } }"#).await;
    assert_eq!(
        response,
        json!({"data": {"product": {"id": "p1", "name": "p1-name", "price": 9.99, "isExpensive": false, "isAvailable": true}}})
    );
}

#[tokio::test]
async fn root_mutation_fields_run_in_document_order_across_subgraphs() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(
            r#"mutation {
                 five: add(num: 5, requestId: "9fede30a957ed")
                 ten: multiply(by: 2, requestId: "9fede30a957ed")
                 twelve: add(num: 2, requestId: "9fede30a957ed")
                 final: delete(requestId: "9fede30a957ed")
               }"#,
        )
        .await;
    assert_eq!(response, json!({"data": {"five": 5, "ten": 10, "twelve": 12, "final": 12}}));
}

#[tokio::test]
async fn a_shareable_mutation_field_runs_once() {
    let (subs, gateway) = suite().await;
    let response =
        gateway.query(r#"mutation { addCategory(name: "new", requestId: "9fede30a957ed") { id name } }"#).await;
    assert_eq!(response, json!({"data": {"addCategory": {"id": "c-added-9fede30a957ed", "name": "new"}}}));
    let calls: usize = subs
        .iter()
        .flat_map(|s| s.recorder.bodies())
        .filter(|body| body["query"].as_str().is_some_and(|q| q.contains("addCategory")))
        .count();
    assert_eq!(calls, 1, "addCategory is sent to one subgraph only");
}
