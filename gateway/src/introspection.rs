//! `__schema` and `__type` answered by the gateway from the public schema.
//!
//! The resolver builds JSON shaped by the client's selection (response keys,
//! arguments); projection then writes it like any other data, so `__typename`,
//! order and `@skip`/`@include` behave the same as everywhere else.

use std::collections::HashMap;

use graphql_tools::static_graphql::schema::{
    Definition, DirectiveDefinition, Document, EnumValue, Field, InputValue, Type, TypeDefinition,
};
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use hive_router_query_planner::ast::value::Value as AstValue;
use serde_json::{Map, Value};

use crate::executor::tree::Node as Tree;
use crate::schema::{type_name, SchemaIndex};

enum Node<'s> {
    Schema,
    Type(TypeRef<'s>),
    Field(&'s Field),
    InputValue(&'s InputValue),
    EnumValue(&'s EnumValue),
    Directive(&'s DirectiveDefinition),
}

#[derive(Clone)]
enum TypeRef<'s> {
    Named(&'s TypeDefinition),
    List(Box<TypeRef<'s>>),
    NonNull(Box<TypeRef<'s>>),
}

struct Resolver<'s> {
    types: HashMap<&'s str, &'s TypeDefinition>,
    index: &'s SchemaIndex,
    variables: &'s Map<String, Value>,
}

/// Resolves the root introspection fields of `selection_set` into `data`.
pub fn resolve_root(
    schema: &SchemaIndex,
    selection_set: &SelectionSet,
    variables: &Map<String, Value>,
    data: &mut Tree,
) {
    let document: &Document = &schema.document;
    let types = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::TypeDefinition(t) => Some((type_name(t), t)),
            _ => None,
        })
        .collect();
    let resolver = Resolver { types, index: schema, variables };
    let Tree::Object(data) = data else { return };
    for item in &selection_set.items {
        let SelectionItem::Field(field) = item else { continue };
        let value = match field.name.as_str() {
            "__schema" => resolver.object(&Node::Schema, &field.selections),
            "__type" => match resolver.string_argument(field, "name").and_then(|n| resolver.types.get(n.as_str())) {
                Some(def) => resolver.object(&Node::Type(TypeRef::Named(def)), &field.selections),
                None => Value::Null,
            },
            _ => continue,
        };
        data.insert(field.selection_identifier(), Tree::from(value));
    }
}

fn description(def: &TypeDefinition) -> Option<&String> {
    match def {
        TypeDefinition::Scalar(t) => t.description.as_ref(),
        TypeDefinition::Object(t) => t.description.as_ref(),
        TypeDefinition::Interface(t) => t.description.as_ref(),
        TypeDefinition::Union(t) => t.description.as_ref(),
        TypeDefinition::Enum(t) => t.description.as_ref(),
        TypeDefinition::InputObject(t) => t.description.as_ref(),
    }
}

fn deprecation(directives: &[graphql_tools::static_graphql::schema::Directive]) -> Option<Option<&str>> {
    directives.iter().find(|d| d.name == "deprecated").map(|d| {
        d.arguments.iter().find(|(n, _)| n == "reason").and_then(|(_, v)| match v {
            graphql_tools::static_graphql::schema::Value::String(s) => Some(s.as_str()),
            _ => None,
        })
    })
}

fn opt_str(value: Option<&String>) -> Value {
    value.map(|s| Value::String(s.clone())).unwrap_or(Value::Null)
}

fn deprecated_fields(directives: &[graphql_tools::static_graphql::schema::Directive]) -> (Value, Value) {
    match deprecation(directives) {
        Some(reason) => (Value::Bool(true), Value::String(reason.unwrap_or("No longer supported").to_string())),
        None => (Value::Bool(false), Value::Null),
    }
}

impl<'s> Resolver<'s> {
    fn argument(&self, field: &FieldSelection, name: &str) -> Option<Value> {
        let value = field.arguments.as_ref()?.get_argument(name)?;
        Some(self.ast_value(value))
    }

    fn ast_value(&self, value: &AstValue) -> Value {
        match value {
            AstValue::Variable(name) => self.variables.get(name).cloned().unwrap_or(Value::Null),
            AstValue::Int(n) => Value::from(*n),
            AstValue::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            AstValue::String(s) | AstValue::Enum(s) => Value::String(s.clone()),
            AstValue::Boolean(b) => Value::Bool(*b),
            AstValue::Null => Value::Null,
            AstValue::List(items) => Value::Array(items.iter().map(|v| self.ast_value(v)).collect()),
            AstValue::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), self.ast_value(v))).collect())
            }
        }
    }

    fn string_argument(&self, field: &FieldSelection, name: &str) -> Option<String> {
        self.argument(field, name).and_then(|v| v.as_str().map(str::to_string))
    }

    fn include_deprecated(&self, field: &FieldSelection) -> bool {
        self.argument(field, "includeDeprecated").and_then(|v| v.as_bool()).unwrap_or(false)
    }

    fn type_ref(&self, ty: &'s Type) -> Option<TypeRef<'s>> {
        Some(match ty {
            Type::NamedType(name) => TypeRef::Named(self.types.get(name.as_str())?),
            Type::ListType(inner) => TypeRef::List(Box::new(self.type_ref(inner)?)),
            Type::NonNullType(inner) => TypeRef::NonNull(Box::new(self.type_ref(inner)?)),
        })
    }

    fn node_type_name(node: &Node) -> &'static str {
        match node {
            Node::Schema => "__Schema",
            Node::Type(_) => "__Type",
            Node::Field(_) => "__Field",
            Node::InputValue(_) => "__InputValue",
            Node::EnumValue(_) => "__EnumValue",
            Node::Directive(_) => "__Directive",
        }
    }

    fn object(&self, node: &Node<'s>, selections: &SelectionSet) -> Value {
        let mut out = Map::new();
        self.fill(node, selections, &mut out);
        Value::Object(out)
    }

    fn fill(&self, node: &Node<'s>, selections: &SelectionSet, out: &mut Map<String, Value>) {
        for item in &selections.items {
            match item {
                SelectionItem::Field(field) => {
                    if field.name == "__typename" {
                        continue;
                    }
                    let key = field.selection_identifier();
                    if out.contains_key(key) {
                        // Merged selections: resolve sub-fields into the same object.
                        if let Some(Value::Object(existing)) = out.get_mut(key) {
                            let mut extra = match self.field(node, field) {
                                Value::Object(m) => m,
                                _ => continue,
                            };
                            for (k, v) in std::mem::take(&mut extra) {
                                existing.entry(k).or_insert(v);
                            }
                        }
                        continue;
                    }
                    out.insert(key.to_string(), self.field(node, field));
                }
                SelectionItem::InlineFragment(fragment) => {
                    if fragment.type_condition == Self::node_type_name(node) {
                        self.fill(node, &fragment.selections, out);
                    }
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    fn list(&self, nodes: Vec<Node<'s>>, selections: &SelectionSet) -> Value {
        Value::Array(nodes.iter().map(|n| self.object(n, selections)).collect())
    }

    fn named(&self, name: Option<&str>, selections: &SelectionSet) -> Value {
        match name.and_then(|n| self.types.get(n)) {
            Some(def) => self.object(&Node::Type(TypeRef::Named(def)), selections),
            None => Value::Null,
        }
    }

    fn field(&self, node: &Node<'s>, field: &FieldSelection) -> Value {
        let sel = &field.selections;
        match node {
            Node::Schema => match field.name.as_str() {
                "description" => Value::Null,
                "types" => {
                    let mut types: Vec<&TypeDefinition> = self.types.values().copied().collect();
                    types.sort_by_key(|t| type_name(t));
                    self.list(types.into_iter().map(|t| Node::Type(TypeRef::Named(t))).collect(), sel)
                }
                "queryType" => self.named(Some(&self.index.query_type), sel),
                "mutationType" => self.named(self.index.mutation_type.as_deref(), sel),
                "subscriptionType" => self.named(self.index.subscription_type.as_deref(), sel),
                // Each directive once: the public schema's document may declare one twice.
                "directives" => self.list(self.index.directives.iter().map(Node::Directive).collect(), sel),
                _ => Value::Null,
            },
            Node::Type(ty) => self.type_field(ty, field),
            Node::Field(f) => match field.name.as_str() {
                "name" => Value::String(f.name.clone()),
                "description" => opt_str(f.description.as_ref()),
                "args" => self.input_values(&f.arguments, self.include_deprecated(field), sel),
                "type" => self.type_ref(&f.field_type).map(|t| self.object(&Node::Type(t), sel)).unwrap_or(Value::Null),
                "isDeprecated" => deprecated_fields(&f.directives).0,
                "deprecationReason" => deprecated_fields(&f.directives).1,
                _ => Value::Null,
            },
            Node::InputValue(v) => match field.name.as_str() {
                "name" => Value::String(v.name.clone()),
                "description" => opt_str(v.description.as_ref()),
                "type" => self.type_ref(&v.value_type).map(|t| self.object(&Node::Type(t), sel)).unwrap_or(Value::Null),
                "defaultValue" => v.default_value.as_ref().map(|d| Value::String(d.to_string())).unwrap_or(Value::Null),
                "isDeprecated" => deprecated_fields(&v.directives).0,
                "deprecationReason" => deprecated_fields(&v.directives).1,
                _ => Value::Null,
            },
            Node::EnumValue(v) => match field.name.as_str() {
                "name" => Value::String(v.name.clone()),
                "description" => opt_str(v.description.as_ref()),
                "isDeprecated" => deprecated_fields(&v.directives).0,
                "deprecationReason" => deprecated_fields(&v.directives).1,
                _ => Value::Null,
            },
            Node::Directive(d) => match field.name.as_str() {
                "name" => Value::String(d.name.clone()),
                "description" => opt_str(d.description.as_ref()),
                "locations" => Value::Array(d.locations.iter().map(|l| Value::String(l.as_str().into())).collect()),
                "args" => self.input_values(&d.arguments, self.include_deprecated(field), sel),
                "isRepeatable" => Value::Bool(d.repeatable),
                _ => Value::Null,
            },
        }
    }

    fn input_values(&self, values: &'s [InputValue], include_deprecated: bool, sel: &SelectionSet) -> Value {
        self.list(
            values
                .iter()
                .filter(|v| include_deprecated || deprecation(&v.directives).is_none())
                .map(Node::InputValue)
                .collect(),
            sel,
        )
    }

    fn type_field(&self, ty: &TypeRef<'s>, field: &FieldSelection) -> Value {
        let sel = &field.selections;
        let def = match ty {
            TypeRef::List(inner) | TypeRef::NonNull(inner) => {
                return match field.name.as_str() {
                    "kind" => Value::String(if matches!(ty, TypeRef::List(_)) { "LIST" } else { "NON_NULL" }.into()),
                    "ofType" => self.object(&Node::Type((**inner).clone()), sel),
                    "fields" | "interfaces" | "possibleTypes" | "enumValues" | "inputFields" | "name"
                    | "description" | "specifiedByURL" | "isOneOf" => Value::Null,
                    _ => Value::Null,
                };
            }
            TypeRef::Named(def) => *def,
        };
        let include_deprecated = self.include_deprecated(field);
        match field.name.as_str() {
            "kind" => Value::String(
                match def {
                    TypeDefinition::Scalar(_) => "SCALAR",
                    TypeDefinition::Object(_) => "OBJECT",
                    TypeDefinition::Interface(_) => "INTERFACE",
                    TypeDefinition::Union(_) => "UNION",
                    TypeDefinition::Enum(_) => "ENUM",
                    TypeDefinition::InputObject(_) => "INPUT_OBJECT",
                }
                .into(),
            ),
            "name" => Value::String(type_name(def).to_string()),
            "description" => opt_str(description(def)),
            "fields" => {
                let fields = match def {
                    TypeDefinition::Object(t) => &t.fields,
                    TypeDefinition::Interface(t) => &t.fields,
                    _ => return Value::Null,
                };
                self.list(
                    fields
                        .iter()
                        .filter(|f| !f.name.starts_with("__"))
                        .filter(|f| include_deprecated || deprecation(&f.directives).is_none())
                        .map(Node::Field)
                        .collect(),
                    sel,
                )
            }
            "interfaces" => {
                let names = match def {
                    TypeDefinition::Object(t) => &t.implements_interfaces,
                    TypeDefinition::Interface(t) => &t.implements_interfaces,
                    _ => return Value::Null,
                };
                Value::Array(names.iter().map(|n| self.named(Some(n), sel)).filter(|v| !v.is_null()).collect())
            }
            "possibleTypes" => {
                if !matches!(def, TypeDefinition::Interface(_) | TypeDefinition::Union(_)) {
                    return Value::Null;
                }
                let mut names: Vec<&String> =
                    self.index.type_info(type_name(def)).map(|i| i.possible_types.iter().collect()).unwrap_or_default();
                names.sort();
                Value::Array(names.into_iter().map(|n| self.named(Some(n), sel)).filter(|v| !v.is_null()).collect())
            }
            "enumValues" => match def {
                TypeDefinition::Enum(e) => self.list(
                    e.values
                        .iter()
                        .filter(|v| include_deprecated || deprecation(&v.directives).is_none())
                        .map(Node::EnumValue)
                        .collect(),
                    sel,
                ),
                _ => Value::Null,
            },
            "inputFields" => match def {
                TypeDefinition::InputObject(i) => self.input_values(&i.fields, include_deprecated, sel),
                _ => Value::Null,
            },
            "ofType" => Value::Null,
            "specifiedByURL" => match def {
                TypeDefinition::Scalar(s) => s
                    .directives
                    .iter()
                    .find(|d| d.name == "specifiedBy")
                    .and_then(|d| d.arguments.iter().find(|(n, _)| n == "url"))
                    .map(|(_, v)| match v {
                        graphql_tools::static_graphql::schema::Value::String(s) => Value::String(s.clone()),
                        _ => Value::Null,
                    })
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            },
            "isOneOf" => match def {
                TypeDefinition::InputObject(i) => Value::Bool(i.directives.iter().any(|d| d.name == "oneOf")),
                _ => Value::Null,
            },
            _ => Value::Null,
        }
    }
}
