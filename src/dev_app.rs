//! The example single-page app (`examples/spa/`), served by the development
//! stack on its own origin, so that it talks to the gateway the way a real
//! app does: cross-origin, same-site, with CORS and the refresh cookie.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where `gatehouse dev` serves the example app.
#[derive(Debug, Clone, clap::Args)]
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

/// The app's server, bound before the gateway is built so the gateway can list
/// the app's origin in its CORS allowlist.
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

    /// The origin browsers see the app at; the gateway must allow it.
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// Serves the folder, and `/config.json` telling the app where the gateway
    /// is, until `stop` is cancelled.
    pub async fn run_until_stopped(self, gateway_origin: String, stop: CancellationToken) -> anyhow::Result<()> {
        let config = serde_json::json!({ "graphqlUrl": format!("{gateway_origin}/graphql") });
        // The policy a production deployment of such an app should have: no
        // inline script, and network access only to itself and the gateway.
        let policy = format!(
            "default-src 'self'; connect-src 'self' {gateway_origin}; img-src 'self' https: data:; \
             style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        let router = Router::new()
            .route("/config.json", get(move || std::future::ready(Json(config.clone()))))
            .fallback_service(ServeDir::new(&self.dir))
            .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&policy)?))
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
