//! Audit scenario `union-intersection`: two subgraphs declare the unions
//! `Media`/`ViewerMedia` with different members (`Book | Song` and
//! `Book | Movie`) and serve the same shareable fields, so a type condition
//! on a member one subgraph does not know must not break the answer.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

const BOOK_TITLE: &str = "Dune";
const SONG_TITLE: &str = "Blue Monday";

fn book() -> Value {
    json!({"__typename": "Book", "title": BOOK_TITLE})
}

fn song() -> Value {
    json!({"__typename": "Song", "title": SONG_TITLE})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "media": book(), "book": book(), "song": song(),
            "viewer": {"__typename": "Viewer", "media": book(), "book": book(), "song": song()}
        }))
        .possible("Media", &["Book", "Song"])
        .possible("ViewerMedia", &["Book", "Song"]);
    let b = JsonSubgraph::new("b")
        .query(json!({
            "media": book(), "book": book(),
            "viewer": {"__typename": "Viewer", "media": book(), "book": book()}
        }))
        .possible("Media", &["Book", "Movie"])
        .possible("ViewerMedia", &["Book", "Movie"]);
    start("union-intersection", vec![a, b]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

const ALL_MEMBERS: &str = "__typename ... on Song { title } ... on Movie { title } ... on Book { title }";

#[tokio::test]
async fn member_of_the_other_subgraph_only() {
    check("{ media { ... on Movie { title } } }", json!({"media": {}})).await;
}

#[tokio::test]
async fn member_of_both_subgraphs() {
    check("{ media { ... on Book { title } } }", json!({"media": {"title": BOOK_TITLE}})).await;
}

#[tokio::test]
async fn shared_and_unshared_members() {
    check("{ media { ... on Book { title } ... on Movie { title } } }", json!({"media": {"title": BOOK_TITLE}})).await;
}

#[tokio::test]
async fn nested_unions_with_every_member() {
    let query =
        format!("{{ viewer {{ media {{ {ALL_MEMBERS} }} book {{ {ALL_MEMBERS} }} song {{ {ALL_MEMBERS} }} }} }}");
    check(
        &query,
        json!({"viewer": {
            "media": {"__typename": "Book", "title": BOOK_TITLE},
            "book": {"__typename": "Book", "title": BOOK_TITLE},
            "song": {"__typename": "Song", "title": SONG_TITLE}
        }}),
    )
    .await;
}

#[tokio::test]
async fn nested_member_of_the_other_subgraph_only() {
    check("{ viewer { media { ... on Movie { title } } } }", json!({"viewer": {"media": {}}})).await;
}

#[tokio::test]
async fn nested_member_of_both_subgraphs() {
    check("{ viewer { media { ... on Book { title } } } }", json!({"viewer": {"media": {"title": BOOK_TITLE}}})).await;
}

#[tokio::test]
async fn nested_shared_and_unshared_members() {
    check(
        "{ viewer { media { ... on Book { title } ... on Movie { title } } } }",
        json!({"viewer": {"media": {"title": BOOK_TITLE}}}),
    )
    .await;
}
