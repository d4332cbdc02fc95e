//! The `gatehouse` binary as a user runs it: the development stack starts,
//! answers on every port and stops cleanly; a missing backing service is named.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `gatehouse` command isolated from every other test: its own databases,
/// Redis key prefix, event stream and dev folder, all ports chosen by the OS.
struct Isolated {
    id: String,
    dev_dir: std::path::PathBuf,
}

impl Isolated {
    fn new() -> Self {
        let id = format!("cli_{}", uuid_like());
        let dev_dir = std::env::temp_dir().join(format!("gatehouse-{id}"));
        Self { id, dev_dir }
    }

    fn database_url(&self, service: &str) -> String {
        format!("postgres://postgres@127.0.0.1:5432/gh_{}_{service}", self.id)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("GATEWAY_LISTEN", "127.0.0.1:0")
            .env("AUTH_LISTEN", "127.0.0.1:0")
            .env("USERS_LISTEN", "127.0.0.1:0")
            .env("DEV_APP_LISTEN", "127.0.0.1:0")
            .env("AUTH_DATABASE_URL", self.database_url("auth"))
            .env("USERS_DATABASE_URL", self.database_url("users"))
            .env("REDIS_KEY_PREFIX", format!("{}:", self.id))
            .env("GATEHOUSE_EVENTS_STREAM", self.id.to_uppercase())
            .env("GATEHOUSE_EVENTS_SUBJECT_PREFIX", &self.id)
            .env("GATEHOUSE_DEV_DIR", &self.dev_dir)
            .env("RUST_LOG", "warn")
            .env_remove("GATEHOUSE_ENV")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn cleanup(&self) {
        for service in ["auth", "users"] {
            let _ = gatehouse_store::drop_database(&self.database_url(service)).await;
        }
        if let Ok(client) = async_nats::connect("nats://127.0.0.1:4222").await {
            let jetstream = async_nats::jetstream::new(client);
            let _ = jetstream.delete_stream(self.id.to_uppercase()).await;
            let _ = jetstream.delete_stream(format!("{}_DLQ", self.id.to_uppercase())).await;
        }
        let _ = std::fs::remove_dir_all(&self.dev_dir);
    }
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// The banner's `Label: http://localhost:PORT` lines, read until its last line
/// within a bounded time.
async fn ports_from_banner(child: &mut Child) -> std::collections::HashMap<String, u16> {
    // The reader is dropped on return, closing the pipe: the stack must keep
    // serving when nobody reads its output any more (it once panicked on the
    // next banner line).
    read_banner(child).await.0
}

/// What the stack logs after its banner, kept for a failing test's message.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.lock().unwrap().join("\n"))
    }
}

/// The banner's ports, and the log the stack writes afterwards.
async fn ports_and_log(child: &mut Child) -> (std::collections::HashMap<String, u16>, Log) {
    let (ports, mut lines) = read_banner(child).await;
    let log = Log::default();
    let kept = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.0.lock().unwrap().push(line);
        }
    });
    (ports, log)
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Reads the banner; answers its ports and the rest of the output.
async fn read_banner(child: &mut Child) -> (std::collections::HashMap<String, u16>, Lines) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut ports = std::collections::HashMap::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            if line.trim() == "Stop with Ctrl-C." {
                return;
            }
            let Some((label, rest)) = line.trim_start().split_once(':') else { continue };
            let port =
                rest.split("http://localhost:").nth(1).and_then(|rest| rest.split(['/', ' ']).next()?.parse().ok());
            if let Some(port) = port {
                ports.insert(label.to_owned(), port);
            }
        }
        // The stack exited before its banner was complete: say why it did.
        let mut why = String::new();
        if let Some(stderr) = child.stderr.as_mut() {
            let _ = tokio::io::AsyncReadExt::read_to_string(stderr, &mut why).await;
        }
        panic!("the banner ended early: {ports:?}\nits stderr:\n{why}");
    };
    tokio::time::timeout(Duration::from_secs(120), read).await.expect("the stack printed its banner in time");
    (ports, lines)
}

#[tokio::test]
async fn the_dev_stack_serves_a_federated_login_and_stops_with_status_zero_on_sigterm() {
    let isolated = Isolated::new();
    let mut child = isolated.command(&["dev"]).spawn().expect("gatehouse starts");
    let (ports, log) = ports_and_log(&mut child).await;
    let [gateway, auth, users, app] = ["Gateway", "Auth", "Users", "App"]
        .map(|label| *ports.get(label).unwrap_or_else(|| panic!("{label} in {ports:?}")));

    // The process keeps its heap off transparent huge pages (src/main.rs);
    // kernels before 5.0 do not report it.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap_or_default();
    if let Some(line) = status.lines().find(|line| line.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }

    let http = reqwest::Client::new();
    for port in [gateway, auth, users] {
        let response = http.get(format!("http://127.0.0.1:{port}/health")).send().await.expect("health answers");
        assert_eq!(response.status(), 200, "GET /health on port {port}");
    }

    // The example app is served on its own origin, knows where the gateway
    // is (on the loopback name the page was opened with), and the gateway
    // lets that origin send credentials.
    for host in ["127.0.0.1", "localhost"] {
        let config: serde_json::Value =
            http.get(format!("http://{host}:{app}/config.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(config["graphqlUrl"], format!("http://{host}:{gateway}/graphql"));
    }
    let page = http.get(format!("http://127.0.0.1:{app}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let origin = format!("http://localhost:{app}");
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("http://127.0.0.1:{gateway}/graphql"))
        .header("origin", &origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin.as_str());
    assert_eq!(preflight.headers()["access-control-allow-credentials"], "true");

    // The whole path works: log in through the gateway (auth), then a query
    // whose fields come from both subgraphs, once the account has been synced
    // to users through the outbox.
    let graphql = format!("http://127.0.0.1:{gateway}/graphql");
    // GraphiQL's sample login is filled with the admin the banner prints.
    let page = http.get(&graphql).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#""sampleLogin":"admin@gatehouse.local""#), "{page}");
    let login =
        r#"mutation { login(login: "admin", password: "gatehouse-admin-dev", refreshTokenIn: BODY) { accessToken } }"#;
    let body: serde_json::Value = http
        .post(&graphql)
        .header("user-agent", "cli-test/1.0")
        .json(&serde_json::json!({ "query": login }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token =
        body["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("login failed: {body}")).to_owned();
    let me = serde_json::json!({ "query": "{ me { username roles displayName sessions { userAgent current } } }" });
    let mut answer = serde_json::Value::Null;
    for _ in 0..100 {
        answer = http.post(&graphql).bearer_auth(&token).json(&me).send().await.unwrap().json().await.unwrap();
        if !answer["data"]["me"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer["data"]["me"]["username"], "admin", "{answer}");
    assert_eq!(answer["data"]["me"]["displayName"], "admin", "{answer}");
    assert_eq!(answer["data"]["me"]["roles"], serde_json::json!(["GUEST", "USER", "ADMIN", "SYS_ADMIN"]));
    // The session remembers the device: the gateway passed the user agent on.
    assert_eq!(answer["data"]["me"]["sessions"], serde_json::json!([{ "userAgent": "cli-test/1.0", "current": true }]));

    // A request larger than auth takes is refused at the gateway, by name,
    // not sent and answered as a failed subgraph request.
    let oversized = serde_json::json!({
        "query": "mutation($p: String!) { login(login: \"admin\", password: $p) { accessToken } }",
        "variables": { "p": "x".repeat(70_000) },
    });
    let refused: serde_json::Value = http.post(&graphql).json(&oversized).send().await.unwrap().json().await.unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["serviceName"], "auth", "{refused}");

    // Queries from both subgraphs keep coming while the stack stops: the
    // gateway stops first and drains, so every query it still answers is
    // whole (a subgraph stopping under it would answer with an error).
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (http, graphql, token, me) = (http.clone(), graphql.clone(), token.clone(), me.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while let Ok(response) = http.post(&graphql).bearer_auth(&token).json(&me).send().await {
                    let status = response.status();
                    let Ok(body) = response.json::<serde_json::Value>().await else { break };
                    answers.push((status, body));
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().expect("still running").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the stack stopped within 30 s of SIGTERM")
        .expect("exit status is readable");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let mut answered = 0;
    for worker in load {
        for (status, body) in worker.await.expect("the load worker ran") {
            assert_eq!(status, 200, "{body}\nthe stack's log:\n{log}");
            let whole = body.get("errors").is_none() && body["data"]["me"]["username"] == "admin";
            assert!(whole, "{body}\nthe stack's log:\n{log}");
            answered += 1;
        }
    }
    assert!(answered > 0, "no query was answered while the stack ran");
    isolated.cleanup().await;
}

#[tokio::test]
async fn a_closed_backing_service_port_ends_start_up_with_one_clear_line_per_service() {
    let isolated = Isolated::new();
    let output = isolated
        .command(&["dev"])
        .env("REDIS_URL", "redis://127.0.0.1:9")
        .env("NATS_URL", "nats://127.0.0.1:9")
        .output()
        .await
        .expect("gatehouse runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "one line per missing service:\n{stderr}");
    assert!(errors[0].starts_with("error: Redis is not reachable at redis://127.0.0.1:9"), "{stderr}");
    assert!(
        errors[0].ends_with(
            "start it (at the development default: `scripts/services ensure`, or `docker compose -f compose.dev.yaml up -d redis`)"
        ),
        "{stderr}"
    );
    assert!(errors[1].starts_with("error: NATS is not reachable at nats://127.0.0.1:9"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    isolated.cleanup().await;
}

#[tokio::test]
async fn a_taken_port_names_the_service_and_the_setting_that_moves_it() {
    let isolated = Isolated::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    for (setting, service) in [("GATEWAY_LISTEN", "gateway"), ("USERS_LISTEN", "users"), ("AUTH_LISTEN", "auth")] {
        let output =
            isolated.command(&["dev"]).env(setting, address.to_string()).output().await.expect("gatehouse runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        let line = format!("error: {service} cannot listen on {address}");
        assert!(stderr.contains(&line), "{line} in:\n{stderr}");
        assert!(stderr.contains(&format!("set {setting} to another address")), "{stderr}");
    }
    isolated.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_database_names_postgres_and_the_url_without_its_password() {
    let isolated = Isolated::new();
    let output = isolated
        .command(&["dev"])
        .env("AUTH_DATABASE_URL", "postgres://app:hunter2@127.0.0.1:9/gatehouse_auth")
        .output()
        .await
        .expect("gatehouse runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("error: PostgreSQL is not reachable at postgres://app:***@127.0.0.1:9/gatehouse_auth"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    isolated.cleanup().await;
}

#[tokio::test]
async fn bad_flags_and_values_are_refused_before_anything_starts() {
    let isolated = Isolated::new();
    for args in
        [&["dev", "--no-such-flag"][..], &["--env", "staging", "dev"], &["gateway", "--listen", "not-an-address"]]
    {
        let output = isolated.command(args).output().await.expect("gatehouse runs");
        assert_eq!(output.status.code(), Some(2), "{args:?} must be a usage error");
        assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    }
    isolated.cleanup().await;
}

#[tokio::test]
async fn a_token_provider_line_that_could_weaken_verification_starts_nothing() {
    let isolated = Isolated::new();
    std::fs::create_dir_all(&isolated.dev_dir).unwrap();
    let file = isolated.dev_dir.join("providers.toml");
    std::fs::write(
        &file,
        "[gateway]\njwt_providers = [\n  \"corp issuer=https://sso.example audience=api\",\n  \"partner issuer=https://id.example\",\n]\n",
    )
    .unwrap();
    let checked = isolated.command(&["config", "check", file.to_str().unwrap()]).output().await.unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let report = String::from_utf8_lossy(&checked.stderr).into_owned() + &String::from_utf8_lossy(&checked.stdout);
    assert!(report.contains(":2:") && report.contains("token provider partner: audience= is required"), "{report}");

    for (value, reason) in [
        ("corp issuer=https://sso.example audience=api alg=HS256", "never `none`"),
        ("corp issuer=https://sso.example audience=api alg=none", "never `none`"),
        ("gatehouse issuer=https://sso.example audience=api", "our own auth service"),
        ("corp issuer=https://sso.example audience=api token=query:at", "cookie:NAME"),
    ] {
        let output = isolated.command(&["gateway"]).env("GATEWAY_JWT_PROVIDERS", value).output().await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason) && stderr.contains("--jwt-provider"), "{value}: {stderr}");
    }
    let supergraph = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql");
    let mut nobody = isolated.command(&["gateway", "--listen", "127.0.0.1:0", "--supergraph", supergraph]);
    nobody.env("GATEWAY_OWN_TOKENS", "false");
    let output = tokio::time::timeout(Duration::from_secs(30), nobody.output()).await.unwrap().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no token could be accepted"));
    isolated.cleanup().await;
}

#[tokio::test]
async fn production_refuses_to_start_without_its_own_secrets() {
    let isolated = Isolated::new();
    let output = isolated.command(&["dev"]).env("GATEHOUSE_ENV", "production").output().await.expect("gatehouse runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("GATEHOUSE_IDENTITY_SECRET is required in production"), "{stderr}");

    let output = isolated
        .command(&["dev"])
        .env("GATEHOUSE_ENV", "production")
        .env("GATEHOUSE_IDENTITY_SECRET", "dev-only-this-is-a-development-secret-xxxxxxxx")
        .output()
        .await
        .expect("gatehouse runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is a development or example secret"), "{stderr}");
    isolated.cleanup().await;
}

#[tokio::test]
async fn production_refuses_a_weak_sys_admin_password() {
    let isolated = Isolated::new();
    let seed = |password: &str| {
        let mut command = isolated.command(&["seed"]);
        command
            .env("GATEHOUSE_ENV", "production")
            .env("GATEHOUSE_IDENTITY_SECRET", "Zq8vJ3kP0wX7nR2mL5tY9cB4hG6dF1sA-cli-test")
            .env("GATEHOUSE_ADMIN_PASSWORD", password);
        command
    };
    for weak in ["password1234", "admin-admin-admin", "gatehouse-2026"] {
        let output = seed(weak).output().await.expect("gatehouse runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{weak} was accepted");
        assert!(stderr.contains("GATEHOUSE_ADMIN_PASSWORD is refused in production"), "{stderr}");
        assert!(!stderr.contains(weak), "the password was printed: {stderr}");
    }
    let output = seed("plinth-Quarry-48-vivid-Osprey").output().await.expect("gatehouse runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("SYS_ADMIN admin@gatehouse.local (created)"));
    isolated.cleanup().await;
}

#[tokio::test]
async fn the_printed_public_schema_is_the_checked_in_one_and_bad_supergraphs_are_named() {
    let isolated = Isolated::new();
    let output = isolated.command(&["schema"]).output().await.expect("gatehouse runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/public.graphql")).unwrap();
    assert_eq!(printed, checked_in, "schema/public.graphql is out of date: run schema/compose.sh");
    // What clients see, and only that.
    assert!(printed.contains("type Query {") && printed.contains("refreshSession("));
    for internal in ["join__", "link__", "@inaccessible", "__schema", "type __Type", "directive @skip", "scalar String"]
    {
        assert!(!printed.contains(internal), "{internal} leaked into the public schema");
    }

    let junk = isolated.dev_dir.join("junk.graphql");
    std::fs::create_dir_all(&isolated.dev_dir).unwrap();
    std::fs::write(&junk, "type Query { ").unwrap();
    let missing = isolated.dev_dir.join("missing.graphql");
    for (path, expected) in [(&junk, "does not parse"), (&missing, "cannot read")] {
        let output = isolated.command(&["schema", "--supergraph", path.to_str().unwrap()]).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{stderr}");
        assert!(stderr.contains(path.to_str().unwrap()) && !stderr.contains("panicked"), "{stderr}");
    }
    isolated.cleanup().await;
}

/// A standard tool (GraphQL Code Generator, from npm) reads the schema once by
/// introspecting the running gateway and once from `schema/public.graphql`, and
/// prints the same schema both times.
#[tokio::test]
async fn graphql_codegen_gets_the_same_schema_from_the_gateway_as_from_the_schema_folder() {
    let schema_dir = codegen_ready().await;
    let isolated = Isolated::new();
    let mut child = isolated.command(&["dev"]).spawn().expect("gatehouse starts");
    let gateway = ports_from_banner(&mut child).await["Gateway"];
    let out = isolated.dev_dir.join("codegen");
    let output = Command::new(schema_dir.join("node_modules/.bin/graphql-codegen"))
        .args(["--config", "codegen.yml"])
        .current_dir(&schema_dir)
        .env("CODEGEN_OUT", &out)
        .env("GATEWAY_GRAPHQL_URL", format!("http://127.0.0.1:{gateway}/graphql"))
        .output()
        .await
        .expect("graphql-codegen runs");
    assert!(output.status.success(), "graphql-codegen failed: {}", String::from_utf8_lossy(&output.stderr));
    let from_gateway = std::fs::read_to_string(out.join("from-gateway.graphql")).unwrap();
    let from_schema = std::fs::read_to_string(out.join("from-schema.graphql")).unwrap();
    assert!(from_gateway.contains("type Mutation {") && from_gateway.contains("\"\"\""), "{from_gateway}");
    assert_eq!(from_gateway, from_schema);
    child.kill().await.unwrap();
    isolated.cleanup().await;
}

/// `gatehouse gateway` alone, with authentication off so it needs no backing
/// service, logging at INFO on stdout (pretty unless `tweak` says otherwise):
/// the process, what it logged up to "gateway listening", and its port.
async fn gateway_alone(
    isolated: &Isolated,
    supergraph: &std::path::Path,
    tweak: impl FnOnce(&mut Command),
) -> (Child, String, u16) {
    let mut command = isolated.command(&["gateway", "--supergraph", supergraph.to_str().unwrap()]);
    command.env("GATEWAY_AUTH", "false").env("RUST_LOG", "info");
    tweak(&mut command);
    let mut child = command.spawn().expect("gatehouse starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut log = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            log.push_str(&line);
            log.push('\n');
            if line.contains("gateway listening") {
                return;
            }
        }
        panic!("the gateway stopped before it listened:\n{log}");
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the gateway listened in time");
    // The line ends with `port=N` (with or without colour codes around the `=`).
    let port = log
        .lines()
        .find(|line| line.contains("gateway listening"))
        .and_then(|line| {
            let line = line.trim_end();
            line[line.trim_end_matches(|c: char| c.is_ascii_digit()).len()..].parse().ok()
        })
        .unwrap_or_else(|| panic!("no port in {log:?}"));
    (child, log, port)
}

/// `LOG_FORMAT=pretty` (the default) colours log lines on a terminal only: a
/// pipe or a file gets plain text, even with `NO_COLOR` unset.
#[tokio::test]
async fn pretty_logs_written_into_a_pipe_carry_no_colour_codes() {
    let isolated = Isolated::new();
    let missing = isolated.dev_dir.join("missing.graphql");
    let (mut child, log, _) = gateway_alone(&isolated, &missing, |command| {
        command.env("LOG_FORMAT", "pretty").env_remove("NO_COLOR");
    })
    .await;
    child.kill().await.unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).await.unwrap();
    for (name, text) in [("stdout", &log), ("stderr", &stderr)] {
        assert!(!text.contains('\u{1b}'), "escape codes in the piped {name}: {text:?}");
    }
    // The log had what colours would style: an ERROR line with fields, an INFO line.
    assert!(log.contains("ERROR") && log.contains("the supergraph could not be loaded"), "{log}");
    assert!(log.contains(&format!("path={}", missing.display())), "{log}");
    isolated.cleanup().await;
}

/// A supergraph that does not load leaves the gateway unready: the banner says
/// so instead of "Gatehouse is running", the stack keeps running, and writing a
/// valid supergraph to the watched file makes the gateway ready.
#[tokio::test]
async fn dev_says_plainly_when_the_gateway_has_no_supergraph_and_recovers_when_the_file_is_fixed() {
    let isolated = Isolated::new();
    std::fs::create_dir_all(&isolated.dev_dir).unwrap();
    let supergraph = isolated.dev_dir.join("supergraph.graphql");
    std::fs::write(&supergraph, "type Query { ").unwrap();
    let mut child =
        isolated.command(&["dev"]).env("GATEWAY_SUPERGRAPH", &supergraph).spawn().expect("gatehouse starts");

    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout is readable") {
            banner.push_str(&line);
            banner.push('\n');
            if line.trim() == "Stop with Ctrl-C." {
                return;
            }
        }
        panic!("the banner ended early:\n{banner}");
    };
    tokio::time::timeout(Duration::from_secs(120), read).await.expect("the stack printed its banner in time");
    // Keep reading the log, to show it if the gateway never gets ready.
    let log = tokio::spawn(async move {
        let mut log = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    assert!(!banner.contains("Gatehouse is running"), "{banner}");
    assert!(banner.contains("WITHOUT A SUPERGRAPH"), "{banner}");
    assert!(banner.contains(&format!("NOT LOADED from {}", supergraph.display())), "{banner}");
    assert!(banner.contains("supergraph does not parse"), "the reason is missing: {banner}");
    assert!(banner.contains("/ready answers 503 until a valid supergraph is written"), "{banner}");
    assert!(banner.contains("it is watched"), "{banner}");
    let gateway: u16 = banner
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("Gateway:")?.split("http://localhost:").nth(1))
        .and_then(|rest| rest.split([' ', '/']).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no gateway port in {banner}"));

    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{gateway}/ready");
    assert_eq!(http.get(&ready).send().await.unwrap().status(), 503);

    // The gateway's watcher is set up by a task of its own, which may not have
    // run yet when the gateway first answers, and a change made before it
    // watches is missed: the valid supergraph is written again every two
    // seconds until the gateway loads it.
    let mut status = 0;
    for attempt in 0..300 {
        if attempt % 20 == 0 {
            std::fs::write(&supergraph, include_str!("../schema/supergraph.graphql")).unwrap();
        }
        status = http.get(&ready).send().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if status != 200 {
        child.kill().await.unwrap();
        panic!("the gateway did not pick up the fixed supergraph; its log:\n{}", log.await.unwrap());
    }
    let answer: serde_json::Value = http
        .post(format!("http://127.0.0.1:{gateway}/graphql"))
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, serde_json::json!({ "data": { "__typename": "Query" } }));
    child.kill().await.unwrap();
    isolated.cleanup().await;
}

/// schema/, with GraphQL Code Generator installed (`npm ci` on first use,
/// once per test binary: two tests installing at once saw each other's
/// half-written node_modules on a fresh clone).
async fn codegen_ready() -> std::path::PathBuf {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let schema_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    INSTALLED
        .get_or_init(|| async {
            if !schema_dir.join("node_modules/.bin/graphql-codegen").exists() {
                let installed = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--silent"])
                    .current_dir(&schema_dir)
                    .status()
                    .await
                    .expect("npm runs (Node.js is needed for the schema tooling)");
                assert!(installed.success(), "npm ci in schema/ failed");
            }
        })
        .await;
    schema_dir
}

/// `npm run codegen` in schema/ (GraphQL Code Generator, installed with
/// `npm ci` on first use) pointed at `url`, writing to `out`.
async fn run_codegen(url: &str, out: &std::path::Path) -> std::process::Output {
    let schema_dir = codegen_ready().await;
    Command::new("npm")
        .args(["run", "codegen"])
        .current_dir(&schema_dir)
        .env("CODEGEN_OUT", out)
        .env("GATEWAY_GRAPHQL_URL", url)
        .output()
        .await
        .expect("npm runs")
}

/// A wrong endpoint makes `npm run codegen` fail with a non-zero status, name
/// the endpoint and the cause on stderr, and write nothing.
#[tokio::test]
async fn graphql_codegen_fails_loudly_on_a_wrong_endpoint() {
    let isolated = Isolated::new();
    let closed = gatehouse_common::testing::free_port();
    // A gateway without a supergraph: its /graphql answers 503, and its root
    // is no GraphQL endpoint at all.
    let (mut child, _, gateway) = gateway_alone(&isolated, &isolated.dev_dir.join("missing.graphql"), |_| {}).await;
    let out = isolated.dev_dir.join("codegen");
    for (url, cause) in [
        (format!("http://127.0.0.1:{closed}/graphql"), "ECONNREFUSED"),
        (format!("http://127.0.0.1:{gateway}/graphql"), "The gateway has no supergraph loaded yet"),
        (format!("http://127.0.0.1:{gateway}"), ""),
    ] {
        let output = run_codegen(&url, &out).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url}: graphql-codegen succeeded:\n{stderr}");
        assert!(stderr.contains(&format!("Failed to load schema from {url}")), "{url} is not named:\n{stderr}");
        assert!(stderr.contains(cause), "{url}: {cause:?} is not said:\n{stderr}");
        assert!(!out.join("from-gateway.graphql").exists() && !out.join("from-schema.graphql").exists(), "{url}");
    }
    child.kill().await.unwrap();
    isolated.cleanup().await;
}

#[tokio::test]
async fn dev_help_groups_its_settings_by_service() {
    let isolated = Isolated::new();
    let output = isolated.command(&["dev", "--help"]).output().await.expect("gatehouse runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let headings: Vec<&str> = help.lines().filter(|l| !l.starts_with(' ') && l.ends_with(':')).collect();
    for heading in [
        "Gateway:",
        "Gateway: tokens, guards and browsers:",
        "Gateway: connections:",
        "Auth subgraph:",
        "Users subgraph:",
        "Example app:",
        "Every service:",
    ] {
        assert!(headings.contains(&heading), "{heading} missing from {headings:?}");
    }
    // The short form is a flag and a line of help per setting.
    let short = isolated.command(&["dev", "-h"]).output().await.expect("gatehouse runs");
    let settings = String::from_utf8_lossy(&short.stdout).lines().filter(|l| l.trim_start().starts_with("--")).count();
    let lines = String::from_utf8_lossy(&short.stdout).lines().count();
    assert!(lines < 2 * settings + 40, "{lines} lines for {settings} settings");
}

/// A config file with mistakes: `config check` names each one with its line
/// and column and exits 1; any command given the file refuses to start with
/// status 2 and the same lines; a good file passes.
#[tokio::test]
async fn a_config_file_is_checked_line_by_line_and_a_bad_one_starts_nothing() {
    let isolated = Isolated::new();
    std::fs::create_dir_all(&isolated.dev_dir).unwrap();
    let bad = isolated.dev_dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[gateway]\nlisten = \"127.0.0.1:4999\"\nlistener = 3\ncompression = \"yes\"\nmax_depth = -4\n\n[nosuch]\na = 1\n",
    )
    .unwrap();
    let checked = isolated.command(&["config", "check", bad.to_str().unwrap()]).output().await.unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let report = String::from_utf8_lossy(&checked.stderr).into_owned() + &String::from_utf8_lossy(&checked.stdout);
    for expected in [
        ":3:1: error: unknown setting `[gateway] listener`; did you mean `listen`?",
        ":4:15: error: [gateway] compression must be a boolean",
        ":5:",
        ":7:2: error: unknown section [nosuch]",
    ] {
        assert!(report.contains(expected), "{expected:?} missing from:\n{report}");
    }

    for args in [&["--config", bad.to_str().unwrap(), "gateway"][..], &["gateway"]] {
        let mut command = isolated.command(args);
        if args.len() == 1 {
            command.env("GATEHOUSE_CONFIG", &bad);
        }
        let refused = tokio::time::timeout(Duration::from_secs(30), command.output()).await.unwrap().unwrap();
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("unknown section [nosuch]") && stderr.contains("nothing was started"), "{stderr}");
    }

    let missing = isolated.command(&["--config", "/nonexistent/gatehouse.toml", "gateway"]).output().await.unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/gatehouse.toml"));

    let good = isolated.dev_dir.join("good.toml");
    std::fs::write(&good, "[gateway]\nlisten = \"127.0.0.1:4999\"\n").unwrap();
    let checked = isolated.command(&["config", "check", good.to_str().unwrap()]).output().await.unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    isolated.cleanup().await;
}

/// The file's settings apply under the environment's: `config show` says
/// where each setting in force comes from, and never shows a secret.
#[tokio::test]
async fn the_environment_overrides_the_config_file_and_config_show_says_where_each_setting_comes_from() {
    let isolated = Isolated::new();
    std::fs::create_dir_all(&isolated.dev_dir).unwrap();
    let file = isolated.dev_dir.join("gatehouse.toml");
    std::fs::write(
        &file,
        "identity_secret = \"a-file-secret-that-must-never-be-printed-back\"\n\n[gateway]\nlisten = \"127.0.0.1:4999\"\nmax_depth = 9\n",
    )
    .unwrap();
    let shown = isolated.command(&["--config", file.to_str().unwrap(), "config", "show"]).output().await.unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown = String::from_utf8_lossy(&shown.stdout);
    // GATEWAY_LISTEN is set by `Isolated`: it wins over the file.
    assert!(shown.contains("listen = \"127.0.0.1:0\"  # environment GATEWAY_LISTEN"), "{shown}");
    assert!(shown.lines().any(|line| line.starts_with("max_depth = 9") && line.contains("gatehouse.toml")), "{shown}");
    assert!(!shown.contains("a-file-secret"), "{shown}");

    // A flag wins over both.
    let flagged = isolated
        .command(&["--config", file.to_str().unwrap(), "config", "show", "--listen", "127.0.0.1:4998"])
        .output()
        .await
        .unwrap();
    let flagged = String::from_utf8_lossy(&flagged.stdout);
    assert!(flagged.contains("listen = \"127.0.0.1:4998\"  # flag --listen"), "{flagged}");
    isolated.cleanup().await;
}

/// `config schema` prints a JSON Schema an editor can use: closed objects,
/// one section per service, every property typed and described.
#[tokio::test]
async fn config_schema_prints_a_json_schema_for_editors() {
    let isolated = Isolated::new();
    let output = isolated.command(&["config", "schema"]).output().await.unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["additionalProperties"], false);
    for section in ["gateway", "auth", "users", "app"] {
        let properties = schema["properties"][section]["properties"].as_object().unwrap_or_else(|| panic!("{section}"));
        assert!(properties.contains_key("listen"), "{section}");
        for (name, property) in properties {
            assert!(property["description"].as_str().is_some_and(|d| !d.is_empty()), "{section}.{name}");
        }
    }
    assert_eq!(schema["properties"]["gateway"]["properties"]["compression"]["type"], "boolean");
}

/// One span as the test collector received it.
#[derive(Debug, Clone)]
struct ExportedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

/// An OTLP/HTTP collector on a free port: every span POSTed to `/v1/traces`.
async fn otlp_collector() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<ExportedSpan>>>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = spans.clone();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("the exporter sends OTLP protobuf");
                let mut kept = kept.lock().unwrap();
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|resource| &resource.attributes)
                        .find(|attribute| attribute.key == "service.name")
                        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                        .map(|value| match value {
                            Value::StringValue(name) => name.clone(),
                            other => panic!("service.name is a string, not {other:?}"),
                        })
                        .unwrap_or_default();
                    for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                        kept.push(ExportedSpan {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                        });
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, spans)
}

/// With an OTLP endpoint set, one request is one trace across the services:
/// the gateway continues the caller's `traceparent`, each subgraph fetch is a
/// span, and the auth service's spans hang below that fetch, each service
/// under its own `service.name` although `dev` runs them in one process.
#[tokio::test]
async fn traces_follow_a_request_from_the_caller_through_the_gateway_into_the_subgraphs() {
    let (collector, spans) = otlp_collector().await;
    let isolated = Isolated::new();
    let mut child = isolated
        .command(&["dev"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{collector}"))
        .spawn()
        .expect("gatehouse starts");
    let gateway = ports_from_banner(&mut child).await["Gateway"];

    let (caller_trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{gateway}/graphql"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&serde_json::json!({ "query": r#"mutation { login(login: "nobody", password: "not-the-password") { accessToken } }"# }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["errors"][0]["extensions"]["code"].is_string(), "{answer}");

    // The batch exporters send every few seconds.
    let ours = |spans: &[ExportedSpan]| -> Vec<ExportedSpan> {
        spans.iter().filter(|span| span.trace_id == caller_trace).cloned().collect()
    };
    let mut trace = Vec::new();
    for _ in 0..150 {
        trace = ours(&spans.lock().unwrap());
        let services: std::collections::HashSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
        if services.iter().any(|s| s.contains("gatehouse-gateway"))
            && services.iter().any(|s| s.contains("gatehouse-auth"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let of = |service: &str, name: &str| {
        trace
            .iter()
            .find(|span| span.service == service && span.name.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} span of {service} in {trace:#?}"))
            .clone()
    };
    let request = of("gatehouse-gateway", "POST /graphql");
    assert_eq!(request.parent_span_id, caller_span, "the gateway continues the caller's trace");
    let fetch = of("gatehouse-gateway", "subgraph_fetch");
    let served = of("gatehouse-auth", "POST /graphql");
    assert_eq!(served.parent_span_id, fetch.span_id, "auth continues below the gateway's fetch");
    assert!(trace.iter().all(|span| span.service != "gatehouse-users"), "users was not asked: {trace:#?}");
    child.kill().await.unwrap();
    isolated.cleanup().await;
}

/// Runs `gatehouse keys …`; answers success, stdout and stderr.
async fn keys_command(isolated: &Isolated, args: &[&str]) -> (bool, String, String) {
    let output = isolated
        .command(&[&["keys"], args].concat())
        .env("AUTH_RSA_KEY_BITS", "2048")
        // Verifiers here cache nothing: a rotation need not wait.
        .env("AUTH_JWKS_MAX_AGE_SECS", "0")
        .env("AUTH_KEYS_RELOAD_SECS", "0")
        .output()
        .await
        .expect("gatehouse runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// The rows of `gatehouse keys` output: kid, algorithm, state, published.
fn key_rows(stdout: &str) -> Vec<[String; 4]> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("KID"))
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            [0, 1, 2, 3].map(|i| cells[i].to_owned())
        })
        .collect()
}

fn kid_in(rows: &[[String; 4]], state: &str) -> String {
    rows.iter().find(|r| r[2] == state).map(|r| r[0].clone()).unwrap_or_else(|| panic!("no {state} key in {rows:?}"))
}

#[tokio::test]
async fn keys_list_rotate_and_retire_manage_the_ring_in_the_database() {
    let isolated = Isolated::new();
    // An empty database: list shows nothing, the first rotate creates the ring.
    let (ok, stdout, stderr) = keys_command(&isolated, &["list"]).await;
    assert!(ok, "{stderr}");
    assert!(key_rows(&stdout).is_empty(), "{stdout}");
    let (ok, stdout, stderr) = keys_command(&isolated, &["rotate"]).await;
    assert!(ok && stdout.contains("Created the signing key ring"), "{stdout}{stderr}");
    let first = key_rows(&stdout);
    let (current, next) = (kid_in(&first, "current"), kid_in(&first, "next"));
    assert!(first.iter().all(|r| r[1] == "RS256" && r[3] == "yes"), "{first:?}");

    let (ok, stdout, stderr) = keys_command(&isolated, &["rotate", "--alg", "ES256"]).await;
    assert!(ok && stdout.contains("Rotated the signing keys"), "{stdout}{stderr}");
    let second = key_rows(&stdout);
    assert_eq!(kid_in(&second, "current"), next);
    assert_eq!(kid_in(&second, "previous"), current);
    assert_eq!(second.iter().find(|r| r[2] == "next").unwrap()[1], "ES256");

    // The current key cannot be retired; the previous one only with --force
    // while its tokens may be valid.
    let (ok, _, stderr) = keys_command(&isolated, &["retire", &next]).await;
    assert!(!ok && stderr.contains("rotate first"), "{stderr}");
    let (ok, _, stderr) = keys_command(&isolated, &["retire", &current]).await;
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    let (ok, stdout, stderr) = keys_command(&isolated, &["retire", &current, "--force"]).await;
    assert!(ok, "{stderr}");
    let retired = key_rows(&stdout).into_iter().find(|r| r[0] == current).unwrap();
    assert_eq!((retired[2].as_str(), retired[3].as_str()), ("retired", "no"));
    let (ok, stdout, _) = keys_command(&isolated, &["list"]).await;
    assert!(ok);
    assert_eq!(key_rows(&stdout).len(), 3, "{stdout}");

    // Unknown kids, unknown algorithms and a missing kid are refused clearly.
    let (ok, _, stderr) = keys_command(&isolated, &["retire", "no-such-kid"]).await;
    assert!(!ok && stderr.contains("no key no-such-kid"), "{stderr}");
    let (ok, _, stderr) = keys_command(&isolated, &["rotate", "--alg", "HS256"]).await;
    assert!(!ok && stderr.contains("RS256") && stderr.contains("ES256"), "{stderr}");
    let (ok, _, stderr) = keys_command(&isolated, &["retire"]).await;
    assert!(!ok && stderr.contains("KID"), "{stderr}");
    isolated.cleanup().await;
}
