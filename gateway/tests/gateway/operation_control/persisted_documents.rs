//! Automatic persisted queries (GET and POST, memory and Redis) and trusted
//! documents (manifests, `documentId`, the refusing mode, reloads).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_common::settings::SharedSettings;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::shop::Shop;
use crate::common::TestGateway;

const ME: &str = "query Me { me { id name } }";

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

/// GETs `/graphql` with these query parameters (JSON values encoded).
async fn get(gateway: &TestGateway, params: &[(&str, String)]) -> (u16, Value) {
    let response = gateway
        .http
        .get(gateway.graphql_url())
        .query(params)
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn apq_round_trip_over_post_miss_register_hit() {
    let shop = Shop::start().await;
    let gateway = shop.gateway().start().await;
    let hash = sha256_hex(ME);

    let (status, miss) = gateway.post_json(json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    assert_eq!(status, 400);
    assert_eq!(shop.requests(), 0, "a miss calls no subgraph");

    let (status, registered) = gateway.post_json(json!({ "query": ME, "extensions": persisted(&hash) })).await;
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["data"]["me"]["id"], "u1");

    let (status, hit) = gateway.post_json(json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(status, 200, "{hit}");
    assert_eq!(hit, registered, "the hash alone runs the registered document");
}

#[tokio::test]
async fn apq_round_trip_over_get() {
    let shop = Shop::start().await;
    let gateway = shop.gateway().start().await;
    let query = "query Top($n: Int) { topProducts(first: $n) { upc } }";
    let hash = sha256_hex(query);
    let extensions = persisted(&hash).to_string();
    let variables = json!({ "n": 2 }).to_string();

    let (_, miss) = get(&gateway, &[("extensions", extensions.clone()), ("variables", variables.clone())]).await;
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    let (status, registered) = get(
        &gateway,
        &[("query", query.to_owned()), ("extensions", extensions.clone()), ("variables", variables.clone())],
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["data"]["topProducts"].as_array().map(Vec::len), Some(2));
    let (status, hit) = get(&gateway, &[("extensions", extensions), ("variables", variables)]).await;
    assert_eq!(status, 200, "{hit}");
    assert_eq!(hit, registered);
}

#[tokio::test]
async fn apq_refuses_hostile_and_malformed_requests() {
    let shop = Shop::start().await;
    let gateway = shop.gateway().start().await;

    // A document registered under another's hash would be served to whoever
    // sends that hash: refused.
    let (status, mismatch) =
        gateway.post_json(json!({ "query": "{ me { id } }", "extensions": persisted(&sha256_hex(ME)) })).await;
    assert_eq!((status, code(&mismatch)), (400, "PERSISTED_QUERY_HASH_MISMATCH"), "{mismatch}");
    let (_, still_missing) = gateway.post_json(json!({ "extensions": persisted(&sha256_hex(ME)) })).await;
    assert_eq!(code(&still_missing), "PERSISTED_QUERY_NOT_FOUND");

    for extensions in [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": sha256_hex(ME) } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "xyz" } }),
        json!({ "persistedQuery": { "version": 1 } }),
        json!({ "persistedQuery": [] }),
    ] {
        let (status, body) = gateway.post_json(json!({ "extensions": extensions })).await;
        assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{extensions}: {body}");
    }
    // Only documents that parse, validate and plan are kept.
    let invalid = "{ notAField }";
    let (status, body) =
        gateway.post_json(json!({ "query": invalid, "extensions": persisted(&sha256_hex(invalid)) })).await;
    assert_eq!((status, code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"), "{body}");
    let (_, body) = gateway.post_json(json!({ "extensions": persisted(&sha256_hex(invalid)) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "an invalid document was kept: {body}");

    let (status, body) = gateway.post_json(json!({ "documentId": 7 })).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");
    let (status, body) = gateway.post_json(json!({})).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");
    assert_eq!(shop.requests(), 0);

    let off = shop.gateway().config(|c| c.documents.apq = false).start().await;
    let (_, body) = off.post_json(json!({ "extensions": persisted(&sha256_hex(ME)) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_SUPPORTED", "{body}");
    // With APQ off, a request carrying both still runs its query.
    let (status, body) = off.post_json(json!({ "query": ME, "extensions": persisted(&sha256_hex(ME)) })).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn gateways_on_one_redis_share_registered_documents() {
    let shop = Shop::start().await;
    let prefix = format!("gw-apq:{}:", uuid::Uuid::new_v4().simple());
    let shared = SharedSettings::for_tests(&prefix, "unused", "unused");
    let start = || {
        shop.gateway()
            .shared(shared.clone())
            .config(|c| c.documents.apq_store = gatehouse_gateway::persisted::ApqStore::Redis)
            .start()
    };
    let (first, second) = (start().await, start().await);
    let query = format!("query Shared {{ me {{ id }} }} # {prefix}");
    let hash = sha256_hex(&query);
    let (_, miss) = second.post_json(json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND");
    let (status, _) = first.post_json(json!({ "query": query, "extensions": persisted(&hash) })).await;
    assert_eq!(status, 200);
    let (status, hit) = second.post_json(json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(status, 200, "registered on one gateway, served by the other: {hit}");
    assert_eq!(hit["data"]["me"]["id"], "u1");
}

/// An Apollo persisted-query manifest of `operations` (id, body).
fn apollo_manifest(operations: &[(&str, &str)]) -> String {
    let operations: Vec<Value> =
        operations.iter().map(|(id, body)| json!({ "id": id, "body": body, "name": id, "type": "query" })).collect();
    json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations }).to_string()
}

/// The answer to `documentId: id` once the gateway has loaded a manifest
/// with it (within ten seconds).
async fn once_served(gateway: &TestGateway, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = gateway.post_json(json!({ "documentId": id })).await;
        if status == 200 {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "no manifest with {id:?} was loaded: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces `path` the way deploy tools do: write aside, then rename.
fn replace_file(path: &std::path::Path, text: &str) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[tokio::test]
async fn the_refusing_mode_runs_trusted_documents_only() {
    let shop = Shop::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, apollo_manifest(&[("me-v1", ME)])).unwrap();
    let path = manifest.clone();
    let gateway = shop
        .gateway()
        .config(move |c| {
            c.documents.trusted_documents = Some(path);
            c.documents.trusted_documents_only = true;
            c.documents.trusted_documents_allow_introspection = true;
        })
        .start()
        .await;

    let (status, by_id) = gateway.post_json(json!({ "documentId": "me-v1" })).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(by_id["data"]["me"]["name"], "Ada");
    let (status, by_hash_id) = gateway.post_json(json!({ "documentId": format!("sha256:{}", sha256_hex(ME)) })).await;
    assert_eq!((status, &by_hash_id), (200, &by_id));
    let (status, by_apq) = gateway.post_json(json!({ "extensions": persisted(&sha256_hex(ME)) })).await;
    assert_eq!((status, &by_apq), (200, &by_id), "the APQ hash of a trusted document finds it");
    let (status, full_text) = gateway.post_json(json!({ "query": ME })).await;
    assert_eq!((status, &full_text), (200, &by_id), "the full text of a trusted document runs");

    let before = shop.requests();
    let (status, refused) = gateway.post_json(json!({ "query": "{ me { id } }" })).await;
    assert_eq!((status, code(&refused)), (400, "PERSISTED_QUERY_NOT_IN_LIST"), "{refused}");
    let (_, unknown) = gateway.post_json(json!({ "documentId": "me-v2" })).await;
    assert_eq!(code(&unknown), "PERSISTED_DOCUMENT_NOT_FOUND");
    let (_, both) = gateway.post_json(json!({ "documentId": "me-v1", "query": ME })).await;
    assert_eq!(code(&both), "BAD_REQUEST");
    // APQ registration cannot smuggle a document in.
    let other = "{ topProducts { upc } }";
    let (_, smuggled) = gateway.post_json(json!({ "query": other, "extensions": persisted(&sha256_hex(other)) })).await;
    assert_eq!(code(&smuggled), "PERSISTED_QUERY_NOT_IN_LIST");
    let (_, later) = gateway.post_json(json!({ "extensions": persisted(&sha256_hex(other)) })).await;
    assert_eq!(code(&later), "PERSISTED_QUERY_NOT_FOUND");
    // Introspection is allowed here, but not as a way to run anything else.
    let (status, schema) = gateway.post_json(json!({ "query": "{ __schema { queryType { name } } }" })).await;
    assert_eq!(status, 200, "{schema}");
    let (status, typename) = gateway.post_json(json!({ "query": "{ __typename }" })).await;
    assert_eq!((status, &typename["data"]["__typename"]), (200, &json!("Query")), "{typename}");
    let (_, mixed) = gateway.post_json(json!({ "query": "{ __typename me { id } }" })).await;
    assert_eq!(code(&mixed), "PERSISTED_QUERY_NOT_IN_LIST");
    assert_eq!(shop.requests(), before, "refused operations call no subgraph");
}

#[tokio::test]
async fn a_manifest_reloads_while_requests_run() {
    let shop = Shop::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, apollo_manifest(&[("me-v1", ME)])).unwrap();
    let path = manifest.clone();
    let gateway = Arc::new(
        shop.gateway()
            .config(move |c| {
                c.documents.trusted_documents = Some(path);
                c.documents.trusted_documents_only = true;
            })
            .start()
            .await,
    );

    // Clients keep running the first document throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (gateway, stop, served, failed) = (gateway.clone(), stop.clone(), served.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = gateway.post_json(json!({ "documentId": "me-v1" })).await;
                let counter = if status == 200 && body["data"]["me"]["id"] == "u1" { &served } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let top = "query Top { topProducts(first: 1) { upc } }";
    let (_, before) = gateway.post_json(json!({ "documentId": "top" })).await;
    assert_eq!(code(&before), "PERSISTED_DOCUMENT_NOT_FOUND");

    // A broken manifest is refused and the loaded one stays.
    replace_file(&manifest, "{ not json");
    tokio::time::sleep(Duration::from_millis(600)).await;
    replace_file(&manifest, &apollo_manifest(&[("me-v1", ME), ("top", top)]));
    let body = once_served(&gateway, "top").await;
    assert_eq!(body["data"]["topProducts"][0]["upc"], "p1", "{body}");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed while the manifest changed");
    assert!(served.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn codegen_manifests_and_directories_are_read() {
    let shop = Shop::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hash = sha256_hex(ME);
    std::fs::write(dir.path().join("persisted-documents.json"), json!({ hash.clone(): ME }).to_string()).unwrap();
    std::fs::write(dir.path().join("Top.graphql"), "query Top { topProducts(first: 1) { upc } }").unwrap();
    let path = dir.path().to_path_buf();
    let gateway = shop.gateway().config(move |c| c.documents.trusted_documents = Some(path)).start().await;
    let (status, body) = gateway.post_json(json!({ "documentId": hash })).await;
    assert_eq!((status, &body["data"]["me"]["id"]), (200, &json!("u1")), "{body}");
    let (status, body) = gateway.post_json(json!({ "documentId": "Top" })).await;
    assert_eq!((status, &body["data"]["topProducts"][0]["upc"]), (200, &json!("p1")), "{body}");
    // Not refusing: other documents still run.
    let (status, _) = gateway.post_json(json!({ "query": "{ me { id } }" })).await;
    assert_eq!(status, 200);

    // A file added to the directory is picked up.
    std::fs::write(dir.path().join("Names.graphql"), "query Names { topProducts(first: 2) { name } }").unwrap();
    let body = once_served(&gateway, "Names").await;
    assert_eq!(body["data"]["topProducts"].as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test]
async fn a_missing_or_broken_manifest_stops_start_up_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[1, 2]").unwrap();
    for (path, only) in [(Some(dir.path().join("absent.json")), false), (Some(broken), false), (None, true)] {
        let mut config = gatehouse_gateway::GatewayConfig::new("unused.graphql".into(), "127.0.0.1:0".parse().unwrap());
        config.security = gatehouse_gateway::security::SecurityConfig::off();
        config.documents.trusted_documents = path;
        config.documents.trusted_documents_only = only;
        let error = match gatehouse_gateway::Application::build(config).await {
            Ok(_) => panic!("started with a bad trusted-documents setting"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("GATEWAY_TRUSTED_DOCUMENTS"), "{error}");
    }
}
