//! Stage 4: plan the normalised operation with hive-router-query-planner,
//! then, when configured, restore the union members it narrowed away
//! ([`partial_unions`]).
//! Planner panics are contained and planning is bounded in time. Plans are
//! cached per supergraph, keyed by the normalised operation text and the
//! request's progressive-override draw ([`super::overrides`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::utils::cancellation::CancellationToken;

use super::overrides::Draw;
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
    draw: Draw,
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

    let text = for_planner.to_string();
    let key = super::fingerprint(&(&text, draw));
    if let Some(cached) = supergraph.plans.get(&key) {
        return Ok(Some(cached.plan));
    }

    let token = CancellationToken::with_timeout(timeout);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut plan = supergraph.planner.plan_from_normalized_operation(
            &for_planner,
            supergraph.overrides.context(draw),
            &token,
        )?;
        if supergraph.restore_partial_unions {
            let restored = partial_unions::restore(&mut plan, &for_planner, &supergraph.planner.supergraph);
            if restored > 0 {
                tracing::debug!(fetches = restored, "restored union members the planner narrowed away");
            }
        }
        Ok::<_, hive_router_query_planner::planner::PlannerError>(plan)
    }));
    let plan = match result {
        Ok(Ok(plan)) => Arc::new(plan),
        Ok(Err(e)) => {
            // The operation's shape helps whoever reads the log; its literal
            // values (a password in an argument, say) stay out of it.
            tracing::warn!(error = %e, operation = %redact_literals(&text), "query planning failed");
            return Err(RequestError::Internal(GraphQLError::new(
                "The operation could not be planned",
                codes::QUERY_PLANNING_FAILED,
            )));
        }
        Err(_) => {
            tracing::error!(operation = %redact_literals(&text), "the query planner panicked");
            return Err(RequestError::Internal(GraphQLError::internal()));
        }
    };
    let weight = crate::supergraph::plan_weight(&plan);
    if weight <= supergraph.cache_entry_limit {
        supergraph.plans.insert(key, crate::supergraph::CachedPlan { plan: plan.clone(), weight });
    }
    Ok(Some(plan))
}

/// `operation` with every string and number literal replaced, for logs.
pub fn redact_literals(operation: &str) -> String {
    let mut out = String::with_capacity(operation.len().min(4096));
    let mut chars = operation.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        if c == '"' {
            // A block string ("""...""") or a plain one, escapes included.
            let block = chars.peek() == Some(&'"') && {
                let mut ahead = chars.clone();
                ahead.next();
                ahead.peek() == Some(&'"')
            };
            if block {
                chars.next();
                chars.next();
                let mut quotes = 0;
                for c in chars.by_ref() {
                    quotes = if c == '"' { quotes + 1 } else { 0 };
                    if quotes == 3 {
                        break;
                    }
                }
            } else {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            out.push_str("\"…\"");
            previous = '"';
            continue;
        }
        let starts_number = (c.is_ascii_digit() || (c == '-' && chars.peek().is_some_and(char::is_ascii_digit)))
            && !(previous.is_alphanumeric() || previous == '_');
        if starts_number {
            while chars.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')) {
                chars.next();
            }
            out.push('0');
            previous = '0';
            continue;
        }
        out.push(c);
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_operations_keep_their_shape_and_lose_their_values() {
        let operation = r#"mutation Login { login(login: "admin", password: "hunter2 \"quoted\"", n: -12.5e3) { token } a1: f(x: """block "" secret""", ids: [1, 22]) }"#;
        let redacted = redact_literals(operation);
        assert_eq!(
            redacted,
            r#"mutation Login { login(login: "…", password: "…", n: 0) { token } a1: f(x: "…", ids: [0, 0]) }"#
        );
        for secret in ["admin", "hunter2", "quoted", "secret", "12", "22"] {
            assert!(!redacted.contains(secret), "{secret} leaked into {redacted}");
        }
    }
}
