//! `__schema` and `__type` come from the gateway's public schema.

use crate::common;

use serde_json::{json, Value};

#[tokio::test]
async fn type_introspection_hides_inaccessible_fields() {
    let (shop, gateway) = common::shop::shop().await;
    let response =
        gateway.query(r#"{ __type(name: "User") { name kind fields { name type { kind ofType { name } } } } }"#).await;
    let fields: Vec<&str> =
        response["data"]["__type"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(response["data"]["__type"]["name"], "User");
    assert_eq!(response["data"]["__type"]["kind"], "OBJECT");
    assert!(fields.contains(&"email") && fields.contains(&"reviews"), "{fields:?}");
    assert!(!fields.contains(&"secret"), "inaccessible field leaked: {fields:?}");
    assert_eq!(response["data"]["__type"]["fields"][0]["type"], json!({"kind": "NON_NULL", "ofType": {"name": "ID"}}));
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn the_full_graphiql_introspection_query_works() {
    let (_shop, gateway) = common::shop::shop().await;
    let query = include_str!("../fixtures/introspection_query.graphql");
    let (status, response) = gateway.post_json(json!({ "query": query })).await;
    assert_eq!(status, 200, "{response}");
    assert!(response.get("errors").is_none(), "{response}");
    let schema = &response["data"]["__schema"];
    assert_eq!(schema["queryType"], json!({"name": "Query"}));
    assert_eq!(schema["mutationType"], json!({"name": "Mutation"}));
    let types: Vec<&str> = schema["types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for expected in ["Query", "User", "Product", "SearchResult", "__Schema", "String"] {
        assert!(types.contains(&expected), "{expected} missing from {types:?}");
    }
    for internal in ["join__Graph", "link__Purpose", "_Any", "_Entity"] {
        assert!(!types.contains(&internal), "{internal} leaked");
    }
    let union = schema["types"].as_array().unwrap().iter().find(|t| t["name"] == "SearchResult").unwrap();
    let members: Vec<&Value> = union["possibleTypes"].as_array().unwrap().iter().map(|t| &t["name"]).collect();
    assert_eq!(members, vec![&json!("Book"), &json!("Product")]);
    let directives: Vec<&str> =
        schema["directives"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(directives.contains(&"skip") && directives.contains(&"include"), "{directives:?}");
}

#[tokio::test]
async fn introspection_mixes_with_subgraph_fields() {
    let (_shop, gateway) = common::shop::shop().await;
    let text = gateway.query_text(r#"{ me { id } t: __type(name: "Book") { name } __typename }"#).await;
    assert_eq!(text, r#"{"data":{"me":{"id":"u1"},"t":{"name":"Book"},"__typename":"Query"}}"#);
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let shop = common::shop::Shop::start().await;
    let gateway = shop.gateway().config(|c| c.introspection = Some(false)).start().await;
    let (status, body) = gateway.post_json(json!({"query": "{ __schema { types { name } } }"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTROSPECTION_DISABLED");
    // __typename is not introspection of the schema and keeps working.
    assert_eq!(gateway.query("{ __typename }").await, json!({"data": {"__typename": "Query"}}));
}

#[tokio::test]
async fn inline_fragments_without_a_type_condition_work_inside_introspection() {
    let (_shop, gateway) = common::shop::shop().await;
    let (status, body) =
        gateway.post_json(json!({"query": "{ __schema { ... { queryType { name } } } me { ... { id } } }"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"data": {"__schema": {"queryType": {"name": "Query"}}, "me": {"id": "u1"}}}));
}

#[tokio::test]
async fn unknown_double_underscore_fields_are_validation_errors() {
    let (shop, gateway) = common::shop::shop().await;
    // Found by the fuzzer: this used to reach the planner's normaliser.
    for query in [
        r#"{ __eschm{ search(te: "x") {_ta9e  ...{on types { n ok } } } } }"#,
        "{ __nope }",
        "{ me { __schema { queryType { name } } } }",
    ] {
        let (status, body) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 400, "{query} -> {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    }
    assert_eq!(shop.requests(), 0);
}

/// The directives `__schema { directives }` lists, by name, with their locations.
async fn directives(gateway: &common::TestGateway) -> Vec<(String, Vec<String>)> {
    let response = gateway.query("{ __schema { directives { name locations } } }").await;
    let list = response["data"]["__schema"]["directives"].as_array().unwrap_or_else(|| panic!("{response}"));
    list.iter()
        .map(|d| {
            let locations = d["locations"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned());
            (d["name"].as_str().unwrap().to_owned(), locations.collect())
        })
        .collect()
}

/// Composed supergraphs declare `@include` and `@skip` (ours does) and may
/// declare the other built-in directives; the planner's public schema adds all
/// of them again. Introspection lists each directive once, as the spec has it.
#[tokio::test]
async fn introspection_lists_each_directive_once() {
    let ours = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql")).unwrap();
    assert!(ours.contains("directive @include(") && ours.contains("directive @skip("), "the premise of this test");
    let every_built_in = format!(
        "{}\n{}",
        common::fixture("shop/supergraph.graphql"),
        r#"directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @deprecated(reason: String = "No longer supported") on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE
directive @specifiedBy(url: String!) on SCALAR
directive @oneOf on INPUT_OBJECT
"#
    );
    for (label, sdl) in [("schema/supergraph.graphql", ours), ("shop with every built-in declared", every_built_in)] {
        let gateway = common::GatewayBuilder::new(sdl).start().await;
        let directives = directives(&gateway).await;
        let names: Vec<&str> = directives.iter().map(|(name, _)| name.as_str()).collect();
        for name in &names {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{label}: @{name} listed twice: {names:?}");
        }
        let locations = |name: &str| {
            directives
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| l.join(" | "))
                .unwrap_or_else(|| panic!("{label}: @{name} missing from {names:?}"))
        };
        assert_eq!(locations("include"), "FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT", "{label}");
        assert_eq!(locations("skip"), "FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT", "{label}");
        assert_eq!(
            locations("deprecated"),
            "FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE",
            "{label}"
        );
        assert_eq!(locations("specifiedBy"), "SCALAR", "{label}");
        assert_eq!(locations("oneOf"), "INPUT_OBJECT", "{label}");
        for internal in ["join__field", "link", "inaccessible"] {
            assert!(!names.contains(&internal), "{label}: @{internal} leaked: {names:?}");
        }
    }
}

#[tokio::test]
async fn our_schema_documents_its_scalar_and_what_guarded_fields_require() {
    let ours = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql")).unwrap();
    let gateway = common::GatewayBuilder::new(ours).start().await;
    let answer = gateway
        .query(
            r#"{
                scalar: __type(name: "DateTime") { description specifiedByURL }
                mutation: __type(name: "Mutation") { fields { name description } }
            }"#,
        )
        .await;
    let scalar = &answer["data"]["scalar"];
    assert_eq!(scalar["specifiedByURL"], "https://scalars.graphql.org/andimarek/date-time", "{answer}");
    assert!(scalar["description"].as_str().unwrap().contains("RFC 3339"), "{answer}");
    let described = |name: &str| {
        answer["data"]["mutation"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["description"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(described("logoutAll").ends_with("Requires a signed-in caller."), "{}", described("logoutAll"));
    assert!(described("setUserRoles").ends_with("Requires the scope `admin`."), "{}", described("setUserRoles"));
    assert!(!described("login").contains("Requires"), "{}", described("login"));
}
