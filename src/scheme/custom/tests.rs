//! Unit tests of the engine: built-ins re-expressed as `[routes.custom]` tables verify
//! the built-ins' vectors, and each option of a custom scheme does what it says.

use super::*;
use crate::config::CustomSection;
use crate::scheme::testing::{assert_rotation, headers, key, whsec_key, NEW, OLD, OTHER, WINDOW};
use crate::scheme::{aj, github, slack, standard_webhooks};
use time::macros::datetime;

/// Parses and checks a `[routes.custom]` table.
fn spec(toml: &str) -> CustomScheme {
    let section: CustomSection = toml::from_str(toml).unwrap();
    section.check().unwrap()
}

const SLACK: &str = r#"
    signature_header = "X-Slack-Signature"
    signature_prefix = "v0="
    encoding = "hex"
    signed_content = "v0:{timestamp}:{body}"
    timestamp_header = "X-Slack-Request-Timestamp"
    timestamp_format = "unix"
"#;

const STANDARD_WEBHOOKS: &str = r#"
    signature_header = "webhook-signature"
    signature_prefix = "v1,"
    encoding = "base64"
    separator = " "
    signed_content = "{id}.{timestamp}.{body}"
    timestamp_header = "webhook-timestamp"
    timestamp_format = "unix"
    id_sources = ["header:webhook-id"]
    secret_format = "whsec"
"#;

const GITHUB: &str = r#"
    signature_header = "X-Hub-Signature-256"
    signature_prefix = "sha256="
    encoding = "hex"
    signed_content = "{body}"
    id_sources = ["header:X-GitHub-Delivery"]
    event_header = "X-GitHub-Event"
"#;

#[test]
fn builtins_written_as_custom_tables_are_the_builtins() {
    assert_eq!(&spec(SLACK), slack::spec());
    assert_eq!(&spec(STANDARD_WEBHOOKS), standard_webhooks::spec());
    assert_eq!(&spec(GITHUB), github::spec());
}

#[test]
fn slack_as_custom_verifies_slacks_published_vector() {
    // The vector of "Verifying requests from Slack" (see slack/tests.rs).
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&\
channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&\
command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F\
T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&\
trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let h = headers(&[
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
        ("X-Slack-Request-Timestamp", "1531420618"),
    ]);
    let now = OffsetDateTime::from_unix_timestamp(1_531_420_700).unwrap();
    let secrets = [key("8f742231b10e8888abcd99yyyzzz85a5")];
    let claims = verify(&spec(SLACK), &h, body.as_bytes(), &secrets, WINDOW, now).unwrap();
    assert_eq!(claims.id_source, IdSource::Signature);
    let stale = OffsetDateTime::from_unix_timestamp(1_531_421_000).unwrap();
    assert_eq!(
        verify(&spec(SLACK), &h, body.as_bytes(), &secrets, WINDOW, stale),
        Err(VerifyError::TimestampTooOld)
    );
}

#[test]
fn standard_webhooks_as_custom_verifies_the_reference_vector() {
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        (
            "webhook-signature",
            "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ]);
    let body = br#"{"test": 2432232314}"#;
    let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).unwrap();
    let secrets = [whsec_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let claims = verify(&spec(STANDARD_WEBHOOKS), &h, body, &secrets, WINDOW, now).unwrap();
    assert_eq!(claims.event_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
}

#[test]
fn aj_as_custom_verifies_the_aj_doc_vector() {
    let aj_table = r#"
        signature_header = "X-AJ-Signature"
        signature_prefix = "sha256="
        encoding = "hex"
        separator = ","
        signed_content = "{timestamp}.{body}"
        timestamp_header = "X-AJ-Timestamp"
        timestamp_format = "rfc3339"
        id_sources = ["body:id", "body:event_id", "header:X-AJ-Id"]
        event_header = "X-AJ-Event"
    "#;
    let body = concat!(
        r#"{"event":"status_change","from":"operational","to":"degraded","#,
        r#""changed_at":"2024-01-15T10:30:00Z","reason":"High latency detected"}"#
    )
    .as_bytes();
    let vector = "sha256=4b8875aa30d2578476badcb05290f0148a0cf8d8bd2b52fc3cede8eabd8f77e1";
    let h = headers(&[
        (
            aj::SIGNATURE,
            &format!("sha256={} , {vector}", "00".repeat(32)),
        ),
        (aj::TIMESTAMP, "2024-01-15T10:30:00Z"),
        (aj::EVENT, "status_change"),
        (aj::DELIVERY_ID, "d-1"),
    ]);
    let secrets = [key("test-secret-0123456789abcdef0123456789")];
    let now = datetime!(2024-01-15 10:31:00 UTC);
    let custom = verify(&spec(aj_table), &h, body, &secrets, WINDOW, now).unwrap();
    let builtin = aj::verify(&h, body, &secrets, WINDOW, now).unwrap();
    assert_eq!(custom, builtin);
}

/// SHA-512, base64, Unix milliseconds, the id signed from a header, an event header.
const ACME: &str = r#"
    signature_header = "X-Acme-Signature"
    encoding = "base64"
    separator = ","
    signed_content = "{timestamp}:{id}:{body}"
    timestamp_header = "X-Acme-Time"
    timestamp_format = "unix_ms"
    id_sources = ["body:event_id", "header:X-Acme-Id"]
    algorithm = "sha512"
    event_header = "X-Acme-Event"
"#;
const ACME_SECRET: &str = "custom-secret-0123456789abcdef012345";
const ACME_BODY: &str = r#"{"event_id":"ev_42","kind":"ping"}"#;
/// HMAC-SHA512 of `1705314600000:ev_42:ACME_BODY` under ACME_SECRET, base64, computed
/// with Python's `hmac` and `base64`.
const ACME_VECTOR: &str =
    "5/sUHKURHEP/GGZ4+03LHnl1jJsl0tFU4aCuYVWz6ph4mcSa8/iq/RiDh8vlDM3IzrQTETGnJD3TkLIDNZy1Ug==";

fn acme(pairs: &[(&str, &str)], body: &str) -> Result<Claims, VerifyError> {
    let now = datetime!(2024-01-15 10:30:30 UTC);
    let secrets = [key(ACME_SECRET)];
    verify(
        &spec(ACME),
        &headers(pairs),
        body.as_bytes(),
        &secrets,
        WINDOW,
        now,
    )
}

#[test]
fn sha512_unix_ms_and_a_signed_body_id() {
    let spec = spec(ACME);
    let sig = sign(
        &spec,
        ACME_SECRET.as_bytes(),
        "1705314600000",
        "ev_42",
        ACME_BODY.as_bytes(),
    );
    assert_eq!(sig, ACME_VECTOR);
    let (ts, event) = (("X-Acme-Time", "1705314600000"), ("X-Acme-Event", "ping"));
    let list = format!("AAAA,{ACME_VECTOR}");
    let claims = acme(&[("X-Acme-Signature", &list), ts, event], ACME_BODY).unwrap();
    assert_eq!(claims.event.as_deref(), Some("ping"));
    assert_eq!(
        (claims.event_id.as_str(), claims.id_source.clone()),
        ("ev_42", IdSource::BodyEventId)
    );
    assert_eq!(claims.signed_at, Some(datetime!(2024-01-15 10:30:00 UTC)));
    assert_eq!(claims.digest.len(), 64);
}

#[test]
fn custom_refusals_have_their_codes() {
    let sig = ("X-Acme-Signature", ACME_VECTOR);
    let (ts, event) = (("X-Acme-Time", "1705314600000"), ("X-Acme-Event", "ping"));
    assert_eq!(
        acme(&[ts, event], ACME_BODY),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        acme(&[sig, event], ACME_BODY),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(acme(&[sig, ts], ACME_BODY), Err(VerifyError::MissingEvent));
    let secs = ("X-Acme-Time", "1705314600");
    assert_eq!(
        acme(&[sig, secs, event], ACME_BODY),
        Err(VerifyError::TimestampTooOld)
    );
    let ahead = ("X-Acme-Time", "1705315000000");
    assert_eq!(
        acme(&[sig, ahead, event], ACME_BODY),
        Err(VerifyError::TimestampInFuture)
    );
    let bad = ("X-Acme-Time", "1705314600000.0");
    assert_eq!(
        acme(&[sig, bad, event], ACME_BODY),
        Err(VerifyError::InvalidTimestamp)
    );
    // The signed id comes from the body; without it, from the header; without both,
    // nothing can be checked.
    assert_eq!(
        acme(&[sig, ts, event], r#"{"kind":"ping"}"#),
        Err(VerifyError::InvalidEventId)
    );
    assert_eq!(
        acme(
            &[sig, ts, event, ("X-Acme-Id", "ev_42")],
            r#"{"kind":"ping"}"#
        ),
        Err(VerifyError::InvalidSignature)
    );
    let hex = ("X-Acme-Signature", "e7fb141ca511");
    assert_eq!(
        acme(&[hex, ts, event], ACME_BODY),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn the_id_header_is_signed_when_the_body_has_none() {
    let spec = spec(ACME);
    let body = r#"{"kind":"ping"}"#;
    let sig = sign(
        &spec,
        ACME_SECRET.as_bytes(),
        "1705314600000",
        "hdr-7",
        body.as_bytes(),
    );
    let pairs = [
        ("X-Acme-Signature", sig.as_str()),
        ("X-Acme-Time", "1705314600000"),
        ("X-Acme-Event", "ping"),
        ("X-Acme-Id", "hdr-7"),
    ];
    let claims = acme(&pairs, body).unwrap();
    assert_eq!(
        (claims.event_id.as_str(), claims.id_source),
        ("hdr-7", IdSource::Header)
    );
}

#[test]
fn rfc3339_timestamps_and_no_id_sources() {
    let spec = spec(
        r#"
        signature_header = "Signature"
        signature_prefix = "t1:"
        encoding = "hex"
        signed_content = "{body}|{timestamp}"
        timestamp_header = "Signed-At"
        timestamp_format = "rfc3339"
    "#,
    );
    let ts = "2024-01-15T16:00:00+05:30";
    let sig = sign(&spec, ACME_SECRET.as_bytes(), ts, "", b"x");
    assert!(sig.starts_with("t1:"));
    let h = headers(&[("signature", &sig.to_uppercase()), ("signed-at", ts)]);
    let now = datetime!(2024-01-15 10:30:00 UTC);
    let claims = verify(&spec, &h, b"x", &[key(ACME_SECRET)], WINDOW, now).unwrap();
    assert_eq!(claims.id_source, IdSource::Signature);
    assert_eq!(claims.event, None);
}

#[test]
fn rotation() {
    let spec = spec(ACME);
    assert_rotation(&key(OLD), &key(NEW), &key(OTHER), |configured, signers| {
        let list: Vec<String> = signers
            .iter()
            .map(|k| {
                sign(
                    &spec,
                    k.expose(),
                    "1705314600000",
                    "ev_42",
                    ACME_BODY.as_bytes(),
                )
            })
            .collect();
        let h = headers(&[
            ("X-Acme-Signature", &list.join(",")),
            ("X-Acme-Time", "1705314600000"),
            ("X-Acme-Event", "ping"),
        ]);
        let now = datetime!(2024-01-15 10:30:30 UTC);
        verify(&spec, &h, ACME_BODY.as_bytes(), configured, WINDOW, now)
    });
}

#[test]
fn timestamp_formats_read_only_their_own_form() {
    use TimestampFormat::*;
    let epoch = datetime!(2024-01-15 10:30:00 UTC);
    assert_eq!(parse_timestamp("1705314600", Unix), Ok(epoch));
    assert_eq!(
        parse_timestamp("1705314600123", UnixMs)
            .unwrap()
            .millisecond(),
        123
    );
    assert_eq!(parse_timestamp("2024-01-15T10:30:00Z", Rfc3339), Ok(epoch));
    for (value, format) in [
        ("", Unix),
        ("+1705314600", Unix),
        (" 1705314600", Unix),
        ("99999999999999", Unix),
        ("1705314600.5", UnixMs),
        ("2024-01-15T10:30:00", Rfc3339),
    ] {
        assert_eq!(
            parse_timestamp(value, format),
            Err(VerifyError::InvalidTimestamp),
            "{value:?}"
        );
    }
}
