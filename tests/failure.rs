//! Failure: the proxy killed at random moments, an app that fails in every way it can, a
//! store whose disk fills up or turns read-only, and the clock at the window's edges.
//!
//! What must hold throughout: no event the sender saw acknowledged is forwarded again,
//! every event reaches the app at least once, and nothing is forwarded without a record
//! in the store. The crash run here is the short CI variant; `scripts/crash-soak.sh` runs
//! the same test longer through the `HOOKWARDEN_CRASH_*` variables.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookwarden::config::{Config, Secret};
use hookwarden::scheme::{self, aj, stripe, VerifyError, Window};
use support::aj::z_from_now;
use support::faults::{is_root, Bare, Behaviour, Ext4, FaultyApp, Tmpfs};
use support::{
    assert_duplicate, assert_refusal, assert_relayed_ok, AjRequest, Proxy, ProxyConfig, RawConn,
    RawResponse, RecordingUpstream, Step, SECRET,
};
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How long one try of the crash sender waits for an answer.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `bytes` on a new connection; any failure (refused, reset, cut short, silent) is
/// an error, as a real sender would see it.
async fn try_send(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
) -> anyhow::Result<RawResponse> {
    let mut conn = RawConn::try_connect(addr).await?;
    conn.write_in_background(vec![Step::Write(bytes.to_vec())]);
    let (_, answer) = conn.read_final(timeout).await?;
    Ok(answer)
}

/// An integer from the environment, or `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*, enough to pick kill moments reproducibly from a printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// One event the sender saw acknowledged.
struct Acked {
    id: String,
    /// Requests the app had recorded when the acknowledgement arrived: any copy of this
    /// event at this index or later was forwarded after the acknowledgement.
    app_count_at_ack: usize,
    tries: u32,
}

/// A sender that retries each event, re-signed each time, until it gets a 2xx (the app's
/// own, or the duplicate answer), then takes the next event, until told to stop.
async fn sender(
    addr: SocketAddr,
    app: Arc<RecordingUpstream>,
    next: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
    statuses: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
) -> Vec<Acked> {
    let mut acked = Vec::new();
    while !*stop.borrow() {
        let id = format!("crash-{}", next.fetch_add(1, Ordering::SeqCst));
        let mut tries = 0u32;
        loop {
            tries += 1;
            assert!(
                tries < 3_000,
                "{id}: no acknowledgement after {tries} tries"
            );
            let request = AjRequest::with_id(&id);
            let answer = try_send(addr, &request.raw(), TRY_TIMEOUT).await;
            let label = match &answer {
                Ok(a) => a.status.to_string(),
                Err(_) => "no answer".to_owned(),
            };
            *statuses.lock().unwrap().entry(label).or_default() += 1;
            if matches!(&answer, Ok(a) if (200..300).contains(&a.status)) {
                acked.push(Acked {
                    id,
                    app_count_at_ack: app.count(),
                    tries,
                });
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    acked
}

/// SIGKILL and restart at random moments while senders deliver; then check that every
/// event reached the app and that none was forwarded after its acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_safety_under_random_sigkill() {
    let kills = env_or("HOOKWARDEN_CRASH_KILLS", 20);
    let senders = env_or("HOOKWARDEN_CRASH_SENDERS", 4);
    let clock_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seed = env_or("HOOKWARDEN_CRASH_SEED", clock_seed).max(1);
    let mut rng = Rng(seed);
    println!("crash run: {kills} kills, {senders} senders, seed {seed}");

    let app = Arc::new(RecordingUpstream::start().await);
    // A short lease, so a claim orphaned by a kill lapses quickly. sync = "always" unless
    // HOOKWARDEN_CRASH_SYNC says otherwise: with "interval" this test is expected to
    // fail, which shows that it can.
    let mut config = ProxyConfig::aj(app.url())
        .upstream_timeout_seconds(1)
        .store_line("lease_seconds = 2");
    config.sync = std::env::var("HOOKWARDEN_CRASH_SYNC").unwrap_or_else(|_| "always".into());
    let mut proxy = Proxy::start(config).await;
    let addr = proxy.addr();

    let (stop_tx, stop_rx) = watch::channel(false);
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let workers: Vec<_> = (0..senders)
        .map(|_| {
            tokio::spawn(sender(
                addr,
                Arc::clone(&app),
                Arc::clone(&next),
                stop_rx.clone(),
                Arc::clone(&statuses),
            ))
        })
        .collect();

    let started = Instant::now();
    let mut downtime = Duration::ZERO;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(50 + rng.below(400))).await;
        let down = Instant::now();
        proxy.kill9();
        tokio::time::sleep(Duration::from_millis(rng.below(100))).await;
        proxy.start_again().await;
        downtime += down.elapsed();
    }
    // Let traffic flow on a live proxy for a moment, then let each sender finish its event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send_replace(true);
    let mut acked = Vec::new();
    for worker in workers {
        acked.extend(worker.await.expect("a sender panicked"));
    }
    let run_time = started.elapsed();

    // Every event reached the app, and no copy arrived after its acknowledgement.
    let seen = app.requests();
    let mut copies: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, request) in seen.iter().enumerate() {
        if let Some(id) = request.header("x-hookwarden-event-id") {
            copies.entry(id).or_default().push(index);
        }
    }
    let mut lost = Vec::new();
    let mut late = Vec::new();
    for event in &acked {
        let indexes = copies.get(&event.id).map(Vec::as_slice).unwrap_or_default();
        let complete = indexes.iter().any(|&i| seen[i].body_error.is_none());
        if !complete {
            lost.push(event.id.clone());
        }
        if indexes.iter().any(|&i| i >= event.app_count_at_ack) {
            late.push(event.id.clone());
        }
    }

    // Every acknowledged event is remembered across all those crashes.
    let before = app.count();
    let mut not_duplicate = Vec::new();
    for event in &acked {
        let answer = AjRequest::with_id(&event.id).send(addr).await;
        if answer.status != 200 || answer.json().get("already_processed").is_none() {
            not_duplicate.push(format!("{}: {}", event.id, answer.summary()));
        }
    }
    let forwarded_by_replay = app.count() - before;

    let redelivered = seen.len() - copies.len();
    let tries: u64 = acked.iter().map(|a| u64::from(a.tries)).sum();
    println!(
        "crash run figures: kills survived {kills}, events acknowledged {}, app deliveries {}, \
         redelivered before acknowledgement {redelivered}, forwarded after acknowledgement {}, \
         events lost {}, sender tries {tries}, answers {:?}, proxy down {downtime:?} of {run_time:?}",
        acked.len(),
        seen.len(),
        late.len(),
        lost.len(),
        statuses.lock().unwrap(),
    );
    assert!(
        acked.len() >= kills as usize,
        "too few events for the kills to matter"
    );
    assert!(
        lost.is_empty(),
        "events that never reached the app: {lost:?}"
    );
    assert!(
        late.is_empty(),
        "events forwarded again after the sender saw them acknowledged: {late:?}"
    );
    assert!(
        not_duplicate.is_empty() && forwarded_by_replay == 0,
        "acknowledged events not remembered after the crashes ({forwarded_by_replay} forwarded): \
         {not_duplicate:?}"
    );
}

/// Each way the app can fail leaves the event retryable: the sender gets a 5xx, the claim
/// is released (the retry is forwarded at once, not held as in flight), and once
/// processed the next copy is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_failures_are_retryable_and_release_the_claim() {
    let mut app = FaultyApp::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(app.url()).upstream_timeout_seconds(1)).await;
    let cases = [
        ("app 500", Some(Behaviour::Answer(500)), 500),
        ("app 503", Some(Behaviour::Answer(503)), 503),
        ("app hangs past the timeout", Some(Behaviour::Hang), 504),
        (
            "app closes before answering",
            Some(Behaviour::CloseBeforeAnswer),
            502,
        ),
        (
            "app closes mid status line",
            Some(Behaviour::CloseMidHead),
            502,
        ),
        ("app down", None, 502),
    ];
    for (name, behaviour, status) in cases {
        let id = format!("app-fail-{}", name.replace(' ', "-"));
        let before = app.count_for(&id);
        match behaviour {
            Some(b) => app.push(b),
            None => app.stop().await,
        }

        let started = Instant::now();
        let first = AjRequest::with_id(&id).timestamp(z_from_now(-2));
        let answer = try_send(proxy.addr(), &first.raw(), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{name}: no answer: {e:#}"));
        assert_eq!(answer.status, status, "{name}: {}", answer.summary());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: the answer took {:?}",
            started.elapsed()
        );
        let reached = usize::from(behaviour.is_some());
        assert_eq!(
            app.count_for(&id) - before,
            reached,
            "{name}: copies at the app"
        );

        if behaviour.is_none() {
            app.restart().await;
        }
        let retry = AjRequest::with_id(&id).send(proxy.addr()).await;
        assert_eq!(
            retry.status,
            200,
            "{name}: the retry was not forwarded: {}",
            retry.summary()
        );
        assert_eq!(app.count_for(&id) - before, reached + 1, "{name}: retry");
        assert_duplicate(&AjRequest::with_id(&id).send(proxy.addr()).await, &id);
        assert_eq!(app.count_for(&id) - before, reached + 1, "{name}: after");
    }
}

/// The app sends its 2xx head and dies mid-body: the sender must not see a complete
/// success (it would stop retrying on a half answer), and its retry gets a 2xx without
/// the event being lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_closing_mid_body_never_looks_like_a_complete_answer() {
    let app = FaultyApp::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(app.url()).upstream_timeout_seconds(1)).await;
    app.push(Behaviour::CloseMidBody);

    let first = AjRequest::with_id("app-mid-body").timestamp(z_from_now(-2));
    let answer = try_send(proxy.addr(), &first.raw(), Duration::from_secs(10)).await;
    if let Ok(answer) = &answer {
        assert!(
            !(200..300).contains(&answer.status),
            "a cut answer reached the sender as a complete {}",
            answer.summary()
        );
    }

    let retry = AjRequest::with_id("app-mid-body").send(proxy.addr()).await;
    assert!(
        (200..300).contains(&retry.status),
        "retry: {}",
        retry.summary()
    );
    assert!(app.count_for("app-mid-body") >= 1);
}

/// GET on the admin listener.
async fn admin_get(admin: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    match try_send(admin, request.as_bytes(), Duration::from_secs(5)).await {
        Ok(answer) => (answer.status, answer.text()),
        Err(e) => (0, e.to_string()),
    }
}

/// Polls until `/readyz` answers `status`, or panics after `limit`.
async fn wait_readyz(admin: SocketAddr, status: u16, limit: Duration) -> String {
    let started = Instant::now();
    let mut last = (0, String::new());
    while started.elapsed() < limit {
        last = admin_get(admin, "/readyz").await;
        if last.0 == status {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {status} within {limit:?}; last: {last:?}");
}

/// Sends fresh copies of event `id` until one is answered `status`; panics after `limit`.
async fn deliver_until(addr: SocketAddr, id: &str, status: u16, limit: Duration) -> RawResponse {
    let started = Instant::now();
    loop {
        let answer = AjRequest::with_id(id).send(addr).await;
        if answer.status == status || started.elapsed() > limit {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A proxy whose store lives on a fresh tmpfs of `size_kib`; `None` when not root.
async fn proxy_on_tmpfs(app_url: String, size_kib: u64) -> Option<(Proxy, Tmpfs)> {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs for the store needs root");
        return None;
    }
    let config = ProxyConfig::aj(app_url).store_line("sweep_interval_seconds = 1");
    let mut proxy = Proxy::start(config).await;
    proxy.stop().await;
    let disk = Tmpfs::mount(&proxy.dir().join("store"), size_kib);
    proxy.start_again().await;
    Some((proxy, disk))
}

/// Copies of event `id` the app received.
fn app_copies(app: &RecordingUpstream, id: &str) -> usize {
    app.requests()
        .iter()
        .filter(|r| r.header("x-hookwarden-event-id").as_deref() == Some(id))
        .count()
}

/// Delivers fresh events on a disk that was just filled, until the store refuses one.
/// Writes that still fit in pages the store already holds succeed (and are durable); the
/// first that needs a new page fails. Returns the acknowledged ids and the refused one.
async fn deliver_until_refused(
    addr: SocketAddr,
    prefix: &str,
) -> (Vec<String>, String, RawResponse) {
    let mut acked = Vec::new();
    for i in 0..500 {
        let id = format!("{prefix}-{i}");
        let answer = AjRequest::with_id(&id).send(addr).await;
        if answer.status != 200 {
            return (acked, id, answer);
        }
        acked.push(id);
    }
    panic!("500 events fit on a full disk: the disk never filled");
}

/// A full disk fails closed: the delivery the store cannot record gets 503
/// `store_unavailable` and never reaches the app, nor do the ones after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_disk_never_forwards_without_a_record() {
    let app = RecordingUpstream::start().await;
    let Some((proxy, disk)) = proxy_on_tmpfs(app.url(), 4 * 1024).await else {
        return;
    };
    assert_relayed_ok(&AjRequest::with_id("full-before").send(proxy.addr()).await);
    disk.fill();

    let (acked, refused, answer) = deliver_until_refused(proxy.addr(), "full").await;
    println!("{} events fit in the store's last page", acked.len());
    assert_refusal(&answer, 503, "store_unavailable");
    for i in 0..3 {
        let id = format!("full-after-{i}");
        assert_refusal(
            &AjRequest::with_id(&id).send(proxy.addr()).await,
            503,
            "store_unavailable",
        );
        assert_eq!(app_copies(&app, &id), 0, "{id} forwarded on a full disk");
    }
    assert_eq!(
        app_copies(&app, &refused),
        0,
        "{refused} was forwarded to the app, then refused because its record could not be \
         written: a forward without a durable record"
    );
}

/// While the store's disk is full, `/readyz` says not ready, steadily (a sweep that writes
/// nothing must not make it look healthy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_not_ready_while_the_store_disk_is_full() {
    let app = RecordingUpstream::start().await;
    let Some((proxy, disk)) = proxy_on_tmpfs(app.url(), 4 * 1024).await else {
        return;
    };
    disk.fill();
    let (_, _, answer) = deliver_until_refused(proxy.addr(), "ready-full").await;
    assert_refusal(&answer, 503, "store_unavailable");

    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(admin_get(proxy.admin_addr(), "/readyz").await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        answers.iter().all(|(status, _)| *status == 503),
        "/readyz over 4 s with the disk still full (sweeps every second): {answers:?}"
    );
}

/// Once the disk has room again, the proxy serves again by itself: `/readyz` turns 200
/// without traffic (a not-ready pod gets none) and the refused event is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_resumes_when_the_store_disk_frees() {
    let app = RecordingUpstream::start().await;
    let Some((proxy, disk)) = proxy_on_tmpfs(app.url(), 4 * 1024).await else {
        return;
    };
    disk.fill();
    let (acked, refused, answer) = deliver_until_refused(proxy.addr(), "resume").await;
    assert_refusal(&answer, 503, "store_unavailable");

    disk.drain();
    wait_readyz(proxy.admin_addr(), 200, Duration::from_secs(10)).await;
    let answer = deliver_until(proxy.addr(), &refused, 200, Duration::from_secs(10)).await;
    assert_eq!(
        answer.status,
        200,
        "{refused} after the disk freed up: {}",
        answer.summary()
    );
    // What was acknowledged before the disk filled is still known.
    for id in &acked {
        assert_duplicate(&AjRequest::with_id(id).send(proxy.addr()).await, id);
    }
}

/// The store's disk turns read-only mid-run (ext4 remounts itself read-only on an error;
/// here one is triggered on a loop device): the proxy fails closed and `/readyz` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_disk_turning_read_only_fails_closed() {
    let app = RecordingUpstream::start().await;
    if !is_root() {
        eprintln!("skipped: a loop-mounted ext4 for the store needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = Ext4::mount(&dir.path().join("store"), 16);
    let proxy = Bare::start(&ProxyConfig::aj(app.url()), dir.path()).await;
    wait_readyz(proxy.admin_addr(), 200, Duration::from_secs(10)).await;
    assert_relayed_ok(&AjRequest::with_id("ro-before").send(proxy.addr()).await);

    disk.fail_to_read_only();
    for i in 0..3 {
        let id = format!("ro-{i}");
        let answer = AjRequest::with_id(&id).send(proxy.addr()).await;
        assert_refusal(&answer, 503, "store_unavailable");
        assert_eq!(
            app_copies(&app, &id),
            0,
            "{id} was forwarded to the app although the store could not record it"
        );
    }
    let (status, body) = admin_get(proxy.admin_addr(), "/readyz").await;
    assert_eq!(status, 503, "/readyz on a read-only store: {body}");
}

/// A read-only store disk at start: deliveries get 503 `store_unavailable`, `/readyz`
/// says the store is not open; once the disk is writable the store opens and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_disk_fails_closed_until_writable() {
    let app = RecordingUpstream::start().await;
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs for the store needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("store"), 16 * 1024);
    disk.remount_read_only();
    let proxy = Bare::start(&ProxyConfig::aj(app.url()), dir.path()).await;

    let reason = wait_readyz(proxy.admin_addr(), 503, Duration::from_secs(10)).await;
    assert!(reason.contains("store"), "{reason}");
    let answer = AjRequest::with_id("disk-ro").send(proxy.addr()).await;
    assert_refusal(&answer, 503, "store_unavailable");
    assert_eq!(app.count(), 0);

    disk.remount_writable();
    wait_readyz(proxy.admin_addr(), 200, Duration::from_secs(10)).await;
    assert_relayed_ok(&AjRequest::with_id("disk-ro").send(proxy.addr()).await);
    assert_eq!(app.count(), 1);
}

// ---- Clock: the window's edges, through the public API with the time passed in ----

const TS: &str = "2024-01-15T10:30:00Z";
const SIGNED_AT: OffsetDateTime = datetime!(2024-01-15 10:30:00 UTC);
const BODY: &[u8] = br#"{"event":"status_change","id":"clock-1"}"#;

fn aj_at(now: OffsetDateTime, window: Window) -> Result<(), VerifyError> {
    let mut headers = http::HeaderMap::new();
    let signature = format!(
        "sha256={}",
        hex::encode(aj::sign(SECRET.as_bytes(), TS, BODY))
    );
    headers.insert(aj::SIGNATURE, signature.parse().unwrap());
    headers.insert(aj::TIMESTAMP, TS.parse().unwrap());
    headers.insert(aj::EVENT, "status_change".parse().unwrap());
    let secrets = [Secret::new(SECRET.as_bytes().to_vec(), "test").unwrap()];
    aj::verify(&headers, BODY, &secrets, window, now).map(drop)
}

/// The edges around `SIGNED_AT` for a window of `past` and `future`: at each edge, a
/// nanosecond inside, and a nanosecond and a second outside, both directions.
fn edges(past: i64, future: i64) -> Vec<(String, OffsetDateTime, Result<(), VerifyError>)> {
    use time::Duration as D;
    let old = Err(VerifyError::TimestampTooOld);
    let ahead = Err(VerifyError::TimestampInFuture);
    let at = |d: D| SIGNED_AT + d;
    vec![
        ("same instant".into(), at(D::ZERO), Ok(())),
        ("age at the edge".into(), at(D::seconds(past)), Ok(())),
        (
            "age 1 ns inside".into(),
            at(D::seconds(past) - D::nanoseconds(1)),
            Ok(()),
        ),
        (
            "age 1 ns outside".into(),
            at(D::seconds(past) + D::nanoseconds(1)),
            old,
        ),
        ("age 1 s outside".into(), at(D::seconds(past + 1)), old),
        ("lead at the edge".into(), at(-D::seconds(future)), Ok(())),
        (
            "lead 1 ns inside".into(),
            at(-D::seconds(future) + D::nanoseconds(1)),
            Ok(()),
        ),
        (
            "lead 1 ns outside".into(),
            at(-D::seconds(future) - D::nanoseconds(1)),
            ahead,
        ),
        (
            "lead 1 s outside".into(),
            at(-D::seconds(future + 1)),
            ahead,
        ),
    ]
}

#[test]
fn clock_window_edges_symmetric() {
    let window = Window::symmetric(Duration::from_secs(300));
    for (name, now, expected) in edges(300, 300) {
        assert_eq!(aj_at(now, window), expected, "{name} (now {now})");
        assert_eq!(
            window.check(SIGNED_AT, now),
            expected,
            "{name}: Window::check"
        );
    }
}

#[test]
fn clock_window_edges_asymmetric_route() {
    // A route that accepts 10 minutes of age but only 30 s of lead, run through the
    // route-level entry point the proxy calls.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:2\"\n\
         [upstream]\nurl = \"http://127.0.0.1:3\"\n[store]\npath = \"unused\"\n\
         [[routes]]\nname = \"aj\"\npath = \"/aj\"\nscheme = \"aj\"\ntolerance_seconds = 600\n\
         tolerance_future_seconds = 30\nsecrets = [{{ file = {:?} }}]\n",
        secret.to_string_lossy()
    );
    let config = Config::parse(&text, "clock.toml").expect("a valid config");
    let route = &config.routes[0];
    let mut headers = http::HeaderMap::new();
    let signature = format!(
        "sha256={}",
        hex::encode(aj::sign(SECRET.as_bytes(), TS, BODY))
    );
    headers.insert(aj::SIGNATURE, signature.parse().unwrap());
    headers.insert(aj::TIMESTAMP, TS.parse().unwrap());
    headers.insert(aj::EVENT, "status_change".parse().unwrap());
    for (name, now, expected) in edges(600, 30) {
        let verdict = scheme::verify(route, &headers, BODY, now).map(drop);
        assert_eq!(verdict, expected, "{name} (now {now})");
    }
}

#[test]
fn clock_window_edges_unix_seconds() {
    // Stripe signs whole Unix seconds: the same edges hold for a numeric timestamp.
    let ts = SIGNED_AT.unix_timestamp().to_string();
    let mut headers = http::HeaderMap::new();
    let value = stripe::sign(SECRET.as_bytes(), &ts, BODY);
    headers.insert(stripe::SIGNATURE, value.parse().unwrap());
    let secrets = [Secret::new(SECRET.as_bytes().to_vec(), "test").unwrap()];
    let window = Window::symmetric(Duration::from_secs(300));
    for (name, now, expected) in edges(300, 300) {
        let verdict = stripe::verify(&headers, BODY, &secrets, window, now).map(drop);
        assert_eq!(verdict, expected, "{name} (now {now})");
    }
}
