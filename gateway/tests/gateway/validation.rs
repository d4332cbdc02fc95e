//! Validation runs every specification rule against the public schema.

use crate::common;

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

#[tokio::test]
async fn a_thousand_mistakes_get_a_short_answer() {
    let (shop, gateway) = common::shop::shop().await;
    let query = format!("{{ me {{ id {} }} }}", "@nope ".repeat(1_000));
    let (status, body) = gateway.post_json(json!({ "query": query })).await;
    assert_eq!(status, 400);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 101, "100 errors and one that says how many more");
    assert_eq!(errors[100]["message"], "Too many validation errors: 900 more not listed");
    assert!(body.to_string().len() < 20_000, "{} bytes", body.to_string().len());
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn syntax_errors_say_where() {
    let (_shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway.post_json(json!({ "query": "{\n  me {\n    id ]\n  }\n}" })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    assert_eq!(body["errors"][0]["locations"], json!([{ "line": 3, "column": 8 }]), "{body}");
}

#[tokio::test]
async fn incremental_delivery_is_refused_and_a_schema_without_subscriptions_has_none() {
    let (shop, gateway) = common::shop::shop().await;
    // This supergraph has no subscription type.
    for query in ["subscription { me { id } }", "subscription OnReview { topProducts { upc } }"] {
        let (status, body) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 400, "{query} -> {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{query} -> {body}");
    }
    for query in [
        "{ me { id ... @defer { name } } }",
        "{ me { ...Rest @defer(label: \"rest\") } } fragment Rest on User { name }",
        "{ topProducts @stream(initialCount: 1) { upc } }",
        "query A { me { id } } fragment F on User { name ... @defer { id } }",
    ] {
        let (status, body) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 400, "{query} -> {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "OPERATION_NOT_SUPPORTED", "{query} -> {body}");
    }
    // The whole document is validated: a subscription the schema cannot
    // have makes it invalid, even when another operation is asked for.
    let (status, body) = gateway
        .post_json(json!({ "query": "subscription S { me { id } } query Q { me { id } }", "operationName": "Q" }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["message"], "The schema has no subscription type");
    assert_eq!(shop.requests(), 0);
}
