//! Hostile clients against the real binary: request smuggling, header floods, hundreds
//! of slow connections, and bodies over the limit.
//!
//! Every smuggling request is correctly signed and carries a second, also correctly
//! signed, request where a confused parser would find one; so if the proxy read either
//! of them, the app would see it. What must hold: the framing attacks are refused, the
//! app receives nothing, and the proxy keeps serving honest senders.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::faults::raise_fd_limit;
use support::raw::chunked;
use support::{
    assert_refusal, assert_relayed_ok, pattern_body, AjRequest, Proxy, ProxyConfig, RawConn,
    RecordingUpstream, Route, Step,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long a refusal that needs no waiting may take.
const QUICK: Duration = Duration::from_secs(5);

/// What a framing attack must end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A 4xx answer or a closed connection; nothing reaches the app.
    Refused,
    /// Refused, or forwarded with exactly the signed body; the smuggled request never
    /// reaches the app either way. For framings that are odd but unambiguous.
    RefusedOrFaithful,
}

/// One attack: a name, the bytes on the wire, and what it must end in.
struct Attack {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

/// The signed request hidden where a confused parser would see a second request.
fn smuggled() -> Vec<u8> {
    AjRequest::with_id("smuggled").raw()
}

/// `head` with `Host` and the AJ headers of `outer`, the given extra lines verbatim
/// (each must end in CRLF), then the blank line.
fn head(outer: &AjRequest, version: &str, lines: &str) -> Vec<u8> {
    let mut text = format!("POST /webhooks/aj {version}\r\nHost: 127.0.0.1\r\n");
    for (name, value) in outer.headers() {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(lines);
    text.push_str("\r\n");
    text.into_bytes()
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The smuggling attempts, each a signed outer request with the smuggled one behind it.
fn attacks() -> Vec<(AjRequest, Attack)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, expect: Expect, build: &dyn Fn(&AjRequest) -> Vec<u8>| {
        let outer = AjRequest::with_id(&format!("outer-{name}"));
        let bytes = build(&outer);
        out.push((
            outer,
            Attack {
                name,
                bytes,
                expect,
            },
        ));
    };
    let s = smuggled();
    let refused = Expect::Refused;

    // Content-Length with Transfer-Encoding, both orders, and the classic split where
    // the chunked reading ends early and the length reading does not.
    add("cl-te", refused, &|o| {
        let body = join(&[&chunked(o.body(), &[7]), &s]);
        let lines = format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        );
        join(&[&head(o, "HTTP/1.1", &lines), &body])
    });
    add("te-cl", refused, &|o| {
        let body = join(&[&chunked(o.body(), &[7]), &s]);
        let lines = format!(
            "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
            body.len()
        );
        join(&[&head(o, "HTTP/1.1", &lines), &body])
    });
    add("cl-te-empty-chunk-first", refused, &|o| {
        let body = join(&[b"0\r\n\r\n", &s]);
        let lines = format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        );
        join(&[&head(o, "HTTP/1.1", &lines), &body])
    });
    add("te-obs-fold-with-cl", refused, &|o| {
        let body = join(&[&chunked(o.body(), &[7]), &s]);
        let lines = format!(
            "Content-Length: {}\r\nTransfer-Encoding:\r\n chunked\r\n",
            body.len()
        );
        join(&[&head(o, "HTTP/1.1", &lines), &body])
    });

    // Two different lengths, as two lines, as a list, and lengths that are not numbers.
    let long = |o: &AjRequest| o.body().len() + s.len();
    add("two-content-lengths", refused, &|o| {
        let lines = format!(
            "Content-Length: {}\r\nContent-Length: {}\r\n",
            o.body().len(),
            long(o)
        );
        join(&[&head(o, "HTTP/1.1", &lines), o.body(), &s])
    });
    add("two-content-lengths-reversed", refused, &|o| {
        let lines = format!(
            "Content-Length: {}\r\nContent-Length: {}\r\n",
            long(o),
            o.body().len()
        );
        join(&[&head(o, "HTTP/1.1", &lines), o.body(), &s])
    });
    add("content-length-list", refused, &|o| {
        let lines = format!("Content-Length: {}, {}\r\n", o.body().len(), long(o));
        join(&[&head(o, "HTTP/1.1", &lines), o.body(), &s])
    });
    for (name, value) in [
        ("content-length-plus-sign", "+{n}"),
        ("content-length-hex", "0x{x}"),
        ("content-length-negative", "-{n}"),
        ("content-length-fraction", "{n}.0"),
        ("content-length-overflow", "1844674407370955161{n}"),
        ("content-length-inner-space", "{n} 0"),
    ] {
        add(name, refused, &|o| {
            let n = o.body().len();
            let value = value
                .replace("{n}", &n.to_string())
                .replace("{x}", &format!("{n:x}"));
            let lines = format!("Content-Length: {value}\r\n");
            join(&[&head(o, "HTTP/1.1", &lines), o.body(), &s])
        });
    }

    // obs-fold (a header line continued on the next): refused wherever it appears.
    add("obs-fold-content-length", refused, &|o| {
        let lines = format!("Content-Length: {}\r\n 0\r\n", o.body().len());
        join(&[&head(o, "HTTP/1.1", &lines), o.body(), &s])
    });
    add("obs-fold-signed-header", refused, &|o| {
        let lines = format!(
            "X-AJ-Event: status\r\n _change\r\nContent-Length: {}\r\n",
            o.body().len()
        );
        join(&[&head(o, "HTTP/1.1", &lines), o.body(), &s])
    });

    // Chunk sizes that overflow 64 bits (wrapping to small values), or are not hex.
    for (name, size) in [
        ("chunk-size-overflow-wraps-to-5", "10000000000000005"),
        ("chunk-size-all-f", "fffffffffffffffffff"),
        ("chunk-size-plus-sign", "+5"),
        ("chunk-size-0x", "0x5"),
        ("chunk-size-negative", "-5"),
    ] {
        add(name, refused, &|o| {
            let chunks = join(&[
                size.as_bytes(),
                b"\r\n",
                &o.body()[..5],
                b"\r\n0\r\n\r\n",
                &s,
            ]);
            join(&[
                &head(o, "HTTP/1.1", "Transfer-Encoding: chunked\r\n"),
                &chunks,
            ])
        });
    }

    // Transfer-Encoding variants a front proxy and the proxy could read differently.
    for (name, lines, expect) in [
        ("te-xchunked", "Transfer-Encoding: xchunked\r\n", refused),
        (
            "te-chunked-identity",
            "Transfer-Encoding: chunked, identity\r\n",
            refused,
        ),
        ("te-identity", "Transfer-Encoding: identity\r\n", refused),
        (
            "te-two-lines-chunked-last-not",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            refused,
        ),
        ("te-quoted", "Transfer-Encoding: \"chunked\"\r\n", refused),
        (
            "te-space-before-colon",
            "Transfer-Encoding : chunked\r\n",
            refused,
        ),
        (
            "te-vertical-tab",
            "Transfer-Encoding:\x0bchunked\r\n",
            refused,
        ),
        ("te-nul", "Transfer-Encoding: chunked\0\r\n", refused),
        (
            "te-upper-case",
            "Transfer-Encoding: CHUNKED\r\n",
            Expect::RefusedOrFaithful,
        ),
        (
            "te-tab",
            "Transfer-Encoding:\tchunked\r\n",
            Expect::RefusedOrFaithful,
        ),
        (
            "te-chunked-twice",
            "Transfer-Encoding: chunked, chunked\r\n",
            Expect::RefusedOrFaithful,
        ),
        (
            "te-gzip-chunked",
            "Transfer-Encoding: gzip, chunked\r\n",
            Expect::RefusedOrFaithful,
        ),
    ] {
        add(name, expect, &|o| {
            let body = join(&[&chunked(o.body(), &[7]), &s]);
            join(&[&head(o, "HTTP/1.1", lines), &body])
        });
    }
    add("te-in-http-1.0", refused, &|o| {
        let body = join(&[&chunked(o.body(), &[7]), &s]);
        join(&[
            &head(o, "HTTP/1.0", "Transfer-Encoding: chunked\r\n"),
            &body,
        ])
    });
    out
}

/// Sends one attack; returns the answers read (none if the proxy just closed).
async fn run_attack(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<support::RawResponse> {
    let mut conn = RawConn::connect(addr).await;
    conn.write_in_background(vec![Step::Write(bytes.to_vec())]);
    let mut answers = Vec::new();
    // The first answer, then anything after it: a second answer on the same connection
    // means the bytes behind the first request were taken for a request of their own.
    if let Ok(answer) = conn.read_response(QUICK).await {
        answers.push(answer);
        while let Ok(more) = conn.read_response(Duration::from_millis(500)).await {
            answers.push(more);
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused_and_nothing_reaches_the_app() {
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url())).await;

    let mut failures = Vec::new();
    let attacks = attacks();
    for (outer, attack) in &attacks {
        let before = upstream.count();
        let answers = run_attack(proxy.addr(), &attack.bytes).await;
        // A forward happens before the answer, so the count is final now.
        let reached: Vec<_> = upstream.requests().split_off(before);
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();

        let smuggled_through = reached
            .iter()
            .any(|r| r.header("x-hookwarden-event-id").as_deref() == Some("smuggled"));
        let refused = answers
            .first()
            .is_none_or(|a| (400..500).contains(&a.status));
        let faithful =
            reached.len() == 1 && reached[0].body == outer.body() && statuses.first() == Some(&200);
        let ok = !smuggled_through
            && answers.len() <= 1
            && match attack.expect {
                Expect::Refused => refused && reached.is_empty(),
                Expect::RefusedOrFaithful => (refused && reached.is_empty()) || faithful,
            };
        println!(
            "{:32} answers {statuses:?}, requests at the app {}",
            attack.name,
            reached.len()
        );
        if !ok {
            failures.push(format!(
                "{}: expected {:?}; answers {:?}; the app got {} request(s){}",
                attack.name,
                attack.expect,
                answers.iter().map(|a| a.summary()).collect::<Vec<_>>(),
                reached.len(),
                if smuggled_through {
                    " including the smuggled one"
                } else {
                    ""
                }
            ));
        }
    }
    println!("smuggling cases tried: {}", attacks.len());

    // The proxy is still serving honest senders.
    assert_relayed_ok(
        &AjRequest::with_id("after-smuggling")
            .send(proxy.addr())
            .await,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Sends a signed request with `extra` header lines; returns the answer (None if the
/// proxy closed without one) and whether the app got anything.
async fn flood(proxy: &Proxy, upstream: &RecordingUpstream, extra: &str) -> Option<u16> {
    let request = AjRequest::with_id("flood");
    let lines = format!("{extra}Content-Length: {}\r\n", request.body().len());
    let bytes = join(&[&head(&request, "HTTP/1.1", &lines), request.body()]);
    let before = upstream.count();
    let started = Instant::now();
    let answers = run_attack(proxy.addr(), &bytes).await;
    assert!(started.elapsed() < QUICK + Duration::from_secs(1));
    assert_eq!(
        upstream.count(),
        before,
        "a flooded request reached the app"
    );
    answers.first().map(|a| a.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_and_oversized_header_sections_are_refused() {
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url())).await;
    let refused = |status: Option<u16>| status.is_none_or(|s| (400..500).contains(&s));

    let cases: Vec<(&str, String)> = vec![
        (
            "300 header lines",
            (0..300).map(|i| format!("X-Flood-{i}: v\r\n")).collect(),
        ),
        (
            "10 000 header lines",
            (0..10_000).map(|i| format!("X-Flood-{i}: v\r\n")).collect(),
        ),
        (
            "one 2 MiB header",
            format!("X-Big: {}\r\n", "a".repeat(2 << 20)),
        ),
        (
            "100 headers of 20 KiB",
            (0..100)
                .map(|i| format!("X-Wide-{i}: {}\r\n", "b".repeat(20 << 10)))
                .collect(),
        ),
        (
            "200 repeated signature lines",
            (0..200)
                .map(|i| format!("X-AJ-Signature: sha256={:064x}\r\n", i))
                .collect(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, extra) in &cases {
        let status = flood(&proxy, &upstream, extra).await;
        println!("{name:32} answer {status:?}");
        if !refused(status) {
            failures.push(format!("{name}: answered {status:?}"));
        }
    }
    assert_relayed_ok(&AjRequest::with_id("after-floods").send(proxy.addr()).await);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One slow client: it trickles its header lines (or, after a complete head, its body)
/// one small piece every `pace`, until `stop` or its own deadline.
async fn trickle(
    addr: std::net::SocketAddr,
    body: bool,
    pace: Duration,
    connected: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let opening = if body {
        let request = AjRequest::new(pattern_body(4096, 7));
        request.head(&[("Content-Length", "4096")])
    } else {
        b"POST /webhooks/aj HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec()
    };
    if stream.write_all(&opening).await.is_err() {
        return;
    }
    connected.fetch_add(1, Ordering::SeqCst);
    let mut n = 0u64;
    while !*stop.borrow() && Instant::now() < deadline {
        tokio::time::sleep(pace).await;
        let piece = if body {
            b"x".to_vec()
        } else {
            format!("X-Slow-{n}: a\r\n").into_bytes()
        };
        if stream.write_all(&piece).await.is_err() {
            return;
        }
        n += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_slow_connections_do_not_stop_a_delivery() {
    const SLOW: usize = 500;
    let limit = raise_fd_limit(4096);
    assert!(
        limit >= 2 * SLOW as u64 + 100,
        "open-file limit {limit} too low"
    );
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url())).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let connected = Arc::new(AtomicUsize::new(0));
    let slow: Vec<_> = (0..SLOW)
        .map(|i| {
            tokio::spawn(trickle(
                proxy.addr(),
                i % 2 == 1,
                Duration::from_millis(200),
                Arc::clone(&connected),
                stop_rx.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    while connected.load(Ordering::SeqCst) < SLOW {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} of {SLOW} slow connections got through",
            connected.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let them trickle for a while, as a real attack would.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut times = Vec::new();
    for i in 0..5 {
        let request = AjRequest::with_id(&format!("through-the-slow-ones-{i}"));
        let sent = Instant::now();
        let answer = request.send(proxy.addr()).await;
        times.push(sent.elapsed());
        assert_relayed_ok(&answer);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_tx.send_replace(true);
    for task in slow {
        let _ = task.await;
    }
    println!("deliveries past {SLOW} slow connections took {times:?}");
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "a delivery took a second or more: {times:?}"
    );
    assert_eq!(
        upstream.count(),
        5,
        "only the honest deliveries reach the app"
    );
}

/// Writes `head`, then as much of an endless body as the proxy takes, until it stops
/// taking it or `cap` bytes; returns the first answer and the body bytes written.
async fn oversized(
    addr: std::net::SocketAddr,
    head: Vec<u8>,
    body_piece: Vec<u8>,
    cap: usize,
) -> (Option<support::RawResponse>, usize) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&written);
    let task = tokio::spawn(async move {
        if writer.write_all(&head).await.is_err() {
            return;
        }
        while counter.load(Ordering::SeqCst) < cap {
            match tokio::time::timeout(Duration::from_secs(2), writer.write_all(&body_piece)).await
            {
                Ok(Ok(())) => counter.fetch_add(body_piece.len(), Ordering::SeqCst),
                _ => return,
            };
        }
    });
    let mut buf = Vec::new();
    let answer = tokio::time::timeout(QUICK, async {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 4096];
        loop {
            let n = reader.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + length {
                    let n = reader.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[end + 4..].to_vec();
                return Some(support::RawResponse {
                    status,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body,
                });
            }
        }
    })
    .await
    .ok()
    .flatten();
    // Whatever the proxy still accepts after answering, it takes within a few seconds.
    let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    (answer, written.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    const CAP: usize = 256 << 20;
    let upstream = RecordingUpstream::start().await;
    let proxy =
        Proxy::start(ProxyConfig::new(upstream.url()).route(Route::aj().max_body_bytes(64 << 10)))
            .await;
    let request = AjRequest::with_id("too-big");
    let piece = vec![b'z'; 64 << 10];

    // Declared 1 GiB: refused on the head alone.
    let head = request.head(&[("Content-Length", "1073741824")]);
    let (answer, written) = oversized(proxy.addr(), head, piece.clone(), CAP).await;
    let answer = answer.expect("an answer to a 1 GiB Content-Length");
    assert_refusal(&answer, 413, "payload_too_large");
    println!("Content-Length 1 GiB: 413 after the client pushed {written} bytes");
    assert!(
        written < 32 << 20,
        "the proxy kept reading the refused body: {written} bytes"
    );

    // Chunked, one chunk declared 1 GiB: refused once the limit is passed.
    let mut head = request.head(&[("Transfer-Encoding", "chunked")]);
    head.extend_from_slice(b"40000000\r\n");
    let (answer, written) = oversized(proxy.addr(), head, piece, CAP).await;
    let answer = answer.expect("an answer to a 1 GiB chunk");
    assert_refusal(&answer, 413, "payload_too_large");
    println!("one 1 GiB chunk: 413 after the client pushed {written} bytes");
    assert!(
        written < 32 << 20,
        "the proxy kept reading the refused body: {written} bytes"
    );
    assert_eq!(upstream.count(), 0);
}
