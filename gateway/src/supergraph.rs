//! Loading a supergraph into everything request code needs (planner, public
//! schema index, subgraph endpoints, the operation cache), and swapping it on
//! file change or SIGHUP while requests keep being served by the old one.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, Context};
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::planner::{Planner, QueryPlannerOptions};
use hive_router_query_planner::utils::parsing::safe_parse_schema;
use http::{HeaderName, Uri};
use tokio_util::sync::CancellationToken;

use crate::config::RuntimeConfig;
use crate::pipeline::PreparedOperation;
use crate::schema::SchemaIndex;

/// Where and how to reach one subgraph.
#[derive(Debug, Clone)]
pub struct SubgraphEndpoint {
    pub name: Arc<str>,
    pub url: Uri,
    pub timeout: Duration,
    /// Header rules of its requests: every subgraph's, then its own.
    pub header_rules: Arc<[crate::header_rules::Rule]>,
    /// Its response headers passed back to the client.
    pub response_headers: Arc<[HeaderName]>,
    /// The largest request body the subgraph takes, when configured.
    pub max_request_bytes: Option<usize>,
    /// Index into the client's transports ([`crate::config::RuntimeConfig::transports`]).
    pub transport: usize,
    pub metrics: FetchMetrics,
}

/// A subgraph URL as requests use it: `http` or `https` with a host, and
/// without a default port written out (`https://a:443/` and `https://a/` are
/// one host to the connection limits). Anything else is an error naming the
/// subgraph, so a supergraph pointing at `ftp://` or `localhost:4001` is
/// refused when it loads rather than failing every request.
pub fn endpoint_url(name: &str, url: &str) -> anyhow::Result<Uri> {
    // Credentials are refused and never repeated in the error.
    let shown = match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.split_once('@')?.1))) {
        Some((scheme, host)) if !host.contains('@') => format!("{scheme}://…@{host}"),
        _ => url.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| anyhow::anyhow!("subgraph {name} has an invalid URL {shown:?}"))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => anyhow::bail!("subgraph {name} has the URL {shown:?}: only http:// and https:// URLs are supported"),
    };
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        anyhow::bail!("subgraph {name} has the URL {shown:?}, which names no host");
    };
    if authority.as_str().contains('@') {
        anyhow::bail!("subgraph {name} has the URL {shown:?}: credentials in subgraph URLs are not supported");
    }
    if authority.port_u16() != Some(default_port) {
        return Ok(uri);
    }
    let mut parts = uri.clone().into_parts();
    parts.authority =
        Some(authority.host().parse().with_context(|| format!("subgraph {name} has an invalid host in {shown:?}"))?);
    Uri::from_parts(parts).with_context(|| format!("subgraph {name} has an invalid URL {shown:?}"))
}

/// One subgraph's fetch metrics, registered when the supergraph loads rather
/// than looked up, labels allocated and hashed, on every fetch.
#[derive(Debug, Clone)]
pub struct FetchMetrics {
    pub ok: metrics::Counter,
    pub timeout: metrics::Counter,
    pub error: metrics::Counter,
    pub duration: metrics::Histogram,
}

impl FetchMetrics {
    pub fn register(subgraph: &str) -> Self {
        let requests = |outcome: &'static str| metrics::counter!("gateway_subgraph_requests_total", "subgraph" => subgraph.to_string(), "outcome" => outcome);
        Self {
            ok: requests("ok"),
            timeout: requests("timeout"),
            error: requests("error"),
            duration: metrics::histogram!("gateway_subgraph_request_duration_seconds", "subgraph" => subgraph.to_string()),
        }
    }
}

/// Where one prepared operation lives in the cache: made empty on the first
/// miss, filled by the one build that concurrent misses wait for.
pub type OperationSlot = tokio::sync::OnceCell<Arc<PreparedOperation>>;

/// A plan in the plan cache, with what it weighs there.
#[derive(Clone)]
pub struct CachedPlan {
    pub plan: Arc<QueryPlan>,
    /// Estimated bytes, see [`plan_weight`].
    pub weight: u32,
}

/// The estimated memory of a plan: its JSON form is about the size of the
/// operation texts and selection sets it holds, and the structures behind
/// them take about three times that.
pub fn plan_weight(plan: &QueryPlan) -> u32 {
    let json = serde_json::to_vec(plan).map(|json| json.len()).unwrap_or(0);
    u32::try_from(json.saturating_mul(3)).unwrap_or(u32::MAX)
}

/// The cache bounds: at most `bytes` of estimated weight, and at most
/// `entries` entries because none weighs less than `bytes / entries`.
fn bounded<K, V>(entries: u64, bytes: u64, weigh: fn(&V) -> u32) -> moka::sync::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let floor = u32::try_from(bytes / entries.max(1)).unwrap_or(u32::MAX).max(1);
    moka::sync::Cache::builder().max_capacity(bytes).weigher(move |_, value| weigh(value).max(floor)).build()
}

/// Appends to the description of every guarded field what it requires
/// ("Requires the scope `admin`."), so clients and schema tools see it.
fn document_requirements(
    document: &mut graphql_tools::static_graphql::schema::Document,
    guards: &gatehouse_access::guards::GuardIndex,
) {
    use graphql_tools::static_graphql::schema::{Definition, TypeDefinition};
    for definition in &mut document.definitions {
        let (type_name, fields) = match definition {
            Definition::TypeDefinition(TypeDefinition::Object(object)) => (&object.name, &mut object.fields),
            Definition::TypeDefinition(TypeDefinition::Interface(interface)) => {
                (&interface.name, &mut interface.fields)
            }
            _ => continue,
        };
        for field in fields.iter_mut() {
            if let Some(requirement) = guards.describe_field(type_name, &field.name) {
                field.description = Some(match field.description.take() {
                    Some(text) if !text.trim().is_empty() => format!("{}\n\n{requirement}", text.trim_end()),
                    _ => requirement,
                });
            }
        }
    }
}

/// One loaded supergraph. Immutable; a reload builds a new one.
pub struct Supergraph {
    pub planner: Planner,
    pub schema: SchemaIndex,
    pub subgraphs: HashMap<String, SubgraphEndpoint>,
    /// Prepared operations keyed by a hash of (document, operation name,
    /// access profile). A slot is made on the first miss and filled by one
    /// build that concurrent misses wait for. Lives with the supergraph so
    /// that a reload can never serve a stale plan.
    /// Bounded by entries and by the estimated bytes of what they hold
    /// ([`PreparedOperation::weight`]); no entry keeps the document's text.
    pub operations: moka::sync::Cache<u64, Arc<OperationSlot>>,
    /// Plans keyed by a fingerprint of the normalised operation, shared by
    /// every document that normalises to the same operation; bounded the same way.
    pub plans: moka::sync::Cache<u128, CachedPlan>,
    /// `@authenticated` / `@requiresScopes` of this supergraph.
    pub guards: gatehouse_access::guards::GuardIndex,
    /// The heaviest entry either cache takes (an eighth of its bound): one
    /// huge operation would otherwise evict every other entry to make room.
    pub cache_entry_limit: u32,
    /// Whether plans get the union members the planner narrowed away back
    /// (`pipeline::partial_unions`); off by default.
    pub restore_partial_unions: bool,
    /// Its `@cost` and `@listSize`, when demand control is on.
    pub cost: Option<crate::cost::CostModel>,
    /// Its progressive-override labels and the custom ones switched on.
    pub overrides: crate::pipeline::overrides::OverrideLabels,
    /// A fingerprint of the SDL it was built from, to tell whether the file
    /// changed since.
    pub source: u128,
}

impl Supergraph {
    /// Builds a supergraph from SDL. Planner construction can panic on odd
    /// input; the panic is contained and reported as an error.
    pub fn from_sdl(sdl: &str, config: &RuntimeConfig) -> anyhow::Result<Self> {
        let document = safe_parse_schema(sdl).map_err(|e| anyhow!("supergraph does not parse: {e}"))?;
        let guards = gatehouse_access::guards::GuardIndex::from_schema(&document);
        let planner =
            catch_unwind(AssertUnwindSafe(|| Planner::new_from_supergraph(&document, QueryPlannerOptions::default())))
                .map_err(|_| anyhow!("the query planner panicked while loading the supergraph"))?
                .map_err(|e| anyhow!("the query planner rejected the supergraph: {e}"))?;

        let mut public = (*planner.consumer_schema.document).clone();
        document_requirements(&mut public, &guards);
        let mut schema = SchemaIndex::new(Arc::new(public));
        schema.note_hidden_enum_values(&document);

        let mut subgraphs = HashMap::new();
        for (name, url) in &planner.supergraph.subgraph_endpoint_map {
            let overrides = config.subgraphs.get(name).cloned().unwrap_or_default();
            let url = overrides.url.as_deref().unwrap_or(url);
            let uri = endpoint_url(name, url)?;
            let header_rules: Arc<[_]> = config.header_rules.iter().chain(&overrides.header_rules).cloned().collect();
            let response_headers: Arc<[_]> =
                config.response_headers.iter().chain(&overrides.response_headers).cloned().collect();
            subgraphs.insert(
                name.clone(),
                SubgraphEndpoint {
                    name: Arc::from(name.as_str()),
                    url: uri,
                    timeout: overrides.timeout.unwrap_or(config.default_timeout),
                    header_rules,
                    response_headers,
                    max_request_bytes: overrides.max_request_bytes,
                    transport: overrides.transport,
                    metrics: FetchMetrics::register(name),
                },
            );
        }
        for name in config.subgraphs.keys() {
            if !subgraphs.contains_key(name) {
                tracing::warn!(subgraph = %name, "configuration names a subgraph the supergraph does not have");
            }
        }

        let progressive = &planner.supergraph.progressive_overrides;
        for label in &config.override_labels {
            if !progressive.flags.contains(label) {
                tracing::warn!(%label, "GATEWAY_OVERRIDE_LABELS names a label no @override of the supergraph uses");
            }
        }
        let overrides = crate::pipeline::overrides::OverrideLabels::new(
            progressive.percentages.iter().copied(),
            &config.override_labels,
        );
        let cost = (config.demand_control.mode != crate::cost::Mode::Off)
            .then(|| crate::cost::CostModel::from_supergraph(&document, config.demand_control.default_list_size));
        Ok(Self {
            cost,
            overrides,
            planner,
            schema,
            subgraphs,
            operations: bounded(config.plan_cache_size, config.plan_cache_bytes, |slot: &Arc<OperationSlot>| {
                slot.get().map_or(0, |prepared| prepared.weight)
            }),
            plans: bounded(config.plan_cache_size, config.plan_cache_bytes, |cached: &CachedPlan| cached.weight),
            cache_entry_limit: u32::try_from(config.plan_cache_bytes / 8).unwrap_or(u32::MAX),
            restore_partial_unions: config.restore_partial_unions,
            source: crate::pipeline::fingerprint(&sdl),
            guards,
        })
    }

    pub fn from_file(path: &Path, config: &RuntimeConfig) -> anyhow::Result<Self> {
        let sdl = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_sdl(&sdl, config)
    }

    /// The public API schema as SDL: what clients see and introspect, with no
    /// federation machinery and nothing `@inaccessible`.
    pub fn public_sdl(&self) -> String {
        crate::schema::printable(&self.schema.document).to_string()
    }
}

/// The currently served supergraph, swapped atomically on reload.
#[derive(Default)]
pub struct SupergraphStore {
    current: RwLock<Option<Arc<Supergraph>>>,
}

impl SupergraphStore {
    pub fn current(&self) -> Option<Arc<Supergraph>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, supergraph: Supergraph) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(supergraph));
    }

    /// Loads the file and swaps it in; on failure the old supergraph stays.
    pub async fn reload(self: &Arc<Self>, path: PathBuf, config: Arc<RuntimeConfig>) -> anyhow::Result<()> {
        let loaded = tokio::task::spawn_blocking(move || Supergraph::from_file(&path, &config))
            .await
            .map_err(|e| anyhow!("supergraph loading task failed: {e}"))??;
        self.replace(loaded);
        metrics::counter!("gateway_supergraph_reloads_total").increment(1);
        Ok(())
    }
}

/// Reloads the supergraph when its file changes or the process gets SIGHUP,
/// until `shutdown` is cancelled.
pub async fn watch(store: Arc<SupergraphStore>, config: Arc<RuntimeConfig>, shutdown: CancellationToken) {
    let path = config.supergraph_path.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);

    // The watcher must live as long as this task; editors often replace the file,
    // so the parent directory is watched and events are filtered by name.
    let _watcher = if config.watch_supergraph {
        file_watcher(&path, tx.clone())
            .inspect_err(|e| tracing::warn!(error = %e, "cannot watch the supergraph file; SIGHUP still reloads"))
            .ok()
    } else {
        None
    };

    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();

    // A change between the first load and the watcher's start would go
    // unnoticed: look once now.
    let on_disk = std::fs::read_to_string(&path).ok().map(|sdl| crate::pipeline::fingerprint(&sdl));
    if config.watch_supergraph && on_disk != store.current().map(|loaded| loaded.source) {
        let _ = tx.try_send(());
    }

    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();

        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup => {},
            Some(()) = rx.recv() => settle(&mut rx).await,
        }
        match store.reload(path.clone(), config.clone()).await {
            Ok(()) => tracing::info!(path = %path.display(), "supergraph reloaded"),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %format!("{e:#}"), "supergraph reload failed; keeping the previous one")
            }
        }
    }
}

/// After a [`file_watcher`] event: lets the burst of events a write makes
/// settle, so that the file is read once, whole.
pub(crate) async fn settle(events: &mut tokio::sync::mpsc::Receiver<()>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    while events.try_recv().is_ok() {}
}

/// Watches `path` (a file, or a directory and the files in it) and sends on
/// `tx` when it changes. Editors often replace a file rather than write it,
/// so a file's parent directory is watched and events are filtered by name.
pub(crate) fn file_watcher(
    path: &Path,
    tx: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let is_dir = path.is_dir();
    let file_name = (!is_dir).then(|| path.file_name().map(|n| n.to_os_string())).flatten();
    let dir = if is_dir {
        path.to_path_buf()
    } else {
        path.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !(event.kind.is_modify() || event.kind.is_create() || (is_dir && event.kind.is_remove())) {
            return;
        }
        if is_dir || event.paths.iter().any(|p| p.file_name().map(|n| n.to_os_string()) == file_name) {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
