//! Response compression by `Accept-Encoding`, request bodies by
//! `Content-Encoding`, and the switch that turns both off.

use crate::common;

use std::io::{Read, Write};

use serde_json::{json, Value};

/// An answer well over the 1 KiB below which nothing is compressed.
const LARGE: &str = "{ __schema { types { name kind fields { name } } } }";

async fn post(
    gateway: &common::TestGateway,
    accept_encoding: Option<&str>,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json");
    if let Some(value) = accept_encoding {
        request = request.header("accept-encoding", value);
    }
    if let Some(value) = content_encoding {
        request = request.header("content-encoding", value);
    }
    request.body(body).send().await.unwrap()
}

fn query(text: &str) -> Vec<u8> {
    json!({ "query": text }).to_string().into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The body decoded as its `Content-Encoding` says, and that encoding.
async fn decoded(response: reqwest::Response) -> (Option<String>, Value) {
    let encoding = response.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.bytes().await.unwrap();
    let mut plain = Vec::new();
    match encoding.as_deref() {
        None => plain = bytes.to_vec(),
        Some("gzip") => {
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut plain).unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(&bytes[..], 4096).read_to_end(&mut plain).unwrap();
        }
        Some("zstd") => plain = zstd::decode_all(&bytes[..]).unwrap(),
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    (encoding, serde_json::from_slice(&plain).expect("the decoded body is the JSON answer"))
}

#[tokio::test]
async fn large_answers_are_compressed_as_the_client_asks_and_small_ones_are_not() {
    let (_shop, gateway) = common::shop::shop().await;
    let (_, plain) = decoded(post(&gateway, None, None, query(LARGE)).await).await;
    assert!(plain["data"]["__schema"]["types"].as_array().unwrap().len() > 10);
    for (accept_encoding, expected) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip;q=0.5, zstd", "zstd"),
        ("gzip;q=0.2, br;q=0.8", "br"),
        // Browsers, and whatwg-node's fetch on Node.js 20 (which cannot decode
        // zstd), list zstd without a weight: they get br.
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, zstd", "gzip"),
    ] {
        let response = post(&gateway, Some(accept_encoding), None, query(LARGE)).await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap().eq_ignore_ascii_case("accept-encoding")),
            "{accept_encoding}"
        );
        let (encoding, body) = decoded(response).await;
        assert_eq!(encoding.as_deref(), Some(expected), "{accept_encoding}");
        assert_eq!(body, plain, "{accept_encoding}");
    }
    for refused in ["identity", "gzip;q=0", "compress"] {
        let (encoding, body) = decoded(post(&gateway, Some(refused), None, query(LARGE)).await).await;
        assert_eq!((encoding, &body), (None, &plain), "{refused}");
    }
    let (encoding, body) = decoded(post(&gateway, Some("gzip, br, zstd"), None, query("{ __typename }")).await).await;
    assert_eq!((encoding, body), (None, json!({"data": {"__typename": "Query"}})));
}

#[tokio::test]
async fn request_bodies_may_arrive_compressed_and_their_limit_is_on_what_they_expand_to() {
    let (_shop, gateway) = common::shop::shop().await;
    let (status, body) = {
        let response = post(&gateway, None, Some("gzip"), gzip(&query("{ __typename }"))).await;
        (response.status(), decoded(response).await.1)
    };
    assert_eq!((status.as_u16(), body), (200, json!({"data": {"__typename": "Query"}})));
    let zstd_body = zstd::encode_all(&query("{ __typename }")[..], 3).unwrap();
    let (_, body) = decoded(post(&gateway, None, Some("zstd"), zstd_body).await).await;
    assert_eq!(body, json!({"data": {"__typename": "Query"}}));

    // An encoding the gateway does not know, and a body that is not what it claims.
    let response = post(&gateway, None, Some("compress"), query("{ __typename }")).await;
    assert_eq!(response.status(), 415);
    let response = post(&gateway, None, Some("gzip"), query("{ __typename }")).await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["errors"][0]["extensions"]["code"].is_string(), "{answer}");

    // A small body that decompresses to far more than the body limit (a
    // "zip bomb") is refused once the limit is passed, not read whole.
    let limit = gateway.gateway.config.max_body_bytes;
    let mut bomb = br#"{"query": "{ __typename }", "padding": ""#.to_vec();
    bomb.extend(std::iter::repeat_n(b' ', limit * 4));
    bomb.extend(br#""}"#);
    let compressed = gzip(&bomb);
    assert!(compressed.len() < limit / 8, "the compressed body is small: {}", compressed.len());
    let response = post(&gateway, None, Some("gzip"), compressed).await;
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "{answer}");
}

#[tokio::test]
async fn compression_can_be_switched_off() {
    let (shop, _) = common::shop::shop().await;
    let gateway = shop.gateway().config(|config| config.compression = false).start().await;
    let (encoding, body) = decoded(post(&gateway, Some("gzip, br, zstd"), None, query(LARGE)).await).await;
    assert_eq!(encoding, None);
    assert!(body["data"]["__schema"].is_object());
    // Without decompression a compressed body is not understood.
    let response = post(&gateway, None, Some("gzip"), gzip(&query("{ __typename }"))).await;
    assert_ne!(response.status(), 200);
}
