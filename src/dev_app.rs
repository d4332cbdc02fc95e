//! The example single-page app (`examples/spa/`), served by the development
//! stack on its own origin, so that it talks to the gateway the way a real
//! app does: cross-origin, same-site, with CORS and the refresh cookie.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{header, request, HeaderMap, HeaderValue, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where `gatehouse dev` serves the example app.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Example app")]
pub struct AppArgs {
    /// Address the example single-page app is served on by `dev` (port 0 picks
    /// a free port). Default `127.0.0.1:4003`.
    #[arg(id = "dev-app-listen", long = "app-listen", env = "DEV_APP_LISTEN", default_value = "127.0.0.1:4003")]
    pub listen: SocketAddr,

    /// Folder of the example app; `dev` serves it when the folder exists.
    /// Default `examples/spa`.
    #[arg(id = "dev-app-dir", long = "app-dir", env = "DEV_APP_DIR", default_value = "examples/spa")]
    pub dir: PathBuf,
}

/// The names a browser on this machine reaches a local server by.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// The app's server, bound before the gateway is built so the gateway can list
/// the app's origins in its CORS allowlist.
pub struct DevApp {
    listener: TcpListener,
    dir: PathBuf,
    port: u16,
}

impl DevApp {
    /// Binds the app's address; `None` when there is no app folder to serve
    /// (an installed binary, a container image).
    pub async fn bind(args: &AppArgs) -> anyhow::Result<Option<Self>> {
        if !args.dir.join("index.html").is_file() {
            tracing::info!(dir = %args.dir.display(), "no example app to serve");
            return Ok(None);
        }
        let listener = gatehouse_listener::bind("the example app", "DEV_APP_LISTEN", args.listen).await?;
        let port = listener.local_addr()?.port();
        Ok(Some(Self { listener, dir: args.dir.clone(), port }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The origins browsers see the app at, one per loopback name (the banner
    /// prints the first); the gateway must allow them all.
    pub fn origins(&self) -> Vec<String> {
        LOOPBACK_HOSTS.iter().map(|host| format!("http://{host}:{}", self.port)).collect()
    }

    /// Serves the folder, and `/config.json` telling the app where the gateway
    /// is, until `stop` is cancelled. A page opened on another loopback name
    /// than `gateway_origin`'s (127.0.0.1 rather than localhost, say) is told
    /// the gateway on its own name: the refresh cookie is host-only and
    /// `SameSite=Strict`, so page and gateway must share the host.
    pub async fn run_until_stopped(self, gateway_origin: String, stop: CancellationToken) -> anyhow::Result<()> {
        let gateway = Arc::new(GatewayOrigin::new(&gateway_origin)?);
        let config = {
            let gateway = gateway.clone();
            move |request: request::Parts| {
                let graphql_url = format!("{}/graphql", gateway.seen_from(&request.uri, &request.headers));
                std::future::ready(Json(serde_json::json!({ "graphqlUrl": graphql_url })))
            }
        };
        let router = Router::new()
            .route("/config.json", get(config))
            .fallback_service(ServeDir::new(&self.dir))
            .layer(middleware::from_fn_with_state(gateway, content_security_policy))
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ));
        axum::serve(self.listener, router).with_graceful_shutdown(stop.cancelled_owned()).await?;
        Ok(())
    }
}

/// The gateway's origin as a page sees it: on the loopback name the page was
/// opened with, else as configured.
struct GatewayOrigin {
    configured: String,
    /// `scheme://` and `:port` around the host, when the configured host is a
    /// loopback name (and so may be swapped for another one).
    loopback: Option<(String, String)>,
}

impl GatewayOrigin {
    fn new(origin: &str) -> anyhow::Result<Self> {
        let uri: Uri = origin.parse()?;
        let host = uri.host().map(str::to_ascii_lowercase).unwrap_or_default();
        let loopback = LOOPBACK_HOSTS.contains(&host.as_str()).then(|| {
            let port = uri.port_u16().map(|port| format!(":{port}")).unwrap_or_default();
            (format!("{}://", uri.scheme_str().unwrap_or("http")), port)
        });
        Ok(Self { configured: origin.trim_end_matches('/').to_owned(), loopback })
    }

    /// The origin for a request to the app: its host (HTTP/2's `:authority`,
    /// else `Host`) when both it and the configured host are loopback names.
    fn seen_from(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let Some((scheme, port)) = &self.loopback else { return self.configured.clone() };
        let authority = uri.authority().cloned().or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .and_then(|host| host.parse::<Authority>().ok())
        });
        match authority.map(|authority| authority.host().to_ascii_lowercase()) {
            Some(host) if LOOPBACK_HOSTS.contains(&host.as_str()) => format!("{scheme}{host}{port}"),
            _ => self.configured.clone(),
        }
    }
}

/// The policy a production deployment of such an app should have: no inline
/// script, and network access only to itself and the gateway (on the host the
/// page was opened with), over HTTP and its WebSocket.
async fn content_security_policy(State(gateway): State<Arc<GatewayOrigin>>, request: Request, next: Next) -> Response {
    let gateway_origin = gateway.seen_from(request.uri(), request.headers());
    // `http://h` → `ws://h`, `https://h` → `wss://h`.
    let socket_origin = gateway_origin.replacen("http", "ws", 1);
    let mut response = next.run(request).await;
    let policy = format!(
        "default-src 'self'; connect-src 'self' {gateway_origin} {socket_origin}; img-src 'self' https: data:; \
         style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen_from(gateway: &str, host: Option<&'static str>) -> String {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, HeaderValue::from_static(host));
        }
        GatewayOrigin::new(gateway).unwrap().seen_from(&Uri::from_static("/config.json"), &headers)
    }

    #[test]
    fn the_gateway_is_named_on_the_loopback_host_the_page_was_opened_with() {
        let gateway = "http://localhost:4000";
        assert_eq!(seen_from(gateway, Some("localhost:4003")), "http://localhost:4000");
        assert_eq!(seen_from(gateway, Some("127.0.0.1:4003")), "http://127.0.0.1:4000");
        assert_eq!(seen_from(gateway, Some("[::1]:4003")), "http://[::1]:4000");
        assert_eq!(seen_from(gateway, Some("LOCALHOST")), "http://localhost:4000");
        // Other names, or none, get the configured origin.
        for host in [Some("app.example.test:4003"), Some("192.168.1.5:4003"), Some("a b"), None] {
            assert_eq!(seen_from(gateway, host), gateway, "{host:?}");
        }
        // A configured gateway elsewhere is never moved.
        assert_eq!(seen_from("https://api.example.test", Some("127.0.0.1:4003")), "https://api.example.test");
        // HTTP/2 names the host in the URI.
        let origin = GatewayOrigin::new(gateway).unwrap();
        assert_eq!(
            origin.seen_from(&Uri::from_static("http://127.0.0.1:4003/config.json"), &HeaderMap::new()),
            "http://127.0.0.1:4000"
        );
    }
}
