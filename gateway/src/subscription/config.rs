//! Subscription settings: how many, how large, how often a heartbeat.

use std::time::Duration;

/// Subscription settings (`GATEWAY_SUBSCRIPTION_*`, `GATEWAY_WEBSOCKET_*`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Gateway subscriptions")]
pub struct SubscriptionConfig {
    /// Whether subscriptions are served (graphql-ws, SSE and multipart
    /// HTTP). Default true.
    #[arg(
        id = "gateway-subscriptions",
        long = "subscriptions",
        env = "GATEWAY_SUBSCRIPTIONS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,

    /// Most subscriptions live at once on this gateway. Default 50000.
    #[arg(
        id = "gateway-subscription-max-total",
        long = "subscription-max-total",
        env = "GATEWAY_SUBSCRIPTION_MAX_TOTAL",
        default_value_t = 50_000
    )]
    pub max_total: usize,

    /// Most subscriptions one caller (a user, or an address when anonymous)
    /// may hold at once. Default 100.
    #[arg(
        id = "gateway-subscription-max-per-caller",
        long = "subscription-max-per-caller",
        env = "GATEWAY_SUBSCRIPTION_MAX_PER_CALLER",
        default_value_t = 100
    )]
    pub max_per_caller: usize,

    /// Most subscriptions on one WebSocket. Default 25.
    #[arg(
        id = "gateway-subscription-max-per-connection",
        long = "subscription-max-per-connection",
        env = "GATEWAY_SUBSCRIPTION_MAX_PER_CONNECTION",
        default_value_t = 25
    )]
    pub max_per_connection: usize,

    /// Events a subscriber may fall behind before its subscription is ended
    /// with SLOW_CONSUMER, rather than its events kept without bound.
    /// Default 32.
    #[arg(
        id = "gateway-subscription-buffer",
        long = "subscription-buffer",
        env = "GATEWAY_SUBSCRIPTION_BUFFER",
        default_value_t = 32
    )]
    pub buffer: usize,

    /// Milliseconds between heartbeats: a WebSocket ping, an SSE comment, an
    /// empty multipart part. A WebSocket that has not answered (or sent
    /// anything) for three of them is closed. Default 15000.
    #[arg(
        id = "gateway-subscription-heartbeat-ms",
        long = "subscription-heartbeat-ms",
        env = "GATEWAY_SUBSCRIPTION_HEARTBEAT_MS",
        default_value_t = 15_000
    )]
    pub heartbeat_ms: u64,

    /// Most WebSocket connections open at once. Default 10000.
    #[arg(
        id = "gateway-websocket-max-connections",
        long = "websocket-max-connections",
        env = "GATEWAY_WEBSOCKET_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_websockets: usize,

    /// Largest WebSocket message accepted, from clients and from subgraphs,
    /// in bytes. Default 262144.
    #[arg(
        id = "gateway-websocket-max-message-bytes",
        long = "websocket-max-message-bytes",
        env = "GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES",
        default_value_t = 256 * 1024
    )]
    pub max_message_bytes: usize,

    /// Milliseconds a new WebSocket has to send `connection_init`. Default 10000.
    #[arg(
        id = "gateway-websocket-init-timeout-ms",
        long = "websocket-init-timeout-ms",
        env = "GATEWAY_WEBSOCKET_INIT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub init_timeout_ms: u64,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_total: 50_000,
            max_per_caller: 100,
            max_per_connection: 25,
            buffer: 32,
            heartbeat_ms: 15_000,
            max_websockets: 10_000,
            max_message_bytes: 256 * 1024,
            init_timeout_ms: 10_000,
        }
    }
}

impl SubscriptionConfig {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(100))
    }

    pub fn init_timeout(&self) -> Duration {
        Duration::from_millis(self.init_timeout_ms.max(100))
    }
}
