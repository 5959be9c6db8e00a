//! Page renderers: pure functions from plain values to HTML documents.

pub(crate) mod cluster;
pub(crate) mod index;
pub(crate) mod layout;
pub(crate) mod task;
