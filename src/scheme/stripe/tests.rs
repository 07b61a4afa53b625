//! Unit tests of the Stripe scheme: our vector, every refusal, rotation and malformed
//! `Stripe-Signature` headers.

use super::*;
use crate::scheme::testing::{assert_rotation, headers, key, NEW, OLD, OTHER, WINDOW};

/// The endpoint secret, used as written (`whsec_` included), as Stripe's libraries do.
const SECRET: &str = "whsec_test_secret_0123456789abcdefABCDEF";
const TS: &str = "1705314600";
const BODY: &str = concat!(
    r#"{"id":"evt_1OaBcD2eZvKYlo2C","object":"event","type":"payment_intent.succeeded","#,
    r#""data":{"object":{"id":"pi_1","amount":2000}}}"#
);
/// HMAC-SHA256 of `TS.BODY` under SECRET, computed with Python's `hmac`.
const V1: &str = "5f61fc2bce1eb8fcbeebb575349057e84fba64c54a89b0c62ec2004535017b7f";

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_705_314_600 + seconds).unwrap()
}

fn check(value: &str, body: &str) -> Result<Claims, VerifyError> {
    let h = headers(&[(SIGNATURE, value)]);
    verify(&h, body.as_bytes(), &[key(SECRET)], WINDOW, at(60))
}

#[test]
fn our_vector_verifies_with_the_bodys_id_and_type() {
    assert_eq!(
        sign(SECRET.as_bytes(), TS, BODY.as_bytes()),
        format!("t={TS},v1={V1}")
    );
    let claims = check(&format!("t={TS},v1={V1}"), BODY).unwrap();
    assert_eq!(claims.event_id, "evt_1OaBcD2eZvKYlo2C");
    assert_eq!(claims.id_source, IdSource::BodyId);
    assert_eq!(claims.event.as_deref(), Some("payment_intent.succeeded"));
    assert_eq!(claims.signed_at, Some(at(0)));
}

#[test]
fn only_v1_counts_in_any_order_among_others() {
    let v0 = format!("t={TS},v0={V1}");
    assert_eq!(check(&v0, BODY), Err(VerifyError::InvalidSignature));
    let mixed = format!("v0=00, v1=zz ,v1={}, t={TS}, v1={V1},x=1", "00".repeat(32));
    assert!(check(&mixed, BODY).is_ok());
    let upper = format!("t={TS},v1={}", V1.to_uppercase());
    assert!(check(&upper, BODY).is_ok());
}

#[test]
fn each_refusal_has_its_code() {
    let h = headers(&[]);
    assert_eq!(
        verify(&h, BODY.as_bytes(), &[key(SECRET)], WINDOW, at(0)),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        check(&format!("v1={V1}"), BODY),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(check("", BODY), Err(VerifyError::MissingTimestamp));
    for t in ["", "abc", "1705314600.0", "-5", "2024-01-15T10:30:00Z"] {
        assert_eq!(
            check(&format!("t={t},v1={V1}"), BODY),
            Err(VerifyError::InvalidTimestamp),
            "{t:?}"
        );
    }
    let two = format!("t={TS},t=1705314601,v1={V1}");
    assert_eq!(check(&two, BODY), Err(VerifyError::InvalidTimestamp));
    let same_twice = format!("t={TS},t={TS},v1={V1}");
    assert!(check(&same_twice, BODY).is_ok());
    assert_eq!(
        check(&format!("t={TS}"), BODY),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        check(&format!("t={TS},v1={V1}"), &BODY.replace("2000", "2001")),
        Err(VerifyError::InvalidSignature)
    );
    // A valid signature under another timestamp: the timestamp is what was signed.
    assert_eq!(
        check(&format!("t=1705314601,v1={V1}"), BODY),
        Err(VerifyError::InvalidSignature)
    );

    let h = headers(&[(SIGNATURE, &format!("t={TS},v1={V1}"))]);
    let run = |now| verify(&h, BODY.as_bytes(), &[key(SECRET)], WINDOW, now);
    assert!(run(at(300)).is_ok());
    assert_eq!(run(at(301)), Err(VerifyError::TimestampTooOld));
    assert_eq!(run(at(-301)), Err(VerifyError::TimestampInFuture));

    let body = r#"{"id":"evt_\u0007","type":"x"}"#;
    let sig = sign(SECRET.as_bytes(), TS, body.as_bytes());
    assert_eq!(check(&sig, body), Err(VerifyError::InvalidEventId));
}

#[test]
fn a_body_without_id_falls_back_to_the_digest_and_odd_types_are_dropped() {
    let body = r#"{"object":"event","type":"a\nb"}"#;
    let sig = sign(SECRET.as_bytes(), TS, body.as_bytes());
    let claims = check(&sig, body).unwrap();
    assert_eq!(claims.id_source, IdSource::Signature);
    assert!(claims.event_id.starts_with("sig:"));
    assert_eq!(claims.event, None);
}

#[test]
fn rotation() {
    assert_rotation(&key(OLD), &key(NEW), &key(OTHER), |configured, signers| {
        let mut value = format!("t={TS}");
        for signer in signers {
            let digest = hmac_sha256(signer.expose(), &[TS.as_bytes(), b".", BODY.as_bytes()]);
            value.push_str(&format!(",v1={}", hex::encode(digest)));
        }
        let h = headers(&[(SIGNATURE, &value)]);
        verify(&h, BODY.as_bytes(), configured, WINDOW, at(0))
    });
}
