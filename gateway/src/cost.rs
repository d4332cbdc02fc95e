//! Demand control: what an operation is expected to cost before it runs, and
//! what it did cost once the response is known, from the supergraph's
//! `@cost` and `@listSize` directives (the IBM GraphQL Cost Directive
//! specification, as Apollo Router applies it to federated supergraphs).
//!
//! [`CostModel`] reads the directives once per supergraph into tables keyed by
//! type and field name, so scoring a request is a walk over the normalised
//! operation (and, for [`CostModel::actual`], over the response data) with hash
//! lookups, allocating only where a selection set has inline fragments.
//!
//! The rules:
//! - each object a field returns costs the field's weight (`@cost` on its
//!   definition, else `@cost` on its named return type, else 1 for objects,
//!   interfaces and unions) plus its selection; a scalar or enum field costs
//!   its weight (0 unless `@cost` says otherwise); root mutation fields weigh
//!   10 unless the field says otherwise; `__typename` and introspection
//!   (`__schema`, `__type`) are free;
//! - a list field returns as many objects as its size: the largest slicing
//!   argument given (literal, variable or the argument's default), else
//!   `assumedSize`, else the configured default list size. `sizedFields`
//!   hands that size to the named child lists instead;
//! - plus the `@cost` of every argument the operation supplies, and of every
//!   input field supplied inside input objects, at any depth, once per field;
//! - where inline fragments select by type, the most expensive concrete type
//!   counts, not the sum of all branches: one object is only ever one type.
//!
//! Costs are `f64` and saturate at `f64::MAX`: a hostile operation can ask for
//! more than any integer holds, and the answer must still compare as "too much".
//!
//! The actual cost counts the same way over the response: each object in a
//! list at the lists' real lengths, and every other field present in the
//! data (null or not) once.
//!
//! Where Apollo Router counts differently: it sums inline fragments rather
//! than taking the heaviest type, charges 10 once per mutation rather than
//! per root field, gives every input object argument a weight of 1, and
//! rejects an operation that breaks `requireOneSlicingArgument` (here the
//! largest value given counts).

use hashbrown::{HashMap, HashSet};

use graphql_tools::static_graphql::schema;
use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use hive_router_query_planner::ast::value::Value as AstValue;
use hive_router_query_planner::state::supergraph_state::OperationKind;
use serde_json::{Map, Value};

/// Where the cost directives come from in `@link(url:)`; any version.
const COST_SPEC: &str = "specs.apollo.dev/cost/";

/// The weight of a root mutation field without `@cost`: the specification's
/// default, since a mutation does work well beyond reading an object.
const MUTATION_WEIGHT: f64 = 10.0;

/// Nesting (selection sets, list levels, input objects) beyond which a walk
/// stops and answers `f64::MAX`. Operations are depth-limited far below this
/// upstream; the bound only keeps a pathological input from exhausting the
/// stack, and "too expensive" is the safe answer for it.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Interface,
    Union,
    Scalar,
    Enum,
    InputObject,
}

#[derive(Debug, Clone, Default)]
struct TypeInfo {
    /// `None` while only extensions of an undefined type were seen.
    kind: Option<Kind>,
    /// `@cost` on the type: the weight of fields returning it.
    cost: Option<f64>,
    fields: HashMap<String, FieldInfo>,
    input_fields: HashMap<String, InputInfo>,
    /// The object types a value of this type can be: itself for objects,
    /// members for unions, implementations for interfaces.
    possible: HashSet<String>,
}

#[derive(Debug, Clone)]
struct FieldInfo {
    /// The named type under any list and non-null wrappers.
    type_name: String,
    is_list: bool,
    /// `@cost` on the field definition itself (wins over every default).
    cost: Option<f64>,
    /// The field's own weight outside a mutation's root, defaults applied.
    weight: f64,
    list_size: Option<ListSize>,
    arguments: HashMap<String, InputInfo>,
}

/// An argument or input field.
#[derive(Debug, Clone)]
struct InputInfo {
    type_name: String,
    cost: Option<f64>,
    /// A numeric default, for slicing arguments the operation leaves out.
    default_size: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct ListSize {
    assumed_size: Option<f64>,
    /// Argument names, or dotted paths into input objects (`page.first`).
    slicing_arguments: Vec<String>,
    sized_fields: Vec<String>,
}

/// A response value [`CostModel::actual`] can read: serde_json's, or the
/// gateway's own response tree, walked where it is without a copy.
pub trait ResponseData: Sized {
    /// The value at `key`, when this is an object that has it.
    fn field(&self, key: &str) -> Option<&Self>;
    fn is_object(&self) -> bool;
    /// The items, when this is a list.
    fn items(&self) -> Option<&[Self]>;
    fn as_str(&self) -> Option<&str>;
}

impl ResponseData for Value {
    fn field(&self, key: &str) -> Option<&Self> {
        self.as_object()?.get(key)
    }

    fn is_object(&self) -> bool {
        self.is_object()
    }

    fn items(&self) -> Option<&[Self]> {
        self.as_array().map(Vec::as_slice)
    }

    fn as_str(&self) -> Option<&str> {
        self.as_str()
    }
}

impl ResponseData for crate::executor::tree::Node {
    fn field(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }

    fn is_object(&self) -> bool {
        self.as_object().is_some()
    }

    fn items(&self) -> Option<&[Self]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        self.as_str()
    }
}

/// The cost directives of one supergraph, ready to score operations.
#[derive(Debug, Clone)]
pub struct CostModel {
    types: HashMap<String, TypeInfo>,
    default_list_size: f64,
    uses_directives: bool,
}

impl CostModel {
    /// Reads `@cost` and `@listSize` (under the names the supergraph's
    /// `@link` gives them) from every type, field, argument and input field.
    /// `default_list_size` is the size assumed for lists that say nothing.
    pub fn from_supergraph(document: &schema::Document, default_list_size: u32) -> Self {
        let mut builder = Builder::new(document);
        for definition in &document.definitions {
            builder.definition(definition);
        }
        builder.finish(default_list_size)
    }

    /// True when the supergraph applies neither directive anywhere: costs are
    /// then the defaults alone, which a caller may choose not to compute.
    pub fn is_empty_of_directives(&self) -> bool {
        !self.uses_directives
    }

    /// The static estimate of `operation` (normalised by the planner) with
    /// these variables, its top-level selection read as fields of `root_type`.
    pub fn estimate(&self, operation: &OperationDefinition, root_type: &str, variables: &Map<String, Value>) -> f64 {
        let walker = Walker { model: self, operation, variables };
        let root_mutation = matches!(operation.operation_kind, Some(OperationKind::Mutation));
        clamp(walker.estimate_set(&operation.selection_set, root_type, None, root_mutation, 0))
    }

    /// The cost of what `operation` actually returned: the same weights over
    /// the response `data`, with the real length of every list. A field that
    /// came back `null` costs its own weight (it was resolved); a field absent
    /// from the data (not reached, or lost to an error) costs nothing.
    pub fn actual(
        &self,
        operation: &OperationDefinition,
        root_type: &str,
        variables: &Map<String, Value>,
        data: &impl ResponseData,
    ) -> f64 {
        if !data.is_object() {
            return 0.0;
        }
        let walker = Walker { model: self, operation, variables };
        let root_mutation = matches!(operation.operation_kind, Some(OperationKind::Mutation));
        clamp(walker.actual_set(&operation.selection_set, root_type, data, root_mutation, 0))
    }

    fn field(&self, parent: &str, name: &str) -> Option<&FieldInfo> {
        self.types.get(parent)?.fields.get(name)
    }

    /// Whether a fragment on `condition` applies to an object of type `concrete`.
    fn covers(&self, condition: &str, concrete: &str) -> bool {
        condition == concrete || self.types.get(condition).is_some_and(|t| t.possible.contains(concrete))
    }

    /// The object types a fragment on `condition` can match (itself when unknown).
    fn possible<'s>(&'s self, condition: &'s str) -> impl Iterator<Item = &'s str> {
        let set = self.types.get(condition).map(|t| &t.possible).filter(|p| !p.is_empty());
        let own = if set.is_none() { Some(condition) } else { None };
        set.into_iter().flatten().map(String::as_str).chain(own)
    }

    /// Combines the inline fragments of one selection set. With the object's
    /// type known, the fragments that apply to it add up; otherwise the most
    /// expensive type the parent can be is taken, since one object is one type.
    fn combine(&self, parent: &str, branches: &[Branch<'_>], concrete: Option<&str>) -> f64 {
        if branches.is_empty() {
            return 0.0;
        }
        // A fragment applies when it and every fragment around it match.
        let applies = |index: usize, candidate: &str| {
            let mut next = Some(index);
            while let Some(branch) = next.and_then(|i| branches.get(i)) {
                if !self.covers(branch.condition, candidate) {
                    return false;
                }
                next = branch.enclosing;
            }
            true
        };
        let for_type = |candidate: &str| {
            (0..branches.len())
                .filter(|&i| applies(i, candidate))
                .fold(0.0, |total, i| add(total, branches.get(i).map_or(0.0, |b| b.cost)))
        };
        if let Some(concrete) = concrete {
            return for_type(concrete);
        }
        let heaviest = |restrict: bool| {
            let mut seen = HashSet::new();
            let mut best: Option<f64> = None;
            for branch in branches {
                for candidate in self.possible(branch.condition) {
                    if !seen.insert(candidate) || (restrict && !self.covers(parent, candidate)) {
                        continue;
                    }
                    let total = for_type(candidate);
                    best = Some(best.map_or(total, |b| b.max(total)));
                }
            }
            best
        };
        // Only types the parent can be count; a parent the schema does not
        // know (or fragments that never apply) falls back to every branch type.
        heaviest(true).or_else(|| heaviest(false)).unwrap_or(0.0)
    }
}

/// Builds the tables; remembers whether any cost directive was seen.
struct Builder {
    cost_names: Vec<String>,
    list_size_names: Vec<String>,
    uses_directives: bool,
    types: HashMap<String, TypeInfo>,
    /// (object, interface) pairs, resolved into possible types at the end.
    implementations: Vec<(String, String)>,
}

/// One type definition or extension, reduced to what costs need.
struct TypeShape<'d> {
    name: &'d str,
    kind: Kind,
    directives: &'d [schema::Directive],
    fields: &'d [schema::Field],
    input_fields: &'d [schema::InputValue],
    members: &'d [String],
    interfaces: &'d [String],
}

impl<'d> TypeShape<'d> {
    fn new(name: &'d str, kind: Kind, directives: &'d [schema::Directive]) -> Self {
        Self { name, kind, directives, fields: &[], input_fields: &[], members: &[], interfaces: &[] }
    }
}

impl Builder {
    /// Finds the names the directives go by. With a `@link` to the cost spec,
    /// its imports (with their `as:` renames) and the namespaced forms
    /// (`@cost__cost`, or the link's own `as:` namespace) count; a plain
    /// `@cost` that was not imported is someone else's directive. Without such
    /// a link, the plain names and the default namespaced forms count.
    fn new(document: &schema::Document) -> Self {
        let mut cost_names = Vec::new();
        let mut list_size_names = Vec::new();
        let mut linked = false;
        for definition in &document.definitions {
            let schema::Definition::SchemaDefinition(definition) = definition else { continue };
            for link in definition.directives.iter().filter(|d| d.name == "link") {
                let Some(schema::Value::String(url)) = argument(link, "url") else { continue };
                if !url.contains(COST_SPEC) {
                    continue;
                }
                linked = true;
                let namespace = match argument(link, "as") {
                    Some(schema::Value::String(namespace)) => namespace.trim_start_matches('@'),
                    _ => "cost",
                };
                cost_names.push(format!("{namespace}__cost"));
                list_size_names.push(format!("{namespace}__listSize"));
                let Some(schema::Value::List(imports)) = argument(link, "import") else { continue };
                for import in imports {
                    let (name, alias) = match import {
                        schema::Value::String(name) => (name.as_str(), name.as_str()),
                        schema::Value::Object(fields) => {
                            let member = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                            let Some(schema::Value::String(name)) = member("name") else { continue };
                            match member("as") {
                                Some(schema::Value::String(alias)) => (name.as_str(), alias.as_str()),
                                _ => (name.as_str(), name.as_str()),
                            }
                        }
                        _ => continue,
                    };
                    let alias = alias.trim_start_matches('@').to_owned();
                    match name.trim_start_matches('@') {
                        "cost" => cost_names.push(alias),
                        "listSize" => list_size_names.push(alias),
                        _ => {}
                    }
                }
            }
        }
        if !linked {
            cost_names = vec!["cost".to_owned(), "cost__cost".to_owned()];
            list_size_names = vec!["listSize".to_owned(), "cost__listSize".to_owned()];
        }
        Self { cost_names, list_size_names, uses_directives: false, types: HashMap::new(), implementations: Vec::new() }
    }

    fn definition(&mut self, definition: &schema::Definition<'static, String>) {
        use schema::{Definition, TypeDefinition as D, TypeExtension as E};
        let shape = match definition {
            Definition::TypeDefinition(D::Object(t)) => TypeShape {
                fields: &t.fields,
                interfaces: &t.implements_interfaces,
                ..TypeShape::new(&t.name, Kind::Object, &t.directives)
            },
            Definition::TypeExtension(E::Object(t)) => TypeShape {
                fields: &t.fields,
                interfaces: &t.implements_interfaces,
                ..TypeShape::new(&t.name, Kind::Object, &t.directives)
            },
            Definition::TypeDefinition(D::Interface(t)) => {
                TypeShape { fields: &t.fields, ..TypeShape::new(&t.name, Kind::Interface, &t.directives) }
            }
            Definition::TypeExtension(E::Interface(t)) => {
                TypeShape { fields: &t.fields, ..TypeShape::new(&t.name, Kind::Interface, &t.directives) }
            }
            Definition::TypeDefinition(D::Union(t)) => {
                TypeShape { members: &t.types, ..TypeShape::new(&t.name, Kind::Union, &t.directives) }
            }
            Definition::TypeExtension(E::Union(t)) => {
                TypeShape { members: &t.types, ..TypeShape::new(&t.name, Kind::Union, &t.directives) }
            }
            Definition::TypeDefinition(D::Scalar(t)) => TypeShape::new(&t.name, Kind::Scalar, &t.directives),
            Definition::TypeExtension(E::Scalar(t)) => TypeShape::new(&t.name, Kind::Scalar, &t.directives),
            Definition::TypeDefinition(D::Enum(t)) => TypeShape::new(&t.name, Kind::Enum, &t.directives),
            Definition::TypeExtension(E::Enum(t)) => TypeShape::new(&t.name, Kind::Enum, &t.directives),
            Definition::TypeDefinition(D::InputObject(t)) => {
                TypeShape { input_fields: &t.fields, ..TypeShape::new(&t.name, Kind::InputObject, &t.directives) }
            }
            Definition::TypeExtension(E::InputObject(t)) => {
                TypeShape { input_fields: &t.fields, ..TypeShape::new(&t.name, Kind::InputObject, &t.directives) }
            }
            Definition::SchemaDefinition(_) | Definition::DirectiveDefinition(_) => return,
        };
        self.add(shape);
    }

    fn add(&mut self, shape: TypeShape<'_>) {
        let cost = self.cost(shape.directives);
        let fields: Vec<(String, FieldInfo)> = shape.fields.iter().map(|f| (f.name.clone(), self.field(f))).collect();
        let input_fields: Vec<(String, InputInfo)> =
            shape.input_fields.iter().map(|f| (f.name.clone(), self.input(f))).collect();
        for interface in shape.interfaces {
            self.implementations.push((shape.name.to_owned(), interface.clone()));
        }
        let info = self.types.entry(shape.name.to_owned()).or_default();
        info.kind.get_or_insert(shape.kind);
        if info.cost.is_none() {
            info.cost = cost;
        }
        for (name, field) in fields {
            info.fields.entry(name).or_insert(field);
        }
        for (name, field) in input_fields {
            info.input_fields.entry(name).or_insert(field);
        }
        info.possible.extend(shape.members.iter().cloned());
    }

    fn field(&mut self, field: &schema::Field) -> FieldInfo {
        let (type_name, is_list) = named_type(&field.field_type);
        FieldInfo {
            type_name: type_name.to_owned(),
            is_list,
            cost: self.cost(&field.directives),
            weight: 0.0,
            list_size: self.list_size(&field.directives),
            arguments: field.arguments.iter().map(|a| (a.name.clone(), self.input(a))).collect(),
        }
    }

    fn input(&mut self, value: &schema::InputValue) -> InputInfo {
        InputInfo {
            type_name: named_type(&value.value_type).0.to_owned(),
            cost: self.cost(&value.directives),
            default_size: value.default_value.as_ref().and_then(schema_number),
        }
    }

    fn cost(&mut self, directives: &[schema::Directive]) -> Option<f64> {
        let directive = directives.iter().find(|d| self.cost_names.contains(&d.name))?;
        self.uses_directives = true;
        argument(directive, "weight").and_then(schema_number)
    }

    fn list_size(&mut self, directives: &[schema::Directive]) -> Option<ListSize> {
        let directive = directives.iter().find(|d| self.list_size_names.contains(&d.name))?;
        self.uses_directives = true;
        Some(ListSize {
            assumed_size: argument(directive, "assumedSize").and_then(schema_number).map(|n| n.max(0.0)),
            slicing_arguments: argument(directive, "slicingArguments").map(strings).unwrap_or_default(),
            sized_fields: argument(directive, "sizedFields").map(strings).unwrap_or_default(),
        })
    }

    fn finish(mut self, default_list_size: u32) -> CostModel {
        for (object, interface) in std::mem::take(&mut self.implementations) {
            if self.types.get(&object).is_some_and(|t| t.kind == Some(Kind::Object)) {
                self.types.entry(interface).or_default().possible.insert(object);
            }
        }
        // What a field returning each type weighs by default.
        let mut defaults: HashMap<String, f64> = HashMap::with_capacity(self.types.len());
        for (name, info) in &self.types {
            let composite = matches!(info.kind, Some(Kind::Object | Kind::Interface | Kind::Union));
            defaults.insert(name.clone(), info.cost.unwrap_or(if composite { 1.0 } else { 0.0 }));
        }
        for (name, info) in self.types.iter_mut() {
            if info.kind == Some(Kind::Object) {
                info.possible.insert(name.clone());
            }
            for field in info.fields.values_mut() {
                // Built-in scalars (String, Int…) are not in the SDL: weight 0.
                field.weight = field.cost.or_else(|| defaults.get(&field.type_name).copied()).unwrap_or(0.0);
            }
        }
        CostModel {
            types: self.types,
            default_list_size: f64::from(default_list_size),
            uses_directives: self.uses_directives,
        }
    }
}

/// An argument value: a literal of the operation, or (through a variable) JSON.
#[derive(Clone, Copy)]
enum Input<'a> {
    Ast(&'a AstValue),
    Json(&'a Value),
}

/// The list size a field with `sizedFields` hands to the named children.
#[derive(Clone, Copy)]
struct SizedChildren<'a> {
    names: &'a [String],
    size: f64,
}

/// The fields of one inline fragment, for combining by type.
struct Branch<'s> {
    condition: &'s str,
    /// The fragment this one sits in, if any (an index into the same list).
    enclosing: Option<usize>,
    cost: f64,
}

/// One scoring of one operation.
struct Walker<'a> {
    model: &'a CostModel,
    operation: &'a OperationDefinition,
    variables: &'a Map<String, Value>,
}

impl<'a> Walker<'a> {
    fn estimate_set(
        &self,
        set: &'a SelectionSet,
        parent: &'a str,
        sized: Option<SizedChildren<'a>>,
        root_mutation: bool,
        depth: usize,
    ) -> f64 {
        let mut branches = Vec::new();
        let fields = self.items(set, parent, depth, None, &mut branches, &|field, parent, depth| {
            self.estimate_field(field, parent, sized, root_mutation, depth)
        });
        add(fields, self.model.combine(parent, &branches, None))
    }

    /// The fields of `set`; the fields of its inline fragments (at any
    /// nesting) go to `branches`, one entry per fragment, each field costed
    /// once whatever the number of types it may apply to. `field_cost`
    /// prices one field of a type at a depth: estimated, or over a response.
    fn items(
        &self,
        set: &'a SelectionSet,
        parent: &'a str,
        depth: usize,
        enclosing: Option<usize>,
        branches: &mut Vec<Branch<'a>>,
        field_cost: &impl Fn(&'a FieldSelection, &'a str, usize) -> f64,
    ) -> f64 {
        if depth > MAX_DEPTH {
            return f64::MAX;
        }
        let mut fields = 0.0;
        for item in &set.items {
            match item {
                SelectionItem::Field(field) if self.included(&field.skip_if, &field.include_if) => {
                    fields = add(fields, field_cost(field, parent, depth));
                }
                SelectionItem::InlineFragment(fragment) if self.included(&fragment.skip_if, &fragment.include_if) => {
                    let condition = condition_or(&fragment.type_condition, parent);
                    let index = branches.len();
                    branches.push(Branch { condition, enclosing, cost: 0.0 });
                    let cost =
                        self.items(&fragment.selections, condition, depth + 1, Some(index), branches, field_cost);
                    if let Some(branch) = branches.get_mut(index) {
                        branch.cost = cost;
                    }
                }
                // Skipped selections, and spreads (the normaliser inlines them all).
                _ => {}
            }
        }
        fields
    }

    fn estimate_field(
        &self,
        field: &'a FieldSelection,
        parent: &str,
        sized: Option<SizedChildren<'a>>,
        root_mutation: bool,
        depth: usize,
    ) -> f64 {
        if field.name.starts_with("__") {
            return 0.0;
        }
        let Some(definition) = self.model.field(parent, &field.name) else { return 0.0 };
        let weight = self.own_weight(definition, root_mutation);
        let arguments = self.arguments_cost(definition, field);
        if field.selections.items.is_empty() {
            return add(weight, arguments);
        }
        let expected = self.expected_size(definition, field);
        let children_sized = definition
            .list_size
            .as_ref()
            .filter(|list_size| !list_size.sized_fields.is_empty())
            .and_then(|list_size| expected.map(|size| SizedChildren { names: &list_size.sized_fields, size }));
        let children = self.estimate_set(&field.selections, &definition.type_name, children_sized, false, depth + 1);
        let count = if definition.is_list {
            sized
                .filter(|sized| sized.names.contains(&field.name))
                .map(|sized| sized.size)
                .or(expected)
                .unwrap_or(self.model.default_list_size)
        } else {
            1.0
        };
        // Each object of a list costs its weight and its selection.
        add(arguments, mul(count, add(weight, children)))
    }

    fn actual_set<D: ResponseData>(
        &self,
        set: &'a SelectionSet,
        parent: &'a str,
        data: &'a D,
        root_mutation: bool,
        depth: usize,
    ) -> f64 {
        let mut branches = Vec::new();
        let fields = self.items(set, parent, depth, None, &mut branches, &|field, parent, depth| {
            self.actual_field(field, parent, data, root_mutation, depth)
        });
        if branches.is_empty() {
            return fields;
        }
        let concrete = self.concrete_type(set, parent, data);
        add(fields, self.model.combine(parent, &branches, concrete))
    }

    fn actual_field<D: ResponseData>(
        &self,
        field: &'a FieldSelection,
        parent: &str,
        data: &'a D,
        root_mutation: bool,
        depth: usize,
    ) -> f64 {
        if field.name.starts_with("__") {
            return 0.0;
        }
        let Some(value) = data.field(field.alias.as_deref().unwrap_or(&field.name)) else { return 0.0 };
        let Some(definition) = self.model.field(parent, &field.name) else { return 0.0 };
        let weight = self.own_weight(definition, root_mutation);
        let arguments = self.arguments_cost(definition, field);
        if field.selections.items.is_empty() {
            return add(weight, arguments);
        }
        if value.items().is_some() {
            // A list costs the weight of each object it holds.
            add(arguments, self.actual_value(field, definition, value, weight, depth))
        } else {
            // Any other value was resolved once, object or not.
            add(add(weight, arguments), self.actual_value(field, definition, value, 0.0, depth))
        }
    }

    /// The selection's cost over one value of the field: an object, a list of
    /// them (at any list depth), or nothing to select into.
    fn actual_value<D: ResponseData>(
        &self,
        field: &'a FieldSelection,
        definition: &'a FieldInfo,
        value: &'a D,
        weight: f64,
        depth: usize,
    ) -> f64 {
        if value.is_object() {
            return add(weight, self.actual_set(&field.selections, &definition.type_name, value, false, depth + 1));
        }
        match value.items() {
            Some(_) if depth > MAX_DEPTH => f64::MAX,
            Some(items) => items
                .iter()
                .fold(0.0, |total, item| add(total, self.actual_value(field, definition, item, weight, depth + 1))),
            // No object came back: nothing was resolved below the field.
            None => 0.0,
        }
    }

    /// The object's type when it is known: the parent itself when that is an
    /// object type, else the `__typename` the response carries.
    fn concrete_type<D: ResponseData>(&self, set: &'a SelectionSet, parent: &'a str, data: &'a D) -> Option<&'a str> {
        if self.model.types.get(parent).is_some_and(|t| t.kind == Some(Kind::Object)) {
            return Some(parent);
        }
        let key = set
            .items
            .iter()
            .find_map(|item| match item {
                SelectionItem::Field(field) if field.name == "__typename" => {
                    Some(field.alias.as_deref().unwrap_or("__typename"))
                }
                _ => None,
            })
            .unwrap_or("__typename");
        data.field(key).and_then(ResponseData::as_str)
    }

    fn own_weight(&self, definition: &FieldInfo, root_mutation: bool) -> f64 {
        if root_mutation {
            definition.cost.unwrap_or(MUTATION_WEIGHT)
        } else {
            definition.weight
        }
    }

    /// The `@cost` of each argument given (not null), with the `@cost` of the
    /// input fields given inside it.
    fn arguments_cost(&self, definition: &FieldInfo, field: &'a FieldSelection) -> f64 {
        let Some(arguments) = field.arguments.as_ref() else { return 0.0 };
        let mut total = 0.0;
        for (name, value) in arguments {
            let (Some(argument), Some(input)) = (definition.arguments.get(name.as_str()), self.resolve(value)) else {
                continue;
            };
            total = add(total, add(argument.cost.unwrap_or(0.0), self.input_cost(&argument.type_name, input, 0)));
        }
        total
    }

    /// The `@cost` of the input fields supplied in a value of `type_name`,
    /// through lists and nested input objects.
    fn input_cost(&self, type_name: &str, input: Input<'a>, depth: usize) -> f64 {
        let Some(fields) = self.model.types.get(type_name).map(|t| &t.input_fields).filter(|f| !f.is_empty()) else {
            return 0.0;
        };
        if depth > MAX_DEPTH {
            return f64::MAX;
        }
        let field_cost = |name: &str, value: Option<Input<'a>>| match (fields.get(name), value) {
            (Some(field), Some(value)) => {
                add(field.cost.unwrap_or(0.0), self.input_cost(&field.type_name, value, depth + 1))
            }
            _ => 0.0,
        };
        match input {
            Input::Ast(AstValue::Object(object)) => {
                object.iter().fold(0.0, |total, (name, value)| add(total, field_cost(name, self.resolve(value))))
            }
            Input::Json(Value::Object(object)) => {
                object.iter().fold(0.0, |total, (name, value)| add(total, field_cost(name, json(value))))
            }
            Input::Ast(AstValue::List(items)) => items
                .iter()
                .filter_map(|item| self.resolve(item))
                .fold(0.0, |total, item| add(total, self.input_cost(type_name, item, depth + 1))),
            Input::Json(Value::Array(items)) => items
                .iter()
                .filter_map(json)
                .fold(0.0, |total, item| add(total, self.input_cost(type_name, item, depth + 1))),
            _ => 0.0,
        }
    }

    /// The size `@listSize` gives the field: the largest slicing argument
    /// with a value, else `assumedSize`; `None` leaves it to the default.
    fn expected_size(&self, definition: &FieldInfo, field: &'a FieldSelection) -> Option<f64> {
        let list_size = definition.list_size.as_ref()?;
        let sliced = list_size
            .slicing_arguments
            .iter()
            .filter_map(|path| self.slicing_value(definition, field, path))
            .reduce(f64::max);
        sliced.or(list_size.assumed_size)
    }

    /// One slicing argument's value (given, through a variable, or the
    /// schema's default), following a dotted path into input objects.
    fn slicing_value(&self, definition: &FieldInfo, field: &'a FieldSelection, path: &str) -> Option<f64> {
        let mut segments = path.split('.');
        let first = segments.next()?;
        let mut info = definition.arguments.get(first)?;
        let mut value =
            field.arguments.as_ref().and_then(|arguments| arguments.get_argument(first)).and_then(|v| self.resolve(v));
        for segment in segments {
            info = self.model.types.get(&info.type_name)?.input_fields.get(segment)?;
            value = value.and_then(|v| self.member(v, segment));
        }
        match value {
            Some(value) => number(value),
            None => info.default_size,
        }
        .map(|size| size.max(0.0))
    }

    fn member(&self, input: Input<'a>, name: &str) -> Option<Input<'a>> {
        match input {
            Input::Ast(AstValue::Object(object)) => self.resolve(object.get(name)?),
            Input::Json(Value::Object(object)) => json(object.get(name)?),
            _ => None,
        }
    }

    /// A value with variables looked up; `None` for null and unset variables
    /// (an argument that is null or not given is not supplied).
    fn resolve(&self, value: &'a AstValue) -> Option<Input<'a>> {
        match value {
            AstValue::Variable(name) => self.variable(name),
            AstValue::Null => None,
            value => Some(Input::Ast(value)),
        }
    }

    /// A variable's value: as sent (already coerced), else its default in the
    /// operation.
    fn variable(&self, name: &str) -> Option<Input<'a>> {
        if let Some(value) = self.variables.get(name) {
            return json(value);
        }
        let definitions = self.operation.variable_definitions.as_ref()?;
        match definitions.iter().find(|d| d.name == name)?.default_value.as_ref()? {
            // Defaults are constants; a variable there would be a loop.
            AstValue::Null | AstValue::Variable(_) => None,
            value => Some(Input::Ast(value)),
        }
    }

    /// `@skip`/`@include` on variables (the normaliser already dropped the
    /// literal ones). A condition that cannot be read keeps the selection:
    /// over-estimating is the safe side.
    fn included(&self, skip_if: &Option<String>, include_if: &Option<String>) -> bool {
        let condition = |name: &String| match self.variable(name) {
            Some(Input::Json(Value::Bool(b))) | Some(Input::Ast(AstValue::Boolean(b))) => Some(*b),
            _ => None,
        };
        skip_if.as_ref().and_then(condition) != Some(true) && include_if.as_ref().and_then(condition) != Some(false)
    }
}

/// An inline fragment's type, or the parent's for one without a condition.
fn condition_or<'s>(condition: &'s str, parent: &'s str) -> &'s str {
    if condition.is_empty() {
        parent
    } else {
        condition
    }
}

fn json(value: &Value) -> Option<Input<'_>> {
    match value {
        Value::Null => None,
        value => Some(Input::Json(value)),
    }
}

fn number(input: Input<'_>) -> Option<f64> {
    match input {
        Input::Ast(AstValue::Int(i)) => Some(*i as f64),
        Input::Ast(AstValue::Float(f)) => Some(*f),
        Input::Json(Value::Number(n)) => n.as_f64(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

fn argument<'d>(directive: &'d schema::Directive, name: &str) -> Option<&'d schema::Value> {
    directive.arguments.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// A weight or size: `Int` by the Apollo spec, a numeric `String` by IBM's.
fn schema_number(value: &schema::Value) -> Option<f64> {
    match value {
        schema::Value::Int(n) => n.as_i64().map(|i| i as f64),
        schema::Value::Float(f) => Some(*f),
        schema::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// `[String!]`, or a lone string (input coercion of a one-item list).
fn strings(value: &schema::Value) -> Vec<String> {
    match value {
        schema::Value::List(items) => items
            .iter()
            .filter_map(|item| match item {
                schema::Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        schema::Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The named type under the wrappers, and whether any wrapper is a list.
fn named_type(mut ty: &schema::Type) -> (&str, bool) {
    let mut is_list = false;
    loop {
        match ty {
            schema::Type::NamedType(name) => return (name, is_list),
            schema::Type::ListType(inner) => {
                is_list = true;
                ty = inner;
            }
            schema::Type::NonNullType(inner) => ty = inner,
        }
    }
}

/// Keeps every cost finite: an overflow becomes `±f64::MAX` rather than an
/// infinity that a later `0 ×` would turn into NaN.
fn clamp(x: f64) -> f64 {
    if x.is_nan() {
        f64::MAX
    } else {
        x.clamp(-f64::MAX, f64::MAX)
    }
}

fn add(a: f64, b: f64) -> f64 {
    clamp(a + b)
}

/// A product that stays 0 when either side is 0, however large the other.
fn mul(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        clamp(a * b)
    }
}

/// What demand control does with the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No cost is computed.
    Off,
    /// Costs are computed and recorded; nothing is refused.
    Measure,
    /// Operations estimated above the maximum are refused before any
    /// subgraph call (`COST_ESTIMATED_TOO_EXPENSIVE`).
    Enforce,
}

/// Demand-control settings.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Gateway demand control")]
pub struct DemandControlConfig {
    /// Demand control from the supergraph's `@cost` and `@listSize`: `off`,
    /// `measure` (record estimated and actual costs) or `enforce` (also
    /// refuse operations estimated above `GATEWAY_MAX_COST`). Clients that
    /// send `extensions.cost = true` get the costs in the response's
    /// `extensions`. Default: off.
    #[arg(
        id = "gateway-demand-control",
        long = "demand-control",
        env = "GATEWAY_DEMAND_CONTROL",
        value_enum,
        default_value = "off"
    )]
    pub mode: Mode,

    /// The highest estimated cost an operation may have. Default 1000.
    #[arg(id = "gateway-max-cost", long = "max-cost", env = "GATEWAY_MAX_COST", default_value_t = 1000)]
    pub max_cost: u64,

    /// How many items a list is assumed to hold when its field has no
    /// `@listSize` and the operation gives no slicing argument. Default 10.
    #[arg(
        id = "gateway-default-list-size",
        long = "default-list-size",
        env = "GATEWAY_DEFAULT_LIST_SIZE",
        default_value_t = 10
    )]
    pub default_list_size: u32,
}

impl Default for DemandControlConfig {
    /// The same values as the flags' defaults (a config test checks they agree).
    fn default() -> Self {
        Self { mode: Mode::Off, max_cost: 1000, default_list_size: 10 }
    }
}

/// One request's costs, for metrics and `extensions.cost`.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    pub estimated: f64,
    pub actual: f64,
}

impl DemandControlConfig {
    /// The estimate's verdict: `Err` when enforcing and it is too high.
    pub fn check(&self, estimated: f64) -> Result<(), crate::error::RequestError> {
        metrics::histogram!("gateway_operation_cost_estimated").record(estimated);
        if estimated <= self.max_cost as f64 {
            return Ok(());
        }
        let mode = if self.mode == Mode::Enforce { "enforce" } else { "measure" };
        metrics::counter!("gateway_operation_cost_exceeded_total", "mode" => mode).increment(1);
        if self.mode != Mode::Enforce {
            return Ok(());
        }
        Err(crate::error::RequestError::Validation(vec![crate::error::GraphQLError::new(
            format!("The operation's estimated cost {estimated} is above the maximum of {}", self.max_cost),
            crate::error::codes::COST_ESTIMATED_TOO_EXPENSIVE,
        )
        .with_extension("cost", serde_json::json!({ "estimated": estimated, "max": self.max_cost }))]))
    }

    /// The costs as `extensions.cost` shows them.
    pub fn extension(&self, costs: Costs) -> Value {
        let mode = match self.mode {
            Mode::Off => "off",
            Mode::Measure => "measure",
            Mode::Enforce => "enforce",
        };
        serde_json::json!({
            "estimated": costs.estimated,
            "actual": costs.actual,
            "max": self.max_cost,
            "mode": mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_router_query_planner::ast::normalization::normalize_operation;
    use hive_router_query_planner::state::supergraph_state::SupergraphState;
    use hive_router_query_planner::utils::parsing::{parse_operation, safe_parse_schema};
    use serde_json::json;

    /// A one-subgraph Federation v2 supergraph with every kind of cost
    /// directive; `default_list_size` is 10 throughout.
    const SDL: &str = r#"
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/cost/v0.1", import: ["@cost", "@listSize"])
{
  query: Query
  mutation: Mutation
}

directive @cost(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR

directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION

directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

directive @join__graph(name: String!, url: String!) on ENUM_VALUE

directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION

directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE

directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION

directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

scalar join__FieldSet

scalar link__Import

enum link__Purpose {
  SECURITY
  EXECUTION
}

enum join__Graph {
  SHOP @join__graph(name: "shop", url: "http://shop.invalid/graphql")
}

scalar Money @join__type(graph: SHOP) @cost(weight: 2)

enum Status @join__type(graph: SHOP) @cost(weight: 3) {
  ACTIVE @join__enumValue(graph: SHOP)
  INACTIVE @join__enumValue(graph: SHOP)
}

input SearchFilter @join__type(graph: SHOP) {
  term: String @cost(weight: 2)
  tags: [String!] @cost(weight: 1)
  nested: SearchFilter
}

input Page @join__type(graph: SHOP) {
  size: Int
}

type Query @join__type(graph: SHOP) {
  me: User
  user(id: ID!): User
  users(first: Int, last: Int): [User!]! @listSize(slicingArguments: ["first", "last"], requireOneSlicingArgument: false)
  paged(page: Page): [User!]! @listSize(slicingArguments: ["page.size"])
  topUsers: [User!]! @listSize(assumedSize: 4)
  allUsers: [User!]!
  matrix: [[User!]!]!
  search(filter: SearchFilter @cost(weight: 5), limit: Int = 7): [SearchResult!]! @listSize(slicingArguments: ["limit"])
  usersConnection(first: Int): UserConnection! @listSize(slicingArguments: ["first"], sizedFields: ["edges", "nodes"])
  expensive: String @cost(weight: 20)
  media: [Media!]! @listSize(assumedSize: 2)
  account: Account
}

type Mutation @join__type(graph: SHOP) {
  createUser(name: String): User
  deleteUser(id: ID!): Boolean
  reset: Boolean @cost(weight: 50)
}

type User @join__type(graph: SHOP, key: "id") {
  id: ID!
  name: String
  status: Status
  balance: Money
  address: Address
  friends(first: Int): [User!]! @listSize(slicingArguments: ["first"])
  posts: [Post!]!
}

type Address @join__type(graph: SHOP) {
  street: String
  city: String
}

type Account @join__type(graph: SHOP) @cost(weight: 7) {
  id: ID!
}

type UserConnection @join__type(graph: SHOP) {
  edges: [UserEdge!]!
  nodes: [User!]!
  pageInfo: PageInfo!
}

type UserEdge @join__type(graph: SHOP) {
  cursor: String
  node: User!
}

type PageInfo @join__type(graph: SHOP) {
  hasNextPage: Boolean
}

union SearchResult @join__type(graph: SHOP) @join__unionMember(graph: SHOP, member: "User") @join__unionMember(graph: SHOP, member: "Post") = User | Post

interface Media @join__type(graph: SHOP) {
  id: ID!
  title: String
}

type Post implements Media @join__type(graph: SHOP, key: "id") @join__implements(graph: SHOP, interface: "Media") {
  id: ID!
  title: String
  author: User
  comments: [Comment!]! @listSize(assumedSize: 3)
}

type Video implements Media @join__type(graph: SHOP, key: "id") @join__implements(graph: SHOP, interface: "Media") {
  id: ID!
  title: String
  related: [Media!]!
}

type Comment @join__type(graph: SHOP) {
  id: ID!
  text: String
}
"#;

    struct Fixture {
        model: CostModel,
        state: SupergraphState,
    }

    impl Fixture {
        fn new(sdl: &str) -> Self {
            let document = safe_parse_schema(sdl).expect("the test supergraph parses");
            Self { model: CostModel::from_supergraph(&document, 10), state: SupergraphState::new(&document) }
        }

        fn operation(&self, query: &str) -> OperationDefinition {
            normalize_operation(&self.state, &parse_operation(query), None)
                .expect("the test operation normalises")
                .operation
        }

        fn estimate(&self, query: &str, variables: Value) -> f64 {
            let operation = self.operation(query);
            self.model.estimate(&operation, root_type(&operation), variables.as_object().expect("variables object"))
        }

        fn actual(&self, query: &str, variables: Value, data: Value) -> f64 {
            let operation = self.operation(query);
            self.model.actual(
                &operation,
                root_type(&operation),
                variables.as_object().expect("variables object"),
                &data,
            )
        }
    }

    fn root_type(operation: &OperationDefinition) -> &'static str {
        match operation.operation_kind {
            Some(OperationKind::Mutation) => "Mutation",
            Some(OperationKind::Subscription) => "Subscription",
            _ => "Query",
        }
    }

    fn shop() -> Fixture {
        Fixture::new(SDL)
    }

    fn no_variables() -> Value {
        json!({})
    }

    #[test]
    fn composite_fields_cost_one_and_leaves_nothing() {
        let shop = shop();
        assert_eq!(shop.estimate("{ me { id name } }", no_variables()), 1.0);
        assert_eq!(shop.estimate("{ me { id name address { city } } user(id: 1) { id } }", no_variables()), 3.0);
    }

    #[test]
    fn cost_on_fields_and_return_types() {
        let shop = shop();
        assert_eq!(shop.estimate("{ expensive }", no_variables()), 20.0);
        // `Account @cost(weight: 7)` replaces the object default of 1.
        assert_eq!(shop.estimate("{ account { id } }", no_variables()), 7.0);
        // `Status` (enum) weighs 3 and `Money` (scalar) 2 instead of 0.
        assert_eq!(shop.estimate("{ me { status balance } }", no_variables()), 6.0);
    }

    #[test]
    fn typename_and_introspection_are_free() {
        let shop = shop();
        assert_eq!(shop.estimate("{ __typename me { __typename id } }", no_variables()), 1.0);
        assert_eq!(shop.estimate("{ __schema { types { name fields { name } } } me { id } }", no_variables()), 1.0);
        assert_eq!(shop.estimate("{ __type(name: \"User\") { name } }", no_variables()), 0.0);
    }

    #[test]
    fn root_mutation_fields_cost_ten_unless_told_otherwise() {
        let shop = shop();
        // createUser 10 + its address 1; deleteUser 10; reset @cost(weight: 50).
        let mutation = "mutation { createUser(name: \"a\") { address { city } } deleteUser(id: 1) reset }";
        assert_eq!(shop.estimate(mutation, no_variables()), 71.0);
        // Below the root the usual defaults apply again: 10 + two friends.
        assert_eq!(shop.estimate("mutation { createUser { friends(first: 2) { id } } }", no_variables()), 12.0);
    }

    #[test]
    fn nested_lists_multiply_by_literal_slicing_arguments() {
        let shop = shop();
        // 5 users × (1 + 3 friends × 1)
        assert_eq!(shop.estimate("{ users(first: 5) { friends(first: 3) { name } } }", no_variables()), 20.0);
        // 5 × (1 + 3 × (1 + address 1))
        assert_eq!(
            shop.estimate("{ users(first: 5) { friends(first: 3) { address { city } } } }", no_variables()),
            35.0
        );
        // The largest of the slicing arguments given: 6 × (1 + 1).
        assert_eq!(shop.estimate("{ users(first: 2, last: 6) { address { city } } }", no_variables()), 12.0);
    }

    #[test]
    fn slicing_arguments_by_variable_and_default() {
        let shop = shop();
        let query = "query($n: Int, $m: Int) { users(first: $n) { friends(first: $m) { id friends(first: 2) { address { city } } } } }";
        // inner friends 2 × (1 + 1) = 4; friends 3 × (1 + 4) = 15; users 4 × (1 + 15).
        assert_eq!(shop.estimate(query, json!({"n": 4, "m": 3})), 64.0);
        // The variable's default in the operation: 6 × (1 + 1).
        assert_eq!(shop.estimate("query($n: Int = 6) { users(first: $n) { address { city } } }", no_variables()), 12.0);
        // A null slicing argument is no slicing argument: the default list size.
        assert_eq!(shop.estimate("query($n: Int) { users(first: $n) { address { city } } }", json!({"n": null})), 20.0);
        // The argument's default in the schema (`limit: Int = 7`): 7 × (1 + author 1).
        assert_eq!(shop.estimate("{ search { ... on Post { author { id } } } }", no_variables()), 14.0);
        // A path into an input object (`page.size`), literal or variable.
        assert_eq!(shop.estimate("{ paged(page: {size: 4}) { address { city } } }", no_variables()), 8.0);
        let query = "query($p: Page) { paged(page: $p) { address { city } } }";
        assert_eq!(shop.estimate(query, json!({"p": {"size": 8}})), 16.0);
    }

    #[test]
    fn assumed_size_then_default_list_size() {
        let shop = shop();
        // @listSize(assumedSize: 4): 4 × (1 + 1).
        assert_eq!(shop.estimate("{ topUsers { address { city } } }", no_variables()), 8.0);
        // No @listSize: 10 × (1 + address 1 + 10 posts × 1).
        assert_eq!(shop.estimate("{ allUsers { address { city } posts { id } } }", no_variables()), 120.0);
        // Slicing arguments declared but none given, no assumedSize: 10 × 2.
        assert_eq!(shop.estimate("{ users { address { city } } }", no_variables()), 20.0);
        // A list of lists is one list size, as in Apollo Router: 10 × 2.
        assert_eq!(shop.estimate("{ matrix { address { city } } }", no_variables()), 20.0);
    }

    #[test]
    fn sized_fields_take_the_connection_size() {
        let shop = shop();
        let query = "{ usersConnection(first: 3) { edges { cursor node { address { city } } } nodes { address { city } } pageInfo { hasNextPage } } }";
        // edges 3 × (1 + node 2) = 9; nodes 3 × (1 + 1) = 6; pageInfo 1; the
        // connection itself 1 (not a list).
        assert_eq!(shop.estimate(query, no_variables()), 17.0);
        // Without `first`, the children fall back to the default list size: 1 + 10 × (1 + 1).
        assert_eq!(shop.estimate("{ usersConnection { edges { node { id } } } }", no_variables()), 21.0);
    }

    #[test]
    fn skip_and_include_follow_the_variables() {
        let shop = shop();
        let query =
            "query($s: Boolean!, $i: Boolean!) { me @skip(if: $s) { id } account @include(if: $i) { id } expensive }";
        assert_eq!(shop.estimate(query, json!({"s": true, "i": false})), 20.0);
        assert_eq!(shop.estimate(query, json!({"s": false, "i": true})), 28.0);
        let literal = "{ me @skip(if: true) { id } account @include(if: true) { id } expensive }";
        assert_eq!(shop.estimate(literal, no_variables()), 27.0);
        let fragment =
            "query($i: Boolean!) { search(limit: 1) { ... on User @include(if: $i) { address { city } } ... on Post { title } } }";
        assert_eq!(shop.estimate(fragment, json!({"i": false})), 1.0);
        assert_eq!(shop.estimate(fragment, json!({"i": true})), 2.0);
    }

    #[test]
    fn unions_count_the_most_expensive_member() {
        let shop = shop();
        let query = "{ search(limit: 2) { ... on User { address { city } friends(first: 2) { address { city } } } ... on Post { title author { id } comments { id } } } }";
        // User: address 1 + friends 2 × (1 + 1) = 5; Post: author 1 + comments 3 × 1 = 4;
        // 2 × (1 + max(5, 4)).
        assert_eq!(shop.estimate(query, no_variables()), 12.0);
    }

    #[test]
    fn interfaces_count_the_most_expensive_implementation() {
        let shop = shop();
        let query =
            "{ media { id title ... on Post { author { address { city } } } ... on Video { related { id } } } }";
        // Post: author 1 + address 1 = 2; Video: related 10 × 1 = 10; 2 × (1 + max(2, 10)).
        assert_eq!(shop.estimate(query, no_variables()), 22.0);
        // A fragment on the interface inside a union applies to Post (and Video) only.
        let query = "{ search(limit: 1) { ... on User { id } ... on Media { ... on Post { author { id } } } } }";
        assert_eq!(shop.estimate(query, no_variables()), 2.0);
        // A conditional fragment keeps its nesting; its Post branch adds to
        // Post only, not to Video (which would make 2 × (1 + 12)):
        // 2 × (1 + max(Video 10, Post 2)).
        let query = "query($i: Boolean!) { media { ... on Video { related { id } } ... on Media @include(if: $i) { ... on Post { author { address { city } } } } } }";
        assert_eq!(shop.estimate(query, json!({"i": true})), 22.0);
        assert_eq!(shop.estimate(query, json!({"i": false})), 22.0);
        let query = "query($i: Boolean!) { media { ... on Video { title } ... on Media @include(if: $i) { ... on Post { author { address { city } } } } } }";
        assert_eq!(shop.estimate(query, json!({"i": true})), 6.0);
        assert_eq!(shop.estimate(query, json!({"i": false})), 2.0);
        let query = "query($i: Boolean!) { media { ... on Video { related { id } } ... on Media @include(if: $i) { ... on Post { author { address { city } } } } } }";
        let data = json!({"media": [
            {"__typename": "Video", "related": [{"id": "1"}]},
            {"__typename": "Post", "author": {"address": null}}
        ]});
        // Video 1 + one related 1; Post 1 + author 1 + its null address 1.
        assert_eq!(shop.actual(query, json!({"i": true}), data), 5.0);
    }

    #[test]
    fn arguments_and_input_fields_add_their_cost() {
        let shop = shop();
        // filter 5 + term 2 + tags 1; limit has no @cost.
        let query = "{ search(filter: {term: \"a\", tags: [\"x\", \"y\"]}, limit: 1) { ... on Post { id } } }";
        assert_eq!(shop.estimate(query, no_variables()), 9.0);
        // Nested input objects: 5 + (term 2) + (tags 1).
        let query = "{ search(filter: {nested: {term: \"b\", nested: {tags: []}}}, limit: 1) { ... on Post { id } } }";
        assert_eq!(shop.estimate(query, no_variables()), 9.0);
        let query = "query($f: SearchFilter) { search(filter: $f, limit: 1) { ... on Post { id } } }";
        assert_eq!(shop.estimate(query, json!({"f": {"term": "x", "nested": {"term": "y", "tags": null}}})), 10.0);
        // Not supplied: null, or a variable without a value.
        assert_eq!(shop.estimate(query, json!({"f": null})), 1.0);
        assert_eq!(shop.estimate(query, no_variables()), 1.0);
    }

    #[test]
    fn renamed_and_namespaced_directives() {
        let renamed = SDL
            .replace(
                r#"import: ["@cost", "@listSize"]"#,
                r#"import: [{name: "@cost", as: "@weight"}, {name: "@listSize", as: "@mySize"}]"#,
            )
            .replace("@cost(", "@weight(")
            .replace("@listSize(", "@mySize(")
            // A plain @cost is not the spec's once the link renames it.
            .replace("  me: User\n", "  me: User @cost(weight: 99)\n");
        let renamed = Fixture::new(&renamed);
        assert!(!renamed.model.is_empty_of_directives());
        assert_eq!(renamed.estimate("{ expensive }", no_variables()), 20.0);
        assert_eq!(renamed.estimate("{ me { id } }", no_variables()), 1.0);
        assert_eq!(
            renamed.estimate("{ users(first: 5) { friends(first: 3) { address { city } } } }", no_variables()),
            35.0
        );

        // Not imported: only the namespaced form counts.
        let namespaced = Fixture::new(
            &SDL.replace(r#"import: ["@cost", "@listSize"]"#, r#"import: ["@listSize"]"#)
                .replace("@cost(", "@cost__cost("),
        );
        assert_eq!(namespaced.estimate("{ expensive }", no_variables()), 20.0);
        assert_eq!(namespaced.estimate("{ account { id } }", no_variables()), 7.0);
        assert_eq!(namespaced.estimate("{ topUsers { address { city } } }", no_variables()), 8.0);

        // The link's own namespace (`as:`).
        let aliased = Fixture::new(
            &SDL.replace(r#"import: ["@cost", "@listSize"]"#, r#"as: "price""#)
                .replace("@cost(", "@price__cost(")
                .replace("@listSize(", "@price__listSize("),
        );
        assert_eq!(aliased.estimate("{ expensive }", no_variables()), 20.0);
        assert_eq!(aliased.estimate("{ topUsers { address { city } } }", no_variables()), 8.0);
    }

    #[test]
    fn plain_names_without_a_cost_link() {
        let unlinked = Fixture::new(
            &SDL.replace(r#"@link(url: "https://specs.apollo.dev/cost/v0.1", import: ["@cost", "@listSize"])"#, ""),
        );
        assert_eq!(unlinked.estimate("{ expensive }", no_variables()), 20.0);
        assert_eq!(
            unlinked.estimate("{ users(first: 5) { friends(first: 3) { address { city } } } }", no_variables()),
            35.0
        );
    }

    #[test]
    fn supergraph_without_directives() {
        assert!(!shop().model.is_empty_of_directives());
        let bench = Fixture::new(include_str!("../../bench/supergraph.graphql"));
        assert!(bench.model.is_empty_of_directives());
        // The defaults alone: 10 × (1 + 10 × 1).
        assert_eq!(bench.estimate("{ topProducts { name reviews { id } } }", no_variables()), 110.0);
    }

    #[test]
    fn actual_uses_the_real_list_lengths() {
        let shop = shop();
        let query = "{ users(first: 5) { friends(first: 3) { address { city } } } }";
        assert_eq!(shop.estimate(query, no_variables()), 35.0);
        let data = json!({"users": [
            {"friends": [{"address": {"city": "Lyon"}}, {"address": null}]},
            {"friends": []}
        ]});
        // User 1 + (friend 1 + address 1) + (friend 1 + null address 1); user 1.
        assert_eq!(shop.actual(query, no_variables(), data), 6.0);
        let data = json!({"matrix": [[{"address": {"city": "a"}}], [{"address": null}, {"address": null}]]});
        // Three users, each 1 + its address (null or not) 1.
        assert_eq!(shop.actual("{ matrix { address { city } } }", no_variables(), data), 6.0);
    }

    #[test]
    fn actual_takes_each_objects_own_type() {
        let shop = shop();
        let query = "{ search(limit: 5) { __typename ... on User { address { city } } ... on Post { author { id } comments { id } } } }";
        // Estimated: 5 × (1 + max(User 1, Post 1 + 3 × 1)).
        assert_eq!(shop.estimate(query, no_variables()), 25.0);
        let data = json!({"search": [
            {"__typename": "User", "address": {"city": "Oslo"}},
            {"__typename": "Post", "author": null, "comments": [{"id": "1"}, {"id": "2"}]},
            {"__typename": "Post", "author": {"id": "u"}, "comments": []}
        ]});
        // User 1 + 1; Post 1 + null author 1 + 2 comments; Post 1 + author 1.
        assert_eq!(shop.actual(query, no_variables(), data), 8.0);
        // Without __typename, each object counts its heaviest branch.
        let query =
            "{ search(limit: 5) { ... on User { address { city } } ... on Post { author { id } comments { id } } } }";
        let data = json!({"search": [{"address": {"city": "Oslo"}}, {"author": null, "comments": [{"id": "1"}]}]});
        // 1 + address 1; 1 + null author 1 + one comment 1.
        assert_eq!(shop.actual(query, no_variables(), data), 5.0);
    }

    #[test]
    fn actual_counts_nulls_but_not_missing_data() {
        let shop = shop();
        assert_eq!(shop.actual("{ me { id } expensive }", no_variables(), Value::Null), 0.0);
        assert_eq!(shop.actual("{ me { id } expensive }", no_variables(), json!({})), 0.0);
        assert_eq!(shop.actual("{ me { id } expensive }", no_variables(), json!({"me": null})), 1.0);
        let mutation = "mutation { createUser(name: \"a\") { id } reset }";
        assert_eq!(shop.actual(mutation, no_variables(), json!({"createUser": null, "reset": true})), 60.0);
        // A null field still pays for its arguments: 1 + filter 5 + term 2.
        let query = "{ search(filter: {term: \"a\"}, limit: 2) { ... on Post { id } } }";
        assert_eq!(shop.actual(query, no_variables(), json!({"search": null})), 8.0);
        // Data of the wrong shape is nothing to count, never a panic.
        assert_eq!(shop.actual("{ me { address { city } } }", no_variables(), json!({"me": "odd"})), 1.0);
    }

    #[test]
    fn costs_saturate_instead_of_overflowing() {
        let shop = shop();
        let mut query = String::from("{ address { city } }");
        for _ in 0..40 {
            query = format!("{{ friends(first: $big) {query} }}");
        }
        let saturated = format!("query($big: Int) {{ users(first: $big) {query} }}");
        let estimate = shop.estimate(&saturated, json!({"big": 1_000_000_000_000_i64}));
        assert_eq!(estimate, f64::MAX);
        // Zero of something enormous is zero, not NaN.
        let zero = format!("query($big: Int) {{ users(first: 0) {query} }}");
        assert_eq!(shop.estimate(&zero, json!({"big": 1_000_000_000_000_i64})), 0.0);
    }

    /// `{ me { friends(first: 1) { friends(first: 1) { … { id } } } } }`
    /// `depth` friends deep, and a response with one friend at each level.
    /// Built by hand: the normaliser and `json!` would recurse as deep.
    fn chain(depth: usize) -> (OperationDefinition, Value) {
        let mut selection = FieldSelection { name: "id".into(), ..Default::default() };
        let mut data = json!({"id": "1"});
        for _ in 0..depth {
            selection = FieldSelection {
                name: "friends".into(),
                arguments: Some(vec![("first".to_owned(), AstValue::Int(1))].into()),
                selections: SelectionSet { items: vec![SelectionItem::Field(selection)] },
                ..Default::default()
            };
            data = Value::Object(Map::from_iter([("friends".to_owned(), Value::Array(vec![data]))]));
        }
        let operation = OperationDefinition {
            name: None,
            operation_kind: Some(OperationKind::Query),
            selection_set: SelectionSet {
                items: vec![SelectionItem::Field(FieldSelection {
                    name: "me".into(),
                    selections: SelectionSet { items: vec![SelectionItem::Field(selection)] },
                    ..Default::default()
                })],
            },
            variable_definitions: None,
        };
        (operation, Value::Object(Map::from_iter([("me".to_owned(), data)])))
    }

    #[test]
    fn deep_operations_stop_at_the_depth_bound() {
        let shop = shop();
        let variables = Map::new();
        // Within the bound: me 1 + 100 × (friends 1 + 1 × …).
        let (operation, data) = chain(100);
        assert_eq!(shop.model.estimate(&operation, "Query", &variables), 101.0);
        assert_eq!(shop.model.actual(&operation, "Query", &variables, &data), 101.0);
        // Far beyond it: "too expensive" rather than a stack overflow.
        let (operation, data) = chain(2_000);
        assert_eq!(shop.model.estimate(&operation, "Query", &variables), f64::MAX);
        assert_eq!(shop.model.actual(&operation, "Query", &variables, &data), f64::MAX);
    }
}
