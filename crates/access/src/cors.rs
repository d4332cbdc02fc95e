//! CORS with an explicit origin allowlist.
//!
//! Credentials (the refresh cookie) are allowed only for listed origins, and
//! the allowlist is never `*`: a wildcard with credentials would let any site
//! act as the signed-in user.

use std::time::Duration;

use http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Origins allowed to call the gateway from a browser.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    origins: Vec<HeaderValue>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    #[error("`*` is not allowed as a CORS origin: list each origin (credentials are allowed for them)")]
    Wildcard,
    #[error("{0:?} is not an origin like https://app.example.com")]
    NotAnOrigin(String),
}

impl CorsPolicy {
    /// Builds the policy from origins such as `https://app.example.com`.
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Result<Self, CorsError> {
        let mut parsed = Vec::new();
        for origin in origins.iter().map(|o| o.as_ref().trim()).filter(|o| !o.is_empty()) {
            if origin == "*" {
                return Err(CorsError::Wildcard);
            }
            let url = url::Url::parse(origin).map_err(|_| CorsError::NotAnOrigin(origin.to_owned()))?;
            let bare = matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
                return Err(CorsError::NotAnOrigin(origin.to_owned()));
            }
            // The Origin header never has a trailing slash.
            let normalised = origin.trim_end_matches('/');
            parsed.push(HeaderValue::from_str(normalised).map_err(|_| CorsError::NotAnOrigin(origin.to_owned()))?);
        }
        Ok(Self { origins: parsed })
    }

    /// Whether a browser on `origin` may call: listed, or the gateway's own
    /// origin (`host`, the request's `Host`). WebSocket upgrades, which CORS
    /// does not cover, are checked with it.
    pub fn allows(&self, origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
        if self.origins.iter().any(|allowed| allowed == origin) {
            return true;
        }
        let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else { return false };
        origin.split_once("://").is_some_and(|(scheme, authority)| {
            matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
        })
    }

    /// The layer: same-origin only when the list is empty.
    pub fn layer(&self) -> CorsLayer {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(self.origins.clone()))
            .allow_credentials(!self.origins.is_empty())
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::ACCEPT,
                HeaderName::from_static("apollo-require-preflight"),
                HeaderName::from_static("x-apollo-operation-name"),
                // Apollo Client sends these when given a `name` and `version`.
                HeaderName::from_static("apollographql-client-name"),
                HeaderName::from_static("apollographql-client-version"),
                HeaderName::from_static("traceparent"),
            ])
            .max_age(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_or_a_non_origin_is_refused() {
        assert_eq!(CorsPolicy::new(&["*"]).unwrap_err(), CorsError::Wildcard);
        for bad in ["app.example.com", "ftp://x.test", "https://x.test/path", "https://x.test/?q=1", "https://"] {
            assert!(matches!(CorsPolicy::new(&[bad]), Err(CorsError::NotAnOrigin(_))), "{bad}");
        }
        assert!(CorsPolicy::new(&["https://app.example.com", "http://localhost:5173/", " "]).is_ok());
    }

    #[test]
    fn listed_origins_and_the_gateways_own_are_allowed() {
        let policy = CorsPolicy::new(&["https://app.example.com", "http://localhost:5173/"]).unwrap();
        let host = HeaderValue::from_static("gw.example.com:4000");
        let allows = |origin: &'static str| policy.allows(&HeaderValue::from_static(origin), Some(&host));
        assert!(allows("https://app.example.com"));
        assert!(allows("http://localhost:5173"));
        assert!(allows("http://gw.example.com:4000"));
        assert!(allows("https://GW.example.com:4000"));
        for refused in ["https://evil.example", "https://app.example.com.evil", "null", "gw.example.com:4000", ""] {
            assert!(!allows(refused), "{refused}");
        }
        assert!(!policy.allows(&HeaderValue::from_static("http://gw.example.com:4000"), None));
    }
}
