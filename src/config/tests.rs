//! Config tests: every file in `tests/fixtures/config/valid` loads; every file in
//! `tests/fixtures/config/invalid` fails with the message its first line names
//! (`# error: <text>`).

use super::*;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// Fixture paths are relative to the crate root, so load them from there.
fn load_fixture(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    Config::parse(&text.replace("$ROOT", root), &path.display().to_string())
}

#[test]
fn every_valid_fixture_loads() {
    for path in fixtures("valid") {
        if let Err(e) = load_fixture(&path) {
            panic!("{} should load: {e}", path.display());
        }
    }
}

#[test]
fn every_invalid_fixture_fails_with_its_message() {
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .unwrap_or_else(|| panic!("{} lacks a '# error: ' first line", path.display()));
        match load_fixture(&path) {
            Ok(_) => panic!("{} should fail", path.display()),
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains(expected), "{}: {message}", path.display());
                assert!(
                    !message.contains("fixture-secret-0123"),
                    "secret leaked: {message}"
                );
            }
        }
    }
}

#[test]
fn defaults_are_filled_in() {
    let text = format!(
        r#"
        [server]
        listen = "127.0.0.1:8080"
        [upstream]
        url = "http://localhost:3000"
        [store]
        path = "data/x"
        [[routes]]
        name = "aj"
        path = "/webhooks/aj"
        scheme = "aj"
        secrets = [{{ file = "{}/tests/fixtures/secrets/good" }}]
        "#,
        env!("CARGO_MANIFEST_DIR")
    );
    let config = Config::parse(&text, "inline").unwrap();
    assert_eq!(config.server.threads, 2);
    assert_eq!(config.server.unmatched, Unmatched::Refuse);
    assert_eq!(config.upstream.timeout, Duration::from_secs(30));
    assert_eq!(
        (config.upstream.host.as_str(), config.upstream.port),
        ("localhost", 3000)
    );
    assert_eq!(config.store.retention, Duration::from_secs(604_800));
    assert_eq!(config.store.sync, SyncMode::Always);
    assert_eq!(config.store.lease, Duration::from_secs(60));
    let route = config.route_for("/webhooks/aj").unwrap();
    assert_eq!(route.tolerance, Duration::from_secs(300));
    assert_eq!(route.max_body_bytes, 1_048_576);
    assert_eq!(
        route.secrets[0].expose(),
        b"fixture-secret-0123456789abcdef0123456789"
    );
    assert!(config.route_for("/webhooks/aj/").is_none());
}

#[test]
fn parse_errors_do_not_repeat_the_offending_text() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\nsecret_value = \"hunter2-hunter2-hunter2-hunter2-xx\"\n";
    let e = Config::parse(text, "inline").unwrap_err().to_string();
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}
