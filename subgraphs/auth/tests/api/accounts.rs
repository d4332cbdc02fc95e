//! Sign-up, email verification, resend, login.

use serde_json::json;

use crate::helpers::{access_claims, jwt_header, TestApp, COOKIE, DEVICE_COOKIE, PASSWORD};

#[tokio::test]
async fn a_new_account_is_unverified_gets_a_code_by_mail_and_writes_a_registered_event() {
    let app = TestApp::spawn().await;
    app.sign_up("Alice@Example.com", "alice", PASSWORD).await.ok();
    let mail = app.smtp.wait_for("alice@example.com", "Code: ", 1).await;
    let code = mail.line_value("Code").unwrap();
    assert_eq!(code.len(), 6);

    let (id, verified, role): (uuid::Uuid, bool, String) =
        sqlx::query_as("SELECT id, email_verified, role FROM accounts WHERE email = 'alice@example.com'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!verified);
    assert_eq!(role, "USER");
    assert_eq!(app.events(id).await, vec![(1, "registered".to_owned())]);

    // The code is stored only as a keyed hash.
    let stored: String = sqlx::query_scalar("SELECT code_hash FROM email_verifications WHERE account_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, code);
    assert!(!stored.contains(&code));
}

#[tokio::test]
async fn signing_up_with_a_taken_email_answers_true_and_warns_the_owner() {
    let app = TestApp::spawn().await;
    app.verified_user("bob").await;
    let again = app.sign_up("BOB@example.com", "bobby", PASSWORD).await;
    again.ok();
    assert_eq!(again.data("signUp"), &json!(true));
    app.smtp.wait_for("bob@example.com", "tried to create", 1).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_taken_username_answers_like_a_taken_email_and_tells_the_address_by_mail() {
    let app = TestApp::spawn().await;
    app.sign_up("carol@example.com", "carol", PASSWORD).await.ok();
    let taken = app.sign_up("other@example.com", "Carol", PASSWORD).await;
    let fresh = app.sign_up("new@example.com", "someone_new", PASSWORD).await;
    // The same answer a free username gets: nothing to tell the two apart.
    assert_eq!(taken.body, fresh.body);
    assert_eq!(taken.data("signUp"), &json!(true));
    let mail = app.smtp.wait_for("other@example.com", "another account has", 1).await;
    assert!(mail.data.contains("\"carol\""), "{}", mail.data);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 2, "carol and someone_new");
}

#[tokio::test]
async fn queued_mail_keeps_no_code_in_its_row_and_goes_when_the_code_expires() {
    // No SMTP server answers: the mail stays queued.
    let app = TestApp::spawn_with(|c| c.smtp_url = Some("smtp://127.0.0.1:9".into())).await;
    app.sign_up("gina@example.com", "gina", PASSWORD).await.ok();
    let (body, sealed): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT body, sealed_secret FROM mail_queue").fetch_one(&app.pool).await.unwrap();
    let code_line = body.lines().find(|l| l.starts_with("Code: ")).expect("a code line");
    assert!(!code_line.chars().any(|c| c.is_ascii_digit()), "the code is in the row: {code_line}");
    let sealed = sealed.expect("the code is sealed");
    assert!(sealed.len() > 12 + 6, "nonce, code and tag");
    // Its code expires unsent: the row goes, and nothing is sent.
    sqlx::query("UPDATE mail_queue SET expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    app.mail.try_send_next().await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_queue").fetch_one(&app.pool).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn nul_bytes_anywhere_are_bad_user_input() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("hana").await;
    let access = app.login_body("hana", PASSWORD).await.access;
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("mutation($l: String!) { login(login: $l, password: \"x\") { accessToken } }", json!({ "l": "ha\u{0}na" })),
        ("mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": "hana\u{0}@example.com" })),
        ("mutation($e: String!) { resendVerificationEmail(email: $e) }", json!({ "e": "x\u{0}@example.com" })),
        ("mutation($e: String!) { verifyEmail(email: $e, code: \"12\\u0000\") }", json!({ "e": "hana@example.com" })),
        (
            "mutation($t: String!) { resetPassword(token: $t, newPassword: \"plinth-Quarry-48\") }",
            json!({ "t": "a\u{0}b" }),
        ),
        (
            "mutation($i: SignUpInput!) { signUp(input: $i) }",
            json!({ "i": { "email": "ivy@example.com", "username": "ivy", "password": PASSWORD, "displayName": "I\u{0}vy" } }),
        ),
    ];
    for (query, variables) in cases {
        let response = app.gql(query, variables.clone()).await;
        assert_eq!(response.code().as_deref(), Some("BAD_USER_INPUT"), "{query} {variables}: {:#}", response.body);
    }
    let revoke = app.gql_as(&access, "mutation { revokeSession(id: \"a\\u0000b\") }", json!({})).await;
    assert!(revoke.code().as_deref() != Some("INTERNAL_SERVER_ERROR"), "{:#}", revoke.body);
    assert!(user.id != uuid::Uuid::nil());
}

#[tokio::test]
async fn malformed_and_hostile_emails_are_refused_as_bad_user_input() {
    let app = TestApp::spawn().await;
    for email in [
        "not-an-email",
        "a@b",
        "dave@example.com\r\nBcc: victim@example.com",
        "dave@example.com\nSubject: hi",
        "'; DROP TABLE accounts; --@example.com",
        "dave@exam ple.com",
        &format!("{}@example.com", "d".repeat(300)),
    ] {
        let response = app.sign_up(email, "dave", PASSWORD).await;
        response.expect_code("BAD_USER_INPUT");
        assert_eq!(response.error()["extensions"]["field"], "email", "{email:?}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);
    assert!(app.smtp.messages().is_empty());
}

#[tokio::test]
async fn weak_short_oversized_and_injected_inputs_are_refused() {
    let app = TestApp::spawn().await;
    for password in ["short", "password1", "12345678", "erin_example", &"Zq8v!x".repeat(30)] {
        let response = app.sign_up("erin@example.com", "erin_example", password).await;
        response.expect_code("BAD_USER_INPUT");
        assert_eq!(response.error()["extensions"]["field"], "password", "{password:?}");
    }
    for username in ["ab", "erin'; DROP TABLE accounts;--", "erin\r\nX-Injected: 1", &"e".repeat(33), "érin"] {
        let response = app.sign_up("erin@example.com", username, PASSWORD).await;
        response.expect_code("BAD_USER_INPUT");
        assert_eq!(response.error()["extensions"]["field"], "username", "{username:?}");
    }
    let response = app
        .gql(
            "mutation($i: SignUpInput!) { signUp(input: $i) }",
            json!({ "i": { "email": "erin@example.com", "username": "erin", "password": PASSWORD, "displayName": "Erin\r\nBcc: x@y.z" } }),
        )
        .await;
    response.expect_code("BAD_USER_INPUT");
    // A body far beyond the limit is refused before any parsing.
    let huge = app.sign_up("erin@example.com", &"e".repeat(200_000), PASSWORD).await;
    assert_eq!(huge.status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_mailed_code_verifies_the_email_once_and_writes_an_event() {
    let app = TestApp::spawn().await;
    app.sign_up("frank@example.com", "frank", PASSWORD).await.ok();
    let code = app.smtp.wait_for("frank@example.com", "Code: ", 1).await.line_value("Code").unwrap();
    assert_eq!(app.verify_email("FRANK@example.com", &code).await.ok().data("verifyEmail"), &json!(true));
    app.verify_email("frank@example.com", &code).await.expect_code("BAD_USER_INPUT");
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(app.events(id).await, vec![(1, "registered".to_owned()), (2, "email_verified".to_owned())]);
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code_and_a_new_one_is_needed() {
    let app = TestApp::spawn().await;
    app.sign_up("gina@example.com", "gina", PASSWORD).await.ok();
    let code = app.smtp.wait_for("gina@example.com", "Code: ", 1).await.line_value("Code").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.verify_email("gina@example.com", wrong).await.expect_code("BAD_USER_INPUT");
    }
    // The right code no longer works: it was burnt by the fifth wrong try.
    app.verify_email("gina@example.com", &code).await.expect_code("BAD_USER_INPUT");
    app.resend_verification_email("gina@example.com").await.ok();
    let fresh = app.smtp.wait_for("gina@example.com", "Code: ", 2).await.line_value("Code").unwrap();
    app.verify_email("gina@example.com", &fresh).await.ok();
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::spawn().await;
    app.sign_up("hank@example.com", "hank", PASSWORD).await.ok();
    let code = app.smtp.wait_for("hank@example.com", "Code: ", 1).await.line_value("Code").unwrap();
    sqlx::query("UPDATE email_verifications SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.verify_email("hank@example.com", &code).await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    app.sign_up("ivy@example.com", "ivy", PASSWORD).await.ok();
    let code = app.smtp.wait_for("ivy@example.com", "Code: ", 1).await.line_value("Code").unwrap();
    let attempts = (0..8).map(|_| app.verify_email("ivy@example.com", &code));
    let results = futures::future::join_all(attempts).await;
    let successes = results.iter().filter(|r| r.body.get("errors").is_none()).count();
    assert_eq!(successes, 1, "{results:#?}");
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(app.events(id).await.len(), 2);
}

#[tokio::test]
async fn resend_answers_true_for_anyone_and_is_rate_limited() {
    let app = TestApp::spawn().await;
    app.resend_verification_email("nobody@example.com").await.ok();
    app.sign_up("jack@example.com", "jack", PASSWORD).await.ok();
    // Sign-up used one of the three mails of the window, two resends remain.
    app.resend_verification_email("jack@example.com").await.ok();
    app.resend_verification_email("jack@example.com").await.ok();
    let limited = app.resend_verification_email("jack@example.com").await;
    limited.expect_code("RATE_LIMITED");
    assert!(limited.error()["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    app.smtp.wait_for("jack@example.com", "Code: ", 3).await;
    assert!(app.smtp.messages_to("nobody@example.com").is_empty());
}

#[tokio::test]
async fn login_by_email_or_username_returns_an_rs256_token_that_verifies_with_the_jwks() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("kate").await;
    for login in [user.email.as_str(), "KATE", "Kate@Example.com"] {
        let response = app.login(login, PASSWORD, "BODY").await;
        response.ok();
        let payload = response.data("login");
        assert_eq!(payload["tokenType"], "Bearer");
        assert_eq!(payload["expiresIn"], 900);
        assert_eq!(payload["user"]["roles"], json!(["GUEST", "USER"]));
        let token = payload["accessToken"].as_str().unwrap();
        let header = jwt_header(token);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "at+jwt");

        let jwks: jsonwebtoken::jwk::JwkSet = app.get_json("/.well-known/jwks.json").await;
        let jwk = jwks.find(header["kid"].as_str().unwrap()).expect("the kid is published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&["http://127.0.0.1:4001"]);
        validation.set_audience(&["gatehouse"]);
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).unwrap().claims;
        assert_eq!(claims["sub"], user.id.to_string());
        assert_eq!(claims["scope"], "guest user");
        for claim in ["sid", "jti", "iat", "exp"] {
            assert!(claims.get(claim).is_some(), "{claim} missing");
        }
    }
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_invalid_credentials_answer() {
    let app = TestApp::spawn().await;
    app.verified_user("liam").await;
    let unknown = app.login("nobody@example.com", PASSWORD, "BODY").await;
    let wrong = app.login("liam", "not-the-password-at-all", "BODY").await;
    unknown.expect_code("INVALID_CREDENTIALS");
    wrong.expect_code("INVALID_CREDENTIALS");
    assert_eq!(unknown.body, wrong.body);
    let injected = app.login("' OR '1'='1", "' OR '1'='1", "BODY").await;
    injected.expect_code("INVALID_CREDENTIALS");
}

#[tokio::test]
async fn unverified_and_disabled_accounts_are_told_only_after_the_right_password() {
    let app = TestApp::spawn().await;
    app.sign_up("mia@example.com", "mia", PASSWORD).await.ok();
    app.login("mia", "wrong-password-here", "BODY").await.expect_code("INVALID_CREDENTIALS");
    app.login("mia", PASSWORD, "BODY").await.expect_code("EMAIL_NOT_VERIFIED");
    sqlx::query("UPDATE accounts SET active = false").execute(&app.pool).await.unwrap();
    app.login("mia", "wrong-password-here", "BODY").await.expect_code("INVALID_CREDENTIALS");
    app.login("mia", PASSWORD, "BODY").await.expect_code("ACCOUNT_DISABLED");
}

#[tokio::test]
async fn a_cookie_login_sets_a_host_cookie_and_keeps_the_token_out_of_the_body() {
    let app = TestApp::spawn().await;
    app.verified_user("noah").await;
    let response = app.login("noah", PASSWORD, "COOKIE").await;
    response.ok();
    assert!(response.data("login")["refreshToken"].is_null());
    let cookie = response.set_cookies.iter().find(|c| c.starts_with(COOKIE)).expect("a refresh cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain"));
    // The default transport is the cookie too.
    let default = app
        .gql("mutation { login(login: \"noah\", password: \"violet-Harbor-91-lantern\") { refreshToken } }", json!({}))
        .await;
    default.ok();
    assert!(default.data("login")["refreshToken"].is_null());
    assert!(default.cookie(COOKIE).is_some());
    // BODY sets no refresh cookie (only the device cookie, as every login does).
    let body = app.login("noah", PASSWORD, "BODY").await;
    assert!(body.cookie(COOKIE).is_none(), "{:?}", body.set_cookies);
    assert!(body.set_cookies.iter().all(|c| c.starts_with(DEVICE_COOKIE)), "{:?}", body.set_cookies);
}

#[tokio::test]
async fn fifty_aliased_logins_in_one_request_count_as_fifty_attempts() {
    let app = TestApp::spawn().await;
    app.verified_user("olga").await;
    let fields: String = (0..50)
        .map(|i| format!("a{i}: login(login: \"olga\", password: \"guess-number-{i}\", refreshTokenIn: BODY) {{ accessToken }}\n"))
        .collect();
    let response = app.gql(&format!("mutation {{ {fields} }}"), json!({})).await;
    let codes = response.codes();
    assert_eq!(codes.len(), 50);
    // Ten for the account, then three more for this address once it is over.
    assert_eq!(codes.iter().filter(|c| *c == "INVALID_CREDENTIALS").count(), 13);
    assert_eq!(codes.iter().filter(|c| *c == "RATE_LIMITED").count(), 37);
    // This address has spent its budget: even the right password waits for
    // the window, and HTTP says how long too.
    let refused = app.login("olga", PASSWORD, "BODY").await;
    refused.expect_code("RATE_LIMITED");
    let seconds: u64 = refused.retry_after.as_deref().expect("a Retry-After header").parse().unwrap();
    assert_eq!(seconds, refused.error()["extensions"]["retryAfter"].as_u64().unwrap());
    assert!((1..=900).contains(&seconds), "{seconds}");
    assert!(response.retry_after.is_some(), "the aliased batch had refusals too");
}

/// A login from client address `ip` (the app trusts one proxy hop), with
/// the cookies given.
async fn login_from(app: &TestApp, ip: &str, login: &str, password: &str, cookie: Option<&str>) -> crate::helpers::Gql {
    let mut headers = vec![("x-forwarded-for", ip.to_owned())];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie.to_owned()));
    }
    app.post(
        "mutation($l: String!, $p: String!) { login(login: $l, password: $p, refreshTokenIn: BODY) { accessToken } }",
        json!({ "l": login, "p": password }),
        &headers,
    )
    .await
}

#[tokio::test]
async fn strangers_who_keep_failing_cannot_lock_the_owner_out() {
    let app = TestApp::spawn_with(|c| c.trusted_proxy_hops = 1).await;
    app.verified_user("pia").await;
    // The owner signed in from this browser once: it holds a device cookie.
    let first = login_from(&app, "198.51.100.7", "pia", PASSWORD, None).await;
    first.ok();
    let device = first.cookie(DEVICE_COOKIE).expect("a device cookie");
    let device_cookie = format!("{DEVICE_COOKIE}={device}");
    let set = first.set_cookies.iter().find(|c| c.starts_with(DEVICE_COOKIE)).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }

    // A stranger at one address tries passwords until refused...
    let mut codes = Vec::new();
    for i in 0..15 {
        codes.push(login_from(&app, "203.0.113.66", "pia", &format!("guess-{i}-Harbor"), None).await.code().unwrap());
    }
    assert_eq!(codes.iter().filter(|c| *c == "INVALID_CREDENTIALS").count(), 13, "{codes:?}");
    assert!(codes[13..].iter().all(|c| c == "RATE_LIMITED"), "{codes:?}");
    // ...and more strangers at other addresses get three guesses each.
    for ip in ["203.0.113.67", "203.0.113.68"] {
        for i in 0..3 {
            login_from(&app, ip, "pia", &format!("other-{i}-Harbor"), None).await.expect_code("INVALID_CREDENTIALS");
        }
        login_from(&app, ip, "pia", PASSWORD, None).await.expect_code("RATE_LIMITED");
    }

    // The owner's known browser gets in, even from the strangers' address.
    login_from(&app, "203.0.113.66", "pia", PASSWORD, Some(&device_cookie)).await.ok();
    // So does the owner on a new device at an address of their own.
    login_from(&app, "192.0.2.10", "pia", PASSWORD, None).await.ok();
}

#[tokio::test]
async fn a_forged_or_foreign_device_cookie_buys_no_attempts() {
    let app = TestApp::spawn_with(|c| c.trusted_proxy_hops = 1).await;
    app.verified_user("quin").await;
    app.verified_user("rosa").await;
    // A genuine device cookie, but for another account.
    let rosa = login_from(&app, "198.51.100.8", "rosa", PASSWORD, None).await;
    let foreign = format!("{DEVICE_COOKIE}={}", rosa.cookie(DEVICE_COOKIE).unwrap());
    let forged = format!("{DEVICE_COOKIE}=v1.{}.{}.1.00", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    for i in 0..13 {
        login_from(&app, "203.0.113.70", "quin", &format!("guess-{i}-Harbor"), None)
            .await
            .expect_code("INVALID_CREDENTIALS");
    }
    for cookie in [&foreign, &forged] {
        login_from(&app, "203.0.113.70", "quin", "another-guess-Harbor", Some(cookie))
            .await
            .expect_code("RATE_LIMITED");
    }
}

#[tokio::test]
async fn logins_are_limited_per_client_ip_across_accounts() {
    let app = TestApp::spawn_with(|c| c.login_limit_per_ip = 5).await;
    for i in 0..5 {
        app.login(&format!("someone{i}"), "whatever-password", "BODY").await.expect_code("INVALID_CREDENTIALS");
    }
    app.login("someone_else", "whatever-password", "BODY").await.expect_code("RATE_LIMITED");
}

#[tokio::test]
async fn a_hash_with_weaker_parameters_is_upgraded_at_login() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("pete").await;
    let weak = gatehouse_auth::credentials::Hasher::new(
        gatehouse_auth::credentials::HashParams { memory_kib: 8192, iterations: 1, parallelism: 1 },
        1,
    )
    .await
    .unwrap();
    let old = weak.hash(secrecy::SecretString::from(PASSWORD.to_owned())).await.unwrap();
    sqlx::query("UPDATE accounts SET password_hash = $1").bind(&old).execute(&app.pool).await.unwrap();
    app.login(&user.username, PASSWORD, "BODY").await.ok();
    let new: String = sqlx::query_scalar("SELECT password_hash FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
    app.login(&user.username, PASSWORD, "BODY").await.ok();
    let claims = access_claims(&app.login_body(&user.username, PASSWORD).await.access);
    assert_eq!(claims["sub"], user.id.to_string());
}

#[tokio::test]
async fn the_email_and_the_username_of_an_account_share_one_login_budget() {
    // No second chance per address here: the account's budget alone decides.
    let app = TestApp::spawn_with(|c| {
        c.login_limit_per_account = 4;
        c.login_limit_locked_per_ip = 0;
    })
    .await;
    let user = app.verified_user("quincy").await;
    for login in [user.email.as_str(), "quincy", "QUINCY", user.email.as_str()] {
        app.login(login, "not-the-password-at-all", "BODY").await.expect_code("INVALID_CREDENTIALS");
    }
    app.login("quincy", PASSWORD, "BODY").await.expect_code("RATE_LIMITED");
    app.login(&user.email, PASSWORD, "BODY").await.expect_code("RATE_LIMITED");
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_create_exactly_one_account() {
    let app = TestApp::spawn_with(|c| c.resend_limit = 100).await;
    let usernames: Vec<String> = (0..6).map(|i| format!("rosa_{i}")).collect();
    let attempts = usernames.iter().map(|name| app.sign_up("rosa@example.com", name, PASSWORD));
    for response in futures::future::join_all(attempts).await {
        assert_eq!(response.ok().data("signUp"), &json!(true));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
    app.smtp.wait_for("rosa@example.com", "Code: ", 1).await;
    app.smtp.wait_for("rosa@example.com", "tried to create", 5).await;
}
