//! Stage 2: every GraphQL specification validation rule, run against the
//! public schema (so `@inaccessible` elements do not exist for clients).

use std::sync::OnceLock;

use graphql_tools::static_graphql::query::Document;
use graphql_tools::validation::rules::default_rules_validation_plan;
use graphql_tools::validation::validate::{validate as run_rules, ValidationPlan};

use crate::error::{codes, GraphQLError, RequestError};
use crate::schema::SchemaIndex;

fn plan() -> &'static ValidationPlan {
    static PLAN: OnceLock<ValidationPlan> = OnceLock::new();
    PLAN.get_or_init(default_rules_validation_plan)
}

pub fn validate(schema: &SchemaIndex, document: &Document) -> Result<(), RequestError> {
    let errors = run_rules(&schema.document, document, plan());
    if errors.is_empty() {
        return Ok(());
    }
    Err(RequestError::Validation(
        errors
            .into_iter()
            .map(|e| {
                let mut error = GraphQLError::new(e.message, codes::GRAPHQL_VALIDATION_FAILED);
                for pos in e.locations {
                    error = error.with_location(pos.line, pos.column);
                }
                error
            })
            .collect(),
    ))
}
