//! The benchmark subgraphs answer the operations gateways send them:
//! root fields, `_entities` with representations in variables, fragments,
//! aliases and `__typename`, exactly as the public benchmark's subgraphs do.

use std::sync::Arc;

use serde_json::{json, Value};

use gatehouse_bench::subgraphs::exec::{execute, parse};
use gatehouse_bench::subgraphs::{server, State, Subgraph};

fn run(subgraph: Subgraph, query: &str, variables: Value) -> Value {
    let doc = parse(query).expect("the test query parses");
    let mut out = Vec::new();
    execute(subgraph, &doc, None, &variables, &mut out);
    serde_json::from_slice(&out).expect("the executor writes JSON")
}

#[test]
fn accounts_answers_its_root_fields() {
    let answer = run(Subgraph::Accounts, "{ me { id name } user(id: \"3\") { username } users { id } }", json!({}));
    assert_eq!(answer["data"]["me"], json!({"id": "1", "name": "Uri Goldshtein"}));
    assert_eq!(answer["data"]["user"], json!({"username": "kamilkisiela"}));
    assert_eq!(answer["data"]["users"].as_array().map(Vec::len), Some(6));
    assert!(answer.get("errors").is_none());
}

#[test]
fn accounts_resolves_user_entities_in_representation_order() {
    let answer = run(
        Subgraph::Accounts,
        "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { __typename name } } }",
        json!({"representations": [{"__typename": "User", "id": "2"}, {"__typename": "User", "id": "1"}]}),
    );
    assert_eq!(
        answer["data"]["_entities"],
        json!([{"__typename": "User", "name": "Dotan Simha"}, {"__typename": "User", "name": "Uri Goldshtein"}])
    );
}

#[test]
fn inventory_computes_shipping_from_the_required_price_and_weight() {
    let answer = run(
        Subgraph::Inventory,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { upc inStock shippingEstimate } } }",
        json!({"r": [
            {"__typename": "Product", "upc": "1", "price": 899, "weight": 100},
            {"__typename": "Product", "upc": "2", "price": 1299, "weight": 1000},
            {"__typename": "Product", "upc": "3"},
        ]}),
    );
    assert_eq!(
        answer["data"]["_entities"],
        json!([
            {"upc": "1", "inStock": true, "shippingEstimate": 50},
            {"upc": "2", "inStock": false, "shippingEstimate": 0},
            {"upc": "3", "inStock": false, "shippingEstimate": null},
        ])
    );
}

#[test]
fn products_top_products_defaults_to_five_and_takes_a_variable() {
    let default = run(Subgraph::Products, "{ topProducts { upc } }", json!({}));
    assert_eq!(default["data"]["topProducts"].as_array().map(Vec::len), Some(5));
    let two = run(Subgraph::Products, "query($n: Int) { topProducts(first: $n) { name price } }", json!({"n": 2}));
    assert_eq!(two["data"]["topProducts"], json!([{"name": "Table", "price": 899}, {"name": "Couch", "price": 1299}]));
}

#[test]
fn reviews_resolves_users_products_and_provided_authors() {
    let answer = run(
        Subgraph::Reviews,
        "query($representations: [_Any!]!) { _entities(representations: $representations) { \
           __typename \
           ... on User { reviews { id author { id username } } } \
           ... on Product { reviews { id product { upc } } } } }",
        json!({"representations": [{"__typename": "User", "id": "4"}, {"__typename": "Product", "upc": "4"}]}),
    );
    assert_eq!(
        answer["data"]["_entities"],
        json!([
            {"__typename": "User", "reviews": [
                {"id": "1", "author": {"id": "1", "username": "urigo"}},
                {"id": "2", "author": {"id": "1", "username": "urigo"}},
            ]},
            {"__typename": "Product", "reviews": [
                {"id": "10", "product": {"upc": "4"}},
                {"id": "11", "product": {"upc": "4"}},
            ]},
        ])
    );
}

#[test]
fn named_fragments_aliases_and_repeated_fields_merge_like_graphql_says() {
    let answer = run(
        Subgraph::Products,
        "fragment P on Product { upc name } \
         query Q { topProducts(first: 1) { ...P first: name upc ... on Product { price } } }",
        json!({}),
    );
    assert_eq!(answer["data"]["topProducts"], json!([{"upc": "1", "name": "Table", "first": "Table", "price": 899}]));
    let text = serde_json::to_string(&answer).unwrap();
    assert_eq!(text.matches("\"upc\"").count(), 1, "a repeated field appears once: {text}");
}

#[test]
fn skip_and_include_follow_their_variables() {
    let answer = run(
        Subgraph::Accounts,
        "query($yes: Boolean!) { me { id @skip(if: $yes) name @include(if: $yes) } }",
        json!({"yes": true}),
    );
    assert_eq!(answer["data"]["me"], json!({"name": "Uri Goldshtein"}));
}

#[test]
fn unknown_fields_and_entities_become_errors() {
    let answer = run(
        Subgraph::Accounts,
        "query($r: [_Any!]!) { me { nope } _entities(representations: $r) { ... on User { id } } }",
        json!({"r": [{"__typename": "User", "id": "99"}]}),
    );
    assert_eq!(answer["data"]["me"], json!({"nope": null}));
    assert_eq!(answer["data"]["_entities"], json!([null]));
    assert_eq!(answer["errors"].as_array().map(Vec::len), Some(2));
}

#[test]
fn service_sdl_is_the_subgraphs_own() {
    let answer = run(Subgraph::Reviews, "{ _service { sdl } }", json!({}));
    let sdl = answer["data"]["_service"]["sdl"].as_str().unwrap();
    assert!(sdl.contains("@provides(fields: \"username\")"), "{sdl}");
}

#[test]
fn a_bad_body_gets_a_graphql_error_not_a_panic() {
    let state = State::default();
    let mut out = Vec::new();
    state.answer(Subgraph::Accounts, b"{not json", &mut out);
    let answer: Value = serde_json::from_slice(&out).unwrap();
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("bad request body"));
}

#[tokio::test]
async fn the_servers_answer_over_http_and_count_requests() {
    let listeners = server::bind("127.0.0.1", 0).await.unwrap();
    let addresses: Vec<_> = listeners.iter().map(|(s, l)| (*s, l.local_addr().unwrap())).collect();
    let state = Arc::new(State::default());
    let task = tokio::spawn(server::serve(listeners, state.clone(), None));

    let (_, products) = addresses.iter().find(|(s, _)| *s == Subgraph::Products).unwrap();
    let mut stream = tokio::net::TcpStream::connect(products).await.unwrap();
    let body = r#"{"query":"{ topProducts(first: 1) { upc } }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer t\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"data":{"topProducts":[{"upc":"1"}]}}"#), "{response}");

    let snapshot = state.counters.snapshot();
    assert_eq!(snapshot.requests["products"], 1);
    assert_eq!(snapshot.with_authorization["products"], 1);
    assert_eq!(snapshot.total_requests(), 1);
    task.abort();
}

#[test]
fn the_runners_baseline_query_runs_cleanly_on_reviews() {
    let representations: Vec<Value> =
        (1..=5).map(|upc| json!({"__typename": "Product", "upc": upc.to_string()})).collect();
    let answer =
        run(Subgraph::Reviews, gatehouse_bench::runner::BASELINE_QUERY, json!({"representations": representations}));
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(answer["data"]["_entities"].as_array().map(Vec::len), Some(5));
    assert_eq!(answer["data"]["_entities"][0]["reviews"][0]["author"]["reviews"][0]["product"]["upc"], "1");
}
