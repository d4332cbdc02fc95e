//! The outbox relay against real PostgreSQL and NATS: what it publishes, in
//! which order, with how many replicas, after a crash, and what it prunes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_common::events::{self, AccountChange, AccountEvent};
use gatehouse_common::infra;
use gatehouse_common::settings::SharedSettings;
use gatehouse_store::outbox::{enqueue, Outcome, Relay, RelayOptions};

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..16])
}

/// A throwaway auth database, its names on NATS, and cleanup.
struct Fixture {
    pool: PgPool,
    url: String,
    settings: SharedSettings,
    js: jetstream::Context,
}

impl Fixture {
    async fn new() -> Self {
        let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let url = format!("{base}/{}", unique("gh_outbox_"));
        let pool = gatehouse_store::postgres(&url, 8).await.expect("PostgreSQL is up");
        sqlx::migrate!("../../subgraphs/auth/migrations").run(&pool).await.expect("auth migrations apply");
        let settings = SharedSettings::for_tests(&unique("t:"), &unique("T_"), &unique("t"));
        let js = jetstream::new(infra::nats(&settings.nats).await.expect("NATS is up"));
        events::ensure_stream(&js, &settings).await.expect("stream created");
        Self { pool, url, settings, js }
    }

    async fn relay(&self, options: RelayOptions) -> Relay {
        let client = infra::nats(&self.settings.nats).await.unwrap();
        Relay::with_options(self.pool.clone(), client, &self.settings, options)
    }

    async fn enqueue(&self, user_id: Uuid, version: i64, change: AccountChange) -> AccountEvent {
        let mut tx = self.pool.begin().await.unwrap();
        let event = enqueue(&mut tx, user_id, version, change).await.unwrap();
        tx.commit().await.unwrap();
        event
    }

    async fn pending(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Every message in the stream, in stream order.
    async fn published(&self) -> Vec<(String, Option<String>, AccountEvent)> {
        let stream = self.js.get_stream(&self.settings.events_stream).await.unwrap();
        let mut messages = Vec::new();
        let mut sequence = 1;
        while let Ok(message) = stream.get_raw_message(sequence).await {
            let id = message.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str().to_owned());
            messages.push((message.subject.to_string(), id, serde_json::from_slice(&message.payload).unwrap()));
            sequence += 1;
        }
        messages
    }

    async fn cleanup(self) {
        let _ = self.js.delete_stream(&self.settings.events_stream).await;
        self.pool.close().await;
        gatehouse_store::drop_database(&self.url).await.unwrap();
    }
}

fn registration(name: &str) -> AccountChange {
    AccountChange::Registered {
        username: name.into(),
        email: format!("{name}@example.com"),
        role: "USER".into(),
        display_name: name.into(),
        email_verified: false,
        active: true,
    }
}

async fn drain(relay: &Relay) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    loop {
        match relay.try_process_next().await.expect("relay step") {
            Outcome::Empty => return outcomes,
            outcome => outcomes.push(outcome),
        }
    }
}

#[tokio::test]
async fn pending_events_are_published_with_the_event_id_as_message_id_then_marked() {
    let fx = Fixture::new().await;
    let relay = fx.relay(RelayOptions::default()).await;
    let id = Uuid::now_v7();
    let first = fx.enqueue(id, 1, registration("ada")).await;
    let second = fx.enqueue(id, 2, AccountChange::RoleChanged { role: "ADMIN".into() }).await;

    assert_eq!(drain(&relay).await.len(), 2, "one account's events go one per step");
    assert_eq!(fx.pending().await, 0);
    let published = fx.published().await;
    let prefix = &fx.settings.events_subject_prefix;
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].0, format!("{prefix}.user.registered"));
    assert_eq!(published[0].1.as_deref(), Some(first.event_id.to_string().as_str()));
    assert_eq!(published[0].2, first);
    assert_eq!(published[1].0, format!("{prefix}.user.role_changed"));
    assert_eq!(published[1].2, second);
    fx.cleanup().await;
}

#[tokio::test]
async fn only_the_lowest_unpublished_version_of_an_account_is_eligible() {
    let fx = Fixture::new().await;
    let relay = fx.relay(RelayOptions::default()).await;
    let busy = Uuid::now_v7();
    fx.enqueue(busy, 1, registration("busy")).await;
    for version in 2..=5 {
        fx.enqueue(busy, version, AccountChange::ActiveChanged { active: version % 2 == 0 }).await;
    }
    for i in 0..5 {
        fx.enqueue(Uuid::now_v7(), 1, registration(&format!("u{i}"))).await;
    }

    let outcomes = drain(&relay).await;
    assert_eq!(outcomes[0], Outcome::Published { published: 6, duplicates: 0, failed: 0 });
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    let versions: Vec<i64> =
        fx.published().await.into_iter().filter(|m| m.2.user_id == busy).map(|m| m.2.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    fx.cleanup().await;
}

#[tokio::test]
async fn several_relays_publish_each_event_once_and_keep_each_accounts_order() {
    let fx = Fixture::new().await;
    let users: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    for (i, user) in users.iter().enumerate() {
        fx.enqueue(*user, 1, registration(&format!("u{i}"))).await;
    }
    for version in 2..=4 {
        for user in &users {
            fx.enqueue(*user, version, AccountChange::RoleChanged { role: format!("R{version}") }).await;
        }
    }
    let options = RelayOptions { batch_size: 20, ..RelayOptions::default() };
    let mut replicas = Vec::new();
    for _ in 0..4 {
        let relay = fx.relay(options.clone()).await;
        replicas.push(tokio::spawn(async move {
            let (mut published, mut duplicates) = (0, 0);
            let mut idle = 0;
            // Another replica may hold the rows this one needs; stop after
            // several empty looks in a row.
            while idle < 20 {
                match relay.try_process_next().await.unwrap() {
                    Outcome::Published { published: p, duplicates: d, .. } => {
                        published += p;
                        duplicates += d;
                        idle = 0;
                    }
                    Outcome::Empty => {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (published, duplicates)
        }));
    }
    let mut total = (0, 0);
    for replica in replicas {
        let (p, d) = replica.await.unwrap();
        total = (total.0 + p, total.1 + d);
    }
    assert_eq!(fx.pending().await, 0);
    assert_eq!(total, (200, 0), "every event claimed by exactly one replica");
    let published = fx.published().await;
    assert_eq!(published.len(), 200);
    let mut last: HashMap<Uuid, i64> = HashMap::new();
    for (_, _, event) in published {
        let previous = last.insert(event.user_id, event.version).unwrap_or(0);
        assert_eq!(event.version, previous + 1, "account {} out of order", event.user_id);
    }
    fx.cleanup().await;
}

#[tokio::test]
async fn a_relay_killed_between_publish_and_mark_is_repaired_by_the_next_one_without_copies() {
    let fx = Fixture::new().await;
    for i in 0..10 {
        fx.enqueue(Uuid::now_v7(), 1, registration(&format!("u{i}"))).await;
    }
    let crashed = fx.relay(RelayOptions::default()).await;
    assert_eq!(crashed.publish_without_marking().await.unwrap(), 10);
    assert_eq!(fx.pending().await, 10, "nothing was marked");

    let next = fx.relay(RelayOptions::default()).await;
    assert_eq!(next.try_process_next().await.unwrap(), Outcome::Published { published: 10, duplicates: 10, failed: 0 });
    assert_eq!(fx.pending().await, 0);
    assert_eq!(fx.published().await.len(), 10, "JetStream kept one copy of each");
    fx.cleanup().await;
}

#[tokio::test]
async fn published_rows_are_pruned_after_the_retention_period_and_pending_ones_kept() {
    let fx = Fixture::new().await;
    let relay = fx.relay(RelayOptions { retention: Duration::ZERO, ..RelayOptions::default() }).await;
    for i in 0..3 {
        fx.enqueue(Uuid::now_v7(), 1, registration(&format!("u{i}"))).await;
    }
    drain(&relay).await;
    fx.enqueue(Uuid::now_v7(), 1, registration("late")).await;
    assert_eq!(relay.prune().await.unwrap(), 3);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&fx.pool).await.unwrap();
    assert_eq!((left, fx.pending().await), (1, 1));

    let keep = fx.relay(RelayOptions::default()).await;
    drain(&keep).await;
    assert_eq!(keep.prune().await.unwrap(), 0, "a week's retention keeps fresh rows");
    fx.cleanup().await;
}

#[tokio::test]
async fn a_running_relay_wakes_on_notify_without_waiting_for_its_poll_interval() {
    let fx = Fixture::new().await;
    let options = RelayOptions { poll_interval: Duration::from_secs(3600), ..RelayOptions::default() };
    let relay = fx.relay(options).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(relay.run(stop.clone()));

    for expected in 1..=3 {
        fx.enqueue(Uuid::now_v7(), 1, registration(&format!("u{expected}"))).await;
        let start = Instant::now();
        while fx.published().await.len() < expected {
            assert!(start.elapsed() < Duration::from_secs(60), "the relay never woke up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    stop.cancel();
    running.await.unwrap();
    fx.cleanup().await;
}

use gatehouse_common::testing::PrivateNats;

#[tokio::test]
async fn while_nats_is_down_the_relay_reports_the_broker_keeps_rows_pending_and_resumes_after() {
    let mut nats = PrivateNats::start().await;
    let mut fx = Fixture::new().await;
    // Move the fixture to the private server (and leave nothing on the shared one).
    fx.js.delete_stream(&fx.settings.events_stream).await.unwrap();
    fx.settings.nats.url = nats.url();
    fx.js = jetstream::new(infra::nats(&fx.settings.nats).await.unwrap());
    events::ensure_stream(&fx.js, &fx.settings).await.unwrap();
    let options = RelayOptions { publish_timeout: Duration::from_secs(1), ..RelayOptions::default() };
    let relay = fx.relay(options).await;

    fx.enqueue(Uuid::now_v7(), 1, registration("before")).await;
    assert_eq!(drain(&relay).await.len(), 1);
    nats.kill();
    fx.enqueue(Uuid::now_v7(), 1, registration("during")).await;
    let start = Instant::now();
    loop {
        // Either the client already knows it is disconnected, or the publish times out.
        match relay.try_process_next().await {
            Err(gatehouse_store::outbox::RelayError::Broker(_)) => break,
            other => assert!(start.elapsed() < Duration::from_secs(60), "relay did not notice: {other:?}"),
        }
    }
    assert_eq!(fx.pending().await, 1, "nothing is marked while the broker is down");

    nats.restart().await;
    let start = Instant::now();
    while fx.pending().await > 0 {
        let _ = relay.try_process_next().await;
        assert!(start.elapsed() < Duration::from_secs(60), "relay never resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fx.published().await.len(), 2, "published once each, across the restart");
    fx.cleanup().await;
}

#[tokio::test]
async fn every_published_event_carries_the_signature_of_its_subject_and_payload() {
    let fx = Fixture::new().await;
    let relay = fx.relay(RelayOptions::default()).await;
    let event = fx.enqueue(Uuid::now_v7(), 1, registration("signed")).await;
    drain(&relay).await;
    let stream = fx.js.get_stream(&fx.settings.events_stream).await.unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    let signature = message.headers.get(gatehouse_common::signing::SIGNATURE_HEADER).map(|v| v.as_str().to_owned());
    let signer = fx.settings.message_signer();
    assert_eq!(signer.verify(message.subject.as_str(), &message.payload, signature.as_deref()), Ok(()));
    assert_eq!(serde_json::from_slice::<AccountEvent>(&message.payload).unwrap(), event);
    fx.cleanup().await;
}

/// The private server, a fixture moved onto it, and a relay.
async fn on_private_nats() -> (PrivateNats, Fixture, Relay) {
    let nats = PrivateNats::start().await;
    let mut fx = Fixture::new().await;
    fx.js.delete_stream(&fx.settings.events_stream).await.unwrap();
    fx.settings.nats.url = nats.url();
    fx.js = jetstream::new(infra::nats(&fx.settings.nats).await.unwrap());
    let options = RelayOptions { publish_timeout: Duration::from_secs(1), ..RelayOptions::default() };
    let relay = fx.relay(options).await;
    (nats, fx, relay)
}

/// Steps the relay until nothing is pending.
async fn publish_everything(fx: &Fixture, relay: &Relay) {
    let start = Instant::now();
    while fx.pending().await > 0 {
        if relay.try_process_next().await.is_err() {
            // What the running relay does after a broker failure.
            let _ = relay.reconcile_stream().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the relay never published everything");
    }
}

fn event_ids(published: &[(String, Option<String>, AccountEvent)]) -> std::collections::BTreeSet<Uuid> {
    published.iter().map(|(_, _, event)| event.event_id).collect()
}

#[tokio::test]
async fn a_broker_that_lost_its_store_gets_the_stream_and_every_retained_event_back() {
    let (mut nats, fx, relay) = on_private_nats().await;
    assert_eq!(relay.reconcile_stream().await.unwrap(), 0, "a first look queues nothing again");
    let ada = Uuid::now_v7();
    let mut written = vec![fx.enqueue(ada, 1, registration("ada")).await];
    written.push(fx.enqueue(ada, 2, AccountChange::EmailVerified).await);
    written.push(fx.enqueue(Uuid::now_v7(), 1, registration("bob")).await);
    publish_everything(&fx, &relay).await;
    assert_eq!(relay.reconcile_stream().await.unwrap(), 0, "the same stream: nothing to do");

    nats.restart_empty().await;
    written.push(fx.enqueue(Uuid::now_v7(), 1, registration("after")).await);
    publish_everything(&fx, &relay).await;

    let published = fx.published().await;
    let expected: std::collections::BTreeSet<Uuid> = written.iter().map(|e| e.event_id).collect();
    assert_eq!(event_ids(&published), expected, "every retained event is in the new stream");
    assert_eq!(published.len(), 4, "each once");
    // Each account's events are in order in the new stream too.
    let ada_versions: Vec<i64> =
        published.iter().filter(|(_, _, e)| e.user_id == ada).map(|(_, _, e)| e.version).collect();
    assert_eq!(ada_versions, [1, 2]);
    fx.cleanup().await;
}

#[tokio::test]
async fn a_stream_another_service_created_again_is_noticed_too() {
    let (mut nats, fx, relay) = on_private_nats().await;
    relay.reconcile_stream().await.unwrap();
    fx.enqueue(Uuid::now_v7(), 1, registration("early")).await;
    publish_everything(&fx, &relay).await;

    nats.restart_empty().await;
    // The users projection got there first: publishing would now succeed
    // into a stream that lacks the earlier event.
    let js = jetstream::new(infra::nats(&fx.settings.nats).await.unwrap());
    events::ensure_stream(&js, &fx.settings).await.unwrap();
    assert_eq!(relay.reconcile_stream().await.unwrap(), 1, "the retained event is queued again");
    publish_everything(&fx, &relay).await;
    assert_eq!(fx.published().await.len(), 1);
    assert_eq!(relay.reconcile_stream().await.unwrap(), 0);
    fx.cleanup().await;
}
