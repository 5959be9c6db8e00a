//! Random version-4 UUIDs: container ids (as text) and status update uuids
//! (as 16 bytes), as the agent and the executor make them.

use std::sync::atomic::{AtomicU64, Ordering};

/// 16 random bytes shaped as an RFC 4122 version-4 UUID. Falls back to a
/// time-and-counter value if the OS source fails (uniqueness is all a test
/// agent needs).
pub(crate) fn random_uuid() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..8].copy_from_slice(&(nanos as u64).to_le_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// A random UUID in its 36-character text form (the agent's container ids).
pub(crate) fn random_uuid_string() -> String {
    let b = random_uuid();
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn container_ids_are_36_character_version_4_uuids() {
        let id = super::random_uuid_string();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, super::random_uuid_string());
    }
}
