//! Entity fetches (`_entities`): representations gathered from the response
//! tree, de-duplicated, sent in one request per fetch, and the results merged
//! back into every place each representation came from.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::{DefaultHashBuilder, HashTable};
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::planner::plan_nodes::{BatchFetchNode, FetchNode, FetchRewrite, FlattenNodePathSegment};
use serde_json::Value;

use super::fetch::{raw_path, request_body, subgraph_error, take_field};
use super::merge::{
    apply_rewrites, collect_targets, deep_merge, deep_merge_copy, get_mut, rename_error_path, repeats_keys,
    representation, write_representation,
};
use super::tree::Node;
use super::Execution;
use crate::error::{GraphQLError, PathSegment, PathStep};

/// The entities one `_entities` field asks for.
struct EntityJob<'p> {
    /// The unique representations, in request order, as one JSON array.
    representations: Vec<u8>,
    /// How many representations the array holds.
    count: usize,
    /// The steps of every location, one after the other, packed (see
    /// [`EntityJob::pack`]): a deep list of entities has hundreds of
    /// locations of a dozen steps each, which as [`PathStep`]s took more
    /// memory than the entities themselves.
    steps: Vec<u32>,
    /// The field names the steps name, each once per place in the plan.
    keys: Vec<&'p str>,
    /// Each place in the response tree (a range of `steps`), with the
    /// representation it maps to.
    locations: Vec<(Range<u32>, usize)>,
}

/// Marks a packed step that names a field (the rest is its place in `keys`).
const KEY_STEP: u32 = 1 << 31;

impl<'p> EntityJob<'p> {
    /// Appends a location's steps; `false` (and nothing appended) for a list
    /// index too large to pack, which no response within the size limits has.
    fn pack(&mut self, location: &[PathStep<'p>]) -> bool {
        let from = self.steps.len();
        for step in location {
            let packed = match *step {
                PathStep::Index(i) => match u32::try_from(i) {
                    Ok(i) if i < KEY_STEP => i,
                    _ => {
                        self.steps.truncate(from);
                        return false;
                    }
                },
                PathStep::Key(key) => {
                    // Keys borrow from the plan's few path segments, so
                    // they are told apart by address, not by text (one
                    // text at two addresses is kept twice, which is harmless).
                    let at = match self.keys.iter().position(|k| std::ptr::eq(*k, key)) {
                        Some(at) => at,
                        None => {
                            self.keys.push(key);
                            self.keys.len() - 1
                        }
                    };
                    KEY_STEP | at as u32
                }
            };
            self.steps.push(packed);
        }
        true
    }

    fn location(&self, range: &Range<u32>) -> impl Iterator<Item = PathStep<'p>> + '_ {
        self.steps[range.start as usize..range.end as usize].iter().map(|&step| {
            if step & KEY_STEP == 0 {
                PathStep::Index(step as usize)
            } else {
                PathStep::Key(self.keys[(step & !KEY_STEP) as usize])
            }
        })
    }
}

/// Finds a representation already in the array by its text.
#[derive(Default)]
struct Unique {
    hasher: DefaultHashBuilder,
    /// Indexes into `texts`, hashed by their text.
    table: HashTable<usize>,
    /// Where each unique representation's text is in the array.
    texts: Vec<Range<usize>>,
}

impl Unique {
    /// The index of the representation at `text` of `array`: an earlier equal
    /// one's, or a new one.
    fn index(&mut self, array: &[u8], text: Range<usize>) -> (usize, bool) {
        let Self { hasher, table, texts } = self;
        let hash = hasher.hash_one(&array[text.clone()]);
        if let Some(&index) = table.find(hash, |&i| array[texts[i].clone()] == array[text.clone()]) {
            return (index, false);
        }
        texts.push(text);
        let index = texts.len() - 1;
        table.insert_unique(hash, index, |&i| hasher.hash_one(&array[texts[i].clone()]));
        (index, true)
    }
}

impl Execution<'_> {
    /// Walks the response tree once per flatten path, writing each target's
    /// representation straight into the request's array and remembering
    /// where it goes.
    fn collect_entities<'p>(
        &self,
        paths: &[&'p [FlattenNodePathSegment]],
        requires: &SelectionSet,
        input_rewrites: Option<&Vec<FetchRewrite>>,
    ) -> EntityJob<'p> {
        let schema = &self.supergraph.schema;
        // Rewrites and repeated keys need the representation as a value.
        let direct = input_rewrites.is_none() && !repeats_keys(requires);
        self.with_data(|data| {
            let mut job = EntityJob {
                representations: vec![b'['],
                count: 0,
                steps: Vec::new(),
                keys: Vec::new(),
                locations: Vec::new(),
            };
            let mut unique = Unique::default();
            let mut path = Vec::new();
            for segments in paths {
                collect_targets(data, segments, schema, &mut path, &mut |location, entity| {
                    let array = &mut job.representations;
                    let before = array.len();
                    if job.count > 0 {
                        array.push(b',');
                    }
                    let start = array.len();
                    let written = if direct {
                        write_representation(entity, requires, schema, array)
                    } else {
                        match representation(entity, requires, schema) {
                            Some(mut rep) => {
                                if let Some(rewrites) = input_rewrites {
                                    apply_rewrites(&mut rep, rewrites, schema);
                                }
                                rep.write_json(array);
                                true
                            }
                            None => false,
                        }
                    };
                    if !written {
                        array.truncate(before);
                        return;
                    }
                    let from = job.steps.len() as u32;
                    if !job.pack(location) {
                        job.representations.truncate(before);
                        return;
                    }
                    let array = &mut job.representations;
                    let end = array.len();
                    let (index, new) = unique.index(array, start..end);
                    if new {
                        job.count += 1;
                    } else {
                        array.truncate(before);
                    }
                    job.locations.push((from..job.steps.len() as u32, index));
                });
            }
            job.representations.push(b']');
            job
        })
    }

    /// Merges the `_entities` list (or a batch alias's list) and rewrites the
    /// paths of errors that point into it.
    fn merge_entities(
        &self,
        job: &EntityJob<'_>,
        entities: Cow<'_, Node>,
        output_rewrites: Option<&Vec<FetchRewrite>>,
        errors: &[&Value],
        list_key: &str,
        service: &str,
    ) {
        let schema = &self.supergraph.schema;
        let mut client_errors = Vec::new();
        for raw in errors {
            let path = raw_path(raw);
            let entity_index = match path.as_deref() {
                Some([PathSegment::Key(key), PathSegment::Index(i), ..]) if key == list_key => Some(*i),
                _ => None,
            };
            match entity_index {
                Some(i) => {
                    let mut rest = path.as_deref().unwrap_or_default()[2..].to_vec();
                    let entity = match &*entities {
                        Node::Array(list) => list.get(i),
                        _ => None,
                    };
                    if let (Some(rewrites), Some(entity)) = (output_rewrites, entity) {
                        rename_error_path(&mut rest, entity, rewrites, schema);
                    }
                    let mut mapped = false;
                    for (location, _) in job.locations.iter().filter(|(_, index)| *index == i) {
                        let mut client_path: Vec<PathSegment> = job.location(location).map(PathStep::owned).collect();
                        client_path.extend_from_slice(&rest);
                        client_errors.push(subgraph_error(raw, service, Some(client_path)));
                        mapped = true;
                    }
                    if !mapped {
                        client_errors.push(subgraph_error(raw, service, None));
                    }
                }
                None => client_errors.push(subgraph_error(raw, service, None)),
            }
        }
        self.push_errors(client_errors);

        let mut entities: Cow<'_, [Node]> = match entities {
            Cow::Owned(Node::Array(list)) => Cow::Owned(list.into_vec()),
            Cow::Borrowed(Node::Array(list)) => Cow::Borrowed(list),
            _ => return,
        };
        if let Some(rewrites) = output_rewrites {
            for entity in entities.to_mut() {
                apply_rewrites(entity, rewrites, schema);
            }
        }
        let mut remaining_uses = vec![0usize; entities.len()];
        for (_, index) in &job.locations {
            if let Some(uses) = remaining_uses.get_mut(*index) {
                *uses += 1;
            }
        }
        self.with_data(|data| {
            for (location, index) in &job.locations {
                let index = *index;
                if !matches!(entities.get(index), Some(Node::Object(_))) {
                    continue;
                }
                remaining_uses[index] -= 1;
                let Some(target) = get_mut(data, job.location(location)) else { continue };
                // The last place a representation of the request's own is
                // merged into takes the value; earlier duplicates, and every
                // place of a shared answer, copy what they lack from it.
                match &mut entities {
                    Cow::Owned(list) if remaining_uses[index] == 0 => {
                        deep_merge(target, std::mem::take(&mut list[index]), schema)
                    }
                    _ => deep_merge_copy(target, &entities[index], schema),
                }
            }
        });
    }

    /// `Flatten(path) { Fetch { requires } }`: one `_entities` request.
    pub(super) async fn entity_fetch(&self, path: &[FlattenNodePathSegment], fetch: &FetchNode) {
        let Some(requires) = &fetch.requires else {
            tracing::error!(subgraph = %fetch.service_name, "entity fetch without requires");
            self.push_error(GraphQLError::internal());
            return;
        };
        let job = self.collect_entities(&[path], requires, fetch.input_rewrites.as_ref());
        if job.count == 0 {
            return;
        }
        let body = request_body(
            &fetch.operation.document_str,
            self.variables,
            fetch.variable_usages.as_ref(),
            &[("representations", &job.representations)],
        );
        let mut response = match self.send(&fetch.service_name, body, true).await {
            Ok(response) => response,
            Err(error) => {
                self.push_error(error);
                return;
            }
        };
        let (errors, mut data) = response.parts();
        let errors: Vec<&Value> = errors.iter().collect();
        let entities = take_field(&mut data, "_entities");
        self.merge_entities(&job, entities, fetch.output_rewrites.as_ref(), &errors, "_entities", &fetch.service_name);
    }

    /// A batched fetch: several aliased `_entities` fields in one request.
    pub(super) async fn batch_fetch(&self, batch: &BatchFetchNode) {
        let jobs: Vec<EntityJob<'_>> = batch
            .entity_batch
            .aliases
            .iter()
            .map(|alias| {
                let paths: Vec<&[FlattenNodePathSegment]> = alias.merge_paths.iter().map(|p| p.as_slice()).collect();
                self.collect_entities(&paths, &alias.requires, alias.input_rewrites.as_ref())
            })
            .collect();
        if jobs.iter().all(|job| job.count == 0) {
            return;
        }
        let extra: Vec<(&str, &[u8])> = batch
            .entity_batch
            .aliases
            .iter()
            .zip(&jobs)
            .map(|(alias, job)| (alias.representations_variable_name.as_str(), job.representations.as_slice()))
            .collect();
        let body = request_body(&batch.operation.document_str, self.variables, batch.variable_usages.as_ref(), &extra);
        let mut response = match self.send(&batch.service_name, body, true).await {
            Ok(response) => response,
            Err(error) => {
                self.push_error(error);
                return;
            }
        };
        let (errors, mut data) = response.parts();
        let errors: Vec<&Value> = errors.iter().collect();
        for (alias, job) in batch.entity_batch.aliases.iter().zip(&jobs) {
            let entities = take_field(&mut data, &alias.alias);
            let alias_errors: Vec<&Value> = errors
                .iter()
                .copied()
                .filter(|raw| {
                    raw.get("path").and_then(|p| p.get(0)).and_then(Value::as_str) == Some(alias.alias.as_str())
                })
                .collect();
            self.merge_entities(
                job,
                entities,
                alias.output_rewrites.as_ref(),
                &alias_errors,
                &alias.alias,
                &batch.service_name,
            );
        }
        // Errors that point at no alias are still reported once.
        let aliases: Vec<&str> = batch.entity_batch.aliases.iter().map(|a| a.alias.as_str()).collect();
        let unplaced = errors.iter().filter(|raw| {
            !raw.get("path")
                .and_then(|p| p.get(0))
                .and_then(Value::as_str)
                .is_some_and(|first| aliases.contains(&first))
        });
        let unplaced: Vec<GraphQLError> = unplaced.map(|raw| subgraph_error(raw, &batch.service_name, None)).collect();
        self.push_errors(unplaced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> EntityJob<'static> {
        EntityJob { representations: Vec::new(), count: 0, steps: Vec::new(), keys: Vec::new(), locations: Vec::new() }
    }

    #[test]
    fn packed_locations_read_back_as_the_steps_they_were() {
        let mut job = job();
        let first = [PathStep::Key("users"), PathStep::Index(3), PathStep::Key("reviews"), PathStep::Index(0)];
        let second = [PathStep::Key("users"), PathStep::Index(7), PathStep::Index(2), PathStep::Key("author")];
        assert!(job.pack(&first));
        assert!(job.pack(&second));
        assert_eq!(job.keys, ["users", "reviews", "author"], "each name is kept once");
        assert_eq!(job.location(&(0..4)).collect::<Vec<_>>(), first);
        assert_eq!(job.location(&(4..8)).collect::<Vec<_>>(), second);
    }

    #[test]
    fn an_index_too_large_to_pack_leaves_nothing_behind() {
        let mut job = job();
        assert!(!job.pack(&[PathStep::Key("list"), PathStep::Index(KEY_STEP as usize)]));
        assert!(job.steps.is_empty());
        assert!(job.pack(&[PathStep::Index(KEY_STEP as usize - 1)]));
        assert_eq!(job.location(&(0..1)).collect::<Vec<_>>(), [PathStep::Index(KEY_STEP as usize - 1)]);
    }
}
