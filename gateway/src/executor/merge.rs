//! Writing subgraph results into the response tree: deep merge, navigation by
//! concrete path, flatten-path traversal, and the planner's input/output rewrites.

use std::borrow::Cow;

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::planner::plan_nodes::{FetchNodePathSegment, FetchRewrite, FlattenNodePathSegment};

use super::tree::{write_name, Node, Object};
use crate::error::{PathSegment, PathStep};
use crate::schema::SchemaIndex;

/// Merges `source` into `target`. Objects merge key by key, lists of equal
/// length element by element; otherwise a non-null source wins.
///
/// `__typename` is special: an entity fetched through an `@interfaceObject`
/// subgraph reports the interface's name, which must not hide the concrete
/// type another subgraph already told us.
pub fn deep_merge(target: &mut Node, source: Node, schema: &SchemaIndex) {
    merge_value(target, Cow::Owned(source), schema);
}

/// As [`deep_merge`], copying from `source` only what `target` lacks: an
/// entity merged into several places, or an answer other requests share, is
/// read, not cloned whole first.
pub fn deep_merge_copy(target: &mut Node, source: &Node, schema: &SchemaIndex) {
    merge_value(target, Cow::Borrowed(source), schema);
}

/// [`deep_merge`] or [`deep_merge_copy`], as `source` comes: values that are
/// the request's own move into the tree, shared ones are copied.
pub fn merge_value(target: &mut Node, source: Cow<'_, Node>, schema: &SchemaIndex) {
    match (target, source) {
        (Node::Object(target), Cow::Owned(Node::Object(source))) => {
            target.merge_with(source, |key, existing, value| merge_entry(key, existing, Cow::Owned(value), schema))
        }
        (Node::Object(target), Cow::Borrowed(Node::Object(source))) => {
            target.merge_from(source, |key, existing, value| merge_entry(key, existing, Cow::Borrowed(value), schema))
        }
        (Node::Array(target), Cow::Owned(Node::Array(source))) if target.len() == source.len() => {
            for (t, s) in target.iter_mut().zip(source) {
                merge_value(t, Cow::Owned(s), schema);
            }
        }
        (Node::Array(target), Cow::Borrowed(Node::Array(source))) if target.len() == source.len() => {
            for (t, s) in target.iter_mut().zip(source) {
                merge_value(t, Cow::Borrowed(s), schema);
            }
        }
        (target, source) => {
            if !source.is_null() || target.is_null() {
                *target = source.into_owned();
            }
        }
    }
}

fn merge_entry(key: &str, existing: &mut Node, value: Cow<'_, Node>, schema: &SchemaIndex) {
    if key == "__typename" {
        let keep = existing.as_str().is_some_and(|t| !schema.is_abstract(t)) || value.is_null();
        if !keep {
            *existing = value.into_owned();
        }
    } else {
        merge_value(existing, value, schema);
    }
}

/// The value at a concrete response path.
pub fn get_mut<'a, 'k>(root: &'a mut Node, path: impl IntoIterator<Item = PathStep<'k>>) -> Option<&'a mut Node> {
    let mut current = root;
    for step in path {
        current = match (step, current) {
            (PathStep::Key(key), Node::Object(map)) => map.get_mut(key)?,
            (PathStep::Index(i), Node::Array(items)) => items.get_mut(i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Calls `visit` with every object reached by following a flatten path
/// (`field.@.field|[Type]`) and its concrete path.
pub fn collect_targets<'v, 'p>(
    value: &'v Node,
    segments: &'p [FlattenNodePathSegment],
    schema: &SchemaIndex,
    path: &mut Vec<PathStep<'p>>,
    visit: &mut dyn FnMut(&[PathStep<'p>], &'v Node),
) {
    match value {
        Node::Null => {}
        // A list is walked whatever the path says, so nested lists need no
        // extra segments and a missing `@` never loses entities.
        Node::Array(items) => {
            let rest = match segments.first() {
                Some(FlattenNodePathSegment::List) => &segments[1..],
                _ => segments,
            };
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::Index(i));
                collect_targets(item, rest, schema, path, visit);
                path.pop();
            }
        }
        Node::Object(map) => match segments.first() {
            None => visit(path, value),
            Some(FlattenNodePathSegment::Field(name)) => {
                if let Some(child) = map.get(name) {
                    path.push(PathStep::Key(name));
                    collect_targets(child, &segments[1..], schema, path, visit);
                    path.pop();
                }
            }
            Some(FlattenNodePathSegment::TypeCondition(types)) => {
                if typename_matches(value, types, schema) {
                    collect_targets(value, &segments[1..], schema, path, visit);
                }
            }
            Some(FlattenNodePathSegment::List) => {}
        },
        _ => {}
    }
}

fn typename_matches(value: &Node, types: &std::collections::BTreeSet<String>, schema: &SchemaIndex) -> bool {
    value.typename().is_some_and(|t| types.contains(t) || types.iter().any(|c| schema.type_condition_matches(c, t)))
}

/// Applies planner rewrites (value setters and key renames) in place.
pub fn apply_rewrites(value: &mut Node, rewrites: &[FetchRewrite], schema: &SchemaIndex) {
    for rewrite in rewrites {
        match rewrite {
            FetchRewrite::ValueSetter(setter) => {
                set_value(value, &setter.path, &Node::string(&setter.set_value_to), schema)
            }
            FetchRewrite::KeyRenamer(renamer) => rename_key(value, &renamer.path, &renamer.rename_key_to, schema),
        }
    }
}

/// The planner's key renames applied to a subgraph error's path, so an error
/// at `_internal_qp_alias_0` is reported at the field the client asked for.
/// `data` is the subgraph's answer before its rewrites, for type conditions.
pub fn rename_error_path(path: &mut [PathSegment], data: &Node, rewrites: &[FetchRewrite], schema: &SchemaIndex) {
    for rewrite in rewrites {
        if let FetchRewrite::KeyRenamer(renamer) = rewrite {
            if let Some(at) = renamed_position(path, 0, &renamer.path, data, schema) {
                path[at] = PathSegment::Key(renamer.rename_key_to.clone());
            }
        }
    }
}

/// Where in `path` (from `at`) the last key of a rename path falls, if the
/// error path follows it; list indices in the error path step through lists.
fn renamed_position(
    path: &[PathSegment],
    at: usize,
    rename: &[FetchNodePathSegment],
    value: &Node,
    schema: &SchemaIndex,
) -> Option<usize> {
    if let Node::Array(items) = value {
        let PathSegment::Index(index) = path.get(at)? else { return None };
        return renamed_position(path, at + 1, rename, items.get(*index)?, schema);
    }
    match rename.first()? {
        FetchNodePathSegment::TypenameEquals(types) if typename_matches(value, types, schema) => {
            renamed_position(path, at, &rename[1..], value, schema)
        }
        FetchNodePathSegment::TypenameEquals(_) => None,
        FetchNodePathSegment::Key(key) => {
            let PathSegment::Key(segment) = path.get(at)? else { return None };
            if segment != key {
                return None;
            }
            if rename.len() == 1 {
                Some(at)
            } else {
                renamed_position(path, at + 1, &rename[1..], value.get(key)?, schema)
            }
        }
    }
}

fn set_value(value: &mut Node, path: &[FetchNodePathSegment], new: &Node, schema: &SchemaIndex) {
    if let Node::Array(items) = value {
        for item in items {
            set_value(item, path, new, schema);
        }
        return;
    }
    match path.first() {
        None => *value = new.clone(),
        Some(FetchNodePathSegment::TypenameEquals(types)) if typename_matches(value, types, schema) => {
            set_value(value, &path[1..], new, schema);
        }
        Some(FetchNodePathSegment::TypenameEquals(_)) => {}
        Some(FetchNodePathSegment::Key(key)) => {
            if let Node::Object(map) = value {
                if path.len() == 1 {
                    map.insert(key.as_str(), new.clone());
                } else if let Some(child) = map.get_mut(key) {
                    set_value(child, &path[1..], new, schema);
                }
            }
        }
    }
}

fn rename_key(value: &mut Node, path: &[FetchNodePathSegment], to: &str, schema: &SchemaIndex) {
    if let Node::Array(items) = value {
        for item in items {
            rename_key(item, path, to, schema);
        }
        return;
    }
    match path.first() {
        None => {}
        Some(FetchNodePathSegment::TypenameEquals(types)) if typename_matches(value, types, schema) => {
            rename_key(value, &path[1..], to, schema);
        }
        Some(FetchNodePathSegment::TypenameEquals(_)) => {}
        Some(FetchNodePathSegment::Key(key)) => {
            if let Node::Object(map) = value {
                if path.len() == 1 {
                    if let Some(v) = map.remove(key) {
                        map.insert(to, v);
                    }
                } else if let Some(child) = map.get_mut(key) {
                    rename_key(child, &path[1..], to, schema);
                }
            }
        }
    }
}

/// The representation of one entity as a value (see [`write_representation`]),
/// for the fetches whose representations need more than writing: input
/// rewrites, or a `requires` set that repeats a response key (reading the
/// text back keeps the last one, as a map would).
pub fn representation(entity: &Node, requires: &SelectionSet, schema: &SchemaIndex) -> Option<Node> {
    let mut text = Vec::new();
    if !write_representation(entity, requires, schema, &mut text) {
        return None;
    }
    serde_json::from_slice(&text).ok()
}

/// Whether a selection set names one response key twice at some level
/// (directly or through inline fragments). [`write_representation`] writes
/// each selection as it comes, so such a set's text repeats the key and goes
/// through [`representation`] before it is sent.
pub fn repeats_keys(selections: &SelectionSet) -> bool {
    fn level<'s>(selections: &'s SelectionSet, keys: &mut Vec<&'s str>) -> bool {
        selections.items.iter().any(|item| match item {
            SelectionItem::Field(field) => {
                let key = field.selection_identifier();
                let repeated = keys.contains(&key);
                keys.push(key);
                repeated || (!field.selections.is_empty() && repeats_keys(&field.selections))
            }
            SelectionItem::InlineFragment(fragment) => level(&fragment.selections, keys),
            SelectionItem::FragmentSpread(_) => false,
        })
    }
    level(selections, &mut Vec::new())
}

/// Writes the representation of one entity (the fetch's `requires` applied to
/// it) as JSON at the end of `out`, without building it as a value first.
/// Returns `false`, with `out` unchanged, when the entity lacks a required
/// field (an earlier fetch failed) or no part of `requires` applies to its
/// type; such an entity is not sent.
pub fn write_representation(entity: &Node, requires: &SelectionSet, schema: &SchemaIndex, out: &mut Vec<u8>) -> bool {
    let Node::Object(object) = entity else { return false };
    let Some(typename) = object.typename() else { return false };
    let start = out.len();
    out.push(b'{');
    let mut matched = false;
    let written = write_requires(object, typename, requires, schema, out, &mut true, &mut matched, true);
    if written.is_some() && matched {
        out.push(b'}');
        true
    } else {
        out.truncate(start);
        false
    }
}

#[allow(clippy::too_many_arguments)]
fn write_requires(
    object: &Object,
    typename: &str,
    selections: &SelectionSet,
    schema: &SchemaIndex,
    out: &mut Vec<u8>,
    first: &mut bool,
    matched: &mut bool,
    top: bool,
) -> Option<()> {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                if top {
                    *matched = true;
                }
                let source = object.get(&field.name)?;
                if !std::mem::take(first) {
                    out.push(b',');
                }
                write_name(out, field.selection_identifier());
                out.push(b':');
                if field.selections.is_empty() {
                    source.write_json(out);
                } else {
                    write_requires_value(source, &field.selections, schema, out)?;
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                if schema.type_condition_matches(&fragment.type_condition, typename) {
                    if top {
                        *matched = true;
                    }
                    write_requires(object, typename, &fragment.selections, schema, out, first, matched, false)?;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Some(())
}

fn write_requires_value(
    value: &Node,
    selections: &SelectionSet,
    schema: &SchemaIndex,
    out: &mut Vec<u8>,
) -> Option<()> {
    match value {
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_requires_value(item, selections, schema, out)?;
            }
            out.push(b']');
        }
        Node::Object(object) => {
            let typename = object.typename().unwrap_or("");
            out.push(b'{');
            write_requires(object, typename, selections, schema, out, &mut true, &mut false, false)?;
            out.push(b'}');
        }
        other => other.write_json(out),
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hive_router_query_planner::planner::plan_nodes::{FlattenNodePath, KeyRenamer, ValueSetter};
    use hive_router_query_planner::utils::parsing::parse_schema;
    use serde_json::{json, Value};

    use super::*;

    fn node(value: Value) -> Node {
        Node::from(value)
    }

    fn schema() -> SchemaIndex {
        let document = parse_schema(
            "interface Media { id: ID! } type Book implements Media { id: ID! } type Admin { id: ID! } type Query { m: Media }",
        );
        SchemaIndex::new(Arc::new(document))
    }

    /// `source` merged into `target` by moving and by copying, which must agree.
    fn merged(target: Value, source: Value, schema: &SchemaIndex) -> Value {
        let (mut moved, mut copied, source) = (node(target.clone()), node(target), node(source));
        deep_merge_copy(&mut copied, &source, schema);
        deep_merge(&mut moved, source, schema);
        assert_eq!(moved.to_json(), copied.to_json());
        moved.to_json()
    }

    #[test]
    fn deep_merge_keeps_a_concrete_typename_over_an_interface_name() {
        let schema = schema();
        let target = json!({"__typename": "Book", "id": "1"});
        let merged_in = merged(target, json!({"__typename": "Media", "rating": 5}), &schema);
        assert_eq!(merged_in, json!({"__typename": "Book", "id": "1", "rating": 5}));

        let target = json!({"__typename": "Media", "id": "1"});
        assert_eq!(merged(target, json!({"__typename": "Book"}), &schema)["__typename"], "Book");
    }

    #[test]
    fn deep_merge_combines_lists_element_by_element_and_keeps_values_over_null() {
        let schema = schema();
        let target = json!({"a": [{"x": 1}, {"x": 2}], "b": "kept", "c": [1]});
        let source = json!({"a": [{"y": 1}, {"y": 2}], "b": null, "c": [1, 2], "d": {"e": [null]}});
        assert_eq!(
            merged(target, source, &schema),
            json!({"a": [{"x": 1, "y": 1}, {"x": 2, "y": 2}], "b": "kept", "c": [1, 2], "d": {"e": [null]}})
        );
    }

    #[test]
    fn merging_a_copy_leaves_the_source_as_it_was() {
        let schema = schema();
        let source =
            node(json!({"id": "1", "reviews": [{"body": "a review body much longer than twenty-four bytes"}]}));
        let before = source.to_json();
        let mut first = node(json!({"id": "1"}));
        let mut second = node(json!({"id": "1", "name": "x"}));
        deep_merge_copy(&mut first, &source, &schema);
        deep_merge_copy(&mut second, &source, &schema);
        assert_eq!(source.to_json(), before);
        assert_eq!(first.to_json(), before);
        assert_eq!(second.to_json()["reviews"], before["reviews"]);
    }

    /// The planner's rename of `accounts[].(Admin)._internal_qp_alias_0` to `name`.
    fn admin_alias_renamed_to_name() -> FetchRewrite {
        FetchRewrite::KeyRenamer(KeyRenamer {
            path: vec![
                FetchNodePathSegment::Key("accounts".into()),
                FetchNodePathSegment::TypenameEquals(["Admin".to_string()].into()),
                FetchNodePathSegment::Key("_internal_qp_alias_0".into()),
            ],
            rename_key_to: "name".into(),
        })
    }

    #[test]
    fn key_renames_follow_typename_conditions_through_lists() {
        let schema = schema();
        let mut data = node(json!({"accounts": [
            {"__typename": "Book", "_internal_qp_alias_0": "b"},
            {"__typename": "Admin", "_internal_qp_alias_0": "a"}
        ]}));
        let rewrite = admin_alias_renamed_to_name();
        apply_rewrites(&mut data, &[rewrite], &schema);
        assert_eq!(
            data.to_json(),
            json!({"accounts": [
                {"__typename": "Book", "_internal_qp_alias_0": "b"},
                {"__typename": "Admin", "name": "a"}
            ]})
        );
    }

    #[test]
    fn error_paths_follow_key_renames_only_where_the_rename_applies() {
        let schema = schema();
        let data = node(json!({"accounts": [
            {"__typename": "Book", "_internal_qp_alias_0": "b"},
            {"__typename": "Admin", "_internal_qp_alias_0": null}
        ]}));
        let rewrite = admin_alias_renamed_to_name();
        let path = |index: usize| {
            vec![
                PathSegment::Key("accounts".into()),
                PathSegment::Index(index),
                PathSegment::Key("_internal_qp_alias_0".into()),
            ]
        };
        let mut admin = path(1);
        rename_error_path(&mut admin, &data, std::slice::from_ref(&rewrite), &schema);
        assert_eq!(admin[2], PathSegment::Key("name".into()));
        // The Book's alias is not renamed, and a path into nowhere stays as is.
        for (index, expected) in [(0, "_internal_qp_alias_0"), (7, "_internal_qp_alias_0")] {
            let mut other = path(index);
            rename_error_path(&mut other, &data, std::slice::from_ref(&rewrite), &schema);
            assert_eq!(other[2], PathSegment::Key(expected.into()));
        }
    }

    #[test]
    fn value_setters_rewrite_the_typename_of_matching_representations() {
        let schema = schema();
        let mut rep = node(json!({"__typename": "Book", "id": "1"}));
        let rewrite = FetchRewrite::ValueSetter(ValueSetter {
            path: vec![
                FetchNodePathSegment::TypenameEquals(["Book".to_string()].into()),
                FetchNodePathSegment::Key("__typename".into()),
            ],
            set_value_to: "Media".into(),
        });
        apply_rewrites(&mut rep, &[rewrite], &schema);
        assert_eq!(rep.to_json(), json!({"__typename": "Media", "id": "1"}));
    }

    #[test]
    fn flatten_paths_skip_nulls_and_filter_by_type() {
        let schema = schema();
        let data = node(
            json!({"list": [{"__typename": "Book", "id": "1"}, null, {"__typename": "Admin", "id": "2"}, [{"__typename": "Book", "id": "3"}]]}),
        );
        let path: FlattenNodePath = serde_json::from_value(json!([
            {"Field": "list"}, "@", {"TypeCondition": ["Book"]}
        ]))
        .unwrap();
        let mut paths = Vec::new();
        collect_targets(&data, path.as_slice(), &schema, &mut Vec::new(), &mut |at, _| paths.push(at.to_vec()));
        assert_eq!(
            paths,
            vec![
                vec![PathStep::Key("list"), PathStep::Index(0)],
                vec![PathStep::Key("list"), PathStep::Index(3), PathStep::Index(0)]
            ]
        );
    }

    #[test]
    fn a_representation_without_a_required_field_is_not_sent() {
        let schema = schema();
        let document = graphql_tools::parser::parse_query::<String>("{ ... on Book { __typename id } }").unwrap();
        let requires = match document.definitions.into_iter().next() {
            Some(graphql_tools::parser::query::Definition::Operation(
                graphql_tools::parser::query::OperationDefinition::SelectionSet(set),
            )) => hive_router_query_planner::ast::selection_set::SelectionSet::from(set),
            _ => unreachable!(),
        };
        assert_eq!(
            rep(json!({"__typename": "Book", "id": "1", "extra": true}), &requires, &schema),
            Some(json!({"__typename": "Book", "id": "1"}))
        );
        assert_eq!(rep(json!({"__typename": "Book"}), &requires, &schema), None);
        assert_eq!(rep(json!({"__typename": "Admin", "id": "2"}), &requires, &schema), None);
    }

    /// [`representation`] of a JSON entity, as JSON.
    fn rep(entity: Value, requires: &SelectionSet, schema: &SchemaIndex) -> Option<Value> {
        representation(&node(entity), requires, schema).map(|rep| rep.to_json())
    }

    fn selection_set(source: &str) -> SelectionSet {
        let document = graphql_tools::parser::parse_query::<String>(source).unwrap();
        match document.definitions.into_iter().next() {
            Some(graphql_tools::parser::query::Definition::Operation(
                graphql_tools::parser::query::OperationDefinition::SelectionSet(set),
            )) => SelectionSet::from(set),
            _ => unreachable!(),
        }
    }

    #[test]
    fn representations_follow_requires_through_aliases_lists_and_nulls() {
        let schema = schema();
        let requires = selection_set(r#"{ ... on Book { __typename id m: meta { __typename tags } } }"#);
        let cases = [
            (
                json!({"__typename": "Book", "id": "1", "meta": {"__typename": "Meta", "tags": ["a", "\"q\""], "x": 1}}),
                Some(json!({"__typename": "Book", "id": "1", "m": {"__typename": "Meta", "tags": ["a", "\"q\""]}})),
            ),
            (
                json!({"__typename": "Book", "id": "2", "meta": [null, {"__typename": "Meta", "tags": []}]}),
                Some(json!({"__typename": "Book", "id": "2", "m": [null, {"__typename": "Meta", "tags": []}]})),
            ),
            (
                json!({"__typename": "Book", "id": "3", "meta": null}),
                Some(json!({"__typename": "Book", "id": "3", "m": null})),
            ),
            // A missing required field, anywhere, means no representation.
            (json!({"__typename": "Book", "id": "4"}), None),
            (json!({"__typename": "Book", "id": "4", "meta": {"__typename": "Meta"}}), None),
            // No part of `requires` applies to the type, or there is no type.
            (json!({"__typename": "Admin", "id": "5", "meta": null}), None),
            (json!({"id": "6"}), None),
            (json!([1]), None),
        ];
        for (entity, expected) in cases {
            let mut out = b"prefix".to_vec();
            let written = write_representation(&node(entity.clone()), &requires, &schema, &mut out);
            assert_eq!(written, expected.is_some(), "{entity}");
            match &expected {
                Some(expected) => assert_eq!(&serde_json::from_slice::<Value>(&out[6..]).unwrap(), expected),
                None => assert_eq!(out, b"prefix", "nothing is left behind"),
            }
            assert_eq!(rep(entity, &requires, &schema), expected);
        }
    }

    #[test]
    fn a_repeated_key_is_written_twice_and_read_back_once() {
        let schema = schema();
        let requires = selection_set("{ __typename id ... on Book { id } }");
        assert!(repeats_keys(&requires));
        let entity = node(json!({"__typename": "Book", "id": "1"}));
        let mut out = Vec::new();
        assert!(write_representation(&entity, &requires, &schema, &mut out));
        assert_eq!(out, br#"{"__typename":"Book","id":"1","id":"1"}"#);
        assert_eq!(
            representation(&entity, &requires, &schema).map(|rep| rep.to_json()),
            Some(json!({"__typename": "Book", "id": "1"}))
        );
    }

    #[test]
    fn repeated_response_keys_are_found_at_any_level() {
        assert!(repeats_keys(&selection_set("{ ... on Book { id } ... on Media { id } }")));
        assert!(repeats_keys(&selection_set("{ id a: name a: id }")));
        assert!(repeats_keys(&selection_set("{ id meta { x ... on Meta { x } } }")));
        assert!(!repeats_keys(&selection_set("{ id a: name meta { id } }")));
    }
}
