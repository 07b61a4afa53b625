//! The `sign` and `check` commands of the real binary: the scheme document's test vector,
//! sending a signed body through a running proxy, and config validation with its exit
//! codes, messages and the promise never to print a secret.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::aj::{signature_value, OTHER_SECRET};
use support::proxy::{free_port, run_cli, CliOutput};
use support::{assert_relayed_ok, Proxy, ProxyConfig, RecordingUpstream, Route, SECRET};
use tempfile::TempDir;

/// The test vector of /work/shared/docs/aj-scheme.md.
const DOC_SECRET: &str = "test-secret-0123456789abcdef0123456789";
const DOC_TIMESTAMP: &str = "2024-01-15T10:30:00Z";
const DOC_BODY: &str = concat!(
    r#"{"event":"status_change","from":"operational","to":"degraded","#,
    r#""changed_at":"2024-01-15T10:30:00Z","reason":"High latency detected"}"#
);
const DOC_SIGNATURE: &str =
    "sha256=4b8875aa30d2578476badcb05290f0148a0cf8d8bd2b52fc3cede8eabd8f77e1";

/// Exit code for an invalid config (sysexits EX_CONFIG).
const EX_CONFIG: i32 = 78;

/// Writes `config` into a new temp folder; the folder lives as long as the returned value.
fn write_config(config: &ProxyConfig) -> (TempDir, support::proxy::WrittenConfig) {
    let dir = tempfile::tempdir().expect("temp folder");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let written = config.write(dir.path(), listen);
    (dir, written)
}

async fn check(dir: &Path, config: &support::proxy::WrittenConfig) -> CliOutput {
    let path = config.path.to_string_lossy().into_owned();
    run_cli(&["check", "--config", &path], &config.envs, dir).await
}

/// Parses `Name: value` lines into a map; panics on any other line.
fn header_lines(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a header line: {line:?}"));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn assert_no_secret(output: &CliOutput, secret: &str) {
    assert!(
        !output.combined().contains(secret),
        "the secret appears in the output:\n{}",
        output.combined()
    );
}

#[test]
fn the_test_signer_matches_the_doc_vector() {
    // Guards the suite itself: every signed request relies on this helper.
    assert_eq!(
        signature_value(DOC_SECRET.as_bytes(), DOC_TIMESTAMP, DOC_BODY.as_bytes()),
        DOC_SIGNATURE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_prints_the_doc_test_vector() {
    let config = ProxyConfig::new("http://127.0.0.1:9")
        .route(Route::new("aj", "/webhooks/aj").secret_file(DOC_SECRET));
    let (dir, written) = write_config(&config);
    let body = dir.path().join("body.json");
    std::fs::write(&body, DOC_BODY).unwrap();

    let output = run_cli(
        &[
            "sign",
            "--config",
            &written.path.to_string_lossy(),
            "--route",
            "aj",
            "--body",
            &body.to_string_lossy(),
            "--timestamp",
            DOC_TIMESTAMP,
        ],
        &[],
        dir.path(),
    )
    .await;

    assert_eq!(output.code, Some(0), "{}", output.combined());
    let expected: BTreeMap<String, String> = [
        ("Content-Type", "application/json"),
        ("X-AJ-Event", "status_change"),
        ("X-AJ-Signature", DOC_SIGNATURE),
        ("X-AJ-Timestamp", DOC_TIMESTAMP),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(header_lines(&output.stdout), expected);
    assert_no_secret(&output, DOC_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_with_env_secret_id_event_and_default_timestamp() {
    let config = ProxyConfig::new("http://127.0.0.1:9")
        .route(Route::new("bus", "/webhooks/bus").secret_env("HW_E2E_SIGN_SECRET", SECRET));
    let (dir, written) = write_config(&config);
    let body = dir.path().join("body.json");
    std::fs::write(&body, b"{\"level\":\"warning\"}\n").unwrap();

    let output = run_cli(
        &[
            "sign",
            "--config",
            &written.path.to_string_lossy(),
            "--route",
            "bus",
            "--body",
            &body.to_string_lossy(),
            "--event",
            "capacity_alert",
            "--id",
            "dlv-cli-1",
        ],
        &written.envs,
        dir.path(),
    )
    .await;

    assert_eq!(output.code, Some(0), "{}", output.combined());
    let lines = header_lines(&output.stdout);
    let timestamp = lines
        .get("X-AJ-Timestamp")
        .expect("an X-AJ-Timestamp line")
        .clone();
    let parsed =
        time::OffsetDateTime::parse(&timestamp, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("default timestamp {timestamp:?} is not RFC 3339: {e}"));
    let age = (time::OffsetDateTime::now_utc() - parsed).whole_seconds();
    assert!(
        (0..=60).contains(&age),
        "default timestamp {timestamp} is {age} s from now"
    );
    assert!(
        timestamp.len() == 20 && timestamp.ends_with('Z'),
        "default timestamp must be whole seconds with Z: {timestamp}"
    );

    let expected: BTreeMap<String, String> = [
        ("Content-Type", "application/json".to_owned()),
        ("X-AJ-Event", "capacity_alert".to_owned()),
        ("X-AJ-Id", "dlv-cli-1".to_owned()),
        (
            "X-AJ-Signature",
            signature_value(SECRET.as_bytes(), &timestamp, b"{\"level\":\"warning\"}\n"),
        ),
        ("X-AJ-Timestamp", timestamp.clone()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    assert_eq!(lines, expected);
    assert_no_secret(&output, SECRET);
}

fn sign_send_args(config: &Path, body: &Path, url: &str) -> Vec<String> {
    let args = [
        "sign", "--config", "", "--route", "aj", "--body", "", "--send", url,
    ];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args[2] = config.to_string_lossy().into_owned();
    args[6] = body.to_string_lossy().into_owned();
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_send_delivers_through_the_proxy() {
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url())).await;
    let body_text = r#"{"event":"incident_created","id":"evt-cli-send","title":"x"}"#;
    let body = proxy.dir().join("send-body.json");
    std::fs::write(&body, body_text).unwrap();
    let url = format!("http://{}/webhooks/aj", proxy.addr());
    let args = sign_send_args(proxy.config_path(), &body, &url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let first = run_cli(&args, &[], proxy.dir()).await;
    assert_eq!(first.code, Some(0), "{}", first.combined());
    let lines: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(
        lines,
        vec!["HTTP 200", r#"{"ok":true}"#],
        "{}",
        first.combined()
    );
    let seen = upstream.single();
    assert_eq!(seen.body, body_text.as_bytes());
    assert_eq!(
        seen.header("x-hookwarden-event").as_deref(),
        Some("incident_created")
    );

    // Sent again: the proxy recognises the event.
    let second = run_cli(&args, &[], proxy.dir()).await;
    assert_eq!(second.code, Some(0), "{}", second.combined());
    let mut lines = second.stdout.lines();
    assert_eq!(lines.next(), Some("HTTP 200"));
    let answer: serde_json::Value =
        serde_json::from_str(lines.next().unwrap_or_default()).expect("a JSON answer line");
    assert_eq!(
        answer,
        serde_json::json!({"ok": true, "already_processed": true, "event_id": "evt-cli-send"})
    );
    assert_eq!(upstream.count(), 1);
    assert_no_secret(&first, SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_send_to_nobody_exits_1() {
    let config = ProxyConfig::aj("http://127.0.0.1:9");
    let (dir, written) = write_config(&config);
    let body = dir.path().join("body.json");
    std::fs::write(&body, r#"{"event":"status_change"}"#).unwrap();
    let url = format!("http://127.0.0.1:{}/webhooks/aj", free_port());
    let args = sign_send_args(&written.path, &body, &url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let output = run_cli(&args, &[], dir.path()).await;
    assert_eq!(output.code, Some(1), "{}", output.combined());
    // One plain reason, not pingora's chain of contexts.
    assert_eq!(
        output.stderr.trim(),
        format!("hookwarden: cannot send to {url}: Connection refused (os error 111)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_accepts_a_good_config() {
    let config = ProxyConfig::new("http://127.0.0.1:3000")
        .route(Route::aj())
        .route(Route::new("env", "/webhooks/env").secret_env("HW_E2E_GOOD_SECRET", OTHER_SECRET))
        .server_line("body_timeout_seconds = 5")
        .store_line("lease_seconds = 60");
    let (dir, written) = write_config(&config);

    let output = check(dir.path(), &written).await;

    assert_eq!(output.code, Some(0), "{}", output.combined());
    assert_no_secret(&output, SECRET);
    assert_no_secret(&output, OTHER_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_short_secret() {
    let short = "only-20-bytes-secret";
    let config = ProxyConfig::new("http://127.0.0.1:3000")
        .route(Route::new("shorty", "/webhooks/aj").secret_file(short));
    let (dir, written) = write_config(&config);

    let output = check(dir.path(), &written).await;

    assert_eq!(output.code, Some(EX_CONFIG), "{}", output.combined());
    let text = output.combined();
    assert!(
        text.contains("shorty"),
        "the message must name the route:\n{text}"
    );
    assert!(
        text.contains("32"),
        "the message must state the minimum:\n{text}"
    );
    assert_no_secret(&output, short);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_missing_env_var() {
    let config = ProxyConfig::new("http://127.0.0.1:3000")
        .route(Route::aj())
        .route(Route::new("env", "/webhooks/env").secret_env("HW_E2E_UNSET_VAR", SECRET));
    let (dir, mut written) = write_config(&config);
    // The variable is named in the config but not given to the process.
    written.envs.clear();

    let output = check(dir.path(), &written).await;

    assert_eq!(output.code, Some(EX_CONFIG), "{}", output.combined());
    assert!(
        output.combined().contains("HW_E2E_UNSET_VAR"),
        "{}",
        output.combined()
    );
    assert_no_secret(&output, SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_an_unknown_key() {
    let config = ProxyConfig::aj("http://127.0.0.1:3000").upstream_line("retries = 3");
    let (dir, written) = write_config(&config);

    let output = check(dir.path(), &written).await;

    assert_eq!(output.code, Some(EX_CONFIG), "{}", output.combined());
    assert!(
        output.combined().contains("retries"),
        "{}",
        output.combined()
    );
    assert_no_secret(&output, SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_wants_retention_of_twice_the_tolerance() {
    let route = Route::aj().tolerance_seconds(300);
    let short = ProxyConfig::new("http://127.0.0.1:3000")
        .route(route.clone())
        .retention_seconds(599);
    let (dir, written) = write_config(&short);
    let output = check(dir.path(), &written).await;
    assert_eq!(output.code, Some(EX_CONFIG), "{}", output.combined());
    assert!(
        output.combined().contains("retention"),
        "{}",
        output.combined()
    );
    assert_no_secret(&output, SECRET);

    let exact = ProxyConfig::new("http://127.0.0.1:3000")
        .route(route)
        .retention_seconds(600);
    let (dir, written) = write_config(&exact);
    let output = check(dir.path(), &written).await;
    assert_eq!(
        output.code,
        Some(0),
        "retention 600 = 2 x 300 s: {}",
        output.combined()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_every_problem_at_once() {
    let short = "tiny-secret-value";
    let config = ProxyConfig::new("http://127.0.0.1:3000")
        .route(Route::new("first", "/webhooks/first").secret_file(short))
        .route(Route::new("second", "/webhooks/second").secret_env("HW_E2E_ALSO_UNSET", SECRET))
        .retention_seconds(10);
    let (dir, mut written) = write_config(&config);
    written.envs.clear();

    let output = check(dir.path(), &written).await;

    assert_eq!(output.code, Some(EX_CONFIG), "{}", output.combined());
    let text = output.combined();
    for needle in ["first", "HW_E2E_ALSO_UNSET", "retention"] {
        assert!(text.contains(needle), "{needle:?} is not reported:\n{text}");
    }
    assert_no_secret(&output, short);
}

/// The shared config fixtures use `$ROOT` for the crate root; the binary does not expand
/// it, so each is copied with the placeholder filled in.
fn fixture_copies(kind: &str, into: &Path) -> Vec<(PathBuf, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = Path::new(root).join("tests/fixtures/config").join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("$ROOT", root);
            let copy = into.join(path.file_name().unwrap());
            std::fs::write(&copy, &text).unwrap();
            (copy, text)
        })
        .collect()
}

const FIXTURE_SECRET: &str = "fixture-secret-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_accepts_every_valid_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for (path, _) in fixture_copies("valid", dir.path()) {
        let output = run_cli(
            &["check", "--config", &path.to_string_lossy()],
            &[],
            dir.path(),
        )
        .await;
        assert_eq!(
            output.code,
            Some(0),
            "{}: {}",
            path.display(),
            output.combined()
        );
        assert_no_secret(&output, FIXTURE_SECRET);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_every_invalid_fixture_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in fixture_copies("invalid", dir.path()) {
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .unwrap_or_else(|| panic!("{} lacks a '# error: ' first line", path.display()))
            .to_owned();
        let output = run_cli(
            &["check", "--config", &path.to_string_lossy()],
            &[],
            dir.path(),
        )
        .await;
        assert_eq!(
            output.code,
            Some(EX_CONFIG),
            "{}: {}",
            path.display(),
            output.combined()
        );
        assert!(
            output.combined().contains(&expected),
            "{}: expected {expected:?} in:\n{}",
            path.display(),
            output.combined()
        );
        assert_no_secret(&output, FIXTURE_SECRET);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_config_runs_and_forwards() {
    // Guards the harness: the config it writes must be one the binary runs with.
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url())).await;
    let answer = support::AjRequest::with_id("evt-harness")
        .send(proxy.addr())
        .await;
    assert_relayed_ok(&answer);
}
