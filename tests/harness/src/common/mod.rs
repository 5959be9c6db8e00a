//! Pieces shared by the fake agent and the fake master: the v1 encodings
//! (`codec`), the HTTP rules and server plumbing (`http`) and random
//! UUIDs (`uuid`).

pub(crate) mod codec;
pub(crate) mod http;
pub(crate) mod uuid;
