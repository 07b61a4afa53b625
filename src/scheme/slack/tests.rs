//! Unit tests of the Slack scheme: Slack's published vector, every refusal, rotation,
//! malformed headers, and the ids and event types read from form and JSON bodies.

use std::time::Duration;

use super::*;
use crate::scheme::testing::{assert_rotation, headers, key, NEW, OLD, OTHER, WINDOW};

/// From "Verifying requests from Slack" in Slack's docs: the signing secret, the
/// timestamp, the slash command body and the signature they publish.
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TS: &str = "1531420618";
const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&\
channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&\
command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F\
T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&\
trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const VECTOR: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_531_420_618 + seconds).unwrap()
}

fn check(pairs: &[(&str, &str)], body: &str) -> Result<Claims, VerifyError> {
    verify(
        &headers(pairs),
        body.as_bytes(),
        &[key(SECRET)],
        WINDOW,
        at(60),
    )
}

#[test]
fn slacks_published_vector_verifies_as_a_form() {
    assert_eq!(sign(SECRET.as_bytes(), TS, BODY.as_bytes()), VECTOR);
    let claims = check(&[(SIGNATURE, VECTOR), (TIMESTAMP, TS)], BODY).unwrap();
    assert_eq!(claims.event.as_deref(), Some("/webhook-collect"));
    assert_eq!(
        claims.event_id,
        "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    );
    assert_eq!(claims.id_source.to_string(), "body.trigger_id");
    assert_eq!(claims.signed_at, Some(at(0)));
}

#[test]
fn events_api_json_gives_event_id_and_inner_type() {
    let body =
        r#"{"type":"event_callback","event_id":"Ev0PV52K21","event":{"type":"app_mention"}}"#;
    let sig = sign(SECRET.as_bytes(), TS, body.as_bytes());
    let claims = check(&[(SIGNATURE, &sig), (TIMESTAMP, TS)], body).unwrap();
    assert_eq!(claims.event.as_deref(), Some("app_mention"));
    assert_eq!(
        (claims.event_id.as_str(), claims.id_source),
        ("Ev0PV52K21", IdSource::BodyEventId)
    );

    let challenge = r#"{"type":"url_verification","challenge":"abc"}"#;
    let sig = sign(SECRET.as_bytes(), TS, challenge.as_bytes());
    let claims = check(&[(SIGNATURE, &sig), (TIMESTAMP, TS)], challenge).unwrap();
    assert_eq!(claims.event.as_deref(), Some("url_verification"));
    assert_eq!(claims.id_source, IdSource::Signature);
}

#[test]
fn interaction_payloads_give_their_type() {
    let body = "payload=%7B%22type%22%3A%22block_actions%22%7D";
    let sig = sign(SECRET.as_bytes(), TS, body.as_bytes());
    let claims = check(&[(SIGNATURE, &sig), (TIMESTAMP, TS)], body).unwrap();
    assert_eq!(claims.event.as_deref(), Some("block_actions"));
    assert!(claims.event_id.starts_with("sig:"));
}

#[test]
fn each_refusal_has_its_code() {
    assert_eq!(
        check(&[(TIMESTAMP, TS)], BODY),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        check(&[(SIGNATURE, VECTOR)], BODY),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(
        check(
            &[(SIGNATURE, VECTOR), (TIMESTAMP, TS)],
            &BODY.replace("foobar", "foobaz")
        ),
        Err(VerifyError::InvalidSignature)
    );
    for ts in [
        "",
        "1531420618.5",
        "-1531420618",
        "2018-07-12T18:36:58Z",
        "0x5b47",
    ] {
        assert_eq!(
            check(&[(SIGNATURE, VECTOR), (TIMESTAMP, ts)], BODY),
            Err(VerifyError::InvalidTimestamp),
            "{ts:?}"
        );
    }
    let two = [
        (SIGNATURE, VECTOR),
        (TIMESTAMP, TS),
        (TIMESTAMP, "1531420619"),
    ];
    assert_eq!(check(&two, BODY), Err(VerifyError::InvalidTimestamp));

    let h = headers(&[(SIGNATURE, VECTOR), (TIMESTAMP, TS)]);
    let run = |now| verify(&h, BODY.as_bytes(), &[key(SECRET)], WINDOW, now);
    assert!(run(at(300)).is_ok());
    assert_eq!(run(at(301)), Err(VerifyError::TimestampTooOld));
    assert!(run(at(-300)).is_ok());
    assert_eq!(run(at(-301)), Err(VerifyError::TimestampInFuture));
    let narrow = Window {
        past: Duration::from_secs(60),
        future: Duration::from_secs(5),
    };
    let narrow_run = |now| verify(&h, BODY.as_bytes(), &[key(SECRET)], narrow, now);
    assert_eq!(narrow_run(at(-6)), Err(VerifyError::TimestampInFuture));
    assert!(narrow_run(at(60)).is_ok());

    let body = "trigger_id=a%0Ab";
    let sig = sign(SECRET.as_bytes(), TS, body.as_bytes());
    assert_eq!(
        check(&[(SIGNATURE, &sig), (TIMESTAMP, TS)], body),
        Err(VerifyError::InvalidEventId)
    );
}

#[test]
fn malformed_signatures_are_invalid() {
    for bad in [
        "",
        "v0=",
        "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        &VECTOR[..VECTOR.len() - 1],
        &format!("{VECTOR}ab"),
    ] {
        assert_eq!(
            check(&[(SIGNATURE, bad), (TIMESTAMP, TS)], BODY),
            Err(VerifyError::InvalidSignature),
            "{bad:?}"
        );
    }
}

#[test]
fn rotation() {
    assert_rotation(&key(OLD), &key(NEW), &key(OTHER), |configured, signers| {
        let sigs: Vec<String> = signers
            .iter()
            .map(|k| sign(k.expose(), TS, BODY.as_bytes()))
            .collect();
        let mut pairs: Vec<(&str, &str)> = sigs.iter().map(|s| (SIGNATURE, s.as_str())).collect();
        pairs.push((TIMESTAMP, TS));
        verify(
            &headers(&pairs),
            BODY.as_bytes(),
            configured,
            WINDOW,
            at(60),
        )
    });
}
