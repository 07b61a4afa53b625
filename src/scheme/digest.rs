//! HMAC digests, their constant-time comparison, and finding the secret that signed.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::config::{Algorithm, Secret};

type HmacSha256 = Hmac<Sha256>;
type HmacSha512 = Hmac<Sha512>;

/// More candidate signatures than this in one request are ignored: a sender rotating keys
/// sends two or three, and the bound keeps the work per request small.
pub const MAX_CANDIDATES: usize = 16;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC with `algorithm` of the concatenation of `parts` under `key`.
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match algorithm {
        Algorithm::Sha256 => hmac_sha256(key, parts).to_vec(),
        Algorithm::Sha512 => {
            let mut mac = HmacSha512::new_from_slice(key).expect("HMAC takes keys of any length");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// HMAC-SHA256 as lower-case hex, the form senders put in headers.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key, parts))
}

/// Whether `candidate` equals `expected`, in time independent of where they differ.
/// A wrong length is refused before comparing (the length is not secret).
pub fn digests_equal(expected: &[u8], candidate: &[u8]) -> bool {
    candidate.len() == expected.len() && bool::from(expected.ct_eq(candidate))
}

/// The first secret (its position) whose digest of `parts` equals one of `candidates`,
/// with that digest. Every comparison is constant-time; a candidate of the wrong length
/// never matches, whatever its prefix.
pub fn find_signer(
    secrets: &[Secret],
    algorithm: Algorithm,
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
) -> Option<(usize, Vec<u8>)> {
    if candidates.is_empty() {
        return None;
    }
    secrets.iter().enumerate().find_map(|(index, secret)| {
        let expected = hmac(algorithm, secret.expose(), parts);
        candidates
            .iter()
            .any(|c| digests_equal(&expected, c))
            .then_some((index, expected))
    })
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
        assert!(!digests_equal(&d, &[d.as_slice(), &[0]].concat()));
        assert!(!digests_equal(&d, &[]));
    }

    #[test]
    fn rfc4231_case_2_sha512() {
        let digest = hmac(
            Algorithm::Sha512,
            b"Jefe",
            &[b"what do ya want ", b"for nothing?"],
        );
        assert_eq!(
            hex::encode(digest),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a\
             6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn the_first_matching_secret_wins_and_no_candidates_match_nothing() {
        let keys = [b"a".repeat(32), b"b".repeat(32)]
            .map(|k| Secret::new(k, "t").unwrap())
            .to_vec();
        let by_b = hmac_sha256(&b"b".repeat(32), &[b"m"]).to_vec();
        let found = find_signer(
            &keys,
            Algorithm::Sha256,
            &[b"m"],
            &[vec![0; 32], by_b.clone()],
        );
        assert_eq!(found, Some((1, by_b)));
        assert_eq!(find_signer(&keys, Algorithm::Sha256, &[b"m"], &[]), None);
        let half = hmac_sha256(&b"a".repeat(32), &[b"m"])[..16].to_vec();
        assert_eq!(
            find_signer(&keys, Algorithm::Sha256, &[b"m"], &[half]),
            None
        );
    }
}
