//! Sync benchmark: how fast a sign-up in auth becomes visible in users.
//!
//! Runs the real pieces in one process against local PostgreSQL and NATS: an
//! auth outbox database, the outbox relay, and the users service with its
//! projection, on a fresh stream and fresh databases. Prints:
//!
//! - sign-up-to-visible latency (p50/p90/p99/max) at a steady rate: from just
//!   before the sign-up transaction commits to the moment the row is readable
//!   in the users database (polled every millisecond);
//! - events per second draining a backlog of 10,000 sign-ups: the relay alone
//!   (outbox → JetStream), the projection alone (JetStream → users), and both
//!   together (the relay started on a full outbox, the users service running).
//!
//! Environment: `BENCH_RATE` (sign-ups per second, default 200),
//! `BENCH_SIGNUPS` (default 2,000), `BENCH_BACKLOG` (default 10,000).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_common::events::AccountChange;
use gatehouse_common::infra;
use gatehouse_common::settings::SharedSettings;
use gatehouse_store::outbox::{enqueue, Relay};
use gatehouse_users::{Application, UsersConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

fn registration(i: usize) -> AccountChange {
    AccountChange::Registered {
        username: format!("bench{i}"),
        email: format!("bench{i}@example.com"),
        role: "USER".into(),
        display_name: format!("Bench {i}"),
        email_verified: false,
        active: true,
    }
}

struct Bench {
    auth: PgPool,
    auth_url: String,
    settings: SharedSettings,
    users_config: UsersConfig,
}

struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

impl Bench {
    async fn start_relay(&self) -> Running {
        let client = infra::nats(&self.settings.nats).await.expect("NATS is up");
        let relay = Relay::new(self.auth.clone(), client, &self.settings);
        let stop = CancellationToken::new();
        let task = tokio::spawn(relay.run(stop.clone()));
        Running { stop, task }
    }

    async fn start_users(&self) -> (Running, PgPool) {
        let app = Application::build(self.users_config.clone(), self.settings.clone()).await.expect("users app builds");
        let pool = app.pool().clone();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            app.run_until_stopped(token).await.expect("users app runs");
        });
        (Running { stop, task }, pool)
    }

    async fn pending(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.auth)
            .await
            .unwrap()
    }

    /// Writes `count` sign-ups, 100 per transaction.
    async fn backlog(&self, from: usize, count: usize) {
        for chunk in (from..from + count).collect::<Vec<_>>().chunks(100) {
            let mut tx = self.auth.begin().await.unwrap();
            for i in chunk {
                enqueue(&mut tx, Uuid::now_v7(), 1, registration(*i)).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

async fn users_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(pool).await.unwrap()
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(600), "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn unix_nanos() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128
}

/// A wall-clock difference; clock steps could make it negative, shown as zero.
fn nanos(value: i128) -> Duration {
    Duration::from_nanos(value.max(0) as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let rate = env_or("BENCH_RATE", 200);
    let signups = env_or("BENCH_SIGNUPS", 2_000);
    let backlog = env_or("BENCH_BACKLOG", 10_000);
    let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let auth_url = format!("{base}/{}", unique("gh_bench_auth_"));
    let users_url = format!("{base}/{}", unique("gh_bench_users_"));
    let auth = gatehouse_store::postgres(&auth_url, 16).await.expect("PostgreSQL is up");
    sqlx::migrate!("../auth/migrations").run(&auth).await.expect("auth migrations");
    let settings = SharedSettings::for_tests(&unique("bench:"), &unique("BENCH_"), &unique("bench"));
    let mut users_config = UsersConfig::for_tests(&users_url, "users-projection");
    users_config.projection_ack_wait_secs = 30;
    users_config.projection_concurrency = 16;
    let bench = Bench { auth, auth_url, settings, users_config };

    // 1. Latency at a steady rate, everything running.
    let relay = bench.start_relay().await;
    let (users, users_pool) = bench.start_users().await;
    let started: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    // Wall-clock times (Unix nanoseconds) of each sign-up's commit and visibility, to
    // split the latency at JetStream's own timestamp of the stored message.
    let walls: Arc<Mutex<HashMap<Uuid, (i128, i128)>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    // A row becomes visible when its transaction commits, which is exactly
    // when PostgreSQL delivers a NOTIFY sent from a trigger on the insert.
    // The trigger exists only in this benchmark's own database.
    sqlx::raw_sql(
        "CREATE FUNCTION bench_visible() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_notify('bench_visible', NEW.id::text); RETURN NULL; END; $$;
         CREATE TRIGGER bench_visible AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION bench_visible();",
    )
    .execute(&users_pool)
    .await
    .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&users_pool).await.unwrap();
    listener.listen("bench_visible").await.unwrap();
    let watcher = {
        let (started, latencies, walls) = (started.clone(), latencies.clone(), walls.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < signups {
                let notification = listener.recv().await.unwrap();
                let now = Instant::now();
                let id: Uuid = notification.payload().parse().unwrap();
                // The sign-up task records its start before committing, so it is there.
                if let Some(at) = started.lock().await.remove(&id) {
                    latencies.lock().await.push(now - at);
                    if let Some(wall) = walls.lock().await.get_mut(&id) {
                        wall.1 = unix_nanos();
                    }
                    seen += 1;
                }
            }
        })
    };
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..signups {
        ticker.tick().await;
        let (pool, started, walls) = (bench.auth.clone(), started.clone(), walls.clone());
        tokio::spawn(async move {
            let id = Uuid::now_v7();
            let mut tx = pool.begin().await.unwrap();
            enqueue(&mut tx, id, 1, registration(i)).await.unwrap();
            walls.lock().await.insert(id, (unix_nanos(), 0));
            started.lock().await.insert(id, Instant::now());
            tx.commit().await.unwrap();
        });
    }
    watcher.await.unwrap();
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    let (mut to_stream, mut from_stream) = (Vec::new(), Vec::new());
    {
        let js = async_nats::jetstream::new(infra::nats(&bench.settings.nats).await.unwrap());
        let stream = js.get_stream(&bench.settings.events_stream).await.unwrap();
        let walls = walls.lock().await;
        for sequence in 1..=signups as u64 {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let event: gatehouse_common::events::AccountEvent = serde_json::from_slice(&message.payload).unwrap();
            if let Some((committed, visible)) = walls.get(&event.user_id) {
                let stored = message.time.unix_timestamp_nanos();
                to_stream.push(nanos(stored - committed));
                from_stream.push(nanos(visible - stored));
            }
        }
    }
    to_stream.sort();
    from_stream.sort();

    // 2. Relay alone: a backlog in the outbox, the consumer stopped.
    users.stop().await;
    relay.stop().await;
    bench.backlog(signups, backlog).await;
    let start = Instant::now();
    let relay = bench.start_relay().await;
    wait_until("the relay to publish the backlog", async || bench.pending().await == 0).await;
    let relay_rate = backlog as f64 / start.elapsed().as_secs_f64();
    relay.stop().await;

    // 3. Projection alone: the backlog waiting in JetStream.
    // The clock starts once the service is built (connected, migrated, consumer
    // created): this measures draining, not start-up.
    let (users, users_pool) = bench.start_users().await;
    let start = Instant::now();
    let target = (signups + backlog) as i64;
    wait_until("the projection to apply the backlog", async || users_count(&users_pool).await == target).await;
    let projection_rate = backlog as f64 / start.elapsed().as_secs_f64();
    users.stop().await;

    // 4. Both from a cold start: a backlog in the outbox, nothing running.
    bench.backlog(signups + backlog, backlog).await;
    let (users, users_pool) = bench.start_users().await;
    let start = Instant::now();
    let relay = bench.start_relay().await;
    let target = (signups + 2 * backlog) as i64;
    wait_until("the pipeline to drain", async || users_count(&users_pool).await == target).await;
    let pipeline_rate = backlog as f64 / start.elapsed().as_secs_f64();
    users.stop().await;
    relay.stop().await;

    println!();
    println!("sync benchmark (outbox → relay → JetStream → users projection)");
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| sign-ups at a steady rate | {signups} at {rate}/s |");
    println!("| sign-up → visible p50 | {} |", ms(percentile(&latencies, 0.50)));
    println!("| sign-up → visible p90 | {} |", ms(percentile(&latencies, 0.90)));
    println!("| sign-up → visible p99 | {} |", ms(percentile(&latencies, 0.99)));
    println!("| sign-up → visible max | {} |", ms(*latencies.last().unwrap()));
    println!(
        "| of which commit → stored in JetStream (relay) p50 / p99 | {} / {} |",
        ms(percentile(&to_stream, 0.5)),
        ms(percentile(&to_stream, 0.99))
    );
    println!(
        "| of which stored → visible in users (projection) p50 / p99 | {} / {} |",
        ms(percentile(&from_stream, 0.5)),
        ms(percentile(&from_stream, 0.99))
    );
    println!("| relay drain, {backlog} events | {relay_rate:.0} events/s |");
    println!("| projection drain, {backlog} events | {projection_rate:.0} events/s |");
    println!("| relay + projection drain, {backlog} events | {pipeline_rate:.0} events/s |");
    println!();

    let js = async_nats::jetstream::new(infra::nats(&bench.settings.nats).await.unwrap());
    let _ = js.delete_stream(&bench.settings.events_stream).await;
    let _ = js.delete_stream(gatehouse_common::events::dead_letter_stream(&bench.settings)).await;
    bench.auth.close().await;
    users_pool.close().await;
    let _ = gatehouse_store::drop_database(&bench.auth_url).await;
    let _ = gatehouse_store::drop_database(&users_url).await;
}
