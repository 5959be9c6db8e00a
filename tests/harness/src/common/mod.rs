//! Pieces shared by the fake agent and the fake master: the v1 encodings
//! (`codec`) and the HTTP rules and server plumbing (`http`).

pub(crate) mod codec;
pub(crate) mod http;
