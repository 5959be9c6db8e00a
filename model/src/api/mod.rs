//! The REST layer without I/O: submit bodies parsed into a validated [`NewTask`]
//! ([`parse_v1`], [`parse_v0`]), task documents built from a [`crate::task::Task`]
//! ([`TaskV1`], [`TaskV0`]) and Eremetic's error document ([`ErrorDocument`]).
//!
//! [`NewTask`]: crate::task::NewTask

mod document;
mod error;
mod image_ref;
mod json;
mod request;

pub use document::{CommonDocument, PortDocument, TaskV0, TaskV1};
pub use error::{
    ErrorDocument, FieldError, FieldErrorDocument, Problem, ValidationErrors, ERR_QUEUE_FULL,
    MSG_BAD_QUERY, MSG_CANNOT_SCHEDULE, MSG_INVALID_REQUEST, MSG_LIST_FAILED, MSG_UNREADABLE,
};
pub use image_ref::{check_image_reference, MAX_IMAGE_NAME_LEN};
pub use request::{
    parse_v0, parse_v1, MAX_BODY_BYTES, MAX_NAME_LEN, MAX_RETRIES, MAX_TIMEOUT_SECS, MIN_MEM_MIB,
};
