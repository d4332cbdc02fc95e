//! `@interfaceObject`, interface entities, `@override` and `@shareable`.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn interface_object_fields_are_added_to_every_implementation() {
    let media = common::media::Media::start().await;
    let gateway = media.gateway().start().await;
    let response = gateway.query("{ media { __typename id title rating } }").await;
    assert_eq!(
        response,
        json!({"data": {"media": [
            {"__typename": "Book", "id": "m1", "title": "Dune", "rating": 5},
            {"__typename": "Movie", "id": "m2", "title": "Alien", "rating": 4},
            {"__typename": "Movie", "id": "m3", "title": "Heat", "rating": 3}
        ]}})
    );
    let reps = &media.ratings.recorder.bodies()[0]["variables"]["representations"];
    assert_eq!(reps[0]["__typename"], "Media", "the interface object is addressed by the interface name");
}

#[tokio::test]
async fn the_concrete_type_is_resolved_for_an_interface_object_root_field() {
    let media = common::media::Media::start().await;
    let gateway = media.gateway().start().await;
    let response = gateway
        .query("{ topRated { __typename id rating title ... on Book { author } ... on Movie { director } } }")
        .await;
    assert_eq!(
        response,
        json!({"data": {"topRated": [
            {"__typename": "Movie", "id": "m2", "rating": 4, "title": "Alien", "director": "Ridley Scott"},
            {"__typename": "Book", "id": "m1", "rating": 5, "title": "Dune", "author": "Frank Herbert"}
        ]}})
    );
}

#[tokio::test]
async fn an_overridden_field_comes_from_the_overriding_subgraph() {
    let media = common::media::Media::start().await;
    let gateway = media.gateway().start().await;
    let response = gateway.query("{ media { ... on Movie { director year } } }").await;
    assert_eq!(
        response,
        json!({"data": {"media": [
            {},
            {"director": "Ridley Scott", "year": 1979},
            {"director": "Michael Mann", "year": 1995}
        ]}})
    );
    for body in media.catalog.recorder.bodies() {
        assert!(!body["query"].as_str().unwrap().contains("director"), "{body}");
    }
}

#[tokio::test]
async fn a_shareable_root_field_is_fetched_once() {
    let media = common::media::Media::start().await;
    let gateway = media.gateway().start().await;
    let response = gateway.query("{ catalogName }").await;
    let name = response["data"]["catalogName"].as_str().unwrap();
    assert!(name == "catalog" || name == "ratings");
    assert_eq!(media.catalog.recorder.requests() + media.ratings.recorder.requests(), 1);
}

#[tokio::test]
async fn interface_object_plan_snapshots() {
    let media = common::media::Media::start().await;
    let gateway = media.gateway().start().await;
    for (name, query) in [
        ("interface_object_from_implementations", "{ media { title rating } }"),
        ("interface_object_root", "{ topRated { rating ... on Movie { director } } }"),
    ] {
        insta::assert_snapshot!(name, gateway.plan(query), query);
    }
}
