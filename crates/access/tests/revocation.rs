//! Session revocation against the real Redis and NATS, with per-test key
//! prefixes and subjects.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_access::revocation::revoked_key;
use gatehouse_access::{RevocationConfig, Revocations};
use gatehouse_common::signing::MessageSigner;
use gatehouse_common::testing::PrivateRedis;

fn signer() -> MessageSigner {
    MessageSigner::from_identity_secret(&secrecy::SecretString::from("revocation-test-secret-0123456789".to_owned()))
}

fn unique() -> String {
    Uuid::new_v4().simple().to_string()
}

async fn redis() -> redis::aio::ConnectionManager {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    client.get_connection_manager().await.expect("Redis is running")
}

async fn revoke_in_redis(prefix: &str, sid: Uuid) {
    let mut redis = redis().await;
    let _: () = redis::cmd("SET")
        .arg(revoked_key(prefix, &sid))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut redis)
        .await
        .unwrap();
}

/// Polls until `check` holds, for at most `limit` (a bound, not an assertion on speed).
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_live_session_is_not_revoked_and_a_revoked_one_is() {
    let prefix = format!("test:{}:", unique());
    let revocations =
        Revocations::new(RevocationConfig::new(&prefix, format!("t.{}", unique()), signer()), redis().await);
    let (live, dead) = (Uuid::new_v4(), Uuid::new_v4());
    revoke_in_redis(&prefix, dead).await;
    assert!(!revocations.is_revoked(live).await.unwrap());
    assert!(revocations.is_revoked(dead).await.unwrap());
}

#[tokio::test]
async fn a_record_under_the_name_older_auth_releases_write_still_revokes() {
    let prefix = format!("test:{}:", unique());
    let revocations =
        Revocations::new(RevocationConfig::new(&prefix, format!("t.{}", unique()), signer()), redis().await);
    let sid = Uuid::new_v4();
    let tagged = revoked_key(&prefix, &sid);
    assert_eq!(tagged, format!("{prefix}revoked:sid:{{{sid}}}"));
    // An auth replica of the release before hash tags, during a rolling upgrade.
    let mut redis = redis().await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}revoked:sid:{sid}"))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(revocations.is_revoked(sid).await.unwrap());
}

#[tokio::test]
async fn a_revocation_written_to_redis_takes_effect_within_the_recheck_interval() {
    let prefix = format!("test:{}:", unique());
    let revocations =
        Revocations::new(RevocationConfig::new(&prefix, format!("t.{}", unique()), signer()), redis().await);
    let sid = Uuid::new_v4();
    assert!(!revocations.is_revoked(sid).await.unwrap(), "live at first, and now cached as live");
    revoke_in_redis(&prefix, sid).await;
    // No notice is sent: only the one-second recheck can find it.
    let found = eventually(Duration::from_secs(5), async || revocations.is_revoked(sid).await.unwrap()).await;
    assert!(found, "the revocation was never seen");
}

#[tokio::test]
async fn a_nats_notice_revokes_at_once_without_redis() {
    let prefix = format!("test:{}:", unique());
    let subject = format!("t.{}.session.revoked", unique());
    let mut config = RevocationConfig::new(&prefix, &subject, signer());
    config.recheck = Duration::from_secs(3600);
    let revocations = Revocations::new(config, redis().await);
    let nats = async_nats::connect("nats://127.0.0.1:4222").await.expect("NATS is running");
    let stop = CancellationToken::new();
    let listener = tokio::spawn(revocations.clone().listen(nats.clone(), stop.clone()));

    let sid = Uuid::new_v4();
    assert!(!revocations.is_revoked(sid).await.unwrap(), "cached as live for an hour");
    let signed = |payload: &str| signer().headers(&subject, payload.as_bytes());
    // Malformed notices are ignored, not fatal.
    nats.publish_with_headers(subject.clone(), signed("not-a-uuid"), "not-a-uuid".into()).await.unwrap();
    let heard = eventually(Duration::from_secs(5), async || {
        let payload = sid.to_string();
        nats.publish_with_headers(subject.clone(), signed(&payload), payload.into()).await.unwrap();
        nats.flush().await.unwrap();
        revocations.is_revoked(sid).await.unwrap()
    })
    .await;
    assert!(heard, "the notice was never applied");
    stop.cancel();
    listener.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_notice_without_the_auth_services_signature_revokes_nothing() {
    let prefix = format!("test:{}:", unique());
    let subject = format!("t.{}.session.revoked", unique());
    let mut config = RevocationConfig::new(&prefix, &subject, signer());
    config.recheck = Duration::from_secs(3600);
    let revocations = Revocations::new(config, redis().await);
    let nats = async_nats::connect("nats://127.0.0.1:4222").await.expect("NATS is running");
    let stop = CancellationToken::new();
    let listener = tokio::spawn(revocations.clone().listen(nats.clone(), stop.clone()));

    let (victim, canary) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(!revocations.is_revoked(victim).await.unwrap(), "cached as live for an hour");
    let stranger =
        MessageSigner::from_identity_secret(&secrecy::SecretString::from("a-strangers-secret-0123456789".to_owned()));
    let payload = victim.to_string();
    let forged = [
        None,
        Some(stranger.headers(&subject, payload.as_bytes())),
        // Ours, but for another subject: not a revocation notice.
        Some(signer().headers("t.other.subject", payload.as_bytes())),
    ];
    for headers in forged {
        match headers {
            Some(headers) => nats.publish_with_headers(subject.clone(), headers, payload.clone().into()).await.unwrap(),
            None => nats.publish(subject.clone(), payload.clone().into()).await.unwrap(),
        }
    }
    // A signed notice sent after the forged ones: once it is heard, they were too.
    let heard = eventually(Duration::from_secs(5), async || {
        let payload = canary.to_string();
        let headers = signer().headers(&subject, payload.as_bytes());
        nats.publish_with_headers(subject.clone(), headers, payload.into()).await.unwrap();
        nats.flush().await.unwrap();
        revocations.is_revoked(canary).await.unwrap()
    })
    .await;
    assert!(heard, "the signed notice was never applied");
    assert!(!revocations.is_revoked(victim).await.unwrap(), "a forged notice revoked the session");
    stop.cancel();
    listener.await.unwrap().unwrap();
}

/// The fault tests stop a private redis-server, never the shared one.
async fn manager(private: &PrivateRedis) -> redis::aio::ConnectionManager {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Duration::from_millis(300))
        .set_response_timeout(Duration::from_millis(300));
    redis::Client::open(private.url()).unwrap().get_connection_manager_with_config(config).await.unwrap()
}

#[tokio::test]
async fn an_unreachable_redis_fails_closed_by_default_and_open_when_configured() {
    let mut private = PrivateRedis::start().await;
    let manager = manager(&private).await;
    let prefix = format!("test:{}:", unique());
    let subject = format!("t.{}", unique());
    let closed = Revocations::new(RevocationConfig::new(&prefix, &subject, signer()), manager.clone());
    let mut open_config = RevocationConfig::new(&prefix, &subject, signer());
    open_config.fail_open = true;
    let open = Revocations::new(open_config, manager);
    assert!(!closed.is_revoked(Uuid::new_v4()).await.unwrap(), "answers while Redis is up");

    private.kill();
    assert!(closed.is_revoked(Uuid::new_v4()).await.is_err(), "fail closed: no answer means refuse");
    assert!(!open.is_revoked(Uuid::new_v4()).await.unwrap(), "fail open: no answer means accept");
}
