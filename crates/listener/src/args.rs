//! The listener settings as flags and environment variables, one set per
//! service: `listener_args!` writes the `clap::Args` struct for a service's
//! prefix, so the three services name and document them the same way.

/// Defines a `clap::Args` struct with a service's listener settings.
///
/// `listener_args!(Name, service = "gateway", heading = "Gateway", env = "GATEWAY",
/// id = "gateway", long = "", max_connections = 10000)` reads `GATEWAY_MAX_CONNECTIONS`,
/// `GATEWAY_HEADER_READ_TIMEOUT_MS`, `GATEWAY_BODY_READ_TIMEOUT_MS`,
/// `GATEWAY_IDLE_TIMEOUT_MS` and `GATEWAY_SHUTDOWN_TIMEOUT_SECS`; `long` is
/// the flags' prefix (`auth-` gives `--auth-max-connections`).
#[macro_export]
macro_rules! listener_args {
    ($name:ident, service = $service:literal, heading = $heading:literal, env = $env:literal, id = $id:literal, long = $long:literal, max_connections = $max:literal) => {
        #[doc = concat!("How the ", $service, " accepts clients: connection limit and timeouts.")]
        #[derive(Debug, Clone, clap::Args)]
        #[command(next_help_heading = concat!($heading, ": connections"))]
        pub struct $name {
            #[arg(help = concat!("Most client connections the ", $service, " keeps open at once; past it, new connections wait (and a warning is logged) until one closes. 0 means no limit. Default ", $max, "."), id = concat!($id, "-max-connections"), long = concat!($long, "max-connections"), env = concat!($env, "_MAX_CONNECTIONS"), default_value_t = $max)]
            pub max_connections: usize,

            #[arg(help = concat!("Longest time, in milliseconds, between the first byte of a request head and its end; a client that sends its headers slower is disconnected. Default 10000."), id = concat!($id, "-header-read-timeout-ms"), long = concat!($long, "header-read-timeout-ms"), env = concat!($env, "_HEADER_READ_TIMEOUT_MS"), default_value_t = 10_000)]
            pub header_read_timeout_ms: u64,

            #[arg(help = concat!("Longest time, in milliseconds, to receive a whole request body; a slower upload is answered 408. Default 30000."), id = concat!($id, "-body-read-timeout-ms"), long = concat!($long, "body-read-timeout-ms"), env = concat!($env, "_BODY_READ_TIMEOUT_MS"), default_value_t = 30_000)]
            pub body_read_timeout_ms: u64,

            #[arg(help = concat!("A kept-alive client connection with no request in flight for this many milliseconds is closed. Default 60000."), id = concat!($id, "-idle-timeout-ms"), long = concat!($long, "idle-timeout-ms"), env = concat!($env, "_IDLE_TIMEOUT_MS"), default_value_t = 60_000)]
            pub idle_timeout_ms: u64,

            #[arg(help = concat!("On shutdown, how many seconds in-flight requests get to finish before their connections are closed. Default 25."), id = concat!($id, "-shutdown-timeout-secs"), long = concat!($long, "shutdown-timeout-secs"), env = concat!($env, "_SHUTDOWN_TIMEOUT_SECS"), default_value_t = 25)]
            pub shutdown_timeout_secs: u64,

            #[arg(help = concat!("PEM certificate (and chain) the ", $service, " serves TLS with, with its key; both files are read again when they change. Default: none (plain HTTP; HTTP/2 with prior knowledge works too)."), id = concat!($id, "-tls-cert-file"), long = concat!($long, "tls-cert-file"), env = concat!($env, "_TLS_CERT_FILE"), requires = concat!($id, "-tls-key-file"))]
            pub tls_cert_file: Option<std::path::PathBuf>,

            #[arg(help = concat!("PEM private key of the ", $service, "'s TLS certificate. Default: none."), id = concat!($id, "-tls-key-file"), long = concat!($long, "tls-key-file"), env = concat!($env, "_TLS_KEY_FILE"), requires = concat!($id, "-tls-cert-file"))]
            pub tls_key_file: Option<std::path::PathBuf>,

            #[arg(help = concat!("PEM certificate authorities whose client certificates the ", $service, " requires (mutual TLS; read at start). Default: none (no client certificate asked for)."), id = concat!($id, "-tls-client-ca-file"), long = concat!($long, "tls-client-ca-file"), env = concat!($env, "_TLS_CLIENT_CA_FILE"), requires = concat!($id, "-tls-cert-file"))]
            pub tls_client_ca_file: Option<std::path::PathBuf>,
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    max_connections: $max,
                    header_read_timeout_ms: 10_000,
                    body_read_timeout_ms: 30_000,
                    idle_timeout_ms: 60_000,
                    shutdown_timeout_secs: 25,
                    tls_cert_file: None,
                    tls_key_file: None,
                    tls_client_ca_file: None,
                }
            }
        }

        impl $name {
            /// The environment variable that raises the connection limit.
            pub const MAX_CONNECTIONS_SETTING: &'static str = concat!($env, "_MAX_CONNECTIONS");
            /// The service's name in logs and metrics.
            pub const SERVICE: &'static str = $service;

            /// The limits these settings describe.
            pub fn limits(&self) -> $crate::Limits {
                $crate::Limits {
                    max_connections: self.max_connections,
                    header_read_timeout: std::time::Duration::from_millis(self.header_read_timeout_ms.max(1)),
                    body_read_timeout: std::time::Duration::from_millis(self.body_read_timeout_ms.max(1)),
                    idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms.max(1)),
                    shutdown_timeout: std::time::Duration::from_secs(self.shutdown_timeout_secs),
                }
            }

            /// The TLS files, when TLS is configured.
            pub fn tls_files(&self) -> Option<$crate::tls::TlsFiles> {
                Some($crate::tls::TlsFiles {
                    cert: self.tls_cert_file.clone()?,
                    key: self.tls_key_file.clone()?,
                    client_ca: self.tls_client_ca_file.clone(),
                })
            }

            /// A server applying these limits, with TLS when configured (its
            /// files must load).
            pub fn server(&self) -> Result<std::sync::Arc<$crate::Server>, $crate::tls::TlsError> {
                Ok(match self.tls_files() {
                    None => $crate::Server::new($service, Self::MAX_CONNECTIONS_SETTING, self.limits()),
                    Some(files) => $crate::Server::with_tls(
                        $service,
                        Self::MAX_CONNECTIONS_SETTING,
                        self.limits(),
                        $crate::tls::Tls::load(files)?,
                    ),
                })
            }
        }
    };
}
