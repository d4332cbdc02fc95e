//! The signing key ring in the database: JWKS, rotation across replicas,
//! retirement, ES256, import, and rows that must not open.

use gatehouse_auth::keys::{self, Algorithm, KeyError, Keys, SigningKey};
use serde_json::Value;

use crate::helpers::{jwt_header, TestApp, PASSWORD};

async fn jwks(app: &TestApp) -> (String, Value) {
    let response = app.client.get(format!("{}/.well-known/jwks.json", app.address)).send().await.unwrap();
    let cache = response.headers()["cache-control"].to_str().unwrap().to_owned();
    (cache, response.json().await.unwrap())
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

async fn rotate(app: &TestApp, alg: Option<Algorithm>, force: bool) -> Result<keys::Rotation, KeyError> {
    keys::rotate(&app.pool, &app.config, app.service.settings(), &app.shared, alg, force).await
}

async fn retire(app: &TestApp, kid: &str, force: bool) -> Result<Vec<keys::KeyInfo>, KeyError> {
    keys::retire(&app.pool, &app.config, app.service.settings(), kid, force).await
}

/// Overwrites a key's sealed private key, as someone with write access to the database could.
async fn set_sealed(app: &TestApp, kid: &str, sealed: &[u8]) {
    sqlx::query("UPDATE signing_keys SET sealed_private_key = $2 WHERE kid = $1")
        .bind(kid)
        .bind(sealed)
        .execute(&app.pool)
        .await
        .unwrap();
}

fn state_of<'a>(ring: &'a [keys::KeyInfo], kid: &str) -> &'a keys::KeyInfo {
    ring.iter().find(|k| k.kid == kid).unwrap_or_else(|| panic!("{kid} in {ring:?}"))
}

/// Verifies `token` with the key of its kid in `set`, pinned to the key's algorithm.
fn verifies_against(token: &str, set: &Value) -> bool {
    let kid = jwt_header(token)["kid"].as_str().unwrap().to_owned();
    let Some(jwk) = set["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()) else {
        return false;
    };
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let algorithm = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        _ => jsonwebtoken::Algorithm::RS256,
    };
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.validate_aud = false;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

#[tokio::test]
async fn a_rotation_signs_with_the_published_next_key_and_keeps_the_old_one_published() {
    let app = TestApp::spawn().await;
    app.verified_user("vic").await;
    let (cache, before) = jwks(&app).await;
    assert!(cache.contains("max-age=300"), "{cache}");
    let before = kids(&before);
    assert_eq!(before.len(), 2, "current and next");
    let old_token = app.login_body("vic", PASSWORD).await.access;
    assert_eq!(jwt_header(&old_token)["kid"], before[0]);
    assert_eq!(jwt_header(&old_token)["alg"], "RS256");

    // The next key was published a moment ago: a verifier caching the JWKS
    // for 300 s may not know it, so a rotation now is refused.
    match rotate(&app, None, false).await {
        Err(KeyError::NextTooNew { kid, .. }) => assert_eq!(kid, before[1]),
        other => panic!("expected NextTooNew, got {other:?}"),
    }
    assert!(!app.service.keys().reload().await, "a refused rotation changes nothing");

    let rotation = rotate(&app, None, true).await.unwrap();
    assert!(!rotation.created);
    assert_eq!(rotation.promoted.as_deref(), Some(before[1].as_str()));
    assert_eq!(state_of(&rotation.keys, &before[0]).state, "previous");
    assert_eq!(state_of(&rotation.keys, &before[1]).state, "current");
    assert!(app.service.keys().reload().await);
    let (_, after) = jwks(&app).await;
    let after_kids = kids(&after);
    assert_eq!(after_kids.len(), 3);
    assert_eq!(after_kids[0], before[1], "the next key now signs");
    assert_eq!(after_kids[2], before[0], "the old key stays published as previous");
    let new_token = app.login_body("vic", PASSWORD).await.access;
    assert_eq!(jwt_header(&new_token)["kid"], before[1]);
    assert!(verifies_against(&old_token, &after) && verifies_against(&new_token, &after));

    let discovery: Value = app.get_json("/.well-known/openid-configuration").await;
    assert!(discovery["jwks_uri"].as_str().unwrap().ends_with("/.well-known/jwks.json"));
}

#[tokio::test]
async fn another_replica_signs_with_its_old_key_until_it_reloads_and_that_key_stays_published() {
    let app = TestApp::spawn().await;
    app.verified_user("wes").await;
    // A second replica of the same service, on the same database.
    let replica = Keys::load(app.pool.clone(), &app.config, app.service.settings(), &app.shared).await.unwrap();
    let first = replica.ring().current.kid.clone();
    assert_eq!(first, app.service.keys().ring().current.kid, "one ring for both");

    rotate(&app, None, true).await.unwrap();
    assert!(app.service.keys().reload().await);
    assert_ne!(app.service.keys().ring().current.kid, first);
    // The replica has not re-read the ring yet: it still signs with `first`,
    // which the first replica's JWKS still publishes.
    assert_eq!(replica.ring().current.kid, first);
    let (_, published) = jwks(&app).await;
    assert!(kids(&published).contains(&first));
    assert!(replica.reload().await);
    assert_eq!(replica.ring().current.kid, app.service.keys().ring().current.kid);
    assert!(!replica.reload().await, "nothing changed since");
}

#[tokio::test]
async fn concurrent_rotations_take_turns_and_leave_one_current_and_one_next() {
    let app = TestApp::spawn().await;
    let (a, b, c) = tokio::join!(rotate(&app, None, true), rotate(&app, None, true), rotate(&app, None, true));
    for rotation in [a, b, c] {
        rotation.unwrap();
    }
    let ring = keys::list(&app.pool).await.unwrap();
    let count = |state: &str| ring.iter().filter(|k| k.state == state).count();
    assert_eq!((count("current"), count("next"), count("previous")), (1, 1, 3), "{ring:#?}");
    assert!(app.service.keys().reload().await);
    assert_eq!(kids(&jwks(&app).await.1).len(), 5, "current, next and three previous keys");
}

#[tokio::test]
async fn es256_keys_sign_once_rotated_in_and_rsa_tokens_still_verify() {
    let app = TestApp::spawn().await;
    app.verified_user("xena").await;
    let rsa_token = app.login_body("xena", PASSWORD).await.access;
    // The next key is RS256; the one created now is ES256 and signs after one more rotation.
    rotate(&app, Some(Algorithm::Es256), true).await.unwrap();
    let ring = rotate(&app, None, true).await.unwrap().keys;
    let current = ring.iter().find(|k| k.state == "current").unwrap();
    assert_eq!(current.alg, "ES256");
    assert_eq!(ring.iter().find(|k| k.state == "next").unwrap().alg, "RS256", "the configured algorithm again");
    assert!(app.service.keys().reload().await);
    let ec_token = app.login_body("xena", PASSWORD).await.access;
    assert_eq!(jwt_header(&ec_token)["alg"], "ES256");
    assert_eq!(jwt_header(&ec_token)["kid"], current.kid.as_str());
    let (_, set) = jwks(&app).await;
    let ec_jwk = set["keys"].as_array().unwrap().iter().find(|k| k["kid"] == current.kid.as_str()).unwrap();
    assert_eq!((ec_jwk["kty"].as_str(), ec_jwk["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert!(verifies_against(&ec_token, &set));
    assert!(verifies_against(&rsa_token, &set), "the first RSA key is still published as previous");
}

#[tokio::test]
async fn retiring_follows_the_rules_of_each_state_and_erases_the_private_key() {
    let app = TestApp::spawn().await;
    rotate(&app, None, true).await.unwrap();
    let ring = keys::list(&app.pool).await.unwrap();
    let kid_of = |state: &str| ring.iter().find(|k| k.state == state).unwrap().kid.clone();
    let (current, next, previous) = (kid_of("current"), kid_of("next"), kid_of("previous"));

    assert!(matches!(retire(&app, &current, true).await, Err(KeyError::SignsNow(kid)) if kid == current));
    assert!(matches!(retire(&app, "no-such-kid", true).await, Err(KeyError::NotFound(_))));
    match retire(&app, &previous, false).await {
        Err(KeyError::StillInUse { kid, until }) => {
            assert_eq!(kid, previous);
            assert!(until > chrono::Utc::now() + chrono::Duration::seconds(600), "access TTL and more: {until}");
        }
        other => panic!("expected StillInUse, got {other:?}"),
    }

    // A compromised key: forced out of the JWKS at once.
    let ring = retire(&app, &previous, true).await.unwrap();
    assert_eq!(state_of(&ring, &previous).state, "retired");
    assert!(!state_of(&ring, &previous).published);
    let sealed: Option<Vec<u8>> = sqlx::query_scalar("SELECT sealed_private_key FROM signing_keys WHERE kid = $1")
        .bind(&previous)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sealed, None, "a retired key's private key is erased");
    assert!(matches!(retire(&app, &previous, true).await, Err(KeyError::AlreadyRetired(_))));

    // The next key is replaced by a new one (a key that never signed).
    let ring = retire(&app, &next, false).await.unwrap();
    let new_next = ring.iter().find(|k| k.state == "next").unwrap();
    assert_ne!(new_next.kid, next);
    assert!(app.service.keys().reload().await);
    let published = kids(&jwks(&app).await.1);
    assert_eq!(published, vec![current.clone(), new_next.kid.clone()]);

    // A previous key whose tokens have all expired retires without --force,
    // and is unpublished as soon as its time is up.
    rotate(&app, None, true).await.unwrap();
    sqlx::query("UPDATE signing_keys SET publish_until = now() - interval '1 second' WHERE kid = $1")
        .bind(&current)
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(app.service.keys().reload().await);
    assert!(!kids(&jwks(&app).await.1).contains(&current));
    assert_eq!(state_of(&retire(&app, &current, false).await.unwrap(), &current).state, "retired");
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest_and_a_changed_or_forged_row_never_reaches_the_jwks() {
    let app = TestApp::spawn().await;
    let ring = app.service.keys().ring();
    let (kid, sealed): (String, Vec<u8>) =
        sqlx::query_as("SELECT kid, sealed_private_key FROM signing_keys WHERE state = 'current'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // The RSA modulus is in the PKCS#8 document; it must not be readable in the row.
    let modulus = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ring.current.jwk()["n"].as_str().unwrap(),
    )
    .unwrap();
    assert!(!sealed.windows(32).any(|w| w == &modulus[..32]), "the private key is stored in the clear");

    // A row changed in the database: the running replica keeps its good keys,
    // and a replica starting now refuses to serve with the ring.
    let mut flipped = sealed.clone();
    flipped[20] ^= 0xff;
    set_sealed(&app, &kid, &flipped).await;
    // Force a re-read by changing what is published.
    let forged = SigningKey::generate(Algorithm::Es256, 0).unwrap();
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, state, sealed_private_key, demoted_at, publish_until)
         VALUES ($1, 'ES256', 'previous', $2, now(), now() + interval '1 hour')",
    )
    .bind(&forged.kid)
    .bind(b"not sealed by the service".as_slice())
    .execute(&app.pool)
    .await
    .unwrap();
    assert!(!app.service.keys().reload().await);
    assert_eq!(app.service.keys().ring().current.kid, kid, "the last good ring is kept");
    assert!(!kids(&jwks(&app).await.1).contains(&forged.kid));
    let error = Keys::load(app.pool.clone(), &app.config, app.service.settings(), &app.shared).await.unwrap_err();
    assert!(format!("{error:#}").contains("does not open"), "{error:#}");

    // A sealed key moved to another kid's row does not open either.
    set_sealed(&app, &kid, &sealed).await;
    set_sealed(&app, &forged.kid, &sealed).await;
    assert!(!app.service.keys().reload().await);
    sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(&forged.kid).execute(&app.pool).await.unwrap();
    let healthy = Keys::load(app.pool.clone(), &app.config, app.service.settings(), &app.shared).await.unwrap();
    assert_eq!(healthy.ring().current.kid, kid);
}

#[tokio::test]
async fn keys_from_a_folder_are_imported_into_an_empty_ring_and_ignored_after() {
    let folder = tempfile::tempdir().unwrap();
    let current = SigningKey::generate(Algorithm::Rs256, 2048).unwrap();
    let next = SigningKey::generate(Algorithm::Es256, 0).unwrap();
    keys::write_pem(&folder.path().join("current.pem"), &current).unwrap();
    keys::write_pem(&folder.path().join("next.pem"), &next).unwrap();
    let dir = folder.path().to_owned();
    let app = TestApp::spawn_with(move |config| config.keys_dir = Some(dir)).await;
    assert_eq!(app.service.keys().ring().current.kid, current.kid);
    assert_eq!(kids(&jwks(&app).await.1), vec![current.kid.clone(), next.kid.clone()]);

    // Another replica started with other keys in its folder uses the ring.
    let other = tempfile::tempdir().unwrap();
    keys::write_pem(&other.path().join("current.pem"), &SigningKey::generate(Algorithm::Es256, 0).unwrap()).unwrap();
    let mut config = app.config.clone();
    config.keys_dir = Some(other.path().to_owned());
    let replica = Keys::load(app.pool.clone(), &config, app.service.settings(), &app.shared).await.unwrap();
    assert_eq!(replica.ring().current.kid, current.kid);

    // A folder without a current key, or with junk, is a clear error on an empty ring.
    let junk = tempfile::tempdir().unwrap();
    std::fs::write(junk.path().join("current.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        .unwrap();
    sqlx::query("DELETE FROM signing_keys").execute(&app.pool).await.unwrap();
    config.keys_dir = Some(junk.path().to_owned());
    let error = Keys::load(app.pool.clone(), &config, app.service.settings(), &app.shared).await.unwrap_err();
    assert!(format!("{error:#}").contains("current.pem"), "{error:#}");
}

#[tokio::test]
async fn a_ring_imported_without_a_next_key_gains_one_before_anything_is_promoted() {
    let folder = tempfile::tempdir().unwrap();
    let only = SigningKey::generate(Algorithm::Es256, 0).unwrap();
    keys::write_pem(&folder.path().join("current.pem"), &only).unwrap();
    let dir = folder.path().to_owned();
    let app = TestApp::spawn_with(move |config| config.keys_dir = Some(dir)).await;
    assert_eq!(kids(&jwks(&app).await.1), vec![only.kid.clone()]);
    let rotation = rotate(&app, None, true).await.unwrap();
    assert_eq!(rotation.promoted, None, "nothing was published to promote");
    assert_eq!(rotation.keys.iter().find(|k| k.state == "current").unwrap().kid, only.kid);
    assert_eq!(rotation.keys.iter().find(|k| k.state == "next").unwrap().alg, "RS256");
    let rotation = rotate(&app, None, true).await.unwrap();
    assert!(rotation.promoted.is_some_and(|kid| kid != only.kid));
}
