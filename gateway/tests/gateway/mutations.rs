//! Mutations run their root fields in order and complete results from other subgraphs.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn mutation_results_are_completed_by_entity_fetches() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway
        .query(
            r#"mutation {
                first: addReview(upc: "p1", body: "one") { id body product { name } }
                second: addReview(upc: "p2", body: "two") { id author { name } }
            }"#,
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {
            "first": {"id": "new0", "body": "one", "product": {"name": "Table"}},
            "second": {"id": "new1", "author": {"name": "Ada"}}
        }})
    );
    // Both fields belong to one subgraph, which runs them serially itself.
    assert_eq!(shop.reviews.recorder.requests(), 1);
}
