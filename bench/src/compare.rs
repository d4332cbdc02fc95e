//! Compares a gateway's response with the expected one as parsed JSON (key
//! order and whitespace do not matter; values, types and list order do) and
//! names the first difference, so a failed check says what went wrong.

use serde_json::Value;

/// The first place where `actual` differs from `expected`, as a JSON path
/// (`$.data.users[0].name`) with both values; `None` when they are equal.
pub fn first_difference(expected: &Value, actual: &Value) -> Option<String> {
    let mut path = String::from("$");
    diff(expected, actual, &mut path)
}

/// Parses `body` and compares it with `expected`.
pub fn check_body(expected: &Value, body: &[u8]) -> Result<(), String> {
    let actual: Value = serde_json::from_slice(body).map_err(|e| {
        let preview: String = String::from_utf8_lossy(body).chars().take(200).collect();
        format!("response is not JSON ({e}): {preview}")
    })?;
    match first_difference(expected, &actual) {
        None => Ok(()),
        Some(difference) => Err(difference),
    }
}

fn diff(expected: &Value, actual: &Value, path: &mut String) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, e_value) in e {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                let found = match a.get(key) {
                    Some(a_value) => diff(e_value, a_value, path),
                    None => Some(format!("{path}: missing (expected {})", short(e_value))),
                };
                if found.is_some() {
                    return found;
                }
                path.truncate(len);
            }
            a.keys().find(|key| !e.contains_key(*key)).map(|key| format!("{path}.{key}: unexpected key"))
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (e_item, a_item)) in e.iter().zip(a).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if let Some(found) = diff(e_item, a_item, path) {
                    return Some(found);
                }
                path.truncate(len);
            }
            (e.len() != a.len()).then(|| format!("{path}: expected {} items, got {}", e.len(), a.len()))
        }
        _ if expected == actual => None,
        _ => Some(format!("{path}: expected {}, got {}", short(expected), short(actual))),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let expected = json!({"data": {"a": 1, "b": [1, 2]}});
        assert_eq!(check_body(&expected, br#"{ "data" : { "b":[1,2], "a":1 } }"#), Ok(()));
    }

    #[test]
    fn a_different_value_is_named_by_its_path() {
        let expected = json!({"data": {"users": [{"name": "Uri"}, {"name": "Dotan"}]}});
        let actual = json!({"data": {"users": [{"name": "Uri"}, {"name": "dotan"}]}});
        assert_eq!(
            first_difference(&expected, &actual).as_deref(),
            Some(r#"$.data.users[1].name: expected "Dotan", got "dotan""#)
        );
    }

    #[test]
    fn missing_extra_and_miscounted_entries_are_differences() {
        let expected = json!({"data": {"a": [1, 2]}});
        assert_eq!(
            first_difference(&expected, &json!({"data": {}})).as_deref(),
            Some("$.data.a: missing (expected [1,2])")
        );
        assert_eq!(
            first_difference(&expected, &json!({"data": {"a": [1, 2]}, "errors": []})).as_deref(),
            Some("$.errors: unexpected key")
        );
        assert_eq!(
            first_difference(&expected, &json!({"data": {"a": [1]}})).as_deref(),
            Some("$.data.a: expected 2 items, got 1")
        );
    }

    #[test]
    fn numbers_compare_by_value_and_type() {
        assert_eq!(first_difference(&json!(1), &json!(1)), None);
        assert!(first_difference(&json!(1), &json!("1")).is_some());
        assert!(first_difference(&json!(null), &json!(0)).is_some());
    }

    #[test]
    fn a_body_that_is_not_json_says_so() {
        let error = check_body(&json!({}), b"<html>").unwrap_err();
        assert!(error.starts_with("response is not JSON"), "{error}");
    }
}
