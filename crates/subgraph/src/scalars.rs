//! Scalars with one definition across subgraphs: composition merges a scalar
//! by name, so both subgraphs must describe it the same way.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// A point in time in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub chrono::DateTime<chrono::Utc>);

impl From<chrono::DateTime<chrono::Utc>> for DateTime {
    fn from(value: chrono::DateTime<chrono::Utc>) -> Self {
        Self(value)
    }
}

/// A point in time: an RFC 3339 date-time string with its offset, answered
/// in UTC (`2026-12-03T09:45:01.123456+00:00`); any offset is accepted as
/// input.
#[Scalar(name = "DateTime", specified_by_url = "https://scalars.graphql.org/andimarek/date-time")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|parsed| Self(parsed.with_timezone(&chrono::Utc)))
                .map_err(|_| InputValueError::custom("must be an RFC 3339 date-time, such as 2026-12-03T09:45:01Z")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_are_rfc_3339_out_and_in() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:45:01+01:00").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(DateTime(at).to_value(), Value::String("2026-12-03T09:45:01+00:00".into()));
        let parsed = <DateTime as ScalarType>::parse(Value::String("2026-12-03T09:45:01Z".into())).unwrap();
        assert_eq!(parsed, DateTime(at));
        for bad in [Value::String("yesterday".into()), Value::String("2026-12-03".into()), Value::Number(1.into())] {
            assert!(<DateTime as ScalarType>::parse(bad).is_err());
        }
    }
}
