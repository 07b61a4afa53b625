//! What the fuzz targets share: turning raw input into a request, the fixed secret and
//! clock, and the checks every accepted request must pass.

#![allow(dead_code)]

use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

use hookwarden::config::Secret;
use hookwarden::scheme::{Claims, MAX_EVENT_ID_BYTES};

/// The key every target signs and verifies with.
pub const KEY: &[u8] = b"fuzz-secret-0123456789abcdef0123456789";

/// The clock the targets verify at, give or take the offset the input picks.
pub fn now(offset: i16) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_705_314_660 + i64::from(offset)).unwrap()
}

pub fn secrets() -> Vec<Secret> {
    vec![Secret::new(KEY.to_vec(), "fuzz").unwrap()]
}

/// Splits `data` into header lines and a body at the first blank line (`\n\n`). Each
/// line is `name: value`; lines that are no header are skipped, as a server would
/// refuse them before any scheme saw them.
pub fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &data[data.len()..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    (headers, body)
}

/// The header value of `name` as text, if any.
pub fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Adds `value` under `name` if it is a valid header value.
pub fn add(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.append(HeaderName::from_static(name), value);
    }
}

/// What the proxy puts in trusted headers must be fit for them.
pub fn check_claims(claims: &Claims) {
    assert!(!claims.event_id.is_empty(), "empty event id");
    assert!(
        claims.event_id.len() <= MAX_EVENT_ID_BYTES,
        "event id too long"
    );
    assert!(
        HeaderValue::from_str(&claims.event_id).is_ok(),
        "event id {:?} is no header value",
        claims.event_id
    );
    assert!(!claims.event_id.chars().any(char::is_control));
    if let Some(event) = &claims.event {
        assert!(HeaderValue::from_str(event).is_ok(), "event {event:?}");
    }
    assert!(!claims.digest.is_empty());
}
