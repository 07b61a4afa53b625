//! HMAC digests and their constant-time comparison.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 as lower-case hex, the form senders put in headers.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key, parts))
}

/// Whether `candidate` equals `expected`, in time independent of where they differ.
/// A wrong length is refused before comparing (the length is not secret).
pub fn digests_equal(expected: &[u8; 32], candidate: &[u8]) -> bool {
    candidate.len() == expected.len() && bool::from(expected.as_slice().ct_eq(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        let digest = hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            digest,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn comparison_checks_length_and_content() {
        let d = hmac_sha256(b"k", &[b"m"]);
        assert!(digests_equal(&d, &d));
        assert!(!digests_equal(&d, &d[..31]));
        let mut other = d;
        other[31] ^= 1;
        assert!(!digests_equal(&d, &other));
    }
}
