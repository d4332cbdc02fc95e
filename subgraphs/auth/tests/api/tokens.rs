//! Refresh tokens: rotation, grace, reuse, hostile tokens, transports, lifetimes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;

use crate::helpers::{access_claims, TestApp, COOKIE, PASSWORD};

fn refresh_token_of(response: &crate::helpers::Gql) -> String {
    response.ok();
    response.data("refreshSession")["refreshToken"].as_str().expect("a body refresh token").to_owned()
}

#[tokio::test]
async fn refreshing_rotates_the_token_and_keeps_the_session() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("rita").await;
    let first = app.login_body("rita", PASSWORD).await;
    let second = refresh_token_of(&app.refresh_session(&first.refresh).await);
    assert_ne!(second, first.refresh);
    let response = app.refresh_session(&second).await;
    let third = refresh_token_of(&response);
    let access = response.data("refreshSession")["accessToken"].as_str().unwrap();
    assert_eq!(access_claims(access)["sid"], access_claims(&first.access)["sid"]);
    assert_eq!(access_claims(access)["sub"], user.id.to_string());
    assert_ne!(third, second);
}

#[tokio::test]
async fn a_retry_within_the_grace_window_gets_the_same_successor() {
    let app = TestApp::spawn().await;
    app.verified_user("sam").await;
    let tokens = app.login_body("sam", PASSWORD).await;
    let successor = refresh_token_of(&app.refresh_session(&tokens.refresh).await);
    let retried = refresh_token_of(&app.refresh_session(&tokens.refresh).await);
    assert_eq!(retried, successor, "one family, one live token");
    refresh_token_of(&app.refresh_session(&successor).await);
}

#[tokio::test]
async fn reusing_a_token_rotated_away_earlier_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    app.verified_user("tina").await;
    let tokens = app.login_body("tina", PASSWORD).await;
    let second = refresh_token_of(&app.refresh_session(&tokens.refresh).await);
    let third = refresh_token_of(&app.refresh_session(&second).await);
    // The first token is neither current nor the one just rotated away: theft.
    app.refresh_session(&tokens.refresh).await.expect_code("REFRESH_TOKEN_REUSED");
    app.refresh_session(&third).await.expect_code("INVALID_REFRESH_TOKEN");
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    assert!(app.redis_exists(&format!("{}revoked:sid:{{{sid}}}", app.shared.redis_key_prefix)).await);
}

/// Puts a session back as it was (as a Redis failover that lost the last
/// writes would), keeping its expiry.
async fn restore_session(app: &TestApp, key: &str, fields: &[(String, String)]) {
    let mut redis = app.redis.clone();
    let _: () = redis::cmd("DEL").arg(key).query_async(&mut redis).await.unwrap();
    let _: () = redis::cmd("HSET").arg(key).arg(fields).query_async(&mut redis).await.unwrap();
    let _: () = redis::cmd("EXPIRE").arg(key).arg(3600).query_async(&mut redis).await.unwrap();
}

#[tokio::test]
async fn a_rotation_redis_lost_in_a_failover_goes_on_from_the_token_it_answered() {
    let app = TestApp::spawn().await;
    app.verified_user("lost").await;
    let tokens = app.login_body("lost", PASSWORD).await;
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    let key = format!("{}session:{{{sid}}}", app.shared.redis_key_prefix);
    let before: Vec<(String, String)> =
        redis::cmd("HGETALL").arg(&key).query_async(&mut app.redis.clone()).await.unwrap();
    let second = refresh_token_of(&app.refresh_session(&tokens.refresh).await);
    // The failover: the promoted replica never saw that rotation.
    restore_session(&app, &key, &before).await;
    // The client goes on with the token it was answered: the chain continues.
    let third = refresh_token_of(&app.refresh_session(&second).await);
    let fourth = refresh_token_of(&app.refresh_session(&third).await);
    // Still one chain: the token rotated away twice is reuse, and ends it.
    app.refresh_session(&tokens.refresh).await.expect_code("REFRESH_TOKEN_REUSED");
    app.refresh_session(&fourth).await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn a_lost_rotation_of_a_session_without_its_next_token_ends_the_family() {
    let app = TestApp::spawn().await;
    app.verified_user("older").await;
    let tokens = app.login_body("older", PASSWORD).await;
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    let key = format!("{}session:{{{sid}}}", app.shared.redis_key_prefix);
    // A session an older release wrote has no `nxt`.
    let before: Vec<(String, String)> =
        redis::cmd("HGETALL").arg(&key).query_async(&mut app.redis.clone()).await.unwrap();
    let before: Vec<(String, String)> = before.into_iter().filter(|(field, _)| field != "nxt").collect();
    let second = refresh_token_of(&app.refresh_session(&tokens.refresh).await);
    restore_session(&app, &key, &before).await;
    // The answered token looks reused: the family ends, no second chain starts.
    app.refresh_session(&second).await.expect_code("REFRESH_TOKEN_REUSED");
    app.refresh_session(&tokens.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_produce_exactly_one_new_token() {
    let app = TestApp::spawn().await;
    app.verified_user("uma").await;
    let tokens = app.login_body("uma", PASSWORD).await;
    let results = futures::future::join_all((0..50).map(|_| app.refresh_session(&tokens.refresh))).await;
    let issued: std::collections::HashSet<String> = results
        .iter()
        .filter(|r| r.body.get("errors").is_none())
        .map(|r| r.data("refreshSession")["refreshToken"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(issued.len(), 1, "{results:#?}");
    let successor = issued.into_iter().next().unwrap();
    // The family holds exactly that one live token: it rotates, the original is now stale.
    let next = refresh_token_of(&app.refresh_session(&successor).await);
    assert_ne!(next, successor);
    app.refresh_session(&tokens.refresh).await.expect_code("REFRESH_TOKEN_REUSED");
}

#[tokio::test]
async fn invalid_expired_tampered_unsigned_and_foreign_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("vera").await;
    let tokens = app.login_body("vera", PASSWORD).await;
    let claims = access_claims(&tokens.refresh);
    let parts: Vec<&str> = tokens.refresh.split('.').collect();

    let mut tampered_claims = claims.clone();
    tampered_claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 1_000_000);
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(tampered_claims.to_string()), parts[2]);

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);

    let now = chrono::Utc::now().timestamp();
    let sign = |secret: &str, claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let foreign = sign("some-other-secret-that-is-long-enough", claims.clone());
    let secret = std::fs::read_to_string(app.shared.dev_dir.join("secrets/refresh-secret")).ok();
    let mut expired_claims = claims.clone();
    expired_claims["iat"] = json!(now - 100);
    expired_claims["exp"] = json!(now - 10);
    let expired = secret.as_deref().map(|s| sign(s.trim(), expired_claims));

    let mut hostile = vec![
        "".to_owned(),
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        tampered,
        unsigned,
        foreign,
        tokens.access.clone(),
        "x".repeat(10_000),
        "' OR 1=1 --".to_owned(),
    ];
    hostile.extend(expired);
    for token in hostile {
        app.refresh_session(&token).await.expect_code("INVALID_REFRESH_TOKEN");
    }
    // None of that hurt the real session.
    refresh_token_of(&app.refresh_session(&tokens.refresh).await);
    assert_eq!(access_claims(&tokens.access)["sub"], user.id.to_string());
}

#[tokio::test]
async fn a_session_missing_from_redis_fails_closed() {
    let app = TestApp::spawn().await;
    app.verified_user("wade").await;
    let tokens = app.login_body("wade", PASSWORD).await;
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    let _: () = redis::cmd("DEL")
        .arg(format!("{}session:{{{sid}}}", app.shared.redis_key_prefix))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    app.refresh_session(&tokens.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn a_cookie_refresh_answers_in_a_cookie_and_an_argument_refresh_in_the_body() {
    let app = TestApp::spawn().await;
    app.verified_user("xena").await;
    let login = app.login("xena", PASSWORD, "COOKIE").await;
    let cookie = login.cookie(COOKIE).unwrap();
    let by_cookie = app.refresh_session_with_cookie(&cookie).await;
    by_cookie.ok();
    assert!(by_cookie.data("refreshSession")["refreshToken"].is_null());
    let rotated = by_cookie.cookie(COOKIE).expect("a new cookie");
    assert_ne!(rotated, cookie);
    let by_argument = app.refresh_session(&rotated).await;
    let body_token = refresh_token_of(&by_argument);
    assert!(by_argument.cookie(COOKIE).is_none());
    assert_ne!(body_token, rotated);
    // No token at all.
    app.gql("mutation { refreshSession { accessToken } }", json!({})).await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn rotation_never_extends_the_absolute_lifetime() {
    let app = TestApp::spawn_with(|c| {
        c.refresh_absolute_ttl_secs = 120;
        c.refresh_idle_ttl_secs = 3600;
    })
    .await;
    app.verified_user("yuri").await;
    let tokens = app.login_body("yuri", PASSWORD).await;
    let login_iat = access_claims(&tokens.refresh)["iat"].as_i64().unwrap();
    let mut token = tokens.refresh;
    for _ in 0..3 {
        token = refresh_token_of(&app.refresh_session(&token).await);
        assert!(access_claims(&token)["exp"].as_i64().unwrap() <= login_iat + 120);
    }
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}session:{{{sid}}}", app.shared.redis_key_prefix))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!((1..=120).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn redis_holds_only_hashes_of_refresh_tokens() {
    let app = TestApp::spawn().await;
    app.verified_user("zoe").await;
    let tokens = app.login_body("zoe", PASSWORD).await;
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    let jti = access_claims(&tokens.refresh)["jti"].as_str().unwrap().to_owned();
    let stored: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{}session:{{{sid}}}", app.shared.redis_key_prefix))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!(stored.values().all(|v| !v.contains(&jti) && !v.contains(&tokens.refresh)), "{stored:?}");
}
