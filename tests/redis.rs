//! The shared Redis store: two hookwarden processes in front of one app agree on what
//! was delivered, a dead process's claim lapses, and a Redis outage fails closed (or
//! falls back to the local store when configured) and heals.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::proxy::{free_port, quote};
use support::redis::RedisServer;
use support::spawned::{admin_get, wait_for_status, Spawned};
use support::{assert_duplicate, assert_refusal, AjRequest, RecordingUpstream, Reply};

const SECRET: &str = "redis-test-secret-0123456789abcdef0123456";

/// One hookwarden process on the shared store.
struct Node {
    listen: SocketAddr,
    admin: SocketAddr,
    proxy: Spawned,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn node(dir: &Path, name: &str, upstream: &str, redis: &str, store_extra: &str) -> Node {
    let (listen, admin) = (local(free_port()), local(free_port()));
    let secret = dir.join(format!("{name}-secret"));
    std::fs::write(&secret, SECRET).unwrap();
    let config = format!(
        "[server]\nlisten = {}\nadmin_listen = {}\n\n[upstream]\nurl = {}\ntimeout_seconds = 2\n\n\
         [store]\nbackend = \"redis\"\nredis_url = {}\nredis_timeout_ms = 300\nlease_seconds = 4\n\
         {store_extra}\n\n[[routes]]\nname = \"aj\"\npath = \"/webhooks/aj\"\nscheme = \"aj\"\n\
         secrets = [{{ file = {} }}]\n",
        quote(&listen.to_string()),
        quote(&admin.to_string()),
        quote(upstream),
        quote(redis),
        quote(&secret.to_string_lossy()),
    );
    let proxy = Spawned::start(dir, name, &config, &[]);
    wait_for_status(admin, "/readyz", 200, Duration::from_secs(20)).await;
    Node {
        listen,
        admin,
        proxy,
    }
}

fn delivery(id: &str) -> AjRequest {
    AjRequest::with_id(id).secret(SECRET)
}

#[tokio::test]
async fn an_event_delivered_through_one_process_is_a_duplicate_at_the_other() {
    let redis = RedisServer::start();
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = node(dir.path(), "a", &upstream.url(), &redis.url(), "").await;
    let b = node(dir.path(), "b", &upstream.url(), &redis.url(), "").await;

    assert_eq!(delivery("redis-dup-1").send(a.listen).await.status, 200);
    // The sender's retry lands on the other replica: re-signed, and an exact replay.
    let retry = delivery("redis-dup-1").timestamp(support::aj::z_from_now(1));
    assert_duplicate(&retry.send(b.listen).await, "redis-dup-1");
    let exact = AjRequest::new(r#"{"event":"status_change","n":2}"#)
        .secret(SECRET)
        .id("redis-dup-2");
    assert_eq!(exact.send(b.listen).await.status, 200);
    let replay = exact.clone().id("something-else");
    assert_duplicate(&replay.send(a.listen).await, "redis-dup-2");
    assert_eq!(upstream.count(), 2, "{}\n{}", a.proxy.log(), b.proxy.log());
}

#[tokio::test]
async fn ten_concurrent_copies_across_two_processes_are_forwarded_once() {
    let redis = RedisServer::start();
    let upstream = RecordingUpstream::start().await;
    upstream.set_default(Reply::ok().delayed(Duration::from_millis(300)));
    let dir = tempfile::tempdir().unwrap();
    let a = node(dir.path(), "a", &upstream.url(), &redis.url(), "").await;
    let b = node(dir.path(), "b", &upstream.url(), &redis.url(), "").await;

    let copy = delivery("redis-concurrent-1");
    let sends: Vec<_> = (0..10)
        .map(|n| {
            let copy = copy.clone();
            let to = if n % 2 == 0 { a.listen } else { b.listen };
            tokio::spawn(async move { copy.send(to).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for send in sends {
        let answer = send.await.unwrap();
        let ok = answer.status == 200 || answer.json()["error"] == "in_flight";
        assert!(ok, "unexpected answer {}", answer.summary());
        statuses.push(answer.status);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upstream.count(), 1, "statuses {statuses:?}");
    assert!(statuses.contains(&200));
}

#[tokio::test]
async fn a_claim_held_by_a_killed_process_lapses_and_the_retry_goes_through() {
    let redis = RedisServer::start();
    let upstream = RecordingUpstream::start().await;
    // The first delivery hangs in the app long enough to kill its proxy meanwhile.
    upstream.push(Reply::ok().delayed(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let mut a = node(dir.path(), "a", &upstream.url(), &redis.url(), "").await;
    let b = node(dir.path(), "b", &upstream.url(), &redis.url(), "").await;

    let event = delivery("redis-lease-1");
    let to_a = a.listen;
    let doomed = tokio::spawn({
        let event = event.clone();
        async move { event.send(to_a).await }
    });
    upstream.wait_for(1, Duration::from_secs(5)).await;
    a.proxy.kill9();
    let claimed_at = Instant::now();
    assert!(doomed.await.is_err() || upstream.count() == 1);

    // While the dead process's lease (4 s) lives, the retry is told to come back later.
    let early = event.send(b.listen).await;
    assert_refusal(&early, 503, "in_flight");
    loop {
        let answer = event.send(b.listen).await;
        if answer.status == 200 {
            break;
        }
        assert_refusal(&answer, 503, "in_flight");
        assert!(
            claimed_at.elapsed() < Duration::from_secs(10),
            "{}",
            b.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        claimed_at.elapsed() >= Duration::from_secs(3),
        "the lease lapsed too early"
    );
    assert_eq!(upstream.count(), 2);
}

#[tokio::test]
async fn a_redis_outage_fails_closed_and_heals() {
    let mut redis = RedisServer::start();
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = node(dir.path(), "a", &upstream.url(), &redis.url(), "").await;

    redis.stop();
    let refused = delivery("redis-down-1").send(a.listen).await;
    assert_refusal(&refused, 503, "store_unavailable");
    let reason = wait_for_status(a.admin, "/readyz", 503, Duration::from_secs(10)).await;
    assert!(reason.contains("store_failing"), "{reason}");
    assert_eq!(upstream.count(), 0);

    redis.restart();
    wait_for_status(a.admin, "/readyz", 200, Duration::from_secs(15)).await;
    let healed = delivery("redis-down-1").send(a.listen).await;
    assert_eq!(
        healed.status,
        200,
        "{}\n{}",
        healed.summary(),
        a.proxy.log()
    );
    assert_eq!(upstream.count(), 1);
    let (_, metrics) = admin_get(a.admin, "/metrics").await;
    let claim_errors = metrics
        .lines()
        .find(|l| l.starts_with("hookwarden_store_errors_total{operation=\"claim\"}"))
        .unwrap();
    assert!(!claim_errors.ends_with(" 0"), "{claim_errors}");
}

#[tokio::test]
async fn an_outage_can_fall_back_to_the_local_store() {
    let mut redis = RedisServer::start();
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let local = format!(
        "on_unavailable = \"local\"\npath = {}",
        quote(&dir.path().join("local").to_string_lossy())
    );
    let a = node(dir.path(), "a", &upstream.url(), &redis.url(), &local).await;

    redis.stop();
    assert_eq!(delivery("redis-local-1").send(a.listen).await.status, 200);
    let again = delivery("redis-local-1").timestamp(support::aj::z_from_now(1));
    assert_duplicate(&again.send(a.listen).await, "redis-local-1");
    assert_eq!(upstream.count(), 1);

    let (_, metrics) = admin_get(a.admin, "/metrics").await;
    assert!(
        metrics.contains("hookwarden_store_fallbacks_total 1"),
        "{metrics}"
    );
    assert!(a.proxy.log().contains("de-duplicating locally"));
}

#[tokio::test]
async fn check_connect_pings_the_store_and_says_when_it_does_not_answer() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let config = dir.path().join("hookwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:1\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n\
             [store]\nbackend = \"redis\"\nredis_url = {{ env = \"HW_TEST_REDIS_URL\" }}\n\
             [[routes]]\nname = \"aj\"\npath = \"/a\"\nscheme = \"aj\"\n\
             secrets = [{{ file = {} }}]\n",
            quote(&secret.to_string_lossy())
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();
    let env = [("HW_TEST_REDIS_URL".to_string(), redis.url())];
    let args = ["check", "--config", config.as_str(), "--connect"];

    let up = support::proxy::run_cli(&args, &env, dir.path()).await;
    assert_eq!(up.code, Some(0), "{}", up.combined());
    assert!(up.stdout.contains("redis answers"), "{}", up.combined());

    redis.stop();
    let down = support::proxy::run_cli(&args, &env, dir.path()).await;
    assert_eq!(down.code, Some(1), "{}", down.combined());
    assert!(
        down.stderr.contains("does not answer"),
        "{}",
        down.combined()
    );
    // Without --connect nothing is opened, so the outage is not checked.
    let quiet = support::proxy::run_cli(&args[..3], &env, dir.path()).await;
    assert_eq!(quiet.code, Some(0), "{}", quiet.combined());
    assert!(
        !down.combined().contains(&redis.url()),
        "the URL was printed"
    );
}
