//! Role guards written as directives: `@authenticated` and
//! `@requiresScopes(scopes: [[..]])` (outer list OR, inner list AND) on fields,
//! objects, interfaces, scalars and enums, read from the supergraph.
//!
//! [`GuardIndex`] is built once per supergraph. [`authorize`] runs before
//! planning: it inlines fragments (so every selection has one response path),
//! removes the selections the caller may not see, and reports each removal
//! with its response path. The gateway plans the filtered operation, projects
//! the response with the client's original operation (so removed fields come
//! back as `null` and nulls propagate by the usual rules) and adds an
//! `UNAUTHORIZED_FIELD_OR_TYPE` error per removal.
//!
//! Directive names follow the supergraph's `@link` (an `as:` rename is
//! honoured), so any composed supergraph works, not only ours.

use std::collections::{HashMap, HashSet};

use graphql_tools::static_graphql::{query, schema};

const AUTHENTICATED_SPEC: &str = "specs.apollo.dev/authenticated/";
const REQUIRES_SCOPES_SPEC: &str = "specs.apollo.dev/requiresScopes/";

/// Upper bound on selections after inlining fragments: fragments spread many
/// times inside each other could otherwise grow exponentially.
pub const MAX_INLINED_SELECTIONS: usize = 50_000;

/// What a field or type demands of the caller. All of them must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirement {
    pub authenticated: bool,
    /// Each entry is one `@requiresScopes`: any inner list, fully held, satisfies it.
    pub scopes: Vec<Vec<Vec<String>>>,
}

impl Requirement {
    /// What a caller needs, in words, for a field's documentation.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.authenticated && self.scopes.is_empty() {
            parts.push("a signed-in caller".to_owned());
        }
        for any_of in &self.scopes {
            let alternatives: Vec<String> = any_of
                .iter()
                .map(|all_of| {
                    let names: Vec<String> = all_of.iter().map(|s| format!("`{s}`")).collect();
                    match names.len() {
                        0 => "a signed-in caller".to_owned(),
                        1 => format!("the scope {}", names[0]),
                        _ => format!("the scopes {}", names.join(" and ")),
                    }
                })
                .collect();
            parts.push(alternatives.join(", or "));
        }
        (!parts.is_empty()).then(|| format!("Requires {}.", parts.join("; and ")))
    }

    fn is_empty(&self) -> bool {
        !self.authenticated && self.scopes.is_empty()
    }

    fn merge(&mut self, other: &Requirement) {
        self.authenticated |= other.authenticated;
        self.scopes.extend(other.scopes.iter().cloned());
    }

    fn allows(&self, caller: &Caller) -> Result<(), Denial> {
        if (self.authenticated || !self.scopes.is_empty()) && !caller.authenticated {
            return Err(Denial::Unauthenticated);
        }
        for alternatives in &self.scopes {
            let satisfied =
                alternatives.iter().any(|all| all.iter().all(|scope| caller.scopes.contains(scope.as_str())));
            if !satisfied {
                return Err(Denial::MissingScopes);
            }
        }
        Ok(())
    }
}

/// Who is asking: authenticated or not, and with which scopes.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub authenticated: bool,
    pub scopes: HashSet<String>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn with_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Self {
        Self { authenticated: true, scopes: scopes.into_iter().map(str::to_owned).collect() }
    }
}

/// Why a selection was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The selection needs an authenticated caller.
    Unauthenticated,
    /// The caller lacks the scopes the selection needs.
    MissingScopes,
}

/// A removed field and where it would have been in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedField {
    /// Response keys (aliases where given) from the root; list positions are
    /// not part of it, the field is null in every list item.
    pub path: Vec<String>,
    pub denial: Denial,
    /// Whether the field's `null` propagates, by the non-null rules, all the
    /// way up to its root field, which then answers `null` too. A mutation
    /// whose root field is known to answer `null` is better not run: its
    /// effect (a session started, say) would never reach the caller.
    pub nulls_root_field: bool,
}

/// The result of [`authorize`].
#[derive(Debug, Clone)]
pub struct GuardOutcome {
    /// The operation to plan: `None` when nothing was removed (plan the
    /// original), otherwise a single-operation document without fragments.
    pub filtered: Option<query::Document>,
    pub denied: Vec<DeniedField>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("the operation was not found in the document")]
    UnknownOperation,
    #[error("the operation expands to more than {MAX_INLINED_SELECTIONS} selections")]
    TooLarge,
}

/// How a field's type passes a `null` on. `outer`: the field itself is
/// non-null, so a `null` in it makes its parent object `null`. `through`:
/// every level of its type is non-null (`[T!]!`), so a `null` object inside it
/// makes it, and then its parent object, `null`.
#[derive(Debug, Clone, Copy, Default)]
struct Nullness {
    outer: bool,
    through: bool,
}

impl Nullness {
    fn of(t: &schema::Type) -> Self {
        fn all_non_null(t: &schema::Type) -> bool {
            match t {
                schema::Type::NonNullType(inner) => match inner.as_ref() {
                    schema::Type::ListType(item) => all_non_null(item),
                    _ => true,
                },
                _ => false,
            }
        }
        Self { outer: matches!(t, schema::Type::NonNullType(_)), through: all_non_null(t) }
    }
}

/// Guard directives of one supergraph, indexed for lookups during requests.
#[derive(Debug, Clone, Default)]
pub struct GuardIndex {
    types: HashMap<String, Requirement>,
    fields: HashMap<(String, String), Requirement>,
    /// Named return type of every field, for type-level requirements.
    field_types: HashMap<(String, String), String>,
    /// How a `null` moves through each field (see [`Nullness`]).
    nullness: HashMap<(String, String), Nullness>,
    /// Interfaces and unions to the object types that may stand for them.
    possible_types: HashMap<String, Vec<String>>,
    query_type: String,
    mutation_type: String,
    subscription_type: String,
}

impl GuardIndex {
    /// Reads the guards of a supergraph (or any schema that declares them).
    pub fn from_schema(document: &schema::Document) -> Self {
        use schema::{Definition, TypeDefinition};
        let (authenticated, requires_scopes) = directive_names(document);
        let mut index = GuardIndex {
            query_type: "Query".into(),
            mutation_type: "Mutation".into(),
            subscription_type: "Subscription".into(),
            ..Default::default()
        };
        let requirement = |directives: &[schema::Directive]| -> Requirement {
            let mut r = Requirement::default();
            for d in directives {
                if d.name == authenticated {
                    r.authenticated = true;
                } else if d.name == requires_scopes {
                    r.scopes.push(scopes_argument(d));
                }
            }
            r
        };
        for definition in &document.definitions {
            match definition {
                Definition::SchemaDefinition(s) => {
                    if let Some(q) = &s.query {
                        index.query_type = q.clone();
                    }
                    if let Some(m) = &s.mutation {
                        index.mutation_type = m.clone();
                    }
                    if let Some(m) = &s.subscription {
                        index.subscription_type = m.clone();
                    }
                }
                Definition::TypeDefinition(t) => {
                    let (name, directives, fields): (&str, &[schema::Directive], &[schema::Field]) = match t {
                        TypeDefinition::Object(o) => {
                            for interface in &o.implements_interfaces {
                                index.possible_types.entry(interface.clone()).or_default().push(o.name.clone());
                            }
                            (&o.name, &o.directives, &o.fields)
                        }
                        TypeDefinition::Interface(i) => (&i.name, &i.directives, &i.fields),
                        TypeDefinition::Scalar(s) => (&s.name, &s.directives, &[]),
                        TypeDefinition::Enum(e) => (&e.name, &e.directives, &[]),
                        TypeDefinition::Union(u) => {
                            index.possible_types.insert(u.name.clone(), u.types.clone());
                            (&u.name, &u.directives, &[])
                        }
                        TypeDefinition::InputObject(i) => (&i.name, &i.directives, &[]),
                    };
                    let type_requirement = requirement(directives);
                    if !type_requirement.is_empty() {
                        index.types.insert(name.to_owned(), type_requirement);
                    }
                    for field in fields {
                        let key = (name.to_owned(), field.name.clone());
                        index.field_types.insert(key.clone(), named_type(&field.field_type).to_owned());
                        index.nullness.insert(key.clone(), Nullness::of(&field.field_type));
                        let field_requirement = requirement(&field.directives);
                        if !field_requirement.is_empty() {
                            index.fields.insert(key, field_requirement);
                        }
                    }
                }
                _ => {}
            }
        }
        index
    }

    /// True when the supergraph declares no guard at all (the check is skipped).
    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.fields.is_empty()
    }

    /// What selecting `field` on `parent` demands: the field's own guards, its
    /// return type's, and, on an abstract parent, those of the same field on
    /// every possible type (the field may be resolved by any of them).
    fn field_requirement(&self, parent: &str, field: &str) -> Requirement {
        let mut r = Requirement::default();
        let mut add = |type_name: &str| {
            let key = (type_name.to_owned(), field.to_owned());
            if let Some(own) = self.fields.get(&key) {
                r.merge(own);
            }
            if let Some(returned) = self.field_types.get(&key).and_then(|t| self.types.get(t)) {
                r.merge(returned);
            }
        };
        add(parent);
        if let Some(possible) = self.possible_types.get(parent) {
            for object in possible {
                add(object);
            }
        }
        // A guard on the parent type guards every field selected on it.
        if let Some(own) = self.types.get(parent) {
            r.merge(own);
        }
        r
    }

    /// What selecting `field` on `parent` requires, in words (see
    /// [`Requirement::describe`]); `None` when it is open to everyone.
    pub fn describe_field(&self, parent: &str, field: &str) -> Option<String> {
        self.field_requirement(parent, field).describe()
    }

    fn field_type(&self, parent: &str, field: &str) -> Option<&str> {
        self.field_types.get(&(parent.to_owned(), field.to_owned())).map(String::as_str)
    }

    fn nullness(&self, parent: &str, field: &str) -> Nullness {
        self.nullness.get(&(parent.to_owned(), field.to_owned())).copied().unwrap_or_default()
    }
}

fn directive_names(document: &schema::Document) -> (String, String) {
    let mut authenticated = "authenticated".to_owned();
    let mut requires_scopes = "requiresScopes".to_owned();
    for definition in &document.definitions {
        let schema::Definition::SchemaDefinition(s) = definition else { continue };
        for link in s.directives.iter().filter(|d| d.name == "link") {
            let arg = |name: &str| {
                link.arguments.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
                    schema::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
            };
            let (Some(url), alias) = (arg("url"), arg("as")) else { continue };
            if url.contains(AUTHENTICATED_SPEC) {
                authenticated = alias.unwrap_or_else(|| "authenticated".into());
            } else if url.contains(REQUIRES_SCOPES_SPEC) {
                requires_scopes = alias.unwrap_or_else(|| "requiresScopes".into());
            }
        }
    }
    (authenticated, requires_scopes)
}

fn scopes_argument(directive: &schema::Directive) -> Vec<Vec<String>> {
    let Some((_, schema::Value::List(outer))) = directive.arguments.iter().find(|(n, _)| n == "scopes") else {
        return vec![Vec::new()];
    };
    outer
        .iter()
        .map(|inner| match inner {
            schema::Value::List(items) => items
                .iter()
                .filter_map(|v| match v {
                    schema::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            schema::Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        })
        .collect()
}

fn named_type(t: &schema::Type) -> &str {
    match t {
        schema::Type::NamedType(name) => name,
        schema::Type::ListType(inner) | schema::Type::NonNullType(inner) => named_type(inner),
    }
}

/// Removes what `caller` may not select from the chosen operation.
pub fn authorize(
    index: &GuardIndex,
    document: &query::Document,
    operation_name: Option<&str>,
    caller: &Caller,
) -> Result<GuardOutcome, GuardError> {
    use query::{Definition, OperationDefinition};
    let operations: Vec<&OperationDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(op) => Some(op),
            Definition::Fragment(_) => None,
        })
        .collect();
    let operation = match operation_name {
        Some(name) => operations.iter().find(|op| operation_name_of(op) == Some(name)),
        None if operations.len() == 1 => operations.first(),
        None => None,
    }
    .copied()
    .ok_or(GuardError::UnknownOperation)?;

    if index.is_empty() {
        return Ok(GuardOutcome { filtered: None, denied: Vec::new() });
    }
    let fragments: HashMap<&str, &query::FragmentDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some((f.name.as_str(), f)),
            Definition::Operation(_) => None,
        })
        .collect();
    let root_type = match operation {
        OperationDefinition::Query(_) | OperationDefinition::SelectionSet(_) => index.query_type.as_str(),
        OperationDefinition::Mutation(_) => index.mutation_type.as_str(),
        OperationDefinition::Subscription(_) => index.subscription_type.as_str(),
    };
    let mut walker =
        Walker { index, caller, fragments, budget: MAX_INLINED_SELECTIONS, denied: Vec::new(), through: Vec::new() };
    let mut path = Vec::new();
    let mut selection_set = walker.filter(selection_set_of(operation), root_type, &mut path, &mut Vec::new())?;
    if walker.denied.is_empty() {
        return Ok(GuardOutcome { filtered: None, denied: Vec::new() });
    }
    if selection_set.items.is_empty() {
        // Every root field was denied: `__typename` keeps the operation valid
        // and needs no subgraph.
        selection_set.items.push(typename_selection(selection_set.span.0));
    }
    let mut filtered_operation = operation.clone();
    *selection_set_mut(&mut filtered_operation) = selection_set;
    let filtered = query::Document { definitions: vec![Definition::Operation(filtered_operation)] };
    Ok(GuardOutcome { filtered: Some(filtered), denied: walker.denied })
}

fn operation_name_of(op: &query::OperationDefinition) -> Option<&str> {
    match op {
        query::OperationDefinition::Query(q) => q.name.as_deref(),
        query::OperationDefinition::Mutation(m) => m.name.as_deref(),
        query::OperationDefinition::Subscription(s) => s.name.as_deref(),
        query::OperationDefinition::SelectionSet(_) => None,
    }
}

fn selection_set_of(op: &query::OperationDefinition) -> &query::SelectionSet {
    match op {
        query::OperationDefinition::Query(q) => &q.selection_set,
        query::OperationDefinition::Mutation(m) => &m.selection_set,
        query::OperationDefinition::Subscription(s) => &s.selection_set,
        query::OperationDefinition::SelectionSet(s) => s,
    }
}

fn selection_set_mut(op: &mut query::OperationDefinition) -> &mut query::SelectionSet {
    match op {
        query::OperationDefinition::Query(q) => &mut q.selection_set,
        query::OperationDefinition::Mutation(m) => &mut m.selection_set,
        query::OperationDefinition::Subscription(s) => &mut s.selection_set,
        query::OperationDefinition::SelectionSet(s) => s,
    }
}

struct Walker<'a> {
    index: &'a GuardIndex,
    caller: &'a Caller,
    fragments: HashMap<&'a str, &'a query::FragmentDefinition>,
    budget: usize,
    denied: Vec<DeniedField>,
    /// For each field on the current path: whether a `null` object inside it
    /// makes its parent `null` too ([`Nullness::through`]).
    through: Vec<bool>,
}

impl Walker<'_> {
    /// A field at `path` (its own key last) on `parent` is denied.
    fn deny(&mut self, path: Vec<String>, parent: &str, field: &str, denial: Denial) {
        // The root field itself is removed from the plan and never runs; a
        // deeper one nulls the root field when every field between passes
        // the null on.
        let nulls_root_field = path.len() >= 2
            && self.index.nullness(parent, field).outer
            && self.through.iter().skip(1).all(|through| *through);
        self.denied.push(DeniedField { path, denial, nulls_root_field });
    }
}

impl Walker<'_> {
    /// Returns `set` with fragments inlined and denied selections removed.
    /// `spreading` holds the fragments being expanded (validation already
    /// refused cycles; this keeps a hostile document from looping anyway).
    fn filter(
        &mut self,
        set: &query::SelectionSet,
        parent: &str,
        path: &mut Vec<String>,
        spreading: &mut Vec<String>,
    ) -> Result<query::SelectionSet, GuardError> {
        let mut items = Vec::with_capacity(set.items.len());
        for selection in &set.items {
            self.budget = self.budget.checked_sub(1).ok_or(GuardError::TooLarge)?;
            match selection {
                query::Selection::Field(field) => {
                    let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
                    if field.name.starts_with("__") {
                        items.push(selection.clone());
                        continue;
                    }
                    let requirement = self.index.field_requirement(parent, &field.name);
                    path.push(key);
                    if let Err(denial) = requirement.allows(self.caller) {
                        self.deny(path.clone(), parent, &field.name, denial);
                        path.pop();
                        continue;
                    }
                    let mut kept = field.clone();
                    if !field.selection_set.items.is_empty() {
                        let child = self.index.field_type(parent, &field.name).unwrap_or(parent).to_owned();
                        self.through.push(self.index.nullness(parent, &field.name).through);
                        let filtered = self.filter(&field.selection_set, &child, path, spreading);
                        self.through.pop();
                        kept.selection_set = filtered?;
                        if kept.selection_set.items.is_empty() {
                            // Every sub-selection was denied: keep the field so the
                            // response still has its object, selecting only its type name.
                            kept.selection_set.items.push(typename_selection(field.position));
                        }
                    }
                    path.pop();
                    items.push(query::Selection::Field(kept));
                }
                query::Selection::InlineFragment(fragment) => {
                    let condition = match &fragment.type_condition {
                        Some(query::TypeCondition::On(t)) => t.as_str(),
                        None => parent,
                    };
                    if let Some(inline) = self.inline(
                        condition,
                        &fragment.directives,
                        &fragment.selection_set,
                        fragment.position,
                        path,
                        spreading,
                    )? {
                        let mut kept = fragment.clone();
                        kept.selection_set = inline.selection_set;
                        items.push(query::Selection::InlineFragment(kept));
                    }
                }
                query::Selection::FragmentSpread(spread) => {
                    let Some(definition) = self.fragments.get(spread.fragment_name.as_str()).copied() else {
                        // Validation rejects unknown fragments; nothing to inline here.
                        continue;
                    };
                    if spreading.iter().any(|f| f == &spread.fragment_name) {
                        continue;
                    }
                    spreading.push(spread.fragment_name.clone());
                    let query::TypeCondition::On(condition) = &definition.type_condition;
                    let inline = self.inline(
                        condition,
                        &spread.directives,
                        &definition.selection_set,
                        spread.position,
                        path,
                        spreading,
                    )?;
                    spreading.pop();
                    if let Some(inline) = inline {
                        items.push(query::Selection::InlineFragment(inline));
                    }
                }
            }
        }
        Ok(query::SelectionSet { span: set.span, items })
    }

    /// A fragment on `condition`: denied as a whole when its type is guarded.
    fn inline(
        &mut self,
        condition: &str,
        directives: &[query::Directive],
        set: &query::SelectionSet,
        position: graphql_tools::parser::Pos,
        path: &mut Vec<String>,
        spreading: &mut Vec<String>,
    ) -> Result<Option<query::InlineFragment>, GuardError> {
        if let Some(requirement) = self.index.types.get(condition) {
            if let Err(denial) = requirement.allows(self.caller) {
                // Every field the fragment selects is denied at its own path.
                for selection in &set.items {
                    if let query::Selection::Field(field) = selection {
                        let mut denied_path = path.clone();
                        denied_path.push(field.alias.clone().unwrap_or_else(|| field.name.clone()));
                        self.deny(denied_path, condition, &field.name, denial);
                    }
                }
                return Ok(None);
            }
        }
        let selection_set = self.filter(set, condition, path, spreading)?;
        if selection_set.items.is_empty() {
            return Ok(None);
        }
        Ok(Some(query::InlineFragment {
            position,
            type_condition: Some(query::TypeCondition::On(condition.to_owned())),
            directives: directives.to_vec(),
            selection_set,
        }))
    }
}

fn typename_selection(position: graphql_tools::parser::Pos) -> query::Selection {
    query::Selection::Field(query::Field {
        position,
        alias: None,
        name: "__typename".into(),
        arguments: Vec::new(),
        directives: Vec::new(),
        selection_set: query::SelectionSet { span: (position, position), items: Vec::new() },
    })
}
