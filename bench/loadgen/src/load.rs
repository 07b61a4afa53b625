//! The load: keep-alive connections sending AJ deliveries, closed-loop (as fast as the
//! target answers) or open-loop at a fixed rate, with latencies recorded after a warm-up.
//!
//! At a fixed rate a request's latency counts from when it was due, not from when it was
//! sent, whenever the connection was still busy at that time: a slow answer then shows
//! in the requests queued behind it (no coordinated omission), as wrk2 does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::histogram::Histogram;
use crate::http::Conn;
use crate::sign::{body_prefix, Signer, EVENT};

/// tokio's timers fire on millisecond ticks.
const TIMER_GRAIN: Duration = Duration::from_millis(1);

/// What the deliveries are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every delivery a new event, correctly signed: expects 2xx from the app.
    Unique,
    /// Every delivery re-sends an event the app already accepted (re-signed with a fresh
    /// timestamp): expects 200 with `already_processed`.
    Duplicate,
    /// Unique events signed with the wrong secret: expects 401.
    Forged,
}

impl Kind {
    /// Parses `unique`, `duplicate` or `forged`.
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "unique" => Some(Kind::Unique),
            "duplicate" => Some(Kind::Duplicate),
            "forged" => Some(Kind::Forged),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Unique => "unique",
            Kind::Duplicate => "duplicate",
            Kind::Forged => "forged",
        }
    }
}

/// One load run's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to send.
    pub addr: SocketAddr,
    /// The request path.
    pub path: String,
    /// What to send.
    pub kind: Kind,
    /// About how large each body is.
    pub body_bytes: usize,
    /// Keep-alive connections.
    pub connections: usize,
    /// Unrecorded time first.
    pub warmup: Duration,
    /// Recorded time; zero means until `requests` are done.
    pub duration: Duration,
    /// Requests per second over all connections; none means as fast as answered.
    pub rate: Option<f64>,
    /// Stop after this many requests (warm-up included).
    pub requests: Option<u64>,
    /// The route's shared secret.
    pub secret: Vec<u8>,
    /// Makes ids unique across runs against one store.
    pub run_id: String,
    /// How many distinct events a duplicate run re-sends.
    pub dup_set: usize,
    /// Longest wait for one answer; a request past it counts as an I/O error and its
    /// connection is replaced.
    pub timeout: Duration,
    /// Print a line per interval (to stderr, `key=value`) with its rate and latencies.
    pub report_every: Option<Duration>,
}

#[derive(Default)]
struct Tally {
    histogram: Histogram,
    statuses: BTreeMap<u16, u64>,
    unexpected: u64,
    io_errors: u64,
    /// Answers over the whole run, warm-up included.
    answered: u64,
    /// Of those, the ones the app itself answered (2xx that are not duplicate answers).
    reached_app: u64,
}

struct Clock {
    start: Instant,
    measure_from: Instant,
    measure_until: Option<Instant>,
    stop: AtomicBool,
    sent: AtomicU64,
    limit: Option<u64>,
    interval: Option<Mutex<Histogram>>,
}

/// Runs the load; returns one line of `key=value` results.
pub async fn run(settings: Settings) -> String {
    let settings = Arc::new(settings);
    let prefix = body_prefix(settings.body_bytes);

    let primed = if settings.kind == Kind::Duplicate {
        prime(&settings, &prefix).await
    } else {
        0
    };

    let start = Instant::now();
    let measure_from = start + settings.warmup;
    let clock = Arc::new(Clock {
        start,
        measure_from,
        measure_until: (!settings.duration.is_zero()).then(|| measure_from + settings.duration),
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        limit: settings.requests,
        interval: settings
            .report_every
            .map(|_| Mutex::new(Histogram::default())),
    });
    let cpu_before = own_cpu_seconds();

    let reporter = settings
        .report_every
        .map(|every| tokio::spawn(report(clock.clone(), every)));
    let mut tasks = Vec::new();
    for c in 0..settings.connections {
        let (settings, clock, prefix) = (settings.clone(), clock.clone(), prefix.clone());
        tasks.push(tokio::spawn(connection(c, settings, clock, prefix)));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("connection task does not panic");
        total.histogram.merge(&tally.histogram);
        for (status, n) in tally.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.unexpected += tally.unexpected;
        total.io_errors += tally.io_errors;
        total.answered += tally.answered;
        total.reached_app += tally.reached_app;
    }
    clock.stop.store(true, Ordering::SeqCst);
    if let Some(reporter) = reporter {
        let _ = reporter.await;
    }
    let ended = Instant::now();
    let measured = match clock.measure_until {
        Some(until) => until.min(ended) - measure_from.min(ended),
        None => ended - measure_from.min(ended),
    };
    let seconds = measured.as_secs_f64().max(1e-9);
    let cpu = (own_cpu_seconds() - cpu_before) / (ended - start).as_secs_f64().max(1e-9);

    let h = &total.histogram;
    let ms = |ns: u64| ns as f64 / 1e6;
    let statuses: Vec<String> = total
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    format!(
        concat!(
            "kind={} body_bytes={} connections={} rate={:.0} seconds={:.3} requests={} ",
            "rps={:.1} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} ",
            "errors={} unexpected={} io_errors={} statuses={} primed={} answered_all={} ",
            "reached_app={} generator_cpu={:.2}"
        ),
        settings.kind.name(),
        settings.body_bytes,
        settings.connections,
        settings.rate.unwrap_or(0.0),
        seconds,
        h.len(),
        h.len() as f64 / seconds,
        ms(h.percentile(50.0)),
        ms(h.percentile(90.0)),
        ms(h.percentile(99.0)),
        ms(h.percentile(99.9)),
        ms(h.max()),
        total.unexpected + total.io_errors,
        total.unexpected,
        total.io_errors,
        if statuses.is_empty() {
            "-".to_string()
        } else {
            statuses.join(",")
        },
        primed,
        total.answered + primed,
        total.reached_app + primed,
        cpu,
    )
}

/// Sends each event of the duplicate set once, so the measured run re-sends only events
/// the app has already accepted. Returns how many the app accepted.
async fn prime(settings: &Arc<Settings>, prefix: &Arc<Vec<u8>>) -> u64 {
    let mut tasks = Vec::new();
    let lanes = settings.connections.min(settings.dup_set).max(1);
    for lane in 0..lanes {
        let (settings, prefix) = (settings.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut signer = Signer::new(&settings.secret, prefix);
            let mut conn = None;
            let mut accepted = 0;
            let mut head = Vec::new();
            for k in (lane..settings.dup_set).step_by(lanes) {
                let suffix = format!("{}-dup-{k}\"}}", settings.run_id);
                let exchanged =
                    exchange(&settings, &mut conn, &mut signer, &suffix, &mut head, b"");
                match tokio::time::timeout(settings.timeout, exchanged).await {
                    Ok(Ok(r)) => accepted += u64::from((200..300).contains(&r.status)),
                    _ => conn = None,
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap_or(0);
    }
    accepted
}

async fn exchange(
    settings: &Settings,
    conn: &mut Option<Conn>,
    signer: &mut Signer,
    suffix: &str,
    head: &mut Vec<u8>,
    needle: &[u8],
) -> std::io::Result<crate::http::Response> {
    if conn.is_none() {
        *conn = Some(Conn::open(settings.addr).await?);
    }
    let c = conn.as_mut().expect("just opened");
    let prefix = signer.prefix().clone();
    let (timestamp, digest) = signer.sign(suffix.as_bytes());
    head.clear();
    let length = prefix.len() + suffix.len();
    use std::io::Write;
    write!(
        head,
        concat!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
            "X-AJ-Event: {}\r\nX-AJ-Timestamp: {}\r\nX-AJ-Signature: sha256={}\r\n",
            "Content-Length: {}\r\n\r\n"
        ),
        settings.path, settings.addr, EVENT, timestamp, digest, length
    )
    .expect("writing to a Vec cannot fail");
    let sent = if length + head.len() <= 32 * 1024 {
        head.extend_from_slice(&prefix);
        head.extend_from_slice(suffix.as_bytes());
        c.send(&[head]).await
    } else {
        c.send(&[head, &prefix, suffix.as_bytes()]).await
    };
    let result = match sent {
        Ok(()) => c.receive(needle).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(r) if !r.close => {}
        _ => *conn = None,
    }
    result
}

async fn connection(
    c: usize,
    settings: Arc<Settings>,
    clock: Arc<Clock>,
    prefix: Arc<Vec<u8>>,
) -> Tally {
    let mut tally = Tally::default();
    let secret = match settings.kind {
        Kind::Forged => {
            let mut wrong = settings.secret.clone();
            wrong.extend_from_slice(b"-forged");
            wrong
        }
        _ => settings.secret.clone(),
    };
    let mut signer = Signer::new(&secret, prefix);
    let needle: &[u8] = match settings.kind {
        Kind::Duplicate => b"already_processed",
        _ => b"",
    };
    let gap = settings
        .rate
        .map(|rate| Duration::from_secs_f64(settings.connections as f64 / rate));
    let mut due = clock.start
        + gap.map_or(Duration::ZERO, |g| {
            g.mul_f64(c as f64 / settings.connections as f64)
        });
    let mut conn: Option<Conn> = None;
    let mut head = Vec::with_capacity(64 * 1024);
    let mut seq: u64 = 0;

    loop {
        if clock.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if clock.measure_until.is_some_and(|until| now >= until) {
            clock.stop.store(true, Ordering::Relaxed);
            break;
        }
        if let Some(limit) = clock.limit {
            if clock.sent.fetch_add(1, Ordering::Relaxed) >= limit {
                break;
            }
        }

        // When this request counts from: its due time if we are late for it.
        let began = match gap {
            Some(gap) => {
                let this = due;
                due += gap;
                if this > now + TIMER_GRAIN {
                    tokio::time::sleep_until(this).await;
                    Instant::now()
                } else if this > now {
                    // Closer than the timer can sleep: send a little early rather than
                    // late, which would cap each connection at one request per tick.
                    now
                } else {
                    this
                }
            }
            None => now,
        };

        let suffix = match settings.kind {
            Kind::Duplicate => {
                let k =
                    (c as u64 + seq * settings.connections as u64) % settings.dup_set.max(1) as u64;
                format!("{}-dup-{k}\"}}", settings.run_id)
            }
            _ => format!("{}-{c}-{seq}\"}}", settings.run_id),
        };
        seq += 1;

        let exchanged = exchange(
            &settings,
            &mut conn,
            &mut signer,
            &suffix,
            &mut head,
            needle,
        );
        let result = match tokio::time::timeout(settings.timeout, exchanged).await {
            Ok(result) => result,
            Err(_) => {
                conn = None;
                Err(std::io::ErrorKind::TimedOut.into())
            }
        };
        let done = Instant::now();
        // A request counts when its answer came inside the window, with its latency from
        // when it was due: at a fixed rate, an overloaded target shows as the backlog
        // its answers carry.
        let counted =
            done >= clock.measure_from && clock.measure_until.is_none_or(|until| done <= until);
        match result {
            Ok(response) => {
                tally.answered += 1;
                let is_2xx = (200..300).contains(&response.status);
                tally.reached_app += u64::from(is_2xx && !response.found);
                if counted {
                    let ns = (done - began).as_nanos() as u64;
                    tally.histogram.record(ns);
                    if let Some(interval) = &clock.interval {
                        interval.lock().expect("not poisoned").record(ns);
                    }
                    *tally.statuses.entry(response.status).or_default() += 1;
                    let expected = match settings.kind {
                        Kind::Unique => (200..300).contains(&response.status),
                        Kind::Duplicate => response.status == 200 && response.found,
                        Kind::Forged => response.status == 401,
                    };
                    tally.unexpected += u64::from(!expected);
                }
            }
            Err(_) => {
                // A failure counts whenever it ends after the warm-up, even past the
                // window: a hung request would otherwise vanish from the results.
                if done >= clock.measure_from {
                    tally.io_errors += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    tally
}

async fn report(clock: Arc<Clock>, every: Duration) {
    let mut next = clock.measure_from + every;
    loop {
        tokio::time::sleep_until(next).await;
        let mut h = clock
            .interval
            .as_ref()
            .expect("set with report_every")
            .lock()
            .expect("not poisoned");
        let t = (next - clock.measure_from).as_secs_f64();
        eprintln!(
            "t={t:.1} rps={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
            h.len() as f64 / every.as_secs_f64(),
            h.percentile(50.0) as f64 / 1e6,
            h.percentile(99.0) as f64 / 1e6,
            h.max() as f64 / 1e6,
        );
        h.clear();
        drop(h);
        if clock.stop.load(Ordering::Relaxed) {
            break;
        }
        next += every;
    }
}

/// This process's user plus system CPU time, in seconds (Linux `/proc/self/stat`).
fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}
