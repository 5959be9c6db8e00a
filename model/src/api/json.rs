//! Typed access to a parsed JSON object that records a [`FieldError`] for every value of the
//! wrong type instead of stopping at the first one.

use serde_json::{Map, Value};

use super::error::{FieldError, Problem};

/// Collects problems while a request is read.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) errors: Vec<FieldError>,
}

impl Collector {
    /// Records a problem of `field`.
    pub(crate) fn push(&mut self, field: impl Into<String>, problem: Problem) {
        self.errors.push(FieldError::new(field, problem));
    }

    /// Records a wrong-type problem.
    fn wrong_type(&mut self, field: &str, expected: &'static str, found: &Value) {
        self.push(
            field,
            Problem::WrongType {
                expected,
                found: kind(found),
            },
        );
    }

    /// The value as a string.
    pub(crate) fn string<'v>(&mut self, field: &str, value: &'v Value) -> Option<&'v str> {
        match value {
            Value::String(text) => Some(text),
            other => {
                self.wrong_type(field, "a string", other);
                None
            }
        }
    }

    /// The value as a number.
    pub(crate) fn number(&mut self, field: &str, value: &Value) -> Option<f64> {
        match value.as_f64() {
            Some(number) if value.is_number() => Some(number),
            _ => {
                self.wrong_type(field, "a number", value);
                None
            }
        }
    }

    /// The value as an integer (a JSON number without fraction or exponent).
    pub(crate) fn integer(&mut self, field: &str, value: &Value) -> Option<i128> {
        if let Some(number) = value.as_i64() {
            return Some(i128::from(number));
        }
        if let Some(number) = value.as_u64() {
            return Some(i128::from(number));
        }
        // A whole number too large for 64 bits arrives as a float: it is too large, not a
        // fraction. (2^63 and beyond: the i64/u64 cases above took everything smaller.)
        if let Some(number) = value.as_f64().filter(|number| {
            value.is_number()
                && number.is_finite()
                && number.fract() == 0.0
                && number.abs() >= 9.2e18
        }) {
            let problem = Problem::IntegerBeyondRange {
                value: value.to_string(),
                negative: number < 0.0,
            };
            self.push(field, problem);
            return None;
        }
        self.wrong_type(field, "an integer", value);
        None
    }

    /// The value as an integer in `min..=max`.
    pub(crate) fn integer_in(
        &mut self,
        field: &str,
        value: &Value,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let number = self.integer(field, value)?;
        match i64::try_from(number) {
            Ok(number) if (min..=max).contains(&number) => Some(number),
            _ => {
                self.push(
                    field,
                    Problem::OutOfRange {
                        min,
                        max,
                        value: number,
                    },
                );
                None
            }
        }
    }

    /// The value as a boolean.
    pub(crate) fn boolean(&mut self, field: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(flag) => Some(*flag),
            other => {
                self.wrong_type(field, "a boolean", other);
                None
            }
        }
    }

    /// The value as an array.
    pub(crate) fn array<'v>(&mut self, field: &str, value: &'v Value) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.wrong_type(field, "an array", other);
                None
            }
        }
    }

    /// The value as an object.
    pub(crate) fn object<'v>(
        &mut self,
        field: &str,
        value: &'v Value,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.wrong_type(field, "an object", other);
                None
            }
        }
    }

    /// The value as an array of strings; elements of another type are reported as
    /// `field[i]` and skipped.
    pub(crate) fn strings<'v>(&mut self, field: &str, value: &'v Value) -> Vec<(usize, &'v str)> {
        let Some(items) = self.array(field, value) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let text = self.string(&format!("{field}[{index}]"), item)?;
                Some((index, text))
            })
            .collect()
    }

    /// The value as an object of strings; members of another type are reported as
    /// `field.key` and skipped.
    pub(crate) fn string_map<'v>(
        &mut self,
        field: &str,
        value: &'v Value,
    ) -> Vec<(&'v str, &'v str)> {
        let Some(map) = self.object(field, value) else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(key, item)| {
                let text = self.string(&format!("{field}.{key}"), item)?;
                Some((key.as_str(), text))
            })
            .collect()
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The member `key` of `object`, matched as Go's `encoding/json` does: the exact key wins,
/// otherwise any ASCII case-insensitive match. `null` counts as absent.
pub(crate) fn member<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    let value = object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })?;
    (!value.is_null()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_match_case_insensitively_and_null_is_absent() {
        let value = json!({"IMAGE": "a", "cpu": null, "Mem": 1, "mem": 2});
        let object = value.as_object().unwrap();
        assert_eq!(member(object, "image"), Some(&json!("a")));
        assert_eq!(member(object, "cpu"), None);
        assert_eq!(member(object, "mem"), Some(&json!(2)));
    }

    #[test]
    fn wrong_types_are_collected_per_element() {
        let mut collector = Collector::default();
        let value = json!(["a", 1, "b", null]);
        let strings = collector.strings("args", &value);
        assert_eq!(strings, vec![(0, "a"), (2, "b")]);
        let fields: Vec<_> = collector.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["args[1]", "args[3]"]);
    }

    #[test]
    fn integers_reject_fractions_and_range() {
        let mut collector = Collector::default();
        assert_eq!(collector.integer_in("p", &json!(80), 1, 65535), Some(80));
        assert_eq!(collector.integer_in("p", &json!(1.5), 1, 65535), None);
        assert_eq!(collector.integer_in("p", &json!(70000), 1, 65535), None);
        assert_eq!(
            collector.integer_in("p", &json!(u64::MAX), 0, i64::MAX),
            None
        );
        assert_eq!(collector.errors.len(), 3);
    }
}
