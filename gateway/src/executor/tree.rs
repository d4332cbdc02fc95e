//! The response tree the executor builds: subgraph answers are parsed into
//! it, merged, read for representations and written out by the projector.
//!
//! It is shaped for that work rather than for general JSON. An object is a
//! small vector of entries in the order the subgraph sent them, searched
//! linearly (response objects have a handful of keys, where a scan beats a
//! search tree); keys and strings are stored inline up to 24 bytes, so most
//! of them cost no allocation of their own.

use std::fmt;

use compact_str::CompactString;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};

/// One value of the response tree.
#[derive(Debug, Clone, Default)]
pub enum Node {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(CompactString),
    Array(Vec<Node>),
    Object(Object),
}

/// An object's entries, in the order they arrived.
#[derive(Debug, Clone, Default)]
pub struct Object(Vec<(CompactString, Node)>);

impl Object {
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k.as_str() == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.0.iter_mut().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, in place when the key is there, else at the end.
    pub fn insert(&mut self, key: impl Into<CompactString> + AsRef<str>, value: Node) {
        match self.position(key.as_ref()) {
            Some(at) => self.0[at].1 = value,
            None => self.0.push((key.into(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        self.position(key).map(|at| self.0.remove(at).1)
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
        for (key, value) in source.0 {
            match self.0.iter_mut().find(|(k, _)| *k == key) {
                Some((k, existing)) => merge(k.as_str(), existing, value),
                None => self.0.push((key, value)),
            }
        }
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
        Node::String(CompactString::from(s))
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

impl From<Value> for Node {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::String(s.into()),
            Value::Array(items) => Node::Array(items.into_iter().map(Node::from).collect()),
            Value::Object(map) => Node::Object(Object(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect())),
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => n.serialize(serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(object) => {
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for (key, value) in object.iter() {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
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
        Ok(Node::String(CompactString::from(v)))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(CompactString::from(v)))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut object = Object(Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096)));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // A repeated key keeps the last value, as JSON parsers do.
            object.insert(key, map.next_value()?);
        }
        Ok(Node::Object(object))
    }
}

/// Reads an object key straight into inline storage, with no `String` first.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = CompactString;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<CompactString, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = CompactString;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<CompactString, E> {
        Ok(CompactString::from(v))
    }

    fn visit_string<E>(self, v: String) -> Result<CompactString, E> {
        Ok(CompactString::from(v))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_reads_and_writes_back_unchanged_in_order() {
        let text = r#"{"b":1,"a":[true,null,-2,1.5,"x\"y"],"long key that does not fit inline at all":{"z":"é"}}"#;
        let node: Node = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&node).unwrap(), text);
        assert_eq!(node.to_json(), serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(Node::from(node.to_json()).to_json(), node.to_json());
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_in_its_first_place() {
        let node: Node = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(serde_json::to_string(&node).unwrap(), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn objects_insert_in_place_append_new_keys_and_remove() {
        let mut object = match Node::from(json!({"a": 1, "b": 2})) {
            Node::Object(object) => object,
            _ => unreachable!(),
        };
        object.insert("a", Node::string("one"));
        object.insert("c", Node::Null);
        assert_eq!(serde_json::to_string(&Node::Object(object.clone())).unwrap(), r#"{"a":"one","b":2,"c":null}"#);
        assert_eq!(object.remove("b").map(|n| n.to_json()), Some(json!(2)));
        assert!(object.remove("b").is_none());
        assert_eq!(object.len(), 2);
    }

    #[test]
    fn malformed_json_is_an_error() {
        for text in ["{", r#"{"a":}"#, "[1,]", r#"{"a" 1}"#, "\u{0}"] {
            assert!(serde_json::from_str::<Node>(text).is_err(), "{text}");
        }
    }
}
