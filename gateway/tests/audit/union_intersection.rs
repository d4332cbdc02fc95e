//! Audit scenario `union-intersection`: two subgraphs declare the unions
//! `Media`/`ViewerMedia` with different members (`Book | Song` and
//! `Book | Movie`) and serve the same shareable fields, so a type condition
//! on a member one subgraph does not know must not break the answer. Each
//! subgraph also has fields of its own (`aMedia`/`aTitle` in `a`,
//! `bMedia`/`bTitle` in `b`), reached through entity calls on `Book`,
//! `Song` and `Movie`.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

const BOOK_TITLE: &str = "The Lord of the Rings";

fn book() -> Value {
    json!({
        "__typename": "Book",
        "id": "b1",
        "title": BOOK_TITLE,
        "aTitle": "A: The Lord of the Rings",
        "bTitle": "B: The Lord of the Rings"
    })
}

/// Only subgraph `a` has songs.
fn song() -> Value {
    json!({"__typename": "Song", "id": "s2", "title": "Song Title", "aTitle": "A: Song Title"})
}

/// Only subgraph `b` has movies.
fn movie() -> Value {
    json!({"__typename": "Movie", "id": "m3", "title": "A Movie Title", "bTitle": "B Movie Title"})
}

/// The entity among `known` whose typename and id the representation names.
fn entity(rep: &Value, known: &[Value]) -> Value {
    known.iter().find(|e| e["__typename"] == rep["__typename"] && e["id"] == rep["id"]).cloned().unwrap_or(Value::Null)
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "media": book(), "aMedia": book(), "book": book(), "song": song(),
            "viewer": {"__typename": "Viewer", "media": book(), "aMedia": book(), "book": book(), "song": song()}
        }))
        .possible("Media", &["Book", "Song"])
        .possible("ViewerMedia", &["Book", "Song"])
        .entities(|rep| entity(rep, &[book(), song()]));
    let b = JsonSubgraph::new("b")
        .query(json!({
            "media": book(), "bMedia": book(), "book": book(),
            "viewer": {"__typename": "Viewer", "media": book(), "bMedia": movie(), "book": book()}
        }))
        .possible("Media", &["Book", "Movie"])
        .possible("ViewerMedia", &["Book", "Movie"])
        .entities(|rep| entity(rep, &[book(), movie()]));
    start("union-intersection", vec![a, b]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

const ALL_MEMBERS: &str = "__typename ... on Song { title } ... on Movie { title } ... on Book { title }";

const ALL_MEMBERS_OWN_TITLES: &str = "__typename ... on Song { title aTitle } ... on Movie { title bTitle } \
                                      ... on Book { title aTitle bTitle }";

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

fn every_member_of_the_viewer() -> Value {
    json!({"viewer": {
        "media": {"__typename": "Book", "title": BOOK_TITLE},
        "book": {"__typename": "Book", "title": BOOK_TITLE},
        "song": {"__typename": "Song", "title": "Song Title"}
    }})
}

#[tokio::test]
async fn nested_unions_with_every_member() {
    let query =
        format!("{{ viewer {{ media {{ {ALL_MEMBERS} }} book {{ {ALL_MEMBERS} }} song {{ {ALL_MEMBERS} }} }} }}");
    check(&query, every_member_of_the_viewer()).await;
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

/// Upstream lists this case twice (its cases 3 and 7); the second copy.
#[tokio::test]
async fn nested_unions_with_every_member_listed_again() {
    let query =
        format!("{{ viewer {{ media {{ {ALL_MEMBERS} }} book {{ {ALL_MEMBERS} }} song {{ {ALL_MEMBERS} }} }} }}");
    check(&query, every_member_of_the_viewer()).await;
}

#[tokio::test]
async fn own_root_of_one_subgraph_with_a_member_only_the_other_has() {
    check("{ aMedia { ... on Movie { title bTitle } } }", json!({"aMedia": {}})).await;
}

#[tokio::test]
async fn own_root_of_one_subgraph_with_fields_of_both() {
    check(
        "{ aMedia { ... on Book { title aTitle bTitle } } }",
        json!({"aMedia": {
            "title": BOOK_TITLE,
            "aTitle": "A: The Lord of the Rings",
            "bTitle": "B: The Lord of the Rings"
        }}),
    )
    .await;
}

#[tokio::test]
async fn nested_unions_with_every_member_and_each_subgraphs_own_fields() {
    let query = format!(
        "{{ viewer {{ media {{ {ALL_MEMBERS_OWN_TITLES} }} book {{ {ALL_MEMBERS_OWN_TITLES} }} \
         song {{ {ALL_MEMBERS_OWN_TITLES} }} }} }}"
    );
    let book = json!({
        "__typename": "Book",
        "title": BOOK_TITLE,
        "aTitle": "A: The Lord of the Rings",
        "bTitle": "B: The Lord of the Rings"
    });
    check(
        &query,
        json!({"viewer": {
            "media": book,
            "book": book,
            "song": {"__typename": "Song", "title": "Song Title", "aTitle": "A: Song Title"}
        }}),
    )
    .await;
}

#[tokio::test]
async fn each_subgraphs_own_nested_field_with_a_member_only_one_has() {
    check(
        "{ viewer { aMedia { ... on Movie { title bTitle } } bMedia { ... on Movie { title bTitle } } } }",
        json!({"viewer": {"aMedia": {}, "bMedia": {"title": "A Movie Title", "bTitle": "B Movie Title"}}}),
    )
    .await;
}
