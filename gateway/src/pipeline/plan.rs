//! Stage 4: plan the normalised operation with hive-router-query-planner,
//! then restore the union members it narrowed away ([`partial_unions`]).
//! Planner panics are contained and planning is bounded in time. Plans are
//! cached per supergraph, keyed by the normalised operation text.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::graph::PlannerOverrideContext;
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::utils::cancellation::CancellationToken;

use super::partial_unions;
use crate::error::{codes, GraphQLError, RequestError};
use crate::supergraph::Supergraph;

/// Root fields the gateway answers itself; they never reach the planner.
pub fn is_gateway_root_field(name: &str) -> bool {
    matches!(name, "__schema" | "__type" | "__typename")
}

/// Plans `operation`, or returns `None` when nothing needs a subgraph
/// (for example a pure introspection query).
pub fn plan(
    supergraph: &Supergraph,
    operation: &OperationDefinition,
    timeout: Duration,
) -> Result<Option<Arc<QueryPlan>>, RequestError> {
    let mut for_planner = operation.clone();
    for_planner.selection_set.items.retain(|item| match item {
        SelectionItem::Field(field) => !is_gateway_root_field(&field.name),
        _ => true,
    });
    if for_planner.selection_set.items.is_empty() {
        return Ok(None);
    }

    let key = for_planner.to_string();
    if let Some(plan) = supergraph.plans.get(&key) {
        return Ok(Some(plan));
    }

    let token = CancellationToken::with_timeout(timeout);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut plan = supergraph.planner.plan_from_normalized_operation(
            &for_planner,
            PlannerOverrideContext::default(),
            &token,
        )?;
        let restored = partial_unions::restore(&mut plan, &for_planner, &supergraph.planner.supergraph);
        if restored > 0 {
            tracing::debug!(fetches = restored, "restored union members the planner narrowed away");
        }
        Ok::<_, hive_router_query_planner::planner::PlannerError>(plan)
    }));
    let plan = match result {
        Ok(Ok(plan)) => Arc::new(plan),
        Ok(Err(e)) => {
            tracing::error!(error = %e, operation = %key, "query planning failed");
            return Err(RequestError::Internal(GraphQLError::new(
                "The operation could not be planned",
                codes::QUERY_PLANNING_FAILED,
            )));
        }
        Err(_) => {
            tracing::error!(operation = %key, "the query planner panicked");
            return Err(RequestError::Internal(GraphQLError::internal()));
        }
    };
    supergraph.plans.insert(key, plan.clone());
    Ok(Some(plan))
}
