//! `TestApp`: the real auth service on port 0 with its own database, Redis
//! prefix, NATS subject prefix and SMTP sink; one method per operation.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_auth::mail::MailSender;
use gatehouse_auth::service::AuthService;
use gatehouse_auth::{Application, AuthConfig};
use gatehouse_common::identity::{Identity, IdentityCodec, IDENTITY_HEADER};
use gatehouse_common::settings::SharedSettings;

use crate::smtp::SmtpSink;

/// A password zxcvbn rates strong.
pub const PASSWORD: &str = "violet-Harbor-91-lantern";
pub const OTHER_PASSWORD: &str = "quiet-Meadow-47-compass";

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub config: AuthConfig,
    pub shared: SharedSettings,
    pub smtp: SmtpSink,
    pub mail: MailSender,
    pub service: AuthService,
    pub client: reqwest::Client,
    pub codec: IdentityCodec,
    pub redis: gatehouse_common::redis_conn::RedisConn,
    pub nats: async_nats::Client,
    shutdown: CancellationToken,
}

/// The answer to one GraphQL request.
#[derive(Debug)]
pub struct Gql {
    pub status: reqwest::StatusCode,
    pub set_cookies: Vec<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Gql {
    pub fn data(&self, field: &str) -> &Value {
        &self.body["data"][field]
    }

    /// The `extensions.code` of every error, in order.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    }

    pub fn code(&self) -> Option<String> {
        self.codes().into_iter().next()
    }

    pub fn error(&self) -> &Value {
        &self.body["errors"][0]
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {:#}", self.body);
        self
    }

    #[track_caller]
    pub fn expect_code(&self, code: &str) -> &Self {
        assert_eq!(self.code().as_deref(), Some(code), "{:#}", self.body);
        self
    }

    /// The value of cookie `name` set by this response.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    }
}

/// A verified account created through the API.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
}

/// Tokens from a BODY login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

pub const COOKIE: &str = "__Host-gatehouse-refresh";
pub const DEVICE_COOKIE: &str = "__Host-gatehouse-device";

fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        gatehouse_common::telemetry::init_tracing("warn", gatehouse_common::telemetry::LogFormat::Pretty)
    });
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns the app with configuration changed by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut AuthConfig)) -> Self {
        Self::spawn_with_shared(adjust, |_| {}).await
    }

    /// Spawns the app with its own and the shared settings changed.
    pub async fn spawn_with_shared(
        adjust: impl FnOnce(&mut AuthConfig),
        adjust_shared: impl FnOnce(&mut SharedSettings),
    ) -> Self {
        init_tracing();
        let smtp = SmtpSink::start().await;
        let id = Uuid::new_v4().simple().to_string();
        let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let mut config = AuthConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: format!("{base}/gh_auth_test_{id}"),
            database_max_connections: 8,
            // Smaller keys are quicker to generate; the benchmark uses the default size.
            rsa_key_bits: 2048,
            // Tests reload keys explicitly (`Keys::reload`).
            keys_reload_secs: 0,
            smtp_url: Some(format!("smtp://127.0.0.1:{}", smtp.port)),
            mail_poll_secs: 1,
            hash_concurrency: Some(2),
            ..AuthConfig::default()
        };
        adjust(&mut config);
        let mut shared =
            SharedSettings::for_tests(&format!("gh-test:{id}:"), &format!("GHTEST_{id}"), &format!("ghtest_{id}"));
        adjust_shared(&mut shared);
        let app = Application::build(config.clone(), shared.clone()).await.expect("the app builds");
        let port = app.port();
        let mail = app.mail_sender().clone();
        let service = app.service().clone();
        let pool = service.pool().clone();
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let codec = IdentityCodec::new(&shared.identity_secret, 30);
        let redis = gatehouse_common::infra::redis(&shared.redis()).await.unwrap();
        let nats = gatehouse_common::infra::nats(&shared.nats).await.unwrap();
        Self {
            address: format!("http://127.0.0.1:{port}"),
            pool,
            config,
            shared,
            smtp,
            mail,
            service,
            client: reqwest::Client::new(),
            codec,
            redis,
            nats,
            shutdown,
        }
    }

    // ----- transport ------------------------------------------------------

    pub async fn post(&self, query: &str, variables: Value, headers: &[(&str, String)]) -> Gql {
        let mut request = self.client.post(format!("{}/graphql", self.address)).json(&json!({
            "query": query,
            "variables": variables,
        }));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the request reaches the app");
        let status = response.status();
        let set_cookies =
            response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        Gql { status, set_cookies, retry_after, body }
    }

    /// GETs `path` and reads the body as JSON of type `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.client.get(format!("{}{path}", self.address)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        self.post(query, variables, &[]).await
    }

    /// As the gateway would call: with a signed identity for `access_token`.
    pub async fn gql_as(&self, access_token: &str, query: &str, variables: Value) -> Gql {
        self.post(query, variables, &[(IDENTITY_HEADER, self.identity_header(access_token))]).await
    }

    /// The identity header the gateway would forward for this access token.
    pub fn identity_header(&self, access_token: &str) -> String {
        let claims = access_claims(access_token);
        let identity = Identity::new(
            claims["sub"].as_str().unwrap().parse().unwrap(),
            claims["sid"].as_str().unwrap().parse().unwrap(),
            claims["scope"].as_str().unwrap().split(' ').map(str::to_owned).collect(),
        );
        self.codec.sign(&identity, chrono::Utc::now().timestamp())
    }

    // ----- operations -----------------------------------------------------

    pub async fn sign_up(&self, email: &str, username: &str, password: &str) -> Gql {
        self.gql(
            "mutation($input: SignUpInput!) { signUp(input: $input) }",
            json!({ "input": { "email": email, "username": username, "password": password, "displayName": "Test Person" } }),
        )
        .await
    }

    pub async fn verify_email(&self, email: &str, code: &str) -> Gql {
        self.gql(
            "mutation($e: String!, $c: String!) { verifyEmail(email: $e, code: $c) }",
            json!({ "e": email, "c": code }),
        )
        .await
    }

    pub async fn resend_verification_email(&self, email: &str) -> Gql {
        self.gql("mutation($e: String!) { resendVerificationEmail(email: $e) }", json!({ "e": email })).await
    }

    pub async fn login(&self, login: &str, password: &str, transport: &str) -> Gql {
        self.gql(
            &format!(
                "mutation($l: String!, $p: String!) {{ login(login: $l, password: $p, refreshTokenIn: {transport}) {{
                    accessToken tokenType expiresIn refreshToken user {{ id username roles emailVerified }} }} }}"
            ),
            json!({ "l": login, "p": password }),
        )
        .await
    }

    pub async fn refresh_session(&self, token: &str) -> Gql {
        self.gql(
            "mutation($t: String) { refreshSession(refreshToken: $t) { accessToken expiresIn refreshToken user { id } } }",
            json!({ "t": token }),
        )
        .await
    }

    pub async fn refresh_session_with_cookie(&self, cookie: &str) -> Gql {
        self.post(
            "mutation { refreshSession { accessToken refreshToken user { id } } }",
            json!({}),
            &[("cookie", format!("{COOKIE}={cookie}"))],
        )
        .await
    }

    pub async fn logout(&self, token: &str) -> Gql {
        self.gql("mutation($t: String) { logout(refreshToken: $t) }", json!({ "t": token })).await
    }

    pub async fn logout_with_cookie(&self, cookie: &str) -> Gql {
        self.post("mutation { logout }", json!({}), &[("cookie", format!("{COOKIE}={cookie}"))]).await
    }

    pub async fn logout_all(&self, access: &str) -> Gql {
        self.gql_as(access, "mutation { logoutAll }", json!({})).await
    }

    pub async fn revoke_session(&self, access: &str, id: &str) -> Gql {
        self.gql_as(access, "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": id })).await
    }

    pub async fn change_password(&self, access: &str, current: &str, new: &str) -> Gql {
        self.gql_as(
            access,
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": current, "n": new }),
        )
        .await
    }

    pub async fn request_password_reset(&self, email: &str) -> Gql {
        self.gql("mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": email })).await
    }

    pub async fn reset_password(&self, token: &str, new: &str) -> Gql {
        self.gql(
            "mutation($t: String!, $n: String!) { resetPassword(token: $t, newPassword: $n) }",
            json!({ "t": token, "n": new }),
        )
        .await
    }

    pub async fn set_user_roles(&self, access: &str, user: Uuid, roles: &[&str]) -> Gql {
        self.gql_as(
            access,
            "mutation($u: ID!, $r: [Role!]!) { setUserRoles(userId: $u, roles: $r) { id roles } }",
            json!({ "u": user, "r": roles }),
        )
        .await
    }

    pub async fn set_user_active(&self, access: &str, user: Uuid, active: bool) -> Gql {
        self.gql_as(
            access,
            "mutation($u: ID!, $a: Boolean!) { setUserActive(userId: $u, active: $a) { id active } }",
            json!({ "u": user, "a": active }),
        )
        .await
    }

    pub async fn delete_account(&self, access: &str, password: &str) -> Gql {
        self.gql_as(access, "mutation($p: String!) { deleteAccount(password: $p) }", json!({ "p": password })).await
    }

    /// `_entities` for one user, as the gateway would fetch auth's fields.
    pub async fn user_entity(&self, access: Option<&str>, id: Uuid, fields: &str) -> Gql {
        let query =
            format!("query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on User {{ {fields} }} }} }}");
        let variables = json!({ "r": [{ "__typename": "User", "id": id }] });
        match access {
            Some(access) => self.gql_as(access, &query, variables).await,
            None => self.gql(&query, variables).await,
        }
    }

    // ----- composites -----------------------------------------------------

    /// Signs up, reads the code from the mail and verifies.
    pub async fn verified_user(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.com");
        self.sign_up(&email, name, PASSWORD).await.ok();
        let mail = self.smtp.wait_for(&email, "Code: ", 1).await;
        let code = mail.line_value("Code").unwrap();
        self.verify_email(&email, &code).await.ok();
        let id = sqlx::query_scalar("SELECT id FROM accounts WHERE email = $1")
            .bind(&email)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        TestUser { id, email, username: name.to_owned() }
    }

    pub async fn login_body(&self, login: &str, password: &str) -> Tokens {
        let response = self.login(login, password, "BODY").await;
        response.ok();
        Tokens {
            access: response.data("login")["accessToken"].as_str().unwrap().to_owned(),
            refresh: response.data("login")["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    /// Seeds the SYS_ADMIN and the demo accounts; answers the SYS_ADMIN's access token.
    pub async fn seeded_sys_admin(&self) -> String {
        gatehouse_auth::seed::seed(&self.pool, &self.config, &self.shared).await.unwrap();
        self.login_body("admin", gatehouse_auth::config::DEV_ADMIN_PASSWORD).await.access
    }

    /// The outbox events of one account as `(version, type)`, in order.
    pub async fn events(&self, user: Uuid) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT version, event_type FROM outbox WHERE user_id = $1 ORDER BY version")
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub async fn redis_exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS").arg(key).query_async::<i64>(&mut self.redis.clone()).await.unwrap() == 1
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let url = self.config.database_url.clone();
        let redis_url = self.shared.redis_url.clone();
        let prefix = self.shared.redis_key_prefix.clone();
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let _ = gatehouse_store::drop_database(&url).await;
                if let Ok(client) = redis::Client::open(redis_url) {
                    if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                        let keys: Vec<String> = redis::cmd("KEYS")
                            .arg(format!("{prefix}*"))
                            .query_async(&mut conn)
                            .await
                            .unwrap_or_default();
                        if !keys.is_empty() {
                            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                        }
                    }
                }
            });
        })
        .join();
    }
}

/// The (unverified) claims of a JWT.
pub fn access_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The (unverified) header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}
