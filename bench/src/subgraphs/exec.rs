//! A small GraphQL executor for the benchmark subgraphs: it walks the
//! operation the gateway sent (fields, aliases, fragments, `@skip`/`@include`,
//! `_entities`, `__typename`) and writes the JSON response straight into a
//! byte buffer, asking [`Subgraph::resolve`] for each field.
//!
//! It trusts its callers (gateways that planned against the composed
//! supergraph) and does not validate: unknown fields become `null` with an
//! error, which the benchmark's error count will show.

use std::io::Write as _;

use graphql_parser::query as q;
use serde_json::Value as Json;

use super::resolve::{Args, Node, Out, Subgraph};

/// A parsed operation document, owned so it can be cached across requests.
pub type Document = q::Document<'static, String>;
type SelectionSet = q::SelectionSet<'static, String>;
type Field = q::Field<'static, String>;

/// Parses a query document once; callers cache the result.
pub fn parse(query: &str) -> Result<Document, String> {
    q::parse_query::<String>(query).map(|doc| doc.into_static()).map_err(|e| e.to_string())
}

/// Executes the selected operation of `doc` on `subgraph` and appends the
/// whole response (`{"data":…}` and, if any, `"errors"`) to `out`.
pub fn execute(subgraph: Subgraph, doc: &Document, operation_name: Option<&str>, variables: &Json, out: &mut Vec<u8>) {
    let mut exec = Exec { subgraph, doc, variables, errors: Vec::new() };
    let Some(selection_set) = exec.operation(operation_name) else {
        out.extend_from_slice(br#"{"errors":[{"message":"no query operation to execute"}]}"#);
        return;
    };
    out.extend_from_slice(br#"{"data":"#);
    exec.write_object(Node::Query, &[selection_set], out);
    if !exec.errors.is_empty() {
        out.extend_from_slice(br#","errors":["#);
        for (i, message) in exec.errors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"message":"#);
            write_str(out, message);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// Appends a JSON error response for a request that could not be run at all.
pub fn write_request_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(br#"{"errors":[{"message":"#);
    write_str(out, message);
    out.extend_from_slice(b"}]}");
}

struct Exec<'d> {
    subgraph: Subgraph,
    doc: &'d Document,
    variables: &'d Json,
    errors: Vec<String>,
}

/// The fields of one response key: most keys have one field, so the rest
/// live in a vector that stays unallocated.
struct Group<'d> {
    key: &'d str,
    first: &'d Field,
    more: Vec<&'d Field>,
}

impl<'d> Exec<'d> {
    fn operation(&self, name: Option<&str>) -> Option<&'d SelectionSet> {
        self.doc.definitions.iter().find_map(|definition| match definition {
            q::Definition::Operation(q::OperationDefinition::SelectionSet(set)) if name.is_none() => Some(set),
            q::Definition::Operation(q::OperationDefinition::Query(query))
                if name.is_none() || query.name.as_deref() == name =>
            {
                Some(&query.selection_set)
            }
            _ => None,
        })
    }

    fn fragment(&self, name: &str) -> Option<&'d q::FragmentDefinition<'static, String>> {
        self.doc.definitions.iter().find_map(|definition| match definition {
            q::Definition::Fragment(fragment) if fragment.name == name => Some(fragment),
            _ => None,
        })
    }

    /// Collects the fields that apply to `typename`, merging repeated
    /// response keys (as the GraphQL spec's CollectFields does).
    fn collect(&self, typename: &str, set: &'d SelectionSet, groups: &mut Vec<Group<'d>>) {
        for selection in &set.items {
            match selection {
                q::Selection::Field(field) => {
                    if self.skipped(&field.directives) {
                        continue;
                    }
                    let key = field.alias.as_deref().unwrap_or(&field.name);
                    match groups.iter_mut().find(|group| group.key == key) {
                        Some(group) => group.more.push(field),
                        None => groups.push(Group { key, first: field, more: Vec::new() }),
                    }
                }
                q::Selection::InlineFragment(fragment) => {
                    let applies = match &fragment.type_condition {
                        Some(q::TypeCondition::On(on)) => on == typename,
                        None => true,
                    };
                    if applies && !self.skipped(&fragment.directives) {
                        self.collect(typename, &fragment.selection_set, groups);
                    }
                }
                q::Selection::FragmentSpread(spread) => {
                    if self.skipped(&spread.directives) {
                        continue;
                    }
                    if let Some(fragment) = self.fragment(&spread.fragment_name) {
                        let q::TypeCondition::On(on) = &fragment.type_condition;
                        if on == typename {
                            self.collect(typename, &fragment.selection_set, groups);
                        }
                    }
                }
            }
        }
    }

    fn skipped(&self, directives: &[q::Directive<'static, String>]) -> bool {
        directives.iter().any(|directive| {
            let condition = directive
                .arguments
                .iter()
                .find(|(name, _)| name == "if")
                .map(|(_, value)| match value {
                    q::Value::Boolean(b) => *b,
                    q::Value::Variable(v) => self.variables.get(v).and_then(Json::as_bool).unwrap_or(false),
                    _ => false,
                })
                .unwrap_or(false);
            match directive.name.as_str() {
                "skip" => condition,
                "include" => !condition,
                _ => false,
            }
        })
    }

    fn write_object(&mut self, node: Node, sets: &[&'d SelectionSet], out: &mut Vec<u8>) {
        let typename = node.typename();
        let mut groups = Vec::with_capacity(8);
        for set in sets {
            self.collect(typename, set, &mut groups);
        }
        out.push(b'{');
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(group.key.as_bytes());
            out.extend_from_slice(b"\":");
            self.write_field(node, group, out);
        }
        out.push(b'}');
    }

    fn write_field(&mut self, node: Node, group: &Group<'d>, out: &mut Vec<u8>) {
        let field = group.first;
        let single;
        let many: Vec<&'d SelectionSet>;
        let sets: &[&'d SelectionSet] = if group.more.is_empty() {
            single = [&field.selection_set];
            &single
        } else {
            many = std::iter::once(field).chain(group.more.iter().copied()).map(|f| &f.selection_set).collect();
            &many
        };
        match (node, field.name.as_str()) {
            (_, "__typename") => write_str(out, node.typename()),
            (Node::Query, "_entities") => self.write_entities(field, sets, out),
            (Node::Query, "_service") => self.write_object(Node::Service, sets, out),
            (Node::Service, "sdl") => write_str(out, self.subgraph.sdl()),
            (_, name) => {
                let args = FieldArgs { field, variables: self.variables };
                match self.subgraph.resolve(node, name, &args) {
                    Ok(value) => self.write_value(value, sets, out),
                    Err(error) => {
                        out.extend_from_slice(b"null");
                        self.errors.push(error.0);
                    }
                }
            }
        }
    }

    fn write_value(&mut self, value: Out, sets: &[&'d SelectionSet], out: &mut Vec<u8>) {
        match value {
            Out::Null => out.extend_from_slice(b"null"),
            Out::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Out::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Out::Str(s) => write_str(out, s),
            Out::Object(node) => self.write_object(node, sets, out),
            Out::List(nodes) => {
                out.push(b'[');
                for (i, node) in nodes.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_object(node, sets, out);
                }
                out.push(b']');
            }
        }
    }

    fn write_entities(&mut self, field: &'d Field, sets: &[&'d SelectionSet], out: &mut Vec<u8>) {
        let literal;
        let representations = match field.arguments.iter().find(|(name, _)| name == "representations") {
            Some((_, q::Value::Variable(name))) => self.variables.get(name),
            Some((_, value)) => {
                literal = to_json(value, self.variables);
                Some(&literal)
            }
            None => None,
        };
        let Some(representations) = representations.and_then(Json::as_array) else {
            out.extend_from_slice(b"null");
            self.errors.push("_entities needs a list of representations".to_owned());
            return;
        };
        out.push(b'[');
        for (i, representation) in representations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match self.subgraph.entity(representation) {
                Some(node) => self.write_object(node, sets, out),
                None => {
                    out.extend_from_slice(b"null");
                    self.errors.push(format!("{} cannot resolve the entity {representation}", self.subgraph.name()));
                }
            }
        }
        out.push(b']');
    }
}

/// A field's arguments, read lazily from the AST and the variables.
struct FieldArgs<'a> {
    field: &'a Field,
    variables: &'a Json,
}

impl FieldArgs<'_> {
    fn value(&self, name: &str) -> Option<&q::Value<'static, String>> {
        self.field.arguments.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl Args for FieldArgs<'_> {
    fn int(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            q::Value::Int(n) => n.as_i64(),
            q::Value::Variable(v) => self.variables.get(v)?.as_i64(),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            q::Value::String(s) => Some(s),
            q::Value::Variable(v) => self.variables.get(v)?.as_str(),
            _ => None,
        }
    }
}

fn to_json(value: &q::Value<'static, String>, variables: &Json) -> Json {
    match value {
        q::Value::Variable(v) => variables.get(v).cloned().unwrap_or(Json::Null),
        q::Value::Int(n) => n.as_i64().map_or(Json::Null, Json::from),
        q::Value::Float(f) => Json::from(*f),
        q::Value::String(s) => Json::from(s.as_str()),
        q::Value::Boolean(b) => Json::from(*b),
        q::Value::Null => Json::Null,
        q::Value::Enum(e) => Json::from(e.as_str()),
        q::Value::List(items) => Json::Array(items.iter().map(|v| to_json(v, variables)).collect()),
        q::Value::Object(fields) => {
            Json::Object(fields.iter().map(|(k, v)| (k.clone(), to_json(v, variables))).collect())
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
