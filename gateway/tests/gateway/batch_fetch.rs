//! Requires with conflicting arguments: the planner aliases one of the
//! required fields internally and batches two `_entities` calls to the same
//! subgraph into one request (a BatchFetch).

use crate::common;

use async_graphql::{EmptyMutation, EmptySubscription, InputObject, Object, Schema, SimpleObject};
use serde_json::json;

mod catalog {
    use super::*;

    pub struct Category {
        pub usd: i32,
    }

    #[Object]
    impl Category {
        async fn average_price(&self, currency: String) -> i32 {
            if currency == "EUR" {
                self.usd * 9 / 10
            } else {
                self.usd
            }
        }
    }

    pub struct Product {
        pub upc: &'static str,
        pub usd: i32,
        pub weight: i32,
        pub category_usd: i32,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            self.upc
        }
        async fn name(&self) -> String {
            format!("name of {}", self.upc)
        }
        async fn weight(&self) -> i32 {
            self.weight
        }
        async fn price(&self, currency: String) -> i32 {
            if currency == "EUR" {
                self.usd * 9 / 10
            } else {
                self.usd
            }
        }
        async fn category(&self) -> Category {
            Category { usd: self.category_usd }
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn products(&self) -> Vec<Product> {
            vec![
                Product { upc: "p1", usd: 100, weight: 2, category_usd: 50 },
                Product { upc: "p2", usd: 10, weight: 1, category_usd: 5 },
            ]
        }
        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
            let _ = upc;
            None
        }
    }
}

mod shipping {
    use super::*;

    #[derive(InputObject)]
    pub struct CategoryInput {
        pub average_price: Option<i32>,
    }

    #[derive(SimpleObject)]
    #[graphql(name = "Product")]
    pub struct Product {
        pub upc: String,
        pub shipping_estimate: Option<i32>,
        #[graphql(name = "shippingEstimateEUR")]
        pub shipping_estimate_eur: Option<i32>,
        pub is_expensive_category: Option<bool>,
    }

    pub struct Query;

    #[Object]
    impl Query {
        /// Whatever currency the representation's price is in, the estimate
        /// is a tenth of price times weight; each batch alias gets its own.
        #[graphql(entity)]
        async fn find_product_by_upc(
            &self,
            #[graphql(key)] upc: String,
            price: Option<i32>,
            weight: Option<i32>,
            category: Option<CategoryInput>,
        ) -> Product {
            let estimate = price.zip(weight).map(|(p, w)| p * w / 10);
            Product {
                upc,
                shipping_estimate: estimate,
                shipping_estimate_eur: estimate,
                is_expensive_category: category.and_then(|c| c.average_price).map(|p| p > 20),
            }
        }
    }
}

#[tokio::test]
async fn batched_entity_calls_with_internally_aliased_requires_are_answered() {
    let catalog = Schema::build(catalog::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
    let shipping = Schema::build(shipping::Query, EmptyMutation, EmptySubscription).enable_federation().finish();
    let catalog = common::TestSubgraph::schema("catalog", catalog).await;
    let shipping = common::TestSubgraph::schema("shipping", shipping).await;
    let gateway = common::GatewayBuilder::new(common::fixture("pricing/supergraph.graphql"))
        .subgraph(&catalog)
        .subgraph(&shipping)
        .start()
        .await;

    let query = "{ products { upc name shippingEstimate shippingEstimateEUR isExpensiveCategory } }";
    let plan = gateway.plan(query);
    assert!(plan.contains("BatchFetch"), "{plan}");
    insta::assert_snapshot!("batch_fetch_plan", plan, query);

    let response = gateway.query(query).await;
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"upc": "p1", "name": "name of p1", "shippingEstimate": 20, "shippingEstimateEUR": 18, "isExpensiveCategory": true},
            {"upc": "p2", "name": "name of p2", "shippingEstimate": 1, "shippingEstimateEUR": 0, "isExpensiveCategory": false}
        ]}})
    );
    assert_eq!(shipping.recorder.requests(), 1, "both entity calls travel in one request");
    let variables = &shipping.recorder.bodies()[0]["variables"];
    let eur_prices: Vec<_> = variables
        .as_object()
        .unwrap()
        .values()
        .flat_map(|reps| reps.as_array().unwrap().iter().filter_map(|r| r.get("price")).cloned())
        .collect();
    assert!(eur_prices.contains(&json!(90)) && eur_prices.contains(&json!(100)), "{variables}");
}
