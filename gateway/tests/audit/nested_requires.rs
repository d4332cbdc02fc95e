//! Audit scenario `nested-requires`: two fields that `@requires` a list
//! (`userOrders { id }`) which its own subgraph computes with a `@requires`
//! on a field of a third subgraph, so the requirement chain spans three hops.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::json;

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let users = JsonSubgraph::new("service1").query(json!({"user": {
        "__typename": "User", "id": "u1", "firstName": "Ada", "lastName": "Lovelace", "address": "London"
    }}));
    // Each answer checks that the gateway sent the requirement it depends on.
    let totals = JsonSubgraph::new("service2").entities(|rep| {
        let mut out = json!({"__typename": "User", "id": rep["id"]});
        if rep["userOrders"].is_array() {
            out["totalOrdersPrices"] = json!(0);
            out["aggregatedOrdersByStatus"] = json!(1);
        } else {
            out["totalOrdersPrices"] = json!({"__error": "userOrders was not sent"});
            out["aggregatedOrdersByStatus"] = json!({"__error": "userOrders was not sent"});
        }
        out
    });
    let orders = JsonSubgraph::new("service3").entities(|rep| {
        let orders = match rep["lastName"].as_str() {
            Some(last) => json!([{"__typename": "UserOrder", "id": format!("{last}-1")}]),
            None => json!({"__error": "lastName was not sent"}),
        };
        json!({"__typename": "User", "id": rep["id"], "userOrders": orders})
    });
    start("nested-requires", vec![users, totals, orders]).await
}

#[tokio::test]
async fn fields_requiring_a_list_that_is_itself_required() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ user { aggregatedOrdersByStatus totalOrdersPrices } }").await,
        json!({"data": {"user": {"aggregatedOrdersByStatus": 1, "totalOrdersPrices": 0}}})
    );
}
