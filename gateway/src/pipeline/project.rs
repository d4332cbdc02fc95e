//! Stage 6: write the response. The merged tree is projected onto the client's
//! (normalised) selection set: its keys, its order, nothing the plan added.
//! Non-null violations null the nearest nullable ancestor as the specification
//! says. The JSON is written straight into the output buffer; a subtree that
//! turns out to be null is cut off by truncating the buffer.

use graphql_tools::static_graphql::schema::Type;
use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use serde_json::{Map, Value};

use crate::error::{codes, GraphQLError, PathSegment, PathStep};
use crate::executor::tree::{write_json_str, write_name, Node, Object};
use crate::schema::{SchemaIndex, TypeInfo, TypeKind};

/// A null reached a non-null position; the nearest nullable ancestor becomes null.
struct Bubble;

static NULL: Node = Node::Null;

/// Serialises `{"data":..,"errors":[..]}` for an executed operation.
/// `size_hint` is a guess of the output's size (the operation's last answer,
/// or what the subgraphs sent), so the buffer rarely has to grow.
pub fn write_response(
    schema: &SchemaIndex,
    operation: &OperationDefinition,
    root_type: &str,
    variables: &Map<String, Value>,
    data: &Node,
    mut errors: Vec<GraphQLError>,
    size_hint: usize,
) -> Vec<u8> {
    let mut projector = Projector {
        schema,
        variables,
        out: Vec::with_capacity(size_hint.clamp(1024, 16 * 1024 * 1024)),
        explained: errors.iter().map(|e| e.path.as_deref()).collect(),
        new_errors: Vec::new(),
        path: Vec::new(),
    };
    projector.out.extend_from_slice(b"{\"data\":");
    let empty = Object::new();
    let root = match data {
        Node::Object(map) => map,
        _ => &empty,
    };
    let start = projector.out.len();
    if projector.selection_set(&[&operation.selection_set], root, root_type).is_err() {
        projector.out.truncate(start);
        projector.out.extend_from_slice(b"null");
    }
    let Projector { mut out, new_errors, .. } = projector;
    errors.extend(new_errors);
    if !errors.is_empty() {
        out.extend_from_slice(b",\"errors\":");
        let _ = serde_json::to_writer(&mut out, &errors);
    }
    out.push(b'}');
    out
}

/// Adds `"extensions": extensions` to a response [`write_response`] wrote.
pub fn append_extensions(response: &mut Vec<u8>, extensions: &Value) {
    if response.last() == Some(&b'}') {
        response.pop();
        response.extend_from_slice(b",\"extensions\":");
        let _ = serde_json::to_writer(&mut *response, extensions);
        response.push(b'}');
    }
}

/// Serialises a response without data (a request error).
pub fn write_errors(errors: &[GraphQLError]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"errors\":");
    let _ = serde_json::to_writer(&mut out, errors);
    out.push(b'}');
    out
}

struct Projector<'a> {
    schema: &'a SchemaIndex,
    variables: &'a Map<String, Value>,
    out: Vec<u8>,
    /// Paths of the errors already in the response (`None`: an error without
    /// a path, such as a failed fetch). A non-null violation is reported only
    /// when none of them explains it.
    explained: Vec<Option<&'a [PathSegment]>>,
    new_errors: Vec<GraphQLError>,
    /// Borrowed from the operation; made owned only when an error needs it.
    path: Vec<PathStep<'a>>,
}

/// Whether `@skip`/`@include` conditions let a selection through.
fn included(variables: &Map<String, Value>, skip_if: &Option<String>, include_if: &Option<String>) -> bool {
    let var = |name: &String| variables.get(name).and_then(Value::as_bool).unwrap_or(false);
    !skip_if.as_ref().is_some_and(var) && include_if.as_ref().is_none_or(var)
}

impl<'a> Projector<'a> {
    /// Groups the fields that apply to an object of type `typename` by response
    /// key, in first-occurrence order (the specification's CollectFields).
    fn collect(&self, sets: &[&'a SelectionSet], typename: &str, groups: &mut Vec<(&'a str, Vec<&'a FieldSelection>)>) {
        for set in sets {
            for item in &set.items {
                match item {
                    SelectionItem::Field(field) => {
                        if field.omit_from_response || !included(self.variables, &field.skip_if, &field.include_if) {
                            continue;
                        }
                        let key = field.selection_identifier();
                        match groups.iter_mut().find(|(k, _)| *k == key) {
                            Some((_, fields)) => fields.push(field),
                            None => groups.push((key, vec![field])),
                        }
                    }
                    SelectionItem::InlineFragment(fragment) => {
                        if included(self.variables, &fragment.skip_if, &fragment.include_if)
                            && self.schema.type_condition_matches(&fragment.type_condition, typename)
                        {
                            self.collect(&[&fragment.selections], typename, groups);
                        }
                    }
                    SelectionItem::FragmentSpread(_) => {}
                }
            }
        }
    }

    /// Keys are aliases and field names, which the grammar keeps to
    /// letters, digits and underscores.
    fn write_key(&mut self, key: &str) {
        write_name(&mut self.out, key);
        self.out.push(b':');
    }

    fn selection_set(&mut self, sets: &[&'a SelectionSet], object: &Object, typename: &str) -> Result<(), Bubble> {
        self.out.push(b'{');
        // Looked up once per object, not once per field.
        let parent = self.schema.type_info(typename);
        // Fast path: one selection set of unconditional fields, which is what
        // normalisation leaves at every object position (its fields are
        // already merged by response key), so no grouping is needed.
        if let [set] = sets {
            let plain = set
                .items
                .iter()
                .all(|item| matches!(item, SelectionItem::Field(f) if f.skip_if.is_none() && f.include_if.is_none()));
            if plain {
                let mut first = true;
                let mut next = 0;
                for item in &set.items {
                    let SelectionItem::Field(field) = item else { continue };
                    if field.omit_from_response {
                        continue;
                    }
                    if !std::mem::take(&mut first) {
                        self.out.push(b',');
                    }
                    self.field(
                        field.selection_identifier(),
                        field,
                        std::slice::from_ref(&&field.selections),
                        object,
                        &mut next,
                        typename,
                        parent,
                    )?;
                }
                self.out.push(b'}');
                return Ok(());
            }
        }
        let mut groups = Vec::new();
        self.collect(sets, typename, &mut groups);
        let mut next = 0;
        for (i, (key, fields)) in groups.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let sub: Vec<&'a SelectionSet> = fields.iter().map(|f| &f.selections).collect();
            self.field(key, fields[0], &sub, object, &mut next, typename, parent)?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// Writes `"key":value` for one response key; `parent` is `typename`'s
    /// entry in the schema; `next` is where in `object` the search for the
    /// key starts (the fields come in about the order the object holds them).
    #[allow(clippy::too_many_arguments)]
    fn field(
        &mut self,
        key: &'a str,
        field: &'a FieldSelection,
        sub: &[&'a SelectionSet],
        object: &Object,
        next: &mut usize,
        typename: &str,
        parent: Option<&'a TypeInfo>,
    ) -> Result<(), Bubble> {
        self.write_key(key);
        if field.name == "__typename" {
            write_json_str(&mut self.out, typename);
            return Ok(());
        }
        let Some(ty) = parent.and_then(|info| info.fields.get(&field.name)) else {
            self.out.extend_from_slice(b"null");
            return Ok(());
        };
        let value = object.get_after(key, next).unwrap_or(&NULL);
        self.path.push(PathStep::Key(key));
        let result = self.value(value, ty, sub);
        self.path.pop();
        result
    }

    fn value(&mut self, value: &Node, ty: &Type, sub: &[&'a SelectionSet]) -> Result<(), Bubble> {
        if let Type::NonNullType(inner) = ty {
            if value.is_null() {
                self.non_null_violation();
                return Err(Bubble);
            }
            return self.non_null_value(value, inner, sub);
        }
        if value.is_null() {
            self.out.extend_from_slice(b"null");
            return Ok(());
        }
        let start = self.out.len();
        if self.non_null_value(value, ty, sub).is_err() {
            self.out.truncate(start);
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }

    /// Writes a value known not to be null (errors mean "treat it as null").
    fn non_null_value(&mut self, value: &Node, ty: &Type, sub: &[&'a SelectionSet]) -> Result<(), Bubble> {
        match ty {
            Type::NonNullType(inner) => self.value(value, inner, sub),
            Type::ListType(inner) => {
                let Node::Array(items) = value else {
                    self.invalid_value("a list");
                    return Err(Bubble);
                };
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.path.push(PathStep::Index(i));
                    let result = self.value(item, inner, sub);
                    self.path.pop();
                    result?;
                }
                self.out.push(b']');
                Ok(())
            }
            Type::NamedType(name) => {
                // Most leaves are of the specified scalars, which no schema
                // can redefine: written without looking the type up.
                if crate::schema::is_specified_scalar(name) {
                    self.write_scalar(value);
                    return Ok(());
                }
                let info = self.schema.type_info(name);
                match info.map(|i| i.kind) {
                    Some(TypeKind::Object | TypeKind::Interface | TypeKind::Union) => {
                        let Node::Object(object) = value else {
                            self.invalid_value("an object");
                            return Err(Bubble);
                        };
                        let typename = match object.typename() {
                            Some(t) => t,
                            None if info.is_some_and(|i| i.kind == TypeKind::Object) => name.as_str(),
                            // An `@interfaceObject` subgraph answers for an
                            // interface without knowing the concrete type; the
                            // plan asks the owner for `__typename` whenever a
                            // selection depends on it, so the interface's own
                            // fields can be written as they are.
                            None if info.is_some_and(|i| i.kind == TypeKind::Interface) => name.as_str(),
                            None => {
                                self.invalid_value("an object with __typename");
                                return Err(Bubble);
                            }
                        };
                        // An object whose type the client cannot see (an
                        // `@inaccessible` member, say) or that is not a member
                        // of the field's type reads as null, as in a schema
                        // that does not have that type at all.
                        if typename != name.as_str() && !self.schema.type_condition_matches(name, typename) {
                            return Err(Bubble);
                        }
                        self.selection_set(sub, object, typename)
                    }
                    Some(TypeKind::Enum) => {
                        let valid = value.as_str().is_some_and(|v| info.is_some_and(|i| i.enum_values.contains(v)));
                        if !valid {
                            // An `@inaccessible` value reads as null, as in a
                            // schema without it; anything else is the subgraph's fault.
                            let hidden =
                                value.as_str().is_some_and(|v| info.is_some_and(|i| i.hidden_enum_values.contains(v)));
                            if !hidden {
                                self.invalid_value(&format!("a value of enum {name}"));
                            }
                            return Err(Bubble);
                        }
                        self.write_scalar(value);
                        Ok(())
                    }
                    _ => {
                        self.write_scalar(value);
                        Ok(())
                    }
                }
            }
        }
    }

    fn write_scalar(&mut self, value: &Node) {
        value.write_json(&mut self.out);
    }

    fn owned_path(&self) -> Vec<PathSegment> {
        self.path.iter().map(|p| p.owned()).collect()
    }

    /// Whether an error already in the response covers the current path
    /// (the same place, an ancestor, or a descendant), or has no path at all.
    fn already_explained(&self) -> bool {
        self.explained.iter().any(|path| match path {
            None => true,
            Some(path) => path.iter().zip(&self.path).all(|(theirs, ours)| ours.matches(theirs)),
        })
    }

    fn non_null_violation(&mut self) {
        if !self.already_explained() {
            let field = self.path.iter().rev().find_map(|s| match s {
                PathStep::Key(k) => Some(*k),
                PathStep::Index(_) => None,
            });
            self.new_errors.push(
                GraphQLError::new(
                    format!("Cannot return null for non-nullable field {}", field.unwrap_or("value")),
                    codes::NON_NULL_VIOLATION,
                )
                .with_path(self.owned_path()),
            );
        }
    }

    fn invalid_value(&mut self, expected: &str) {
        self.new_errors.push(
            GraphQLError::new(
                format!("A subgraph returned a value that is not {expected}"),
                codes::SUBGRAPH_RESPONSE_INVALID,
            )
            .with_path(self.owned_path()),
        );
    }
}
