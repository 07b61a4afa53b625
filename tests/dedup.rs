//! De-duplication end to end: retries and replays of an event the app already accepted are
//! answered by the proxy without reaching the app; anything short of a 2xx from the app
//! leaves the event open for the next retry; and the record survives restarts and crashes.

mod support;

use std::time::Duration;

use support::aj::z_from_now;
use support::{
    assert_duplicate, assert_refusal, assert_relayed_ok, exchange, standard, AjRequest, Proxy,
    ProxyConfig, RecordingUpstream, Reply,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigned_retry_and_exact_replay_are_duplicates() {
    let (upstream, proxy) = standard().await;
    let first = AjRequest::with_id("evt-resign-1").timestamp(z_from_now(-2));
    assert_relayed_ok(&first.send(proxy.addr()).await);

    // The sender's retry: same body, signed again at a later second.
    let retry = AjRequest::with_id("evt-resign-1");
    assert_ne!(retry.signature(), first.signature());
    assert_duplicate(&retry.send(proxy.addr()).await, "evt-resign-1");

    // The very same bytes again.
    assert_duplicate(&exchange(proxy.addr(), &first.raw()).await, "evt-resign-1");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_replay_with_a_changed_header_id_is_a_duplicate() {
    let (upstream, proxy) = standard().await;
    // No id in the body, so X-AJ-Id names the event.
    let body = r#"{"event":"status_change","from":"operational","to":"degraded"}"#;
    let first = AjRequest::new(body).id("dlv-replay-a");
    assert_relayed_ok(&first.send(proxy.addr()).await);
    assert_eq!(
        upstream.single().header("x-hookwarden-event-id").as_deref(),
        Some("dlv-replay-a")
    );

    // Same timestamp, body and signature; only the unsigned X-AJ-Id differs.
    let replay = first
        .clone()
        .omit("X-AJ-Id")
        .header("X-AJ-Id", "dlv-replay-b");
    assert_eq!(replay.signature(), first.signature());
    // The answer names the event that was processed, i.e. the first delivery's id (the
    // contract leaves this open; naming the id the app saw is the useful choice).
    assert_duplicate(&replay.send(proxy.addr()).await, "dlv-replay-a");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_id_outranks_header_id() {
    let (upstream, proxy) = standard().await;
    let first = AjRequest::with_id("evt-body-wins")
        .id("dlv-1")
        .timestamp(z_from_now(-2));
    assert_relayed_ok(&first.send(proxy.addr()).await);

    // The retry carries another delivery id, but the body's id is the event's.
    let retry = AjRequest::with_id("evt-body-wins").id("dlv-2");
    assert_duplicate(&retry.send(proxy.addr()).await, "evt-body-wins");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_event_id_and_header_id_identify_retries() {
    let (upstream, proxy) = standard().await;
    let by_event_id = r#"{"event":"capacity_alert","event_id":"evt-field-1","level":"warning"}"#;
    let by_header = r#"{"event":"status_change","to":"operational"}"#;

    let first = AjRequest::new(by_event_id)
        .event("capacity_alert")
        .timestamp(z_from_now(-2));
    assert_relayed_ok(&first.send(proxy.addr()).await);
    let retry = AjRequest::new(by_event_id).event("capacity_alert");
    assert_duplicate(&retry.send(proxy.addr()).await, "evt-field-1");

    let first = AjRequest::new(by_header)
        .id("dlv-header-1")
        .timestamp(z_from_now(-2));
    assert_relayed_ok(&first.send(proxy.addr()).await);
    let retry = AjRequest::new(by_header).id("dlv-header-1");
    assert_duplicate(&retry.send(proxy.addr()).await, "dlv-header-1");

    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_reach_the_app_once() {
    let (upstream, proxy) = standard().await;
    // A slow app keeps the first copy in flight while the others arrive.
    upstream.set_default(Reply::ok().delayed(Duration::from_millis(500)));
    let bytes = AjRequest::with_id("evt-concurrent-1").raw();
    let addr = proxy.addr();

    let copies: Vec<_> = (0..10)
        .map(|_| {
            let bytes = bytes.clone();
            tokio::spawn(async move { exchange(addr, &bytes).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.expect("a copy's task"));
    }

    let relayed = answers
        .iter()
        .filter(|a| a.status == 200 && a.text() == r#"{"ok":true}"#);
    assert_eq!(relayed.count(), 1, "answers: {:?}", summaries(&answers));
    for answer in answers.iter().filter(|a| a.text() != r#"{"ok":true}"#) {
        match answer.status {
            200 => assert_duplicate(answer, "evt-concurrent-1"),
            503 => {
                assert_refusal(answer, 503, "in_flight");
                assert!(
                    answer.header("retry-after").is_some(),
                    "503 without Retry-After"
                );
            }
            _ => panic!("unexpected answer to a copy: {}", answer.summary()),
        }
    }
    // Stragglers would show up within the app's delay.
    let seen = upstream.wait_for(2, Duration::from_millis(700)).await;
    assert_eq!(seen.len(), 1, "copies forwarded: {}", seen.len());

    upstream.set_default(Reply::ok());
    assert_duplicate(&exchange(addr, &bytes).await, "evt-concurrent-1");
    assert_eq!(upstream.count(), 1);
}

fn summaries(answers: &[support::RawResponse]) -> Vec<String> {
    answers.iter().map(|a| a.summary()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_failure_is_relayed_and_the_retry_forwarded() {
    let (upstream, proxy) = standard().await;
    upstream.push(
        Reply::json(503, r#"{"error":"processing_failed"}"#).with_header("x-app-note", "busy"),
    );

    let first = AjRequest::with_id("evt-app-503").timestamp(z_from_now(-2));
    let answer = first.send(proxy.addr()).await;
    assert_eq!(
        (answer.status, answer.text()),
        (503, r#"{"error":"processing_failed"}"#.to_owned()),
        "the app's 503 must reach the sender unchanged"
    );
    assert_eq!(answer.header("x-app-note"), Some("busy"));

    let retry = AjRequest::with_id("evt-app-503");
    assert_relayed_ok(&retry.send(proxy.addr()).await);
    assert_eq!(upstream.count(), 2);

    // Now processed: the next copy stays at the proxy.
    assert_duplicate(&exchange(proxy.addr(), &first.raw()).await, "evt-app-503");
    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_client_error_does_not_mark_the_event_processed() {
    let (upstream, proxy) = standard().await;
    upstream.push(Reply::json(422, r#"{"error":"unprocessable"}"#));

    let answer = AjRequest::with_id("evt-app-422")
        .timestamp(z_from_now(-2))
        .send(proxy.addr())
        .await;
    assert_eq!(
        (answer.status, answer.text()),
        (422, r#"{"error":"unprocessable"}"#.to_owned())
    );

    assert_relayed_ok(&AjRequest::with_id("evt-app-422").send(proxy.addr()).await);
    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_down_then_back() {
    let (mut upstream, proxy) = standard().await;
    upstream.stop().await;

    let first = AjRequest::with_id("evt-app-down").timestamp(z_from_now(-2));
    assert_refusal(&first.send(proxy.addr()).await, 502, "upstream_unavailable");

    upstream.restart().await;
    assert_relayed_ok(&AjRequest::with_id("evt-app-down").send(proxy.addr()).await);
    let seen = upstream.single();
    assert_eq!(
        seen.header("x-hookwarden-event-id").as_deref(),
        Some("evt-app-down")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_timeout_then_retry() {
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start(ProxyConfig::aj(upstream.url()).upstream_timeout_seconds(1)).await;
    upstream.push(Reply::ok().delayed(Duration::from_secs(4)));

    let first = AjRequest::with_id("evt-app-slow").timestamp(z_from_now(-2));
    assert_refusal(&first.send(proxy.addr()).await, 504, "upstream_timeout");
    assert_eq!(
        upstream.count(),
        1,
        "the timed-out delivery did reach the app"
    );

    assert_relayed_ok(&AjRequest::with_id("evt-app-slow").send(proxy.addr()).await);
    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_event_survives_a_restart() {
    let (upstream, mut proxy) = standard().await;
    let first = AjRequest::with_id("evt-restart").timestamp(z_from_now(-2));
    assert_relayed_ok(&first.send(proxy.addr()).await);

    proxy.stop().await;
    proxy.start_again().await;

    assert_duplicate(
        &AjRequest::with_id("evt-restart").send(proxy.addr()).await,
        "evt-restart",
    );
    assert_duplicate(&exchange(proxy.addr(), &first.raw()).await, "evt-restart");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_event_survives_kill_9() {
    let (upstream, mut proxy) = standard().await;
    let first = AjRequest::with_id("evt-kill-9").timestamp(z_from_now(-2));
    assert_relayed_ok(&first.send(proxy.addr()).await);

    // No delay: with sync = "always" the record is on disk before the sender hears 200.
    proxy.kill9();
    proxy.start_again().await;

    assert_duplicate(
        &AjRequest::with_id("evt-kill-9").send(proxy.addr()).await,
        "evt-kill-9",
    );
    assert_eq!(upstream.count(), 1);
}

/// Many different deliveries at once with `sync = "always"` (the default): every one is
/// made durable and answered. sled's own `flush_async` hung here once dozens of callers
/// waited on its thread pool together; group commit on tokio's blocking pool does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_deliveries_are_all_made_durable_and_answered() {
    let (upstream, proxy) = standard().await;
    let addr = proxy.addr();
    let sends: Vec<_> = (0..64)
        .map(|n| {
            let request = AjRequest::with_id(&format!("durable-burst-{n}"));
            tokio::spawn(async move { request.send(addr).await })
        })
        .collect();
    let deadline = Duration::from_secs(20);
    for send in sends {
        let answer = tokio::time::timeout(deadline, send)
            .await
            .expect("answered")
            .unwrap();
        assert_relayed_ok(&answer);
    }
    assert_eq!(upstream.count(), 64);
}
