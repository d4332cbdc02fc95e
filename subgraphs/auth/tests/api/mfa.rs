//! Two-step login: TOTP enrollment, the `MFA_REQUIRED` answer and
//! `completeMfaLogin`, single-use codes, recovery codes, `amr`/`acr` and the
//! `mfa` scope carried through refreshes, and turning it off.

use serde_json::{json, Value};

use gatehouse_auth::mfa::{TotpSecret, STEP_SECS};

use crate::helpers::{access_claims, Gql, TestApp, PASSWORD};

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// The account's own `mfaEnabled` and `recoveryCodesLeft`, as its owner reads them.
async fn mfa_state(app: &TestApp, access: &str) -> Value {
    let id = access_claims(access)["sub"].as_str().unwrap().parse().unwrap();
    let entity = app.user_entity(Some(access), id, "mfaEnabled recoveryCodesLeft").await;
    entity.ok().data("_entities")[0].clone()
}

async fn begin(app: &TestApp, access: &str) -> Gql {
    app.gql_as(access, "mutation { beginTotpEnrollment { secret otpauthUri } }", json!({})).await
}

async fn confirm(app: &TestApp, access: &str, code: &str) -> Gql {
    app.gql_as(access, "mutation($c: String!) { confirmTotpEnrollment(code: $c) }", json!({ "c": code })).await
}

async fn complete(app: &TestApp, mfa_token: &str, code: &str) -> Gql {
    app.gql(
        "mutation($t: String!, $c: String!) { completeMfaLogin(mfaToken: $t, code: $c, refreshTokenIn: BODY) {
            accessToken refreshToken user { id } } }",
        json!({ "t": mfa_token, "c": code }),
    )
    .await
}

fn tokens_user(access: &str) -> uuid::Uuid {
    access_claims(access)["sub"].as_str().unwrap().parse().unwrap()
}

/// Logs in with the password and answers the `mfaToken` of `MFA_REQUIRED`.
async fn mfa_token(app: &TestApp, login: &str) -> String {
    let answer = app.login(login, PASSWORD, "BODY").await;
    answer.expect_code("MFA_REQUIRED");
    assert_eq!(answer.body["data"], Value::Null, "no tokens before the second factor: {}", answer.body);
    assert!(answer.set_cookies.is_empty(), "no cookie before the second factor");
    let extensions = &answer.error()["extensions"];
    assert_eq!(extensions["methods"], json!(["TOTP", "RECOVERY_CODE"]));
    assert!(extensions["expiresIn"].as_i64().unwrap() > 0);
    extensions["mfaToken"].as_str().unwrap().to_owned()
}

/// Turns TOTP on for `login`; answers the secret and the recovery codes.
async fn enroll(app: &TestApp, access: &str) -> (TotpSecret, Vec<String>) {
    let enrollment = begin(app, access).await;
    enrollment.ok();
    let secret = enrollment.data("beginTotpEnrollment")["secret"].as_str().unwrap();
    let secret = TotpSecret::from_base32(secret).expect("a base32 TOTP secret");
    let confirmed = confirm(app, access, &secret.code_at(now())).await;
    confirmed.ok();
    let codes = confirmed.data("confirmTotpEnrollment").as_array().unwrap().iter();
    (secret, codes.map(|c| c.as_str().unwrap().to_owned()).collect())
}

#[tokio::test]
async fn totp_enrollment_makes_login_take_a_second_step_whose_codes_work_once() {
    let app = TestApp::spawn().await;
    let user = app.verified_user("tess").await;
    let tokens = app.login_body("tess", PASSWORD).await;
    assert_eq!(access_claims(&tokens.access)["acr"], "aal1");
    assert_eq!(access_claims(&tokens.access)["amr"], json!(["pwd"]));
    assert_eq!(mfa_state(&app, &tokens.access).await, json!({ "mfaEnabled": false, "recoveryCodesLeft": 0 }));

    let enrollment = begin(&app, &tokens.access).await;
    let uri = enrollment.data("beginTotpEnrollment")["otpauthUri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Gatehouse:tess?") && uri.contains("issuer=Gatehouse"), "{uri}");
    let secret = TotpSecret::from_base32(enrollment.data("beginTotpEnrollment")["secret"].as_str().unwrap()).unwrap();
    // Nothing changes until a code proves the app has the secret.
    assert_eq!(app.login("tess", PASSWORD, "BODY").await.ok().data("login")["user"]["id"], user.id.to_string());
    confirm(&app, &tokens.access, &secret.code_at(now() + 300)).await.expect_code("INVALID_MFA_CODE");
    // Codes are taken from one instant, so a step boundary passing during
    // the test changes nothing.
    let t0 = now();
    let first = secret.code_at(t0);
    let confirmed = confirm(&app, &tokens.access, &first).await;
    let codes = confirmed.ok().data("confirmTotpEnrollment").as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    assert_eq!(mfa_state(&app, &tokens.access).await, json!({ "mfaEnabled": true, "recoveryCodesLeft": 10 }));
    begin(&app, &tokens.access).await.expect_code("MFA_ALREADY_ENABLED");
    confirm(&app, &tokens.access, &first).await.expect_code("MFA_ALREADY_ENABLED");

    // The code that confirmed the enrollment is spent: its step never works again.
    let ticket = mfa_token(&app, "tess").await;
    complete(&app, &ticket, &first).await.expect_code("INVALID_MFA_CODE");
    complete(&app, &ticket, "000000x").await.expect_code("INVALID_MFA_CODE");
    // The next step's code (within the one-step skew) logs in.
    let next = secret.code_at(t0 + STEP_SECS);
    let done = complete(&app, &ticket, &next).await;
    done.ok();
    let access = done.data("completeMfaLogin")["accessToken"].as_str().unwrap().to_owned();
    let claims = access_claims(&access);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "aal2");
    assert!(claims["scope"].as_str().unwrap().split(' ').any(|s| s == "mfa"), "{claims}");
    // Neither the ticket nor the code works a second time.
    complete(&app, &ticket, codes[0].as_str().unwrap()).await.expect_code("INVALID_MFA_TOKEN");
    complete(&app, &mfa_token(&app, "tess").await, &next).await.expect_code("INVALID_MFA_CODE");

    // A refreshed session keeps its second factor.
    let refresh = done.data("completeMfaLogin")["refreshToken"].as_str().unwrap().to_owned();
    let refreshed = app.refresh_session(&refresh).await;
    let refreshed = access_claims(refreshed.ok().data("refreshSession")["accessToken"].as_str().unwrap());
    assert_eq!((refreshed["acr"].clone(), refreshed["amr"].clone()), (json!("aal2"), json!(["pwd", "otp", "mfa"])));

    // A recovery code, in any case and spacing, works once.
    let recovery = codes[1].as_str().unwrap();
    let spelled = recovery.to_uppercase().replace('-', " ");
    complete(&app, &mfa_token(&app, "tess").await, &spelled).await.ok();
    complete(&app, &mfa_token(&app, "tess").await, recovery).await.expect_code("INVALID_MFA_CODE");
    assert_eq!(mfa_state(&app, &access).await["recoveryCodesLeft"], 9);

    // Turning it off takes the password; then a login is one step again.
    let disable = "mutation($p: String!) { disableMfa(password: $p) }";
    app.gql_as(&access, disable, json!({ "p": "not-the-password" })).await.expect_code("INVALID_CREDENTIALS");
    assert_eq!(app.gql_as(&access, disable, json!({ "p": PASSWORD })).await.ok().data("disableMfa"), true);
    assert_eq!(app.gql_as(&access, disable, json!({ "p": PASSWORD })).await.ok().data("disableMfa"), false);
    let plain = app.login_body("tess", PASSWORD).await;
    assert_eq!(access_claims(&plain.access)["acr"], "aal1");
    assert!(!access_claims(&plain.access)["scope"].as_str().unwrap().contains("mfa"));
}

#[tokio::test]
async fn forged_tickets_junk_codes_and_floods_are_refused_without_a_session() {
    let app = TestApp::spawn_with(|config| config.mfa_limit = 7).await;
    app.verified_user("vic").await;
    let other = app.verified_user("wren").await;
    let tokens = app.login_body("vic", PASSWORD).await;
    let (secret, _) = enroll(&app, &tokens.access).await;

    // Enrollment is for signed-in callers only, and confirms only what began.
    app.gql("mutation { beginTotpEnrollment { secret } }", json!({})).await.expect_code("UNAUTHENTICATED");
    let wren = app.login_body("wren", PASSWORD).await;
    confirm(&app, &wren.access, "123456").await.expect_code("BAD_USER_INPUT");
    assert_eq!(mfa_state(&app, &wren.access).await["mfaEnabled"], false);
    // Another account cannot read whether it is on.
    let peek = app.user_entity(Some(&wren.access), tokens_user(&tokens.access), "mfaEnabled").await;
    peek.expect_code("FORBIDDEN");
    let _ = other;

    let ticket = mfa_token(&app, "vic").await;
    let long_ticket = "m1.".repeat(400);
    let tampered = {
        let mut parts: Vec<String> = ticket.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    for forged in ["", "garbage", "m1.e30.AAAA", long_ticket.as_str(), tampered.as_str()] {
        complete(&app, forged, &secret.code_at(now() + STEP_SECS)).await.expect_code("INVALID_MFA_TOKEN");
    }
    let long_code = "1".repeat(10_000);
    for junk in ["", "12345", "1234567", "abcdef", "１２３４５６", long_code.as_str(), "aaaaa-aaaaa"] {
        complete(&app, &ticket, junk).await.expect_code("INVALID_MFA_CODE");
    }
    // Past the limit, even a right code waits; the answer says how long.
    let limited = complete(&app, &ticket, &secret.code_at(now() + STEP_SECS)).await;
    limited.expect_code("RATE_LIMITED");
    assert!(limited.retry_after.is_some());

    // The secret is sealed at rest: its bytes are nowhere in the row.
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed_secret FROM mfa_totp").fetch_one(&app.pool).await.unwrap();
    let plain = secret.code_at(0);
    assert!(sealed.len() > 20 && !sealed.windows(plain.len()).any(|w| w == plain.as_bytes()));
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM mfa_recovery_codes").fetch_all(&app.pool).await.unwrap();
    assert!(hashes.len() == 10 && hashes.iter().all(|h| h.len() == 64 && !h.contains('-')));
}
