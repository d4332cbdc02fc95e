//! Audit scenario `requires-with-argument`: `@requires` selects a field with
//! an argument (`price(currency: "USD") weight`, and the nested
//! `category { averagePrice(currency: "USD") }`), so the requirement fetch has
//! to pass that argument on to the subgraph that owns the field; and
//! `Post.author` requires `comments(limit: 3) { authorId }` while the client
//! may ask the same field with another limit.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// post id, comment ids with their author (in order)
const POSTS: [(&str, [(&str, &str); 3]); 2] =
    [("p1", [("c1", "a2"), ("c2", "a2"), ("c3", "a2")]), ("p2", [("c4", "a1"), ("c5", "a1"), ("c6", "a1")])];

/// upc, name, price in USD, weight, average price of its category in USD
const PRODUCTS: [(&str, &str, i64, i64, i64); 2] = [("p1", "p-name-1", 11, 1, 11), ("p2", "p-name-2", 22, 2, 22)];

fn product(upc: &str) -> Value {
    match PRODUCTS.iter().find(|p| p.0 == upc) {
        Some((upc, name, usd, weight, average)) => json!({
            "__typename": "Product", "upc": upc, "name": name, "usd": usd, "weight": weight,
            "category": {"__typename": "Category", "usd": average}
        }),
        None => Value::Null,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = PRODUCTS.iter().map(|p| product(p.0)).collect();
    let b = JsonSubgraph::new("b")
        .query(json!({ "products": all }))
        .fields(|parent, field, args| match field {
            // Only dollars are known here; any other currency is an error.
            "price" | "averagePrice" if args["currency"] == "USD" => Some(parent["usd"].clone()),
            "price" | "averagePrice" => Some(json!({"__error": format!("unknown currency {}", args["currency"])})),
            _ => None,
        })
        .entities(|rep| product(rep["upc"].as_str().unwrap_or_default()));
    let a = JsonSubgraph::new("a").entities(|rep| {
        let estimate = match (rep["price"].as_i64(), rep["weight"].as_i64()) {
            (Some(price), Some(weight)) => json!(price * weight * 10),
            _ => json!({"__error": "price and weight are required"}),
        };
        let expensive = match rep["category"]["averagePrice"].as_i64() {
            Some(average) => json!(average > 11),
            None => json!({"__error": "category.averagePrice is required"}),
        };
        json!({"__typename": "Product", "upc": rep["upc"], "shippingEstimate": estimate, "isExpensiveCategory": expensive})
    });
    let c = JsonSubgraph::new("c")
        .query(json!({"feed": POSTS.iter().map(|p| json!({"__typename": "Post", "id": p.0})).collect::<Value>()}))
        .entities(|rep| match rep["__typename"].as_str() {
            Some("Post") => json!({"__typename": "Post", "id": rep["id"]}),
            Some("Comment") => POSTS
                .iter()
                .flat_map(|p| p.1.iter())
                .find(|k| k.0 == rep["id"])
                .map_or(Value::Null, |k| json!({"__typename": "Comment", "id": k.0, "authorId": k.1, "body": "text"})),
            _ => Value::Null,
        });
    let d = JsonSubgraph::new("d")
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Post", "comments") => {
                let post = POSTS.iter().find(|p| p.0 == parent["id"])?;
                let limit = args["limit"].as_u64().unwrap_or(0) as usize;
                Some(post.1.iter().take(limit).map(|k| json!({"__typename": "Comment", "id": k.0})).collect())
            }
            // The author is the one of the third comment the gateway sent.
            ("Post", "author") => Some(match parent["sent"].as_array() {
                Some(sent) if sent.len() == 3 => {
                    let id = &sent[2]["authorId"];
                    json!({"__typename": "Author", "id": id, "name": format!("author {}", id.as_str().unwrap_or_default())})
                }
                _ => json!({"__error": "expected the authors of exactly 3 comments"}),
            }),
            _ => None,
        })
        .entities(|rep| match rep["__typename"].as_str() {
            Some("Post") => json!({"__typename": "Post", "id": rep["id"], "sent": rep.get("comments")}),
            Some("Comment") => json!({"__typename": "Comment", "id": rep["id"]}),
            _ => Value::Null,
        });
    start("requires-with-argument", vec![a, b, c, d]).await
}

#[tokio::test]
async fn requirement_with_an_argument() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ products { upc name shippingEstimate isExpensiveCategory } }").await,
        json!({"data": {"products": [
            {"upc": "p1", "name": "p-name-1", "shippingEstimate": 110, "isExpensiveCategory": false},
            {"upc": "p2", "name": "p-name-2", "shippingEstimate": 440, "isExpensiveCategory": true}
        ]}})
    );
}

/// Each post's author, and its first comment when `with_comment`.
fn feed(with_comment: bool) -> Value {
    let posts: Vec<Value> = POSTS
        .iter()
        .map(|p| {
            let mut post = json!({"author": {"id": p.1[2].1}});
            if with_comment {
                post["comments"] = json!([{"id": p.1[0].0}]);
            }
            post
        })
        .collect();
    json!({"data": {"feed": posts}})
}

#[tokio::test]
async fn requirement_with_an_argument_on_a_list() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ feed { author { id } } }").await, feed(false));
}

#[tokio::test]
async fn required_field_also_asked_with_another_argument() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ feed { author { id } comments(limit: 1) { id } } }").await, feed(true));
}

#[tokio::test]
async fn required_field_also_asked_with_a_variable() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("query ($limit: Int = 1) { feed { author { id } comments(limit: $limit) { id } } }").await,
        feed(true)
    );
}

#[tokio::test]
async fn required_field_also_asked_in_two_fragments() {
    let (_subs, gateway) = suite().await;
    let query = "query ($limit: Int = 1) { feed { author { id } ...Foo ...Bar } } \
        fragment Foo on Post { comments(limit: $limit) { id } } \
        fragment Bar on Post { comments(limit: $limit) { id } }";
    assert_eq!(gateway.query(query).await, feed(true));
}
