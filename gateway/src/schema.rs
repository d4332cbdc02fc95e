//! The public (consumer) schema indexed for request-time lookups: field types
//! for projection and null propagation, possible types for fragments, input
//! types for variable coercion, and the document itself for introspection.

// hashbrown's seeded foldhash: these tables are built from the supergraph and
// read on every field of every response.
use hashbrown::{HashMap, HashSet};
use std::sync::Arc;

use graphql_tools::static_graphql::schema::{Definition, DirectiveDefinition, Document, Type, TypeDefinition};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

/// An input value (argument or input field) with its declared type.
#[derive(Debug, Clone)]
pub struct InputField {
    pub ty: Type,
    pub has_default: bool,
}

#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub kind: TypeKind,
    /// Output fields of objects and interfaces, by name.
    pub fields: HashMap<String, Type>,
    /// Concrete object types an abstract type may resolve to (itself for objects).
    pub possible_types: HashSet<String>,
    pub enum_values: HashSet<String>,
    /// Values the supergraph's enum has but the public schema hides
    /// (`@inaccessible`): a subgraph may return them, clients never see them.
    pub hidden_enum_values: HashSet<String>,
    pub input_fields: HashMap<String, InputField>,
}

/// The public schema, indexed once per supergraph load.
#[derive(Debug)]
pub struct SchemaIndex {
    pub document: Arc<Document>,
    pub query_type: String,
    pub mutation_type: Option<String>,
    pub subscription_type: Option<String>,
    pub types: HashMap<String, TypeInfo>,
    /// Every directive of the public schema, each once, as introspection
    /// lists them: the specified ones as the specification defines them, then
    /// the schema's own in document order. The document itself may declare a
    /// directive twice: composed supergraphs declare `@include` and `@skip`,
    /// and the planner adds every specified directive to the public schema
    /// again (`@oneOf` with the wrong locations).
    pub directives: Vec<DirectiveDefinition>,
}

/// The innermost named type of a wrapped type.
pub fn named_type(ty: &Type) -> &str {
    match ty {
        Type::NamedType(name) => name,
        Type::ListType(inner) | Type::NonNullType(inner) => named_type(inner),
    }
}

impl SchemaIndex {
    pub fn new(document: Arc<Document>) -> Self {
        let mut types: HashMap<String, TypeInfo> = HashMap::new();
        let mut query_type = None;
        let mut mutation_type = None;
        let mut subscription_type = None;
        let mut implementations: Vec<(String, String)> = Vec::new();

        for scalar in SPECIFIED_SCALARS {
            types.insert(scalar.to_string(), TypeInfo::empty(TypeKind::Scalar));
        }

        for definition in &document.definitions {
            match definition {
                Definition::SchemaDefinition(schema) => {
                    query_type = schema.query.clone();
                    mutation_type = schema.mutation.clone();
                    subscription_type = schema.subscription.clone();
                }
                Definition::TypeDefinition(def) => {
                    let (name, info) = match def {
                        TypeDefinition::Scalar(s) => (s.name.clone(), TypeInfo::empty(TypeKind::Scalar)),
                        TypeDefinition::Object(o) => {
                            let mut info = TypeInfo::empty(TypeKind::Object);
                            info.fields = o.fields.iter().map(|f| (f.name.clone(), f.field_type.clone())).collect();
                            info.possible_types.insert(o.name.clone());
                            for interface in &o.implements_interfaces {
                                implementations.push((interface.clone(), o.name.clone()));
                            }
                            (o.name.clone(), info)
                        }
                        TypeDefinition::Interface(i) => {
                            let mut info = TypeInfo::empty(TypeKind::Interface);
                            info.fields = i.fields.iter().map(|f| (f.name.clone(), f.field_type.clone())).collect();
                            (i.name.clone(), info)
                        }
                        TypeDefinition::Union(u) => {
                            let mut info = TypeInfo::empty(TypeKind::Union);
                            info.possible_types = u.types.iter().cloned().collect();
                            (u.name.clone(), info)
                        }
                        TypeDefinition::Enum(e) => {
                            let mut info = TypeInfo::empty(TypeKind::Enum);
                            info.enum_values = e.values.iter().map(|v| v.name.clone()).collect();
                            (e.name.clone(), info)
                        }
                        TypeDefinition::InputObject(io) => {
                            let mut info = TypeInfo::empty(TypeKind::InputObject);
                            info.input_fields = io
                                .fields
                                .iter()
                                .map(|f| {
                                    (
                                        f.name.clone(),
                                        InputField { ty: f.value_type.clone(), has_default: f.default_value.is_some() },
                                    )
                                })
                                .collect();
                            (io.name.clone(), info)
                        }
                    };
                    types.insert(name, info);
                }
                _ => {}
            }
        }

        for (interface, object) in implementations {
            if let Some(info) = types.get_mut(&interface) {
                info.possible_types.insert(object);
            }
        }

        let query_type = query_type.unwrap_or_else(|| "Query".to_string());
        let mutation_type = mutation_type.or_else(|| types.contains_key("Mutation").then(|| "Mutation".into()));
        let subscription_type =
            subscription_type.or_else(|| types.contains_key("Subscription").then(|| "Subscription".into()));

        let mut directives = specified_directives();
        for definition in &document.definitions {
            let Definition::DirectiveDefinition(directive) = definition else { continue };
            if !directives.iter().any(|known| known.name == directive.name) {
                directives.push(directive.clone());
            }
        }

        Self { document, query_type, mutation_type, subscription_type, types, directives }
    }

    /// Records, for each public enum, the values `supergraph` defines that the
    /// public schema left out.
    pub fn note_hidden_enum_values(&mut self, supergraph: &Document) {
        for definition in &supergraph.definitions {
            let Definition::TypeDefinition(TypeDefinition::Enum(e)) = definition else { continue };
            let Some(info) = self.types.get_mut(&e.name).filter(|i| i.kind == TypeKind::Enum) else { continue };
            info.hidden_enum_values =
                e.values.iter().map(|v| &v.name).filter(|v| !info.enum_values.contains(*v)).cloned().collect();
        }
    }

    pub fn type_info(&self, name: &str) -> Option<&TypeInfo> {
        self.types.get(name)
    }

    pub fn field_type(&self, parent: &str, field: &str) -> Option<&Type> {
        self.types.get(parent).and_then(|t| t.fields.get(field))
    }

    pub fn is_abstract(&self, name: &str) -> bool {
        matches!(self.types.get(name).map(|t| t.kind), Some(TypeKind::Interface | TypeKind::Union))
    }

    /// Whether an object of type `object_type` matches a fragment on `condition`.
    pub fn type_condition_matches(&self, condition: &str, object_type: &str) -> bool {
        condition == object_type || self.types.get(condition).is_some_and(|t| t.possible_types.contains(object_type))
    }
}

impl TypeInfo {
    fn empty(kind: TypeKind) -> Self {
        Self {
            kind,
            fields: HashMap::new(),
            possible_types: HashSet::new(),
            enum_values: HashSet::new(),
            hidden_enum_values: HashSet::new(),
            input_fields: HashMap::new(),
        }
    }
}

/// Directives every GraphQL schema has; printers leave them out.
const SPECIFIED_DIRECTIVES: [&str; 5] = ["skip", "include", "deprecated", "specifiedBy", "oneOf"];

/// [`SPECIFIED_DIRECTIVES`] as the GraphQL specification defines them (its
/// September 2025 edition, which added `@oneOf`), described as graphql-js
/// describes them, in graphql-js's order.
const SPECIFIED_DIRECTIVES_SDL: &str = r#"
"Directs the executor to include this field or fragment only when the `if` argument is true."
directive @include("Included when true." if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT

"Directs the executor to skip this field or fragment when the `if` argument is true."
directive @skip("Skipped when true." if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT

"Marks an element of a GraphQL schema as no longer supported."
directive @deprecated(
  "Explains why this element was deprecated, usually also including a suggestion for how to access supported similar data. Formatted using the Markdown syntax, as specified by [CommonMark](https://commonmark.org/)."
  reason: String = "No longer supported"
) on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE

"Exposes a URL that specifies the behavior of this scalar."
directive @specifiedBy("The URL that specifies the behavior of this scalar." url: String!) on SCALAR

"Indicates exactly one field must be supplied and this field must not be `null`."
directive @oneOf on INPUT_OBJECT
"#;

/// The parsed [`SPECIFIED_DIRECTIVES_SDL`].
fn specified_directives() -> Vec<DirectiveDefinition> {
    let document = graphql_tools::parser::schema::parse_schema::<String>(SPECIFIED_DIRECTIVES_SDL)
        .expect("the specified directives parse");
    document
        .definitions
        .into_iter()
        .filter_map(|definition| match definition {
            Definition::DirectiveDefinition(directive) => Some(directive),
            _ => None,
        })
        .collect()
}

const SPECIFIED_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// Whether `name` is one of the scalars the GraphQL specification defines.
pub fn is_specified_scalar(name: &str) -> bool {
    SPECIFIED_SCALARS.contains(&name)
}

/// The public schema as a schema file shows it: without the introspection
/// types and root fields (`__schema`, `__type`) the consumer document carries
/// for the gateway's own use, and without the built-in scalars and directives.
pub fn printable(document: &Document) -> Document {
    let definitions = document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            Definition::TypeDefinition(ty) => {
                let name = type_name(ty);
                if name.starts_with("__") || is_specified_scalar(name) {
                    return None;
                }
                let mut ty = ty.clone();
                if let TypeDefinition::Object(object) = &mut ty {
                    object.fields.retain(|field| !field.name.starts_with("__"));
                }
                Some(Definition::TypeDefinition(ty))
            }
            Definition::DirectiveDefinition(directive) if SPECIFIED_DIRECTIVES.contains(&directive.name.as_str()) => {
                None
            }
            other => Some(other.clone()),
        })
        .collect();
    Document { definitions }
}

/// The name a type definition declares.
pub fn type_name(definition: &TypeDefinition) -> &str {
    match definition {
        TypeDefinition::Scalar(t) => &t.name,
        TypeDefinition::Object(t) => &t.name,
        TypeDefinition::Interface(t) => &t.name,
        TypeDefinition::Union(t) => &t.name,
        TypeDefinition::Enum(t) => &t.name,
        TypeDefinition::InputObject(t) => &t.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specified_directives_are_the_ones_printers_leave_out() {
        let mut parsed: Vec<String> = specified_directives().into_iter().map(|d| d.name).collect();
        let mut named: Vec<String> = SPECIFIED_DIRECTIVES.iter().map(|n| n.to_string()).collect();
        parsed.sort();
        named.sort();
        assert_eq!(parsed, named);
    }

    #[test]
    fn a_directive_declared_twice_is_indexed_once() {
        let sdl = "type Query { a: Int }
            directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
            directive @tag(name: String!) repeatable on FIELD_DEFINITION
            directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
            directive @tag(name: String!) repeatable on FIELD_DEFINITION";
        let document = graphql_tools::parser::schema::parse_schema::<String>(sdl).unwrap();
        let index = SchemaIndex::new(Arc::new(document));
        let names: Vec<&str> = index.directives.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["include", "skip", "deprecated", "specifiedBy", "oneOf", "tag"]);
        // The specification's definition wins over the declared one.
        assert!(index.directives[0].description.as_deref().is_some_and(|d| d.starts_with("Directs the executor")));
    }
}
