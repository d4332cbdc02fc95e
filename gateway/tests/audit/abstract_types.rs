//! Audit scenario `abstract-types`: the interfaces `Product` and `Similar`
//! and the union `PublisherType`, spread over seven subgraphs. `products`
//! owns the products, `books`/`magazines` their titles, `reviews` their
//! reviews, `inventory` a delivery estimate that `@requires` the products'
//! dimensions, `users` the creators (`User`, keyed by email) and `agency`
//! the publishers that are agencies (and a union member, `Group`, no other
//! subgraph has). Cases reach them through root lists, arguments, aliases,
//! nested entity hops, named fragments and type conditions carrying
//! `@include`/`@skip`.

use crate::{audit_support, common};

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

/// id, type, sku, title, creator, dimensions (size, weight), publisher
struct Item {
    id: &'static str,
    ty: &'static str,
    sku: &'static str,
    title: &'static str,
    created_by: &'static str,
    weight: f64,
    publisher: fn() -> Value,
}

fn self_published() -> Value {
    json!({"__typename": "Self", "email": "u1@example.com"})
}

fn agency_published() -> Value {
    json!({"__typename": "Agency", "id": "a1"})
}

/// Upstream's `data.ts`: books first, then magazines; every item is small.
const ITEMS: [Item; 4] = [
    Item {
        id: "p1",
        ty: "Book",
        sku: "sku-1",
        title: "Book 1",
        created_by: "u1",
        weight: 0.5,
        publisher: self_published,
    },
    Item {
        id: "p3",
        ty: "Book",
        sku: "sku-3",
        title: "Book 2",
        created_by: "u2",
        weight: 0.6,
        publisher: agency_published,
    },
    Item {
        id: "p2",
        ty: "Magazine",
        sku: "sku-2",
        title: "Magazine 1",
        created_by: "u1",
        weight: 0.2,
        publisher: agency_published,
    },
    Item {
        id: "p4",
        ty: "Magazine",
        sku: "sku-4",
        title: "Magazine 2",
        created_by: "u2",
        weight: 0.3,
        publisher: self_published,
    },
];

/// id, email, name
const USERS: [(&str, &str, &str); 3] =
    [("u1", "u1@example.com", "u1-name"), ("u2", "u2@example.com", "u2-name"), ("u3", "u3@example.com", "u3-name")];

/// review id, body, product id, score
const REVIEWS: [(i64, &str, &str, i64); 3] =
    [(1, "review 1", "p1", 3), (2, "review 2", "p1", 4), (3, "review 3", "p2", 5)];

fn item(id: &str) -> Option<&'static Item> {
    ITEMS.iter().find(|i| i.id == id)
}

fn products_created(user_id: &str) -> usize {
    ITEMS.iter().filter(|i| i.created_by == user_id).count()
}

/// A user as the `products` subgraph knows it (key and product count).
fn creator(user_id: &str) -> Value {
    let (id, email, _) = USERS.iter().find(|u| u.0 == user_id).unwrap();
    json!({"__typename": "User", "email": email, "totalProductsCreated": products_created(id)})
}

/// A product as the `products` subgraph serves it.
fn product(i: &Item) -> Value {
    json!({
        "__typename": i.ty,
        "id": i.id,
        "sku": i.sku,
        "dimensions": {"__typename": "ProductDimension", "size": "small", "weight": i.weight},
        "createdBy": creator(i.created_by),
        "hidden": i.id == "p4",
        "publisherType": (i.publisher)()
    })
}

/// The other products of the same type.
fn similar_to(id: &str) -> Value {
    let Some(me) = item(id) else { return json!([]) };
    ITEMS.iter().filter(|i| i.id != me.id && i.ty == me.ty).map(product).collect()
}

fn review((id, body, product_id, _): &(i64, &str, &str, i64)) -> Value {
    let ty = item(product_id).unwrap().ty;
    json!({"__typename": "Review", "id": id, "body": body, "product": {"__typename": ty, "id": product_id}})
}

fn reviews_of(id: &str) -> Vec<Value> {
    REVIEWS.iter().filter(|r| r.2 == id).map(review).collect()
}

fn products_subgraph() -> JsonSubgraph {
    let all: Value = ITEMS.iter().map(product).collect();
    JsonSubgraph::new("products")
        .query(json!({ "products": all }))
        .possible("Product", &["Book", "Magazine"])
        .possible("Similar", &["Book", "Magazine"])
        .possible("PublisherType", &["Agency", "Self"])
        .entities(|rep| match rep["__typename"].as_str() {
            Some("User") => match USERS.iter().find(|u| u.1 == rep["email"]) {
                Some(u) => creator(u.0),
                None => Value::Null,
            },
            _ => match item(rep["id"].as_str().unwrap_or_default()) {
                Some(i) if i.ty == rep["__typename"] => product(i),
                _ => Value::Null,
            },
        })
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Query", "similar") => Some(similar_to(args["id"].as_str().unwrap_or_default())),
            (_, "similar") => Some(similar_to(parent["id"].as_str().unwrap_or_default())),
            _ => None,
        })
}

/// `inventory` estimates the delivery from the dimensions it is sent.
fn inventory_subgraph() -> JsonSubgraph {
    JsonSubgraph::new("inventory")
        .possible("Product", &["Book", "Magazine"])
        .entities(|rep| match item(rep["id"].as_str().unwrap_or_default()) {
            Some(i) if i.ty == rep["__typename"] => {
                json!({"__typename": i.ty, "id": i.id, "dimensions": rep.get("dimensions")})
            }
            _ => Value::Null,
        })
        .fields(|parent, field, args| {
            if field != "delivery" {
                return None;
            }
            let dimensions = &parent["dimensions"];
            let small = dimensions["size"] == "small" && dimensions["weight"].as_f64().is_some_and(|w| w < 1.0);
            Some(if args["zip"].is_string() && small {
                json!({"__typename": "DeliveryEstimates", "estimatedDelivery": "1 day", "fastestDelivery": "same day"})
            } else {
                Value::Null
            })
        })
}

fn users_subgraph() -> JsonSubgraph {
    JsonSubgraph::new("users").entities(|rep| match USERS.iter().find(|u| u.1 == rep["email"]) {
        Some((id, email, name)) => {
            json!({"__typename": "User", "email": email, "name": name, "totalProductsCreated": products_created(id)})
        }
        None => Value::Null,
    })
}

fn reviews_subgraph() -> JsonSubgraph {
    JsonSubgraph::new("reviews")
        .possible("Product", &["Book", "Magazine"])
        .possible("Similar", &["Book", "Magazine"])
        .entities(|rep| match item(rep["id"].as_str().unwrap_or_default()) {
            Some(i) if i.ty == rep["__typename"] => json!({"__typename": i.ty, "id": i.id}),
            _ => Value::Null,
        })
        // Any product object here, at the root of an entity or inside a review.
        .fields(|parent, field, args| {
            let id = parent["id"].as_str().unwrap_or_default();
            match (parent["__typename"].as_str()?, field) {
                ("Query", "review") => Some(REVIEWS.iter().find(|r| args["id"] == r.0).map_or(Value::Null, review)),
                (_, "reviews") => Some(Value::Array(reviews_of(id))),
                (_, "reviewsCount") => Some(json!(reviews_of(id).len())),
                (_, "reviewsScore") => {
                    let scores: Vec<i64> = REVIEWS.iter().filter(|r| r.2 == id).map(|r| r.3).collect();
                    let average =
                        if scores.is_empty() { 0.0 } else { scores.iter().sum::<i64>() as f64 / scores.len() as f64 };
                    Some(json!(average))
                }
                _ => None,
            }
        })
}

/// `books` or `magazines`: the titles of one product type.
fn titles_subgraph(name: &str, ty: &'static str) -> JsonSubgraph {
    let all: Value =
        ITEMS.iter().filter(|i| i.ty == ty).map(|i| json!({"__typename": ty, "id": i.id, "title": i.title})).collect();
    let root = all.clone();
    JsonSubgraph::new(name).query(json!({ name: root })).entities(move |rep| find_by(&all, "id", rep))
}

fn agency_subgraph() -> JsonSubgraph {
    JsonSubgraph::new("agency").possible("PublisherType", &["Agency", "Group"]).entities(|rep| {
        match rep["__typename"].as_str() {
            Some("Group") => {
                let id = rep["id"].as_str().unwrap_or_default();
                json!({"__typename": "Group", "id": id, "name": format!("Group {id}"), "email": format!("group{id}@example.com")})
            }
            _ => find_by(
                &json!([{"__typename": "Agency", "id": "a1", "companyName": "Agency 1",
                         "email": {"__typename": "Email", "address": "a1@example.com"}}]),
                "id",
                rep,
            ),
        }
    })
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    start(
        "abstract-types",
        vec![
            products_subgraph(),
            inventory_subgraph(),
            users_subgraph(),
            reviews_subgraph(),
            titles_subgraph("books", "Book"),
            titles_subgraph("magazines", "Magazine"),
            agency_subgraph(),
        ],
    )
    .await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn shareable_dimensions_of_every_product() {
    check(
        "{ products { id dimensions { size weight } } }",
        json!({"products": [
            {"id": "p1", "dimensions": {"size": "small", "weight": 0.5}},
            {"id": "p3", "dimensions": {"size": "small", "weight": 0.6}},
            {"id": "p2", "dimensions": {"size": "small", "weight": 0.2}},
            {"id": "p4", "dimensions": {"size": "small", "weight": 0.3}}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn a_root_field_with_an_argument() {
    check(r#"{ similar(id: "p1") { id sku } }"#, json!({"similar": [{"id": "p3", "sku": "sku-3"}]})).await;
}

#[tokio::test]
async fn a_root_field_with_an_argument_aliased_with_a_requires_below() {
    let delivery = json!({"fastestDelivery": "same day", "estimatedDelivery": "1 day"});
    check(
        r#"{
            book: similar(id: "p1") { id sku delivery(zip: "1234") { fastestDelivery estimatedDelivery } }
            magazine: similar(id: "p2") { id sku delivery(zip: "1234") { fastestDelivery estimatedDelivery } }
        }"#,
        json!({
            "book": [{"id": "p3", "sku": "sku-3", "delivery": delivery}],
            "magazine": [{"id": "p4", "sku": "sku-4", "delivery": delivery}]
        }),
    )
    .await;
}

#[tokio::test]
async fn the_same_field_through_every_type_condition() {
    check(
        "{ products { sku ... on Product { sku } ... on Book { sku } ... on Magazine { sku }
           ... on Similar { __typename type: __typename } } }",
        json!({"products": [
            {"sku": "sku-1", "__typename": "Book", "type": "Book"},
            {"sku": "sku-3", "__typename": "Book", "type": "Book"},
            {"sku": "sku-2", "__typename": "Magazine", "type": "Magazine"},
            {"sku": "sku-4", "__typename": "Magazine", "type": "Magazine"}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn an_aliased_entity_field_shared_by_two_subgraphs() {
    let u1 = json!({"email": "u1@example.com", "totalProductsCreated": 2});
    let u2 = json!({"email": "u2@example.com", "totalProductsCreated": 2});
    check(
        "{ products { author: createdBy { email totalProductsCreated } ... on Magazine { title } } }",
        json!({"products": [
            {"author": u1},
            {"author": u2},
            {"author": u1, "title": "Magazine 1"},
            {"author": u2, "title": "Magazine 2"}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn member_fields_from_different_subgraphs_after_a_nested_hop() {
    let book = json!({"product": {"sku": "sku-1", "reviewsCount": 2}});
    check(
        "{ products { id reviews { product { sku ... on Magazine { title } ... on Book { reviewsCount } } } } }",
        json!({"products": [
            {"id": "p1", "reviews": [book, book]},
            {"id": "p3", "reviews": []},
            {"id": "p2", "reviews": [{"product": {"sku": "sku-2", "title": "Magazine 1"}}]},
            {"id": "p4", "reviews": []}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn an_interface_field_from_another_subgraph() {
    check(
        "{ products { id reviews { id } } }",
        json!({"products": [
            {"id": "p1", "reviews": [{"id": 1}, {"id": 2}]},
            {"id": "p3", "reviews": []},
            {"id": "p2", "reviews": [{"id": 3}]},
            {"id": "p4", "reviews": []}
        ]}),
    )
    .await;
}

/// `products { id reviews { product { id <book> ... on Magazine { sku } } } }`
/// with `$title` defaulting to `default`: the first book's product shows
/// `book` next to its id, the magazine's shows its sku.
async fn check_book_condition(default: &str, book: &str, shown: Value) {
    let query = format!(
        "query ($title: Boolean = {default}) {{ products {{ id reviews {{ product {{ id {book} ... on Magazine {{ sku }} }} }} }} }}"
    );
    let mut product = json!({"id": "p1"});
    for (k, v) in shown.as_object().unwrap() {
        product[k] = v.clone();
    }
    check(
        &query,
        json!({"products": [
            {"id": "p1", "reviews": [{"product": product}, {"product": product}]},
            {"id": "p3", "reviews": []},
            {"id": "p2", "reviews": [{"product": {"id": "p2", "sku": "sku-2"}}]},
            {"id": "p4", "reviews": []}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn include_true_on_a_type_condition() {
    check_book_condition("true", "... on Book @include(if: $title) { title }", json!({"title": "Book 1"})).await;
}

#[tokio::test]
async fn include_false_on_a_type_condition() {
    check_book_condition("false", "... on Book @include(if: $title) { title }", json!({})).await;
}

#[tokio::test]
async fn skip_false_on_a_type_condition() {
    check_book_condition("false", "... on Book @skip(if: $title) { title }", json!({"title": "Book 1"})).await;
}

#[tokio::test]
async fn skip_true_on_a_type_condition() {
    check_book_condition("true", "... on Book @skip(if: $title) { title }", json!({})).await;
}

#[tokio::test]
async fn skip_true_next_to_the_same_type_condition() {
    check_book_condition(
        "true",
        "... on Book @skip(if: $title) { title } ... on Book { sku }",
        json!({"sku": "sku-1"}),
    )
    .await;
}

#[tokio::test]
async fn skip_false_next_to_the_same_type_condition() {
    check_book_condition(
        "false",
        "... on Book @skip(if: $title) { title } ... on Book { sku }",
        json!({"title": "Book 1", "sku": "sku-1"}),
    )
    .await;
}

#[tokio::test]
async fn include_true_around_a_nested_type_condition() {
    check_book_condition(
        "true",
        "... on Book @include(if: $title) { title ... on Book { sku } }",
        json!({"title": "Book 1", "sku": "sku-1"}),
    )
    .await;
}

#[tokio::test]
async fn include_true_around_a_nested_skip_true() {
    check_book_condition(
        "true",
        "... on Book @include(if: $title) { title ... on Book @skip(if: $title) { sku } }",
        json!({"title": "Book 1"}),
    )
    .await;
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
    json!({"products": [
        {"id": "p1", "reviews": [book, book]},
        {"id": "p3", "reviews": []},
        {"id": "p2", "reviews": [{"product": {"id": "p2", "publisherType": magazine}}]},
        {"id": "p4", "reviews": []}
    ]})
}

#[tokio::test]
async fn a_union_spread_over_subgraphs_through_a_named_fragment() {
    check(
        &publisher_query("... on Agency { id companyName } ... on Self { email }"),
        with_publishers(json!({"email": "u1@example.com"}), json!({"id": "a1", "companyName": "Agency 1"})),
    )
    .await;
}

#[tokio::test]
async fn a_union_member_only_another_subgraph_knows() {
    check(
        &publisher_query("... on Agency { id companyName } ... on Self { email } ... on Group { name }"),
        with_publishers(json!({"email": "u1@example.com"}), json!({"id": "a1", "companyName": "Agency 1"})),
    )
    .await;
}

#[tokio::test]
async fn union_members_with_same_named_fields_of_different_types() {
    check(
        &publisher_query(
            "... on Agency { emailObj: email { address } } ... on Self { emailStr: email } ... on Group { emailStr: email }",
        ),
        with_publishers(json!({"emailStr": "u1@example.com"}), json!({"emailObj": {"address": "a1@example.com"}})),
    )
    .await;
}
