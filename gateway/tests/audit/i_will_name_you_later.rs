//! Audit scenario `i-will-name-you-later`: `b` computes `Post.author` with
//! `@requires(fields: "comments(limit: 3) { authorId }")`, where `b` itself
//! resolves `Post.comments(limit:)` but `Comment.authorId` lives in `a`, which
//! also serves the `feed`. The gateway has to go `a` (feed) → `b` (the first
//! three comments of each post) → `a` (their authors) → `b` (the author, with
//! the three comments in the representation); `b` takes the third comment's
//! author. `a` also has `Comment.isCommentSpam`, which requires a list with
//! an argument through `b` (`sameCommentOnOtherPosts { comments(limit: 50) { id } }`);
//! the reference tests do not query it.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

const POSTS: [&str; 2] = ["p1", "p2"];

/// id, post id, author id, body
const COMMENTS: [(&str, &str, &str, &str); 6] = [
    ("c1", "p1", "a2", "c1-body"),
    ("c2", "p1", "a2", "c2-body"),
    ("c3", "p1", "a2", "c3-body"),
    ("c4", "p2", "a1", "c4-body"),
    ("c5", "p2", "a1", "c5-body"),
    ("c6", "p2", "a1", "c6-body"),
];

/// id, name
const AUTHORS: [(&str, &str); 2] = [("a1", "a1-name"), ("a2", "a2-name")];

/// `a`'s spam check: every post sent along must carry its comments' ids.
fn is_comment_spam(rep: &Value) -> bool {
    match rep["sameCommentOnOtherPosts"].as_array() {
        Some(posts) if !posts.is_empty() => posts.iter().all(|post| {
            post["comments"]
                .as_array()
                .is_some_and(|comments| comments.iter().all(|c| c["id"].as_str().is_some_and(|id| !id.is_empty())))
        }),
        _ => false,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let feed: Value = POSTS.iter().map(|id| json!({"__typename": "Post", "id": id})).collect();
    let a = JsonSubgraph::new("a").query(json!({ "feed": feed })).entities(|rep| {
        let id = rep["id"].as_str().unwrap_or_default();
        match rep["__typename"].as_str() {
            Some("Post") if POSTS.contains(&id) => json!({"__typename": "Post", "id": id}),
            Some("Comment") => match COMMENTS.iter().find(|c| c.0 == id) {
                Some((id, _, author, body)) => json!({
                    "__typename": "Comment", "id": id, "authorId": author, "body": body,
                    "isCommentSpam": is_comment_spam(rep)
                }),
                None => Value::Null,
            },
            _ => Value::Null,
        }
    });
    let b = JsonSubgraph::new("b")
        .entities(|rep| {
            let id = rep["id"].as_str().unwrap_or_default();
            match rep["__typename"].as_str() {
                Some("Post") if POSTS.contains(&id) => match &rep["comments"] {
                    // Without the required comments there is no author.
                    Value::Null => json!({"__typename": "Post", "id": id}),
                    Value::Array(sent) if sent.len() == 3 => {
                        json!({"__typename": "Post", "id": id, "authorId": sent[2]["authorId"]})
                    }
                    _ => json!({"__error": "Expected 3 comments"}),
                },
                Some("Comment") if COMMENTS.iter().any(|c| c.0 == id) => json!({"__typename": "Comment", "id": id}),
                _ => Value::Null,
            }
        })
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Post", "author") => {
                let author = parent["authorId"].as_str().and_then(|id| AUTHORS.iter().find(|a| a.0 == id));
                Some(match author {
                    Some((id, name)) => json!({"__typename": "Author", "id": id, "name": name}),
                    None => Value::Null,
                })
            }
            ("Post", "comments") => {
                let post = parent["id"].as_str().unwrap_or_default();
                let limit = args["limit"].as_u64().unwrap_or(0) as usize;
                Some(
                    COMMENTS
                        .iter()
                        .filter(|c| c.1 == post)
                        .take(limit)
                        .map(|c| json!({"__typename": "Comment", "id": c.0}))
                        .collect(),
                )
            }
            ("Comment", "sameCommentOnOtherPosts") => {
                let others: Vec<Value> = match COMMENTS.iter().find(|c| parent["id"] == c.0) {
                    Some(comment) => COMMENTS
                        .iter()
                        .filter(|c| c.3 == comment.3 && c.1 != comment.1)
                        .map(|c| json!({"__typename": "Post", "id": c.1}))
                        .collect(),
                    None => Vec::new(),
                };
                Some(Value::Array(others))
            }
            _ => None,
        });
    start("i-will-name-you-later", vec![a, b]).await
}

#[tokio::test]
async fn each_post_gets_the_author_of_its_third_comment_through_the_chain_of_requirements() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ feed { author { id } } }").await,
        json!({"data": {"feed": [{"author": {"id": "a2"}}, {"author": {"id": "a1"}}]}})
    );
}
