//! Signature and freshness checks of the AJ scheme, end to end: what the sender is told
//! and whether anything reached the app. Framing, duplicates and header rewriting have
//! their own files.

mod support;

use support::aj::{digest_hex, now_with_offset, now_z, z_from_now, OTHER_SECRET};
use support::{
    assert_refusal, assert_relayed_ok, exchange, standard, AjRequest, Proxy, RecordingUpstream,
};

/// Sends `request`, expects the refusal `status`/`code`, and checks the app saw nothing.
async fn expect_refused(
    proxy: &Proxy,
    upstream: &RecordingUpstream,
    request: AjRequest,
    status: u16,
    code: &str,
) {
    let answer = request.send(proxy.addr()).await;
    assert_refusal(&answer, status, code);
    assert_eq!(
        upstream.count(),
        0,
        "a refused request ({code}) reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_delivery_is_forwarded_byte_for_byte() {
    let (upstream, proxy) = standard().await;
    // White space, key order and escapes that any re-serialisation would change.
    let body = "{ \"event\":\"status_change\",\n  \"reason\":\"caf\\u00e9 \u{fc}\" ,\"a\":1.50}";
    let request = AjRequest::new(body);

    let answer = request.send(proxy.addr()).await;

    assert_relayed_ok(&answer);
    let seen = upstream.single();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/webhooks/aj");
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(seen.header("x-aj-signature"), Some(request.signature()));
    assert_eq!(
        seen.header("x-aj-timestamp").as_deref(),
        Some(request.timestamp_value())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_signature_is_refused() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#).omit("X-AJ-Signature");
    expect_refused(&proxy, &upstream, request, 401, "missing_signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_timestamp_is_refused() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#).omit("X-AJ-Timestamp");
    expect_refused(&proxy, &upstream, request, 401, "missing_timestamp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_event_is_refused() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#).omit("X-AJ-Event");
    expect_refused(&proxy, &upstream, request, 401, "missing_event").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#).secret(OTHER_SECRET);
    expect_refused(&proxy, &upstream, request, 401, "invalid_signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_changed_after_signing_is_refused() {
    let (upstream, proxy) = standard().await;
    // One byte differs, the length does not: only the digest can tell.
    let request = AjRequest::new(r#"{"event":"status_change","to":"degraded"}"#)
        .send_body(r#"{"event":"status_change","to":"Degraded"}"#);
    expect_refused(&proxy, &upstream, request, 401, "invalid_signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_signature_headers_are_refused() {
    let (upstream, proxy) = standard().await;
    let base = AjRequest::new(r#"{"event":"status_change"}"#);
    let good = base.signature();
    let hex = good.trim_start_matches("sha256=").to_owned();
    let variants = [
        "sha256=".to_owned(),
        hex.clone(),
        format!("sha1={hex}"),
        format!("sha256={}", &hex[..62]),
        format!("sha256={hex}00"),
        format!("sha256={}", "zz".repeat(32)),
        format!("sha256=={hex}"),
        "garbage".to_owned(),
    ];
    for value in variants {
        let answer = base
            .clone()
            .signature_lines(&[&value])
            .send(proxy.addr())
            .await;
        assert_eq!(
            (answer.status, answer.json()),
            (401, serde_json::json!({ "error": "invalid_signature" })),
            "signature header {value:?} got {}",
            answer.summary()
        );
    }
    assert_eq!(upstream.count(), 0, "a malformed signature reached the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_timestamp_is_refused() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#).timestamp(z_from_now(-600));
    expect_refused(&proxy, &upstream, request, 401, "timestamp_too_old").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_timestamp_is_refused() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#).timestamp(z_from_now(600));
    expect_refused(&proxy, &upstream, request, 401, "timestamp_in_future").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_timestamps_are_refused() {
    let (upstream, proxy) = standard().await;
    let naive = now_z().trim_end_matches('Z').to_owned();
    let unix = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    for timestamp in [
        "not-a-time",
        "2024-13-45T99:00:00Z",
        naive.as_str(),
        unix.as_str(),
    ] {
        // Correctly signed over the odd value, so only its form can be at fault.
        let answer = AjRequest::new(r#"{"event":"status_change"}"#)
            .timestamp(timestamp)
            .send(proxy.addr())
            .await;
        assert_eq!(
            (answer.status, answer.json()),
            (401, serde_json::json!({ "error": "invalid_timestamp" })),
            "timestamp {timestamp:?} got {}",
            answer.summary()
        );
    }
    assert_eq!(
        upstream.count(),
        0,
        "an unparseable timestamp reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_inside_the_window_are_accepted() {
    let (upstream, proxy) = standard().await;
    let cases = [
        ("two minutes old", z_from_now(-120)),
        ("two minutes ahead", z_from_now(120)),
        ("+05:30 offset", now_with_offset(5, 30, None)),
        ("-03:00 offset", now_with_offset(-3, 0, None)),
        ("fractional seconds, Z", {
            let z = now_z();
            format!("{}.123456Z", z.trim_end_matches('Z'))
        }),
        (
            "fractional seconds and +05:30",
            now_with_offset(5, 30, Some("5")),
        ),
    ];
    for (index, (label, timestamp)) in cases.iter().enumerate() {
        let body = format!(r#"{{"event":"status_change","id":"window-{index}"}}"#);
        let answer = AjRequest::new(body)
            .timestamp(timestamp.clone())
            .send(proxy.addr())
            .await;
        assert_eq!(
            (answer.status, answer.text()),
            (200, r#"{"ok":true}"#.to_owned()),
            "{label} ({timestamp}) was not forwarded"
        );
    }
    assert_eq!(upstream.count(), cases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uppercase_hex_digest_is_accepted() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::new(r#"{"event":"status_change"}"#);
    let upper = format!(
        "sha256={}",
        digest_hex(
            support::SECRET.as_bytes(),
            request.timestamp_value(),
            request.body()
        )
        .to_ascii_uppercase()
    );
    let answer = request.signature_lines(&[&upper]).send(proxy.addr()).await;
    assert_relayed_ok(&answer);
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_matching_value_of_several_signatures_is_accepted() {
    let (upstream, proxy) = standard().await;
    let wrong = format!("sha256={}", "0".repeat(64));

    // Comma-separated in one header line, the matching value last.
    let first = AjRequest::new(r#"{"event":"status_change","id":"several-1"}"#);
    let listed = format!("{wrong},{}", first.signature());
    let answer = first.signature_lines(&[&listed]).send(proxy.addr()).await;
    assert_relayed_ok(&answer);

    // Repeated header lines, the matching one last.
    let second = AjRequest::new(r#"{"event":"status_change","id":"several-2"}"#);
    let right = second.signature();
    let answer = second
        .signature_lines(&[&wrong, &right])
        .send(proxy.addr())
        .await;
    assert_relayed_ok(&answer);

    // None matching: refused.
    let third = AjRequest::new(r#"{"event":"status_change","id":"several-3"}"#);
    let other = format!("sha256={}", "1".repeat(64));
    let answer = third
        .signature_lines(&[&wrong, &other])
        .send(proxy.addr())
        .await;
    assert_refusal(&answer, 401, "invalid_signature");

    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_different_timestamp_headers_are_refused() {
    let (upstream, proxy) = standard().await;
    // Signed over the first value, so a proxy that reads only the first would accept it.
    let request =
        AjRequest::new(r#"{"event":"status_change"}"#).header("X-AJ-Timestamp", &z_from_now(-30));
    // The contract names no code for this case; the timestamp is what is ambiguous.
    expect_refused(&proxy, &upstream, request, 401, "invalid_timestamp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_on_a_route_are_refused() {
    let (upstream, proxy) = standard().await;
    let get = exchange(
        proxy.addr(),
        b"GET /webhooks/aj HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_refusal(&get, 405, "method_not_allowed");

    // Correctly signed, so only the method is wrong.
    let put = AjRequest::new(r#"{"event":"status_change"}"#)
        .method("PUT")
        .send(proxy.addr())
        .await;
    assert_refusal(&put, 405, "method_not_allowed");
    // RFC 9110 section 15.5.6: a 405 names the methods the resource takes.
    assert_eq!(put.header("allow"), Some("POST"));
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_refused_by_default() {
    let (upstream, proxy) = standard().await;
    for path in ["/webhooks/other", "/", "/webhooks"] {
        let answer = AjRequest::new(r#"{"event":"status_change"}"#)
            .path(path)
            .send(proxy.addr())
            .await;
        assert_refusal(&answer, 404, "no_route");
    }
    assert_eq!(upstream.count(), 0);
}
