//! A small data-driven subgraph for the audit-style tests: it parses each
//! incoming operation and answers it from JSON data, so a scenario is just
//! its SDL, its objects and a function from representation to entity.
//!
//! Every object in the data carries its `__typename`. A value of the form
//! `{"__error": "message"}` resolves to `null` with an error at its path.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::parser::Positioned;
use async_graphql::{Name, Value as GqlValue};
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use crate::common::{fixture, GatewayBuilder, TestGateway, TestSubgraph};

pub mod external_user;

type EntityFn = Arc<dyn Fn(&Value) -> Value + Send + Sync>;
type FieldFn = Arc<dyn Fn(&Value, &str, &Value) -> Option<Value> + Send + Sync>;

/// The data and behaviour of one subgraph.
#[derive(Clone)]
pub struct JsonSubgraph {
    name: String,
    query: Value,
    mutation: Value,
    entities: EntityFn,
    fields: FieldFn,
    possible: HashMap<String, Vec<String>>,
    /// The subgraph's own executable schema: requests it would reject get
    /// the validation errors a real server answers with.
    schema: Option<Arc<graphql_tools::static_graphql::schema::Document>>,
}

impl JsonSubgraph {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            query: json!({}),
            mutation: json!({}),
            entities: Arc::new(|_| Value::Null),
            fields: Arc::new(|_, _, _| None),
            possible: HashMap::new(),
            schema: None,
        }
    }

    /// The root `Query` object (its fields are the root fields).
    pub fn query(mut self, root: Value) -> Self {
        self.query = root;
        self
    }

    pub fn mutation(mut self, root: Value) -> Self {
        self.mutation = root;
        self
    }

    /// Resolves one `_entities` representation (null when not found).
    pub fn entities(mut self, f: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Self {
        self.entities = Arc::new(f);
        self
    }

    /// Computes a field (parent object, field name, arguments); `None` reads
    /// the field from the parent object.
    pub fn fields(mut self, f: impl Fn(&Value, &str, &Value) -> Option<Value> + Send + Sync + 'static) -> Self {
        self.fields = Arc::new(f);
        self
    }

    /// The object types an abstract type (interface or union) stands for here.
    pub fn possible(mut self, abstract_type: &str, members: &[&str]) -> Self {
        self.possible.insert(abstract_type.to_string(), members.iter().map(|s| s.to_string()).collect());
        self
    }

    pub async fn start(self) -> TestSubgraph {
        let name = self.name.clone();
        let this = Arc::new(self);
        TestSubgraph::raw(&name, move |body: Value| {
            let this = this.clone();
            async move { axum::Json(this.answer(&body)).into_response() }
        })
        .await
    }

    /// Validates requests against `sdl` (the subgraph's federation SDL).
    pub fn sdl(mut self, sdl: &str) -> Self {
        let text = executable_sdl(sdl);
        let schema = graphql_tools::parser::parse_schema::<String>(&text)
            .unwrap_or_else(|e| panic!("subgraph {} schema does not parse: {e}\n{text}", self.name))
            .into_static();
        self.schema = Some(Arc::new(schema));
        self
    }

    /// Answers one GraphQL request body.
    pub fn answer(&self, body: &Value) -> Value {
        let query = body["query"].as_str().unwrap_or_default();
        if let Some(schema) = &self.schema {
            let errors = match graphql_tools::parser::parse_query::<String>(query) {
                Ok(doc) => graphql_tools::validation::validate::validate(
                    schema,
                    &doc.into_static(),
                    &graphql_tools::validation::rules::default_rules_validation_plan(),
                )
                .into_iter()
                .map(|e| e.message)
                .collect(),
                Err(e) => vec![e.to_string()],
            };
            if !errors.is_empty() {
                let errors: Vec<Value> = errors.into_iter().map(|m| json!({"message": m})).collect();
                return json!({"data": null, "errors": errors});
            }
        }
        let doc = match async_graphql::parser::parse_query(query) {
            Ok(doc) => doc,
            Err(e) => return json!({"data": null, "errors": [{"message": e.to_string()}]}),
        };
        let variables = body.get("variables").cloned().unwrap_or(json!({}));
        let mut run = Run { sub: self, doc: &doc, variables: &variables, errors: Vec::new() };
        let op = match &doc.operations {
            DocumentOperations::Single(op) => &op.node,
            DocumentOperations::Multiple(ops) => {
                let wanted = body["operationName"].as_str();
                let found = ops.iter().find(|(name, _)| Some(name.as_str()) == wanted).or_else(|| ops.iter().next());
                &found.unwrap().1.node
            }
        };
        let (root, typename) = match op.ty {
            OperationType::Mutation => (&self.mutation, "Mutation"),
            _ => (&self.query, "Query"),
        };
        let mut root = root.clone();
        root["__typename"] = json!(typename);
        let data = run.object(&root, &op.selection_set.node, &mut Vec::new());
        let mut response = json!({ "data": data });
        if !run.errors.is_empty() {
            response["errors"] = Value::Array(run.errors);
        }
        response
    }
}

struct Run<'a> {
    sub: &'a JsonSubgraph,
    doc: &'a ExecutableDocument,
    variables: &'a Value,
    errors: Vec<Value>,
}

impl Run<'_> {
    fn var(&self, name: &Name) -> Result<GqlValue, ()> {
        Ok(self.variables.get(name.as_str()).map(|v| GqlValue::from_json(v.clone()).unwrap()).unwrap_or_default())
    }

    fn included(&self, directives: &[Positioned<async_graphql::parser::types::Directive>]) -> bool {
        for directive in directives {
            let name = directive.node.name.node.as_str();
            if name != "skip" && name != "include" {
                continue;
            }
            let cond = directive
                .node
                .get_argument("if")
                .map(|v| v.node.clone().into_const_with(|n| self.var(&n)).unwrap().into_json().unwrap())
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if (name == "skip" && cond) || (name == "include" && !cond) {
                return false;
            }
        }
        true
    }

    fn type_matches(&self, typename: &str, condition: Option<&str>) -> bool {
        match condition {
            None => true,
            Some(cond) => {
                cond == typename || self.sub.possible.get(cond).is_some_and(|m| m.iter().any(|t| t == typename))
            }
        }
    }

    fn object(&mut self, obj: &Value, set: &SelectionSet, path: &mut Vec<Value>) -> Value {
        let mut out = Map::new();
        self.collect(obj, set, path, &mut out);
        Value::Object(out)
    }

    fn collect(&mut self, obj: &Value, set: &SelectionSet, path: &mut Vec<Value>, out: &mut Map<String, Value>) {
        let typename = obj["__typename"].as_str().unwrap_or_default().to_string();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if !self.included(&field.directives) {
                        continue;
                    }
                    let name = field.name.node.as_str();
                    let key = field.response_key().node.to_string();
                    let mut args = Map::new();
                    for (arg, value) in &field.arguments {
                        let value = value.node.clone().into_const_with(|n| self.var(&n)).unwrap();
                        args.insert(arg.node.to_string(), value.into_json().unwrap());
                    }
                    let args = Value::Object(args);
                    path.push(json!(key));
                    let value = if name == "__typename" {
                        json!(typename)
                    } else if name == "_entities" {
                        let reps = args["representations"].as_array().cloned().unwrap_or_default();
                        Value::Array(reps.iter().map(|rep| (self.sub.entities)(rep)).collect())
                    } else {
                        (self.sub.fields)(obj, name, &args)
                            .unwrap_or_else(|| obj.get(name).cloned().unwrap_or(Value::Null))
                    };
                    let value = self.complete(&value, &field.selection_set.node, path);
                    path.pop();
                    match out.get_mut(&key) {
                        Some(existing) => merge(existing, value),
                        None => {
                            out.insert(key, value);
                        }
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    if !self.included(&fragment.directives) {
                        continue;
                    }
                    let cond = fragment.type_condition.as_ref().map(|c| c.node.on.node.as_str());
                    if self.type_matches(&typename, cond) {
                        self.collect(obj, &fragment.selection_set.node, path, out);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.node.directives) {
                        continue;
                    }
                    let doc = self.doc;
                    let def: &FragmentDefinition = &doc.fragments[&spread.node.fragment_name.node].node;
                    if self.type_matches(&typename, Some(def.type_condition.node.on.node.as_str())) {
                        self.collect(obj, &def.selection_set.node, path, out);
                    }
                }
            }
        }
    }

    fn complete(&mut self, value: &Value, set: &SelectionSet, path: &mut Vec<Value>) -> Value {
        match value {
            Value::Object(map) if map.contains_key("__error") => {
                self.errors.push(json!({"message": map["__error"], "path": path.clone()}));
                Value::Null
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.push(json!(i));
                        let v = self.complete(item, set, path);
                        path.pop();
                        v
                    })
                    .collect(),
            ),
            Value::Object(_) if !set.items.is_empty() => self.object(value, set, path),
            other => other.clone(),
        }
    }
}

fn merge(target: &mut Value, value: Value) {
    match (target, value) {
        (Value::Object(t), Value::Object(v)) => {
            for (k, v) in v {
                match t.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(v)) => {
            for (a, b) in t.iter_mut().zip(v) {
                merge(a, b);
            }
        }
        (t, v) => *t = v,
    }
}

/// The federation SDL of a subgraph as the executable schema its server
/// validates requests against: extensions become definitions, and the
/// `_entities` root field over the `@key`-ed object types is added.
fn executable_sdl(sdl: &str) -> String {
    // Drop the `extend schema @link(...)` block: its directives, over as
    // many lines as their parentheses take.
    let mut in_link = false;
    let mut depth = 0i32;
    let mut text: String = sdl
        .lines()
        .filter(|l| {
            if l.starts_with("extend schema") {
                in_link = true;
            } else if in_link && depth == 0 && !l.trim_start().starts_with('@') {
                in_link = false;
            }
            if in_link {
                depth += l.matches('(').count() as i32 - l.matches(')').count() as i32;
            }
            !in_link
        })
        .map(|l| l.strip_prefix("extend ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    // Object types whose header (up to `{`) carries a `@key`.
    let entities: Vec<String> = format!("\n{text}")
        .split("\ntype ")
        .skip(1)
        .filter(|rest| rest.split('{').next().is_some_and(|header| header.contains("@key")))
        .filter_map(|rest| rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().map(str::to_string))
        .collect();
    let mut root = String::new();
    if !entities.is_empty() {
        root = "  _entities(representations: [_Any!]!): [_Entity]!\n".to_string();
        text.push_str(&format!("\nscalar _Any\nunion _Entity = {}\n", entities.join(" | ")));
    }
    // The validator knows only what the document defines, built-ins included.
    text.push_str(
        "\nscalar String\nscalar Int\nscalar Float\nscalar Boolean\nscalar ID\n\
         directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT\n\
         directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT\n",
    );
    match format!("\n{text}").find("\ntype Query ").and_then(|at| text[at..].find('{').map(|b| at + b + 1)) {
        Some(at) => text.insert_str(at, &format!("\n{root}")),
        None => text.push_str(&format!("\ntype Query {{\n{root}  _service: String\n}}\n")),
    }
    text
}

/// Starts the subgraphs and a gateway over `fixtures/audit/<suite>/supergraph.graphql`;
/// each subgraph validates requests against `fixtures/audit/<suite>/<name>.graphql`.
pub async fn start(suite: &str, subgraphs: Vec<JsonSubgraph>) -> (Vec<TestSubgraph>, TestGateway) {
    start_fixture(&format!("audit/{suite}"), subgraphs).await
}

/// [`start`] over any fixture folder (`fixtures/<folder>/`).
pub async fn start_fixture(folder: &str, subgraphs: Vec<JsonSubgraph>) -> (Vec<TestSubgraph>, TestGateway) {
    start_fixture_with(folder, subgraphs, |_| {}).await
}

/// As [`start_fixture`], with the gateway's configuration changed by `tweak`.
pub async fn start_fixture_with(
    folder: &str,
    subgraphs: Vec<JsonSubgraph>,
    tweak: impl FnOnce(&mut gatehouse_gateway::GatewayConfig) + 'static,
) -> (Vec<TestSubgraph>, TestGateway) {
    let sdl = fixture(&format!("{folder}/supergraph.graphql"));
    let mut running = Vec::new();
    for sub in subgraphs {
        let own = fixture(&format!("{folder}/{}.graphql", sub.name));
        running.push(sub.sdl(&own).start().await);
    }
    let mut builder = GatewayBuilder::new(sdl).config(tweak);
    for sub in &running {
        builder = builder.subgraph(sub);
    }
    (running, builder.start().await)
}

/// Finds the entity in `list` whose `key` field equals the representation's.
pub fn find_by(list: &Value, key: &str, rep: &Value) -> Value {
    list.as_array().and_then(|items| items.iter().find(|item| item[key] == rep[key])).cloned().unwrap_or(Value::Null)
}

/// How many requests each subgraph has served, in the order they were started.
pub fn request_counts(subgraphs: &[TestSubgraph]) -> Vec<usize> {
    subgraphs.iter().map(|s| s.recorder.requests()).collect()
}
