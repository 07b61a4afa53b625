//! Running it like a sidecar: metrics that move by exactly the right amounts, probes that
//! tell the truth, a graceful SIGTERM, secret rotation without a restart, a clear failure
//! on a taken port, and no secret in the logs even at trace level.
//!
//! Cases that need a hand-written config (two proxies on one store, trace logging) start
//! the binary themselves through [`Spawned`]; the rest use the shared harness.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::proxy::{free_port, quote};
use support::spawned::{admin_get, wait_for_status, Spawned};
use support::{assert_refusal, AjRequest, Proxy, ProxyConfig, RecordingUpstream, Reply};

const SECRET: &str = "ops-test-secret-0123456789abcdef01234567";

/// Every sample of a Prometheus text exposition, keyed by `name{labels}` as printed.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn requests(route: &str, outcome: &str) -> String {
    format!("hookwarden_requests_total{{outcome=\"{outcome}\",route=\"{route}\"}}")
}

async fn scrape(admin: SocketAddr) -> HashMap<String, f64> {
    let (status, text) = admin_get(admin, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    samples(&text)
}

fn admin_line(admin: SocketAddr) -> String {
    format!("admin_listen = {}", quote(&admin.to_string()))
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
async fn counters_move_by_exactly_the_requests_sent() {
    // The whole scenario is one large future: keep it off the test thread's stack.
    Box::pin(counters_scenario()).await;
}

async fn counters_scenario() {
    let upstream = RecordingUpstream::start().await;
    let admin = local(free_port());
    let config = ProxyConfig::aj(upstream.url()).server_line(&admin_line(admin));
    let proxy = Proxy::start(config).await;
    let before = scrape(admin).await;

    // Two forwarded (one of them answered 503 by the app), one duplicate, two refusals of
    // different kinds, one request on no route.
    upstream.push(Reply::json(503, r#"{"busy":true}"#));
    let retried = AjRequest::with_id("ops-metrics-1");
    assert_eq!(retried.send(proxy.addr()).await.status, 503);
    let second = retried.send(proxy.addr()).await;
    assert_eq!(second.status, 200, "{}", second.summary());
    let again = AjRequest::with_id("ops-metrics-1").send(proxy.addr()).await;
    assert_eq!(again.status, 200);
    let forged =
        AjRequest::with_id("ops-metrics-2").secret("another-secret-0123456789abcdef0123456789");
    assert_refusal(&forged.send(proxy.addr()).await, 401, "invalid_signature");
    let unsigned = AjRequest::with_id("ops-metrics-3").omit("X-AJ-Timestamp");
    assert_refusal(&unsigned.send(proxy.addr()).await, 401, "missing_timestamp");
    let lost = AjRequest::with_id("ops-metrics-4").path("/elsewhere");
    assert_refusal(&lost.send(proxy.addr()).await, 404, "no_route");

    let after = scrape(admin).await;
    let moved = |key: &str| after.get(key).copied().unwrap_or(f64::NAN) - before[key];
    assert_eq!(moved(&requests("aj", "forwarded")), 2.0);
    assert_eq!(moved(&requests("aj", "duplicate")), 1.0);
    assert_eq!(moved(&requests("aj", "invalid_signature")), 1.0);
    assert_eq!(moved(&requests("aj", "missing_timestamp")), 1.0);
    assert_eq!(moved(&requests("-", "no_route")), 1.0);
    assert_eq!(moved(&requests("aj", "timestamp_too_old")), 0.0);
    let class =
        |c: &str| format!("hookwarden_upstream_responses_total{{class=\"{c}\",route=\"aj\"}}");
    assert_eq!(moved(&class("2xx")), 1.0);
    assert_eq!(moved(&class("5xx")), 1.0);
    assert_eq!(moved(&class("timeout")), 0.0);
    let verified = "hookwarden_verified_total{key=\"0\",route=\"aj\"}";
    assert_eq!(moved(verified), 2.0);
    let verify_count = "hookwarden_verify_duration_seconds_count{route=\"aj\"}";
    // Every request that reached a route with a body was verified (and timed): five.
    assert_eq!(moved(verify_count), 5.0);
    assert_eq!(upstream.count(), 2);
    drop(proxy);
}

#[tokio::test]
async fn live_output_passes_promtool_when_it_is_available() {
    // CI unpacks Debian's promtool and names it here; elsewhere the format is still
    // checked by the counters test above.
    let Ok(promtool) = std::env::var("HOOKWARDEN_PROMTOOL") else {
        eprintln!("HOOKWARDEN_PROMTOOL is not set: promtool check skipped");
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let admin = local(free_port());
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url()).server_line(&admin_line(admin))).await;
    assert_eq!(
        AjRequest::with_id("ops-promtool")
            .send(proxy.addr())
            .await
            .status,
        200
    );
    let (_, text) = admin_get(admin, "/metrics").await;

    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool: {said}");
    assert!(said.trim().is_empty(), "promtool found problems: {said}");
}

#[tokio::test]
async fn probes_and_unknown_admin_paths() {
    let upstream = RecordingUpstream::start().await;
    let admin = local(free_port());
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url()).server_line(&admin_line(admin))).await;
    assert_eq!(admin_get(admin, "/livez").await.0, 200);
    let ready = wait_for_status(admin, "/readyz", 200, Duration::from_secs(5)).await;
    assert!(ready.contains("ready"), "{ready}");
    assert_eq!(admin_get(admin, "/nope").await.0, 404);
    // Probes are not served on the webhook port.
    let on_proxy = support::exchange(proxy.addr(), b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_refusal(&on_proxy, 404, "no_route");
    assert_eq!(upstream.count(), 0);
}

fn config_text(
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: &str,
    store: &Path,
    secret: &Path,
) -> String {
    format!(
        "[server]\nlisten = {}\nadmin_listen = {}\nshutdown_grace_seconds = 5\n\n\
         [upstream]\nurl = {}\ntimeout_seconds = 5\n\n[store]\npath = {}\n\n\
         [[routes]]\nname = \"aj\"\npath = \"/webhooks/aj\"\nscheme = \"aj\"\n\
         secrets = [{{ file = {} }}]\n",
        quote(&listen.to_string()),
        quote(&admin.to_string()),
        quote(upstream),
        quote(&store.to_string_lossy()),
        quote(&secret.to_string_lossy()),
    )
}

#[tokio::test]
async fn readyz_reports_a_store_it_cannot_open_and_recovers() {
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let store = dir.path().join("store");

    // The first proxy holds the store's lock; the second cannot open it.
    let (first_admin, second_admin) = (local(free_port()), local(free_port()));
    let first = config_text(
        local(free_port()),
        first_admin,
        &upstream.url(),
        &store,
        &secret,
    );
    let mut first = Spawned::start(dir.path(), "first", &first, &[]);
    wait_for_status(first_admin, "/readyz", 200, Duration::from_secs(20)).await;

    let second_listen = local(free_port());
    let second = config_text(
        second_listen,
        second_admin,
        &upstream.url(),
        &store,
        &secret,
    );
    let second = Spawned::start(dir.path(), "second", &second, &[]);
    let reason = wait_for_status(second_admin, "/readyz", 503, Duration::from_secs(20)).await;
    assert!(reason.contains("store_not_open"), "{reason}");
    let refused = AjRequest::with_id("ops-ready-1")
        .secret(SECRET)
        .send(second_listen)
        .await;
    assert_refusal(&refused, 503, "store_unavailable");
    assert_eq!(refused.header("retry-after"), Some("5"));

    // Once the lock is free, the second opens the store and serves.
    first.terminate();
    first.wait_exit(Duration::from_secs(10));
    wait_for_status(second_admin, "/readyz", 200, Duration::from_secs(10)).await;
    let served = AjRequest::with_id("ops-ready-1")
        .secret(SECRET)
        .send(second_listen)
        .await;
    assert_eq!(served.status, 200, "{}\n{}", served.summary(), second.log());
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits() {
    let upstream = RecordingUpstream::start().await;
    upstream.set_default(Reply::ok().delayed(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let (listen, admin) = (local(free_port()), local(free_port()));
    let text = config_text(
        listen,
        admin,
        &upstream.url(),
        &dir.path().join("store"),
        &secret,
    );
    let mut proxy = Spawned::start(dir.path(), "proxy", &text, &[]);
    wait_for_status(admin, "/readyz", 200, Duration::from_secs(20)).await;

    let in_flight = tokio::spawn(async move {
        AjRequest::with_id("ops-sigterm-1")
            .secret(SECRET)
            .send(listen)
            .await
    });
    upstream.wait_for(1, Duration::from_secs(5)).await;
    let signalled = Instant::now();
    proxy.terminate();

    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "{}\n{}", answer.summary(), proxy.log());
    let (code, _) = proxy.wait_exit(Duration::from_secs(5));
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "{}", proxy.log());
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?}, beyond the 5 s grace"
    );
    assert!(
        tokio::net::TcpStream::connect(listen).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn a_rotated_secret_file_takes_effect_without_a_restart() {
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let (listen, admin) = (local(free_port()), local(free_port()));
    let text = config_text(
        listen,
        admin,
        &upstream.url(),
        &dir.path().join("store"),
        &secret,
    );
    let proxy = Spawned::start(dir.path(), "proxy", &text, &[("RUST_LOG", "info")]);
    wait_for_status(admin, "/readyz", 200, Duration::from_secs(20)).await;

    let rotated = "ops-rotated-secret-abcdef0123456789abcdef0123";
    let old = AjRequest::with_id("ops-rotate-1")
        .secret(SECRET)
        .send(listen)
        .await;
    assert_eq!(old.status, 200);

    // Kubernetes swaps the file whole; so do we.
    let fresh = dir.path().join("secret.new");
    std::fs::write(&fresh, format!("{rotated}\n")).unwrap();
    std::fs::rename(&fresh, &secret).unwrap();

    let started = Instant::now();
    loop {
        let answer = AjRequest::with_id("ops-rotate-2")
            .secret(rotated)
            .send(listen)
            .await;
        if answer.status == 200 {
            break;
        }
        assert_refusal(&answer, 401, "invalid_signature");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stale = AjRequest::with_id("ops-rotate-3")
        .secret(SECRET)
        .send(listen)
        .await;
    assert_refusal(&stale, 401, "invalid_signature");

    let metrics = scrape(admin).await;
    assert_eq!(
        metrics["hookwarden_secret_reloads_total{route=\"aj\"}"],
        1.0
    );
    let log = proxy.log();
    assert!(log.contains("secret changed"), "{log}");
    assert!(
        !log.contains(rotated) && !log.contains(SECRET),
        "a secret reached the log"
    );
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error_and_a_nonzero_exit() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let admin = local(free_port());
    let text = config_text(
        listen,
        admin,
        "http://127.0.0.1:9",
        &dir.path().join("store"),
        &secret,
    );
    let mut proxy = Spawned::start(dir.path(), "proxy", &text, &[]);
    let (code, _) = proxy.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(1));
    let log = proxy.log();
    assert!(log.contains(&format!("cannot listen on {listen}")), "{log}");
}

#[tokio::test]
async fn no_secret_or_signature_reaches_the_logs_at_trace_level() {
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let (listen, admin) = (local(free_port()), local(free_port()));
    let text = config_text(
        listen,
        admin,
        &upstream.url(),
        &dir.path().join("store"),
        &secret,
    );
    let proxy = Spawned::start(dir.path(), "proxy", &text, &[("RUST_LOG", "trace")]);
    wait_for_status(admin, "/readyz", 200, Duration::from_secs(20)).await;

    let good = AjRequest::with_id("ops-trace-1").secret(SECRET);
    assert_eq!(good.send(listen).await.status, 200);
    assert_eq!(good.send(listen).await.status, 200);
    let forged =
        AjRequest::with_id("ops-trace-2").secret("forged-secret-0123456789abcdef0123456789");
    assert_refusal(&forged.send(listen).await, 401, "invalid_signature");
    scrape(admin).await;

    let log = proxy.log();
    assert!(
        log.lines().count() > 20,
        "trace logging produced little: {log}"
    );
    let digest = good.signature();
    let digest = digest.trim_start_matches("sha256=");
    for needle in [
        SECRET,
        digest,
        &forged.signature()[7..],
        r#""from":"operational""#,
    ] {
        let line = log.lines().find(|l| l.contains(needle));
        assert!(line.is_none(), "the log holds {needle:?}: {line:?}");
    }
    assert!(log.contains("request done"), "{log}");
}
