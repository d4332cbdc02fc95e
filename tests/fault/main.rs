//! The fault suite: Gatehouse on clustered NATS and Redis, two replicas of
//! every service, under load, while the faults a deployment meets happen.
//!
//! It starts real processes on loopback: 3 `nats-server` nodes with
//! JetStream clustered (the events stream kept on all 3), a Redis Cluster of
//! 6 `redis-server` (3 primaries, 3 replicas), two replicas each of auth,
//! users and the gateway (the `gatehouse` binary), and a TCP balancer in
//! front of each service. Clients sign up, verify, log in, refresh and ask
//! `me` through the gateways' balancer while the suite kills with SIGKILL,
//! one after another: the events stream's JetStream leader, an auth replica,
//! a users replica, a gateway, and a Redis primary (its replica takes over).
//! Between the faults it rotates the signing keys twice with `gatehouse keys
//! rotate` (the second makes an ES256 key current), which no request may
//! notice.
//!
//! It prints a table (and writes it to `$FAULT_REPORT` when set) and fails
//! when a request fails outside a fault's window, when an account event is
//! lost or applied twice, or when a gateway still accepts a revoked
//! session's token after 1 s.
//!
//! Run alone: `cargo test -p gatehouse --test fault -- --nocapture`.

mod balancer;
mod cluster;
mod load;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use balancer::Balancer;
use cluster::{eventually, NatsCluster, RedisCluster, Service};
use load::{MailFolder, Recorder};

/// How long the load runs; the faults happen during it.
const LOAD: Duration = Duration::from_secs(60);
/// Concurrent clients.
const CLIENTS: usize = 12;
/// A request that started this long after a fault's recovery is outside its window.
const GRACE: Duration = Duration::from_secs(3);

/// A fault and the time it lasted, in seconds into the run.
struct Fault {
    name: String,
    from: f64,
    to: f64,
}

/// Installs, in the users database, a log of every applied event version, so
/// the suite can tell a lost event from one applied twice.
const APPLIED_LOG: &str = "
CREATE TABLE fault_applied (user_id uuid NOT NULL, version bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION fault_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.version <> OLD.version THEN
    INSERT INTO fault_applied (user_id, version) VALUES (NEW.id, NEW.version);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fault_log AFTER INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION fault_log();
";

/// Drops the run's databases however the test ends.
struct Databases {
    urls: Vec<String>,
}

impl Drop for Databases {
    fn drop(&mut self) {
        let urls = self.urls.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                for url in urls {
                    let _ = gatehouse_store::drop_database(&url).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_clustered_nats_and_redis_survive_their_faults() {
    let started = Instant::now();
    let run = format!("f{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    let mut nats = NatsCluster::start(dir.path()).await;
    say(&format!("JetStream cluster up in {:.1} s", started.elapsed().as_secs_f64()));
    let mut redis = RedisCluster::start(dir.path()).await;
    let postgres = std::env::var("FAULT_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let databases = Databases { urls: vec![format!("{postgres}/{run}_auth"), format!("{postgres}/{run}_users")] };
    say(&format!("clusters up in {:.1} s", started.elapsed().as_secs_f64()));

    let auth_lb_port = cluster::free_port();
    let issuer = format!("http://127.0.0.1:{auth_lb_port}");
    let stream = format!("FAULT_{run}");
    let env: Vec<(String, String)> = [
        ("GATEHOUSE_IDENTITY_SECRET", format!("fault-identity-secret-{}", uuid::Uuid::new_v4().simple())),
        ("GATEHOUSE_DEV_DIR", dir.path().join("dev").display().to_string()),
        ("REDIS_MODE", "cluster".into()),
        ("REDIS_URL", redis.urls()),
        ("REDIS_KEY_PREFIX", format!("{run}:")),
        ("NATS_URL", nats.urls()),
        ("GATEHOUSE_EVENTS_STREAM", stream.clone()),
        ("GATEHOUSE_EVENTS_SUBJECT_PREFIX", run.clone()),
        ("GATEHOUSE_EVENTS_REPLICAS", "3".into()),
        ("AUTH_DATABASE_URL", databases.urls[0].clone()),
        ("USERS_DATABASE_URL", databases.urls[1].clone()),
        ("AUTH_RSA_KEY_BITS", "2048".into()),
        // Short enough that the run can rotate the signing keys twice without
        // --force: each next key is published for the JWKS cache age plus
        // the reload interval before it signs.
        ("AUTH_JWKS_MAX_AGE_SECS", "2".into()),
        ("AUTH_KEYS_RELOAD_SECS", "1".into()),
        ("GATEWAY_JWKS_MIN_REFRESH_SECS", "1".into()),
        ("AUTH_MAIL_DIR", dir.path().join("mail").display().to_string()),
        ("AUTH_MAIL_POLL_SECS", "1".into()),
        ("AUTH_ISSUER", issuer.clone()),
        ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "1000000".into()),
        ("AUTH_LOGIN_LIMIT_PER_IP", "1000000".into()),
        ("AUTH_MAIL_LIMIT_PER_IP", "1000000".into()),
        ("GATEWAY_TOKEN_ISSUER", issuer.clone()),
        ("GATEWAY_JWKS_URL", format!("{issuer}/.well-known/jwks.json")),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("migrate")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("GATEHOUSE_ENV")
        .env_remove("GATEHOUSE_CONFIG")
        .output()
        .expect("gatehouse migrate runs");
    assert!(migrated.status.success(), "migrate: {}", String::from_utf8_lossy(&migrated.stderr));
    let users_db = gatehouse_store::postgres(&databases.urls[1], 2).await.unwrap();
    sqlx::raw_sql(APPLIED_LOG).execute(&users_db).await.unwrap();
    let auth_db = gatehouse_store::postgres(&databases.urls[0], 2).await.unwrap();

    // Auth first (one at a time: the first creates the signing key ring), then users.
    let mut auths = Vec::new();
    for replica in 1..=2 {
        let mut service = Service::spawn("auth", replica, &env, dir.path());
        service.wait_ready(&http).await;
        auths.push(service);
    }
    let auth_lb = Balancer::start_on(auth_lb_port, auths.iter().map(|s| s.port).collect()).await;
    let mut users: Vec<Service> = (1..=2).map(|r| Service::spawn("users", r, &env, dir.path())).collect();
    for service in &mut users {
        service.wait_ready(&http).await;
    }
    let users_lb = Balancer::start(users.iter().map(|s| s.port).collect()).await;
    let mut gateway_env = env.clone();
    gateway_env.push((
        "GATEWAY_SUBGRAPH_URLS".into(),
        format!("auth={},users={}", auth_lb.url("/graphql"), users_lb.url("/graphql")),
    ));
    let mut gateways: Vec<Service> = (1..=2).map(|r| Service::spawn("gateway", r, &gateway_env, dir.path())).collect();
    for service in &mut gateways {
        service.wait_ready(&http).await;
    }
    let gateway_lb = Balancer::start(gateways.iter().map(|s| s.port).collect()).await;
    let graphql_url = gateway_lb.url("/graphql");
    let gateway_urls: Vec<String> = gateways.iter().map(|g| format!("http://127.0.0.1:{}/graphql", g.port)).collect();
    say(&format!("services up in {:.1} s", started.elapsed().as_secs_f64()));

    // The prober's account, made before the faults.
    let mail = MailFolder::new(dir.path().join("mail"));
    let prober_login = prober_account(&http, &graphql_url, &mail, &run).await;

    let run_started = Instant::now();
    let recorder = Recorder::new(run_started);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            tokio::spawn(load::client(
                worker,
                run.clone(),
                graphql_url.clone(),
                mail.clone(),
                recorder.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let prober = tokio::spawn(load::revocation_prober(
        graphql_url.clone(),
        gateway_urls.clone(),
        prober_login,
        Duration::from_millis(1500),
        stop.clone(),
    ));

    let jetstream = async_nats::jetstream::new(
        async_nats::connect(nats.urls().split(',').collect::<Vec<_>>().as_slice()).await.unwrap(),
    );
    let mut faults = Vec::new();
    let at = |secs: u64| run_started + Duration::from_secs(secs);

    // Key rotations are not faults: no request may fail around them. The
    // second makes an ES256 key current for the rest of the run, through
    // the faults below.
    tokio::time::sleep_until(at(5).into()).await;
    rotate_keys(&env, &["--alg", "ES256"]).await;

    tokio::time::sleep_until(at(8).into()).await;
    let leader = stream_leader(&jetstream, &stream).await.expect("the stream has a leader");
    let from = recorder.now();
    nats.node_mut(&leader).expect("the leader is ours").process.kill();
    eventually("a new stream leader", Duration::from_secs(30), || async {
        stream_leader(&jetstream, &stream).await.is_some_and(|l| l != leader)
    })
    .await;
    // The fault lasts until the users replicas have every event committed
    // while there was no leader (an event lost in transit comes back after
    // the projection's ack wait).
    caught_up(&auth_db, &users_db, chrono::Utc::now()).await;
    faults.push(Fault { name: format!("JetStream stream leader `{leader}` killed"), from, to: recorder.now() });

    tokio::time::sleep_until(at(18).into()).await;
    let from = recorder.now();
    auths[0].process.kill();
    faults.push(Fault { name: "auth replica 1 killed".into(), from, to: recorder.now() });

    tokio::time::sleep_until(at(23).into()).await;
    rotate_keys(&env, &[]).await;

    tokio::time::sleep_until(at(26).into()).await;
    let from = recorder.now();
    users[0].process.kill();
    // Events the killed replica held unacknowledged are delivered again after the ack wait.
    caught_up(&auth_db, &users_db, chrono::Utc::now()).await;
    faults.push(Fault { name: "users replica 1 killed".into(), from, to: recorder.now() });

    tokio::time::sleep_until(at(34).into()).await;
    let from = recorder.now();
    gateways[0].process.kill();
    faults.push(Fault { name: "gateway 1 killed".into(), from, to: recorder.now() });

    tokio::time::sleep_until(at(42).into()).await;
    let primary = redis.a_primary();
    let from = recorder.now();
    redis.node_mut(primary).process.kill();
    // The cluster first notices (node timeout 1 s), then promotes the replica.
    tokio::time::sleep(Duration::from_millis(500)).await;
    eventually("the Redis Cluster healthy again", Duration::from_secs(30), || {
        let healthy = redis.healthy();
        async move { healthy }
    })
    .await;
    faults.push(Fault { name: format!("Redis primary :{primary} killed"), from, to: recorder.now() });

    tokio::time::sleep_until((run_started + LOAD).into()).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(30), client).await;
    }
    let revocations = prober.await.unwrap();
    let records = recorder.records();

    // Every committed event published and applied.
    let convergence = Instant::now();
    let converged = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&auth_db)
                .await
                .unwrap_or(i64::MAX);
            let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&auth_db).await.unwrap();
            let applied: i64 = sqlx::query_scalar("SELECT count(DISTINCT (user_id, version)) FROM fault_applied")
                .fetch_one(&users_db)
                .await
                .unwrap();
            if pending == 0 && applied >= committed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .is_ok();
    say(&format!("events converged: {converged} ({:.1} s after the load)", convergence.elapsed().as_secs_f64()));

    let committed: Vec<(uuid::Uuid, i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT user_id, version, created_at FROM outbox").fetch_all(&auth_db).await.unwrap();
    let applied: Vec<(uuid::Uuid, i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT user_id, version, applied_at FROM fault_applied").fetch_all(&users_db).await.unwrap();
    let mut first_applied = BTreeMap::new();
    let mut applied_twice = 0;
    for (user, version, at) in &applied {
        if first_applied.insert((*user, *version), *at).is_some() {
            applied_twice += 1;
        }
    }
    let mut lost = 0;
    let mut max_lag = Duration::ZERO;
    for (user, version, created) in &committed {
        match first_applied.get(&(*user, *version)) {
            Some(applied_at) => {
                let lag = (*applied_at - *created).to_std().unwrap_or_default();
                max_lag = max_lag.max(lag);
            }
            None => lost += 1,
        }
    }

    let report =
        report(&records, &faults, committed.len(), first_applied.len(), lost, applied_twice, max_lag, &revocations);
    println!("{report}");
    if let Ok(path) = std::env::var("FAULT_REPORT") {
        std::fs::write(path, &report).unwrap();
    }

    let outside: Vec<&load::Record> =
        records.iter().filter(|r| r.failure.is_some() && !inside_a_window(r, &faults)).collect();
    let logs = || {
        let mut text = String::new();
        for service in auths.iter().chain(&users).chain(&gateways) {
            text.push_str(&format!("--- {}\n{}\n", service.process.name, service.process.tail(15)));
        }
        text
    };
    assert!(records.iter().filter(|r| r.failure.is_none()).count() > 100, "the load hardly ran:\n{report}\n{}", logs());
    assert!(
        outside.is_empty(),
        "failures outside every fault window: {:?}\n{}",
        &outside[..outside.len().min(10)],
        logs()
    );
    assert!(converged && lost == 0, "{lost} events lost:\n{report}\n{}", logs());
    assert_eq!(applied_twice, 0, "events applied twice:\n{report}");
    for (i, delays) in revocations.delays_ms.iter().enumerate() {
        assert!(
            delays.iter().all(|&ms| ms <= 1000),
            "gateway {} took over 1 s to refuse a revoked token: {delays:?}",
            i + 1
        );
    }
    assert!(revocations.delays_ms.iter().any(|d| d.len() >= 5), "too few revocations measured: {revocations:?}");
    let signing: String =
        sqlx::query_scalar("SELECT alg FROM signing_keys WHERE state = 'current'").fetch_one(&auth_db).await.unwrap();
    assert_eq!(signing, "ES256", "the second rotation made the ES256 key current");
    users_db.close().await;
    auth_db.close().await;
    drop(databases);
}

/// `gatehouse keys rotate` against the run's auth database, as an operator
/// would run it beside the serving replicas; it must not need `--force`.
async fn rotate_keys(env: &[(String, String)], args: &[&str]) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["keys", "rotate"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("GATEHOUSE_ENV")
        .env_remove("GATEHOUSE_CONFIG")
        .output()
        .await
        .expect("gatehouse keys rotate runs");
    assert!(output.status.success(), "keys rotate: {}", String::from_utf8_lossy(&output.stderr));
    let current = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|line| line.contains(" current "))
        .map(|line| line.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    say(&format!("signing keys rotated; now signing: {current}"));
}

fn say(line: &str) {
    eprintln!("[fault] {line}");
}

/// Whether a request was in flight during a fault or its grace period.
fn inside_a_window(record: &load::Record, faults: &[Fault]) -> bool {
    faults.iter().any(|f| record.done >= f.from && record.at <= f.to + GRACE.as_secs_f64())
}

/// Signs up and verifies the prober's account; answers its login and password.
async fn prober_account(http: &reqwest::Client, graphql: &str, mail: &MailFolder, run: &str) -> (String, String) {
    let recorder = Recorder::new(Instant::now());
    let account = load::sign_up(http, graphql, mail, &recorder, &format!("{run}_prober")).await;
    let account = account.unwrap_or_else(|| panic!("the prober's account: {:?}", recorder.records()));
    (account.login, account.password)
}

/// Waits until every event committed up to `cutoff` has been applied by the users replicas.
async fn caught_up(auth_db: &sqlx::PgPool, users_db: &sqlx::PgPool, cutoff: chrono::DateTime<chrono::Utc>) {
    let committed: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT user_id, version FROM outbox WHERE created_at <= $1")
            .bind(cutoff)
            .fetch_all(auth_db)
            .await
            .unwrap();
    let (users, versions): (Vec<uuid::Uuid>, Vec<i64>) = committed.into_iter().unzip();
    eventually("the users replicas caught up", Duration::from_secs(60), || {
        let (users, versions) = (users.clone(), versions.clone());
        async move {
            let applied: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT (user_id, version)) FROM fault_applied
                 WHERE (user_id, version) IN (SELECT * FROM unnest($1::uuid[], $2::bigint[]))",
            )
            .bind(&users)
            .bind(&versions)
            .fetch_one(users_db)
            .await
            .unwrap_or(0);
            applied as usize == users.len()
        }
    })
    .await;
}

/// The server name of the stream's JetStream leader.
async fn stream_leader(jetstream: &async_nats::jetstream::Context, stream: &str) -> Option<String> {
    let mut handle = jetstream.get_stream(stream).await.ok()?;
    let info = handle.info().await.ok()?;
    info.cluster.as_ref().and_then(|c| c.leader.clone())
}

#[allow(clippy::too_many_arguments)]
fn report(
    records: &[load::Record],
    faults: &[Fault],
    committed: usize,
    applied: usize,
    lost: usize,
    applied_twice: usize,
    max_lag: Duration,
    revocations: &load::Revocations,
) -> String {
    let mut out = String::new();
    out.push_str("| Fault | From (s) | Recovered (s) |\n|---|---:|---:|\n");
    for fault in faults {
        out.push_str(&format!("| {} | {:.1} | {:.1} |\n", fault.name, fault.from, fault.to));
    }
    out.push_str(
        "\n| Operation | Attempted | Succeeded | Failed in a fault window | Failed outside | Failures by code |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    #[derive(Default)]
    struct Row {
        attempted: usize,
        succeeded: usize,
        inside: usize,
        outside: usize,
        codes: BTreeMap<String, usize>,
    }
    let mut by_op: BTreeMap<&str, Row> = BTreeMap::new();
    for record in records {
        let row = by_op.entry(record.op).or_default();
        row.attempted += 1;
        match &record.failure {
            None => row.succeeded += 1,
            Some(code) => {
                if inside_a_window(record, faults) {
                    row.inside += 1;
                } else {
                    row.outside += 1;
                }
                let code = code.split_whitespace().next().unwrap_or_default().to_owned();
                *row.codes.entry(code).or_default() += 1;
            }
        }
    }
    for op in ["signUp", "verifyEmail", "login", "refreshSession", "me"] {
        let Some(row) = by_op.get(op) else { continue };
        let codes = if row.codes.is_empty() {
            "none".to_owned()
        } else {
            row.codes.iter().map(|(c, n)| format!("{c} × {n}")).collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!(
            "| `{op}` | {} | {} | {} | {} | {codes} |\n",
            row.attempted, row.succeeded, row.inside, row.outside
        ));
    }
    out.push_str(&format!(
        "\n| Account events | |\n|---|---:|\n| committed (outbox rows) | {committed} |\n| applied by the users \
         replicas | {applied} |\n| lost | {lost} |\n| applied twice | {applied_twice} |\n| max sync lag (commit → \
         applied) | {} ms |\n",
        max_lag.as_millis()
    ));
    out.push_str("\n| Revocation seen by | Revocations | Max (ms) | Over 1 s |\n|---|---:|---:|---:|\n");
    for (i, delays) in revocations.delays_ms.iter().enumerate() {
        let max = delays.iter().max().copied().unwrap_or(0);
        let over = delays.iter().filter(|&&d| d > 1000).count();
        out.push_str(&format!("| gateway {} | {} | {} | {} |\n", i + 1, delays.len(), max, over));
    }
    out.push_str(&format!(
        "\nLoad: {CLIENTS} clients for {} s; a failure counts as inside a fault window from the fault until {} s \
         after the suite saw it recovered. {} revocation probes skipped (their login or logout failed).\n",
        LOAD.as_secs(),
        GRACE.as_secs(),
        revocations.skipped
    ));
    out
}
