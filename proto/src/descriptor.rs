//! The embedded protobuf schema (a `FileDescriptorSet`) and its decoded
//! [`DescriptorPool`], used for reflection and JSON transcoding.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

/// The `FileDescriptorSet` of all `.proto` files of this crate, in protobuf
/// binary encoding, as produced by `protox` at build time.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set embedded at build time is valid")
});

/// The descriptor pool of all messages of this crate (decoded once).
pub fn descriptor_pool() -> &'static DescriptorPool {
    &POOL
}

/// Full proto names (e.g. `mesos.v1.scheduler.Call`) of every generated
/// message type.
pub use crate::generated_impls::MESSAGE_NAMES;

/// Looks up a message descriptor of this crate by its full proto name.
///
/// # Panics
/// If `full_name` is not a message of this crate; only called by the
/// generated code with names taken from the same descriptor set.
pub(crate) fn message_descriptor(full_name: &str) -> MessageDescriptor {
    descriptor_pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("message {full_name} missing from the embedded descriptor set"))
}
