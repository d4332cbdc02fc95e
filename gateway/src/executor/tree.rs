//! The response tree the executor builds: subgraph answers are parsed into
//! it, merged, read for representations and written out by the projector.
//!
//! It is shaped for that work rather than for general JSON, and for size:
//! every request that is in flight holds a tree as large as its response,
//! so a value is 24 bytes and an object entry 40. An object is a boxed
//! slice of entries in the order the subgraph sent them, searched linearly
//! (response objects have a handful of keys, where a scan beats a search
//! tree); keys and strings are 16 bytes, stored inline up to 15 bytes, so
//! most of them cost no allocation of their own, and longer ones are shared
//! by reference count, so copying a tree (a de-duplicated answer handed to
//! each request that joined it, an entity merged into several places)
//! copies no text. Parsing gathers each object's and list's members before
//! it allocates them, and merges make room for exactly the keys they add,
//! so every slice is exactly as long as its contents.

use std::fmt;

use ecow::EcoString;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

/// A string value or object key: inline up to 15 bytes, else shared text
/// that clones by reference count.
pub type Str = EcoString;

/// One value of the response tree.
#[derive(Debug, Clone, Default)]
pub enum Node {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Str),
    Array(Box<[Node]>),
    Object(Object),
}

/// An object's entries, in the order they arrived.
#[derive(Debug, Clone, Default)]
pub struct Object(Box<[(Str, Node)]>);

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k.as_str() == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    /// As [`Object::get`], searching from `*next` onwards first and then
    /// from the start; `*next` moves past the entry found. Reading an
    /// object's keys in about the order they were stored (the projector
    /// does) then compares one key per lookup instead of scanning.
    pub fn get_after(&self, key: &str, next: &mut usize) -> Option<&Node> {
        let start = (*next).min(self.0.len());
        let (tail, head) = (&self.0[start..], &self.0[..start]);
        let at = match tail.iter().position(|(k, _)| k.as_str() == key) {
            Some(i) => start + i,
            None => head.iter().position(|(k, _)| k.as_str() == key)?,
        };
        *next = at + 1;
        Some(&self.0[at].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.0.iter_mut().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    /// Changes the entries as a vector, then boxes them again. A vector
    /// whose length is its capacity boxes without moving, so `edit` keeps
    /// the slice exact by reserving exactly what it adds.
    fn edit<R>(&mut self, edit: impl FnOnce(&mut Vec<(Str, Node)>) -> R) -> R {
        let mut entries = std::mem::take(&mut self.0).into_vec();
        let result = edit(&mut entries);
        self.0 = entries.into_boxed_slice();
        result
    }

    /// Sets `key` to `value`, in place when the key is there, else at the end.
    pub fn insert(&mut self, key: impl Into<Str> + AsRef<str>, value: Node) {
        match self.position(key.as_ref()) {
            Some(at) => self.0[at].1 = value,
            None => self.edit(|entries| {
                entries.reserve_exact(1);
                entries.push((key.into(), value));
            }),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let at = self.position(key)?;
        Some(self.edit(|entries| entries.remove(at).1))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The object's `__typename`, when it has one.
    pub fn typename(&self) -> Option<&str> {
        self.get("__typename")?.as_str()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Merges `source` into `self` key by key with `merge` for keys both
    /// have; keys only `source` has are appended.
    pub fn merge_with(&mut self, source: Object, mut merge: impl FnMut(&str, &mut Node, Node)) {
        let new_keys = self.new_keys(&source);
        self.edit(|entries| {
            entries.reserve_exact(new_keys);
            for (key, value) in source.0 {
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some((k, existing)) => merge(k.as_str(), existing, value),
                    None => entries.push((key, value)),
                }
            }
        })
    }

    /// How many keys `source` has that `self` lacks: merges make room for
    /// exactly those, since an entity gains a field or two per fetch and
    /// doubling the entries for them would leave most of it unused.
    fn new_keys(&self, source: &Object) -> usize {
        source.0.iter().filter(|(key, _)| self.position(key).is_none()).count()
    }

    /// As [`Object::merge_with`] from a borrowed `source`: keys only
    /// `source` has are copied in.
    pub fn merge_from(&mut self, source: &Object, mut merge: impl FnMut(&str, &mut Node, &Node)) {
        let new_keys = self.new_keys(source);
        self.edit(|entries| {
            entries.reserve_exact(new_keys);
            for (key, value) in source.0.iter() {
                match entries.iter_mut().find(|(k, _)| k == key) {
                    Some((k, existing)) => merge(k.as_str(), existing, value),
                    None => entries.push((key.clone(), value.clone())),
                }
            }
        })
    }
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Node::Object(object) => Some(object),
            _ => None,
        }
    }

    /// The value at `key` when this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_object()?.get(key)
    }

    /// The object's `__typename`, when it is an object that has one.
    pub fn typename(&self) -> Option<&str> {
        self.as_object()?.typename()
    }

    pub fn string(s: &str) -> Self {
        Node::String(Str::from(s))
    }

    /// Appends the value as JSON text. The same text `serde_json` writes,
    /// with strings that need no escaping (nearly all of them) copied as
    /// they are.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Number(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Node::String(s) => write_json_str(out, s),
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Node::Object(object) => {
                out.push(b'{');
                for (i, (key, value)) in object.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, key);
                    out.push(b':');
                    value.write_json(out);
                }
                out.push(b'}');
            }
        }
    }

    /// The same value as `serde_json` JSON (for tests and diagnostics).
    pub fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Object(object) => Value::Object(object.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect()),
        }
    }
}

/// Appends `s` as a JSON string, copied as it is when it needs no escaping.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // A fold without early exit, so the compiler checks many bytes at once.
    let plain = !s.bytes().fold(false, |escape, b| escape | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        write_name(out, s);
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends a GraphQL name (a field, alias or type name) as a JSON string.
/// Names are letters, digits and underscores by the grammar, so they are
/// never escaped and not even looked at.
pub fn write_name(out: &mut Vec<u8>, name: &str) {
    out.reserve(name.len() + 2);
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

impl From<Value> for Node {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::string(&s),
            Value::Array(items) => Node::Array(items.into_iter().map(Node::from).collect()),
            Value::Object(map) => Node::Object(Object(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect())),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NodeSeed { scratch: &mut Scratch::default() }.deserialize(deserializer)
    }
}

/// Members of the objects and lists being parsed, innermost last: each one
/// collects its members here and moves them into a vector of the exact
/// size when it closes. JSON parsers do not tell how many members follow,
/// and growing a vector by doubling leaves up to half of it unused.
#[derive(Default)]
struct Scratch {
    entries: Vec<(Str, Node)>,
    items: Vec<Node>,
    /// Objects and lists open around the value being parsed.
    depth: usize,
}

/// Deepest nesting parsed. Parsing recurses once per level, so a hostile
/// subgraph could otherwise overflow the stack; no response comes close.
const MAX_DEPTH: usize = 128;

impl Scratch {
    fn enter<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format_args!("JSON nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }
}

/// Parses one value, with the scratch space of the whole parse.
struct NodeSeed<'s> {
    scratch: &'s mut Scratch,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        // JSON has no NaN or infinity, so a parser never hands one over.
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::string(v))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.scratch.enter()?;
        let start = self.scratch.items.len();
        while let Some(item) = seq.next_element_seed(NodeSeed { scratch: &mut *self.scratch })? {
            self.scratch.items.push(item);
        }
        self.scratch.depth -= 1;
        Ok(Node::Array(self.scratch.items.drain(start..).collect()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.scratch.enter()?;
        let start = self.scratch.entries.len();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(NodeSeed { scratch: &mut *self.scratch })?;
            let entries = &mut self.scratch.entries;
            // A repeated key keeps the last value, as JSON parsers do.
            match entries[start..].iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => *existing = value,
                None => entries.push((key, value)),
            }
        }
        self.scratch.depth -= 1;
        Ok(Node::Object(Object(self.scratch.entries.drain(start..).collect())))
    }
}

/// Reads an object key straight into inline storage, with no `String` first.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Str, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Str, E> {
        Ok(Str::from(v))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json_text(node: &Node) -> String {
        let mut out = Vec::new();
        node.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_reads_and_writes_back_unchanged_in_order() {
        let text = r#"{"b":1,"a":[true,null,-2,1.5,"x\"y"],"long key that does not fit inline at all":{"z":"é"}}"#;
        let node: Node = serde_json::from_str(text).unwrap();
        assert_eq!(json_text(&node), text);
        assert_eq!(node.to_json(), serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(Node::from(node.to_json()).to_json(), node.to_json());
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_in_its_first_place() {
        let node: Node = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(json_text(&node), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn objects_insert_in_place_append_new_keys_and_remove() {
        let mut object = match Node::from(json!({"a": 1, "b": 2})) {
            Node::Object(object) => object,
            _ => unreachable!(),
        };
        object.insert("a", Node::string("one"));
        object.insert("c", Node::Null);
        assert_eq!(json_text(&Node::Object(object.clone())), r#"{"a":"one","b":2,"c":null}"#);
        assert_eq!(object.remove("b").map(|n| n.to_json()), Some(json!(2)));
        assert!(object.remove("b").is_none());
        assert_eq!(object.len(), 2);
    }

    #[test]
    fn values_and_entries_stay_small() {
        // Every request in flight holds a tree as large as its response:
        // these sizes are what a value and an object entry cost.
        assert_eq!(std::mem::size_of::<Node>(), 24);
        assert_eq!(std::mem::size_of::<(Str, Node)>(), 40);
    }

    #[test]
    fn long_strings_are_shared_by_copies_and_short_ones_inline() {
        let long = "a review body much longer than fifteen bytes";
        let node: Node = serde_json::from_str(&format!(r#"{{"body":"{long}","id":"1"}}"#)).unwrap();
        let copy = node.clone();
        let text = |node: &Node, key: &str| match node.get(key) {
            Some(Node::String(s)) => s.clone(),
            other => panic!("not a string: {other:?}"),
        };
        // A copy of a shared string points at the same text; an inline one
        // lives inside each copy.
        let (body, body_copy) = (text(&node, "body"), text(&copy, "body"));
        assert_eq!(body_copy, long);
        assert_eq!(body.as_ptr(), body_copy.as_ptr());
        assert_ne!(text(&node, "id").as_ptr(), text(&copy, "id").as_ptr());
        let at_limit = Str::from("x".repeat(15).as_str());
        assert_ne!(at_limit.as_ptr(), at_limit.clone().as_ptr(), "15 bytes are inline");
        let past_limit = Str::from("x".repeat(16).as_str());
        assert_eq!(past_limit.as_ptr(), past_limit.clone().as_ptr(), "16 bytes are shared");
    }

    #[test]
    fn merging_appends_new_keys_in_order() {
        let Node::Object(mut target) = Node::from(json!({"id": 1, "name": "a"})) else { unreachable!() };
        let Node::Object(source) = Node::from(json!({"id": 1, "price": 2, "weight": 3})) else { unreachable!() };
        target.merge_with(source, |_, existing, value| *existing = value);
        assert_eq!(target.len(), 4);
        let keys: Vec<&str> = target.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["id", "name", "price", "weight"]);
    }

    #[test]
    fn written_json_is_what_serde_json_writes() {
        // Each text is in serde_json's own output form, so it must come back
        // byte for byte, escapes, numbers and order included.
        let texts = [
            r#"{"plain":"abc","quote":"a\"b","backslash":"a\\b","control":"a\u0001b\n","unicode":"é✓😀"}"#,
            r#"[1,-2,1.5,1e+300,18446744073709551615,true,false,null,[],{},[[{"a":[null]}]]]"#,
            r#"{"long key that does not fit inline at all":"and a long value that does not either"}"#,
        ];
        for text in texts {
            let node: Node = serde_json::from_str(text).unwrap();
            let mut written = b"prefix".to_vec();
            node.write_json(&mut written);
            assert_eq!(String::from_utf8(written).unwrap(), format!("prefix{text}"));
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(node.to_json(), value);
        }
    }

    #[test]
    fn a_lookup_after_a_position_finds_keys_before_it_too() {
        let Node::Object(object) = Node::from(json!({"a": 1, "b": 2, "c": 3})) else { unreachable!() };
        let mut next = 0;
        let found: Vec<_> = ["a", "c", "b", "a", "z", "c"]
            .iter()
            .map(|key| object.get_after(key, &mut next).map(|v| v.to_json()))
            .collect();
        assert_eq!(found, [Some(json!(1)), Some(json!(3)), Some(json!(2)), Some(json!(1)), None, Some(json!(3))]);
        let mut past_the_end = 10;
        assert_eq!(object.get_after("b", &mut past_the_end).map(|v| v.to_json()), Some(json!(2)));
        assert_eq!(past_the_end, 2);
    }

    #[test]
    fn merging_from_a_borrowed_object_copies_only_new_keys() {
        let Ok(Node::Object(mut target)) = serde_json::from_str(r#"{"id":1,"name":"a"}"#) else { unreachable!() };
        let Node::Object(source) = Node::from(json!({"id": 2, "price": 2})) else { unreachable!() };
        let mut merged = Vec::new();
        target.merge_from(&source, |key, existing, value| {
            merged.push(key.to_string());
            *existing = value.clone();
        });
        assert_eq!(merged, ["id"]);
        assert_eq!(target.len(), 3);
        assert_eq!(Node::Object(target).to_json(), json!({"id": 2, "name": "a", "price": 2}));
        assert_eq!(source.len(), 2);
    }

    #[test]
    fn nesting_is_limited_whatever_the_parser_allows() {
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert!(sonic_rs::from_str::<Node>(&nested(MAX_DEPTH)).is_ok());
        assert!(sonic_rs::from_str::<Node>(&nested(MAX_DEPTH + 1)).is_err());
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert!(sonic_rs::from_str::<Node>(&objects).is_err());
        // The limit counts open levels, not levels seen: siblings do not add up.
        let wide = format!("[{}]", vec![nested(MAX_DEPTH - 1); 3].join(","));
        assert!(sonic_rs::from_str::<Node>(&wide).is_ok());
    }

    #[test]
    fn malformed_json_is_an_error() {
        for text in ["{", r#"{"a":}"#, "[1,]", r#"{"a" 1}"#, "\u{0}"] {
            assert!(serde_json::from_str::<Node>(text).is_err(), "{text}");
        }
    }
}
