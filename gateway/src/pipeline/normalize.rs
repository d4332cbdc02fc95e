//! Stage 3: select the operation and normalise it with the planner's own
//! normaliser (fragments inlined, abstract selections expanded, fields merged).
//! The result drives both planning and response projection.

use std::panic::{catch_unwind, AssertUnwindSafe};

use graphql_tools::static_graphql::query::{Definition, Document};
use hive_router_query_planner::ast::document::NormalizedDocument;
use hive_router_query_planner::ast::normalization::error::NormalizationError;
use hive_router_query_planner::ast::normalization::normalize_operation;

use crate::error::{codes, GraphQLError, RequestError};
use crate::supergraph::Supergraph;

pub fn normalize(
    supergraph: &Supergraph,
    document: &Document,
    operation_name: Option<&str>,
) -> Result<NormalizedDocument, RequestError> {
    let operations = document.definitions.iter().filter(|d| matches!(d, Definition::Operation(_))).count();
    if operation_name.is_none() && operations > 1 {
        return Err(RequestError::BadRequest(GraphQLError::new(
            "Must provide operation name if query contains multiple operations.",
            codes::OPERATION_NOT_FOUND,
        )));
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        normalize_operation(&supergraph.planner.supergraph, document, operation_name)
    }));
    match result {
        Ok(Ok(normalized)) => Ok(normalized),
        Ok(Err(NormalizationError::SpecifiedOperationNotFound { operation_name })) => Err(RequestError::BadRequest(
            GraphQLError::new(format!("Unknown operation named \"{operation_name}\"."), codes::OPERATION_NOT_FOUND),
        )),
        Ok(Err(NormalizationError::MultipleMatchingOperationsFound)) => {
            Err(RequestError::BadRequest(GraphQLError::new(
                "Must provide operation name if query contains multiple operations.",
                codes::OPERATION_NOT_FOUND,
            )))
        }
        Ok(Err(NormalizationError::OperationNotFound)) => Err(RequestError::BadRequest(GraphQLError::new(
            "The document contains no operation.",
            codes::OPERATION_NOT_FOUND,
        ))),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "normalisation failed on a validated operation");
            Err(RequestError::Internal(GraphQLError::internal()))
        }
        Err(_) => {
            tracing::error!("normalisation panicked");
            Err(RequestError::Internal(GraphQLError::internal()))
        }
    }
}
