//! End to end: auth outbox → relay → JetStream → users projection, including
//! crashes, a broker restart and a consumer that was away.

mod support;

use std::collections::HashSet;

use futures::future::join_all;
use uuid::Uuid;

use gatehouse_common::events::AccountChange;
use gatehouse_common::testing::PrivateNats as NatsServer;
use gatehouse_store::outbox::{Outcome, RelayOptions};
use gatehouse_users::UsersConfig;
use support::{eventually, test_settings, unique, AuthSide, TestApp};

/// `count` sign-ups, written concurrently like a burst of requests.
async fn sign_up_burst(auth: &AuthSide, prefix: &str, count: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let signups = chunk.iter().map(|i| auth.sign_up_named(format!("{prefix}{i}")));
        ids.extend(join_all(signups).await);
    }
    ids
}

trait SignUpNamed {
    async fn sign_up_named(&self, name: String) -> Uuid;
}

impl SignUpNamed for AuthSide {
    async fn sign_up_named(&self, name: String) -> Uuid {
        self.sign_up(&name).await
    }
}

async fn wait_for_users(app: &TestApp, expected: i64) {
    eventually(&format!("{expected} users"), || async { (app.user_count().await == expected).then_some(()) }).await;
}

#[tokio::test]
async fn a_burst_of_a_thousand_sign_ups_arrives_exactly_once() {
    let app = TestApp::spawn().await;
    let auth = AuthSide::create().await;
    let (stop_relay, relay) = auth.spawn_relay(&app.settings).await;

    let ids = sign_up_burst(&auth, "burst", 1_000).await;
    // A hundred of them verify their email and are promoted straight away.
    for id in &ids[..100] {
        auth.change(*id, 2, AccountChange::EmailVerified).await;
        auth.change(*id, 3, AccountChange::RoleChanged { role: "ADMIN".into() }).await;
    }

    wait_for_users(&app, 1_000).await;
    for id in &ids[..100] {
        app.wait_for_version(*id, 3).await;
    }
    app.wait_until_drained().await;
    assert_eq!(auth.pending().await, 0);
    assert_eq!(app.stream_messages().await, 1_200, "each event published once");
    let stored: HashSet<Uuid> =
        sqlx::query_scalar("SELECT id FROM users").fetch_all(&app.pool).await.unwrap().into_iter().collect();
    assert_eq!(stored, ids.iter().copied().collect());
    let (admins, verified): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE role = 'ADMIN' AND version = 3), count(*) FILTER (WHERE email_verified) FROM users",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((admins, verified), (100, 100));
    let untouched: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE version = 1 AND role = 'USER'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(untouched, 900);

    stop_relay.cancel();
    relay.await.unwrap();
    auth.cleanup().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_relay_killed_between_publish_and_mark_causes_duplicates_that_change_nothing() {
    let app = TestApp::spawn().await;
    let auth = AuthSide::create().await;
    let ids = sign_up_burst(&auth, "crash", 200).await;
    for id in &ids {
        auth.change(*id, 2, AccountChange::EmailVerified).await;
    }

    // The first relay publishes the registrations and dies before marking them.
    let crashed = auth.relay(&app.settings, RelayOptions::default()).await;
    assert_eq!(crashed.publish_without_marking().await.unwrap(), 200);
    assert_eq!(auth.pending().await, 400);

    // Its successor publishes everything again; JetStream drops the copies it saw.
    let relay = auth.relay(&app.settings, RelayOptions::default()).await;
    let mut duplicates = 0;
    while let Outcome::Published { duplicates: d, .. } = relay.try_process_next().await.unwrap() {
        duplicates += d;
    }
    assert_eq!(duplicates, 200);
    for id in &ids {
        app.wait_for_version(*id, 2).await;
    }
    app.wait_until_drained().await;
    assert_eq!(app.stream_messages().await, 400);
    let before: Vec<(Uuid, i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT id, version, updated_at FROM users ORDER BY id").fetch_all(&app.pool).await.unwrap();

    // Past JetStream's duplicate window the copies do reach the consumer:
    // replay every event under new message ids.
    let stream = app.jetstream.get_stream(&app.settings.events_stream).await.unwrap();
    for sequence in 1..=400 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let event = serde_json::from_slice(&message.payload).unwrap();
        app.publish_with_id(&event, &format!("late-copy-{sequence}")).await;
    }
    app.wait_until_drained().await;
    assert_eq!(app.stream_messages().await, 800, "the copies were delivered");
    let after: Vec<(Uuid, i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT id, version, updated_at FROM users ORDER BY id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(after, before, "no row changed twice");

    auth.cleanup().await;
    app.cleanup().await;
}

#[tokio::test]
async fn nats_stopped_and_restarted_mid_burst_loses_nothing() {
    let mut nats = NatsServer::start().await;
    let mut settings = test_settings();
    settings.nats.url = nats.url();
    let db = format!("postgres://postgres@127.0.0.1:5432/{}", unique("gh_users_"));
    let app = TestApp::spawn_with(UsersConfig::for_tests(&db, "users-projection"), settings.clone()).await;
    let auth = AuthSide::create().await;
    let (stop_relay, relay) = auth.spawn_relay(&settings).await;

    let first = sign_up_burst(&auth, "before", 300).await;
    eventually("some sign-ups to arrive", || async { (app.user_count().await > 0).then_some(()) }).await;
    nats.kill();
    // Sign-ups keep coming while the broker is down; the relay backs off.
    let second = sign_up_burst(&auth, "during", 300).await;
    for id in first.iter().take(50) {
        auth.change(*id, 2, AccountChange::EmailVerified).await;
    }
    nats.restart().await;
    let third = sign_up_burst(&auth, "after", 300).await;

    wait_for_users(&app, 900).await;
    for id in first.iter().take(50) {
        app.wait_for_version(*id, 2).await;
    }
    app.wait_until_drained().await;
    eventually("the outbox to empty", || async { (auth.pending().await == 0).then_some(()) }).await;
    assert_eq!(app.stream_messages().await, 950, "no event lost or stored twice");
    let stored: HashSet<Uuid> =
        sqlx::query_scalar("SELECT id FROM users").fetch_all(&app.pool).await.unwrap().into_iter().collect();
    assert!(first.iter().chain(&second).chain(&third).all(|id| stored.contains(id)));

    stop_relay.cancel();
    relay.await.unwrap();
    auth.cleanup().await;
    let js = app.jetstream.clone();
    let (config, settings) = app.stop().await;
    support::cleanup_names(&js, &config.database_url, &settings).await;
}

#[tokio::test]
async fn a_broker_that_restarts_without_its_store_loses_nothing_and_needs_no_restart() {
    let mut nats = NatsServer::start().await;
    let mut settings = test_settings();
    settings.nats.url = nats.url();
    let db = format!("postgres://postgres@127.0.0.1:5432/{}", unique("gh_users_"));
    let app = TestApp::spawn_with(UsersConfig::for_tests(&db, "users-projection"), settings.clone()).await;
    let auth = AuthSide::create().await;
    let (stop_relay, relay) = auth.spawn_relay(&settings).await;

    let before = sign_up_burst(&auth, "before", 100).await;
    wait_for_users(&app, 100).await;
    nats.restart_empty().await;
    // Neither the relay nor the projection is restarted: both must notice.
    let after = sign_up_burst(&auth, "after", 100).await;
    for id in before.iter().take(20) {
        auth.change(*id, 2, AccountChange::EmailVerified).await;
    }
    wait_for_users(&app, 200).await;
    for id in before.iter().take(20) {
        app.wait_for_version(*id, 2).await;
    }
    for id in after.iter().take(5) {
        assert_eq!(app.version_of(*id).await, Some(1));
    }
    eventually("the outbox to empty", || async { (auth.pending().await == 0).then_some(()) }).await;

    stop_relay.cancel();
    relay.await.unwrap();
    auth.cleanup().await;
    let js = app.jetstream.clone();
    let (config, settings) = app.stop().await;
    support::cleanup_names(&js, &config.database_url, &settings).await;
}

#[tokio::test]
async fn a_consumer_that_was_down_catches_up_on_what_accumulated() {
    let app = TestApp::spawn().await;
    let auth = AuthSide::create().await;
    let (stop_relay, relay) = auth.spawn_relay(&app.settings).await;
    let early = sign_up_burst(&auth, "early", 50).await;
    wait_for_users(&app, 50).await;
    app.wait_until_drained().await;

    let (config, settings) = app.stop().await;
    // While the users service is down, auth keeps changing accounts.
    let late = sign_up_burst(&auth, "late", 500).await;
    for id in &early {
        auth.change(*id, 2, AccountChange::ActiveChanged { active: false }).await;
    }
    for id in early.iter().take(10) {
        auth.change(*id, 3, AccountChange::Deleted).await;
    }
    eventually("the relay to publish the backlog", || async { (auth.pending().await == 0).then_some(()) }).await;

    let app = TestApp::spawn_with(config, settings).await;
    wait_for_users(&app, 540).await;
    app.wait_until_drained().await;
    let inactive: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE NOT active").fetch_one(&app.pool).await.unwrap();
    assert_eq!(inactive, 40);
    for id in late.iter().take(5) {
        assert_eq!(app.version_of(*id).await, Some(1));
    }

    stop_relay.cancel();
    relay.await.unwrap();
    auth.cleanup().await;
    app.cleanup().await;
}

#[tokio::test]
async fn two_users_replicas_sharing_the_consumer_apply_every_event_once_and_in_order() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_with(first.config.clone(), first.settings.clone()).await;
    let auth = AuthSide::create().await;
    let (stop_relay, relay) = auth.spawn_relay(&first.settings).await;

    let ids = sign_up_burst(&auth, "replica", 400).await;
    for id in &ids[..100] {
        auth.change(*id, 2, AccountChange::RoleChanged { role: "ADMIN".into() }).await;
        auth.change(*id, 3, AccountChange::ActiveChanged { active: false }).await;
        auth.change(*id, 4, AccountChange::RoleChanged { role: "GUEST".into() }).await;
    }
    wait_for_users(&first, 400).await;
    for id in &ids[..100] {
        first.wait_for_version(*id, 4).await;
    }
    first.wait_until_drained().await;
    let wrong: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE version = 4 AND (role <> 'GUEST' OR active)")
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert_eq!(wrong, 0, "the last change of every account won");

    stop_relay.cancel();
    relay.await.unwrap();
    auth.cleanup().await;
    second.stop().await;
    first.cleanup().await;
}

#[tokio::test]
async fn a_projection_that_stops_holds_no_event_unacknowledged() {
    let app = TestApp::spawn().await;
    let auth = AuthSide::create().await;
    let (stop_relay, relay) = auth.spawn_relay(&app.settings).await;
    sign_up_burst(&auth, "held", 1_500).await;
    // Stop while the burst is arriving: the pull holds events not applied yet.
    eventually("some sign-ups to arrive", || async { (app.user_count().await > 0).then_some(()) }).await;
    let js = app.jetstream.clone();
    let (config, settings) = app.stop().await;
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        js.get_stream(&settings.events_stream).await.unwrap().get_consumer(&config.projection_consumer).await.unwrap();
    let info = consumer.cached_info();
    // Everything it was handed is either applied and acknowledged or handed
    // back: nothing waits out the ack wait before another replica can have it.
    assert_eq!(info.num_ack_pending, 0, "{info:?}");

    // And a restarted projection applies the rest.
    let app = TestApp::spawn_with(config, settings).await;
    wait_for_users(&app, 1_500).await;
    stop_relay.cancel();
    relay.await.unwrap();
    auth.cleanup().await;
    app.cleanup().await;
}
