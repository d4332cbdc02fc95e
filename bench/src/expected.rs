//! The expected `TestQuery` response, built straight from [`crate::data`]
//! with nested loops, independently of the subgraphs' executor: a gateway's
//! answer counts only when it equals this.
//!
//! The checked-in `bench/expected/test-query.json` is this value; a unit test
//! keeps the two the same.

use serde_json::{json, Map, Value};

use crate::data::{self, Product, Review, User, AUTHOR, PRODUCTS, REVIEWS, USERS, USER_REVIEWS};

/// The benchmark's operation, as the public benchmark's load script sends it.
pub const TEST_QUERY: &str = include_str!("../schema/test-query.graphql");

/// The checked-in expected response.
pub const EXPECTED_JSON: &str = include_str!("../expected/test-query.json");

/// The request body every load generator sends.
pub fn request_body() -> String {
    json!({ "query": TEST_QUERY, "operationName": "TestQuery" }).to_string()
}

/// The id TestQuery has in the `persisted` variant's manifest.
pub const TEST_QUERY_DOCUMENT_ID: &str = "bench-test-query";

/// The TestQuery request of a variant: by its persisted id in `persisted`,
/// in full elsewhere.
pub fn request_body_for(variant: crate::gateways::Variant) -> String {
    match variant {
        crate::gateways::Variant::Persisted => {
            json!({ "documentId": TEST_QUERY_DOCUMENT_ID, "operationName": "TestQuery" }).to_string()
        }
        _ => request_body(),
    }
}

/// The `persisted` variant's trusted documents, in GraphQL Code Generator's
/// manifest format.
pub fn persisted_manifest() -> String {
    json!({ TEST_QUERY_DOCUMENT_ID: TEST_QUERY }).to_string()
}

/// The full expected response, `{"data": …}`.
pub fn test_query_response() -> Value {
    let users: Vec<Value> = USERS
        .iter()
        .map(|user| {
            let mut object = user_fields(user);
            object.insert(
                "reviews".into(),
                reviews(USER_REVIEWS, |review| {
                    let mut object = review_fields(review);
                    let product = product_of(review);
                    let mut product_object = product_fields(product);
                    product_object.insert(
                        "reviews".into(),
                        reviews(data::product_reviews(product.upc), |review| {
                            let mut object = review_fields(review);
                            object.insert("author".into(), author_with_reviews());
                            object
                        }),
                    );
                    object.insert("product".into(), Value::Object(product_object));
                    object
                }),
            );
            Value::Object(object)
        })
        .collect();

    let top_products: Vec<Value> = PRODUCTS
        .iter()
        .take(5)
        .map(|product| {
            let mut object = product_fields(product);
            object.insert(
                "reviews".into(),
                reviews(data::product_reviews(product.upc), |review| {
                    let mut object = review_fields(review);
                    object.insert("author".into(), author_with_reviews());
                    object
                }),
            );
            Value::Object(object)
        })
        .collect();

    json!({ "data": { "users": users, "topProducts": top_products } })
}

/// `author { ...User reviews { ...Review product { ...Product } } }`
fn author_with_reviews() -> Value {
    let mut object = user_fields(&USERS[AUTHOR]);
    object.insert(
        "reviews".into(),
        reviews(USER_REVIEWS, |review| {
            let mut object = review_fields(review);
            object.insert("product".into(), Value::Object(product_fields(product_of(review))));
            object
        }),
    );
    Value::Object(object)
}

fn reviews(indices: impl Iterator<Item = usize>, build: impl Fn(&Review) -> Map<String, Value>) -> Value {
    Value::Array(indices.map(|i| Value::Object(build(&REVIEWS[i]))).collect())
}

fn product_of(review: &Review) -> &'static Product {
    &PRODUCTS[data::product_index(review.product_upc).expect("every review's product exists")]
}

fn user_fields(user: &User) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".into(), json!(user.id));
    object.insert("username".into(), json!(user.username));
    object.insert("name".into(), json!(user.name));
    object
}

fn review_fields(review: &Review) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".into(), json!(review.id));
    object.insert("body".into(), json!(review.body));
    object
}

fn product_fields(product: &Product) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("inStock".into(), json!(product.in_stock));
    object.insert("name".into(), json!(product.name));
    object.insert("price".into(), json!(product.price));
    object.insert("shippingEstimate".into(), json!(data::shipping_estimate(Some(product.price), Some(product.weight))));
    object.insert("upc".into(), json!(product.upc));
    object.insert("weight".into(), json!(product.weight));
    object
}
