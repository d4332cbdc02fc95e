//! The request pipeline, one file per stage, run in this order:
//!
//! 1. [`parse`]: text to AST under size, token and depth limits.
//! 2. [`validate`]: all specification rules against the public schema.
//! 3. (issue 6 inserts authorization here: it edits the validated document.)
//! 4. [`normalize`]: operation selected and normalised by the planner's normaliser.
//! 5. [`plan`]: query plan, cached per supergraph by normalised operation.
//! 6. [`variables`]: coercion of the client's variables (per request, never cached).
//! 7. execution by [`crate::executor`].
//! 8. [`project`]: the response written in the client's shape.
//!
//! Stages 1-5 depend only on the document and operation name, so their result
//! ([`PreparedOperation`]) is cached; a warm request starts at stage 6.

pub mod normalize;
pub mod parse;
pub mod plan;
pub mod project;
pub mod validate;
pub mod variables;

use std::hash::{Hash, Hasher};
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
use crate::supergraph::{Supergraph, SupergraphStore};
use variables::VariableSpec;

/// One GraphQL request as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct GraphQLRequest {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    pub extensions: Option<Map<String, Value>>,
}

/// Everything about an operation that does not depend on its variables.
pub struct PreparedOperation {
    query: String,
    operation_name: Option<String>,
    pub kind: OperationKind,
    pub root_type: String,
    /// The normalised operation: projection walks it.
    pub operation: OperationDefinition,
    /// `None` when no subgraph is needed (introspection, `__typename`).
    pub plan: Option<Arc<QueryPlan>>,
    pub variables: Vec<VariableSpec>,
    pub has_introspection: bool,
}

fn cache_key(query: &str, operation_name: Option<&str>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    query.hash(&mut hasher);
    operation_name.hash(&mut hasher);
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

/// Stages 1-5 for one document.
pub fn prepare(
    supergraph: &Supergraph,
    config: &RuntimeConfig,
    query: &str,
    operation_name: Option<&str>,
) -> Result<PreparedOperation, RequestError> {
    let document = parse::parse(query, &config.limits)?;
    validate::validate(&supergraph.schema, &document)?;
    let normalized = normalize::normalize(supergraph, &document, operation_name)?;
    let operation = normalized.operation;
    let kind = operation.operation_kind.clone().unwrap_or(OperationKind::Query);
    let root_type = match kind {
        OperationKind::Query => Some(supergraph.schema.query_type.clone()),
        OperationKind::Mutation => supergraph.schema.mutation_type.clone(),
        OperationKind::Subscription => supergraph.schema.subscription_type.clone(),
    }
    .ok_or_else(|| RequestError::Internal(GraphQLError::internal()))?;
    if matches!(kind, OperationKind::Subscription) {
        return Err(RequestError::BadRequest(GraphQLError::new(
            "Subscriptions are not supported by this gateway",
            codes::OPERATION_NOT_SUPPORTED,
        )));
    }
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
    let plan = plan::plan(supergraph, &operation, config.planning_timeout)?;
    Ok(PreparedOperation {
        query: query.to_string(),
        operation_name: operation_name.map(str::to_string),
        kind,
        root_type,
        operation,
        plan,
        variables: specs,
        has_introspection,
    })
}

/// The gateway's request handling, independent of HTTP.
pub struct Gateway {
    pub store: Arc<SupergraphStore>,
    pub config: Arc<RuntimeConfig>,
    pub client: SubgraphClient,
}

/// What the HTTP layer needs to know about a request it is answering.
pub struct RequestMeta<'a> {
    /// GET may only run queries.
    pub is_get: bool,
    pub headers: &'a HeaderMap,
    pub traceparent: Option<http::HeaderValue>,
}

impl Gateway {
    /// Looks up or builds the prepared operation. Building runs on a blocking
    /// thread: parsing, validating and planning are CPU work.
    async fn prepared(
        &self,
        supergraph: &Arc<Supergraph>,
        request: &GraphQLRequest,
    ) -> Result<Arc<PreparedOperation>, RequestError> {
        let key = cache_key(&request.query, request.operation_name.as_deref());
        if let Some(hit) = supergraph.operations.get(&key) {
            if hit.query == request.query && hit.operation_name == request.operation_name {
                metrics::counter!("gateway_operation_cache_hits_total").increment(1);
                return Ok(hit);
            }
        }
        metrics::counter!("gateway_operation_cache_misses_total").increment(1);
        let (sg, config) = (supergraph.clone(), self.config.clone());
        let (query, name) = (request.query.clone(), request.operation_name.clone());
        let prepared = tokio::task::spawn_blocking(move || prepare(&sg, &config, &query, name.as_deref()))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "operation preparation task failed");
                RequestError::Internal(GraphQLError::internal())
            })??;
        let prepared = Arc::new(prepared);
        supergraph.operations.insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Runs one request to a serialised GraphQL response body.
    pub async fn execute(&self, request: GraphQLRequest, meta: RequestMeta<'_>) -> Result<Vec<u8>, RequestError> {
        let Some(supergraph) = self.store.current() else {
            return Err(RequestError::NotReady(GraphQLError::new(
                "The gateway has no supergraph loaded yet",
                codes::SUPERGRAPH_NOT_READY,
            )));
        };
        let prepared = self.prepared(&supergraph, &request).await?;
        if meta.is_get && !matches!(prepared.kind, OperationKind::Query) {
            return Err(RequestError::MethodNotAllowed(GraphQLError::new(
                "Only queries may be sent with GET; use POST",
                codes::BAD_REQUEST,
            )));
        }
        let variables = variables::coerce(&supergraph.schema, &prepared.variables, request.variables)?;

        let execution = Execution::new(
            &supergraph,
            &self.client,
            &variables,
            meta.headers,
            meta.traceparent,
            self.config.dedupe_subgraph_requests,
        );
        if let Some(plan) = &prepared.plan {
            execution.run(plan).await;
        }
        let (mut data, errors) = execution.finish();
        if prepared.has_introspection {
            crate::introspection::resolve_root(
                &supergraph.schema,
                &prepared.operation.selection_set,
                &variables,
                &mut data,
            );
        }
        Ok(project::write_response(
            &supergraph.schema,
            &prepared.operation,
            &prepared.root_type,
            &variables,
            &data,
            errors,
        ))
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
