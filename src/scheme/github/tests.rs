//! Unit tests of the GitHub scheme: GitHub's published vector, ours, every refusal,
//! rotation and malformed headers.

use super::*;
use crate::scheme::testing::{assert_rotation, headers, key, NEW, OLD, OTHER, WINDOW};
use crate::scheme::IdSource;
use time::macros::datetime;

const SECRET: &str = "gh-webhook-secret-0123456789abcdef0123";
const BODY: &str = r#"{"action":"opened","issue":{"number":1}}"#;
/// HMAC-SHA256 of BODY under SECRET, computed with Python's `hmac`.
const VECTOR: &str = "sha256=4714325bae79233a54828dc5bcc755e0acb0cec3bf6e8129ac9587ae3e9c7ef4";
const DELIVERY_ID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const NOW: OffsetDateTime = datetime!(2024-01-15 10:31:00 UTC);

fn check(pairs: &[(&str, &str)], body: &str) -> Result<Claims, VerifyError> {
    verify(
        &headers(pairs),
        body.as_bytes(),
        &[key(SECRET)],
        WINDOW,
        NOW,
    )
}

#[test]
fn githubs_published_vector() {
    // "Validating webhook deliveries" in GitHub's docs: secret "It's a Secret to
    // Everybody", payload "Hello, World!". The secret is shorter than our 32-byte
    // minimum, so only the signer is checked against it.
    assert_eq!(
        sign(b"It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[test]
fn our_vector_verifies_with_delivery_id_and_event() {
    assert_eq!(sign(SECRET.as_bytes(), BODY.as_bytes()), VECTOR);
    let pairs = [
        (SIGNATURE, VECTOR),
        (EVENT, "issues"),
        (DELIVERY, DELIVERY_ID),
    ];
    let claims = check(&pairs, BODY).unwrap();
    assert_eq!(claims.event.as_deref(), Some("issues"));
    assert_eq!(claims.event_id, DELIVERY_ID);
    assert_eq!(claims.id_source, IdSource::Header);
    assert_eq!(claims.signed_at, None);
    assert_eq!(hex::encode(&claims.digest), &VECTOR[7..]);
}

#[test]
fn without_a_delivery_id_the_digest_is_the_id() {
    let claims = check(&[(SIGNATURE, VECTOR), (EVENT, "issues")], BODY).unwrap();
    assert_eq!(claims.event_id, format!("sig:{}", &VECTOR[7..]));
    assert_eq!(claims.id_source, IdSource::Signature);
}

#[test]
fn no_timestamp_means_any_age_verifies() {
    let pairs = [(SIGNATURE, VECTOR), (EVENT, "issues")];
    let later = datetime!(2030-01-01 00:00:00 UTC);
    let h = headers(&pairs);
    assert!(verify(&h, BODY.as_bytes(), &[key(SECRET)], WINDOW, later).is_ok());
}

#[test]
fn each_refusal_has_its_code() {
    let ev = (EVENT, "issues");
    assert_eq!(check(&[ev], BODY), Err(VerifyError::MissingSignature));
    assert_eq!(
        check(&[(SIGNATURE, VECTOR)], BODY),
        Err(VerifyError::MissingEvent)
    );
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), (EVENT, " ")], BODY),
        Err(VerifyError::MissingEvent)
    );
    let tampered = BODY.replace("opened", "closed");
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), ev], &tampered),
        Err(VerifyError::InvalidSignature)
    );
    let long_id = "d".repeat(257);
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), ev, (DELIVERY, &long_id)], BODY),
        Err(VerifyError::InvalidEventId)
    );
}

#[test]
fn the_legacy_sha1_header_alone_is_no_signature() {
    // HMAC-SHA1 of BODY under SECRET (Python's hmac): genuine, but SHA-1 is not accepted.
    let sha1 = "sha1=17ad24588338775fa0828d32c2dbbfb91cc425f0";
    let only_legacy = [(LEGACY_SIGNATURE, sha1), (EVENT, "issues")];
    assert_eq!(
        check(&only_legacy, BODY),
        Err(VerifyError::MissingSignature)
    );
    let both = [
        (LEGACY_SIGNATURE, sha1),
        (SIGNATURE, VECTOR),
        (EVENT, "issues"),
    ];
    assert!(check(&both, BODY).is_ok());
}

#[test]
fn malformed_signatures_are_invalid() {
    for bad in [
        "",
        "sha256=",
        "sha256=zz",
        &VECTOR[7..],
        "sha1=4714325bae79233a54828dc5bcc755e0acb0cec3bf6e8129ac9587ae3e9c7ef4",
        &VECTOR[..VECTOR.len() - 2],
        &format!("{VECTOR}00"),
        &format!("{VECTOR},{VECTOR}"),
    ] {
        assert_eq!(
            check(&[(SIGNATURE, bad), (EVENT, "issues")], BODY),
            Err(VerifyError::InvalidSignature),
            "{bad:?}"
        );
    }
    let upper = format!("SHA256={}", VECTOR[7..].to_uppercase());
    assert!(check(&[(SIGNATURE, &upper), (EVENT, "issues")], BODY).is_ok());
}

#[test]
fn rotation() {
    assert_rotation(&key(OLD), &key(NEW), &key(OTHER), |configured, signers| {
        let sigs: Vec<String> = signers
            .iter()
            .map(|k| sign(k.expose(), BODY.as_bytes()))
            .collect();
        let mut pairs: Vec<(&str, &str)> = sigs.iter().map(|s| (SIGNATURE, s.as_str())).collect();
        pairs.push((EVENT, "push"));
        verify(&headers(&pairs), BODY.as_bytes(), configured, WINDOW, NOW)
    });
}
