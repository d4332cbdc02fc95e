//! The projection against JetStream: order, duplicates, deletion, dead letters.

mod support;

use uuid::Uuid;

use gatehouse_common::events::{self, AccountChange};
use gatehouse_users::projection::{DEAD_LETTER_REASON_HEADER, DEAD_LETTER_SEQUENCE_HEADER};
use support::{event, eventually, registered, TestApp};

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Row {
    role: String,
    email_verified: bool,
    active: bool,
    version: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

async fn row(app: &TestApp, id: Uuid) -> Option<Row> {
    sqlx::query_as("SELECT role, email_verified, active, version, updated_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// Dead letters stored so far: (reason, original sequence).
async fn dead_letters(app: &TestApp) -> Vec<(String, String)> {
    let stream = app.jetstream.get_stream(events::dead_letter_stream(&app.settings)).await.unwrap();
    let mut letters = Vec::new();
    let mut sequence = 1;
    while let Ok(message) = stream.get_raw_message(sequence).await {
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default();
        letters.push((header(DEAD_LETTER_REASON_HEADER), header(DEAD_LETTER_SEQUENCE_HEADER)));
        sequence += 1;
    }
    letters
}

#[tokio::test]
async fn events_apply_in_version_order_even_when_a_newer_one_arrives_first() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    // Version 3 and 2 are published before the registration they follow.
    app.publish(&event(id, 3, AccountChange::RoleChanged { role: "ADMIN".into() })).await;
    app.publish(&event(id, 2, AccountChange::EmailVerified)).await;
    app.publish(&registered(id, "ada", "Ada", "USER")).await;
    app.wait_for_version(id, 3).await;
    let row = row(&app, id).await.unwrap();
    assert_eq!((row.role.as_str(), row.email_verified, row.active), ("ADMIN", true, true));
    app.wait_until_drained().await;
    assert!(dead_letters(&app).await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn duplicates_and_older_versions_change_nothing() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let first = registered(id, "ada", "Ada", "USER");
    let second = event(id, 2, AccountChange::RoleChanged { role: "ADMIN".into() });
    app.publish(&first).await;
    app.publish(&second).await;
    app.wait_for_version(id, 2).await;
    app.wait_until_drained().await;
    let before = row(&app, id).await.unwrap();

    // The same event ids again, past JetStream's duplicate window (new message
    // ids), several times over, plus an older change with a fresh id.
    for round in 0..3 {
        app.publish_with_id(&first, &format!("replay-{round}-1")).await;
        app.publish_with_id(&second, &format!("replay-{round}-2")).await;
    }
    app.publish(&event(id, 1, AccountChange::RoleChanged { role: "GUEST".into() })).await;
    app.wait_until_drained().await;

    assert_eq!(row(&app, id).await.unwrap(), before, "nothing changed, not even updated_at");
    assert_eq!(app.user_count().await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_deleted_account_is_removed_and_late_duplicates_cannot_bring_it_back() {
    let app = TestApp::spawn().await;
    let id = app.register("ada", "Ada", "USER").await;
    let bob = app.register("bob", "Bob", "USER").await;
    app.publish(&event(id, 2, AccountChange::Deleted)).await;
    eventually("the deletion", || async { row(&app, id).await.is_none().then_some(()) }).await;

    app.publish(&registered(id, "ada", "Ada again", "USER")).await;
    app.publish(&event(id, 2, AccountChange::Deleted)).await;
    app.wait_until_drained().await;
    assert!(row(&app, id).await.is_none());
    assert!(row(&app, bob).await.is_some(), "other accounts are untouched");
    app.cleanup().await;
}

#[tokio::test]
async fn events_nobody_signed_as_the_auth_service_are_dead_lettered_and_never_applied() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;
    // A stranger on the broker grants SYS_ADMIN at the next version: unsigned,
    // then signed with a key of its own.
    let stranger = gatehouse_common::signing::MessageSigner::from_identity_secret(&secrecy::SecretString::from(
        "a-strangers-secret-0123456789".to_owned(),
    ));
    let forged = event(ada, 2, AccountChange::RoleChanged { role: "SYS_ADMIN".into() });
    app.publish_forged(&forged, async_nats::HeaderMap::new()).await;
    let subject = events::event_subject(&app.settings.events_subject_prefix, forged.change.type_name());
    let mut foreign = forged.clone();
    foreign.event_id = Uuid::now_v7();
    app.publish_forged(&foreign, stranger.headers(&subject, &serde_json::to_vec(&foreign).unwrap())).await;

    let letters = eventually("two dead letters", || async {
        let letters = dead_letters(&app).await;
        (letters.len() >= 2).then_some(letters)
    })
    .await;
    assert!(letters[0].0.contains("not from the auth service: the message is not signed"), "{letters:?}");
    assert!(letters[1].0.contains("not from the auth service: the message's signature does not match"), "{letters:?}");
    // The genuine version 2 is not dropped as a duplicate: it applies.
    app.apply(ada, 2, AccountChange::RoleChanged { role: "ADMIN".into() }).await;
    let row = row(&app, ada).await.unwrap();
    assert_eq!((row.role.as_str(), row.version), ("ADMIN", 2));
    app.cleanup().await;
}

#[tokio::test]
async fn a_poison_event_goes_to_the_dead_letter_subject_without_blocking_the_others() {
    let app = TestApp::spawn().await;
    // Undecodable: dead-lettered at once.
    app.publish_raw("registered", b"{ this is not an event").await;
    // Decodable but refused by the database (no such role) on every delivery:
    // dead-lettered after the configured number of deliveries.
    let emperor = Uuid::now_v7();
    app.publish(&registered(emperor, "nero", "Nero", "EMPEROR")).await;
    // A change for an account that never registered: version 1 must be a registration.
    app.publish(&event(Uuid::now_v7(), 1, AccountChange::EmailVerified)).await;
    // Healthy events behind them still apply.
    let ada = app.register("ada", "Ada", "USER").await;
    app.apply(ada, 2, AccountChange::EmailVerified).await;

    let letters = eventually("three dead letters", || async {
        let letters = dead_letters(&app).await;
        (letters.len() >= 3).then_some(letters)
    })
    .await;
    app.wait_until_drained().await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    let reasons: Vec<&str> = letters.iter().map(|(reason, _)| reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.starts_with("undecodable event")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("rejected by the database")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("version 1 must be a registration")), "{reasons:?}");
    assert!(letters.iter().all(|(_, sequence)| sequence.parse::<u64>().is_ok()));
    assert!(row(&app, emperor).await.is_none());
    assert_eq!(app.user_count().await, 1);

    // The dead-letter subject is the documented one.
    let stream = app.jetstream.get_stream(events::dead_letter_stream(&app.settings)).await.unwrap();
    let first = stream.get_raw_message(1).await.unwrap();
    assert_eq!(first.subject.as_str(), events::dead_letter_subject(&app.settings.events_subject_prefix, "users"));
    app.cleanup().await;
}

#[tokio::test]
async fn the_projection_can_be_stepped_one_message_at_a_time() {
    use gatehouse_users::projection::{Outcome, Projection, ProjectionOptions};
    let app = TestApp::spawn().await;
    // A second, stepped consumer on the same stream and database.
    let mut options = ProjectionOptions::from(&app.config);
    options.consumer_name = support::unique("stepped-");
    let projection =
        Projection::connect(app.pool.clone(), app.nats.clone(), &app.settings, options).await.expect("connects");
    let id = Uuid::now_v7();
    app.publish(&registered(id, "ada", "Ada", "USER")).await;
    app.wait_for_version(id, 1).await;

    // The running projection applied it already, so the stepped one only sees a duplicate.
    assert_eq!(projection.try_process_next().await.unwrap(), Outcome::Ignored);
    assert_eq!(projection.try_process_next().await.unwrap(), Outcome::Idle);
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_with_a_rejected_event_falls_back_to_one_transaction_per_event() {
    use gatehouse_users::projection::{Outcome, Projection, ProjectionOptions};
    use gatehouse_users::UsersConfig;
    let settings = support::test_settings();
    let url = format!("postgres://postgres@127.0.0.1:5432/{}", support::unique("gh_users_"));
    let pool = gatehouse_store::postgres(&url, 4).await.unwrap();
    gatehouse_users::migrate(&pool).await.unwrap();
    let nats = gatehouse_common::infra::nats(&settings.nats).await.unwrap();
    let options = ProjectionOptions::from(&UsersConfig::for_tests(&url, "stepped"));
    let projection = Projection::connect(pool.clone(), nats.clone(), &settings, options).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let publish = |event: gatehouse_common::events::AccountEvent| {
        let js = js.clone();
        let subject = events::event_subject(&settings.events_subject_prefix, event.change.type_name());
        let payload = serde_json::to_vec(&event).unwrap();
        let headers = settings.message_signer().headers(&subject, &payload);
        async move { js.publish_with_headers(subject, headers, payload.into()).await.unwrap().await.unwrap() }
    };
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    publish(registered(ada, "ada", "Ada", "USER")).await;
    publish(registered(Uuid::now_v7(), "nero", "Nero", "EMPEROR")).await;
    publish(registered(bob, "bob", "Bob", "USER")).await;
    publish(event(bob, 2, AccountChange::EmailVerified)).await;

    let outcomes = projection.try_process_batch(10).await.unwrap();
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Deferred, Outcome::Applied, Outcome::Applied]);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM users ORDER BY username").fetch_all(&pool).await.unwrap();
    assert_eq!(versions, [1, 2]);

    // The rejected event comes back until its deliveries run out, then is dead-lettered.
    let start = std::time::Instant::now();
    loop {
        let outcomes = projection.try_process_batch(10).await.unwrap();
        if outcomes == [Outcome::DeadLettered] {
            break;
        }
        assert!(outcomes.iter().all(|o| *o == Outcome::Deferred), "{outcomes:?}");
        assert!(start.elapsed() < support::DEADLINE, "never dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(dead_letter_count(&js, &settings).await, 1);

    let _ = js.delete_stream(&settings.events_stream).await;
    let _ = js.delete_stream(events::dead_letter_stream(&settings)).await;
    pool.close().await;
    gatehouse_store::drop_database(&url).await.unwrap();
}

async fn dead_letter_count(
    js: &async_nats::jetstream::Context,
    settings: &gatehouse_common::settings::SharedSettings,
) -> u64 {
    let mut stream = js.get_stream(events::dead_letter_stream(settings)).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn a_deleted_consumer_is_recreated_and_its_replay_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada", "Ada", "USER").await;
    app.apply(ada, 2, AccountChange::EmailVerified).await;
    app.wait_until_drained().await;
    let before = row(&app, ada).await.unwrap();

    let stream = app.jetstream.get_stream(&app.settings.events_stream).await.unwrap();
    // The server can refuse a delete that races the consumer's own state
    // writes ("unlinkat ...: directory not empty", JetStream error 10051);
    // an operator would simply retry, and so does the test.
    // A refused attempt may still have removed it, so "not found" counts too.
    let mut attempts = 0;
    loop {
        match stream.delete_consumer(&app.config.projection_consumer).await {
            Ok(_) => break,
            Err(error) if error.to_string().contains("consumer not found") && attempts > 0 => break,
            Err(error) if attempts < 20 => {
                attempts += 1;
                eprintln!("delete_consumer refused ({error}); retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the consumer could not be deleted: {error}"),
        }
    }
    // The projection notices, re-creates its consumer, replays from the start
    // (all duplicates) and carries on with new events.
    let bob = Uuid::now_v7();
    app.publish(&registered(bob, "bob", "Bob", "USER")).await;
    app.wait_for_version(bob, 1).await;
    app.wait_until_drained().await;
    assert_eq!(row(&app, ada).await.unwrap(), before);
    app.cleanup().await;
}

#[tokio::test]
async fn an_event_whose_predecessor_never_arrives_is_dead_lettered_after_the_gap_limit() {
    use gatehouse_users::projection::{Outcome, Projection, ProjectionOptions};
    use gatehouse_users::UsersConfig;
    let settings = support::test_settings();
    let url = format!("postgres://postgres@127.0.0.1:5432/{}", support::unique("gh_users_"));
    let pool = gatehouse_store::postgres(&url, 4).await.unwrap();
    gatehouse_users::migrate(&pool).await.unwrap();
    let nats = gatehouse_common::infra::nats(&settings.nats).await.unwrap();
    let mut options = ProjectionOptions::from(&UsersConfig::for_tests(&url, "stepped"));
    options.max_gap_deliveries = 2;
    let projection = Projection::connect(pool.clone(), nats.clone(), &settings, options).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let orphan = event(Uuid::now_v7(), 2, AccountChange::EmailVerified);
    let subject = events::event_subject(&settings.events_subject_prefix, orphan.change.type_name());
    let payload = serde_json::to_vec(&orphan).unwrap();
    let headers = settings.message_signer().headers(&subject, &payload);
    js.publish_with_headers(subject, headers, payload.into()).await.unwrap().await.unwrap();

    assert_eq!(projection.try_process_next().await.unwrap(), Outcome::Deferred);
    let start = std::time::Instant::now();
    loop {
        match projection.try_process_next().await.unwrap() {
            Outcome::DeadLettered => break,
            Outcome::Idle => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(start.elapsed() < support::DEADLINE, "never dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stream = js.get_stream(events::dead_letter_stream(&settings)).await.unwrap();
    let letter = stream.get_raw_message(1).await.unwrap();
    let reason = letter.headers.get(DEAD_LETTER_REASON_HEADER).unwrap().as_str().to_owned();
    assert_eq!(reason, "version 2 arrived before version 1");

    let _ = js.delete_stream(&settings.events_stream).await;
    let _ = js.delete_stream(events::dead_letter_stream(&settings)).await;
    pool.close().await;
    gatehouse_store::drop_database(&url).await.unwrap();
}
