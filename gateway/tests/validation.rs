//! Validation runs every specification rule against the public schema.

mod common;

use serde_json::json;

async fn validation_errors(gateway: &common::TestGateway, query: &str) -> Vec<String> {
    let (status, body) = gateway.post_json(json!({ "query": query })).await;
    assert_eq!(status, 400, "{query} -> {body}");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{e}");
            e["message"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn inaccessible_fields_do_not_exist_for_clients() {
    let (shop, gateway) = common::shop::shop().await;
    let errors = validation_errors(&gateway, "{ me { secret } }").await;
    assert!(errors[0].contains("secret"), "{errors:?}");
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn federation_internals_are_not_queryable() {
    let (_shop, gateway) = common::shop::shop().await;
    validation_errors(&gateway, r#"{ _entities(representations: []) { __typename } }"#).await;
    validation_errors(&gateway, "{ _service { sdl } }").await;
}

#[tokio::test]
async fn spec_rules_are_enforced() {
    let (_shop, gateway) = common::shop::shop().await;
    for query in [
        "{ me }",                                                // leaf selections
        "{ me { id { x } } }",                                   // no selection on scalar
        "{ user { id } }",                                       // required argument
        "{ user(id: 1, nope: 2) { id } }",                       // unknown argument
        "query($a: Int) { me { id } }",                          // unused variable
        "{ me { id } } fragment F on User { id }",               // unused fragment
        "{ me { ...on Product { upc } } }",                      // impossible spread
        "{ me { id: name id } }",                                // conflicting response keys
        "query($x: String!) { topProducts(first: $x) { upc } }", // variable position
        "{ me { id @skip } }",                                   // missing directive argument
        "{ me { id @nope } }",                                   // unknown directive
        r#"{ topProducts(first: "two") { upc } }"#,              // wrong literal type
    ] {
        validation_errors(&gateway, query).await;
    }
}
