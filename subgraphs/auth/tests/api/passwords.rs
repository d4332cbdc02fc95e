//! Password change and reset.

use serde_json::json;

use crate::helpers::{TestApp, OTHER_PASSWORD, PASSWORD};

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = TestApp::spawn().await;
    app.verified_user("gus").await;
    let here = app.login_body("gus", PASSWORD).await;
    let elsewhere = app.login_body("gus", PASSWORD).await;
    app.change_password(&here.access, "wrong-current-password", OTHER_PASSWORD)
        .await
        .expect_code("INVALID_CREDENTIALS");
    app.change_password(&here.access, PASSWORD, "password").await.expect_code("BAD_USER_INPUT");
    app.change_password(&here.access, PASSWORD, OTHER_PASSWORD).await.ok();
    app.refresh_session(&elsewhere.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.refresh_session(&here.refresh).await.ok();
    app.login("gus", PASSWORD, "BODY").await.expect_code("INVALID_CREDENTIALS");
    app.login("gus", OTHER_PASSWORD, "BODY").await.ok();
}

#[tokio::test]
async fn a_reset_token_works_once_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("hugo").await;
    let session = app.login_body("hugo", PASSWORD).await;
    assert_eq!(app.request_password_reset(&user.email).await.ok().data("requestPasswordReset"), &json!(true));
    let mail = app.smtp.wait_for(&user.email, "Token: ", 1).await;
    let token = mail.line_value("Token").unwrap();
    assert!(token.len() >= 22, "at least 128 bits");
    let stored: String =
        sqlx::query_scalar("SELECT token_hash FROM password_resets").fetch_one(&app.pool).await.unwrap();
    assert_ne!(stored, token);

    app.reset_password(&token, "weak").await.expect_code("BAD_USER_INPUT");
    app.reset_password(&token, OTHER_PASSWORD).await.ok();
    app.reset_password(&token, "yet-Another-88-password").await.expect_code("BAD_USER_INPUT");
    app.refresh_session(&session.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.login("hugo", OTHER_PASSWORD, "BODY").await.ok();
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_email_answers_true_and_mails_nothing() {
    let app = TestApp::spawn().await;
    let known = app.verified_user("iris").await;
    app.request_password_reset("nobody@example.com").await.ok();
    app.request_password_reset(&known.email).await.ok();
    app.smtp.wait_for(&known.email, "Token: ", 1).await;
    assert!(app.smtp.messages_to("nobody@example.com").is_empty());
    app.request_password_reset("not an email").await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn concurrent_redemptions_of_one_reset_token_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("jade").await;
    app.request_password_reset(&user.email).await.ok();
    let token = app.smtp.wait_for(&user.email, "Token: ", 1).await.line_value("Token").unwrap();
    let results = futures::future::join_all((0..6).map(|_| app.reset_password(&token, OTHER_PASSWORD))).await;
    let successes = results.iter().filter(|r| r.body.get("errors").is_none()).count();
    assert_eq!(successes, 1, "{results:#?}");
}

#[tokio::test]
async fn expired_and_made_up_reset_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("kurt").await;
    app.request_password_reset(&user.email).await.ok();
    let token = app.smtp.wait_for(&user.email, "Token: ", 1).await.line_value("Token").unwrap();
    sqlx::query("UPDATE password_resets SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.reset_password(&token, OTHER_PASSWORD).await.expect_code("BAD_USER_INPUT");
    for made_up in ["", "x", "' OR 1=1 --", &"A".repeat(10_000)] {
        app.reset_password(made_up, OTHER_PASSWORD).await.expect_code("BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn reset_requests_are_rate_limited_per_email() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.request_password_reset("lola@example.com").await.ok();
    }
    let limited = app.request_password_reset("lola@example.com").await;
    limited.expect_code("RATE_LIMITED");
    assert!(limited.error()["extensions"]["retryAfter"].as_u64().unwrap() > 0);
}
