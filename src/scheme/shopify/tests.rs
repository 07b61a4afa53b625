//! Unit tests of the Shopify scheme: our vector, every refusal, rotation and malformed
//! headers.

use super::*;
use crate::scheme::testing::{assert_rotation, headers, key, NEW, OLD, OTHER, WINDOW};
use crate::scheme::IdSource;
use time::macros::datetime;

const SECRET: &str = "shpss_0123456789abcdef0123456789abcdef";
const BODY: &str = r#"{"id":820982911946154508,"email":"jon@example.com"}"#;
/// HMAC-SHA256 of BODY under SECRET, base64, computed with Python's `hmac` and `base64`.
const VECTOR: &str = "8++5uqaSbZMvfZWESSDj93PLZ220nqZIKaoc0fiVLe4=";
const WEBHOOK: &str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043";
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
fn our_vector_verifies_with_webhook_id_and_topic() {
    assert_eq!(sign(SECRET.as_bytes(), BODY.as_bytes()), VECTOR);
    let pairs = [
        (SIGNATURE, VECTOR),
        (TOPIC, "orders/create"),
        (WEBHOOK_ID, WEBHOOK),
    ];
    let claims = check(&pairs, BODY).unwrap();
    assert_eq!(claims.event.as_deref(), Some("orders/create"));
    // The header id wins over the body's `id`: Shopify's body id is the order's.
    assert_eq!(
        (claims.event_id.as_str(), claims.id_source),
        (WEBHOOK, IdSource::Header)
    );
    assert_eq!(claims.signed_at, None);
}

#[test]
fn each_refusal_has_its_code() {
    let topic = (TOPIC, "orders/create");
    assert_eq!(check(&[topic], BODY), Err(VerifyError::MissingSignature));
    assert_eq!(
        check(&[(SIGNATURE, VECTOR)], BODY),
        Err(VerifyError::MissingEvent)
    );
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), topic], &BODY.replace("jon", "j0n")),
        Err(VerifyError::InvalidSignature)
    );
    let long = "w".repeat(300);
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), topic, (WEBHOOK_ID, &long)], BODY),
        Err(VerifyError::InvalidEventId)
    );
}

#[test]
fn malformed_and_wrong_length_signatures_are_invalid() {
    let topic = (TOPIC, "orders/create");
    for bad in [
        "",
        "not base64!",
        &VECTOR[..VECTOR.len() - 4],
        "8++5uqaSbZMvfZWESSDj93PLZ220nqZIKaoc0fiVLe4AAA==",
        "sha256=8++5uqaSbZMvfZWESSDj93PLZ220nqZIKaoc0fiVLe4=",
        "f3efb9baa6926d932f7d95844920e3f773cb676db49ea64829aa1cd1f8952dee",
    ] {
        assert_eq!(
            check(&[(SIGNATURE, bad), topic], BODY),
            Err(VerifyError::InvalidSignature),
            "{bad:?}"
        );
    }
    let unpadded = VECTOR.trim_end_matches('=');
    assert!(check(&[(SIGNATURE, unpadded), topic], BODY).is_ok());
}

#[test]
fn rotation() {
    assert_rotation(&key(OLD), &key(NEW), &key(OTHER), |configured, signers| {
        let sigs: Vec<String> = signers
            .iter()
            .map(|k| sign(k.expose(), BODY.as_bytes()))
            .collect();
        let mut pairs: Vec<(&str, &str)> = sigs.iter().map(|s| (SIGNATURE, s.as_str())).collect();
        pairs.push((TOPIC, "orders/create"));
        verify(&headers(&pairs), BODY.as_bytes(), configured, WINDOW, NOW)
    });
}
