//! Federation, discovery, and mail delivery through an outage.

use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

#[tokio::test]
async fn the_service_sdl_carries_the_directives_and_entities_resolve_users() {
    let app = TestApp::spawn().await;
    let response = app.gql("{ _service { sdl } }", json!({})).await;
    response.ok();
    let sdl = response.body["data"]["_service"]["sdl"].as_str().unwrap();
    assert_eq!(sdl, gatehouse_auth::schema_sdl());
    assert!(sdl.contains("logoutAll: Int! @authenticated"));
    assert!(sdl.contains("type User @key(fields: \"id\")"));
    // An aliased request is annotated too.
    let aliased = app.gql("{ s: _service { text: sdl } }", json!({})).await;
    assert!(aliased.body["data"]["s"]["text"].as_str().unwrap().contains("@authenticated"));

    let user = app.verified_user("sara").await;
    let own = app.login_body("sara", PASSWORD).await.access;
    let entity = app.user_entity(Some(&own), user.id, "id username emailVerified roles active createdAt").await;
    entity.ok();
    let found = &entity.body["data"]["_entities"][0];
    assert_eq!(found["username"], "sara");
    assert_eq!(found["roles"], json!(["GUEST", "USER"]));
    let missing = app.user_entity(None, uuid::Uuid::new_v4(), "id").await;
    assert!(missing.body["data"]["_entities"][0].is_null(), "{:#}", missing.body);
}

#[tokio::test]
async fn account_fields_are_readable_by_their_owner_and_by_admins_only() {
    let app = TestApp::spawn().await;
    app.seeded_sys_admin().await;
    let owner = app.verified_user("tom").await;
    app.verified_user("ursula").await;
    let own = app.login_body("tom", PASSWORD).await.access;
    let stranger = app.login_body("ursula", PASSWORD).await.access;
    let admin = app.login_body("demo_admin", "gatehouse-admin-demo-dev").await.access;

    for field in ["email", "emailVerified", "roles", "active", "createdAt"] {
        let mine = app.user_entity(Some(&own), owner.id, field).await;
        assert!(!mine.ok().body["data"]["_entities"][0][field].is_null(), "{field}");
        let by_admin = app.user_entity(Some(&admin), owner.id, field).await;
        assert!(!by_admin.ok().body["data"]["_entities"][0][field].is_null(), "{field}");
        for caller in [Some(stranger.as_str()), None] {
            let refused = app.user_entity(caller, owner.id, field).await;
            refused.expect_code("FORBIDDEN");
            assert!(refused.body["data"]["_entities"][0][field].is_null(), "{field}: {:#}", refused.body);
        }
    }
    // The username stays public; the login answer's user is its owner's.
    let public = app.user_entity(Some(&stranger), owner.id, "username").await;
    assert_eq!(public.ok().body["data"]["_entities"][0]["username"], "tom");
    let login = app
        .gql(
            "mutation { login(login: \"tom\", password: $p, refreshTokenIn: BODY) { user { email roles active } } }"
                .replace("$p", &format!("{PASSWORD:?}"))
                .as_str(),
            json!({}),
        )
        .await;
    assert_eq!(login.ok().body["data"]["login"]["user"]["roles"], json!(["GUEST", "USER"]));
}

#[tokio::test]
async fn an_smtp_outage_delays_mail_without_losing_it() {
    let app = TestApp::spawn().await;
    app.smtp.set_failing(true);
    app.sign_up("walt@example.com", "walt", PASSWORD).await.ok();
    // Wait until the sender has tried and deferred the mail.
    loop {
        let attempts: Option<i32> =
            sqlx::query_scalar("SELECT attempts FROM mail_queue").fetch_optional(&app.pool).await.unwrap();
        if attempts.unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(app.smtp.messages().is_empty());
    app.smtp.set_failing(false);
    sqlx::query("UPDATE mail_queue SET next_attempt_at = now()").execute(&app.pool).await.unwrap();
    app.mail.wake.notify_one();
    let mail = app.smtp.wait_for("walt@example.com", "Code: ", 1).await;
    let code = mail.line_value("Code").unwrap();
    app.verify_email("walt@example.com", &code).await.ok();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_queue").fetch_one(&app.pool).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn readiness_follows_nats() {
    let mut nats = gatehouse_common::testing::PrivateNats::start().await;
    let url = nats.url();
    let app = TestApp::spawn_with_shared(|_| {}, move |shared| shared.nats.url = url).await;
    let ready = || async {
        let response = app.client.get(format!("{}/ready", app.address)).send().await.unwrap();
        (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
    };
    let (status, body) = ready().await;
    assert_eq!((status, &body["nats"]), (200, &serde_json::json!(true)), "{body}");
    nats.kill();
    let mut down = None;
    for _ in 0..200 {
        let (status, body) = ready().await;
        if status == 503 {
            down = Some(body);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = down.expect("not ready while NATS is down");
    assert_eq!(body["nats"], false, "{body}");
    assert_eq!(body["postgres"], true, "{body}");
    nats.restart().await;
    let mut up = false;
    for _ in 0..200 {
        if ready().await.0 == 200 {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "ready again once NATS is back");
}

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/ready", "/metrics"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
    }
}
