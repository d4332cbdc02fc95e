//! The GraphiQL page served to browsers at `GET /graphql` when enabled, and
//! its assets under `/graphiql/assets/`, all from the binary.
//!
//! `build.rs` bundles `gateway/graphiql/` (GraphiQL, React, the Monaco
//! editor's web workers and `examples/spa/gatehouse-client.js`) with npm and
//! esbuild and lists the files in a generated module. Every file name carries
//! a content hash, so the files are cached for good. The page loads nothing
//! from another origin (it works offline), and its Content-Security-Policy
//! holds it to that: scripts and workers from the gateway only, no inline
//! script (the page's settings are a JSON data block, which never runs).
//!
//! On the page, a bar above GraphiQL signs in with
//! `login(refreshTokenIn: COOKIE)`: the refresh token goes to the HttpOnly
//! cookie, the access token stays in memory and is refreshed before it
//! expires, and every GraphiQL request carries it. When the gateway was
//! built without Node.js, the page says how to build GraphiQL instead.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

/// One bundled file.
pub(super) struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// What `build.rs` produced (a build constructs only one of the variants).
#[allow(dead_code)]
pub(super) enum Bundle {
    /// The page's module and stylesheet, both among the assets.
    Built { script: &'static str, style: &'static str },
    /// The build was skipped or failed (no Node.js/npm, no network for `npm ci`, ...).
    NotBuilt { reason: &'static str },
}

mod generated {
    use super::{Asset, Bundle};
    include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));
}

/// Where the assets are served; the page refers to them relative to `/graphql`.
pub const ASSETS_ROUTE: &str = "/graphiql/assets/{name}";
const ASSETS_RELATIVE: &str = "graphiql/assets/";

/// What the page is told besides its assets. In development, the sample
/// `Login` operation and the sign-in bar are filled with the seeded admin's
/// credentials; in production this stays empty.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphiqlConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_password: Option<String>,
}

/// Scripts and workers only from the gateway; requests only to it. Styles
/// may be inline: the Monaco editor and the dialogs insert style elements.
/// Fonts come inlined in GraphiQL's stylesheet (`data:`). No framing, no
/// `<base>`, no form submission (the sign-in form is handled by script).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const NOT_BUILT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The asset routes; add them only when GraphiQL is enabled.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(ASSETS_ROUTE, get(asset))
}

/// The GraphiQL page.
pub fn page(config: &GraphiqlConfig) -> Response {
    match generated::BUNDLE {
        Bundle::Built { script, style } => html(PAGE_CSP, built_page(script, style, config)),
        Bundle::NotBuilt { reason } => html(NOT_BUILT_CSP, not_built_page(reason)),
    }
}

fn html(csp: &'static str, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, csp),
        // The page is small and may hold development credentials: never stored.
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (headers, body).into_response()
}

fn built_page(script: &str, style: &str, config: &GraphiqlConfig) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Gatehouse GraphiQL</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="{ASSETS_RELATIVE}{style}" />
    <script type="module" src="{ASSETS_RELATIVE}{script}"></script>
  </head>
  <body>
    <script type="application/json" id="gatehouse-config">{config}</script>
    <div id="graphiql-root"><p>Loading GraphiQL…</p></div>
    <noscript>GraphiQL needs JavaScript.</noscript>
  </body>
</html>
"#,
        config = config_json(config),
    )
}

/// The settings as JSON that cannot end the `<script>` element it sits in.
fn config_json(config: &GraphiqlConfig) -> String {
    let json = serde_json::to_string(config).unwrap_or_else(|_| "{}".to_owned());
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

fn not_built_page(reason: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Gatehouse GraphiQL: not built</title>
    <style>body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 44em; margin: 3em auto; padding: 0 1em; }}</style>
  </head>
  <body>
    <h1>GraphiQL was not built into this gateway</h1>
    <p>Its assets are bundled when the gateway is compiled, and that step did not run: {reason}.</p>
    <p>The GraphQL endpoint itself works: POST <code>application/json</code> requests to this URL.</p>
    <p>To get GraphiQL, install Node.js (20 or newer) with npm, then rebuild the gateway:</p>
    <pre>touch gateway/graphiql/package.json
cargo build</pre>
    <p>The build runs <code>npm ci</code> (which needs the npm registry, or a warm npm cache) and esbuild
    for <code>gateway/graphiql/</code>; its warnings say what went wrong.</p>
  </body>
</html>
"#,
        reason = escape_html(reason),
    )
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn asset(Path(name): Path<String>) -> Response {
    let Some(asset) = generated::ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no such GraphiQL asset")
            .into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        // Every name carries a hash of its content (build.mjs checks).
        (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (headers, asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = routes::<()>().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
    }

    async fn page_text(config: &GraphiqlConfig) -> (axum::http::HeaderMap, String) {
        let (parts, body) = page(config).into_parts();
        (parts.headers, String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_loads_only_what_the_gateway_serves() {
        let (headers, html) = page_text(&GraphiqlConfig::default()).await;
        assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        let Bundle::Built { script, style } = generated::BUNDLE else {
            assert!(html.contains("not built") && html.contains("npm"), "{html}");
            return;
        };
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(html.contains(&format!(r#"<script type="module" src="graphiql/assets/{script}">"#)));
        assert!(html.contains(&format!(r#"href="graphiql/assets/{style}""#)));
        // The only inline script element is the JSON data block, which never runs.
        assert_eq!(html.matches("<script").count(), 2);
        for (name, content_type) in [(script, "text/javascript; charset=utf-8"), (style, "text/css; charset=utf-8")] {
            let (status, headers, bytes) = get(&format!("/graphiql/assets/{name}")).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type);
            assert_eq!(headers[header::CACHE_CONTROL], IMMUTABLE);
            assert!(!bytes.is_empty());
        }
        // The Monaco editor's workers are bundled too.
        for label in ["editor", "json", "graphql"] {
            let prefix = format!("{label}.worker-");
            assert!(generated::ASSETS.iter().any(|a| a.name.starts_with(&prefix)), "no {label} worker");
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_not_found() {
        for path in ["/graphiql/assets/nothing.js", "/graphiql/assets/..%2Fbuild.rs", "/graphiql/assets/"] {
            let (status, headers, _) = get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_ne!(headers.get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap()), Some(IMMUTABLE));
        }
    }

    #[tokio::test]
    async fn the_settings_cannot_break_out_of_their_data_block() {
        let config = GraphiqlConfig {
            sample_login: Some("admin@example.test".to_owned()),
            sample_password: Some("</script><script>alert(1)</script>&".to_owned()),
        };
        let json = config_json(&config);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["samplePassword"], "</script><script>alert(1)</script>&");
        assert_eq!(back["sampleLogin"], "admin@example.test");
        assert_eq!(config_json(&GraphiqlConfig::default()), "{}");
        if matches!(generated::BUNDLE, Bundle::Built { .. }) {
            let (_, html) = page_text(&config).await;
            assert!(html.contains(&json) && !html.contains("alert(1)</script>"));
        }
    }

    #[test]
    fn the_not_built_page_says_how_to_build_and_escapes_the_reason() {
        let html = not_built_page("npm was not found (<oops>)");
        assert!(html.contains("npm was not found (&lt;oops&gt;)"));
        assert!(html.contains("Node.js") && html.contains("cargo build"));
        assert!(!html.contains("<script") && !html.contains("https://"));
    }
}
