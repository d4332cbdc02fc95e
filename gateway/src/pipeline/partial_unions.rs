//! Stage 5, after planning: union members the planner narrowed away.
//!
//! The same union may have different members in different subgraphs (`a`:
//! `Common | OnlyA`, `b`: `Common | OnlyB`). When a field returning it could
//! be reached through more than one subgraph, the pinned planner keeps only
//! the members every candidate subgraph shares, even when the fetch it
//! finally plans goes to one subgraph that knows more. A member only that
//! subgraph knows then comes back as a bare `{ __typename }`, without the
//! fields the client selected on it.
//!
//! This pass puts such a fragment back into a fetch when all of these hold:
//!
//! - the client selected `... on T` below the union field the fetch selects;
//! - the fetch has no `... on T` there;
//! - `T` is a member of the union in the fetch's own subgraph;
//! - everything the client selected on `T`, at any depth, resolves in that
//!   subgraph itself: no `@requires`, external, overridden or other
//!   subgraphs' fields, no type or member that subgraph does not have;
//! - its fields can sit beside the other members' fields in that subgraph:
//!   a response key they share is a leaf of the same type there (where the
//!   planner aliased a field to keep to that rule, nothing is added).
//!
//! So nothing it adds needs a fetch of its own, and nothing it adds reaches a
//! subgraph that cannot answer it. The variables of an added fragment are
//! declared on the fetch and passed with it. A member whose selection needs
//! another subgraph (an entity hop) is left as the planner narrowed it: this
//! pass edits fetches, it does not plan new ones.

use std::collections::{BTreeSet, HashSet};

use hive_router_query_planner::ast::minification::minify_operation;
use hive_router_query_planner::ast::operation::{OperationDefinition, SubgraphFetchOperation};
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, InlineFragmentSelection, SelectionSet};
use hive_router_query_planner::planner::plan_nodes::{FlattenNodePath, FlattenNodePathSegment, PlanNode, QueryPlan};
use hive_router_query_planner::state::supergraph_state::{
    SupergraphDefinition, SupergraphField, SupergraphState, TypeNode,
};

/// Restores narrowed-away union members in every fetch of `plan`, which was
/// planned from `operation`. Returns how many fetches changed.
pub fn restore(plan: &mut QueryPlan, operation: &OperationDefinition, supergraph: &SupergraphState) -> usize {
    let Some(node) = plan.node.as_mut() else {
        return 0;
    };
    let Ok(root) = supergraph.root_type_name(operation.operation_kind.as_ref()) else {
        return 0;
    };
    let pass = Pass { supergraph, operation, root: Scope { ty: root, set: &operation.selection_set } };
    pass.node(node, None)
}

/// A selection set of the client's operation and the type its items apply to.
#[derive(Clone, Copy)]
struct Scope<'a> {
    ty: &'a str,
    set: &'a SelectionSet,
}

/// Where in a fetch's operation the pass looks.
enum At<'a> {
    /// A root fetch: its whole selection, beside the client's root.
    Root,
    /// An entity fetch: its `_entities` selection, beside the client's
    /// selections at the fetch's flatten path.
    Entities(Vec<Scope<'a>>),
    /// A batch of entity fetches: each `_entities` alias, beside the
    /// client's selections at that alias's paths.
    Batch(Vec<(String, Vec<Scope<'a>>)>),
}

struct Pass<'a> {
    supergraph: &'a SupergraphState,
    operation: &'a OperationDefinition,
    root: Scope<'a>,
}

impl<'a> Pass<'a> {
    fn node(&self, node: &mut PlanNode, path: Option<&FlattenNodePath>) -> usize {
        match node {
            PlanNode::Fetch(fetch) => {
                let at = match path {
                    None => At::Root,
                    Some(path) => At::Entities(self.scopes_at(path.as_slice())),
                };
                self.fetch(&fetch.service_name, &mut fetch.operation, &mut fetch.variable_usages, at)
            }
            PlanNode::BatchFetch(batch) => {
                let aliases = batch
                    .entity_batch
                    .aliases
                    .iter()
                    .map(|alias| {
                        let scopes = alias.merge_paths.iter().flat_map(|p| self.scopes_at(p.as_slice())).collect();
                        (alias.alias.clone(), scopes)
                    })
                    .collect();
                self.fetch(&batch.service_name, &mut batch.operation, &mut batch.variable_usages, At::Batch(aliases))
            }
            PlanNode::Sequence(sequence) => sequence.nodes.iter_mut().map(|n| self.node(n, None)).sum(),
            PlanNode::Parallel(parallel) => parallel.nodes.iter_mut().map(|n| self.node(n, None)).sum(),
            PlanNode::Flatten(flatten) => self.node(&mut flatten.node, Some(&flatten.path)),
            PlanNode::Condition(condition) => {
                let branches = [condition.if_clause.as_deref_mut(), condition.else_clause.as_deref_mut()];
                branches.into_iter().flatten().map(|n| self.node(n, None)).sum()
            }
            PlanNode::Subscription(_) | PlanNode::Defer(_) => 0,
        }
    }

    /// Edits one fetch's operation where `at` says, and writes it back
    /// (minified, as the planner writes it) only if anything changed.
    fn fetch(
        &self,
        service: &str,
        fetch: &mut SubgraphFetchOperation,
        usages: &mut Option<BTreeSet<String>>,
        at: At<'a>,
    ) -> usize {
        let Some(graph) = self.graph_id(service) else {
            return 0;
        };
        let mut operation = fetch.document.operation.clone();
        match operation.selection_set.inline_fragment_spreads(&fetch.document.fragments) {
            Ok(inlined) => operation.selection_set = inlined,
            Err(_) => return 0,
        }
        let mut variables = BTreeSet::new();
        let mut changed = false;
        match at {
            At::Root => {
                let root = [self.root];
                changed = self.repair(&mut operation.selection_set, self.root.ty, &root, graph, &mut variables);
            }
            At::Entities(scopes) => {
                if let Some(entities) = entities_field(&mut operation.selection_set, None) {
                    changed = self.repair(&mut entities.selections, "_Entity", &scopes, graph, &mut variables);
                }
            }
            At::Batch(aliases) => {
                for (alias, scopes) in aliases {
                    if let Some(entities) = entities_field(&mut operation.selection_set, Some(&alias)) {
                        changed |= self.repair(&mut entities.selections, "_Entity", &scopes, graph, &mut variables);
                    }
                }
            }
        }
        if !changed {
            return 0;
        }
        self.declare(&mut operation, &variables);
        match minify_operation(operation, self.supergraph) {
            Ok(document) => {
                *fetch = SubgraphFetchOperation::from_anonymous_operation(document);
                if !variables.is_empty() {
                    usages.get_or_insert_with(BTreeSet::new).extend(variables);
                }
                1
            }
            Err(error) => {
                tracing::warn!(%error, service, "a fetch with restored union members did not minify; kept as planned");
                0
            }
        }
    }

    /// Walks `set` (selecting on `ty`) beside the client's `scopes`, adding
    /// the union members that may be restored below each union field.
    fn repair(
        &self,
        set: &mut SelectionSet,
        ty: &str,
        scopes: &[Scope<'a>],
        graph: &str,
        variables: &mut BTreeSet<String>,
    ) -> bool {
        let mut changed = false;
        for item in &mut set.items {
            match item {
                SelectionItem::Field(field) if !field.selections.is_empty() => {
                    let Some(child_ty) = self.field_type(ty, &field.name) else { continue };
                    let key = field.selection_identifier().to_owned();
                    let mut inner = Vec::new();
                    for scope in scopes {
                        self.fields_at(*scope, &key, Some(&field.name), Some(ty), &mut inner);
                    }
                    if inner.is_empty() {
                        continue;
                    }
                    changed |= self.repair(&mut field.selections, child_ty, &inner, graph, variables);
                    if matches!(self.supergraph.definitions.get(child_ty), Some(SupergraphDefinition::Union(_))) {
                        changed |= self.add_members(&mut field.selections, child_ty, &inner, graph, variables);
                    }
                }
                SelectionItem::InlineFragment(fragment) => {
                    let Some(fragment_ty) = self.type_name(&fragment.type_condition) else { continue };
                    let inner: Vec<Scope<'a>> =
                        scopes.iter().copied().filter(|s| self.overlaps(s.ty, fragment_ty)).collect();
                    changed |= self.repair(&mut fragment.selections, fragment_ty, &inner, graph, variables);
                }
                _ => {}
            }
        }
        changed
    }

    /// Adds below the union field `union` (selection `set`) each client
    /// fragment on a member that may be restored.
    fn add_members(
        &self,
        set: &mut SelectionSet,
        union: &str,
        scopes: &[Scope<'a>],
        graph: &str,
        variables: &mut BTreeSet<String>,
    ) -> bool {
        // Members the fetch already selects, however the planner nested them.
        let mut present = HashSet::new();
        fragment_types(set, &mut present);
        // The fields the fetch selects below the union, by response key.
        let mut selected = Vec::new();
        response_keys(set, union, &mut selected);
        let mut wanted: Vec<&InlineFragmentSelection> = Vec::new();
        for scope in scopes {
            self.member_fragments(scope.set, &mut wanted);
        }
        let mut seen = HashSet::new();
        let mut added = Vec::new();
        for fragment in wanted {
            let member = fragment.type_condition.as_str();
            let mut keys = Vec::new();
            response_keys(&fragment.selections, member, &mut keys);
            let restorable = !present.contains(member)
                && self.is_member_in(member, union, graph)
                && selects_more_than_typename(&fragment.selections)
                && self.resolves_locally(&fragment.selections, member, graph)
                && keys.iter().all(|key| self.merges_with(key, &selected, graph));
            if restorable && seen.insert(fragment.to_string()) {
                variables.extend(fragment.variable_usages());
                selected.extend(keys);
                added.push(SelectionItem::InlineFragment(fragment.clone()));
            }
        }
        let changed = !added.is_empty();
        set.items.extend(added);
        changed
    }

    /// Whether `field` can sit beside the fields already `selected` under a
    /// union without breaking the rule that fields sharing a response key
    /// have the same shape: where the planner aliased a field for that rule,
    /// an added fragment must not bring the clash back. Only a leaf of the
    /// same type in `graph` may share a key with another member's field.
    fn merges_with(&self, field: &SelectedField<'_>, selected: &[SelectedField<'_>], graph: &str) -> bool {
        selected.iter().filter(|other| other.key == field.key).all(|other| {
            let (Some(a), Some(b)) = (self.type_in(field, graph), self.type_in(other, graph)) else {
                return false;
            };
            a == b && self.is_leaf(a.inner_type())
        })
    }

    /// The type of a selected field as `graph` declares it.
    fn type_in(&self, field: &SelectedField<'_>, graph: &str) -> Option<&'a TypeNode> {
        let definition = self.supergraph.definitions.get(field.owner)?.fields().get(field.name)?;
        let in_graph = definition.join_field.iter().find(|j| j.graph_id.as_deref() == Some(graph));
        Some(in_graph.and_then(|j| j.type_in_graph.as_ref()).unwrap_or(&definition.field_type))
    }

    fn is_leaf(&self, ty: &str) -> bool {
        self.supergraph.is_scalar_type(ty)
            || matches!(self.supergraph.definitions.get(ty), Some(SupergraphDefinition::Enum(_)))
    }

    /// The client's fragments on object types directly below a union field,
    /// looking through unconditional fragments on abstract types.
    fn member_fragments<'s>(&self, set: &'s SelectionSet, out: &mut Vec<&'s InlineFragmentSelection>) {
        for item in &set.items {
            let SelectionItem::InlineFragment(fragment) = item else { continue };
            match self.supergraph.definitions.get(&fragment.type_condition) {
                Some(SupergraphDefinition::Object(_)) => out.push(fragment),
                Some(SupergraphDefinition::Union(_) | SupergraphDefinition::Interface(_))
                    if fragment.skip_if.is_none() && fragment.include_if.is_none() =>
                {
                    self.member_fragments(&fragment.selections, out)
                }
                _ => {}
            }
        }
    }

    /// Whether everything `set` selects on `ty` resolves in `graph` alone.
    fn resolves_locally(&self, set: &SelectionSet, ty: &str, graph: &str) -> bool {
        let Some(definition) = self.supergraph.definitions.get(ty) else {
            return false;
        };
        if !definition.is_defined_in_subgraph(graph) {
            return false;
        }
        set.items.iter().all(|item| match item {
            SelectionItem::Field(field) if field.name == "__typename" => true,
            SelectionItem::Field(field) => definition.fields().get(&field.name).is_some_and(|definition_field| {
                resolves_in(definition_field, definition, graph)
                    && (field.selections.is_empty()
                        || self.resolves_locally(&field.selections, definition_field.field_type.inner_type(), graph))
            }),
            SelectionItem::InlineFragment(fragment) => {
                let inner = fragment.type_condition.as_str();
                (inner == ty || self.is_member_in(inner, ty, graph))
                    && self.resolves_locally(&fragment.selections, inner, graph)
            }
            SelectionItem::FragmentSpread(_) => false,
        })
    }

    /// Whether `member` belongs to the abstract type `parent` in `graph`.
    fn is_member_in(&self, member: &str, parent: &str, graph: &str) -> bool {
        match self.supergraph.definitions.get(parent) {
            Some(SupergraphDefinition::Union(union)) => {
                union.union_members.iter().any(|m| m.graph == graph && m.member == member)
            }
            Some(SupergraphDefinition::Interface(_)) => self
                .supergraph
                .definitions
                .get(member)
                .is_some_and(|d| d.join_implements().iter().any(|j| j.graph_id == graph && j.interface == parent)),
            _ => false,
        }
    }

    /// The client's selection sets below the fields of `scope` answering to
    /// response key `key` (and named `name`), looking into the fragments
    /// that may apply to `within`.
    fn fields_at(
        &self,
        scope: Scope<'a>,
        key: &str,
        name: Option<&str>,
        within: Option<&str>,
        out: &mut Vec<Scope<'a>>,
    ) {
        for item in &scope.set.items {
            match item {
                SelectionItem::Field(field)
                    if field.selection_identifier() == key && name.is_none_or(|n| n == field.name) =>
                {
                    if let Some(ty) = self.field_type(scope.ty, &field.name) {
                        out.push(Scope { ty, set: &field.selections });
                    }
                }
                SelectionItem::InlineFragment(fragment)
                    if within.is_none_or(|w| self.overlaps(&fragment.type_condition, w)) =>
                {
                    let Some(ty) = self.type_name(&fragment.type_condition) else { continue };
                    self.fields_at(Scope { ty, set: &fragment.selections }, key, name, within, out);
                }
                _ => {}
            }
        }
    }

    /// The client's selection sets at a flatten path (`a.@.b|[T]`).
    fn scopes_at(&self, path: &[FlattenNodePathSegment]) -> Vec<Scope<'a>> {
        let mut scopes = vec![self.root];
        for segment in path {
            match segment {
                FlattenNodePathSegment::Field(key) => {
                    let mut next = Vec::new();
                    for scope in &scopes {
                        self.fields_at(*scope, key, None, None, &mut next);
                    }
                    scopes = next;
                }
                FlattenNodePathSegment::List => {}
                FlattenNodePathSegment::TypeCondition(types) => {
                    scopes.retain(|scope| types.iter().any(|t| self.overlaps(scope.ty, t)));
                }
            }
        }
        scopes
    }

    /// Declares on `operation` the client's definitions of `variables` it
    /// does not declare yet.
    fn declare(&self, operation: &mut OperationDefinition, variables: &BTreeSet<String>) {
        if variables.is_empty() {
            return;
        }
        let client = self.operation.variable_definitions.as_deref().unwrap_or_default();
        let declared = operation.variable_definitions.get_or_insert_with(Vec::new);
        for name in variables {
            if declared.iter().any(|d| &d.name == name) {
                continue;
            }
            if let Some(definition) = client.iter().find(|d| &d.name == name) {
                declared.push(definition.clone());
            }
        }
    }

    /// Whether some object type is both `a` and `b`.
    fn overlaps(&self, a: &str, b: &str) -> bool {
        a == b || {
            let of_b = self.possible_types(b);
            self.possible_types(a).iter().any(|t| of_b.contains(t))
        }
    }

    fn possible_types(&self, ty: &str) -> Vec<&'a str> {
        match self.supergraph.definitions.get(ty) {
            Some(SupergraphDefinition::Object(object)) => vec![object.name.as_str()],
            Some(SupergraphDefinition::Union(union)) => union.types.iter().map(String::as_str).collect(),
            Some(SupergraphDefinition::Interface(_)) => self
                .supergraph
                .interface_to_object_types
                .get(ty)
                .map(|types| types.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// `ty` as the supergraph spells it, borrowed from the supergraph.
    fn type_name(&self, ty: &str) -> Option<&'a str> {
        self.supergraph.definitions.get(ty).map(SupergraphDefinition::name)
    }

    fn field_type(&self, ty: &str, field: &str) -> Option<&'a str> {
        let field = self.supergraph.definitions.get(ty)?.fields().get(field)?;
        self.type_name(field.field_type.inner_type())
    }

    /// The `join__Graph` id of the subgraph a fetch goes to.
    fn graph_id(&self, service: &str) -> Option<&'a str> {
        self.supergraph.known_subgraphs.iter().find(|(_, name)| name.as_str() == service).map(|(id, _)| id.as_str())
    }
}

/// Whether `field` of `owner` resolves in `graph` without another subgraph.
fn resolves_in(field: &SupergraphField, owner: &SupergraphDefinition, graph: &str) -> bool {
    let requires = field.join_field.iter().any(|j| j.graph_id.as_deref() == Some(graph) && j.requires.is_some());
    !requires && field.resolvable_in_graphs(owner).contains(graph)
}

/// A field selected below a union: its response key, and its name on the
/// type it is selected on.
struct SelectedField<'s> {
    key: &'s str,
    owner: &'s str,
    name: &'s str,
}

/// The fields `set` (selecting on `owner`) selects, at any fragment depth
/// but not below another field, `__typename` aside.
fn response_keys<'s>(set: &'s SelectionSet, owner: &'s str, out: &mut Vec<SelectedField<'s>>) {
    for item in &set.items {
        match item {
            SelectionItem::Field(field) if field.name != "__typename" => {
                out.push(SelectedField { key: field.selection_identifier(), owner, name: &field.name })
            }
            SelectionItem::InlineFragment(fragment) => {
                response_keys(&fragment.selections, &fragment.type_condition, out)
            }
            _ => {}
        }
    }
}

/// The type conditions of `set`'s fragments, nested ones included.
fn fragment_types<'s>(set: &'s SelectionSet, out: &mut HashSet<&'s str>) {
    for item in &set.items {
        if let SelectionItem::InlineFragment(fragment) = item {
            out.insert(&fragment.type_condition);
            fragment_types(&fragment.selections, out);
        }
    }
}

fn selects_more_than_typename(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| !matches!(item, SelectionItem::Field(f) if f.name == "__typename"))
}

/// The `_entities` field of an entity fetch (`alias` for a batch member).
fn entities_field<'s>(set: &'s mut SelectionSet, alias: Option<&str>) -> Option<&'s mut FieldSelection> {
    set.items.iter_mut().find_map(|item| match item {
        SelectionItem::Field(field) if field.name == "_entities" && field.alias.as_deref() == alias => Some(field),
        _ => None,
    })
}
