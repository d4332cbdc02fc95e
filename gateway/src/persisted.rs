//! Persisted documents: Automatic Persisted Queries (APQ) and trusted
//! documents.
//!
//! - **APQ** (Apollo's protocol): a client sends
//!   `extensions.persistedQuery.sha256Hash` without the query; on
//!   `PERSISTED_QUERY_NOT_FOUND` it sends both, and the gateway checks the
//!   hash and keeps the document once it has been prepared (parsed,
//!   validated, planned). The store is bounded and in memory, or in
//!   Redis when several gateways share it (each keeps a bounded copy in
//!   memory in front of Redis, which also serves while Redis is down).
//! - **Trusted documents**: a manifest (Apollo's persisted-query manifest, or
//!   GraphQL Code Generator's `persisted-documents.json`) or a directory of
//!   them, reloaded when it changes. Clients send `documentId` (the
//!   GraphQL-over-HTTP persisted-document proposal) or the APQ hash. With
//!   `GATEWAY_TRUSTED_DOCUMENTS_ONLY`, any other operation is refused with
//!   `PERSISTED_QUERY_NOT_IN_LIST` — a full document is accepted when its
//!   SHA-256 is a manifest entry's — except introspection (when allowed) and
//!   callers with the bypass scope.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use arc_swap::ArcSwap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::{codes, GraphQLError, RequestError};
use crate::pipeline::GraphQLRequest;
use gatehouse_access::guards::Caller;

/// Where automatically persisted queries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApqStore {
    /// In this gateway's memory only.
    Memory,
    /// In Redis (`REDIS_URL`, keys under `REDIS_KEY_PREFIX`), shared by every
    /// gateway using it, with a copy of recent ones in memory.
    Redis,
}

/// Settings of persisted documents.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Gateway persisted documents")]
pub struct DocumentsConfig {
    /// Whether Automatic Persisted Queries are served (clients send a
    /// document's SHA-256 instead of its text once it is known). Default: true.
    #[arg(id = "gateway-apq", long = "apq", env = "GATEWAY_APQ", default_value_t = true, action = clap::ArgAction::Set)]
    pub apq: bool,

    /// Where APQ documents are kept: `memory` (this gateway) or `redis`
    /// (shared by every gateway on the same Redis). Default: memory.
    #[arg(
        id = "gateway-apq-store",
        long = "apq-store",
        env = "GATEWAY_APQ_STORE",
        value_enum,
        default_value = "memory"
    )]
    pub apq_store: ApqStore,

    /// Memory, in bytes, that APQ documents may take in this gateway (the
    /// least recently used go first). Default 16777216 (16 MiB).
    #[arg(
        id = "gateway-apq-cache-bytes",
        long = "apq-cache-bytes",
        env = "GATEWAY_APQ_CACHE_BYTES",
        default_value_t = 16 * 1024 * 1024
    )]
    pub apq_cache_bytes: u64,

    /// How long a document registered in Redis is kept after its last
    /// registration, in seconds. Default 86400 (a day).
    #[arg(id = "gateway-apq-ttl-secs", long = "apq-ttl-secs", env = "GATEWAY_APQ_TTL_SECS", default_value_t = 86_400)]
    pub apq_ttl_secs: u64,

    /// Trusted documents: a manifest file (Apollo's persisted-query manifest
    /// or GraphQL Code Generator's `persisted-documents.json`) or a directory
    /// of them (`*.json`, and `*.graphql` files named by their id). Reloaded
    /// when it changes. Default: none.
    #[arg(id = "gateway-trusted-documents", long = "trusted-documents", env = "GATEWAY_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<PathBuf>,

    /// Refuse every operation that is not a trusted document
    /// (`PERSISTED_QUERY_NOT_IN_LIST`); needs `GATEWAY_TRUSTED_DOCUMENTS`.
    /// Default: false.
    #[arg(id = "gateway-trusted-documents-only", long = "trusted-documents-only", env = "GATEWAY_TRUSTED_DOCUMENTS_ONLY", default_value_t = false, action = clap::ArgAction::Set)]
    pub trusted_documents_only: bool,

    /// With `GATEWAY_TRUSTED_DOCUMENTS_ONLY`, still accept operations that
    /// select only introspection (`__schema`, `__type`, `__typename`).
    /// Default: false.
    #[arg(id = "gateway-trusted-documents-allow-introspection", long = "trusted-documents-allow-introspection", env = "GATEWAY_TRUSTED_DOCUMENTS_ALLOW_INTROSPECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub trusted_documents_allow_introspection: bool,

    /// With `GATEWAY_TRUSTED_DOCUMENTS_ONLY`, callers whose token carries
    /// this scope may send any operation (for example `SYS_ADMIN`). Default: none.
    #[arg(
        id = "gateway-trusted-documents-bypass-scope",
        long = "trusted-documents-bypass-scope",
        env = "GATEWAY_TRUSTED_DOCUMENTS_BYPASS_SCOPE"
    )]
    pub trusted_documents_bypass_scope: Option<String>,
}

impl Default for DocumentsConfig {
    /// The same values as the flags' defaults (a config test checks they agree).
    fn default() -> Self {
        Self {
            apq: true,
            apq_store: ApqStore::Memory,
            apq_cache_bytes: 16 * 1024 * 1024,
            apq_ttl_secs: 86_400,
            trusted_documents: None,
            trusted_documents_only: false,
            trusted_documents_allow_introspection: false,
            trusted_documents_bypass_scope: None,
        }
    }
}

/// A SHA-256 digest.
type Hash = [u8; 32];

fn sha256(text: &str) -> Hash {
    Sha256::digest(text.as_bytes()).into()
}

/// Reads a hex SHA-256 (either case); `None` when it is not one.
fn parse_hash(hex_text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut hash).ok()?;
    Some(hash)
}

/// One loaded set of trusted documents.
#[derive(Debug, Default)]
pub struct Manifest {
    /// By the id clients send.
    by_id: HashMap<String, Arc<str>>,
    /// By the SHA-256 of their text: APQ hashes and full documents match here.
    by_hash: HashMap<Hash, Arc<str>>,
}

impl Manifest {
    /// Reads a manifest file, or every manifest in a directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut manifest = Self::default();
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for entry in entries {
                match entry.extension().and_then(|e| e.to_str()) {
                    Some("json") => manifest.add_json(&entry)?,
                    Some("graphql") | Some("gql") => {
                        let id = entry.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                        let body = std::fs::read_to_string(&entry)
                            .with_context(|| format!("cannot read {}", entry.display()))?;
                        manifest.add(id, body, &entry)?;
                    }
                    _ => {}
                }
            }
        } else {
            manifest.add_json(path)?;
        }
        Ok(manifest)
    }

    fn add_json(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
        let Value::Object(object) = value else { bail!("{} must hold a JSON object", path.display()) };
        if object.contains_key("format") || object.contains_key("operations") {
            // Apollo's persisted-query manifest.
            let format = object.get("format").and_then(Value::as_str);
            if format != Some("apollo-persisted-query-manifest") {
                bail!("{}: unknown manifest format {format:?}", path.display());
            }
            let Some(Value::Array(operations)) = object.get("operations") else {
                bail!("{}: \"operations\" must be an array", path.display());
            };
            for (i, operation) in operations.iter().enumerate() {
                let (Some(id), Some(body)) =
                    (operation.get("id").and_then(Value::as_str), operation.get("body").and_then(Value::as_str))
                else {
                    bail!("{}: operation {i} needs an \"id\" and a \"body\" string", path.display());
                };
                self.add(id.to_owned(), body.to_owned(), path)?;
            }
        } else {
            // GraphQL Code Generator's client preset: `{ "<hash>": "<document>" }`.
            for (id, body) in object {
                let Value::String(body) = body else {
                    bail!("{}: the document of {id:?} must be a string", path.display());
                };
                self.add(id, body, path)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, id: String, body: String, path: &Path) -> anyhow::Result<()> {
        if id.is_empty() || body.trim().is_empty() {
            bail!("{}: a trusted document needs an id and a body", path.display());
        }
        let body: Arc<str> = Arc::from(body);
        if let Some(known) = self.by_id.get(&id) {
            if **known != *body {
                bail!("{}: the id {id:?} is given to two different documents", path.display());
            }
        }
        self.by_hash.insert(sha256(&body), body.clone());
        self.by_id.insert(id, body);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The document a `documentId` names: an id of the manifest, or
    /// `sha256:<hex>` of a document's text.
    fn by_document_id(&self, id: &str) -> Option<&Arc<str>> {
        self.by_id
            .get(id)
            .or_else(|| id.strip_prefix("sha256:").and_then(parse_hash).and_then(|h| self.by_hash.get(&h)))
    }
}

/// The APQ store: a bounded map in memory, in front of Redis when shared.
struct Apq {
    local: moka::sync::Cache<Hash, Arc<str>>,
    redis: Option<RedisApq>,
}

struct RedisApq {
    connection: gatehouse_common::redis_conn::RedisConn,
    prefix: String,
    ttl: Duration,
}

impl RedisApq {
    fn key(&self, hash: &Hash) -> String {
        format!("{}apq:{}", self.prefix, hex::encode(hash))
    }
}

impl Apq {
    /// The document registered under `hash`. With Redis unreachable, only
    /// this gateway's copies are found: a miss makes the client send the
    /// document again, which still works.
    async fn get(&self, hash: &Hash) -> Option<Arc<str>> {
        if let Some(found) = self.local.get(hash) {
            return Some(found);
        }
        let redis = self.redis.as_ref()?;
        let mut connection = redis.connection.clone();
        let found: Option<String> = match redis::cmd("GET").arg(redis.key(hash)).query_async(&mut connection).await {
            Ok(found) => found,
            Err(error) => {
                redis_failed(&error);
                return None;
            }
        };
        // Redis is trusted storage, but a document is only ever served for
        // the hash of its own text.
        found.filter(|text| sha256(text) == *hash).map(|text| {
            let text: Arc<str> = Arc::from(text);
            self.local.insert(*hash, text.clone());
            text
        })
    }

    /// Registers a document; with Redis unreachable, in this gateway only.
    async fn put(&self, hash: Hash, text: &Arc<str>) {
        self.local.insert(hash, text.clone());
        if let Some(redis) = &self.redis {
            let mut connection = redis.connection.clone();
            let stored: Result<(), _> = redis::cmd("SET")
                .arg(redis.key(&hash))
                .arg(&**text)
                .arg("EX")
                .arg(redis.ttl.as_secs().max(1))
                .query_async(&mut connection)
                .await;
            if let Err(error) = stored {
                redis_failed(&error);
            }
        }
    }
}

fn redis_failed(error: &redis::RedisError) {
    metrics::counter!("gateway_persisted_documents_store_errors_total").increment(1);
    tracing::warn!(%error, "the APQ store in Redis failed; this gateway's own copies serve meanwhile");
}

/// Persisted documents as request code uses them.
pub struct PersistedDocuments {
    apq: Option<Apq>,
    trusted: Option<Arc<ArcSwap<Manifest>>>,
    trusted_path: Option<PathBuf>,
    only_trusted: bool,
    allow_introspection: bool,
    bypass_scope: Option<String>,
}

/// What [`PersistedDocuments::resolve`] found out about a request's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// A trusted document.
    Trusted,
    /// Anything else: sent in full, or registered earlier through APQ.
    Untrusted,
    /// Sent in full with its APQ hash (checked): registered once the
    /// document has been prepared, so that what is kept at least parses,
    /// validates and plans.
    ToRegister(Hash),
}

fn not_found(message: &str, code: &'static str) -> RequestError {
    RequestError::Validation(vec![GraphQLError::new(message, code)])
}

impl PersistedDocuments {
    /// Loads the manifest (a start-up error when it cannot be read) and
    /// connects the shared APQ store when configured.
    pub async fn build(
        config: &DocumentsConfig,
        shared: Option<&gatehouse_common::settings::SharedSettings>,
    ) -> anyhow::Result<Self> {
        if config.trusted_documents_only && config.trusted_documents.is_none() {
            bail!("GATEWAY_TRUSTED_DOCUMENTS_ONLY needs GATEWAY_TRUSTED_DOCUMENTS (the manifest to allow)");
        }
        let trusted = match &config.trusted_documents {
            Some(path) => {
                let manifest = Manifest::load(path).context("GATEWAY_TRUSTED_DOCUMENTS")?;
                tracing::info!(path = %path.display(), documents = manifest.len(), "trusted documents loaded");
                Some(Arc::new(ArcSwap::from_pointee(manifest)))
            }
            None => None,
        };
        let apq = if config.apq {
            let redis = match config.apq_store {
                ApqStore::Memory => None,
                ApqStore::Redis => {
                    let shared = shared.context("GATEWAY_APQ_STORE=redis needs REDIS_URL")?;
                    Some(RedisApq {
                        connection: gatehouse_common::infra::redis(&shared.redis()).await?,
                        prefix: shared.redis_key_prefix.clone(),
                        ttl: Duration::from_secs(config.apq_ttl_secs),
                    })
                }
            };
            let local = moka::sync::Cache::builder()
                .max_capacity(config.apq_cache_bytes.max(1))
                .weigher(|_: &Hash, text: &Arc<str>| u32::try_from(text.len().saturating_add(64)).unwrap_or(u32::MAX))
                .build();
            Some(Apq { local, redis })
        } else {
            None
        };
        Ok(Self {
            apq,
            trusted,
            trusted_path: config.trusted_documents.clone(),
            only_trusted: config.trusted_documents_only,
            allow_introspection: config.trusted_documents_allow_introspection,
            bypass_scope: config.trusted_documents_bypass_scope.clone().filter(|s| !s.trim().is_empty()),
        })
    }

    /// Fills in the request's document from its `documentId` or APQ hash,
    /// checks the hash of a document sent with one, and tells whether the
    /// document is trusted (or is to be registered once prepared).
    pub async fn resolve(&self, request: &mut GraphQLRequest) -> Result<Provenance, RequestError> {
        let manifest = self.trusted.as_ref().map(|t| t.load());
        if let Some(id) = request.document_id.as_deref() {
            if !request.query.is_empty() {
                return Err(RequestError::bad_request("Send either \"documentId\" or \"query\", not both"));
            }
            let Some(manifest) = manifest.as_ref() else {
                return Err(not_found("This gateway has no persisted documents", codes::PERSISTED_DOCUMENT_NOT_FOUND));
            };
            let Some(body) = manifest.by_document_id(id) else {
                metrics::counter!("gateway_persisted_documents_total", "outcome" => "not_found").increment(1);
                return Err(not_found("No persisted document has this id", codes::PERSISTED_DOCUMENT_NOT_FOUND));
            };
            metrics::counter!("gateway_persisted_documents_total", "outcome" => "trusted").increment(1);
            request.query = body.to_string();
            return Ok(Provenance::Trusted);
        }
        let hash = match apq_hash(request)? {
            Some(hash) => hash,
            // A document sent in full: trusted when its text is a manifest
            // entry's, which matters (and is hashed) only when refusing.
            None if !self.only_trusted => return Ok(Provenance::Untrusted),
            None => {
                let trusted = manifest.as_ref().is_some_and(|m| m.by_hash.contains_key(&sha256(&request.query)));
                return Ok(if trusted { Provenance::Trusted } else { Provenance::Untrusted });
            }
        };
        if request.query.is_empty() {
            if let Some(body) = manifest.as_ref().and_then(|m| m.by_hash.get(&hash)) {
                metrics::counter!("gateway_persisted_documents_total", "outcome" => "trusted").increment(1);
                request.query = body.to_string();
                return Ok(Provenance::Trusted);
            }
            let Some(apq) = &self.apq else {
                return Err(not_found("Automatic persisted queries are off", codes::PERSISTED_QUERY_NOT_SUPPORTED));
            };
            return match apq.get(&hash).await {
                Some(text) => {
                    metrics::counter!("gateway_persisted_documents_total", "outcome" => "hit").increment(1);
                    request.query = text.to_string();
                    Ok(Provenance::Untrusted)
                }
                None => {
                    metrics::counter!("gateway_persisted_documents_total", "outcome" => "miss").increment(1);
                    Err(not_found("PersistedQueryNotFound", codes::PERSISTED_QUERY_NOT_FOUND))
                }
            };
        }
        if sha256(&request.query) != hash {
            return Err(RequestError::BadRequest(GraphQLError::new(
                "The persisted query's sha256Hash is not the SHA-256 of its query",
                codes::PERSISTED_QUERY_HASH_MISMATCH,
            )));
        }
        if manifest.as_ref().is_some_and(|m| m.by_hash.contains_key(&hash)) {
            return Ok(Provenance::Trusted);
        }
        Ok(Provenance::ToRegister(hash))
    }

    /// Keeps a document sent with its APQ hash, once it has been prepared.
    /// Only what may run is kept: a gateway that refuses untrusted documents
    /// does not store them for anyone.
    pub async fn register(&self, provenance: Provenance, query: &str) {
        let (Provenance::ToRegister(hash), Some(apq)) = (provenance, &self.apq) else { return };
        if !self.only_trusted {
            apq.put(hash, &Arc::from(query)).await;
            metrics::counter!("gateway_persisted_documents_total", "outcome" => "registered").increment(1);
        }
    }

    /// Whether an untrusted document is refused before any work on it:
    /// `Some(error)` when trusted documents only are allowed and neither the
    /// caller's scope nor the introspection rule could let it through.
    pub fn refuse_early(&self, provenance: Provenance, caller: Option<&Caller>) -> Option<RequestError> {
        if !self.only_trusted || provenance == Provenance::Trusted || self.bypasses(caller) {
            return None;
        }
        (!self.allow_introspection).then(not_in_list)
    }

    /// Whether an untrusted document is refused once prepared: only pure
    /// introspection gets through, and only when allowed.
    pub fn refuse_prepared(
        &self,
        provenance: Provenance,
        caller: Option<&Caller>,
        only_introspection: bool,
    ) -> Option<RequestError> {
        if !self.only_trusted || provenance == Provenance::Trusted || self.bypasses(caller) {
            return None;
        }
        (!(self.allow_introspection && only_introspection)).then(not_in_list)
    }

    fn bypasses(&self, caller: Option<&Caller>) -> bool {
        match (&self.bypass_scope, caller) {
            (Some(scope), Some(caller)) => caller.authenticated && caller.scopes.contains(scope),
            _ => false,
        }
    }

    /// Reloads the manifest whenever its file or directory changes; a
    /// manifest that fails to load leaves the previous one in place.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let (Some(path), Some(trusted)) = (self.trusted_path.clone(), self.trusted.clone()) else { return };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let _watcher = match crate::supergraph::file_watcher(&path, tx.clone()) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot watch the trusted documents; they will not reload");
                return;
            }
        };
        // A change between the load at start-up and the watcher's start
        // would go unnoticed: read once more now.
        let _ = tx.try_send(());
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(()) = rx.recv() => crate::supergraph::settle(&mut rx).await,
            }
            let loaded = tokio::task::spawn_blocking({
                let path = path.clone();
                move || Manifest::load(&path)
            })
            .await;
            match loaded {
                Ok(Ok(manifest)) => {
                    tracing::info!(path = %path.display(), documents = manifest.len(), "trusted documents reloaded");
                    trusted.store(Arc::new(manifest));
                }
                Ok(Err(error)) => tracing::error!(
                    path = %path.display(),
                    error = %format!("{error:#}"),
                    "trusted documents failed to reload; keeping the previous ones"
                ),
                Err(error) => tracing::error!(%error, "trusted documents reload task failed"),
            }
        }
    }
}

fn not_in_list() -> RequestError {
    metrics::counter!("gateway_persisted_documents_total", "outcome" => "refused").increment(1);
    not_found("This gateway only runs trusted documents", codes::PERSISTED_QUERY_NOT_IN_LIST)
}

/// The hash of `extensions.persistedQuery`, checked for shape.
fn apq_hash(request: &GraphQLRequest) -> Result<Option<Hash>, RequestError> {
    let Some(persisted) = request.extensions.as_ref().and_then(|e| e.get("persistedQuery")) else {
        return Ok(None);
    };
    let invalid = |message: &str| RequestError::bad_request(format!("extensions.persistedQuery: {message}"));
    let Value::Object(persisted) = persisted else { return Err(invalid("must be an object")) };
    match persisted.get("version") {
        Some(version) if version.as_u64() == Some(1) => {}
        _ => return Err(invalid("only version 1 is supported")),
    }
    let hash = persisted.get("sha256Hash").and_then(Value::as_str).ok_or_else(|| invalid("needs a sha256Hash"))?;
    if hash.len() != 64 {
        return Err(invalid("sha256Hash must be 64 hexadecimal digits"));
    }
    parse_hash(hash).map(Some).ok_or_else(|| invalid("sha256Hash must be 64 hexadecimal digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn both_manifest_formats_and_directories_load() {
        let dir = tempfile::tempdir().unwrap();
        let apollo = write(
            dir.path(),
            "apollo.json",
            r#"{"format":"apollo-persisted-query-manifest","version":1,"operations":[
                {"id":"me-1","name":"Me","type":"query","body":"query Me { me { id } }"}]}"#,
        );
        let manifest = Manifest::load(&apollo).unwrap();
        assert_eq!(manifest.by_document_id("me-1").map(|b| &**b), Some("query Me { me { id } }"));
        let hash = hex::encode(sha256("query Me { me { id } }"));
        assert!(manifest.by_document_id(&format!("sha256:{hash}")).is_some());
        assert!(manifest.by_document_id("sha256:00").is_none());

        write(dir.path(), "client.json", r#"{"abc123": "{ a }"}"#);
        write(dir.path(), "Feed.graphql", "{ feed { id } }");
        write(dir.path(), "notes.txt", "ignored");
        let all = Manifest::load(dir.path()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all.by_document_id("Feed").map(|b| &**b), Some("{ feed { id } }"));
        assert_eq!(all.by_document_id("abc123").map(|b| &**b), Some("{ a }"));
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        for (text, reason) in [
            ("not json", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"format":"other","operations":[]}"#, "unknown manifest format"),
            (r#"{"format":"apollo-persisted-query-manifest","operations":{}}"#, "must be an array"),
            (r#"{"format":"apollo-persisted-query-manifest","operations":[{"id":"x"}]}"#, "needs an \"id\""),
            (r#"{"x": 1}"#, "must be a string"),
            (r#"{"": "{ a }"}"#, "needs an id"),
        ] {
            let path = write(dir.path(), "m.json", text);
            let error = format!("{:#}", Manifest::load(&path).unwrap_err());
            assert!(error.contains(reason), "{text}: {error}");
        }
        let path = write(
            dir.path(),
            "m.json",
            r#"{"format":"apollo-persisted-query-manifest","version":1,"operations":[
                {"id":"x","body":"{ a }"},{"id":"x","body":"{ b }"}]}"#,
        );
        assert!(format!("{:#}", Manifest::load(&path).unwrap_err()).contains("two different documents"));
    }

    #[test]
    fn apq_hashes_are_checked_for_shape() {
        let request = |extensions: Value| GraphQLRequest {
            extensions: extensions.as_object().cloned(),
            ..GraphQLRequest::default()
        };
        let good = "a".repeat(64);
        assert!(apq_hash(&request(serde_json::json!({"persistedQuery": {"version": 1, "sha256Hash": good}})))
            .unwrap()
            .is_some());
        assert!(apq_hash(&request(serde_json::json!({}))).unwrap().is_none());
        for bad in [
            serde_json::json!({"persistedQuery": "x"}),
            serde_json::json!({"persistedQuery": {"version": 2, "sha256Hash": good}}),
            serde_json::json!({"persistedQuery": {"version": 1}}),
            serde_json::json!({"persistedQuery": {"version": 1, "sha256Hash": "zz".repeat(32)}}),
            serde_json::json!({"persistedQuery": {"version": 1, "sha256Hash": "ab"}}),
        ] {
            assert!(apq_hash(&request(bad.clone())).is_err(), "{bad}");
        }
    }
}
