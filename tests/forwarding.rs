//! What the app receives for a verified delivery (request line, headers it may trust,
//! headers it must not see) and what the sender gets back; several routes and secrets; and
//! the optional forwarding of paths no route claims.

mod support;

use support::aj::OTHER_SECRET;
use support::{
    assert_refusal, assert_relayed_ok, exchange, standard, AjRequest, Proxy, ProxyConfig,
    RecordingUpstream, Reply, Route, SECRET,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sent_trusted_headers_are_replaced() {
    let (upstream, proxy) = standard().await;
    let body = r#"{"event":"incident_created","id":"evt-42","title":"Elevated errors"}"#;
    // Every forged value says "forged", so none can pass for one the proxy set itself.
    let request = AjRequest::new(body)
        .event("incident_created")
        .header("X-Hookwarden-Verified", "forged-false")
        .header("x-hookwarden-route", "forged-route")
        .header("X-HOOKWARDEN-EVENT-ID", "forged-id")
        .header("X-Hookwarden-Event-Id-Source", "forged-source")
        .header("x-HookWarden-Event", "forged-event")
        .header("X-Hookwarden-Custom", "forged-custom")
        .header("X-Hookwarden-Signed-At", "forged-time")
        .header("X-Hookwarden-Key", "forged-key")
        .header("X-HOOKWARDEN-VERIFIED", "forged-yes");

    assert_relayed_ok(&request.send(proxy.addr()).await);

    let seen = upstream.single();
    let expected = [
        ("x-hookwarden-verified", "true"),
        ("x-hookwarden-route", "aj"),
        ("x-hookwarden-event", "incident_created"),
        ("x-hookwarden-event-id", "evt-42"),
        ("x-hookwarden-event-id-source", "body.id"),
    ];
    for (name, value) in expected {
        assert_eq!(seen.header(name).as_deref(), Some(value), "header {name}");
    }
    assert_eq!(
        seen.header_values("x-hookwarden-custom"),
        Vec::<String>::new()
    );
    let forged: Vec<_> = seen
        .headers
        .iter()
        .filter(|(name, value)| {
            name.starts_with("x-hookwarden-") && String::from_utf8_lossy(value).contains("forged")
        })
        .collect();
    assert!(
        forged.is_empty(),
        "client-sent trusted headers reached the app: {forged:?}"
    );

    // Beyond the contract's five, the proxy may say when the delivery was signed; if it
    // does, the value must be the verified instant.
    if let Some(signed_at) = seen.header("x-hookwarden-signed-at") {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let stated = time::OffsetDateTime::parse(&signed_at, rfc3339)
            .unwrap_or_else(|e| panic!("X-Hookwarden-Signed-At {signed_at:?}: {e}"));
        let signed = time::OffsetDateTime::parse(request.timestamp_value(), rfc3339).unwrap();
        assert_eq!(stated, signed, "X-Hookwarden-Signed-At {signed_at:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_id_source_follows_the_precedence() {
    let (upstream, proxy) = standard().await;
    let cases = [
        (
            r#"{"event":"status_change","id":"evt-p1","event_id":"evt-x1"}"#,
            Some("dlv-p1"),
        ),
        (
            r#"{"event":"status_change","event_id":"evt-p2"}"#,
            Some("dlv-p2"),
        ),
        (
            r#"{"event":"status_change","to":"degraded"}"#,
            Some("dlv-p3"),
        ),
        (r#"{"event":"status_change","to":"operational"}"#, None),
    ];
    for (body, id) in cases {
        let mut request = AjRequest::new(body);
        if let Some(id) = id {
            request = request.id(id);
        }
        assert_relayed_ok(&request.send(proxy.addr()).await);
    }

    let seen = upstream.requests();
    assert_eq!(seen.len(), 4);
    let ids: Vec<_> = seen
        .iter()
        .map(|r| {
            (
                r.header("x-hookwarden-event-id").unwrap_or_default(),
                r.header("x-hookwarden-event-id-source").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ids[0], ("evt-p1".to_owned(), "body.id".to_owned()));
    assert_eq!(ids[1], ("evt-p2".to_owned(), "body.event_id".to_owned()));
    assert_eq!(ids[2], ("dlv-p3".to_owned(), "header".to_owned()));
    assert_eq!(ids[3].1, "signature");
    assert!(!ids[3].0.is_empty(), "a derived event id must not be empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_line_and_end_to_end_headers_pass_hop_by_hop_ones_do_not() {
    let (upstream, proxy) = standard().await;
    let request = AjRequest::with_id("evt-pass-1")
        .path("/webhooks/aj?source=bus&attempt=2")
        .header("X-Custom-Thing", "kept as is")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("Connection", "keep-alive, X-Drop-Me")
        .header("Keep-Alive", "timeout=5")
        .header("X-Drop-Me", "1")
        .header("TE", "trailers");

    assert_relayed_ok(&request.send(proxy.addr()).await);

    let seen = upstream.single();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/webhooks/aj?source=bus&attempt=2");
    assert_eq!(seen.header("x-custom-thing").as_deref(), Some("kept as is"));
    assert_eq!(seen.header("x-aj-event").as_deref(), Some("status_change"));
    assert_eq!(
        seen.header_values("x-forwarded-for").join(", "),
        "203.0.113.7, 127.0.0.1",
        "X-Forwarded-For must get the client address appended"
    );
    for name in [
        "keep-alive",
        "x-drop-me",
        "te",
        "transfer-encoding",
        "expect",
    ] {
        assert_eq!(
            seen.header_values(name),
            Vec::<String>::new(),
            "hop-by-hop {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_added_when_absent() {
    let (upstream, proxy) = standard().await;
    assert_relayed_ok(&AjRequest::with_id("evt-xff-1").send(proxy.addr()).await);
    assert_eq!(
        upstream.single().header_values("x-forwarded-for"),
        vec!["127.0.0.1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_answer_is_relayed_unchanged() {
    let (upstream, proxy) = standard().await;
    upstream.push(
        Reply::json(201, r#"{"created":true,"n":[1,2]}"#)
            .with_header("x-app-trace", "abc123")
            .with_header("location", "/things/1"),
    );

    let answer = AjRequest::with_id("evt-relay-1").send(proxy.addr()).await;

    assert_eq!(answer.status, 201);
    assert_eq!(answer.text(), r#"{"created":true,"n":[1,2]}"#);
    assert_eq!(answer.header("x-app-trace"), Some("abc123"));
    assert_eq!(answer.header("location"), Some("/things/1"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_routes_each_with_their_own_secret() {
    let upstream = RecordingUpstream::start().await;
    let config = ProxyConfig::new(upstream.url())
        .route(Route::new("alpha", "/webhooks/alpha").secret_file(SECRET))
        .route(Route::new("beta", "/webhooks/beta").secret_env("HW_E2E_BETA_SECRET", OTHER_SECRET));
    let proxy = Proxy::start(config).await;

    let alpha = AjRequest::with_id("evt-alpha-1").path("/webhooks/alpha");
    assert_relayed_ok(&alpha.send(proxy.addr()).await);

    // Alpha's secret does not open beta.
    let beta_wrong = AjRequest::with_id("evt-beta-1").path("/webhooks/beta");
    assert_refusal(
        &beta_wrong.send(proxy.addr()).await,
        401,
        "invalid_signature",
    );

    let beta = AjRequest::with_id("evt-beta-1")
        .path("/webhooks/beta")
        .secret(OTHER_SECRET);
    assert_relayed_ok(&beta.send(proxy.addr()).await);

    let seen = upstream.requests();
    let routes: Vec<_> = seen
        .iter()
        .map(|r| {
            (
                r.target.clone(),
                r.header("x-hookwarden-route").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("/webhooks/alpha".to_owned(), "alpha".to_owned()),
            ("/webhooks/beta".to_owned(), "beta".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configured_secret_of_a_route_is_accepted() {
    let upstream = RecordingUpstream::start().await;
    let route = Route::aj().secret_file(OTHER_SECRET);
    let proxy = Proxy::start(ProxyConfig::new(upstream.url()).route(route)).await;

    assert_relayed_ok(&AjRequest::with_id("evt-rot-1").send(proxy.addr()).await);
    let rotated = AjRequest::with_id("evt-rot-2").secret(OTHER_SECRET);
    assert_relayed_ok(&rotated.send(proxy.addr()).await);
    let unknown =
        AjRequest::with_id("evt-rot-3").secret("e2e-unknown-secret-aaaaaaaaaaaaaaaaaaaaaa");
    assert_refusal(&unknown.send(proxy.addr()).await, 401, "invalid_signature");
    assert_eq!(upstream.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_paths_are_forwarded_when_configured() {
    let upstream = RecordingUpstream::start().await;
    let config = ProxyConfig::aj(upstream.url()).server_line(r#"unmatched = "forward""#);
    let proxy = Proxy::start(config).await;

    let raw = b"POST /health/ping?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\
                X-Hookwarden-Verified: true\r\nX-Hookwarden-Route: aj\r\n\r\nhi";
    assert_relayed_ok(&exchange(proxy.addr(), raw).await);

    let seen = upstream.single();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", "/health/ping?x=1")
    );
    assert_eq!(seen.body, b"hi");
    // Unverified traffic must not carry a claim of verification the client made up.
    assert!(
        !seen
            .header_values("x-hookwarden-verified")
            .contains(&"true".to_owned()),
        "unverified request reached the app marked verified: {:?}",
        seen.headers
    );
    assert!(
        !seen
            .header_values("x-hookwarden-route")
            .contains(&"aj".to_owned()),
        "unverified request reached the app with a client-made route header"
    );

    // Routed paths are still verified.
    let unsigned = AjRequest::with_id("evt-unmatched-1").omit("X-AJ-Signature");
    assert_refusal(&unsigned.send(proxy.addr()).await, 401, "missing_signature");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_sent_as_soon_as_the_port_accepts_is_served() {
    // The contract: the proxy is ready when its port accepts TCP. Nothing else is awaited.
    let upstream = RecordingUpstream::start().await;
    let proxy = Proxy::start_listening(ProxyConfig::aj(upstream.url())).await;

    let answer = AjRequest::with_id("evt-first-moment")
        .send(proxy.addr())
        .await;

    assert_relayed_ok(&answer);
    assert_eq!(upstream.count(), 1);
}
