//! CSRF prevention for cookie-bearing requests.
//!
//! A browser sends a cross-site request without a CORS preflight only when it
//! is "simple": no custom headers and a content type of
//! `application/x-www-form-urlencoded`, `multipart/form-data` or
//! `text/plain` (or none). Such a request could carry the victim's refresh
//! cookie, so it is refused unless it names one of the required headers,
//! which a cross-site page cannot add without passing a preflight first.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName};

/// Headers whose presence proves a request was preflighted (or not sent by a
/// browser at all). Default: the ones GraphQL clients already send.
pub const DEFAULT_REQUIRED_HEADERS: [&str; 2] = ["x-apollo-operation-name", "apollo-require-preflight"];

const SIMPLE_CONTENT_TYPES: [&str; 3] = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];

/// The CSRF rule, built once from configuration.
#[derive(Debug, Clone)]
pub struct CsrfPolicy {
    enabled: bool,
    required_headers: Vec<HeaderName>,
}

/// A request refused as a possible cross-site request forgery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "this request could have been sent by another site: send it with a JSON content type or with one of these headers: {0}"
)]
pub struct CsrfRejected(pub String);

impl CsrfPolicy {
    pub fn new(enabled: bool, required_headers: Vec<HeaderName>) -> Self {
        Self { enabled, required_headers }
    }

    pub fn disabled() -> Self {
        Self::new(false, Vec::new())
    }

    /// Accepts a request that a browser would have preflighted.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), CsrfRejected> {
        if !self.enabled {
            return Ok(());
        }
        let preflighted_content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .is_some_and(|essence| !essence.is_empty() && !SIMPLE_CONTENT_TYPES.contains(&essence.as_str()));
        if preflighted_content_type {
            return Ok(());
        }
        if self.required_headers.iter().any(|h| headers.get(h).is_some_and(|v| !v.is_empty())) {
            return Ok(());
        }
        Err(CsrfRejected(self.required_headers.iter().map(HeaderName::as_str).collect::<Vec<_>>().join(", ")))
    }
}

impl Default for CsrfPolicy {
    fn default() -> Self {
        Self::new(true, DEFAULT_REQUIRED_HEADERS.iter().map(|h| HeaderName::from_static(h)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn simple_requests_without_a_preflight_header_are_refused() {
        let policy = CsrfPolicy::default();
        for h in [
            headers(&[]),
            headers(&[("content-type", "text/plain")]),
            headers(&[("content-type", "text/plain; charset=utf-8")]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[("content-type", "MULTIPART/FORM-DATA; boundary=x")]),
            headers(&[("content-type", "text/plain"), ("apollo-require-preflight", "")]),
        ] {
            assert!(policy.check(&h).is_err(), "{h:?}");
        }
    }

    #[test]
    fn json_or_a_required_header_passes() {
        let policy = CsrfPolicy::default();
        for h in [
            headers(&[("content-type", "application/json")]),
            headers(&[("content-type", "application/graphql-response+json")]),
            headers(&[("content-type", "text/plain"), ("apollo-require-preflight", "true")]),
            headers(&[("x-apollo-operation-name", "Refresh")]),
        ] {
            assert!(policy.check(&h).is_ok(), "{h:?}");
        }
    }

    #[test]
    fn the_rule_can_be_switched_off() {
        assert!(CsrfPolicy::disabled().check(&headers(&[("content-type", "text/plain")])).is_ok());
    }
}
