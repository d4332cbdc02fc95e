//! Variable coercion: the client's JSON variables checked against the types the
//! operation declares, with defaults filled in (the gateway evaluates
//! `@skip`/`@include` conditions itself, so it needs the final values).

use graphql_tools::static_graphql::query::{Type, Value as AstValue};
use serde_json::{Map, Number, Value};

use crate::error::{codes, GraphQLError, RequestError};
use crate::schema::{SchemaIndex, TypeKind};

/// A variable as the operation declares it.
#[derive(Debug, Clone)]
pub struct VariableSpec {
    pub name: String,
    pub ty: Type,
    pub default: Option<Value>,
}

pub fn coerce(
    schema: &SchemaIndex,
    specs: &[VariableSpec],
    provided: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, RequestError> {
    let mut provided = provided.unwrap_or_default();
    let mut out = Map::with_capacity(specs.len());
    let mut errors = Vec::new();
    for spec in specs {
        match provided.remove(&spec.name) {
            Some(value) => {
                if let Err(problem) = check_value(schema, &value, &spec.ty, 0) {
                    errors.push(bad_input(format!("Variable \"${}\" got an invalid value: {problem}", spec.name)));
                } else {
                    out.insert(spec.name.clone(), value);
                }
            }
            None => match (&spec.default, &spec.ty) {
                (Some(default), _) => {
                    out.insert(spec.name.clone(), default.clone());
                }
                (None, Type::NonNullType(_)) => errors.push(bad_input(format!(
                    "Variable \"${}\" of required type \"{}\" was not provided.",
                    spec.name, spec.ty
                ))),
                (None, _) => {}
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(RequestError::Variables(errors))
    }
}

fn bad_input(message: String) -> GraphQLError {
    GraphQLError::new(message, codes::BAD_USER_INPUT)
}

fn check_value(schema: &SchemaIndex, value: &Value, ty: &Type, depth: usize) -> Result<(), String> {
    if depth > 64 {
        return Err("it is nested too deeply".into());
    }
    match ty {
        Type::NonNullType(inner) => {
            if value.is_null() {
                return Err(format!("expected a non-null {ty}"));
            }
            check_value(schema, value, inner, depth + 1)
        }
        _ if value.is_null() => Ok(()),
        Type::ListType(inner) => match value {
            Value::Array(items) => items.iter().try_for_each(|item| check_value(schema, item, inner, depth + 1)),
            // A single value is coerced to a list of one.
            other => check_value(schema, other, inner, depth + 1),
        },
        Type::NamedType(name) => check_named(schema, value, name, depth),
    }
}

fn check_named(schema: &SchemaIndex, value: &Value, name: &str, depth: usize) -> Result<(), String> {
    let ok = match name {
        "Int" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "Float" => value.is_number(),
        "String" => value.is_string(),
        "Boolean" => value.is_boolean(),
        "ID" => value.is_string() || value.as_i64().is_some(),
        _ => {
            let Some(info) = schema.type_info(name) else {
                return Err(format!("unknown type {name}"));
            };
            match info.kind {
                TypeKind::Scalar => true,
                TypeKind::Enum => value.as_str().is_some_and(|v| info.enum_values.contains(v)),
                TypeKind::InputObject => {
                    let Value::Object(fields) = value else {
                        return Err(format!("expected an object for {name}"));
                    };
                    for key in fields.keys() {
                        if !info.input_fields.contains_key(key) {
                            return Err(format!("field \"{key}\" is not defined by type {name}"));
                        }
                    }
                    for (field, def) in &info.input_fields {
                        match fields.get(field) {
                            Some(v) => check_value(schema, v, &def.ty, depth + 1)
                                .map_err(|e| format!("in field \"{field}\": {e}"))?,
                            None if matches!(def.ty, Type::NonNullType(_)) && !def.has_default => {
                                return Err(format!("field \"{field}\" of required type {} was not provided", def.ty))
                            }
                            None => {}
                        }
                    }
                    true
                }
                _ => return Err(format!("{name} is not an input type")),
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected a value of type {name}, found {value}"))
    }
}

/// A constant from the document (a default value) as JSON.
pub fn ast_to_json(value: &AstValue) -> Value {
    match value {
        AstValue::Variable(_) | AstValue::Null => Value::Null,
        AstValue::Int(n) => n.as_i64().map(Value::from).unwrap_or(Value::Null),
        AstValue::Float(f) => Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        AstValue::String(s) => Value::String(s.clone()),
        AstValue::Boolean(b) => Value::Bool(*b),
        AstValue::Enum(e) => Value::String(e.clone()),
        AstValue::List(items) => Value::Array(items.iter().map(ast_to_json).collect()),
        AstValue::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), ast_to_json(v))).collect()),
    }
}
