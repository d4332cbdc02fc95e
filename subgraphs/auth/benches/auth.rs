//! Auth load harness (not a test): prints a table, asserts nothing.
//!
//! Run: `cargo bench -p gatehouse-auth --bench auth` with PostgreSQL, Redis and
//! NATS on their default local ports. It spawns the real service on port 0
//! with production-grade costs (argon2id m=19456 KiB t=2 p=1, 3072-bit RSA)
//! and measures, over HTTP:
//!
//! 1. `login` latency p50/p99, one at a time;
//! 2. `refreshSession` throughput with concurrent clients, next to the raw
//!    RS256 signing rate of the same key on every core (the physical limit,
//!    since each refresh signs one access token);
//! 3. the p99 of a cheap query (`{ __typename }`) while 50 logins run at once.
//!
//! The load generator runs in the same process and shares the two cores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use gatehouse_auth::tokens::AccessClaims;
use gatehouse_auth::{Application, AuthConfig};
use gatehouse_common::settings::SharedSettings;

const LOGIN_SAMPLES: usize = 40;
const REFRESH_CLIENTS: usize = 16;
const REFRESH_SECONDS: u64 = 5;
const CONCURRENT_LOGINS: usize = 50;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Bench {
    client: reqwest::Client,
    url: String,
}

impl Bench {
    async fn post(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    async fn login(&self) -> Value {
        self.post(
            "mutation { login(login: \"demo_user\", password: \"gatehouse-user-dev\", refreshTokenIn: BODY) { accessToken refreshToken } }",
            json!({}),
        )
        .await
    }

    async fn refresh(&self, token: &str) -> Option<String> {
        let body = self
            .post(
                "mutation($t: String) { refreshSession(refreshToken: $t) { accessToken refreshToken } }",
                json!({ "t": token }),
            )
            .await;
        body["data"]["refreshSession"]["refreshToken"].as_str().map(str::to_owned)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mail = tempfile::tempdir()?;
    let config = AuthConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("postgres://postgres@127.0.0.1:5432/gh_auth_bench_{id}"),
        keys_reload_secs: 0,
        mail_dir: Some(mail.path().to_owned()),
        login_limit_per_account: u64::MAX / 2,
        login_limit_per_ip: u64::MAX / 2,
        ..AuthConfig::default()
    };
    let shared =
        SharedSettings::for_tests(&format!("gh-bench:{id}:"), &format!("GHBENCH_{id}"), &format!("ghbench_{id}"));
    let app = Application::build(config.clone(), shared.clone()).await?;
    let pool = app.service().pool().clone();
    gatehouse_auth::seed::seed(&pool, &config, &shared).await?;
    let ring = app.keys().ring();
    let bits = ring.current.bits();
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let bench = Arc::new(Bench { client: reqwest::Client::new(), url });

    // Warm up connections and caches.
    for _ in 0..3 {
        assert!(bench.login().await["errors"].is_null());
    }

    // 1. Login latency, sequential.
    let mut login_times = Vec::with_capacity(LOGIN_SAMPLES);
    for _ in 0..LOGIN_SAMPLES {
        let start = Instant::now();
        let body = bench.login().await;
        login_times.push(start.elapsed());
        assert!(body["errors"].is_null(), "{body}");
    }
    let login_p50 = percentile(&mut login_times, 0.50);
    let login_p99 = percentile(&mut login_times, 0.99);

    // 2a. Raw RS256 signing rate of the current key, on every core.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let claims = AccessClaims {
        iss: "bench".into(),
        aud: "bench".into(),
        sub: uuid::Uuid::new_v4().to_string(),
        sid: uuid::Uuid::new_v4().to_string(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: 0,
        exp: 0,
        scope: "guest user".into(),
        amr: vec!["pwd".into()],
        acr: "aal1".into(),
    };
    let signed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (ring, claims, signed, stop) = (ring.clone(), claims.clone(), signed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    ring.current.sign_jwt(&claims).unwrap();
                    signed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    let sign_rate = signed.load(Ordering::Relaxed) as f64 / 3.0;

    // 2b. refreshSession throughput: each client rotates its own session.
    let mut tokens = Vec::new();
    for _ in 0..REFRESH_CLIENTS {
        tokens.push(bench.login().await["data"]["login"]["refreshToken"].as_str().unwrap().to_owned());
    }
    let refreshed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(REFRESH_SECONDS);
    let workers: Vec<_> = tokens
        .into_iter()
        .map(|mut token| {
            let (bench, refreshed) = (bench.clone(), refreshed.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    token = bench.refresh(&token).await.expect("refresh succeeds");
                    refreshed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for worker in workers {
        worker.await?;
    }
    let refresh_rate = refreshed.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();

    // 3. A cheap query's latency while 50 logins run at once.
    let logins_done = Arc::new(AtomicBool::new(false));
    let probe = {
        let (bench, done) = (bench.clone(), logins_done.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                let body = bench.post("{ __typename }", json!({})).await;
                samples.push(start.elapsed());
                assert_eq!(body["data"]["__typename"], "Query");
            }
            samples
        })
    };
    let load_started = Instant::now();
    let logins: Vec<_> = (0..CONCURRENT_LOGINS)
        .map(|_| {
            let bench = bench.clone();
            tokio::spawn(async move { bench.login().await })
        })
        .collect();
    for login in logins {
        assert!(login.await?["errors"].is_null());
    }
    let burst = load_started.elapsed();
    logins_done.store(true, Ordering::Relaxed);
    let mut cheap = probe.await?;
    let cheap_p50 = percentile(&mut cheap, 0.50);
    let cheap_p99 = percentile(&mut cheap, 0.99);

    println!();
    println!("auth subgraph benchmark ({cores} cores, RSA-{bits}, argon2id m=19456 KiB t=2 p=1)");
    println!("{:<52} {:>14}", "measure", "value");
    println!("{:<52} {:>14}", "login latency p50 (sequential)", ms(login_p50));
    println!("{:<52} {:>14}", "login latency p99 (sequential)", ms(login_p99));
    println!("{:<52} {:>12.0}/s", format!("raw RS256 signing, RSA-{bits}, {cores} threads"), sign_rate);
    println!("{:<52} {:>12.0}/s", format!("refreshSession over HTTP, {REFRESH_CLIENTS} clients"), refresh_rate);
    println!("{:<52} {:>13.0}%", "refreshSession / raw signing", 100.0 * refresh_rate / sign_rate);
    println!("{:<52} {:>14}", format!("{CONCURRENT_LOGINS} concurrent logins, wall time"), ms(burst));
    println!("{:<52} {:>14}", format!("cheap query p50 during the burst ({} samples)", cheap.len()), ms(cheap_p50));
    println!("{:<52} {:>14}", "cheap query p99 during the burst", ms(cheap_p99));

    shutdown.cancel();
    pool.close().await;
    let _ = gatehouse_store::drop_database(&config.database_url).await;
    let mut redis = gatehouse_common::infra::redis(&shared.redis()).await?;
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", shared.redis_key_prefix)).query_async(&mut redis).await?;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut redis).await?;
    }
    Ok(())
}
