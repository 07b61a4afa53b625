//! Tests of `sign`'s headers: for every scheme, what it prints verifies on the route it
//! was made for; options a scheme does not use are refused.

use std::path::Path;

use http::{HeaderName, HeaderValue};
use time::macros::datetime;

use super::*;
use crate::config::Config;
use crate::scheme;

const SECRET: &str = "sign-test-secret-0123456789abcdef0123";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: OffsetDateTime = datetime!(2024-01-15 10:30:00 UTC);

/// One route of `scheme`, its secret in a file under `dir`.
fn route(dir: &Path, scheme: &str, extra: &str) -> Route {
    let secret = dir.join(format!("{scheme}.secret"));
    let text = if scheme == "standard-webhooks" {
        WHSEC
    } else {
        SECRET
    };
    std::fs::write(&secret, text).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[upstream]\nurl = \"http://localhost:3000\"\n\
         [store]\npath = \"data/x\"\n[[routes]]\nname = \"r\"\npath = \"/r\"\n\
         scheme = \"{scheme}\"\nsecrets = [{{ file = \"{}\" }}]\n{extra}",
        secret.display()
    );
    let config = Config::parse(&config, "inline").unwrap_or_else(|e| panic!("{e}"));
    config.routes[0].clone()
}

fn input<'a>(route: &'a Route, body: &'a [u8]) -> SignInput<'a> {
    SignInput {
        body,
        key: route.secrets[0].expose(),
        timestamp: None,
        id: None,
        event: None,
        now: NOW,
    }
}

fn header_map(lines: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn what_sign_prints_verifies_for_every_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"id":"evt_1","type":"thing.happened","event":"status_change"}"#;
    for (scheme, event, id) in [
        ("aj", None, Some("d-1")),
        ("stripe", None, None),
        (
            "github",
            Some("push"),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ),
        ("standard-webhooks", None, None),
        ("standard-webhooks", None, Some("msg_given")),
        ("slack", None, None),
        ("shopify", Some("orders/create"), Some("b54557e4")),
    ] {
        let route = route(dir.path(), scheme, "");
        let lines = headers(
            &route,
            &SignInput {
                event,
                id,
                ..input(&route, body)
            },
        )
        .unwrap_or_else(|e| panic!("{scheme}: {e}"));
        let claims = scheme::verify(&route, &header_map(&lines), body, NOW)
            .unwrap_or_else(|e| panic!("{scheme}: {e} for {lines:?}"));
        assert_eq!(claims.key_index, 0);
        if let Some(id) = id.filter(|_| scheme != "aj") {
            assert_eq!(claims.event_id, id, "{scheme}");
        }
    }
}

#[test]
fn printed_forms_match_each_senders() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"id":"evt_1"}"#;
    let stripe = route(dir.path(), "stripe", "");
    let lines = headers(&stripe, &input(&stripe, body)).unwrap();
    assert_eq!(lines[0], ("Content-Type".into(), "application/json".into()));
    assert_eq!(lines[1].0, "Stripe-Signature");
    assert!(lines[1].1.starts_with("t=1705314600,v1="), "{lines:?}");

    let standard = route(dir.path(), "standard-webhooks", "");
    let lines = headers(&standard, &input(&standard, body)).unwrap();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature"
        ]
    );
    assert!(lines[1].1.starts_with("msg_1705314600_"), "{lines:?}");
    assert!(lines[3].1.starts_with("v1,"), "{lines:?}");

    let slack = route(dir.path(), "slack", "");
    let form = b"command=%2Fstatus&trigger_id=1.2.3";
    let lines = headers(&slack, &input(&slack, form)).unwrap();
    assert_eq!(lines[0].1, "application/x-www-form-urlencoded");
    assert_eq!(
        lines[1],
        ("X-Slack-Request-Timestamp".into(), "1705314600".into())
    );
}

#[test]
fn aj_keeps_its_exact_lines() {
    let dir = tempfile::tempdir().unwrap();
    let aj = route(dir.path(), "aj", "");
    let body = br#"{"event":"status_change"}"#;
    let lines = headers(&aj, &input(&aj, body)).unwrap();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "X-AJ-Event",
            "X-AJ-Timestamp",
            "X-AJ-Signature"
        ]
    );
    assert_eq!(lines[2].1, "2024-01-15T10:30:00Z");
    let err = headers(&aj, &input(&aj, b"{}")).unwrap_err();
    assert_eq!(err, "the body has no top-level \"event\"; pass --event");
}

#[test]
fn options_a_scheme_does_not_use_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let body = b"{}";
    let stripe = route(dir.path(), "stripe", "");
    let with_event = SignInput {
        event: Some("x"),
        ..input(&stripe, body)
    };
    assert!(headers(&stripe, &with_event)
        .unwrap_err()
        .contains("--event is not used"));
    let bad_time = SignInput {
        timestamp: Some("2024-01-15T10:30:00Z"),
        ..input(&stripe, body)
    };
    assert_eq!(
        headers(&stripe, &bad_time).unwrap_err(),
        "--timestamp \"2024-01-15T10:30:00Z\" is not Unix seconds, the stripe scheme's format"
    );
    let github = route(dir.path(), "github", "");
    assert_eq!(
        headers(&github, &input(&github, body)).unwrap_err(),
        "pass --event: it is sent as X-GitHub-Event"
    );
}

#[test]
fn custom_schemes_sign_what_they_verify() {
    let dir = tempfile::tempdir().unwrap();
    let table = "[routes.custom]\nsignature_header = \"X-Acme-Signature\"\n\
                 signature_prefix = \"s=\"\nencoding = \"base64\"\n\
                 signed_content = \"{timestamp}.{id}.{body}\"\n\
                 timestamp_header = \"X-Acme-Time\"\ntimestamp_format = \"unix_ms\"\n\
                 id_sources = [\"body:event_id\", \"header:X-Acme-Id\"]\n\
                 algorithm = \"sha512\"\nevent_header = \"X-Acme-Event\"";
    let acme = route(dir.path(), "custom", table);
    for body in [&br#"{"event_id":"ev_1"}"#[..], b"{}"] {
        let signed = SignInput {
            event: Some("ping"),
            ..input(&acme, body)
        };
        let lines = headers(&acme, &signed).unwrap();
        assert_eq!(lines[1], ("x-acme-time".into(), "1705314600000".into()));
        let claims = scheme::verify(&acme, &header_map(&lines), body, NOW).unwrap();
        assert_eq!(claims.event.as_deref(), Some("ping"));
    }
    let no_event = headers(&acme, &input(&acme, b"{}")).unwrap_err();
    assert_eq!(no_event, "pass --event: it is sent as x-acme-event");
}
