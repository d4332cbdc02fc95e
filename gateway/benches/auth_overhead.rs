//! What authentication costs: the same federated query through two gateways
//! in one run, one verifying tokens (RS256 + revocation check + guards +
//! signed identity), one with authentication off. Prints a table.
//!
//! `cargo bench -p gatehouse-gateway --bench auth_overhead`
//! (`AUTH_BENCH_SECS` sets the seconds per measurement, default 10;
//! `AUTH_BENCH_CONNECTIONS` the concurrent clients, default 50).
//! Needs Redis and NATS on their local ports, like the tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use gatehouse_common::settings::SharedSettings;
use gatehouse_gateway::security::SecurityConfig;
use gatehouse_gateway::{Application, GatewayConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The allocator the shipped `gatehouse` binary uses, so the numbers are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUERY: &str = "{ me { id username displayName } }";
const ISSUER: &str = "https://auth.bench";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// The users and auth subgraphs as canned answers: the gateway's work is what is measured.
async fn subgraphs() -> (String, String) {
    let users = serve(axum::Router::new().route(
        "/graphql",
        axum::routing::post(|| async {
            axum::Json(json!({ "data": { "me": { "__typename": "User", "id": "u1", "displayName": "Ann" } } }))
        }),
    ))
    .await;
    let auth = serve(axum::Router::new().route(
        "/graphql",
        axum::routing::post(|body: axum::Json<Value>| async move {
            let count = body["variables"]["representations"].as_array().map_or(0, Vec::len);
            let entities: Vec<Value> = (0..count).map(|_| json!({ "__typename": "User", "username": "ann" })).collect();
            axum::Json(json!({ "data": { "_entities": entities } })).into_response()
        }),
    ))
    .await;
    let jwks = fixture("security-test-jwks.json");
    let jwks_url = serve(axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { jwks }
        }),
    ))
    .await;
    (format!("{users}/graphql|{auth}/graphql"), format!("{jwks_url}/jwks.json"))
}

async fn gateway(auth_on: bool, subgraphs: &str, jwks: &str, shared: &SharedSettings) -> (String, CancellationToken) {
    let (users, auth) = subgraphs.split_once('|').unwrap();
    let supergraph = format!("{}/../schema/supergraph.graphql", env!("CARGO_MANIFEST_DIR"));
    let mut config = GatewayConfig::new(supergraph.into(), "127.0.0.1:0".parse().unwrap());
    config.subgraph_urls = vec![format!("users={users}"), format!("auth={auth}")];
    // Every request of this load is identical; merging them in flight would
    // measure de-duplication luck, not the cost of authentication.
    config.dedupe_subgraph_requests = false;
    config.security = if auth_on {
        SecurityConfig {
            jwks_url: jwks.into(),
            token_issuer: ISSUER.into(),
            token_audience: "gatehouse".into(),
            ..SecurityConfig::default()
        }
    } else {
        SecurityConfig::off()
    };
    let app = Application::build_with(config, Some(shared.clone())).await.unwrap();
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    (url, stop)
}

fn token() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "iss": ISSUER, "aud": "gatehouse", "sub": uuid::Uuid::new_v4(), "sid": uuid::Uuid::new_v4(),
        "jti": "bench", "iat": now, "exp": now + 3600, "scope": "guest user",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("security-test".into());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(fixture("security-test-key.pem").as_bytes()).unwrap(),
    )
    .unwrap()
}

struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
}

async fn load(url: &str, bearer: Option<&str>, connections: usize, seconds: u64) -> Run {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    let body = json!({ "query": QUERY }).to_string();
    let expected = json!({ "data": { "me": { "id": "u1", "username": "ann", "displayName": "Ann" } } });
    // Check the answer before counting anything.
    let mut first = client.post(url).header("content-type", "application/json").body(body.clone());
    if let Some(token) = bearer {
        first = first.bearer_auth(token);
    }
    let answer: Value = first.send().await.unwrap().json().await.unwrap();
    assert_eq!(answer, expected, "the gateway must answer correctly before it is measured");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, body, url, failures) = (client.clone(), body.clone(), url.to_owned(), failures.clone());
        let bearer = bearer.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let mut request = client.post(&url).header("content-type", "application/json").body(body.clone());
                if let Some(token) = &bearer {
                    request = request.bearer_auth(token);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(started.elapsed());
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)));
    Run {
        rps: latencies.len() as f64 / seconds as f64,
        p50_ms: pick(0.50).map_or(0.0, |d| d.as_secs_f64() * 1e3),
        p99_ms: pick(0.99).map_or(0.0, |d| d.as_secs_f64() * 1e3),
        failures: failures.load(Ordering::Relaxed),
    }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("AUTH_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: usize = std::env::var("AUTH_BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = SharedSettings::for_tests(&format!("bench:{id}:"), &format!("BENCH_{id}"), &format!("bench{id}"));
    let (subgraphs, jwks) = subgraphs().await;
    let (open_url, stop_open) = gateway(false, &subgraphs, &jwks, &shared).await;
    let (auth_url, stop_auth) = gateway(true, &subgraphs, &jwks, &shared).await;
    let token = token();

    // Warm both (connections, plan caches, JWKS), then alternate, twice each.
    let _ = load(&open_url, None, connections, 2).await;
    let _ = load(&auth_url, Some(&token), connections, 2).await;
    let mut off = Vec::new();
    let mut on = Vec::new();
    for _ in 0..2 {
        off.push(load(&open_url, None, connections, seconds).await);
        on.push(load(&auth_url, Some(&token), connections, seconds).await);
    }
    let best = |runs: &[Run]| {
        runs.iter().max_by(|a, b| a.rps.total_cmp(&b.rps)).map(|r| (r.rps, r.p50_ms, r.p99_ms, r.failures)).unwrap()
    };
    let (off_rps, off_p50, off_p99, off_fail) = best(&off);
    let (on_rps, on_p50, on_p99, on_fail) = best(&on);
    println!("\nAuthenticated federated query `{QUERY}`, {connections} connections, {seconds} s per run (best of 2)\n");
    println!("| gateway | RPS | p50 ms | p99 ms | failures |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!("| auth off | {off_rps:.0} | {off_p50:.2} | {off_p99:.2} | {off_fail} |");
    println!("| auth on (RS256, revocation, guards, signed identity) | {on_rps:.0} | {on_p50:.2} | {on_p99:.2} | {on_fail} |");
    println!("\nauth on / auth off: {:.1}% of the throughput (target: at least 90%)", on_rps / off_rps * 100.0);
    stop_open.cancel();
    stop_auth.cancel();
}
