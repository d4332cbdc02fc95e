//! Roles, activation, deletion and seeding.

use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

async fn demo_admin(app: &TestApp) -> String {
    app.login_body("demo_admin", "gatehouse-admin-demo-dev").await.access
}

async fn id_of(app: &TestApp, username: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1").bind(username).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn seeding_is_idempotent_and_creates_verified_demo_accounts_in_development() {
    let app = TestApp::spawn().await;
    let first = gatehouse_auth::seed::seed(&app.pool, &app.config, &app.shared).await.unwrap();
    assert!(first.created);
    assert_eq!(first.demo_accounts.len(), 3);
    let second = gatehouse_auth::seed::seed(&app.pool, &app.config, &app.shared).await.unwrap();
    assert!(!second.created);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 4);
    for demo in &first.demo_accounts {
        let response = app.login(&demo.email, &demo.password, "BODY").await;
        response.ok();
        assert_eq!(response.data("login")["user"]["roles"].as_array().unwrap().last().unwrap(), demo.role.as_str());
    }
    let admin = id_of(&app, "admin").await;
    assert_eq!(app.events(admin).await, vec![(1, "registered".to_owned())]);
}

#[tokio::test]
async fn an_admin_grants_up_to_admin_but_only_a_sys_admin_grants_sys_admin() {
    let app = TestApp::spawn().await;
    let root = app.seeded_sys_admin().await;
    let admin = demo_admin(&app).await;
    let user = app.verified_user("mona").await;

    let response = app.set_user_roles(&admin, user.id, &["ADMIN"]).await;
    response.ok();
    assert_eq!(response.data("setUserRoles")["roles"], json!(["GUEST", "USER", "ADMIN"]));
    app.set_user_roles(&admin, user.id, &["SYS_ADMIN"]).await.expect_code("FORBIDDEN");
    app.set_user_roles(&root, user.id, &["SYS_ADMIN"]).await.ok();
    app.set_user_roles(&admin, user.id, &["USER"]).await.expect_code("FORBIDDEN");
    app.set_user_roles(&root, user.id, &[]).await.expect_code("BAD_USER_INPUT");
    assert_eq!(
        app.events(user.id).await.into_iter().map(|(_, t)| t).collect::<Vec<_>>(),
        ["registered", "email_verified", "role_changed", "role_changed"]
    );
}

#[tokio::test]
async fn lowering_a_role_ends_the_sessions_that_carry_the_old_scopes() {
    let app = TestApp::spawn().await;
    let root = app.seeded_sys_admin().await;
    let user = app.verified_user("nina").await;
    app.set_user_roles(&root, user.id, &["ADMIN"]).await.ok();
    let session = app.login_body("nina", PASSWORD).await;
    app.set_user_roles(&root, user.id, &["GUEST"]).await.ok();
    app.refresh_session(&session.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn callers_without_the_admin_scope_are_not_authorized() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("otto").await;
    let access = app.login_body("otto", PASSWORD).await.access;
    app.set_user_roles(&access, user.id, &["ADMIN"]).await.expect_code("UNAUTHORIZED_FIELD_OR_TYPE");
    app.set_user_active(&access, user.id, false).await.expect_code("UNAUTHORIZED_FIELD_OR_TYPE");
    assert_eq!(app.events(user.id).await.len(), 2);
}

#[tokio::test]
async fn the_last_sys_admin_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let root = app.seeded_sys_admin().await;
    let root_id = id_of(&app, "admin").await;
    app.set_user_roles(&root, root_id, &["ADMIN"]).await.expect_code("FORBIDDEN");
    app.set_user_active(&root, root_id, false).await.expect_code("FORBIDDEN");
    app.delete_account(&root, gatehouse_auth::config::DEV_ADMIN_PASSWORD).await.expect_code("FORBIDDEN");
    // With a second SYS_ADMIN, the first may step down.
    let second = app.verified_user("pat").await;
    app.set_user_roles(&root, second.id, &["SYS_ADMIN"]).await.ok();
    app.set_user_roles(&root, root_id, &["ADMIN"]).await.ok();
}

#[tokio::test]
async fn an_admin_may_not_touch_a_sys_admin() {
    let app = TestApp::spawn().await;
    app.seeded_sys_admin().await;
    let admin = demo_admin(&app).await;
    let root_id = id_of(&app, "admin").await;
    app.set_user_active(&admin, root_id, false).await.expect_code("FORBIDDEN");
    app.set_user_roles(&admin, root_id, &["USER"]).await.expect_code("FORBIDDEN");
    app.set_user_roles(&admin, uuid::Uuid::new_v4(), &["USER"]).await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn deactivation_ends_every_session_and_blocks_login_until_reactivated() {
    let app = TestApp::spawn().await;
    app.seeded_sys_admin().await;
    let admin = demo_admin(&app).await;
    let user = app.verified_user("quinn").await;
    let session = app.login_body("quinn", PASSWORD).await;
    let response = app.set_user_active(&admin, user.id, false).await;
    response.ok();
    assert_eq!(response.data("setUserActive")["active"], json!(false));
    app.refresh_session(&session.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.login("quinn", PASSWORD, "BODY").await.expect_code("ACCOUNT_DISABLED");
    app.set_user_active(&admin, user.id, true).await.ok();
    app.login("quinn", PASSWORD, "BODY").await.ok();
    let types: Vec<String> = app.events(user.id).await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(types, ["registered", "email_verified", "active_changed", "active_changed"]);
}

#[tokio::test]
async fn deleting_an_account_needs_the_password_and_leaves_a_deleted_event() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("ruth").await;
    let session = app.login_body("ruth", PASSWORD).await;
    app.delete_account(&session.access, "not-my-password").await.expect_code("INVALID_CREDENTIALS");
    assert_eq!(app.delete_account(&session.access, PASSWORD).await.ok().data("deleteAccount"), &json!(true));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(app.events(user.id).await.last().unwrap(), &(3, "deleted".to_owned()));
    app.refresh_session(&session.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.login("ruth", PASSWORD, "BODY").await.expect_code("INVALID_CREDENTIALS");
}
