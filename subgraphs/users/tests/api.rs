//! The users API over HTTP: identity, authorization, pagination, search,
//! profile validation, hostile input, federation entities.

mod support;

use serde_json::{json, Value};
use uuid::Uuid;

use gatehouse_common::events::AccountChange;
use gatehouse_common::identity::IdentityCodec;
use support::{identity, TestApp, ADMIN, USER};

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

const ME: &str = "{ me { id displayName bio avatarUrl updatedAt } }";
const UPDATE: &str =
    "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id displayName bio avatarUrl } }";
const USERS: &str = "query($first: Int, $after: String, $search: String) {
    users(first: $first, after: $after, search: $search) {
        totalCount edges { cursor node { id displayName } } pageInfo { hasNextPage endCursor } } }";

#[tokio::test]
async fn me_returns_the_callers_profile_and_anonymous_callers_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada Lovelace", "USER").await;

    let body = app.graphql(ME, json!({}), Some(&identity(ada, USER))).await;
    assert_eq!(body["data"]["me"]["id"], ada.to_string());
    assert_eq!(body["data"]["me"]["displayName"], "Ada Lovelace");
    assert_eq!(body["data"]["me"]["bio"], Value::Null);

    let body = app.graphql(ME, json!({}), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!(body["data"], Value::Null);

    // Signed in, but the sign-up has not reached this service: null, not an error.
    let body = app.graphql(ME, json!({}), Some(&identity(Uuid::now_v7(), USER))).await;
    assert_eq!(body["data"]["me"], Value::Null);
    assert!(body.get("errors").is_none(), "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn user_by_id_needs_a_caller_and_hides_deactivated_users_from_other_users() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;
    let bob = app.register("bob", "Bob", "USER").await;
    let query = "query($id: ID!) { user(id: $id) { id displayName } }";

    let body = app.graphql(query, json!({ "id": bob }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let body = app.graphql(query, json!({ "id": bob }), Some(&identity(ada, USER))).await;
    assert_eq!(body["data"]["user"]["displayName"], "Bob");

    app.apply(bob, 2, AccountChange::ActiveChanged { active: false }).await;
    let body = app.graphql(query, json!({ "id": bob }), Some(&identity(ada, USER))).await;
    assert_eq!(body["data"]["user"], Value::Null);
    let body = app.graphql(query, json!({ "id": bob }), Some(&identity(bob, USER))).await;
    assert_eq!(body["data"]["user"]["displayName"], "Bob");
    let body = app.graphql(query, json!({ "id": bob }), Some(&identity(Uuid::now_v7(), ADMIN))).await;
    assert_eq!(body["data"]["user"]["displayName"], "Bob");

    let body = app.graphql(query, json!({ "id": "not-a-uuid" }), Some(&identity(ada, USER))).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    app.cleanup().await;
}

#[tokio::test]
async fn users_is_for_admins_only() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;

    let body = app.graphql(USERS, json!({}), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let body = app.graphql(USERS, json!({}), Some(&identity(ada, USER))).await;
    assert_eq!(code(&body), "FORBIDDEN");
    assert_eq!(body["data"], Value::Null);
    let body = app.graphql(USERS, json!({}), Some(&identity(Uuid::now_v7(), ADMIN))).await;
    assert_eq!(body["data"]["users"]["totalCount"], 1);
    app.cleanup().await;
}

#[tokio::test]
async fn users_pages_with_cursors_and_a_total_count() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.register(&format!("user{i}"), &format!("User {i}"), "USER").await);
    }
    ids.sort();
    let admin = identity(Uuid::now_v7(), ADMIN);

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app.graphql(USERS, json!({ "first": 2, "after": after }), Some(&admin)).await;
        let page = &body["data"]["users"];
        assert_eq!(page["totalCount"], 5, "{body}");
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ids, "every user once, in id order");

    let body = app.graphql(USERS, json!({ "first": 0 }), Some(&admin)).await;
    assert_eq!(body["data"]["users"]["edges"], json!([]));
    assert_eq!(body["data"]["users"]["pageInfo"]["hasNextPage"], true);
    app.cleanup().await;
}

#[tokio::test]
async fn users_search_matches_username_email_and_display_name_ignoring_case_and_wildcards() {
    let app = TestApp::spawn().await;
    app.register("grace", "Rear Admiral Hopper", "USER").await;
    app.register("alan", "Alan Turing", "USER").await;
    app.register("percent", "100% real", "USER").await;
    let admin = identity(Uuid::now_v7(), ADMIN);
    let names = |body: &Value| -> Vec<String> {
        body["data"]["users"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| e["node"]["displayName"].as_str().unwrap().to_owned())
            .collect()
    };

    let body = app.graphql(USERS, json!({ "search": "HOPPER" }), Some(&admin)).await;
    assert_eq!(names(&body), ["Rear Admiral Hopper"]);
    assert_eq!(body["data"]["users"]["totalCount"], 1);
    let body = app.graphql(USERS, json!({ "search": "alan@example" }), Some(&admin)).await;
    assert_eq!(names(&body), ["Alan Turing"]);
    let body = app.graphql(USERS, json!({ "search": "GRAC" }), Some(&admin)).await;
    assert_eq!(names(&body), ["Rear Admiral Hopper"]);
    // `%` and `_` are text, not wildcards.
    let body = app.graphql(USERS, json!({ "search": "%" }), Some(&admin)).await;
    assert_eq!(names(&body), ["100% real"]);
    let body = app.graphql(USERS, json!({ "search": "_" }), Some(&admin)).await;
    assert_eq!(names(&body), Vec::<String>::new());
    let body = app.graphql(USERS, json!({ "search": "'; DROP TABLE users; --" }), Some(&admin)).await;
    assert_eq!(names(&body), Vec::<String>::new());
    assert_eq!(app.user_count().await, 3);
    app.cleanup().await;
}

#[tokio::test]
async fn update_profile_edits_the_callers_profile_and_refuses_invalid_values() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;
    let caller = identity(ada, USER);

    let input = json!({ "displayName": "  Countess of Lovelace ", "bio": "Analyst.\nPoet.", "avatarUrl": "https://cdn.example.com/ada.png" });
    let body = app.graphql(UPDATE, json!({ "input": input }), Some(&caller)).await;
    let user = &body["data"]["updateProfile"];
    assert_eq!(user["displayName"], "Countess of Lovelace", "{body}");
    assert_eq!(user["bio"], "Analyst.\nPoet.");
    assert_eq!(user["avatarUrl"], "https://cdn.example.com/ada.png");

    // Absent fields stay; null clears.
    let body = app.graphql(UPDATE, json!({ "input": { "bio": null } }), Some(&caller)).await;
    assert_eq!(body["data"]["updateProfile"]["displayName"], "Countess of Lovelace");
    assert_eq!(body["data"]["updateProfile"]["bio"], Value::Null);
    assert_eq!(body["data"]["updateProfile"]["avatarUrl"], "https://cdn.example.com/ada.png");

    let invalid = [
        (json!({ "displayName": "" }), "displayName"),
        (json!({ "displayName": "   " }), "displayName"),
        (json!({ "displayName": "x".repeat(65) }), "displayName"),
        (json!({ "displayName": "tab\u{1b}[31m" }), "displayName"),
        (json!({ "bio": "x".repeat(501) }), "bio"),
        (json!({ "avatarUrl": "http://cdn.example.com/a.png" }), "avatarUrl"),
        (json!({ "avatarUrl": "javascript:alert(1)" }), "avatarUrl"),
        (json!({ "avatarUrl": "https://user:pw@example.com/a.png" }), "avatarUrl"),
    ];
    for (input, field) in invalid {
        let body = app.graphql(UPDATE, json!({ "input": input }), Some(&caller)).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{input} → {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let body = app.graphql(ME, json!({}), Some(&caller)).await;
    assert_eq!(body["data"]["me"]["displayName"], "Countess of Lovelace", "refused edits changed nothing");

    let body = app.graphql(UPDATE, json!({ "input": { "bio": "hi" } }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    app.apply(ada, 2, AccountChange::ActiveChanged { active: false }).await;
    let body = app.graphql(UPDATE, json!({ "input": { "bio": "hi" } }), Some(&caller)).await;
    assert_eq!(code(&body), "ACCOUNT_DISABLED");
    app.cleanup().await;
}

#[tokio::test]
async fn hostile_requests_get_stable_error_codes() {
    let app = TestApp::spawn().await;
    let admin = identity(Uuid::now_v7(), ADMIN);
    let header = app.sign(&admin);

    let (_, body) = app.post(json!({ "query": "{ me { id " }), Some(&header)).await;
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    let (_, body) = app.post(json!({ "query": "{ me { password } }" }), Some(&header)).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let (_, body) = app.post(json!({ "query": USERS, "variables": { "first": "ten" } }), Some(&header)).await;
    assert!(body["errors"][0]["extensions"]["code"].is_string(), "{body}");

    for variables in [
        json!({ "after": "garbage" }),
        json!({ "after": "dXNlcjpub3QtYS11dWlk" }),
        json!({ "first": 1000 }),
        json!({ "first": -1 }),
        json!({ "search": "x".repeat(101) }),
        // PostgreSQL cannot store or compare a NUL: the input's fault, not ours.
        json!({ "search": "ad\u{0}min" }),
    ] {
        let body = app.graphql(USERS, variables.clone(), Some(&admin)).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{variables} → {body}");
    }

    let me = identity(app.register("nul", "Nul", "USER").await, USER);
    // (An avatar URL with a NUL is percent-encoded by URL parsing, so it is stored safely.)
    for input in [json!({ "bio": "a\u{0}b" }), json!({ "displayName": "N\u{0}l" })] {
        let body = app
            .graphql(
                "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }",
                json!({ "i": input }),
                Some(&me),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{input} → {body}");
    }

    // Thousands of aliases: refused by the complexity limit before any resolver runs.
    let wide: String = (0..2_100).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let (_, body) = app.post(json!({ "query": format!("{{ {wide} }}") }), Some(&header)).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{}", &body.to_string()[..200.min(body.to_string().len())]);

    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");

    let huge = json!({ "query": format!("{{ me {{ id }} }} #{}", "x".repeat(100_000)) });
    let (status, _) = app.post(huge.clone(), Some(&header)).await;
    assert_eq!(status, 413);
    // The refused body ends its connection, and the answer says so.
    let response = app.http.post(format!("{}/graphql", app.address)).json(&huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["connection"], "close");
    app.cleanup().await;
}

#[tokio::test]
async fn a_forged_stale_or_malformed_identity_header_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;
    let claimed = identity(ada, ADMIN);
    let now = chrono::Utc::now().timestamp();
    let forger = IdentityCodec::new(&secrecy::SecretString::from("not-the-gateway-secret".to_owned()), 30);

    let cases = [
        ("another secret", forger.sign(&claimed, now)),
        ("stale", app.codec.sign(&claimed, now - 3_600)),
        ("from the future", app.codec.sign(&claimed, now + 3_600)),
        ("garbage", "v1.garbage.garbage".to_owned()),
        ("empty", String::new()),
    ];
    for (what, header) in cases {
        let (status, body) = app.post(json!({ "query": ME }), Some(&header)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{what}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("forwarded identity refused"), "{what}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn entities_resolve_the_profile_fields_of_users_from_other_subgraphs() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id displayName bio } } }";
    let reps = json!([{ "__typename": "User", "id": ada }, { "__typename": "User", "id": Uuid::now_v7() }]);
    let body = app.graphql(query, json!({ "r": reps }), None).await;
    assert_eq!(body["data"]["_entities"][0]["displayName"], "Ada", "{body}");
    assert_eq!(body["data"]["_entities"][1], Value::Null);
    app.cleanup().await;
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let health = app.http.get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(format!("{}/ready", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn the_running_subgraph_serves_the_same_sdl_as_the_composition_script() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ _service { sdl } }", json!({}), None).await;
    assert_eq!(body["data"]["_service"]["sdl"].as_str().unwrap(), gatehouse_users::schema_sdl());
    app.cleanup().await;
}

#[tokio::test]
async fn metrics_expose_the_projection_lag_and_outcomes() {
    let app = TestApp::spawn().await;
    app.register("ada", "Ada", "USER").await;
    let metrics = app.http.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let lag = format!("gatehouse_users_projection_lag_events{{consumer=\"{}\"}}", app.config.projection_consumer);
    assert!(metrics.contains(&lag), "{metrics}");
    assert!(metrics.contains("gatehouse_users_projection_events_total{outcome=\"applied\"}"), "{metrics}");
    app.cleanup().await;
}
