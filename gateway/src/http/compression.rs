//! Response compression by `Accept-Encoding` and request decompression by
//! `Content-Encoding` (tower-http), when `GATEWAY_COMPRESSION` is on.
//!
//! zstd goes only to clients that rank it above the other codings they list.
//! Clients send `zstd` they cannot decode: whatwg-node's fetch, which GraphQL
//! Code Generator and GraphQL Mesh use, lists `gzip, deflate, br, zstd` on
//! Node.js 20, whose zlib has no zstd, and fails on the answer. tower-http
//! breaks a tie between equal q-values in zstd's favour, so a `zstd` listed
//! without a q-value next to other codings is ranked just below them first.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;

/// Responses smaller than this go out uncompressed: compressing them saves
/// less than the encoding costs.
pub const MIN_BYTES: u16 = 1024;

/// Compresses the responses of `routes` that are worth it.
pub fn compress_responses<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    let worth_it = SizeAbove::new(MIN_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        // Multipart subscriptions: each part must go out when written.
        .and(NotForContentType::const_new("multipart/mixed"));
    routes
        .layer(CompressionLayer::new().compress_when(worth_it))
        .layer(axum::middleware::map_request(rank_unweighted_zstd_last))
}

/// Lets request bodies arrive compressed (gzip, br or zstd); an encoding it
/// does not know is refused with 415. The handler reads the decompressed
/// stream, so the body limit applies to what the body decompresses to.
pub fn decompress_requests<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.layer(RequestDecompressionLayer::new())
}

async fn rank_unweighted_zstd_last(mut request: Request) -> Request {
    let ranked = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .filter(|value| value.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"zstd")))
        .and_then(|value| value.to_str().ok())
        .and_then(unweighted_zstd_last);
    if let Some(ranked) = ranked.and_then(|ranked| HeaderValue::try_from(ranked).ok()) {
        request.headers_mut().insert(header::ACCEPT_ENCODING, ranked);
    }
    request
}

/// `accept_encoding` with a `zstd` that has no q-value given q=0.999, when
/// other codings are listed too; `None` when nothing changes.
fn unweighted_zstd_last(accept_encoding: &str) -> Option<String> {
    let mut zstd_unweighted = false;
    let mut others = false;
    let codings: Vec<&str> = accept_encoding.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
    for coding in &codings {
        if coding.eq_ignore_ascii_case("zstd") {
            zstd_unweighted = true;
        } else if !coding.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("zstd") {
            others = true;
        }
    }
    (zstd_unweighted && others).then(|| {
        codings
            .iter()
            .map(|coding| if coding.eq_ignore_ascii_case("zstd") { "zstd;q=0.999" } else { coding })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::unweighted_zstd_last;

    #[test]
    fn zstd_without_a_weight_ranks_below_the_other_codings() {
        assert_eq!(unweighted_zstd_last("gzip, deflate, br, zstd").as_deref(), Some("gzip, deflate, br, zstd;q=0.999"));
        assert_eq!(unweighted_zstd_last("ZSTD,gzip").as_deref(), Some("zstd;q=0.999, gzip"));
        // Alone, or weighted by the client, it is left as sent.
        assert_eq!(unweighted_zstd_last("zstd"), None);
        assert_eq!(unweighted_zstd_last("zstd;q=1, gzip;q=0.5"), None);
        assert_eq!(unweighted_zstd_last("gzip, br"), None);
        assert_eq!(unweighted_zstd_last(""), None);
    }
}
