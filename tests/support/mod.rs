//! Shared helpers for the end-to-end tests: a recording upstream, an AJ request builder, a
//! raw HTTP/1.1 client and a harness that runs the real `hookwarden` binary.
//!
//! Every test file pulls this in with `mod support;` and uses only part of it, so unused
//! items are allowed here rather than scattering `allow`s over each helper. Nothing here
//! talks to anything but 127.0.0.1, and every port is ephemeral.

#![allow(dead_code, unused_imports)]

pub mod aj;
pub mod faults;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod spawned;
pub mod upstream;

pub use aj::{AjRequest, SECRET};
pub use proxy::{Proxy, ProxyConfig, Route};
pub use raw::{exchange, RawConn, RawResponse, Step};
pub use upstream::{RecordedRequest, RecordingUpstream, Reply};

/// Pseudo-random bytes (xorshift), not JSON and, beyond a few bytes, not UTF-8, so a proxy
/// that re-encodes, trims or parses the body is caught. `seed` makes the bodies of one test
/// differ, which keeps them from being taken as replays of each other.
pub fn pattern_body(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A recording upstream and a proxy with the standard `aj` route in front of it.
pub async fn standard() -> (RecordingUpstream, Proxy) {
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url())).await;
    (upstream, proxy)
}

/// Asserts a refusal: `status`, a JSON content type, and exactly `{"error": code}`.
pub fn assert_refusal(answer: &RawResponse, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.json()),
        (status, serde_json::json!({ "error": code })),
        "expected {status} {code}, got {}",
        answer.summary()
    );
    let content_type = answer.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type of a refusal: {content_type:?}"
    );
}

/// Asserts the answer is the duplicate acknowledgement for `event_id`.
pub fn assert_duplicate(answer: &RawResponse, event_id: &str) {
    assert_eq!(
        (answer.status, answer.json()),
        (
            200,
            serde_json::json!({ "ok": true, "already_processed": true, "event_id": event_id })
        ),
        "expected the duplicate answer for {event_id}, got {}",
        answer.summary()
    );
}

/// Asserts the answer is the default upstream reply, relayed unchanged.
pub fn assert_relayed_ok(answer: &RawResponse) {
    assert_eq!(
        (answer.status, answer.text()),
        (200, r#"{"ok":true}"#.to_owned()),
        "expected the app's 200 {{\"ok\":true}}, got {}",
        answer.summary()
    );
}
