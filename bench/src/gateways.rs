//! The gateways under test: how each is installed into `bench/.peers`, how
//! it is started on the benchmark port against the benchmark supergraph, and
//! how each variant (de-duplication on or off, a forwarded unique
//! `authorization` header, TLS both ways) is expressed in its own
//! configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// A load variant: the same query, differently configured gateways or clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Variant {
    /// In-flight de-duplication of identical subgraph requests on.
    DedupOn,
    /// De-duplication off.
    DedupOff,
    /// Every client request carries a unique `authorization` header that the
    /// gateway forwards to every subgraph, so no two subgraph requests are
    /// identical and none can be merged. De-duplication stays at its default.
    UniqueAuth,
    /// TLS both ways: the client speaks https to the gateway, the gateway
    /// https (HTTP/2 by ALPN) to the subgraphs, trusting the run's own CA.
    /// De-duplication on. Only ours is configured for it.
    Tls,
    /// TestQuery sent as a persisted document (`documentId`, no text) to a
    /// gateway that runs trusted documents only. Only ours is configured.
    Persisted,
    /// Demand control in `enforce` mode, with a maximum above TestQuery's
    /// cost: the estimate is made on every request. Only ours is configured.
    CostEnforce,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::DedupOn,
        Variant::DedupOff,
        Variant::UniqueAuth,
        Variant::Tls,
        Variant::Persisted,
        Variant::CostEnforce,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::DedupOn => "dedup-on",
            Variant::DedupOff => "dedup-off",
            Variant::UniqueAuth => "unique-auth",
            Variant::Tls => "tls",
            Variant::Persisted => "persisted",
            Variant::CostEnforce => "cost-enforce",
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gateway the benchmark knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Gateway {
    Ours,
    HiveRouter,
    HiveGateway,
    HiveGatewayRouterRuntime,
    ApolloGateway,
}

/// Where things are: the workspace, the peers' folder, the run's scratch folder.
#[derive(Debug, Clone)]
pub struct Paths {
    pub workspace: PathBuf,
    /// `bench/.peers` (git-ignored).
    pub peers: PathBuf,
    /// `bench/results/<run>` (git-ignored): configs, logs, raw results.
    pub run_dir: PathBuf,
    pub supergraph: PathBuf,
    /// Our gateway's binary, built with `--profile bench-release`.
    pub gatehouse_bin: PathBuf,
    /// The `tls` variant's certificates and subgraph URLs, when it runs.
    pub tls: Option<TlsSetup>,
}

/// The trusted-documents manifest of the `persisted` variant: TestQuery,
/// under the id its requests send.
pub fn persisted_manifest(run_dir: &Path) -> PathBuf {
    run_dir.join("trusted-documents.json")
}

/// The highest cost the `cost-enforce` variant allows: far above TestQuery's,
/// so every request is estimated and none refused.
pub const BENCH_MAX_COST: u32 = 1_000_000;

/// What the `tls` variant needs: the run's CA, the certificate the gateway
/// and the subgraphs serve, and the subgraphs' https URLs.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `(subgraph name, https URL)`.
    pub subgraph_urls: Vec<(String, String)>,
}

impl Paths {
    pub fn hive_router_root(&self) -> PathBuf {
        self.peers.join("hive-router")
    }

    pub fn hive_router_bin(&self) -> PathBuf {
        self.hive_router_root().join("bin").join("hive_router")
    }

    pub fn node_dir(&self) -> PathBuf {
        self.peers.join("node")
    }
}

/// Our gateway's de-duplication option (`gatehouse gateway --help`).
pub const OURS_DEDUP_FLAG: &str = "--dedupe-subgraph-requests";

/// How ours is configured per variant: with a de-duplication flag it runs
/// with `FLAG=true` / `FLAG=false`; without one (`None`, for an older build)
/// it runs at its default and the `dedup-on` variant is skipped.
#[derive(Debug, Clone)]
pub struct OursOptions {
    pub dedup_flag: Option<String>,
    /// Extra arguments for every run of ours.
    pub extra_args: Vec<String>,
}

impl Default for OursOptions {
    fn default() -> Self {
        OursOptions { dedup_flag: Some(OURS_DEDUP_FLAG.to_owned()), extra_args: Vec::new() }
    }
}

/// A started command for one gateway and variant.
pub struct Launch {
    pub command: Command,
}

impl Gateway {
    pub const ALL: [Gateway; 5] = [
        Gateway::Ours,
        Gateway::HiveRouter,
        Gateway::HiveGateway,
        Gateway::HiveGatewayRouterRuntime,
        Gateway::ApolloGateway,
    ];

    /// The short name used on the command line and in result files.
    pub fn id(self) -> &'static str {
        match self {
            Gateway::Ours => "gatehouse",
            Gateway::HiveRouter => "hive-router",
            Gateway::HiveGateway => "hive-gateway",
            Gateway::HiveGatewayRouterRuntime => "hive-gateway-router-runtime",
            Gateway::ApolloGateway => "apollo-gateway",
        }
    }

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Gateway::Ours => "Gatehouse",
            Gateway::HiveRouter => "Hive Router 0.0.43",
            Gateway::HiveGateway => "Hive Gateway 2.15",
            Gateway::HiveGatewayRouterRuntime => "Hive Gateway 2.15 + router-runtime",
            Gateway::ApolloGateway => "Apollo Gateway 2.14",
        }
    }

    pub fn parse(id: &str) -> Option<Gateway> {
        Gateway::ALL.into_iter().find(|g| g.id() == id)
    }

    /// Whether the peer is already installed (ours is built, not installed).
    pub fn installed(self, paths: &Paths) -> bool {
        match self {
            Gateway::Ours => paths.gatehouse_bin.is_file(),
            Gateway::HiveRouter => paths.hive_router_bin().is_file(),
            Gateway::HiveGateway | Gateway::HiveGatewayRouterRuntime | Gateway::ApolloGateway => node_installed(paths),
        }
    }

    /// Installs the peer into `bench/.peers`; an error says why it cannot be.
    pub fn install(self, paths: &Paths) -> anyhow::Result<()> {
        match self {
            Gateway::Ours => bail!("ours is built by the runner, not installed"),
            Gateway::HiveRouter => install_hive_router(paths),
            Gateway::HiveGateway | Gateway::HiveGatewayRouterRuntime | Gateway::ApolloGateway => install_node(paths),
        }
    }

    /// The command that runs this gateway for `variant` on `port`, or why
    /// the gateway cannot run that variant.
    pub fn launch(self, paths: &Paths, variant: Variant, port: u16, ours: &OursOptions) -> Result<Launch, String> {
        if self != Gateway::Ours {
            match variant {
                Variant::Tls => return Err("the runner configures TLS for Gatehouse only".into()),
                Variant::Persisted => return Err("the runner configures persisted documents for Gatehouse only".into()),
                Variant::CostEnforce => return Err("the runner configures demand control for Gatehouse only".into()),
                _ => {}
            }
        }
        match self {
            Gateway::Ours => {
                let mut command = Command::new(&paths.gatehouse_bin);
                command
                    .arg("gateway")
                    .arg("--supergraph")
                    .arg(&paths.supergraph)
                    .arg("--listen")
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["--watch-supergraph", "false", "--graphiql", "false"])
                    // Like the peers, a plain federation gateway here: no token
                    // verification (its cost is the auth_overhead bench's subject),
                    // so the unique `authorization` headers are only forwarded.
                    .args(["--auth", "false"]);
                match (variant, &ours.dedup_flag) {
                    (Variant::DedupOn, None) => {
                        return Err("no de-duplication option yet (pass --ours-dedup-flag when it lands)".into())
                    }
                    (
                        Variant::DedupOn
                        | Variant::UniqueAuth
                        | Variant::Tls
                        | Variant::Persisted
                        | Variant::CostEnforce,
                        Some(flag),
                    ) => {
                        command.arg(format!("{flag}=true"));
                    }
                    (Variant::DedupOff, Some(flag)) => {
                        command.arg(format!("{flag}=false"));
                    }
                    _ => {}
                }
                if variant == Variant::UniqueAuth {
                    command.args(["--propagate-header", "authorization"]);
                }
                if variant == Variant::Tls {
                    let tls = paths.tls.as_ref().ok_or("no certificates for the tls variant")?;
                    for (name, url) in &tls.subgraph_urls {
                        command.arg("--subgraph-url").arg(format!("{name}={url}"));
                    }
                    command
                        .arg("--subgraph-ca-file")
                        .arg(&tls.ca)
                        .arg("--tls-cert-file")
                        .arg(&tls.cert)
                        .arg("--tls-key-file")
                        .arg(&tls.key);
                }
                if variant == Variant::Persisted {
                    command
                        .arg("--trusted-documents")
                        .arg(persisted_manifest(&paths.run_dir))
                        .args(["--trusted-documents-only", "true"]);
                }
                if variant == Variant::CostEnforce {
                    command.args(["--demand-control", "enforce", "--max-cost", &BENCH_MAX_COST.to_string()]);
                }
                command.args(&ours.extra_args).env("RUST_LOG", "error");
                Ok(Launch { command })
            }
            Gateway::HiveRouter => {
                let config = paths.run_dir.join(format!("hive-router-{variant}.yaml"));
                std::fs::write(&config, hive_router_config(&paths.supergraph, port, variant))
                    .map_err(|e| format!("writing {}: {e}", config.display()))?;
                let mut command = Command::new(paths.hive_router_bin());
                command.env("ROUTER_CONFIG_FILE_PATH", &config);
                Ok(Launch { command })
            }
            Gateway::HiveGateway | Gateway::HiveGatewayRouterRuntime => {
                // The config must sit under bench/.peers/node so its imports
                // resolve from that node_modules.
                let dir = paths.node_dir().join("configs");
                std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
                let config = dir.join(format!("{}-{variant}.mjs", self.id()));
                let text = hive_gateway_config(&paths.supergraph, variant, self == Gateway::HiveGatewayRouterRuntime);
                std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
                let mut command = Command::new("node");
                command
                    .arg(paths.node_dir().join("node_modules/@graphql-hive/gateway/dist/bin.js"))
                    .arg("supergraph")
                    .arg(&paths.supergraph)
                    .arg("--config-path")
                    .arg(&config)
                    .args(["--host", "127.0.0.1", "--port"])
                    .arg(port.to_string())
                    .args(["--fork", "1", "--disable-websockets"])
                    .env("NODE_ENV", "production");
                Ok(Launch { command })
            }
            Gateway::ApolloGateway => {
                if variant == Variant::DedupOn {
                    return Err("Apollo Gateway has no in-flight de-duplication".into());
                }
                let script = paths.node_dir().join("apollo-gateway.mjs");
                std::fs::copy(paths.workspace.join("bench/peers/apollo-gateway.mjs"), &script)
                    .map_err(|e| format!("copying the Apollo Gateway script: {e}"))?;
                let mut command = Command::new("node");
                command
                    .arg(&script)
                    .env("SUPERGRAPH", &paths.supergraph)
                    .env("PORT", port.to_string())
                    .env("NODE_ENV", "production")
                    .env("PROPAGATE_AUTHORIZATION", if variant == Variant::UniqueAuth { "1" } else { "0" });
                Ok(Launch { command })
            }
        }
    }
}

/// Hive Router's YAML for one variant (hive-router-config 0.0.26's shape).
pub fn hive_router_config(supergraph: &Path, port: u16, variant: Variant) -> String {
    let dedupe = variant != Variant::DedupOff;
    let mut yaml = format!(
        "# Generated by gatehouse-bench for the {variant} variant.\n\
         supergraph:\n  source: file\n  path: {supergraph}\n\
         http:\n  host: 127.0.0.1\n  port: {port}\n\
         log:\n  level: error\n\
         traffic_shaping:\n  all:\n    dedupe_enabled: {dedupe}\n",
        supergraph = supergraph.display(),
    );
    if variant == Variant::UniqueAuth {
        yaml.push_str("headers:\n  all:\n    request:\n      - propagate:\n          named: authorization\n");
    }
    yaml
}

/// Hive Gateway's `gateway.config.mjs` for one variant.
pub fn hive_gateway_config(supergraph: &Path, variant: Variant, router_runtime: bool) -> String {
    let mut js = format!("// Generated by gatehouse-bench for the {variant} variant.\n");
    js.push_str("import { defineConfig } from \"@graphql-hive/gateway\";\n");
    if router_runtime {
        js.push_str("import { unifiedGraphHandler } from \"@graphql-hive/router-runtime\";\n");
    }
    js.push_str("export const gatewayConfig = defineConfig({\n");
    js.push_str(&format!("  supergraph: {:?},\n", supergraph.display().to_string()));
    if router_runtime {
        js.push_str("  unifiedGraphHandler,\n");
    }
    if variant == Variant::DedupOff {
        js.push_str("  transportEntries: { \"*.http\": { options: { deduplicateInflightRequests: false } } },\n");
    }
    if variant == Variant::UniqueAuth {
        js.push_str(
            "  propagateHeaders: {\n    fromClientToSubgraphs: ({ request }) => \
             ({ authorization: request.headers.get(\"authorization\") }),\n  },\n",
        );
    }
    js.push_str("});\n");
    js
}

fn node_installed(paths: &Paths) -> bool {
    let modules = paths.node_dir().join("node_modules");
    ["@graphql-hive/gateway", "@graphql-hive/router-runtime", "@apollo/gateway", "@apollo/server"]
        .iter()
        .all(|package| modules.join(package).join("package.json").is_file())
}

fn install_node(paths: &Paths) -> anyhow::Result<()> {
    if node_installed(paths) {
        return Ok(());
    }
    let dir = paths.node_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(paths.workspace.join("bench/peers/package.json"), dir.join("package.json"))
        .context("copying bench/peers/package.json")?;
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .context("npm is not available")?;
    if !status.success() || !node_installed(paths) {
        bail!("npm install failed in {}", dir.display());
    }
    Ok(())
}

fn install_hive_router(paths: &Paths) -> anyhow::Result<()> {
    eprintln!(
        "installing hive-router 0.0.43 into {} (about 25 minutes on 2 cores; it is cached afterwards)",
        paths.hive_router_root().display()
    );
    let status = Command::new("nice")
        .args(["-n", "19", "cargo", "install", "--locked", "hive-router", "--version", "0.0.43", "--root"])
        .arg(paths.hive_router_root())
        // Its own target dir, so it neither waits on nor evicts the workspace's.
        .env("CARGO_TARGET_DIR", paths.peers.join("hive-router-target"))
        .status()
        .context("cargo is not available")?;
    if !status.success() || !paths.hive_router_bin().is_file() {
        bail!("cargo install hive-router 0.0.43 failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_router_turns_dedupe_off_only_in_the_dedup_off_variant() {
        let path = Path::new("/b/supergraph.graphql");
        assert!(hive_router_config(path, 4200, Variant::DedupOn).contains("dedupe_enabled: true"));
        assert!(hive_router_config(path, 4200, Variant::DedupOff).contains("dedupe_enabled: false"));
        let auth = hive_router_config(path, 4200, Variant::UniqueAuth);
        assert!(auth.contains("dedupe_enabled: true") && auth.contains("named: authorization"), "{auth}");
        assert!(auth.contains("path: /b/supergraph.graphql") && auth.contains("port: 4200"));
    }

    #[test]
    fn hive_gateway_config_follows_the_variant() {
        let path = Path::new("/b/supergraph.graphql");
        let off = hive_gateway_config(path, Variant::DedupOff, false);
        assert!(off.contains("deduplicateInflightRequests: false") && !off.contains("unifiedGraphHandler"));
        let auth = hive_gateway_config(path, Variant::UniqueAuth, true);
        assert!(auth.contains("propagateHeaders") && auth.contains("unifiedGraphHandler,"));
        assert!(!auth.contains("deduplicateInflightRequests"));
    }

    #[test]
    fn ours_gets_its_flags_per_variant() {
        let paths = Paths {
            workspace: "/w".into(),
            peers: "/w/bench/.peers".into(),
            run_dir: "/tmp".into(),
            supergraph: "/w/bench/supergraph.graphql".into(),
            gatehouse_bin: "/w/target/bench-release/gatehouse".into(),
            tls: Some(TlsSetup {
                ca: "/tmp/ca.pem".into(),
                cert: "/tmp/s.pem".into(),
                key: "/tmp/s.key".into(),
                subgraph_urls: vec![("accounts".into(), "https://127.0.0.1:4211/graphql".into())],
            }),
        };
        let args = |variant, ours: &OursOptions| -> Result<Vec<String>, String> {
            let launch = Gateway::Ours.launch(&paths, variant, 4200, ours)?;
            Ok(launch.command.get_args().map(|a| a.to_string_lossy().into_owned()).collect())
        };
        let without = OursOptions { dedup_flag: None, extra_args: Vec::new() };
        assert!(args(Variant::DedupOn, &without).is_err(), "no dedup option: the variant is skipped");
        assert!(!args(Variant::DedupOff, &without).unwrap().iter().any(|a| a.contains("dedup")));
        let auth = args(Variant::UniqueAuth, &without).unwrap();
        assert!(auth.windows(2).any(|w| w == ["--propagate-header", "authorization"]), "{auth:?}");
        assert!(auth.windows(2).any(|w| w == ["--auth", "false"]), "{auth:?}");

        let with = OursOptions { dedup_flag: Some("--dedup".into()), extra_args: vec!["--x".into()] };
        assert!(args(Variant::DedupOn, &with).unwrap().contains(&"--dedup=true".to_owned()));
        let default = args(Variant::DedupOff, &OursOptions::default()).unwrap();
        assert!(default.contains(&"--dedupe-subgraph-requests=false".to_owned()), "{default:?}");
        let off = args(Variant::DedupOff, &with).unwrap();
        assert!(off.contains(&"--dedup=false".to_owned()) && off.contains(&"--x".to_owned()));
        let tls = args(Variant::Tls, &with).unwrap();
        for pair in [
            ["--subgraph-url", "accounts=https://127.0.0.1:4211/graphql"],
            ["--subgraph-ca-file", "/tmp/ca.pem"],
            ["--tls-cert-file", "/tmp/s.pem"],
            ["--tls-key-file", "/tmp/s.key"],
        ] {
            assert!(tls.windows(2).any(|w| w == pair), "{pair:?} in {tls:?}");
        }
        assert!(tls.contains(&"--dedup=true".to_owned()));
        // Peers are not configured for TLS: the variant is skipped for them.
        assert!(Gateway::HiveRouter.launch(&paths, Variant::Tls, 4200, &with).is_err());
    }

    #[test]
    fn names_round_trip() {
        for gateway in Gateway::ALL {
            assert_eq!(Gateway::parse(gateway.id()), Some(gateway));
        }
        for variant in Variant::ALL {
            assert_eq!(Variant::parse(variant.name()), Some(variant));
        }
    }
}
