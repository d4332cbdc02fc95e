//! Stage 1: turn the request's document text into an AST, refusing documents
//! that are too big or too deep before any recursive code touches them.

use std::collections::HashMap;

use graphql_tools::static_graphql::query::{Definition, Document, OperationDefinition, Selection, SelectionSet};

use crate::config::Limits;
use crate::error::{codes, GraphQLError, RequestError};

/// Parses `query` under `limits`.
///
/// The raw text is scanned for bracket nesting first: the parser is recursive,
/// and a document nested thousands deep would otherwise exhaust the stack.
pub fn parse(query: &str, limits: &Limits) -> Result<Document, RequestError> {
    if query.trim().is_empty() {
        return Err(RequestError::BadRequest(GraphQLError::new("The request has an empty query", codes::BAD_REQUEST)));
    }
    let nesting = max_bracket_nesting(query);
    // Arguments and input objects nest too, so the text may go somewhat deeper
    // than the selection depth limit.
    if nesting > limits.max_depth + 16 {
        return Err(limit_error(format!(
            "The document is nested {nesting} levels deep, more than the {} allowed",
            limits.max_depth
        )));
    }
    let document = graphql_tools::parser::parse_query_with_token_limit::<String>(query, limits.max_tokens)
        .map_err(|e| {
            let message = e.to_string();
            let message = message.trim().replace('\n', " ");
            if message.contains("Token limit exceeded") || message.contains("Recursion limit exceeded") {
                return limit_error(format!("The document is too large or too deep: {message}"));
            }
            let error = GraphQLError::new(format!("Syntax error: {message}"), codes::GRAPHQL_PARSE_FAILED);
            RequestError::Parse(match error_location(&message) {
                Some((line, column)) => error.with_location(line, column),
                None => error,
            })
        })?
        .into_static();
    check_limits(&document, limits)?;
    Ok(document)
}

/// The `line:column` the parser names in its message ("Parse error at 3:14").
fn error_location(message: &str) -> Option<(usize, usize)> {
    let (_, rest) = message.split_once("error at ")?;
    let position = rest.split(|c: char| !(c.is_ascii_digit() || c == ':')).next()?;
    let (line, column) = position.split_once(':')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

fn limit_error(message: String) -> RequestError {
    RequestError::Parse(GraphQLError::new(message, codes::LIMIT_EXCEEDED))
}

/// The deepest nesting of `{`, `(` and `[` outside strings and comments.
fn max_bracket_nesting(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 2;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// Fragment spreads found in a selection set (not following spreads).
fn spreads<'d>(selection_set: &'d SelectionSet, out: &mut Vec<&'d str>) {
    for item in &selection_set.items {
        match item {
            Selection::Field(f) => spreads(&f.selection_set, out),
            Selection::InlineFragment(f) => spreads(&f.selection_set, out),
            Selection::FragmentSpread(s) => out.push(s.fragment_name.as_str()),
        }
    }
}

/// The name of a fragment that spreads itself (directly or through others).
///
/// Checked before validation on purpose: one of graphql-tools' rules recurses
/// through fragment cycles without bound and overflows the stack (found by
/// cargo-fuzz), so a cyclic document must never reach it.
fn fragment_cycle(document: &Document) -> Option<String> {
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for definition in &document.definitions {
        if let Definition::Fragment(f) = definition {
            let mut out = Vec::new();
            spreads(&f.selection_set, &mut out);
            edges.entry(f.name.as_str()).or_default().extend(out);
        }
    }
    // Iterative depth-first search: 0 unvisited, 1 on the stack, 2 done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    for &start in edges.keys() {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, next)) = stack.last_mut() {
            let children = edges.get(*node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&child) = children.get(*next) {
                *next += 1;
                match state.get(child).copied().unwrap_or(0) {
                    1 => return Some(child.to_string()),
                    0 if edges.contains_key(child) => {
                        state.insert(child, 1);
                        stack.push((child, 0));
                    }
                    _ => {}
                }
            } else {
                state.insert(*node, 2);
                stack.pop();
            }
        }
    }
    None
}

/// Selection depth (fragments followed), alias count and root field count.
fn check_limits(document: &Document, limits: &Limits) -> Result<(), RequestError> {
    if let Some(name) = fragment_cycle(document) {
        return Err(RequestError::Validation(vec![GraphQLError::new(
            format!("Cannot spread fragment \"{name}\" within itself."),
            codes::GRAPHQL_VALIDATION_FAILED,
        )]));
    }
    let fragments: HashMap<&str, &SelectionSet> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some((f.name.as_str(), &f.selection_set)),
            _ => None,
        })
        .collect();
    let mut walker = LimitWalker { fragments: &fragments, depth_memo: HashMap::new(), in_progress: Vec::new() };

    let mut aliases = 0usize;
    for definition in &document.definitions {
        let selection_set = match definition {
            Definition::Operation(op) => operation_selection_set(op),
            Definition::Fragment(f) => &f.selection_set,
        };
        aliases += count_aliases(selection_set);
        if let Definition::Operation(op) = definition {
            let depth = walker.depth(operation_selection_set(op));
            if depth > limits.max_depth {
                return Err(limit_error(format!(
                    "The operation is {depth} levels deep, more than the {} allowed",
                    limits.max_depth
                )));
            }
            let root_fields = walker.root_fields(operation_selection_set(op), 0);
            if root_fields > limits.max_root_fields {
                return Err(limit_error(format!(
                    "The operation selects {root_fields} root fields, more than the {} allowed",
                    limits.max_root_fields
                )));
            }
        }
    }
    if aliases > limits.max_aliases {
        return Err(limit_error(format!(
            "The document has {aliases} aliases, more than the {} allowed",
            limits.max_aliases
        )));
    }
    Ok(())
}

pub fn operation_selection_set(op: &OperationDefinition) -> &SelectionSet {
    match op {
        OperationDefinition::SelectionSet(s) => s,
        OperationDefinition::Query(q) => &q.selection_set,
        OperationDefinition::Mutation(m) => &m.selection_set,
        OperationDefinition::Subscription(s) => &s.selection_set,
    }
}

fn count_aliases(selection_set: &SelectionSet) -> usize {
    selection_set
        .items
        .iter()
        .map(|item| match item {
            Selection::Field(f) => usize::from(f.alias.is_some()) + count_aliases(&f.selection_set),
            Selection::InlineFragment(f) => count_aliases(&f.selection_set),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

struct LimitWalker<'a> {
    fragments: &'a HashMap<&'a str, &'a SelectionSet>,
    depth_memo: HashMap<&'a str, usize>,
    in_progress: Vec<&'a str>,
}

impl<'a> LimitWalker<'a> {
    /// Depth in fields. Fragment cycles count as depth 0 here; validation
    /// rejects them later.
    fn depth(&mut self, selection_set: &'a SelectionSet) -> usize {
        let mut max = 0;
        for item in &selection_set.items {
            let d = match item {
                Selection::Field(f) => 1 + self.depth(&f.selection_set),
                Selection::InlineFragment(f) => self.depth(&f.selection_set),
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.as_str();
                    if let Some(d) = self.depth_memo.get(name) {
                        *d
                    } else if self.in_progress.contains(&name) || self.in_progress.len() > 64 {
                        0
                    } else if let Some(fragment) = self.fragments.get(name) {
                        self.in_progress.push(name);
                        let d = self.depth(fragment);
                        self.in_progress.pop();
                        self.depth_memo.insert(name, d);
                        d
                    } else {
                        0
                    }
                }
            };
            max = max.max(d);
        }
        max
    }

    fn root_fields(&self, selection_set: &SelectionSet, hops: usize) -> usize {
        if hops > 16 {
            return 0;
        }
        selection_set
            .items
            .iter()
            .map(|item| match item {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => self.root_fields(&f.selection_set, hops + 1),
                Selection::FragmentSpread(s) => {
                    self.fragments.get(s.fragment_name.as_str()).map(|f| self.root_fields(f, hops + 1)).unwrap_or(0)
                }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_depth: 5, max_aliases: 2, max_root_fields: 3, max_tokens: 1000 }
    }

    #[test]
    fn nesting_ignores_brackets_in_strings_and_comments() {
        assert_eq!(
            max_bracket_nesting(
                r#"{ a(x: "{{{{") # {{{{
        }"#
            ),
            2
        );
        assert_eq!(max_bracket_nesting(r#"{ a(x: """ {{{ \""" {{ """) }"#), 2);
    }

    #[test]
    fn a_deep_document_is_refused_before_parsing() {
        let deep = format!("{}{}", "{a".repeat(10_000), "}".repeat(10_000));
        let err = parse(&deep, &limits()).unwrap_err();
        assert_eq!(err.into_errors()[0].code(), codes::LIMIT_EXCEEDED);
    }

    #[test]
    fn depth_follows_fragments() {
        let doc = "{ a { ...F } } fragment F on A { b { c { d { e { f } } } } }";
        let err = parse(doc, &limits()).unwrap_err();
        assert!(err.into_errors()[0].message.contains("levels deep"));
    }

    #[test]
    fn cyclic_fragments_are_refused_before_validation() {
        for doc in [
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            "{ a { ...F } } fragment F on A { b { ...F } }",
        ] {
            let err = parse(doc, &limits()).unwrap_err();
            assert_eq!(err.into_errors()[0].code(), codes::GRAPHQL_VALIDATION_FAILED);
        }
        parse("{ ...A ...B } fragment A on Query { ...B } fragment B on Query { x }", &limits()).unwrap();
    }

    #[test]
    fn aliases_and_root_fields_are_counted() {
        assert!(parse("{ a: x b: x c: x }", &limits()).is_err());
        assert!(parse("{ a b c d }", &limits()).is_err());
        assert!(parse("{ a b c }", &limits()).is_ok());
    }
}
