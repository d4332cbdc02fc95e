//! Audit scenario `abstract-types` (the part about interfaces spread over
//! subgraphs): an interface whose implementations get fields from four
//! subgraphs, reached through root lists, arguments, aliases, nested entity
//! hops and type conditions carrying `@include`/`@skip`.

use crate::{audit_support, common};

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

/// id, type, sku, title
const ITEMS: [(&str, &str, &str, &str); 4] = [
    ("p1", "Book", "sku-b1", "Book One"),
    ("p3", "Book", "sku-b2", "Book Two"),
    ("p2", "Magazine", "sku-m1", "Mag One"),
    ("p4", "Magazine", "sku-m2", "Mag Two"),
];
/// review id, product id
const REVIEWS: [(i64, &str); 3] = [(11, "p1"), (12, "p1"), (13, "p2")];

fn item(id: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    ITEMS.iter().copied().find(|i| i.0 == id)
}

fn product(id: &str) -> Value {
    match item(id) {
        Some((id, ty, sku, _)) => {
            json!({"__typename": ty, "id": id, "sku": sku, "hidden": false, "publisherType": publisher(id)})
        }
        None => Value::Null,
    }
}

/// Books are published by their authors, magazines by agencies (which the
/// products subgraph knows only by id).
fn publisher(id: &str) -> Value {
    match id {
        "p1" => json!({"__typename": "Self", "email": "author1@example.com"}),
        "p3" => json!({"__typename": "Self", "email": "author3@example.com"}),
        "p2" => json!({"__typename": "Agency", "id": "a1"}),
        _ => json!({"__typename": "Agency", "id": "a2"}),
    }
}

fn reviews_of(id: &str) -> Value {
    REVIEWS
        .iter()
        .filter(|r| r.1 == id)
        .map(|(rid, pid)| {
            let ty = item(pid).unwrap().1;
            json!({"__typename": "Review", "id": rid, "body": format!("review {rid}"), "product": {"__typename": ty, "id": pid}})
        })
        .collect()
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = ITEMS.iter().map(|i| product(i.0)).collect();
    let products = JsonSubgraph::new("products")
        .query(json!({ "products": all }))
        .possible("Product", &["Book", "Magazine"])
        .possible("Similar", &["Book", "Magazine"])
        .possible("PublisherType", &["Agency", "Self"])
        .entities(|rep| product(rep["id"].as_str().unwrap_or_default()))
        .fields(move |parent, field, args| {
            let similar_to = |id: &str| -> Value {
                let Some(me) = item(id) else { return json!([]) };
                ITEMS.iter().filter(|i| i.0 != me.0 && i.1 == me.1).map(|i| product(i.0)).collect()
            };
            match field {
                "similar" if parent["__typename"] == "Query" => {
                    Some(similar_to(args["id"].as_str().unwrap_or_default()))
                }
                "similar" => Some(similar_to(parent["id"].as_str().unwrap_or_default())),
                _ => None,
            }
        });
    let reviews = JsonSubgraph::new("reviews")
        .possible("Product", &["Book", "Magazine"])
        .entities(|rep| {
            let id = rep["id"].as_str().unwrap_or_default();
            let Some((id, ty, ..)) = item(id) else { return Value::Null };
            json!({"__typename": ty, "id": id})
        })
        // Any product object here, at the root of an entity or inside a review.
        .fields(|parent, field, _| {
            let id = parent["id"].as_str().unwrap_or_default();
            match field {
                "reviews" => Some(reviews_of(id)),
                "reviewsCount" => Some(json!(reviews_of(id).as_array().unwrap().len())),
                _ => None,
            }
        });
    let titles = |ty: &'static str| {
        move |rep: &Value| {
            let all: Value = ITEMS
                .iter()
                .filter(|i| i.1 == ty)
                .map(|i| json!({"__typename": ty, "id": i.0, "title": i.3}))
                .collect();
            find_by(&all, "id", rep)
        }
    };
    let books = JsonSubgraph::new("books").entities(titles("Book"));
    let magazines = JsonSubgraph::new("magazines").entities(titles("Magazine"));
    let agency = JsonSubgraph::new("agency").possible("PublisherType", &["Agency", "Group"]).entities(|rep| {
        let all = json!([
            {"__typename": "Agency", "id": "a1", "companyName": "Agency One",
             "email": {"__typename": "Email", "address": "desk@agency-one.example"}},
            {"__typename": "Agency", "id": "a2", "companyName": "Agency Two",
             "email": {"__typename": "Email", "address": "desk@agency-two.example"}},
        ]);
        match rep["__typename"].as_str() {
            Some("Group") => {
                let id = rep["id"].as_str().unwrap_or_default();
                json!({"__typename": "Group", "id": id, "name": format!("Group {id}"), "email": format!("{id}@groups.example")})
            }
            _ => find_by(&all, "id", rep),
        }
    });
    start("abstract-types", vec![products, reviews, books, magazines, agency]).await
}

#[tokio::test]
async fn a_root_field_with_an_argument_and_aliases() {
    let (_subs, gateway) = suite().await;
    let response =
        gateway.query(r#"{ book: similar(id: "p1") { id sku } magazine: similar(id: "p2") { id sku } }"#).await;
    assert_eq!(
        response,
        json!({"data": {"book": [{"id": "p3", "sku": "sku-b2"}], "magazine": [{"id": "p4", "sku": "sku-m2"}]}})
    );
}

#[tokio::test]
async fn the_same_field_through_every_type_condition() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(
            "{ products { sku ... on Product { sku } ... on Book { sku } ... on Magazine { sku }
               ... on Similar { __typename type: __typename } } }",
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"sku": "sku-b1", "__typename": "Book", "type": "Book"},
            {"sku": "sku-b2", "__typename": "Book", "type": "Book"},
            {"sku": "sku-m1", "__typename": "Magazine", "type": "Magazine"},
            {"sku": "sku-m2", "__typename": "Magazine", "type": "Magazine"}
        ]}})
    );
}

#[tokio::test]
async fn member_fields_from_different_subgraphs_after_a_nested_hop() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query("{ products { id reviews { product { sku ... on Magazine { title } ... on Book { reviewsCount } } } } }")
        .await;
    let book = json!({"product": {"sku": "sku-b1", "reviewsCount": 2}});
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"id": "p1", "reviews": [book, book]},
            {"id": "p3", "reviews": []},
            {"id": "p2", "reviews": [{"product": {"sku": "sku-m1", "title": "Mag One"}}]},
            {"id": "p4", "reviews": []}
        ]}})
    );
    let response = gateway.query("{ products { id reviews { id } } }").await;
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"id": "p1", "reviews": [{"id": 11}, {"id": 12}]},
            {"id": "p3", "reviews": []},
            {"id": "p2", "reviews": [{"id": 13}]},
            {"id": "p4", "reviews": []}
        ]}})
    );
}

/// The response for `products { id reviews { product { .. } } }` when the
/// first book's product shows `book` and the magazine's shows its sku.
fn with_book(book: Value) -> Value {
    let mut product = json!({"id": "p1"});
    for (k, v) in book.as_object().unwrap() {
        product[k] = v.clone();
    }
    json!({"data": {"products": [
        {"id": "p1", "reviews": [{"product": product}, {"product": product}]},
        {"id": "p3", "reviews": []},
        {"id": "p2", "reviews": [{"product": {"id": "p2", "sku": "sku-m1"}}]},
        {"id": "p4", "reviews": []}
    ]}})
}

#[tokio::test]
async fn include_and_skip_on_type_conditions() {
    let (_subs, gateway) = suite().await;
    let cases = [
        ("true", "... on Book @include(if: $title) { title }", json!({"title": "Book One"})),
        ("false", "... on Book @include(if: $title) { title }", json!({})),
        ("false", "... on Book @skip(if: $title) { title }", json!({"title": "Book One"})),
        ("true", "... on Book @skip(if: $title) { title }", json!({})),
        ("true", "... on Book @skip(if: $title) { title } ... on Book { sku }", json!({"sku": "sku-b1"})),
        (
            "false",
            "... on Book @skip(if: $title) { title } ... on Book { sku }",
            json!({"title": "Book One", "sku": "sku-b1"}),
        ),
        (
            "true",
            "... on Book @include(if: $title) { title ... on Book { sku } }",
            json!({"title": "Book One", "sku": "sku-b1"}),
        ),
        (
            "true",
            "... on Book @include(if: $title) { title ... on Book @skip(if: $title) { sku } }",
            json!({"title": "Book One"}),
        ),
    ];
    for (default, book, expected) in cases {
        let query = format!(
            "query ($title: Boolean = {default}) {{ products {{ id reviews {{ product {{ id {book} ... on Magazine {{ sku }} }} }} }} }}"
        );
        let response = gateway.query(&query).await;
        assert_eq!(response, with_book(expected), "for $title = {default} and {book}");
    }
}

#[tokio::test]
async fn a_root_field_with_an_argument() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(r#"{ similar(id: "p1") { id sku } }"#).await;
    assert_eq!(response, json!({"data": {"similar": [{"id": "p3", "sku": "sku-b2"}]}}));
}

/// `products { id reviews { product { id <on each member: publisherType { ...Publisher }> } } }`
/// where the union's members come from two subgraphs and one of them
/// (`Agency`) needs an entity hop for everything but its id.
fn publisher_query(fragment: &str) -> String {
    format!(
        "{{ products {{ id reviews {{ product {{ id
             ... on Magazine {{ publisherType {{ ...Publisher }} }}
             ... on Book {{ publisherType {{ ...Publisher }} }} }} }} }} }}
         fragment Publisher on PublisherType {{ {fragment} }}"
    )
}

fn with_publishers(book: Value, magazine: Value) -> Value {
    let book = json!({"product": {"id": "p1", "publisherType": book}});
    json!({"data": {"products": [
        {"id": "p1", "reviews": [book, book]},
        {"id": "p3", "reviews": []},
        {"id": "p2", "reviews": [{"product": {"id": "p2", "publisherType": magazine}}]},
        {"id": "p4", "reviews": []}
    ]}})
}

#[tokio::test]
async fn a_union_spread_over_subgraphs_through_a_named_fragment() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(&publisher_query("... on Agency { id companyName } ... on Self { email }")).await;
    assert_eq!(
        response,
        with_publishers(json!({"email": "author1@example.com"}), json!({"id": "a1", "companyName": "Agency One"}))
    );
}

#[tokio::test]
async fn a_union_member_only_another_subgraph_knows() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(&publisher_query("... on Agency { id companyName } ... on Self { email } ... on Group { name }"))
        .await;
    assert_eq!(
        response,
        with_publishers(json!({"email": "author1@example.com"}), json!({"id": "a1", "companyName": "Agency One"}))
    );
}

#[tokio::test]
async fn union_members_with_same_named_fields_of_different_types() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(&publisher_query(
            "... on Agency { emailObj: email { address } } ... on Self { emailStr: email } ... on Group { emailStr: email }",
        ))
        .await;
    assert_eq!(
        response,
        with_publishers(
            json!({"emailStr": "author1@example.com"}),
            json!({"emailObj": {"address": "desk@agency-one.example"}})
        )
    );
}
