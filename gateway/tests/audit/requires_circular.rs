//! Audit scenario `requires-circular`: the two subgraphs require from each
//! other. `b` computes `Post.byNovice` from `author { yearsOfExperience }`,
//! which only `a` resolves, and `a` computes `Post.byExpert` from `byNovice`.
//! No subgraph can answer a requirement alone, so the gateway has to relay
//! back and forth: `a` (feed) → `b` (author ids) → `a` (years of experience)
//! → `b` (byNovice) and, for `byExpert`, → `a` once more.

use crate::{audit_support, common};

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

/// author id, name, years of experience
const AUTHORS: [(&str, &str, i64); 2] = [("a1", "John", 5), ("a2", "Jane", 20)];

/// post id, author id
const POSTS: [(&str, &str); 2] = [("p1", "a1"), ("p2", "a2")];

fn authors() -> Value {
    AUTHORS
        .iter()
        .map(|(id, name, years)| json!({"__typename": "Author", "id": id, "name": name, "yearsOfExperience": years}))
        .collect()
}

fn post_author(post_id: &Value) -> Option<&'static str> {
    POSTS.iter().find(|p| p.0 == *post_id).map(|p| p.1)
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let feed: Value = POSTS.iter().map(|p| json!({"__typename": "Post", "id": p.0})).collect();
    let a = JsonSubgraph::new("a")
        .query(json!({ "feed": feed }))
        .entities(|rep| match rep["__typename"].as_str() {
            Some("Post") if post_author(&rep["id"]).is_some() => {
                let mut post = json!({"__typename": "Post", "id": rep["id"]});
                if let Some(by_novice) = rep.get("byNovice") {
                    post["byNovice"] = by_novice.clone();
                }
                post
            }
            Some("Author") => find_by(&authors(), "id", rep),
            _ => Value::Null,
        })
        .fields(|parent, field, _| match (parent["__typename"].as_str()?, field) {
            // Computed only from the `byNovice` the gateway sent along.
            ("Post", "byExpert") => Some(match parent.get("byNovice").and_then(Value::as_bool) {
                Some(by_novice) => json!(!by_novice),
                None => json!({"__error": "byNovice is required to compute byExpert"}),
            }),
            _ => None,
        });
    let b = JsonSubgraph::new("b")
        .entities(|rep| {
            if rep["__typename"] != "Post" {
                return Value::Null;
            }
            let Some(author_id) = post_author(&rep["id"]) else {
                return Value::Null;
            };
            // The author as known here (its id), with what the gateway sent.
            let mut author = json!({"__typename": "Author", "id": author_id});
            if let Some(sent) = rep.get("author").and_then(Value::as_object) {
                for (k, v) in sent {
                    author[k.as_str()] = v.clone();
                }
            }
            json!({"__typename": "Post", "id": rep["id"], "author": author})
        })
        .fields(|parent, field, _| match (parent["__typename"].as_str()?, field) {
            // Computed only from the `author { yearsOfExperience }` the gateway sent along.
            ("Post", "byNovice") => Some(match parent["author"].get("yearsOfExperience").and_then(Value::as_i64) {
                Some(years) => json!(years < 10),
                None => json!({"__error": "author.yearsOfExperience is required to compute byNovice"}),
            }),
            _ => None,
        });
    start("requires-circular", vec![a, b]).await
}

#[tokio::test]
async fn a_requirement_on_a_field_of_the_other_subgraph_is_relayed() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ feed { byNovice } }").await,
        json!({"data": {"feed": [{"byNovice": true}, {"byNovice": false}]}})
    );
}

#[tokio::test]
async fn a_requirement_that_itself_requires_from_the_first_subgraph_is_relayed() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ feed { byExpert } }").await,
        json!({"data": {"feed": [{"byExpert": false}, {"byExpert": true}]}})
    );
}
