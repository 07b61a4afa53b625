//! Every sender on one proxy: each scheme's route verifies and de-duplicates on its own,
//! a shadow-mode route forwards what it would refuse, an allowlist refuses other event
//! types, and during rotation the key that verified reaches the app.
//!
//! Requests are signed by `hookwarden sign` (its signatures are checked against published
//! vectors in the unit tests, and the public cases sign independently).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::proxy::{free_port, quote, run_cli};
use support::spawned::{wait_for_status, Spawned};
use support::{assert_duplicate, assert_refusal, exchange, RawResponse, RecordingUpstream};

const RAW_SECRET: &str = "schemes-test-secret-0123456789abcdef0123";
/// A Standard Webhooks key: `whsec_` and 32 bytes in base64.
const WHSEC: &str = "whsec_c2NoZW1lcy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVm";
const OLD_SECRET: &str = "schemes-old-secret-0123456789abcdef01234";

struct Scene {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    listen: SocketAddr,
    proxy: Spawned,
}

fn write_secret(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    quote(&path.to_string_lossy())
}

/// One proxy with a route per scheme, plus shadow, allowlist and rotation routes.
async fn scene(upstream: &RecordingUpstream) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let raw = write_secret(dir.path(), "raw", RAW_SECRET);
    let whsec = write_secret(dir.path(), "whsec", WHSEC);
    let old = write_secret(dir.path(), "old", OLD_SECRET);
    let (listen, admin) = (free_port(), free_port());
    let listen = SocketAddr::from(([127, 0, 0, 1], listen));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin));

    let mut text = format!(
        "[server]\nlisten = {}\nadmin_listen = {}\n\n[upstream]\nurl = {}\n\n\
         [store]\npath = {}\n",
        quote(&listen.to_string()),
        quote(&admin.to_string()),
        quote(&upstream.url()),
        quote(&dir.path().join("store").to_string_lossy()),
    );
    let route = |name: &str, scheme: &str, secrets: &str, extra: &str| {
        format!(
            "\n[[routes]]\nname = \"{name}\"\npath = \"/hooks/{name}\"\nscheme = \"{scheme}\"\n\
             secrets = [{secrets}]\n{extra}"
        )
    };
    let file = |q: &str| format!("{{ file = {q} }}");
    for (name, scheme) in [
        ("aj", "aj"),
        ("stripe", "stripe"),
        ("github", "github"),
        ("slack", "slack"),
        ("shopify", "shopify"),
    ] {
        text.push_str(&route(name, scheme, &file(&raw), ""));
    }
    text.push_str(&route("standard", "standard-webhooks", &file(&whsec), ""));
    let custom = "[routes.custom]\nsignature_header = \"X-Acme-Signature\"\n\
                  signature_prefix = \"sha512=\"\nencoding = \"base64\"\n\
                  signed_content = \"{timestamp}:{body}\"\ntimestamp_header = \"X-Acme-Time\"\n\
                  timestamp_format = \"unix_ms\"\nid_sources = [\"header:X-Acme-Delivery\"]\n\
                  algorithm = \"sha512\"\n";
    text.push_str(&route("acme", "custom", &file(&raw), custom));
    text.push_str(&route("shadow", "aj", &file(&raw), "enforce = false\n"));
    text.push_str(&route(
        "allow",
        "aj",
        &file(&raw),
        "events = [\"status_change\"]\n",
    ));
    let rotation = format!("{{ file = {raw}, id = \"new\" }}, {{ file = {old}, id = \"old\" }}");
    text.push_str(&route("rotating", "aj", &rotation, ""));

    let config = dir.path().join("hookwarden.toml");
    let proxy = Spawned::start(dir.path(), "proxy", &text, &[]);
    std::fs::write(&config, &text).unwrap();
    wait_for_status(admin, "/readyz", 200, Duration::from_secs(20)).await;
    Scene {
        dir,
        config,
        listen,
        proxy,
    }
}

impl Scene {
    /// Signs `body` for `route` with `hookwarden sign` plus `extra` arguments.
    async fn sign(&self, route: &str, body: &str, extra: &[&str]) -> Vec<(String, String)> {
        let body_file = self.dir.path().join(format!("body-{}", free_port()));
        std::fs::write(&body_file, body).unwrap();
        let config = self.config.to_string_lossy().to_string();
        let body_path = body_file.to_string_lossy().to_string();
        let mut args = vec![
            "sign", "--config", &config, "--route", route, "--body", &body_path,
        ];
        args.extend_from_slice(extra);
        let out = run_cli(&args, &[], self.dir.path()).await;
        assert_eq!(out.code, Some(0), "sign failed: {}", out.combined());
        out.stdout
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    async fn post(&self, route: &str, headers: &[(String, String)], body: &str) -> RawResponse {
        let mut raw =
            format!("POST /hooks/{route} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        exchange(self.listen, raw.as_bytes()).await
    }
}

/// Each scheme's delivery: route, body, extra `sign` arguments, expected event id.
fn deliveries() -> Vec<(&'static str, String, Vec<&'static str>, &'static str)> {
    vec![
        (
            "aj",
            r#"{"event":"status_change","id":"same-id"}"#.into(),
            vec![],
            "same-id",
        ),
        (
            "stripe",
            r#"{"id":"same-id","type":"checkout.session.completed"}"#.into(),
            vec![],
            "same-id",
        ),
        (
            "github",
            r#"{"action":"opened"}"#.into(),
            vec!["--event", "issues", "--id", "same-id"],
            "same-id",
        ),
        (
            "slack",
            r#"{"type":"event_callback","event_id":"same-id"}"#.into(),
            vec![],
            "same-id",
        ),
        (
            "shopify",
            r#"{"id":1}"#.into(),
            vec!["--event", "orders/create", "--id", "same-id"],
            "same-id",
        ),
        (
            "standard",
            r#"{"type":"contact.created"}"#.into(),
            vec!["--id", "same-id"],
            "same-id",
        ),
        (
            "acme",
            r#"{"anything":true}"#.into(),
            vec!["--id", "same-id"],
            "same-id",
        ),
    ]
}

#[tokio::test]
async fn every_scheme_verifies_and_deduplicates_on_its_own_route() {
    Box::pin(every_scheme()).await;
}

async fn every_scheme() {
    let upstream = RecordingUpstream::start().await;
    let scene = scene(&upstream).await;

    // The same event id on every route: each route is its own namespace.
    for (n, (route, body, extra, id)) in deliveries().into_iter().enumerate() {
        let headers = scene.sign(route, &body, &extra).await;
        let answer = scene.post(route, &headers, &body).await;
        assert_eq!(
            answer.status,
            200,
            "{route}: {}\n{}",
            answer.summary(),
            scene.proxy.log()
        );
        let seen = upstream.wait_for(n + 1, Duration::from_secs(5)).await;
        let got = &seen[n];
        assert_eq!(got.body, body.as_bytes(), "{route}: body changed");
        assert_eq!(got.header("x-hookwarden-route").as_deref(), Some(route));
        assert_eq!(got.header("x-hookwarden-verified").as_deref(), Some("true"));
        assert_eq!(
            got.header("x-hookwarden-event-id").as_deref(),
            Some(id),
            "{route}"
        );

        // A fresh signature over the same event: a duplicate, not forwarded.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let again = scene.sign(route, &body, &extra).await;
        assert_duplicate(&scene.post(route, &again, &body).await, id);

        // Tampered after signing: refused.
        let tampered = body.replacen('{', "{ ", 1);
        assert_refusal(
            &scene.post(route, &headers, &tampered).await,
            401,
            "invalid_signature",
        );
        assert_eq!(
            upstream.count(),
            n + 1,
            "{route}: a refusal reached the app"
        );
    }
}

#[tokio::test]
async fn shadow_mode_forwards_what_it_would_refuse_and_says_why() {
    let upstream = RecordingUpstream::start().await;
    let scene = scene(&upstream).await;
    let body = r#"{"event":"status_change","id":"shadow-1"}"#;
    let mut headers = scene.sign("shadow", body, &[]).await;
    for (name, value) in headers.iter_mut() {
        if name == "X-AJ-Signature" {
            *value = format!("sha256={}", "00".repeat(32));
        }
    }
    headers.push(("X-Hookwarden-Verified".into(), "true".into()));

    let answer = scene.post("shadow", &headers, body).await;
    assert_eq!(answer.status, 200, "{}", answer.summary());
    let got = upstream.single();
    assert_eq!(got.header_values("x-hookwarden-verified"), ["false"]);
    assert_eq!(
        got.header("x-hookwarden-reason").as_deref(),
        Some("invalid_signature")
    );
    assert_eq!(got.header("x-hookwarden-event-id"), None);

    // A genuine delivery, then its repeat: forwarded as verified, and marked a duplicate.
    let genuine = r#"{"event":"status_change","id":"shadow-2"}"#;
    for n in 0..2 {
        let headers = scene.sign("shadow", genuine, &[]).await;
        assert_eq!(scene.post("shadow", &headers, genuine).await.status, 200);
        let got = &upstream.wait_for(n + 2, Duration::from_secs(5)).await[n + 1];
        assert_eq!(got.header("x-hookwarden-verified").as_deref(), Some("true"));
        let duplicate = got.header("x-hookwarden-duplicate");
        assert_eq!(
            duplicate.as_deref(),
            (n == 1).then_some("true"),
            "delivery {n}"
        );
    }
}

#[tokio::test]
async fn an_allowlist_refuses_other_event_types() {
    let upstream = RecordingUpstream::start().await;
    let scene = scene(&upstream).await;
    let other = r#"{"event":"capacity_alert","id":"allow-1"}"#;
    let headers = scene.sign("allow", other, &[]).await;
    assert_refusal(
        &scene.post("allow", &headers, other).await,
        422,
        "event_not_allowed",
    );
    assert_eq!(upstream.count(), 0);

    let listed = r#"{"event":"status_change","id":"allow-2"}"#;
    let headers = scene.sign("allow", listed, &[]).await;
    assert_eq!(scene.post("allow", &headers, listed).await.status, 200);
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn during_rotation_either_key_verifies_and_the_app_learns_which() {
    let upstream = RecordingUpstream::start().await;
    let scene = scene(&upstream).await;
    for (n, key) in ["new", "old"].into_iter().enumerate() {
        let body = format!(r#"{{"event":"status_change","id":"rotate-{key}"}}"#);
        let headers = scene.sign("rotating", &body, &["--key", key]).await;
        assert_eq!(scene.post("rotating", &headers, &body).await.status, 200);
        let seen = upstream.wait_for(n + 1, Duration::from_secs(5)).await;
        assert_eq!(seen[n].header("x-hookwarden-key").as_deref(), Some(key));
    }
}
