//! Audit scenario `mutations`: a mutation whose result is completed by an
//! entity call with `@requires`, and root mutation fields spread over three
//! subgraphs that must run one after another, in document order.

use crate::{audit_support, common};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// State shared by the three subgraphs: products and one number per request id.
#[derive(Default)]
struct Store {
    products: Vec<Value>,
    numbers: HashMap<String, i64>,
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let store = Arc::new(Mutex::new(Store {
        products: vec![json!({"__typename": "Product", "id": "p1", "name": "lamp", "price": 19.5})],
        ..Default::default()
    }));
    let find = |store: &Store, id: &Value| store.products.iter().find(|p| &p["id"] == id).cloned();
    let (s1, s2, s3, s4) = (store.clone(), store.clone(), store.clone(), store.clone());
    let a = JsonSubgraph::new("a")
        .entities(move |rep| find(&s1.lock().unwrap(), &rep["id"]).unwrap_or(Value::Null))
        .fields(move |parent, field, args| {
            let mut store = s2.lock().unwrap();
            match (parent["__typename"].as_str(), field) {
                (Some("Query"), "product") => find(&store, &args["id"]),
                (Some("Query"), "products") => Some(Value::Array(store.products.clone())),
                (Some("Mutation"), "addProduct") => {
                    let id = format!("p{}", store.products.len() + 1);
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
            move |parent, field, args| {
                (parent["__typename"] == "Mutation" && field == "delete").then(|| {
                    let n = store.lock().unwrap().numbers.remove(args["requestId"].as_str().unwrap()).unwrap_or(-1);
                    json!(n)
                })
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
            r#"mutation { addProduct(input: { name: "desk", price: 450.25 }) { name price isExpensive isAvailable } }"#,
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"addProduct": {"name": "desk", "price": 450.25, "isExpensive": true, "isAvailable": true}}})
    );
}

#[tokio::test]
async fn a_query_over_the_same_entities() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(r#"{ product(id: "p1") { id name price isExpensive isAvailable } }"#).await;
    assert_eq!(
        response,
        json!({"data": {"product": {"id": "p1", "name": "lamp", "price": 19.5, "isExpensive": false, "isAvailable": true}}})
    );
}

#[tokio::test]
async fn root_mutation_fields_run_in_document_order_across_subgraphs() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(
            r#"mutation {
                 five: add(num: 5, requestId: "r1")
                 ten: multiply(by: 2, requestId: "r1")
                 twelve: add(num: 2, requestId: "r1")
                 final: delete(requestId: "r1")
               }"#,
        )
        .await;
    assert_eq!(response, json!({"data": {"five": 5, "ten": 10, "twelve": 12, "final": 12}}));
}
