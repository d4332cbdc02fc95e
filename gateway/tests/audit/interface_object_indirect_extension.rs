//! Audit scenario `interface-object-indirect-extension`: subgraph `a` owns the
//! entity interface `Media` and its implementations `Video` and `Article`;
//! `b` extends `Video` directly (`authorName`) without knowing `Media`; and
//! `c` only sees `Media` as an `@interfaceObject` behind `Playlist.media`.
//! `Video` fields must be reachable both from the `media` root (with the
//! extension from `b`) and from the playlist's interface object, where only
//! `a` can tell that the media is a `Video` and give its `duration`.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// `a`'s media by id (`duration` and `wordCount` scale with the id).
fn media(typename: &str, id: &str) -> Value {
    let n: i64 = id.parse().unwrap_or(0);
    let mut out = json!({"__typename": typename, "id": id, "title": format!("title for {id}")});
    match typename {
        "Video" => out["duration"] = json!(100 * n),
        _ => out["wordCount"] = json!(900 * n),
    }
    out
}

/// `c`'s playlist by id, whose media has the same id.
fn playlist(id: &str) -> Value {
    json!({
        "__typename": "Playlist", "id": id, "name": format!("name for {id}"),
        "media": {"__typename": "Media", "id": id}
    })
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({ "media": media("Video", "1") }))
        .possible("Media", &["Video", "Article"])
        .entities(|rep| {
            let id = rep["id"].as_str().unwrap_or_default();
            match rep["__typename"].as_str() {
                // The interface resolves every media to a `Video`, which is
                // then loaded as a `Video` representation would be.
                Some("Media" | "Video") => media("Video", id),
                Some("Article") => media("Article", id),
                _ => Value::Null,
            }
        });
    let b = JsonSubgraph::new("b")
        .query(json!({"author": {"__typename": "Author", "id": "1", "name": "name for 1"}}))
        .entities(|rep| {
            let id = rep["id"].as_str().unwrap_or_default();
            match rep["__typename"].as_str() {
                Some("Author") => json!({"__typename": "Author", "id": id, "name": format!("name for {id}")}),
                Some("Video") => json!({"__typename": "Video", "id": id, "authorName": "John Doe"}),
                _ => Value::Null,
            }
        });
    let c = JsonSubgraph::new("c").query(json!({ "playlist": playlist("1") })).entities(|rep| {
        let id = rep["id"].as_str().unwrap_or_default();
        match rep["__typename"].as_str() {
            Some("Playlist") => playlist(id),
            Some("Media") => json!({"__typename": "Media", "id": id}),
            _ => Value::Null,
        }
    });
    start("interface-object-indirect-extension", vec![a, b, c]).await
}

#[tokio::test]
async fn video_fields_resolve_from_the_media_root_and_through_the_playlist_interface_object() {
    let (_subs, gateway) = suite().await;
    let query = "query { \
        media { id title ... on Video { duration authorName } ... on Article { wordCount } } \
        author { id name } \
        playlist { id name media { id ... on Video { duration } } } \
    }";
    assert_eq!(
        gateway.query(query).await,
        json!({"data": {
            "media": {"id": "1", "title": "title for 1", "duration": 100, "authorName": "John Doe"},
            "author": {"id": "1", "name": "name for 1"},
            "playlist": {"id": "1", "name": "name for 1", "media": {"id": "1", "duration": 100}}
        }})
    );
}
