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

/// The most validation errors one answer lists; past it a last error says
/// the list was cut (as graphql-js does), so a document of a thousand
/// mistakes gets a small answer, not one entry per mistake.
pub const MAX_VALIDATION_ERRORS: usize = 100;

pub fn validate(schema: &SchemaIndex, document: &Document) -> Result<(), RequestError> {
    let errors = run_rules(&schema.document, document, plan());
    if errors.is_empty() {
        return Ok(());
    }
    Err(RequestError::Validation(capped(errors.into_iter().map(|e| {
        let mut error = GraphQLError::new(e.message, codes::GRAPHQL_VALIDATION_FAILED);
        for pos in e.locations {
            error = error.with_location(pos.line, pos.column);
        }
        error
    }))))
}

/// At most [`MAX_VALIDATION_ERRORS`] errors, then one that says how many more there were.
fn capped(errors: impl ExactSizeIterator<Item = GraphQLError>) -> Vec<GraphQLError> {
    let total = errors.len();
    let mut kept: Vec<GraphQLError> = errors.take(MAX_VALIDATION_ERRORS).collect();
    if total > MAX_VALIDATION_ERRORS {
        kept.push(GraphQLError::new(
            format!("Too many validation errors: {} more not listed", total - MAX_VALIDATION_ERRORS),
            codes::GRAPHQL_VALIDATION_FAILED,
        ));
    }
    kept
}

/// Checks the spec rules graphql-tools leaves out for `__` fields (only
/// `__typename` everywhere, and `__schema`/`__type` on the query root, exist),
/// and gives every inline fragment without a type condition its enclosing
/// type, which the planner's normaliser expects.
pub fn complete_and_check(schema: &SchemaIndex, document: &mut Document) -> Result<(), RequestError> {
    use graphql_tools::static_graphql::query::{Definition, OperationDefinition};

    let mut errors = Vec::new();
    for definition in &mut document.definitions {
        let (parent, selection_set) = match definition {
            Definition::Operation(op) => match op {
                OperationDefinition::SelectionSet(s) => (schema.query_type.clone(), s),
                OperationDefinition::Query(q) => (schema.query_type.clone(), &mut q.selection_set),
                OperationDefinition::Mutation(m) => match &schema.mutation_type {
                    Some(root) => (root.clone(), &mut m.selection_set),
                    None => {
                        errors.push(no_root("mutation"));
                        continue;
                    }
                },
                OperationDefinition::Subscription(s) => match &schema.subscription_type {
                    Some(root) => (root.clone(), &mut s.selection_set),
                    None => {
                        errors.push(no_root("subscription"));
                        continue;
                    }
                },
            },
            Definition::Fragment(f) => {
                let graphql_tools::static_graphql::query::TypeCondition::On(name) = &f.type_condition;
                (name.clone(), &mut f.selection_set)
            }
        };
        walk(schema, &parent, selection_set, &mut errors, 0);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RequestError::Validation(capped(errors.into_iter())))
    }
}

/// An operation of a kind the schema has no root type for.
fn no_root(kind: &str) -> GraphQLError {
    GraphQLError::new(format!("The schema has no {kind} type"), codes::GRAPHQL_VALIDATION_FAILED)
}

fn walk(
    schema: &SchemaIndex,
    parent: &str,
    selection_set: &mut graphql_tools::static_graphql::query::SelectionSet,
    errors: &mut Vec<GraphQLError>,
    depth: usize,
) {
    use graphql_tools::static_graphql::query::{Selection, TypeCondition};

    // Depth is already limited by the parse stage; this only guards recursion.
    if depth > 256 {
        return;
    }
    for item in &mut selection_set.items {
        match item {
            Selection::Field(field) => {
                let name = field.name.as_str();
                if name == "__typename" {
                    continue;
                }
                let allowed_meta = matches!(name, "__schema" | "__type") && parent == schema.query_type;
                if name.starts_with("__") && !allowed_meta {
                    errors.push(
                        GraphQLError::new(
                            format!("Cannot query field \"{name}\" on type \"{parent}\"."),
                            codes::GRAPHQL_VALIDATION_FAILED,
                        )
                        .with_location(field.position.line, field.position.column),
                    );
                    continue;
                }
                if let Some(ty) = schema.field_type(parent, name) {
                    let child = crate::schema::named_type(ty).to_string();
                    walk(schema, &child, &mut field.selection_set, errors, depth + 1);
                }
            }
            Selection::InlineFragment(fragment) => {
                let condition = match &fragment.type_condition {
                    Some(TypeCondition::On(name)) => name.clone(),
                    None => {
                        fragment.type_condition = Some(TypeCondition::On(parent.to_string()));
                        parent.to_string()
                    }
                };
                walk(schema, &condition, &mut fragment.selection_set, errors, depth + 1);
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}
