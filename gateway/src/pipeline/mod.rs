//! The request pipeline, one file per stage, run in this order:
//!
//! 1. [`parse`]: text to AST under size, token and depth limits.
//! 2. [`validate`]: all specification rules against the public schema.
//! 3. authorization: `@authenticated` / `@requiresScopes` remove what the
//!    caller may not select ([`gatehouse_access::guards`]); the plan is made
//!    from what remains, the projection from the client's whole operation, so
//!    removed fields come back as `null` with an error each.
//! 4. [`normalize`]: operation selected and normalised by the planner's normaliser.
//! 5. [`plan`]: query plan, cached per supergraph by normalised operation;
//!    [`partial_unions`] puts back union members the planner narrowed away.
//! 6. [`variables`]: coercion of the client's variables (per request, never cached).
//! 7. execution by [`crate::executor`].
//! 8. [`project`]: the response written in the client's shape.
//!
//! Stages 1-5 depend only on the document and operation name, so their result
//! ([`PreparedOperation`]) is cached; a warm request starts at stage 6.

pub mod normalize;
pub mod overrides;
pub mod parse;
pub mod partial_unions;
pub mod plan;
pub mod project;
pub mod validate;
pub mod variables;

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use graphql_tools::static_graphql::query::{Definition, Document, OperationDefinition as AstOperation};
use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::state::supergraph_state::OperationKind;
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::client::SubgraphClient;
use crate::config::RuntimeConfig;
use crate::error::{codes, GraphQLError, RequestError};
use crate::executor::Execution;
use crate::security::AuthorizationMode;
use crate::supergraph::{Supergraph, SupergraphStore};
use gatehouse_access::guards::{self, Caller, Denial, DeniedField};
use overrides::Draw;
use variables::VariableSpec;

/// One GraphQL request as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct GraphQLRequest {
    /// Empty when the client sent only a `documentId` or an APQ hash, until
    /// [`crate::persisted::PersistedDocuments::resolve`] fills it in.
    pub query: String,
    /// A trusted document's id, sent instead of `query`.
    pub document_id: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    pub extensions: Option<Map<String, Value>>,
}

/// Everything about an operation that does not depend on its variables.
pub struct PreparedOperation {
    /// What it was prepared from: document, operation name and access
    /// profile, as a 128-bit fingerprint ([`cache_key`]); the document's text
    /// itself is not kept.
    fingerprint: u128,
    /// Estimated bytes it holds, for the cache's bound.
    pub weight: u32,
    /// Fields removed by the guards, answered with `null` and an error each.
    pub denied: Vec<DeniedField>,
    pub kind: OperationKind,
    pub root_type: String,
    /// The normalised operation: projection walks it.
    pub operation: OperationDefinition,
    /// `None` when no subgraph is needed (introspection, `__typename`).
    pub plan: Option<Arc<QueryPlan>>,
    pub variables: Vec<VariableSpec>,
    pub has_introspection: bool,
    /// The size of the last answer written for it: the next answer's buffer
    /// starts there, neither growing nor holding room it will not use.
    last_answer_size: AtomicUsize,
}

impl PreparedOperation {
    /// What it was prepared from (document, operation name, access profile).
    pub(crate) fn fingerprint(&self) -> u128 {
        self.fingerprint
    }
}

/// A 128-bit fingerprint of `value`, from two hashers whose keys are random
/// per process: nobody can work out values that collide in advance, and an
/// accidental collision among the documents one gateway sees is beyond reach.
pub(crate) fn fingerprint(value: &impl Hash) -> u128 {
    static KEYS: std::sync::OnceLock<[std::hash::RandomState; 2]> = std::sync::OnceLock::new();
    let [low, high] = KEYS.get_or_init(|| [std::hash::RandomState::new(), std::hash::RandomState::new()]);
    (u128::from(high.hash_one(value)) << 64) | u128::from(low.hash_one(value))
}

/// The operation cache's key, and the fingerprint that confirms a hit.
fn cache_key(query: &str, operation_name: Option<&str>, access: u64, draw: Draw) -> (u64, u128) {
    let fingerprint = fingerprint(&(query, operation_name, access, draw));
    (fingerprint as u64, fingerprint)
}

/// What a prepared operation holds, estimated: a fixed part, its parsed form
/// (about four times the text it prints as) and its plan.
fn operation_weight(operation: &OperationDefinition, plan: Option<&QueryPlan>) -> u32 {
    let parsed = operation.to_string().len().saturating_mul(4);
    let plan = plan.map_or(0, |plan| crate::supergraph::plan_weight(plan) as usize);
    u32::try_from(1024usize.saturating_add(parsed).saturating_add(plan)).unwrap_or(u32::MAX)
}

/// What the guards' decision depends on: whether guards apply at all,
/// whether the caller is authenticated, and the caller's scopes. Operations
/// are cached per access profile; there are few (one per role, in practice).
pub fn access_key(caller: Option<&Caller>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match caller {
        None => 0u8.hash(&mut hasher),
        Some(caller) => {
            1u8.hash(&mut hasher);
            caller.authenticated.hash(&mut hasher);
            let mut scopes: Vec<&String> = caller.scopes.iter().collect();
            scopes.sort_unstable();
            scopes.hash(&mut hasher);
        }
    }
    hasher.finish()
}

fn selected_operation<'d>(document: &'d Document, name: Option<&str>) -> Option<&'d AstOperation> {
    let mut operations = document.definitions.iter().filter_map(|d| match d {
        Definition::Operation(op) => Some(op),
        _ => None,
    });
    match name {
        Some(name) => operations.find(|op| operation_name(op) == Some(name)),
        None => operations.next(),
    }
}

fn operation_name(op: &AstOperation) -> Option<&str> {
    match op {
        AstOperation::SelectionSet(_) => None,
        AstOperation::Query(q) => q.name.as_deref(),
        AstOperation::Mutation(m) => m.name.as_deref(),
        AstOperation::Subscription(s) => s.name.as_deref(),
    }
}

fn variable_specs(op: &AstOperation) -> Vec<VariableSpec> {
    let definitions = match op {
        AstOperation::SelectionSet(_) => return Vec::new(),
        AstOperation::Query(q) => &q.variable_definitions,
        AstOperation::Mutation(m) => &m.variable_definitions,
        AstOperation::Subscription(s) => &s.variable_definitions,
    };
    definitions
        .iter()
        .map(|d| VariableSpec {
            name: d.name.clone(),
            ty: d.var_type.clone(),
            default: d.default_value.as_ref().map(variables::ast_to_json),
        })
        .collect()
}

/// Stages 1-5 with the guards off (authentication disabled).
pub fn prepare(
    supergraph: &Supergraph,
    config: &RuntimeConfig,
    query: &str,
    operation_name: Option<&str>,
) -> Result<PreparedOperation, RequestError> {
    prepare_authorized(supergraph, config, query, operation_name, None, AuthorizationMode::Filter, Draw::default())
}

/// Stages 1-5 for one caller; `caller: None` means guards are off. `draw`
/// is the request's progressive-override draw.
pub fn prepare_authorized(
    supergraph: &Supergraph,
    config: &RuntimeConfig,
    query: &str,
    operation_name: Option<&str>,
    caller: Option<&Caller>,
    mode: AuthorizationMode,
    draw: Draw,
) -> Result<PreparedOperation, RequestError> {
    // Stages 1-4 in one span, planning in another: the two costs worth
    // telling apart in a trace (this runs only when the cache misses).
    let (document, filtered, denied, normalized) = tracing::info_span!("parse_validate").in_scope(|| {
        let mut document = parse::parse(query, &config.limits)?;
        refuse_unsupported(&document)?;
        validate::validate(&supergraph.schema, &document)?;
        validate::complete_and_check(&supergraph.schema, &mut document)?;
        let (filtered, denied) = authorize(supergraph, &document, operation_name, caller, mode)?;
        let normalized = normalize::normalize(supergraph, &document, operation_name)?;
        Ok::<_, RequestError>((document, filtered, denied, normalized))
    })?;
    let operation = normalized.operation;
    let kind = operation.operation_kind.clone().unwrap_or(OperationKind::Query);
    let root_type = match kind {
        OperationKind::Query => Some(supergraph.schema.query_type.clone()),
        OperationKind::Mutation => supergraph.schema.mutation_type.clone(),
        OperationKind::Subscription => supergraph.schema.subscription_type.clone(),
    }
    .ok_or_else(|| RequestError::Internal(GraphQLError::internal()))?;
    let has_introspection = operation
        .selection_set
        .items
        .iter()
        .any(|item| matches!(item, SelectionItem::Field(f) if f.name == "__schema" || f.name == "__type"));
    if has_introspection && !config.introspection {
        return Err(RequestError::Validation(vec![GraphQLError::new(
            "Introspection is disabled",
            codes::INTROSPECTION_DISABLED,
        )]));
    }
    let specs = selected_operation(&document, normalized.operation_name.as_deref().or(operation_name))
        .map(variable_specs)
        .unwrap_or_default();
    let plan = tracing::info_span!("plan").in_scope(|| match &filtered {
        None => plan::plan(supergraph, &operation, draw, config.planning_timeout),
        Some(filtered) => {
            let allowed = normalize::normalize(supergraph, filtered, operation_name)?.operation;
            plan::plan(supergraph, &allowed, draw, config.planning_timeout)
        }
    })?;
    let weight = operation_weight(&operation, plan.as_deref());
    Ok(PreparedOperation {
        fingerprint: cache_key(query, operation_name, access_key(caller), draw).1,
        weight,
        denied,
        kind,
        root_type,
        operation,
        plan,
        variables: specs,
        has_introspection,
        last_answer_size: AtomicUsize::new(0),
    })
}

/// Incremental delivery (`@defer`, `@stream`) is not served: say so with
/// `OPERATION_NOT_SUPPORTED` before validation would call the directives
/// unknown.
fn refuse_unsupported(document: &Document) -> Result<(), RequestError> {
    use graphql_tools::static_graphql::query::{Selection, SelectionSet};
    fn incremental(set: &SelectionSet) -> Option<&'static str> {
        set.items.iter().find_map(|selection| {
            let (directives, inner) = match selection {
                Selection::Field(f) => (&f.directives, Some(&f.selection_set)),
                Selection::InlineFragment(f) => (&f.directives, Some(&f.selection_set)),
                Selection::FragmentSpread(f) => (&f.directives, None),
            };
            directives
                .iter()
                .find_map(|d| match d.name.as_str() {
                    "defer" => Some("@defer"),
                    "stream" => Some("@stream"),
                    _ => None,
                })
                .or_else(|| inner.and_then(incremental))
        })
    }
    let unsupported = |what: String| {
        RequestError::BadRequest(GraphQLError::new(
            format!("{what} not supported by this gateway"),
            codes::OPERATION_NOT_SUPPORTED,
        ))
    };
    for definition in &document.definitions {
        let set = match definition {
            Definition::Operation(AstOperation::SelectionSet(s)) => s,
            Definition::Operation(AstOperation::Query(q)) => &q.selection_set,
            Definition::Operation(AstOperation::Mutation(m)) => &m.selection_set,
            Definition::Operation(AstOperation::Subscription(s)) => &s.selection_set,
            Definition::Fragment(f) => &f.selection_set,
        };
        if let Some(directive) = incremental(set) {
            return Err(unsupported(format!("Incremental delivery ({directive}) is")));
        }
    }
    Ok(())
}

/// Stage 3: the guards. Returns the document to plan when something was
/// removed, and what was removed.
fn authorize(
    supergraph: &Supergraph,
    document: &Document,
    operation_name: Option<&str>,
    caller: Option<&Caller>,
    mode: AuthorizationMode,
) -> Result<(Option<Document>, Vec<DeniedField>), RequestError> {
    let Some(caller) = caller else { return Ok((None, Vec::new())) };
    if supergraph.guards.is_empty() {
        return Ok((None, Vec::new()));
    }
    let outcome = match guards::authorize(&supergraph.guards, document, operation_name, caller) {
        Ok(outcome) => outcome,
        // Normalisation reports unknown operations with the right message.
        Err(guards::GuardError::UnknownOperation) => return Ok((None, Vec::new())),
        Err(guards::GuardError::TooLarge) => {
            return Err(RequestError::Parse(GraphQLError::new(
                "The operation is too large once its fragments are expanded",
                codes::LIMIT_EXCEEDED,
            )))
        }
    };
    if mode == AuthorizationMode::Reject && !outcome.denied.is_empty() {
        return Err(RequestError::Forbidden(outcome.denied.iter().map(denied_error).collect()));
    }
    // A mutation whose root field would answer `null` because of a field the
    // caller may not select is refused before it runs: its effect (a session
    // started, an account changed) would otherwise happen unseen.
    let is_mutation = matches!(selected_operation(document, operation_name), Some(AstOperation::Mutation(_)));
    if is_mutation && outcome.denied.iter().any(|denied| denied.nulls_root_field) {
        return Err(RequestError::Forbidden(outcome.denied.iter().map(denied_error).collect()));
    }
    Ok((outcome.filtered, outcome.denied))
}

/// The client error for one removed field.
pub fn denied_error(denied: &DeniedField) -> GraphQLError {
    let message = match denied.denial {
        Denial::Unauthenticated => "Unauthorized field or type: authentication is required",
        Denial::MissingScopes => "Unauthorized field or type: the required scopes are missing",
    };
    GraphQLError::new(message, codes::UNAUTHORIZED_FIELD_OR_TYPE)
        .with_path(denied.path.iter().map(|key| crate::error::PathSegment::Key(key.clone())).collect())
}

/// The gateway's request handling, independent of HTTP.
pub struct Gateway {
    pub store: Arc<SupergraphStore>,
    pub config: Arc<RuntimeConfig>,
    /// The subgraph client of requests run outside the server threads.
    pub client: SubgraphClient,
    /// One client per server thread, each with its own connection pool.
    pub thread_clients: Vec<SubgraphClient>,
    pub security: Arc<crate::security::Security>,
    pub documents: Arc<crate::persisted::PersistedDocuments>,
    /// `None` when no rate limit is configured.
    pub rate_limits: Option<crate::rate_limit::RateLimits>,
    /// Live subscriptions, their limits and their upstream connections.
    pub subscriptions: Arc<crate::subscription::Subscriptions>,
}

thread_local! {
    /// The server thread this is, on the threads that serve connections.
    static SERVER_THREAD: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Marks the current thread as server thread `index`: requests it runs use
/// that thread's subgraph client.
pub(crate) fn enter_server_thread(index: usize) {
    SERVER_THREAD.with(|thread| thread.set(Some(index)));
}

/// What the HTTP layer needs to know about a request it is answering.
pub struct RequestMeta<'a> {
    /// GET may only run queries.
    pub is_get: bool,
    pub headers: &'a HeaderMap,
    pub traceparent: Option<http::HeaderValue>,
    /// Who is calling, once authenticated; `None` when authentication is off
    /// (then no guard applies and no identity is forwarded).
    pub caller: Option<Caller>,
    /// The signed identity header for subgraphs (authenticated callers only).
    pub identity_header: Option<http::HeaderValue>,
    /// The caller's verified claims (authenticated callers only).
    pub identity: Option<gatehouse_common::identity::Identity>,
    /// Whom the request counts against, when rate limits are configured.
    pub caller_key: Option<crate::rate_limit::CallerKey>,
    /// When the access token expires (Unix seconds), for authenticated callers.
    pub expires_at: Option<u64>,
}

/// An operation admitted to run, with what running it needs.
pub(crate) struct Admission {
    pub supergraph: Arc<Supergraph>,
    pub prepared: Arc<PreparedOperation>,
    pub variables: Map<String, Value>,
    /// The demand-control estimate, when a cost model is loaded.
    pub estimated: Option<f64>,
}

/// A successful answer: the serialised response and the headers to add
/// (cookies to set, subgraph headers passed back).
pub struct Answer {
    pub body: Vec<u8>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// When a subgraph refused with RATE_LIMITED and said how long to wait:
    /// the longest such wait, in seconds, for the `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl Gateway {
    /// The subgraph client for a request on the current thread: the server
    /// thread's own, so the request's subgraph connections are driven by the
    /// thread it runs on, or the shared one elsewhere.
    pub fn client(&self) -> &SubgraphClient {
        SERVER_THREAD.with(std::cell::Cell::get).and_then(|i| self.thread_clients.get(i)).unwrap_or(&self.client)
    }

    /// Looks up or builds the prepared operation. Building runs on a blocking
    /// thread: parsing, validating and planning are CPU work. Requests that
    /// miss on the same operation at the same time wait for one build
    /// instead of each starting its own: a client opening many connections
    /// with a new operation would otherwise plan it once per connection, a
    /// blocking thread each.
    async fn prepared(
        &self,
        supergraph: &Arc<Supergraph>,
        request: &GraphQLRequest,
        caller: Option<&Caller>,
        draw: Draw,
    ) -> Result<Arc<PreparedOperation>, RequestError> {
        let (key, fingerprint) = cache_key(&request.query, request.operation_name.as_deref(), access_key(caller), draw);
        let is_for_request = |prepared: &PreparedOperation| prepared.fingerprint == fingerprint;
        let built_here = std::sync::atomic::AtomicBool::new(false);
        let build = || async {
            metrics::counter!("gateway_operation_cache_misses_total").increment(1);
            let prepared = self.build_prepared(supergraph, request, caller, draw).await;
            built_here.store(prepared.is_ok(), Ordering::Relaxed);
            prepared
        };
        let slot = supergraph.operations.get_with(key, Default::default);
        match slot.get() {
            Some(hit) if is_for_request(hit) => {
                metrics::counter!("gateway_operation_cache_hits_total").increment(1);
                return Ok(hit.clone());
            }
            // Another operation with the same key holds the slot.
            Some(_) => return build().await,
            None => {}
        }
        match slot.get_or_try_init(build).await {
            Ok(prepared) if is_for_request(prepared) => {
                if built_here.load(Ordering::Relaxed) {
                    if prepared.weight <= supergraph.cache_entry_limit {
                        // The slot was weighed empty; weigh it again now it holds the operation.
                        supergraph.operations.insert(key, slot.clone());
                    } else {
                        // Too heavy to keep: built again when asked again.
                        supergraph.operations.invalidate(&key);
                    }
                }
                Ok(prepared.clone())
            }
            // Built for a colliding operation by another request meanwhile.
            Ok(_) => build().await,
            Err(error) => {
                // Failures are not kept: a later request builds afresh.
                if !slot.initialized() {
                    supergraph.operations.invalidate(&key);
                }
                Err(error)
            }
        }
    }

    /// Runs stages 1-5 on a blocking thread.
    async fn build_prepared(
        &self,
        supergraph: &Arc<Supergraph>,
        request: &GraphQLRequest,
        caller: Option<&Caller>,
        draw: Draw,
    ) -> Result<Arc<PreparedOperation>, RequestError> {
        let (sg, config) = (supergraph.clone(), self.config.clone());
        let (query, name) = (request.query.clone(), request.operation_name.clone());
        let (caller, mode) = (caller.cloned(), self.security.mode);
        // A child of the request's span, though it runs on a blocking thread.
        let span = tracing::info_span!("prepare");
        let prepared = tokio::task::spawn_blocking(move || {
            span.in_scope(|| prepare_authorized(&sg, &config, &query, name.as_deref(), caller.as_ref(), mode, draw))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "operation preparation task failed");
            RequestError::Internal(GraphQLError::internal())
        })??;
        Ok(Arc::new(prepared))
    }

    /// Everything before execution: the persisted document resolved, the
    /// operation prepared and allowed, the caller's operation limit, the
    /// variables coerced and the cost estimated.
    pub(crate) async fn admit_operation(
        &self,
        request: &mut GraphQLRequest,
        meta: &RequestMeta<'_>,
    ) -> Result<Admission, RequestError> {
        let Some(supergraph) = self.store.current() else {
            return Err(RequestError::NotReady(GraphQLError::new(
                "The gateway has no supergraph loaded yet",
                codes::SUPERGRAPH_NOT_READY,
            )));
        };
        let provenance = self.documents.resolve(request).await?;
        if let Some(refused) = self.documents.refuse_early(provenance, meta.caller.as_ref()) {
            return Err(refused);
        }
        let draw = supergraph.overrides.draw();
        let prepared = self.prepared(&supergraph, request, meta.caller.as_ref(), draw).await?;
        // No subgraph needed: the gateway answers `__schema`, `__type` and `__typename` alone.
        let only_introspection = prepared.plan.is_none();
        if let Some(refused) = self.documents.refuse_prepared(provenance, meta.caller.as_ref(), only_introspection) {
            return Err(refused);
        }
        self.documents.register(provenance, &request.query).await;
        if let (Some(limits), Some(key)) = (&self.rate_limits, &meta.caller_key) {
            limits.check_operation(key, prepared.operation.name.as_deref()).await?;
        }
        if meta.is_get && !matches!(prepared.kind, OperationKind::Query | OperationKind::Subscription) {
            return Err(RequestError::MethodNotAllowed(GraphQLError::new(
                "Only queries may be sent with GET; use POST",
                codes::BAD_REQUEST,
            )));
        }
        let variables = variables::coerce(&supergraph.schema, &prepared.variables, request.variables.take())?;
        // Demand control: the estimate decides before any subgraph call.
        let estimated = match &supergraph.cost {
            Some(model) => {
                let estimated = model.estimate(&prepared.operation, &prepared.root_type, &variables);
                self.config.demand_control.check(estimated)?;
                Some(estimated)
            }
            None => None,
        };
        Ok(Admission { supergraph, prepared, variables, estimated })
    }

    /// Runs one request to a serialised GraphQL response body.
    pub async fn execute(&self, mut request: GraphQLRequest, meta: RequestMeta<'_>) -> Result<Answer, RequestError> {
        let Admission { supergraph, prepared, variables, estimated } =
            self.admit_operation(&mut request, &meta).await?;
        if matches!(prepared.kind, OperationKind::Subscription) {
            return Err(RequestError::BadRequest(GraphQLError::new(
                "A subscription needs a streaming transport: graphql-ws over WebSocket, \
                 `Accept: text/event-stream` or `Accept: multipart/mixed;subscriptionSpec=1.0`",
                codes::SUBSCRIPTION_TRANSPORT_REQUIRED,
            )));
        }
        Ok(self.run_admitted(Admission { supergraph, prepared, variables, estimated }, &request, &meta).await)
    }

    /// Runs an admitted operation to its answer.
    pub(crate) async fn run_admitted(
        &self,
        admission: Admission,
        request: &GraphQLRequest,
        meta: &RequestMeta<'_>,
    ) -> Answer {
        let Admission { supergraph, prepared, variables, estimated } = admission;
        let execution = Execution::new(
            &supergraph,
            self.client(),
            &variables,
            meta.headers,
            meta.traceparent.clone(),
            self.config.dedupe_subgraph_requests,
        )
        .with_identity(meta.identity_header.clone(), meta.identity.as_ref())
        .with_cookie_subgraphs(&self.security.cookie_subgraphs);
        if let Some(plan) = &prepared.plan {
            if gatehouse_common::telemetry::otel_enabled() {
                // Only traced: without OpenTelemetry a span here would cost
                // every request and tell the logs nothing.
                tracing::Instrument::instrument(execution.run(plan), tracing::info_span!("execute")).await;
            } else {
                execution.run(plan).await;
            }
        }
        // Before an operation's first answer, what the subgraphs sent is the
        // best guess of its size.
        let size_hint = match prepared.last_answer_size.load(Ordering::Relaxed) {
            0 => execution.received_bytes(),
            last => last + last / 16,
        };
        let (mut data, mut errors, headers) = execution.finish();
        let retry_after = errors.iter().filter_map(GraphQLError::retry_after).max();
        errors.extend(prepared.denied.iter().map(denied_error));
        if prepared.has_introspection {
            crate::introspection::resolve_root(
                &supergraph.schema,
                &prepared.operation.selection_set,
                &variables,
                &mut data,
            );
        }
        let costs = match (&supergraph.cost, estimated) {
            (Some(model), Some(estimated)) => {
                let actual = model.actual(&prepared.operation, &prepared.root_type, &variables, &data);
                metrics::histogram!("gateway_operation_cost_actual").record(actual);
                Some(crate::cost::Costs { estimated, actual })
            }
            _ => None,
        };
        // Only asked for (`extensions.cost = true`) when costs were computed.
        let extensions = costs
            .filter(|_| request.extensions.as_ref().and_then(|e| e.get("cost")).and_then(Value::as_bool) == Some(true))
            .map(|costs| serde_json::json!({ "cost": self.config.demand_control.extension(costs) }));
        let mut body = project::write_response(
            &supergraph.schema,
            &prepared.operation,
            &prepared.root_type,
            &variables,
            &data,
            errors,
            size_hint,
        );
        if let Some(extensions) = &extensions {
            project::append_extensions(&mut body, extensions);
        }
        prepared.last_answer_size.store(body.len(), Ordering::Relaxed);
        Answer { body, headers, retry_after }
    }

    /// The plan the gateway would run for a document (for tests and tooling).
    pub fn plan_for(&self, query: &str, operation_name: Option<&str>) -> Result<Option<Arc<QueryPlan>>, RequestError> {
        let supergraph = self
            .store
            .current()
            .ok_or_else(|| RequestError::NotReady(GraphQLError::new("no supergraph", codes::SUPERGRAPH_NOT_READY)))?;
        Ok(prepare(&supergraph, &self.config, query, operation_name)?.plan)
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_tell_values_apart() {
        assert_eq!(fingerprint(&"{ a }"), fingerprint(&"{ a }"));
        assert_ne!(fingerprint(&"{ a }"), fingerprint(&"{ b }"));
        let both = fingerprint(&"{ a }");
        assert_ne!(both as u64, (both >> 64) as u64, "two independent halves");
    }
}
