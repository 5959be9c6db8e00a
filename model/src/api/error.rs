//! Validation errors of request bodies and the error document the API answers with.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What is wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The body is not JSON.
    #[error("invalid JSON at line {line}, column {column}: {detail}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        detail: String,
    },
    /// The body exceeds the size limit.
    #[error("body is {size} bytes, at most {limit} allowed")]
    TooLarge {
        /// Body size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A required field is absent, `null` or empty.
    #[error("is required")]
    Required,
    /// The JSON value has the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the field needs.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A number that must be strictly positive is not.
    #[error("must be greater than 0, got {0}")]
    NotPositive(f64),
    /// A number is below its minimum.
    #[error("must be at least {minimum}, got {value}")]
    TooSmall {
        /// The smallest accepted value.
        minimum: f64,
        /// The value received.
        value: f64,
    },
    /// A number that may not be negative is.
    #[error("must not be negative, got {0}")]
    Negative(i64),
    /// An integer is outside its range.
    #[error("must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
        /// The value received (saturated to the `i128` range of JSON integers).
        value: i128,
    },
    /// A whole number beyond the 64-bit range integers are read into (`1e30`,
    /// `18446744073709551616`).
    #[error(
        "is too {}: {value} is beyond the range of 64-bit integers",
        if *negative { "small" } else { "large" }
    )]
    IntegerBeyondRange {
        /// The number as JSON writes it.
        value: String,
        /// Whether it is below the range rather than above.
        negative: bool,
    },
    /// A string is not one of the accepted values.
    #[error("unknown value {value:?}, expected one of {expected}")]
    UnknownValue {
        /// The value received.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// A path is not absolute.
    #[error("must be an absolute path, got {0:?}")]
    NotAbsolute(String),
    /// Any other malformed value; the text says why.
    #[error("{0}")]
    Invalid(String),
}

/// One problem of a request, with the field it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field, as the request names it, with a path for nested values
    /// (`ports[1].container_port`, `env.PATH`); `body` for the body as a whole.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl FieldError {
    /// A problem of `field`.
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        FieldError {
            field: field.into(),
            problem,
        }
    }
}

/// Every problem found in a request (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", Joined(.errors))]
pub struct ValidationErrors {
    /// The problems, in the order they were found.
    pub errors: Vec<FieldError>,
}

struct Joined<'a>(&'a [FieldError]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// A single problem.
    pub fn single(field: impl Into<String>, problem: Problem) -> Self {
        ValidationErrors {
            errors: vec![FieldError::new(field, problem)],
        }
    }

    /// The fields that have a problem, in order (a field appears once per problem).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().map(|error| error.field.as_str())
    }

    /// The problems of `field`.
    pub fn for_field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a Problem> {
        self.errors
            .iter()
            .filter(move |error| error.field == field)
            .map(|error| &error.problem)
    }
}

/// Eremetic's message for an unreadable submit body.
pub const MSG_UNREADABLE: &str = "Unable to read payload.";
/// Eremetic's message for a submit body that is not a valid request.
pub const MSG_INVALID_REQUEST: &str = "Unable to parse body into a valid request.";
/// Eremetic's message when a task cannot be scheduled (queue full, other errors).
pub const MSG_CANNOT_SCHEDULE: &str = "Unable to schedule task";
/// Eremetic's error text when the queue stays full.
pub const ERR_QUEUE_FULL: &str = "task queue is full";
/// Eremetic's message for bad list query parameters.
pub const MSG_BAD_QUERY: &str = "Unable to parse query params";
/// Eremetic's message when listing fails.
pub const MSG_LIST_FAILED: &str = "Unable to fetch running tasks from the database";

/// One problem in an [`ErrorDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrorDocument {
    /// The field (see [`FieldError::field`]).
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Eremetic's error body: `{"error": "<underlying error>", "message": "<fixed text>"}`, plus
/// (an extension clients can ignore) `errors`, one entry per invalid field, present only when
/// there are some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDocument {
    /// The underlying error text.
    pub error: String,
    /// A fixed human-readable message.
    pub message: String,
    /// Field-level problems of a rejected request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorDocument>,
}

impl ErrorDocument {
    /// A document without field details.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorDocument {
            error: error.into(),
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// The answer to a submit body that failed validation (Eremetic answers it with 422).
    pub fn invalid_request(errors: &ValidationErrors) -> Self {
        ErrorDocument {
            error: errors.to_string(),
            message: MSG_INVALID_REQUEST.to_owned(),
            errors: errors
                .errors
                .iter()
                .map(|error| FieldErrorDocument {
                    field: error.field.clone(),
                    reason: error.problem.to_string(),
                })
                .collect(),
        }
    }

    /// The answer when the queue stays full (Eremetic answers it with 503).
    pub fn queue_full() -> Self {
        ErrorDocument::new(ERR_QUEUE_FULL, MSG_CANNOT_SCHEDULE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_full_document_is_byte_compatible() {
        let json = serde_json::to_string(&ErrorDocument::queue_full()).unwrap();
        assert_eq!(
            json,
            r#"{"error":"task queue is full","message":"Unable to schedule task"}"#
        );
    }

    #[test]
    fn invalid_request_document_lists_every_field() {
        let errors = ValidationErrors {
            errors: vec![
                FieldError::new("image", Problem::Required),
                FieldError::new("cpu", Problem::NotPositive(0.0)),
            ],
        };
        assert_eq!(
            errors.to_string(),
            "image: is required; cpu: must be greater than 0, got 0"
        );
        let doc = ErrorDocument::invalid_request(&errors);
        assert_eq!(doc.message, MSG_INVALID_REQUEST);
        assert_eq!(doc.errors.len(), 2);
        assert_eq!(doc.errors[1].field, "cpu");
        let value = serde_json::to_value(&doc).unwrap();
        assert_eq!(value["errors"][0]["reason"], "is required");
    }
}
