//! Random version-4 UUIDs, as Mesos makes them: status update uuids (16
//! bytes), framework and stream ids, container ids (the canonical text).

use std::sync::atomic::{AtomicU64, Ordering};

/// 16 random bytes shaped as an RFC 4122 version-4 UUID. Falls back to a
/// time-and-counter value if the OS source fails (uniqueness is all a test
/// cluster needs).
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

/// The canonical 36-character form of a uuid.
pub(crate) fn uuid_string(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A random UUID in its canonical text form (container ids).
pub(crate) fn random_uuid_string() -> String {
    uuid_string(&random_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_in_canonical_form() {
        let uuid = random_uuid();
        assert_eq!(uuid[6] >> 4, 4);
        let text = uuid_string(&uuid);
        assert_eq!(text.len(), 36);
        assert_eq!(text.matches('-').count(), 4);
        assert_eq!(&text[14..15], "4");
        assert_ne!(random_uuid_string(), random_uuid_string());
    }
}
