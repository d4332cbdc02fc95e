//! Logout, session listing and revocation, and the identity header.

use futures::StreamExt;
use serde_json::json;

use gatehouse_common::identity::{Identity, IdentityCodec, IDENTITY_HEADER};

use crate::helpers::{access_claims, TestApp, COOKIE, PASSWORD};

fn sid_of(access: &str) -> String {
    access_claims(access)["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn logout_revokes_the_session_leaves_a_record_and_announces_it_on_nats() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("abel").await;
    let tokens = app.login_body("abel", PASSWORD).await;
    let subject = format!("{}.session.revoked", app.shared.events_subject_prefix);
    let mut notices = app.nats.subscribe(subject).await.unwrap();
    app.nats.flush().await.unwrap();

    assert_eq!(app.logout(&tokens.refresh).await.ok().data("logout"), &json!(true));
    let sid = sid_of(&tokens.access);
    let key = format!("{}revoked:sid:{{{sid}}}", app.shared.redis_key_prefix);
    assert!(app.redis_exists(&key).await);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut app.redis.clone()).await.unwrap();
    assert!(ttl >= 900, "the record outlives every access token of the session: {ttl}");

    let notice = tokio::time::timeout(std::time::Duration::from_secs(10), notices.next()).await.unwrap().unwrap();
    let notice: serde_json::Value = serde_json::from_slice(&notice.payload).unwrap();
    assert_eq!(notice["sid"], sid);
    assert_eq!(notice["user_id"], user.id.to_string());
    assert_eq!(notice["reason"], "logout");

    app.refresh_session(&tokens.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    // Logging out twice is harmless; a forged token is refused.
    app.logout(&tokens.refresh).await.ok();
    app.logout("not-a-token").await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn logout_with_the_cookie_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    app.verified_user("bria").await;
    let cookie = app.login("bria", PASSWORD, "COOKIE").await.cookie(COOKIE).unwrap();
    let response = app.logout_with_cookie(&cookie).await;
    response.ok();
    let cleared = response.set_cookies.iter().find(|c| c.starts_with(COOKIE)).unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    app.refresh_session_with_cookie(&cookie).await.expect_code("INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_caller_and_no_one_else() {
    let app = TestApp::spawn().await;
    app.verified_user("cody").await;
    app.verified_user("dina").await;
    let a = app.login_body("cody", PASSWORD).await;
    let b = app.login_body("cody", PASSWORD).await;
    let other = app.login_body("dina", PASSWORD).await;
    assert_eq!(app.logout_all(&a.access).await.ok().data("logoutAll"), &json!(2));
    app.refresh_session(&a.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.refresh_session(&b.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.refresh_session(&other.refresh).await.ok();
}

#[tokio::test]
async fn users_list_and_revoke_only_their_own_sessions() {
    let app = TestApp::spawn().await;
    let eve = app.verified_user("eve").await;
    let fred = app.verified_user("fred").await;
    let first = app.login_body("eve", PASSWORD).await;
    let second = app.login_body("eve", PASSWORD).await;
    let freds = app.login_body("fred", PASSWORD).await;

    let listed = app.user_entity(Some(&first.access), eve.id, "sessions { id current expiresAt }").await;
    listed.ok();
    let sessions = listed.body["data"]["_entities"][0]["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let current: Vec<&serde_json::Value> = sessions.iter().filter(|s| s["current"] == json!(true)).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], sid_of(&first.access));

    // Someone else's sessions are not listed and cannot be revoked.
    app.user_entity(Some(&first.access), fred.id, "sessions { id }").await.expect_code("FORBIDDEN");
    assert_eq!(
        app.revoke_session(&first.access, &sid_of(&freds.access)).await.ok().data("revokeSession"),
        &json!(false)
    );
    app.refresh_session(&freds.refresh).await.ok();

    assert_eq!(
        app.revoke_session(&first.access, &sid_of(&second.access)).await.ok().data("revokeSession"),
        &json!(true)
    );
    app.refresh_session(&second.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.revoke_session(&first.access, "not-a-uuid").await.ok();
}

#[tokio::test]
async fn guarded_operations_refuse_anonymous_callers() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::new_v4();
    for query in [
        "mutation { logoutAll }".to_owned(),
        format!("mutation {{ revokeSession(id: \"{id}\") }}"),
        "mutation { changePassword(currentPassword: \"a\", newPassword: \"b\") }".to_owned(),
        "mutation { deleteAccount(password: \"a\") }".to_owned(),
        format!("mutation {{ setUserRoles(userId: \"{id}\", roles: [ADMIN]) {{ id }} }}"),
        format!("mutation {{ setUserActive(userId: \"{id}\", active: false) {{ id }} }}"),
    ] {
        app.gql(&query, json!({})).await.expect_code("UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn an_outside_providers_caller_is_anonymous_here_whatever_its_roles() {
    let app = TestApp::spawn().await;
    app.verified_user("olga").await;
    let olga = app.login_body("olga", PASSWORD).await;
    let olga_id = access_claims(&olga.access)["sub"].as_str().unwrap().to_owned();
    // Signed by the real gateway secret, as the gateway signs a caller whose
    // token an outside provider issued with an `admin` role.
    let mut outsider = Identity::new(
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        vec!["guest".into(), "user".into(), "admin".into(), "sys_admin".into()],
    );
    outsider.external =
        Some(gatehouse_common::identity::ExternalSubject { provider: "keycloak".into(), subject: olga_id.clone() });
    let header = app.codec.sign(&outsider, chrono::Utc::now().timestamp());
    for query in [
        format!("mutation {{ setUserRoles(userId: \"{olga_id}\", roles: [ADMIN]) {{ id }} }}"),
        format!("mutation {{ setUserActive(userId: \"{olga_id}\", active: false) {{ id }} }}"),
        "mutation { logoutAll }".to_owned(),
    ] {
        let response = app.post(&query, json!({}), &[(IDENTITY_HEADER, header.clone())]).await;
        response.expect_code("UNAUTHENTICATED");
    }
    // Olga's own session was untouched by any of it.
    app.logout_all(&olga.access).await.ok();
}

#[tokio::test]
async fn forged_malformed_and_stale_identity_headers_are_refused() {
    let app = TestApp::spawn().await;
    let identity = Identity::new(
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        vec!["guest".into(), "user".into(), "admin".into(), "sys_admin".into()],
    );
    let now = chrono::Utc::now().timestamp();
    let forger = IdentityCodec::new(&secrecy::SecretString::from("not-the-gateway-secret-at-all-000".to_owned()), 30);
    for header in [
        forger.sign(&identity, now),
        app.codec.sign(&identity, now - 3600),
        "v1.e30.AAAA".to_owned(),
        "garbage".to_owned(),
    ] {
        let response = app.post("mutation { logoutAll }", json!({}), &[(IDENTITY_HEADER, header)]).await;
        assert_eq!(response.status, reqwest::StatusCode::UNAUTHORIZED);
        response.expect_code("UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn guarded_operations_refuse_an_access_token_of_a_revoked_session() {
    let app = TestApp::spawn().await;
    app.verified_user("gwen").await;
    let tokens = app.login_body("gwen", PASSWORD).await;
    app.logout(&tokens.refresh).await.ok();
    // The gateway would refuse this token; the subgraph refuses it too.
    app.logout_all(&tokens.access).await.expect_code("UNAUTHENTICATED");
    app.change_password(&tokens.access, PASSWORD, "fresh-Orchard-63-beacon").await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_without_a_token_ends_the_callers_current_session_only() {
    let app = TestApp::spawn().await;
    app.verified_user("hana").await;
    let here = app.login_body("hana", PASSWORD).await;
    let elsewhere = app.login_body("hana", PASSWORD).await;
    assert_eq!(app.gql_as(&here.access, "mutation { logout }", json!({})).await.ok().data("logout"), &json!(true));
    app.refresh_session(&here.refresh).await.expect_code("INVALID_REFRESH_TOKEN");
    app.refresh_session(&elsewhere.refresh).await.ok();
    // Anonymous and tokenless: nothing to end.
    assert_eq!(app.gql("mutation { logout }", json!({})).await.ok().data("logout"), &json!(false));
}

#[tokio::test]
async fn logout_after_redis_lost_the_session_still_revokes_it() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("lena").await;
    let tokens = app.login_body("lena", PASSWORD).await;
    let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
    // Redis loses the session (eviction, a failover that lost the last writes).
    let session_key = format!("{}session:{{{sid}}}", app.shared.redis_key_prefix);
    let _: () = redis::cmd("DEL").arg(&session_key).query_async(&mut app.redis.clone()).await.unwrap();
    assert!(app.logout(&tokens.refresh).await.ok().data("logout") == &json!(true));
    // The record the gateways check is there all the same.
    assert!(app.redis_exists(&format!("{}revoked:sid:{{{sid}}}", app.shared.redis_key_prefix)).await);
    assert!(user.id != uuid::Uuid::nil());
}

#[tokio::test]
async fn sessions_an_older_release_wrote_without_hash_tags_keep_working_after_the_upgrade() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("olga").await;
    let (first, second) = (app.login_body("olga", PASSWORD).await, app.login_body("olga", PASSWORD).await);
    let prefix = app.shared.redis_key_prefix.clone();
    // Put both sessions and the user's set back where the release before
    // hash tags kept them.
    let mut redis = app.redis.clone();
    let sids: Vec<String> =
        [&first, &second].iter().map(|t| access_claims(&t.access)["sid"].as_str().unwrap().to_owned()).collect();
    for sid in &sids {
        let _: () = redis::cmd("RENAME")
            .arg(format!("{prefix}session:{{{sid}}}"))
            .arg(format!("{prefix}session:{sid}"))
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("RENAME")
        .arg(format!("{prefix}user-sessions:{{{}}}", user.id))
        .arg(format!("{prefix}user-sessions:{}", user.id))
        .query_async(&mut redis)
        .await
        .unwrap();

    // The owner still sees both sessions, and the old set moved to its new name.
    let listed = app.user_entity(Some(&first.access), user.id, "sessions { id }").await;
    assert_eq!(listed.ok().data("_entities")[0]["sessions"].as_array().map(Vec::len), Some(2));
    assert!(!app.redis_exists(&format!("{prefix}user-sessions:{}", user.id)).await);
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}user-sessions:{{{}}}", user.id))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!(ttl > 0, "the carried set expires as the old one would: {ttl}");
    // Rotation finds the old session and moves it to its new name.
    let rotated = app.refresh_session(&first.refresh).await;
    assert!(rotated.ok().data("refreshSession")["accessToken"].is_string());
    assert!(app.redis_exists(&format!("{prefix}session:{{{}}}", sids[0])).await);
    assert!(!app.redis_exists(&format!("{prefix}session:{}", sids[0])).await);
    // Logout of the other, still under its old name, revokes it for good.
    let logout = app.logout(&second.refresh).await;
    assert_eq!(logout.ok().data("logout"), &json!(true));
    assert!(!app.redis_exists(&format!("{prefix}session:{}", sids[1])).await);
    assert!(app.redis_exists(&format!("{prefix}revoked:sid:{{{}}}", sids[1])).await);
    let refused = app.refresh_session(&second.refresh).await;
    assert_eq!(refused.code().as_deref(), Some("INVALID_REFRESH_TOKEN"));
}

#[tokio::test]
async fn a_login_prunes_the_ids_of_sessions_that_ended() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("mona").await;
    let set = format!("{}user-sessions:{{{}}}", app.shared.redis_key_prefix, user.id);
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(app.login_body("mona", PASSWORD).await);
    }
    // Their sessions end without a logout (expiry, as an idle user's would).
    for tokens in &first {
        let sid = access_claims(&tokens.access)["sid"].as_str().unwrap().to_owned();
        let key = format!("{}session:{{{sid}}}", app.shared.redis_key_prefix);
        let _: () = redis::cmd("DEL").arg(key).query_async(&mut app.redis.clone()).await.unwrap();
    }
    let members: i64 = redis::cmd("SCARD").arg(&set).query_async(&mut app.redis.clone()).await.unwrap();
    assert_eq!(members, 3);
    let latest = app.login_body("mona", PASSWORD).await;
    let members: Vec<String> = redis::cmd("SMEMBERS").arg(&set).query_async(&mut app.redis.clone()).await.unwrap();
    assert_eq!(members, vec![access_claims(&latest.access)["sid"].as_str().unwrap().to_owned()]);
}

#[tokio::test]
async fn a_redis_outage_is_service_unavailable_within_seconds_and_passes() {
    let mut redis = gatehouse_common::testing::PrivateRedis::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with_shared(|_| {}, move |shared| shared.redis_url = url).await;
    app.verified_user("nina").await;
    let tokens = app.login_body("nina", PASSWORD).await;

    redis.kill();
    let started = std::time::Instant::now();
    let login = app.login("nina", PASSWORD, "BODY").await;
    let refresh = app.refresh_session(&tokens.refresh).await;
    // A client is told to retry, promptly, rather than left hanging or told
    // the server broke.
    assert_eq!(login.code().as_deref(), Some("SERVICE_UNAVAILABLE"), "{:#}", login.body);
    assert_eq!(refresh.code().as_deref(), Some("SERVICE_UNAVAILABLE"), "{:#}", refresh.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "answered after {:?}", started.elapsed());

    redis.restart().await;
    // Redis came back empty: the session is gone, but logins work again.
    let mut answered = None;
    for _ in 0..100 {
        let login = app.login("nina", PASSWORD, "BODY").await;
        if login.code().is_none() {
            answered = Some(login);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    answered.expect("logins work once Redis is back").ok();
}

#[tokio::test]
async fn a_login_whose_answer_is_null_ends_the_session_it_started() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("olive").await;
    // `sessions` needs a signed-in caller; by the supergraph's non-null rules
    // its error nulls `user: User!`, then `login: AuthPayload!`, then
    // `data`: through the gateway, nobody gets the tokens.
    let query = format!(
        "mutation {{ login(login: \"olive\", password: {PASSWORD:?}, refreshTokenIn: COOKIE) {{ accessToken user {{ sessions {{ id }} }} }} }}"
    );
    let response = app.gql(&query, json!({})).await;
    assert_eq!(response.code().as_deref(), Some("UNAUTHENTICATED"), "{:#}", response.body);
    assert!(response.set_cookies.is_empty(), "no cookie for an answer nobody got: {:?}", response.set_cookies);
    assert!(app.service.sessions(user.id).await.unwrap().is_empty(), "the session was ended");
    // A login whose answer arrives keeps its session.
    let tokens = app.login_body("olive", PASSWORD).await;
    let sessions = app.service.sessions(user.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id.to_string(), sid_of(&tokens.access));
}
