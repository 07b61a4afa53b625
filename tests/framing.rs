//! HTTP/1.1 framing through the proxy: body sizes and encodings, `Expect: 100-continue`,
//! conflicting length headers, size limits and stalled bodies. Requests are written byte
//! by byte with the raw client, because ordinary clients refuse to send most of these.

mod support;

use std::time::{Duration, Instant};

use support::raw::{chunk, chunked};
use support::{
    assert_refusal, assert_relayed_ok, pattern_body, AjRequest, Proxy, ProxyConfig, RawConn,
    RecordingUpstream, Route, Step,
};

const MIB: usize = 1 << 20;

/// How long a refusal that needs no waiting may take; far below any body timeout used.
const QUICK: Duration = Duration::from_secs(5);

async fn proxy_with(route: Route, server_lines: &[&str]) -> (RecordingUpstream, Proxy) {
    let upstream = RecordingUpstream::start().await;
    let mut config = ProxyConfig::new(upstream.url()).route(route);
    for line in server_lines {
        config = config.server_line(line);
    }
    (upstream, Proxy::start(config).await)
}

/// Sends a body of `len` bytes, chunked or not, and checks the app got exactly those
/// bytes framed by Content-Length.
async fn round_trip(len: usize, chunk_sizes: Option<&[usize]>) {
    let (upstream, proxy) = proxy_with(Route::aj().max_body_bytes(8 * MIB as u64), &[]).await;
    let request = AjRequest::new(pattern_body(len, len as u64)).id(&format!("size-{len}"));
    let bytes = match chunk_sizes {
        Some(sizes) => request.raw_chunked(sizes),
        None => request.raw(),
    };

    let answer = support::exchange(proxy.addr(), &bytes).await;

    assert_relayed_ok(&answer);
    let seen = upstream.single();
    assert!(
        seen.body_error.is_none(),
        "upstream body error: {:?}",
        seen.body_error
    );
    assert_eq!(seen.body.len(), len, "body length at the app");
    assert!(seen.body == request.body(), "the app got different bytes");
    assert_eq!(seen.header("content-length"), Some(len.to_string()));
    assert_eq!(
        seen.header_values("transfer-encoding"),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_body_with_content_length() {
    round_trip(1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_body_with_content_length() {
    round_trip(MIB, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_body_with_content_length() {
    round_trip(5 * MIB, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_body_chunked() {
    round_trip(1, Some(&[1])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_body_chunked_in_uneven_chunks() {
    round_trip(MIB, Some(&[1, 7, 4096, 3, 65_536, 10_000])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mib_body_chunked() {
    round_trip(5 * MIB, Some(&[5, 16_384, 1_000_003])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_gets_100_before_the_body_is_sent() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    let request = AjRequest::new(r#"{"event":"status_change","id":"expect-1"}"#);
    let length = request.body().len().to_string();
    let mut conn = RawConn::connect(proxy.addr()).await;

    conn.send(&request.head(&[("Content-Length", &length), ("Expect", "100-continue")]))
        .await
        .expect("send the head");
    let interim = conn
        .read_response(QUICK)
        .await
        .expect("an answer to the head alone");
    assert_eq!(
        interim.status,
        100,
        "answer before the body: {}",
        interim.summary()
    );

    conn.send(request.body()).await.expect("send the body");
    let (_, answer) = conn.read_final(QUICK).await.expect("the final answer");
    assert_relayed_ok(&answer);
    let seen = upstream.single();
    assert_eq!(seen.body, request.body());
    assert_eq!(seen.header_values("expect"), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_is_refused_and_closed() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    let request = AjRequest::new(r#"{"event":"status_change","id":"cl-te"}"#);
    let encoded = chunked(request.body(), &[8]);
    let length = encoded.len().to_string();
    let orders = [
        [
            ("Content-Length", length.as_str()),
            ("Transfer-Encoding", "chunked"),
        ],
        [
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", length.as_str()),
        ],
    ];
    for framing in orders {
        let mut bytes = request.head(&framing);
        bytes.extend_from_slice(&encoded);
        let mut conn = RawConn::connect(proxy.addr()).await;
        conn.write_in_background(vec![Step::Write(bytes)]);

        let (_, answer) = conn.read_final(QUICK).await.expect("an answer");
        assert_refusal(&answer, 400, "invalid_framing");
        // RFC 9112 section 6.3: the connection must not be reused after such a request.
        assert!(
            conn.closed_within(Duration::from_secs(2)).await,
            "connection left open after CL+TE ({framing:?})"
        );
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunk_closes_the_connection() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    let request = AjRequest::new("abc").id("broken-chunk");
    let mut bytes = request.head(&[("Transfer-Encoding", "chunked")]);
    bytes.extend_from_slice(b"zz\r\nabc\r\n0\r\n\r\n");
    let mut conn = RawConn::connect(proxy.addr()).await;
    conn.write_in_background(vec![Step::Write(bytes)]);

    let (_, answer) = conn.read_final(QUICK).await.expect("an answer");
    assert_refusal(&answer, 400, "invalid_framing");
    // Where this request ends is unknown, so nothing after it may be read as a request.
    assert!(
        conn.closed_within(Duration::from_secs(2)).await,
        "connection left open"
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_content_lengths_are_refused() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    let request = AjRequest::new(r#"{"event":"status_change","id":"two-cl"}"#);
    let length = request.body().len().to_string();
    let longer = (request.body().len() + 5).to_string();
    let listed = format!("{length}, {longer}");
    let framings: [Vec<(&str, &str)>; 2] = [
        vec![("Content-Length", &length), ("Content-Length", &longer)],
        vec![("Content-Length", &listed)],
    ];
    for framing in framings {
        let mut bytes = request.head(&framing);
        bytes.extend_from_slice(request.body());
        bytes.extend_from_slice(b"abcde");
        let answer = support::exchange(proxy.addr(), &bytes).await;
        assert!(is_framing_refusal(&answer), "{}", answer.summary());
    }
    assert_eq!(upstream.count(), 0);
}

/// Refused as bad framing: hookwarden's `400 {"error":"invalid_framing"}`, or, for what
/// pingora's own parser rejects before hookwarden sees the request (the README's known
/// limits), pingora's bare 400 that closes the connection.
fn is_framing_refusal(answer: &support::RawResponse) -> bool {
    let ours = answer.text() == r#"{"error":"invalid_framing"}"#;
    let pingoras = answer.text().is_empty()
        && answer.header("server") == Some("Pingora")
        && answer.header("connection") == Some("close");
    answer.status == 400 && (ours || pingoras)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_length_and_coding_headers_are_refused() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    let request = AjRequest::new("abc").id("bad-framing");
    let chunked_body = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
    let cases: [(&str, &str, Vec<u8>); 5] = [
        ("Content-Length", "-3", b"abc".to_vec()),
        ("Content-Length", "+3", b"abc".to_vec()),
        // A coding other than chunked last leaves the length unknown (RFC 9112 6.3).
        ("Transfer-Encoding", "gzip", b"abc".to_vec()),
        ("Transfer-Encoding", "chunked, gzip", chunked_body.clone()),
        (
            "Transfer-Encoding",
            "chunked",
            b"zz\r\nabc\r\n0\r\n\r\n".to_vec(),
        ),
    ];
    // Every case is tried, so one run shows all that go wrong.
    let mut wrong = Vec::new();
    for (name, value, payload) in cases {
        let mut bytes = request.head(&[(name, value)]);
        bytes.extend_from_slice(&payload);
        let answer = support::exchange(proxy.addr(), &bytes).await;
        if !is_framing_refusal(&answer) {
            wrong.push(format!(
                "{name}: {value} -> {} {:?}",
                answer.summary(),
                answer.headers
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused as invalid_framing:\n{}",
        wrong.join("\n")
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transfer_coding_under_chunked_is_not_forwarded() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    // Signed over the de-chunked bytes: forwarding them would hand the app a body still
    // in a coding (gzip) that the forwarded headers no longer mention.
    let request = AjRequest::new("abc").id("gzip-chunked");
    let mut bytes = request.head(&[("Transfer-Encoding", "gzip, chunked")]);
    bytes.extend_from_slice(b"3\r\nabc\r\n0\r\n\r\n");

    let answer = support::exchange(proxy.addr(), &bytes).await;

    assert_refusal(&answer, 400, "invalid_framing");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_at_the_limit_passes_and_one_more_byte_is_refused() {
    let (upstream, proxy) = proxy_with(Route::aj().max_body_bytes(1024), &[]).await;

    let at_limit = AjRequest::new(pattern_body(1024, 1))
        .send(proxy.addr())
        .await;
    assert_relayed_ok(&at_limit);

    let over = AjRequest::new(pattern_body(1025, 2))
        .send(proxy.addr())
        .await;
    assert_refusal(&over, 413, "payload_too_large");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_content_length_is_refused_before_the_body() {
    let (upstream, proxy) = proxy_with(Route::aj().max_body_bytes(1024), &[]).await;
    let request = AjRequest::new(pattern_body(2048, 3));
    let mut conn = RawConn::connect(proxy.addr()).await;

    // Only the head: a proxy that waited for the body would not answer in time.
    conn.send(&request.head(&[("Content-Length", "2048")]))
        .await
        .expect("send the head");

    let (_, answer) = conn
        .read_final(QUICK)
        .await
        .expect("an answer without the body");
    assert_refusal(&answer, 413, "payload_too_large");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_content_length_with_expect_gets_413() {
    let (upstream, proxy) = proxy_with(Route::aj().max_body_bytes(1024), &[]).await;
    let request = AjRequest::new(pattern_body(2048, 4));
    let mut conn = RawConn::connect(proxy.addr()).await;

    conn.send(&request.head(&[("Content-Length", "2048"), ("Expect", "100-continue")]))
        .await
        .expect("send the head");

    let (_, answer) = conn
        .read_final(QUICK)
        .await
        .expect("an answer without the body");
    assert_refusal(&answer, 413, "payload_too_large");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chunked_body_is_refused_while_reading() {
    let (upstream, proxy) = proxy_with(Route::aj().max_body_bytes(1024), &[]).await;
    let request = AjRequest::new(pattern_body(4096, 5));
    let mut steps = vec![Step::Write(
        request.head(&[("Transfer-Encoding", "chunked")]),
    )];
    for piece in request.body().chunks(512) {
        steps.push(Step::Write(chunk(piece)));
    }
    // No last chunk: the limit must be enforced before the body ends.
    let mut conn = RawConn::connect(proxy.addr()).await;
    conn.write_in_background(steps);

    let (_, answer) = conn
        .read_final(QUICK)
        .await
        .expect("an answer before the body ended");
    assert_refusal(&answer, 413, "payload_too_large");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_gets_request_timeout() {
    let (upstream, proxy) = proxy_with(Route::aj(), &["body_timeout_seconds = 1"]).await;
    let request = AjRequest::new(pattern_body(100, 6));

    // Content-Length framing: 10 of 100 bytes, then silence.
    let mut head = request.head(&[("Content-Length", "100")]);
    head.extend_from_slice(&request.body()[..10]);
    let started = Instant::now();
    let mut conn = RawConn::connect(proxy.addr()).await;
    conn.write_in_background(vec![Step::Write(head)]);
    let (_, answer) = conn
        .read_final(QUICK)
        .await
        .expect("an answer to a stalled body");
    let waited = started.elapsed();
    assert_refusal(&answer, 408, "request_timeout");
    assert!(
        waited >= Duration::from_millis(900),
        "answered after {waited:?}, before the timeout"
    );

    // Chunked framing: one chunk, then silence.
    let mut head = request.head(&[("Transfer-Encoding", "chunked")]);
    head.extend_from_slice(&chunk(&request.body()[..10]));
    let mut conn = RawConn::connect(proxy.addr()).await;
    conn.write_in_background(vec![Step::Write(head)]);
    let (_, answer) = conn
        .read_final(QUICK)
        .await
        .expect("an answer to a stalled chunked body");
    assert_refusal(&answer, 408, "request_timeout");

    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_but_steady_body_is_not_a_stall() {
    let (upstream, proxy) = proxy_with(Route::aj(), &["body_timeout_seconds = 1"]).await;
    let request = AjRequest::new(pattern_body(500, 7));

    // Five pauses of 400 ms: two seconds in all, but never a second without data.
    let mut steps = vec![Step::Write(request.head(&[("Content-Length", "500")]))];
    for piece in request.body().chunks(100) {
        steps.push(Step::Pause(Duration::from_millis(400)));
        steps.push(Step::Write(piece.to_vec()));
    }
    let mut conn = RawConn::connect(proxy.addr()).await;
    conn.write_in_background(steps);

    let (_, answer) = conn.read_final(QUICK).await.expect("an answer");
    assert_relayed_ok(&answer);
    assert_eq!(upstream.single().body, request.body());
}

/// Sends `head` with `body` on one connection, expects the refusal `status`/`code`, then
/// checks that nothing else is answered on that connection.
async fn refusal_without_a_second_answer(
    proxy: &Proxy,
    head: Vec<u8>,
    body: Vec<u8>,
    status: u16,
    code: &str,
) {
    let mut conn = RawConn::connect(proxy.addr()).await;
    conn.write_in_background(vec![Step::Write(head), Step::Write(body)]);
    let (_, answer) = conn.read_final(QUICK).await.expect("an answer");
    assert_refusal(&answer, status, code);
    // A second answer could only come from the body having been read as a request.
    if let Ok(extra) = conn.read_response(Duration::from_millis(700)).await {
        panic!(
            "a second answer on the connection after {code}: {}",
            extra.summary()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_of_a_refused_request_is_never_taken_for_a_request() {
    let (upstream, proxy) = proxy_with(Route::aj().max_body_bytes(1024), &[]).await;
    // A correctly signed delivery, hidden as the body of requests that are refused.
    let hidden = AjRequest::with_id("evt-hidden-1").raw();
    let length = hidden.len().to_string();

    let unsigned = AjRequest::new("").omit("X-AJ-Signature");
    let head = unsigned.head(&[("Content-Length", &length)]);
    refusal_without_a_second_answer(&proxy, head, hidden.clone(), 401, "missing_signature").await;

    let elsewhere = AjRequest::new("").path("/nowhere");
    let head = elsewhere.head(&[("Content-Length", &length)]);
    refusal_without_a_second_answer(&proxy, head, hidden.clone(), 404, "no_route").await;

    let get = AjRequest::new("").method("GET");
    let head = get.head(&[("Content-Length", &length)]);
    refusal_without_a_second_answer(&proxy, head, hidden.clone(), 405, "method_not_allowed").await;

    // Declared larger than the limit, so the proxy refuses without reading the body; the
    // padding brings the bytes sent up to the declared length.
    let mut padded = hidden.clone();
    padded.resize(2048, b' ');
    let big = AjRequest::new("");
    let head = big.head(&[("Content-Length", "2048")]);
    refusal_without_a_second_answer(&proxy, head, padded, 413, "payload_too_large").await;

    assert_eq!(upstream.count(), 0, "the hidden delivery reached the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_on_one_connection() {
    let (upstream, proxy) = proxy_with(Route::aj(), &[]).await;
    let mut conn = RawConn::connect(proxy.addr()).await;

    conn.send(&AjRequest::with_id("evt-keepalive-1").raw())
        .await
        .expect("first request");
    let (_, first) = conn.read_final(QUICK).await.expect("first answer");
    assert_relayed_ok(&first);

    let closing = first
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    if closing {
        // Closing after an answer is allowed; it must then really close.
        assert!(conn.closed_within(Duration::from_secs(2)).await);
    } else {
        conn.send(&AjRequest::with_id("evt-keepalive-2").raw())
            .await
            .expect("second request");
        let (_, second) = conn.read_final(QUICK).await.expect("second answer");
        assert_relayed_ok(&second);
        let ids: Vec<_> = upstream
            .requests()
            .iter()
            .map(|r| r.header("x-hookwarden-event-id").unwrap_or_default())
            .collect();
        assert_eq!(ids, vec!["evt-keepalive-1", "evt-keepalive-2"]);
    }
}
