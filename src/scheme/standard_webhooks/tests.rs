//! Unit tests of the Standard Webhooks scheme: the reference vector, every refusal,
//! rotation, signature lists and the wrong-length bypass.

use super::*;
use crate::scheme::testing::{assert_rotation, headers, whsec_key, WINDOW};
use crate::scheme::IdSource;

/// The reference example of the Standard Webhooks libraries' test suites (and Svix's
/// docs): secret, message id, timestamp, payload and the signature they publish.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: &str = "1614265330";
const BODY: &str = r#"{"test": 2432232314}"#;
const VECTOR: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// A typed event under the same key, computed with Python's `hmac` and `base64`.
const TYPED_BODY: &str = r#"{"type":"contact.created","data":{"id":"ct_1"}}"#;
const TYPED_ID: &str = "msg_2Abc";
const TYPED_VECTOR: &str = "v1,9NdpQt8bVXVygBBLEYgJtOHlBwlOn5t4Eg/ssrrjbTs=";

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_614_265_330 + seconds).unwrap()
}

fn check(pairs: &[(&str, &str)], body: &str) -> Result<Claims, VerifyError> {
    verify(
        &headers(pairs),
        body.as_bytes(),
        &[whsec_key(SECRET)],
        WINDOW,
        at(10),
    )
}

#[test]
fn the_reference_vector_verifies() {
    let key = whsec_key(SECRET);
    assert_eq!(sign(key.expose(), MSG_ID, TS, BODY.as_bytes()), VECTOR);
    let claims = check(&[(ID, MSG_ID), (TIMESTAMP, TS), (SIGNATURE, VECTOR)], BODY).unwrap();
    assert_eq!(
        (claims.event_id.as_str(), claims.id_source),
        (MSG_ID, IdSource::Header)
    );
    assert_eq!(claims.signed_at, Some(at(0)));
    assert_eq!(claims.event, None);
}

#[test]
fn the_event_type_is_the_bodys_type() {
    let pairs = [(ID, TYPED_ID), (TIMESTAMP, TS), (SIGNATURE, TYPED_VECTOR)];
    let claims = check(&pairs, TYPED_BODY).unwrap();
    assert_eq!(claims.event.as_deref(), Some("contact.created"));
    assert_eq!(claims.event_id, TYPED_ID);
}

#[test]
fn any_entry_of_the_list_may_match_and_other_versions_are_skipped() {
    let list = format!("v1a,bm9wZQ== v1,bm9wZQ== {VECTOR}");
    assert!(check(&[(ID, MSG_ID), (TIMESTAMP, TS), (SIGNATURE, &list)], BODY).is_ok());
    let doubled_spaces = format!("v1,bm9wZQ==  {VECTOR} ");
    assert!(check(
        &[(ID, MSG_ID), (TIMESTAMP, TS), (SIGNATURE, &doubled_spaces)],
        BODY
    )
    .is_ok());
}

#[test]
fn each_refusal_has_its_code() {
    let (id, ts, sig) = ((ID, MSG_ID), (TIMESTAMP, TS), (SIGNATURE, VECTOR));
    assert_eq!(check(&[id, ts], BODY), Err(VerifyError::MissingSignature));
    assert_eq!(check(&[id, sig], BODY), Err(VerifyError::MissingTimestamp));
    // The id is signed: without it nothing can be checked.
    assert_eq!(check(&[ts, sig], BODY), Err(VerifyError::InvalidEventId));
    assert_eq!(
        check(&[(ID, " "), ts, sig], BODY),
        Err(VerifyError::InvalidEventId)
    );
    assert_eq!(
        check(&[(ID, "msg_other"), ts, sig], BODY),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        check(&[id, ts, sig], r#"{"test": 2432232315}"#),
        Err(VerifyError::InvalidSignature)
    );
    // Milliseconds read as seconds land after the year 9999: unreadable.
    assert_eq!(
        check(&[id, (TIMESTAMP, "1614265330000"), sig], BODY),
        Err(VerifyError::InvalidTimestamp)
    );
    assert_eq!(
        check(&[id, (TIMESTAMP, "2021-02-25T15:02:10Z"), sig], BODY),
        Err(VerifyError::InvalidTimestamp)
    );

    let h = headers(&[id, ts, sig]);
    let run = |now| verify(&h, BODY.as_bytes(), &[whsec_key(SECRET)], WINDOW, now);
    assert!(run(at(300)).is_ok());
    assert_eq!(run(at(301)), Err(VerifyError::TimestampTooOld));
    assert_eq!(run(at(-301)), Err(VerifyError::TimestampInFuture));
}

#[test]
fn signatures_of_the_wrong_length_never_match() {
    // The true digest with bytes added, its first half, nothing, and other encodings.
    let (id, ts) = ((ID, MSG_ID), (TIMESTAMP, TS));
    for bad in [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OEAAA==",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE=",
        "v1,",
        "v1",
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,834c4cf52b04f8e4cf2531adfed9882ad4b266513...",
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ] {
        assert_eq!(
            check(&[id, ts, (SIGNATURE, bad)], BODY),
            Err(VerifyError::InvalidSignature),
            "{bad:?}"
        );
    }
}

#[test]
fn rotation() {
    let old = whsec_key("whsec_b2xkLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1");
    let new = whsec_key("whsec_bmV3LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1");
    let other = whsec_key(SECRET);
    assert_rotation(&old, &new, &other, |configured, signers| {
        let list: Vec<String> = signers
            .iter()
            .map(|k| sign(k.expose(), MSG_ID, TS, BODY.as_bytes()))
            .collect();
        let pairs = [(ID, MSG_ID), (TIMESTAMP, TS), (SIGNATURE, &list.join(" "))];
        verify(&headers(&pairs), BODY.as_bytes(), configured, WINDOW, at(0))
    });
}
