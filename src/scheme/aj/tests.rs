//! Unit tests of the AJ scheme: the doc's vector and the edges of every check.

use super::*;
use crate::scheme::IdSource;
use crate::scheme::Window;
use http::{HeaderName, HeaderValue};
use std::time::Duration;
use time::macros::datetime;

const SECRET: &str = "test-secret-0123456789abcdef0123456789";
const TS: &str = "2024-01-15T10:30:00Z";
const BODY: &str = concat!(
    r#"{"event":"status_change","from":"operational","to":"degraded","#,
    r#""changed_at":"2024-01-15T10:30:00Z","reason":"High latency detected"}"#
);
const VECTOR: &str = "sha256=4b8875aa30d2578476badcb05290f0148a0cf8d8bd2b52fc3cede8eabd8f77e1";
const NOW: OffsetDateTime = datetime!(2024-01-15 10:31:00 UTC);
const FIVE_MINUTES: Duration = Duration::from_secs(300);
const WINDOW: Window = Window {
    past: FIVE_MINUTES,
    future: FIVE_MINUTES,
};

fn secrets() -> Vec<Secret> {
    vec![Secret::new(SECRET.as_bytes().to_vec(), "test").unwrap()]
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn signed(ts: &str, body: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(sign(SECRET.as_bytes(), ts, body.as_bytes()))
    )
}

fn check(pairs: &[(&str, &str)], body: &str, now: OffsetDateTime) -> Result<Claims, VerifyError> {
    verify(&headers(pairs), body.as_bytes(), &secrets(), WINDOW, now)
}

#[test]
fn scheme_doc_test_vector() {
    assert_eq!(signed(TS, BODY), VECTOR);
    let claims = check(
        &[
            (SIGNATURE, VECTOR),
            (TIMESTAMP, TS),
            (EVENT, "status_change"),
            (DELIVERY_ID, "d-1"),
        ],
        BODY,
        NOW,
    )
    .unwrap();
    assert_eq!(claims.event.as_deref(), Some("status_change"));
    assert_eq!(
        (claims.event_id.as_str(), claims.id_source),
        ("d-1", IdSource::Header)
    );
    assert_eq!(claims.key_index, 0);
}

#[test]
fn missing_headers_have_their_own_codes_in_doc_order() {
    let ev = (EVENT, "status_change");
    assert_eq!(
        check(&[(TIMESTAMP, TS), ev], BODY, NOW),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), ev], BODY, NOW),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), (TIMESTAMP, TS)], BODY, NOW),
        Err(VerifyError::MissingEvent)
    );
    assert_eq!(
        check(
            &[(SIGNATURE, VECTOR), (TIMESTAMP, TS), (EVENT, " ")],
            BODY,
            NOW
        ),
        Err(VerifyError::MissingEvent)
    );
}

#[test]
fn tampered_body_wrong_secret_and_malformed_headers_are_invalid() {
    let ev = (EVENT, "status_change");
    let tampered = BODY.replace("degraded", "degradeD");
    assert_eq!(
        check(&[(SIGNATURE, VECTOR), (TIMESTAMP, TS), ev], &tampered, NOW),
        Err(VerifyError::InvalidSignature)
    );
    for bad in [
        "",
        "sha256=",
        "sha256=zz",
        "4b8875aa30d2578476badcb05290f0148a0cf8d8bd2b52fc3cede8eabd8f77e1",
        "sha1=4b88",
        &VECTOR[..VECTOR.len() - 2],
    ] {
        assert_eq!(
            check(&[(SIGNATURE, bad), (TIMESTAMP, TS), ev], BODY, NOW),
            Err(VerifyError::InvalidSignature),
            "{bad:?}"
        );
    }
    let other = vec![Secret::new(b"another-secret-0123456789abcdef0123".to_vec(), "t").unwrap()];
    let h = headers(&[(SIGNATURE, VECTOR), (TIMESTAMP, TS), ev]);
    assert_eq!(
        verify(&h, BODY.as_bytes(), &other, WINDOW, NOW),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn upper_case_hex_and_any_of_several_signatures_verify() {
    let ev = (EVENT, "status_change");
    let upper = format!("sha256={}", VECTOR[7..].to_uppercase());
    assert!(check(&[(SIGNATURE, &upper), (TIMESTAMP, TS), ev], BODY, NOW).is_ok());
    let list = format!("sha256={} , {VECTOR}", "00".repeat(32));
    assert!(check(&[(SIGNATURE, &list), (TIMESTAMP, TS), ev], BODY, NOW).is_ok());
    let zeros = format!("sha256={}", "00".repeat(32));
    assert!(check(
        &[
            (SIGNATURE, &zeros),
            (SIGNATURE, VECTOR),
            (TIMESTAMP, TS),
            ev
        ],
        BODY,
        NOW
    )
    .is_ok());
}

#[test]
fn second_secret_verifies_during_rotation() {
    let keys = vec![
        Secret::new(b"old-secret-0123456789abcdef0123456789".to_vec(), "a").unwrap(),
        Secret::new(SECRET.as_bytes().to_vec(), "b").unwrap(),
    ];
    let h = headers(&[
        (SIGNATURE, VECTOR),
        (TIMESTAMP, TS),
        (EVENT, "status_change"),
    ]);
    let claims = verify(&h, BODY.as_bytes(), &keys, WINDOW, NOW).unwrap();
    assert_eq!(claims.key_index, 1);
}

#[test]
fn window_edges_exactly() {
    let at = datetime!(2024-01-15 10:30:00 UTC);
    let sig = |ts: &str| signed(ts, BODY);
    let ok = |ts: &str, now| {
        check(
            &[(SIGNATURE, &sig(ts)), (TIMESTAMP, ts), (EVENT, "e")],
            BODY,
            now,
        )
    };
    // Exactly at the tolerance, both ways: accepted. One second beyond: refused.
    assert!(ok(TS, at + FIVE_MINUTES).is_ok());
    assert_eq!(
        ok(TS, at + FIVE_MINUTES + Duration::from_millis(1)),
        Err(VerifyError::TimestampTooOld)
    );
    assert!(ok(TS, at - FIVE_MINUTES).is_ok());
    assert_eq!(
        ok(TS, at - FIVE_MINUTES - Duration::from_millis(1)),
        Err(VerifyError::TimestampInFuture)
    );
}

#[test]
fn offsets_and_fractions_are_real_instants() {
    for ts in [
        "2024-01-15T16:00:00+05:30",
        "2024-01-15T10:30:00.250Z",
        "2024-01-15T10:30:00+00:00",
    ] {
        let claims = check(
            &[
                (SIGNATURE, &signed(ts, BODY)),
                (TIMESTAMP, ts),
                (EVENT, "e"),
            ],
            BODY,
            NOW,
        );
        assert!(claims.is_ok(), "{ts}");
    }
    // Same digits, wrong offset: an hour and a half away, so stale.
    let ts = "2024-01-15T10:30:00+05:30";
    let claims = check(
        &[
            (SIGNATURE, &signed(ts, BODY)),
            (TIMESTAMP, ts),
            (EVENT, "e"),
        ],
        BODY,
        NOW,
    );
    assert_eq!(claims, Err(VerifyError::TimestampTooOld));
}

#[test]
fn unreadable_and_ambiguous_timestamps_are_invalid() {
    for ts in [
        "2024-01-15T10:30:00",
        "1705314600",
        "yesterday",
        "2024-13-15T10:30:00Z",
    ] {
        let claims = check(
            &[
                (SIGNATURE, &signed(ts, BODY)),
                (TIMESTAMP, ts),
                (EVENT, "e"),
            ],
            BODY,
            NOW,
        );
        assert_eq!(claims, Err(VerifyError::InvalidTimestamp), "{ts}");
    }
    let two = [
        (SIGNATURE, VECTOR),
        (TIMESTAMP, TS),
        (TIMESTAMP, "2024-01-15T10:30:01Z"),
        (EVENT, "e"),
    ];
    assert_eq!(check(&two, BODY, NOW), Err(VerifyError::InvalidTimestamp));
    let same_twice = [
        (SIGNATURE, VECTOR),
        (TIMESTAMP, TS),
        (TIMESTAMP, TS),
        (EVENT, "e"),
    ];
    assert!(check(&same_twice, BODY, NOW).is_ok());
}

#[test]
fn body_id_wins_and_exact_replays_share_a_digest() {
    let body = r#"{"event":"incident_created","id":"inc_1"}"#;
    let sig = signed(TS, body);
    let a = check(
        &[
            (SIGNATURE, &sig),
            (TIMESTAMP, TS),
            (EVENT, "e"),
            (DELIVERY_ID, "x"),
        ],
        body,
        NOW,
    )
    .unwrap();
    let b = check(
        &[
            (SIGNATURE, &sig),
            (TIMESTAMP, TS),
            (EVENT, "e"),
            (DELIVERY_ID, "y"),
        ],
        body,
        NOW,
    )
    .unwrap();
    assert_eq!(
        (a.event_id.as_str(), a.id_source),
        ("inc_1", IdSource::BodyId)
    );
    assert_eq!(a.digest, b.digest);
}

#[test]
fn rotation_old_new_both_neither() {
    use crate::scheme::testing::{assert_rotation, key, NEW, OLD, OTHER};
    assert_rotation(&key(OLD), &key(NEW), &key(OTHER), |configured, signers| {
        let list: Vec<String> = signers
            .iter()
            .map(|k| {
                format!(
                    "sha256={}",
                    hex::encode(sign(k.expose(), TS, BODY.as_bytes()))
                )
            })
            .collect();
        let h = headers(&[
            (SIGNATURE, &list.join(",")),
            (TIMESTAMP, TS),
            (EVENT, "status_change"),
        ]);
        verify(&h, BODY.as_bytes(), configured, WINDOW, NOW)
    });
}
