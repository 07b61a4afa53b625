//! Property tests of the public parsers and verifiers: arbitrary input never panics, a
//! verdict depends only on the signed content and the secret, any change to a signed
//! byte is refused, the window is exact arithmetic, config text of any shape is an error
//! and not a crash, and the replay store behaves as a small model says, across reopens.
//!
//! Case counts are bounded so the whole file runs in seconds in CI; failures are not
//! persisted to files (a case worth keeping becomes an ordinary test).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use hookwarden::config::{parse_template, Config, Encoding, Secret, TimestampFormat};
use hookwarden::scheme::{
    self, aj, custom, github, shopify, slack, standard_webhooks, stripe, Claims, VerifyError,
    Window, MAX_EVENT_ID_BYTES,
};
use hookwarden::store::{Claim, Store, Ticket};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- the schemes, side by side ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Aj,
    Stripe,
    Github,
    Slack,
    Shopify,
    StandardWebhooks,
}

const KINDS: [Kind; 6] = [
    Kind::Aj,
    Kind::Stripe,
    Kind::Github,
    Kind::Slack,
    Kind::Shopify,
    Kind::StandardWebhooks,
];

/// Prefixes of every header some scheme reads; "unsigned extra" headers avoid them.
const SCHEME_PREFIXES: [&str; 7] = [
    "x-aj-",
    "stripe-",
    "x-hub-",
    "x-github-",
    "x-slack-",
    "x-shopify-",
    "webhook-",
];

/// Whether the scheme signs a time (the others accept any `now`).
fn signs_time(kind: Kind) -> bool {
    !matches!(kind, Kind::Github | Kind::Shopify)
}

fn run(
    kind: Kind,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    match kind {
        Kind::Aj => aj::verify(headers, body, secrets, window, now),
        Kind::Stripe => stripe::verify(headers, body, secrets, window, now),
        Kind::Github => github::verify(headers, body, secrets, window, now),
        Kind::Slack => slack::verify(headers, body, secrets, window, now),
        Kind::Shopify => shopify::verify(headers, body, secrets, window, now),
        Kind::StandardWebhooks => standard_webhooks::verify(headers, body, secrets, window, now),
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// The headers a genuine sender of `kind` puts on `body`, signed with `key` at `unix`.
fn signed(kind: Kind, key: &[u8], unix: i64, id: &str, body: &[u8]) -> Vec<(String, String)> {
    let ts = unix.to_string();
    let pairs: Vec<(&str, String)> = match kind {
        Kind::Aj => {
            let ts = rfc3339(unix);
            let digest = hex::encode(aj::sign(key, &ts, body));
            vec![
                (aj::SIGNATURE, format!("sha256={digest}")),
                (aj::TIMESTAMP, ts),
                (aj::EVENT, "status_change".into()),
                (aj::DELIVERY_ID, id.into()),
            ]
        }
        Kind::Stripe => vec![(stripe::SIGNATURE, stripe::sign(key, &ts, body))],
        Kind::Github => vec![
            (github::SIGNATURE, github::sign(key, body)),
            (github::EVENT, "push".into()),
            (github::DELIVERY, id.into()),
        ],
        Kind::Slack => vec![
            (slack::SIGNATURE, slack::sign(key, &ts, body)),
            (slack::TIMESTAMP, ts.clone()),
        ],
        Kind::Shopify => vec![
            (shopify::SIGNATURE, shopify::sign(key, body)),
            (shopify::TOPIC, "orders/create".into()),
            (shopify::WEBHOOK_ID, id.into()),
        ],
        Kind::StandardWebhooks => vec![
            (standard_webhooks::ID, id.into()),
            (standard_webhooks::TIMESTAMP, ts.clone()),
            (
                standard_webhooks::SIGNATURE,
                standard_webhooks::sign(key, id, &ts, body),
            ),
        ],
    };
    pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
}

fn header_map(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn text_pairs(pairs: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect()
}

/// Whether the body is a JSON object with an `id` or `event_id` no header could carry.
fn body_id_unusable(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) else {
        return false;
    };
    ["id", "event_id"]
        .iter()
        .any(|field| match object.get(*field) {
            Some(serde_json::Value::String(s)) => {
                s.len() > MAX_EVENT_ID_BYTES || s.chars().any(char::is_control)
            }
            _ => false,
        })
}

fn key(bytes: &[u8]) -> Secret {
    Secret::new(bytes.to_vec(), "prop").unwrap()
}

/// Claims fit for the trusted headers the proxy adds: no control characters, bounded.
fn assert_header_safe(claims: &Claims) -> Result<(), TestCaseError> {
    prop_assert!(claims.event_id.len() <= MAX_EVENT_ID_BYTES && !claims.event_id.is_empty());
    prop_assert!(HeaderValue::from_str(&claims.event_id).is_ok());
    prop_assert!(!claims.event_id.chars().any(char::is_control));
    if let Some(event) = &claims.event {
        prop_assert!(HeaderValue::from_str(event).is_ok(), "event {event:?}");
    }
    Ok(())
}

// ---- strategies ----

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(KINDS.to_vec())
}

fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 32..72)
}

/// Header names: every one some scheme reads, and others.
fn any_header_name() -> impl Strategy<Value = String> {
    let known: Vec<String> = [
        aj::SIGNATURE,
        aj::TIMESTAMP,
        aj::EVENT,
        aj::DELIVERY_ID,
        stripe::SIGNATURE,
        github::SIGNATURE,
        github::EVENT,
        github::DELIVERY,
        slack::SIGNATURE,
        slack::TIMESTAMP,
        shopify::SIGNATURE,
        shopify::TOPIC,
        shopify::WEBHOOK_ID,
        standard_webhooks::ID,
        standard_webhooks::TIMESTAMP,
        standard_webhooks::SIGNATURE,
        "content-type",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    prop_oneof![prop::sample::select(known), "[a-z][a-z0-9-]{0,20}"]
}

/// Header values: raw bytes, and text shaped like what schemes parse.
fn any_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "sha256=[0-9a-fA-F]{0,70}".prop_map(String::into_bytes),
        "t=[0-9]{0,12},v1=[0-9a-f]{0,66}(,v1=[0-9a-f]{0,4})?".prop_map(String::into_bytes),
        "v[01],[A-Za-z0-9+/=]{0,50}( v1,[A-Za-z0-9+/=]{0,46})?".prop_map(String::into_bytes),
        "[0-9]{0,14}".prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(String::into_bytes),
        "[ -~]{0,40}".prop_map(String::into_bytes),
    ]
}

fn any_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec((any_header_name(), any_header_value()), 0..12)
}

/// Headers no scheme reads.
fn unsigned_extras() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = "[a-z][a-z0-9-]{0,20}".prop_filter("a name some scheme reads", |n| {
        !SCHEME_PREFIXES.iter().any(|p| n.starts_with(p))
    });
    prop::collection::vec((name, any_header_value()), 0..8)
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (
            "[ -~]{0,30}",
            prop::option::of("[ -~\u{80}-\u{10ffff}]{0,300}")
        )
            .prop_map(|(id, extra)| {
                serde_json::json!({ "id": id, "type": "t", "event_id": extra })
                    .to_string()
                    .into_bytes()
            }),
        "[a-z_]{1,10}=[ -~]{0,20}(&[a-z_]{1,10}=[ -~]{0,20}){0,4}".prop_map(String::into_bytes),
    ]
}

/// An instant anywhere `time` can represent, to the nanosecond.
fn any_instant() -> impl Strategy<Value = OffsetDateTime> {
    (-377_705_116_800i64..253_402_300_799, 0u32..1_000_000_000).prop_map(|(s, ns)| {
        OffsetDateTime::from_unix_timestamp(s).unwrap() + time::Duration::nanoseconds(ns.into())
    })
}

fn any_window() -> impl Strategy<Value = Window> {
    (0u64..1_000_000_000, 0u64..1_000_000_000).prop_map(|(p, f)| Window {
        past: Duration::from_secs(p),
        future: Duration::from_secs(f),
    })
}

// ---- properties of the verifiers ----

proptest! {
    #![proptest_config(config(768))]

    /// Arbitrary headers, bodies, clocks and windows: every scheme answers, no panic, and
    /// whatever it accepts can be carried in the trusted headers.
    #[test]
    fn no_scheme_panics_on_arbitrary_requests(
        headers in any_headers(),
        body in any_body(),
        now in any_instant(),
        window in any_window(),
        secret in secret_bytes(),
    ) {
        let map = header_map(&headers);
        for kind in KINDS {
            if let Ok(claims) = run(kind, &map, &body, &[key(&secret)], window, now) {
                assert_header_safe(&claims)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A genuine request is accepted, and headers no scheme reads never change the
    /// verdict or the claims.
    #[test]
    fn the_verdict_ignores_unsigned_headers(
        kind in kind(),
        secret in secret_bytes(),
        body in any_body(),
        unix in 1_000_000_000i64..4_000_000_000,
        offset in -300i64..=300,
        id in "[A-Za-z0-9_-]{1,40}",
        extras in unsigned_extras(),
    ) {
        let window = Window::symmetric(Duration::from_secs(300));
        let now = OffsetDateTime::from_unix_timestamp(unix + offset).unwrap();
        let genuine = text_pairs(&signed(kind, &secret, unix, &id, &body));
        let secrets = [key(&secret)];

        let plain = run(kind, &header_map(&genuine), &body, &secrets, window, now);
        match &plain {
            Ok(claims) => assert_header_safe(claims)?,
            // A signed body whose own id cannot be carried in a header is refused as such.
            Err(VerifyError::InvalidEventId) => prop_assert!(body_id_unusable(&body)),
            Err(e) => prop_assert!(false, "{kind:?} refused a genuine request: {e:?}"),
        }

        let mut before = extras.clone();
        before.extend(genuine.iter().cloned());
        let mut after = genuine.clone();
        after.extend(extras);
        for pairs in [before, after] {
            let verdict = run(kind, &header_map(&pairs), &body, &secrets, window, now);
            prop_assert_eq!(&verdict, &plain);
        }
    }

    /// The same holds for requests that are refused: unsigned extras never turn a refusal
    /// into an acceptance, nor change its reason.
    #[test]
    fn unsigned_headers_never_change_a_refusal(
        headers in any_headers(),
        extras in unsigned_extras(),
        body in any_body(),
        now in any_instant(),
        secret in secret_bytes(),
    ) {
        let window = Window::symmetric(Duration::from_secs(300));
        let secrets = [key(&secret)];
        let mut with = headers.clone();
        with.extend(extras);
        for kind in KINDS {
            let plain = run(kind, &header_map(&headers), &body, &secrets, window, now);
            let extra = run(kind, &header_map(&with), &body, &secrets, window, now);
            prop_assert_eq!(plain, extra, "{:?}", kind);
        }
    }

    /// Flipping any bit of the body, or of the signed timestamp, is always refused; a
    /// body flip always as `invalid_signature`.
    #[test]
    fn flipping_any_signed_byte_fails(
        kind in kind(),
        secret in secret_bytes(),
        body in prop::collection::vec(any::<u8>(), 1..200),
        unix in 1_000_000_000i64..4_000_000_000,
        id in "[A-Za-z0-9_-]{1,40}",
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let window = Window::symmetric(Duration::from_secs(300));
        let now = OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let secrets = [key(&secret)];
        let genuine = text_pairs(&signed(kind, &secret, unix, &id, &body));

        let mut tampered = body.clone();
        tampered[at.index(body.len())] ^= 1 << bit;
        let verdict = run(kind, &header_map(&genuine), &tampered, &secrets, window, now);
        prop_assert_eq!(verdict, Err(VerifyError::InvalidSignature));

        if signs_time(kind) {
            let name = match kind {
                Kind::Aj => aj::TIMESTAMP,
                Kind::Slack => slack::TIMESTAMP,
                Kind::StandardWebhooks => standard_webhooks::TIMESTAMP,
                _ => stripe::SIGNATURE,
            };
            let mut pairs = genuine.clone();
            let slot = pairs.iter_mut().find(|(n, _)| n == name).unwrap();
            // In Stripe's header the time is the `t=` entry; flip one of its digits.
            let (start, len) = match kind {
                Kind::Stripe => (2, unix.to_string().len()),
                _ => (0, slot.1.len()),
            };
            slot.1[start + at.index(len)] ^= 1 << bit;
            let verdict = run(kind, &header_map(&pairs), &body, &secrets, window, now);
            prop_assert!(verdict.is_err(), "{kind:?} accepted a changed timestamp");
        }
    }

    /// A digest that decodes to different bytes, or a different secret, never verifies.
    #[test]
    fn other_digests_and_other_secrets_fail(
        kind in kind(),
        secret in secret_bytes(),
        other in secret_bytes(),
        body in any_body(),
        unix in 1_000_000_000i64..4_000_000_000,
        id in "[A-Za-z0-9_-]{1,40}",
        at in any::<prop::sample::Index>(),
    ) {
        prop_assume!(secret != other);
        let window = Window::symmetric(Duration::from_secs(300));
        let now = OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let genuine = text_pairs(&signed(kind, &secret, unix, &id, &body));
        let map = header_map(&genuine);
        prop_assert_eq!(
            run(kind, &map, &body, &[key(&other)], window, now),
            Err(VerifyError::InvalidSignature)
        );

        // Change one digit of the digest's encoding to another that decodes differently.
        let name = match kind {
            Kind::Aj => aj::SIGNATURE,
            Kind::Stripe => stripe::SIGNATURE,
            Kind::Github => github::SIGNATURE,
            Kind::Slack => slack::SIGNATURE,
            Kind::Shopify => shopify::SIGNATURE,
            Kind::StandardWebhooks => standard_webhooks::SIGNATURE,
        };
        let mut pairs = genuine.clone();
        let slot = pairs.iter_mut().find(|(n, _)| n == name).unwrap();
        let text = String::from_utf8(slot.1.clone()).unwrap();
        let start = match kind {
            Kind::Aj => "sha256=".len(),
            Kind::Stripe => text.find("v1=").unwrap() + 3,
            Kind::Github => "sha256=".len(),
            Kind::Slack => "v0=".len(),
            Kind::Shopify => 0,
            Kind::StandardWebhooks => "v1,".len(),
        };
        // The last base64 digit may carry padding bits; stay clear of it.
        let digits = text.len() - start - 4;
        let i = start + at.index(digits);
        let c = slot.1[i];
        slot.1[i] = if c == b'0' { b'1' } else { b'0' };
        prop_assert_eq!(
            run(kind, &header_map(&pairs), &body, &[key(&secret)], window, now),
            Err(VerifyError::InvalidSignature)
        );
    }

    /// Schemes that sign no time give the same verdict at any clock.
    #[test]
    fn unsigned_time_schemes_ignore_the_clock(
        secret in secret_bytes(),
        body in any_body(),
        id in "[A-Za-z0-9_-]{1,40}",
        a in any_instant(),
        b in any_instant(),
    ) {
        let window = Window::symmetric(Duration::from_secs(300));
        for kind in [Kind::Github, Kind::Shopify] {
            let map = header_map(&text_pairs(&signed(kind, &secret, 0, &id, &body)));
            let secrets = [key(&secret)];
            let at_a = run(kind, &map, &body, &secrets, window, a);
            prop_assert!(at_a.is_ok());
            prop_assert_eq!(at_a, run(kind, &map, &body, &secrets, window, b));
        }
    }

    /// The window is exact arithmetic: accepted iff -future <= now - signed <= past.
    #[test]
    fn the_window_is_exact(
        signed_at in any_instant(),
        delta_ns in -2_000_000_000_000i64..2_000_000_000_000,
        past in 0u64..2_000,
        future in 0u64..2_000,
    ) {
        let window = Window { past: Duration::from_secs(past), future: Duration::from_secs(future) };
        let now = signed_at.checked_add(time::Duration::nanoseconds(delta_ns));
        prop_assume!(now.is_some());
        let now = now.unwrap();
        let expected = if i128::from(delta_ns) > i128::from(past) * 1_000_000_000 {
            Err(VerifyError::TimestampTooOld)
        } else if i128::from(-delta_ns) > i128::from(future) * 1_000_000_000 {
            Err(VerifyError::TimestampInFuture)
        } else {
            Ok(())
        };
        prop_assert_eq!(window.check(signed_at, now), expected);
    }

    /// Timestamp parsers take any text without panicking; Unix seconds round-trip.
    #[test]
    fn timestamp_parsers_never_panic(text in "\\PC{0,40}", unix in 0i64..253_402_300_799) {
        let _ = aj::parse_timestamp(&text);
        for format in [TimestampFormat::Unix, TimestampFormat::UnixMs, TimestampFormat::Rfc3339] {
            let _ = custom::parse_timestamp(&text, format);
        }
        prop_assert_eq!(
            custom::parse_timestamp(&unix.to_string(), TimestampFormat::Unix),
            Ok(OffsetDateTime::from_unix_timestamp(unix).unwrap())
        );
        let parsed = aj::parse_timestamp(&rfc3339(unix));
        prop_assert_eq!(parsed, Ok(OffsetDateTime::from_unix_timestamp(unix).unwrap()));
    }

    /// Digest decoding takes any text; what hex or base64 encodes comes back.
    #[test]
    fn digest_decoding_round_trips(text in "\\PC{0,100}", bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = custom::decode(&text, Encoding::Hex);
        let _ = custom::decode(&text, Encoding::Base64);
        prop_assert_eq!(custom::decode(&hex::encode(&bytes), Encoding::Hex), Some(bytes.clone()));
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(custom::decode(&b64, Encoding::Base64), Some(bytes.clone()));
        prop_assert_eq!(custom::decode(b64.trim_end_matches('='), Encoding::Base64), Some(bytes));
    }

    /// Signed-content templates of any text parse or fail with a message, never panic; a
    /// template that parses contains the body exactly once.
    #[test]
    fn templates_never_panic(text in "([{}]|\\{(body|id|timestamp|x)\\}|[ -~\u{80}-\u{10ffff}]){0,30}") {
        if let Ok(parts) = parse_template(&text) {
            let bodies = parts.iter().filter(|p| matches!(p, hookwarden::config::TemplatePart::Body)).count();
            prop_assert_eq!(bodies, 1);
        }
    }
}

// ---- config text of any shape ----

fn secret_file() -> &'static PathBuf {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("secret");
            std::fs::write(&file, "prop-secret-0123456789abcdef0123456789\n").unwrap();
            (dir, file)
        })
        .1
}

fn valid_config() -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\nthreads = 2\n\
         unmatched = \"refuse\"\nbody_timeout_seconds = 10\n\n\
         [upstream]\nurl = \"http://127.0.0.1:3000\"\ntimeout_seconds = 30\n\n\
         [store]\npath = \"data/hookwarden\"\nretention_seconds = 604800\nsync = \"always\"\n\n\
         [[routes]]\nname = \"aj\"\npath = \"/webhooks/aj\"\nscheme = \"aj\"\n\
         tolerance_seconds = 300\nmax_body_bytes = 1048576\nsecrets = [{{ file = {:?} }}]\n\n\
         [[routes]]\nname = \"acme\"\npath = \"/acme\"\nscheme = \"custom\"\n\
         secrets = [{{ file = {:?}, id = \"k1\" }}]\n\
         [routes.custom]\nsignature_header = \"X-Acme-Signature\"\nsignature_prefix = \"sha256=\"\n\
         encoding = \"hex\"\nsigned_content = \"{{timestamp}}.{{body}}\"\n\
         timestamp_header = \"X-Acme-Time\"\ntimestamp_format = \"unix\"\n\
         id_sources = [\"header:X-Acme-Id\", \"body:id\"]\n",
        secret_file(),
        secret_file()
    )
}

/// Values that are wrong in many ways: types, ranges, overflow, empty, odd text.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "-1",
            "18446744073709551616",
            "1e400",
            "nan",
            "inf",
            "true",
            "\"\"",
            "[]",
            "{}",
            "[[]]",
            "\"127.0.0.1:99999\"",
            "\"::::\"",
            "\"http://\"",
            "\"ftp://x\"",
            "\"/\"",
            "\"{body}{body}\"",
            "\"{\"",
            "\"}\"",
            "\"\\u0000\"",
            "'lit'",
            "\"\"\"x\"\"\"",
            "{ file = \"/nonexistent\" }",
            "[{ env = \"HOOKWARDEN_PROP_NO_SUCH_VAR\" }]",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[ -~]{0,30}\"",
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Revalue(prop::sample::Index, String),
    Insert(prop::sample::Index, String),
    Truncate(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Edit::Delete),
        any::<prop::sample::Index>().prop_map(Edit::Duplicate),
        (any::<prop::sample::Index>(), odd_value()).prop_map(|(i, v)| Edit::Revalue(i, v)),
        (
            any::<prop::sample::Index>(),
            "[ -~\t]{0,40}|\\[[a-z.\\[\\]]{0,20}\\]"
        )
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for edit in edits {
        if lines.is_empty() {
            break;
        }
        match edit {
            Edit::Delete(i) => {
                lines.remove(i.index(lines.len()));
            }
            Edit::Duplicate(i) => {
                let line = lines[i.index(lines.len())].clone();
                lines.insert(i.index(lines.len()), line);
            }
            Edit::Revalue(i, value) => {
                let at = i.index(lines.len());
                if let Some((key, _)) = lines[at].split_once('=') {
                    lines[at] = format!("{key}= {value}");
                }
            }
            Edit::Insert(i, line) => lines.insert(i.index(lines.len() + 1), line.clone()),
            Edit::Truncate(i) => {
                let at = i.index(lines.len());
                let cut = lines[at].len() / 2;
                let cut = (0..=cut)
                    .rev()
                    .find(|&c| lines[at].is_char_boundary(c))
                    .unwrap_or(0);
                lines[at].truncate(cut);
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(config(384))]

    /// A valid config with random damage: loads or lists its problems, never panics, and a
    /// syntax error names a line inside the file.
    #[test]
    fn damaged_configs_are_errors_not_panics(edits in prop::collection::vec(edit(), 0..6)) {
        let text = apply(&valid_config(), &edits);
        match Config::parse(&text, "prop.toml") {
            Ok(config) => prop_assert!(!config.routes.is_empty()),
            Err(hookwarden::config::ConfigError::Parse { line, .. }) => {
                prop_assert!(line <= text.lines().count() + 1, "line {line}");
            }
            Err(_) => {}
        }
    }

    /// Arbitrary text is no config, and says so.
    #[test]
    fn arbitrary_text_is_an_error_not_a_panic(text in "\\PC{0,200}|[\\[\\]a-z_=\"{} .,0-9\n]{0,200}") {
        let _ = Config::parse(&text, "prop.toml");
    }
}

#[test]
fn the_undamaged_config_loads() {
    let config = Config::parse(&valid_config(), "prop.toml").expect("the base config is valid");
    assert_eq!(config.routes.len(), 2);
    let route = config.route_named("aj").unwrap();
    // Through the route-level entry point too.
    let body = br#"{"id":"x"}"#;
    let ts = rfc3339(1_700_000_000);
    let digest = hex::encode(aj::sign(
        b"prop-secret-0123456789abcdef0123456789",
        &ts,
        body,
    ));
    let headers = header_map(&text_pairs(&[
        (aj::SIGNATURE.into(), format!("sha256={digest}")),
        (aj::TIMESTAMP.into(), ts),
        (aj::EVENT.into(), "e".into()),
    ]));
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    assert!(scheme::verify(route, &headers, body, now).is_ok());
}

// ---- the replay store against a model ----

#[derive(Debug, Clone)]
enum Op {
    /// Claim event `event` whose signed bytes hash to digest `digest`.
    Claim {
        event: u8,
        digest: u8,
    },
    Commit(prop::sample::Index),
    Release(prop::sample::Index),
    Abandon(prop::sample::Index),
    Advance(u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..4).prop_map(|(event, digest)| Op::Claim { event, digest }),
        2 => any::<prop::sample::Index>().prop_map(Op::Commit),
        1 => any::<prop::sample::Index>().prop_map(Op::Release),
        1 => any::<prop::sample::Index>().prop_map(Op::Abandon),
        // Whole leases and single milliseconds too, to land on a lease's last moment.
        1 => prop_oneof![Just(2_000u64), Just(1), Just(1_999), 0u64..3_000].prop_map(Op::Advance),
        1 => Just(Op::Reopen),
    ]
}

/// What the store should hold for one key.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Claimed {
        until: u64,
        token: usize,
        event: String,
    },
    Processed {
        event: String,
    },
}

#[derive(Debug, PartialEq)]
enum Answer {
    Granted,
    Duplicate(String),
    InFlight,
}

#[derive(Default)]
struct Model {
    slots: std::collections::HashMap<String, Slot>,
}

impl Model {
    fn claim(
        &mut self,
        keys: [String; 2],
        event: &str,
        now: u64,
        lease: u64,
        token: usize,
    ) -> Answer {
        for key in &keys {
            match self.slots.get(key) {
                Some(Slot::Processed { event: recorded }) => {
                    return Answer::Duplicate(recorded.clone());
                }
                Some(Slot::Claimed { until, .. }) if *until > now => return Answer::InFlight,
                _ => {}
            }
        }
        for key in keys {
            let slot = Slot::Claimed {
                until: now + lease,
                token,
                event: event.to_owned(),
            };
            self.slots.insert(key, slot);
        }
        Answer::Granted
    }

    fn commit(&mut self, keys: &[String; 2], event: &str) {
        for key in keys {
            self.slots.insert(
                key.clone(),
                Slot::Processed {
                    event: event.to_owned(),
                },
            );
        }
    }

    /// A restart: claims survive it only where they were written to disk.
    fn restart(&mut self, claims_durable: bool) {
        if !claims_durable {
            self.slots
                .retain(|_, slot| matches!(slot, Slot::Processed { .. }));
        }
    }

    fn release(&mut self, keys: &[String; 2], token: usize) {
        for key in keys {
            if matches!(self.slots.get(key), Some(Slot::Claimed { token: t, .. }) if *t == token) {
                self.slots.remove(key);
            }
        }
    }
}

fn store_config(
    path: &std::path::Path,
    lease_seconds: u64,
    sync: &str,
) -> hookwarden::config::StoreConfig {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:2\"\n\
         [upstream]\nurl = \"http://127.0.0.1:3\"\ntimeout_seconds = 1\n\
         [store]\npath = {:?}\nlease_seconds = {lease_seconds}\nsync = \"{sync}\"\n\
         [[routes]]\nname = \"r\"\npath = \"/r\"\nscheme = \"aj\"\nsecrets = [{{ file = {:?} }}]\n",
        path.to_string_lossy(),
        secret_file()
    );
    Config::parse(&text, "store.toml").unwrap().store
}

/// Opens the store again in this process. sled's background threads may hold the old
/// handle, and with it the directory's lock, for a moment after the last handle is
/// dropped (a new process never meets this: the lock dies with the old one).
fn reopen(settings: &hookwarden::config::StoreConfig) -> Store {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(settings) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("reopening the store: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Claims, commits, releases, abandoned tickets, time passing and reopening the store
    /// (as after a restart) give exactly the answers a simple model gives: a processed
    /// event or digest is a duplicate forever, a live claim blocks copies until its lease
    /// ends (across a restart too with `sync = "always"`; with `"interval"` claims live in
    /// memory only), and a release frees only the claim it granted.
    #[test]
    fn the_store_matches_its_model(
        ops in prop::collection::vec(op(), 1..40),
        always in any::<bool>(),
    ) {
        const LEASE_MS: u64 = 2_000;
        let dir = tempfile::tempdir().unwrap();
        let sync = if always { "always" } else { "interval" };
        let settings = store_config(&dir.path().join("store"), LEASE_MS / 1000, sync);
        let mut store = Store::open(&settings).unwrap();
        let mut model = Model::default();
        let mut tickets: Vec<Option<(Ticket, [String; 2], usize)>> = Vec::new();
        let mut now = 1_700_000_000_000u64;
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();

        for op in ops {
            match op {
                Op::Claim { event, digest } => {
                    let event_id = format!("event-{event}");
                    let digest_bytes = [digest; 32];
                    let keys = [format!("e/{event_id}"), format!("s/{digest}")];
                    let token = tickets.len();
                    let expected = model.claim(keys.clone(), &event_id, now, LEASE_MS, token);
                    let claimed = rt.block_on(store.claim("r", &event_id, &digest_bytes, now));
                    let got = match claimed.unwrap() {
                        Claim::Granted(ticket) => {
                            tickets.push(Some((ticket, keys, token)));
                            Answer::Granted
                        }
                        Claim::Duplicate { event_id } => Answer::Duplicate(event_id),
                        Claim::InFlight => Answer::InFlight,
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Commit(i) | Op::Release(i) | Op::Abandon(i) if !tickets.is_empty() => {
                    let at = i.index(tickets.len());
                    let Some((ticket, keys, token)) = tickets[at].take() else { continue };
                    match op {
                        Op::Commit(_) => {
                            let event_id = ticket.event_id().to_owned();
                            rt.block_on(ticket.commit(now)).unwrap();
                            model.commit(&keys, &event_id);
                        }
                        Op::Release(_) => {
                            rt.block_on(ticket.release()).unwrap();
                            model.release(&keys, token);
                        }
                        // Dropped outside a runtime, as by a dying process: the claim
                        // stays until its lease lapses.
                        _ => drop((ticket, keys, token)),
                    }
                }
                Op::Advance(ms) => now += ms,
                Op::Reopen => {
                    // Open tickets die with the process; with sync = "always" their
                    // claims outlive it until their leases lapse.
                    tickets.clear();
                    model.restart(always);
                    rt.block_on(store.flush()).unwrap();
                    drop(store);
                    store = reopen(&settings);
                }
                _ => {}
            }
        }
    }
}
