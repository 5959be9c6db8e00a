//! HMAC-SHA256 signatures of callback bodies (pure).
//!
//! # For receivers
//!
//! When the operator configures a callback secret, every callback request carries
//!
//! ```text
//! X-Eremetic-Signature: sha256=<64 lowercase hex digits>
//! ```
//!
//! where the digits are HMAC-SHA256 keyed with the secret (its bytes as configured) over the
//! exact request body bytes. To check a request: compute the HMAC over the raw body *before*
//! parsing or re-serializing the JSON, and compare it with the header in constant time
//! ([`verify`] does both). Reject requests whose signature does not match. The body carries the
//! status change's `time`, and `X-Eremetic-Delivery` identifies the callback: a receiver that
//! remembers delivery ids it has seen also drops replays and the duplicates that at-least-once
//! delivery produces.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What the signature header value starts with, naming the algorithm.
pub const SIGNATURE_PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// SHA-256's block size in bytes, the HMAC key length (RFC 2104).
const BLOCK_SIZE: usize = 64;

/// The HMAC keyed with `secret`. The key is prepared as RFC 2104 prescribes (hashed when
/// longer than a block, zero-padded to a block), which is what `Mac::new_from_slice` does but
/// without its `Result`, whose error HMAC never returns.
fn keyed(secret: &[u8]) -> HmacSha256 {
    let mut key = [0u8; BLOCK_SIZE];
    if secret.len() > BLOCK_SIZE {
        let digest = Sha256::digest(secret);
        key[..digest.len()].copy_from_slice(&digest);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as hmac::digest::KeyInit>::new(&key.into())
}

/// The signature header value of `body`: `sha256=` followed by the lowercase hex
/// HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(tag))
}

/// Whether `header_value` (an `X-Eremetic-Signature` value) is the signature of `body` under
/// `secret`. The comparison of the tags runs in constant time; a value without the `sha256=`
/// prefix or with malformed hex is rejected. Hex digits are accepted in either case.
pub fn verify(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let Some(hex_tag) = header_value.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_tag) else {
        return false;
    };
    let mut mac = keyed(secret);
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2: a short key.
    #[test]
    fn sign_matches_rfc_4231_short_key_vector() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// RFC 4231 test case 6: a 131-byte key, longer than the block, is hashed first.
    #[test]
    fn sign_matches_rfc_4231_long_key_vector() {
        let key = [0xaa_u8; 131];
        assert_eq!(
            sign(
                &key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// A key of exactly one block is used as is, like `new_from_slice` does.
    #[test]
    fn sign_agrees_with_the_hmac_crate_for_every_key_length() {
        for length in [0, 1, 32, 63, 64, 65, 200] {
            let key = vec![7u8; length];
            let mut reference = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"body");
            let expected = hex::encode(reference.finalize().into_bytes());
            assert_eq!(
                sign(&key, b"body"),
                format!("sha256={expected}"),
                "{length}"
            );
        }
    }

    #[test]
    fn verify_accepts_own_signature_in_either_hex_case() {
        let header = sign(b"secret", b"{\"a\":1}");
        assert!(verify(b"secret", b"{\"a\":1}", &header));
        let upper = format!("sha256={}", header["sha256=".len()..].to_uppercase());
        assert!(verify(b"secret", b"{\"a\":1}", &upper));
    }

    #[test]
    fn verify_rejects_wrong_secret_tampered_body_and_malformed_values() {
        let header = sign(b"secret", b"body");
        assert!(!verify(b"other", b"body", &header));
        assert!(!verify(b"secret", b"bodY", &header));
        assert!(!verify(b"secret", b"body", &header["sha256=".len()..]));
        assert!(!verify(b"secret", b"body", "sha256=zz"));
        assert!(!verify(b"secret", b"body", "sha256="));
        assert!(!verify(b"secret", b"body", &header[..header.len() - 2]));
        assert!(!verify(
            b"secret",
            b"body",
            &header.replace("sha256=", "sha1=")
        ));
    }
}
