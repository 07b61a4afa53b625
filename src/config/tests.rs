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
                assert!(!message.contains("hunter2"), "password leaked: {message}");
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
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n\
                secret_value = \"hunter2-hunter2-hunter2-hunter2-xx\"\n";
    let e = Config::parse(text, "inline").unwrap_err().to_string();
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// A config with one route whose body is `route` (name, path and scheme included).
fn with_route(route: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[upstream]\nurl = \"http://localhost:3000\"\n\
         [store]\npath = \"data/x\"\n[[routes]]\n{route}\n"
    )
}

#[test]
fn every_scheme_name_loads() {
    let root = env!("CARGO_MANIFEST_DIR");
    for kind in SchemeKind::ALL {
        let custom = match kind {
            SchemeKind::Custom => {
                "[routes.custom]\nsignature_header = \"X-Sig\"\nencoding = \"hex\"\n\
                 signed_content = \"{body}\""
            }
            _ => "",
        };
        let text = with_route(&format!(
            "name = \"r\"\npath = \"/r\"\nscheme = \"{}\"\n\
             secrets = [{{ file = \"{root}/tests/fixtures/secrets/good\" }}]\n{custom}",
            kind.name()
        ));
        let config = Config::parse(&text, "inline").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.routes[0].scheme, kind);
        assert_eq!(
            config.routes[0].custom.is_some(),
            kind == SchemeKind::Custom
        );
    }
}

#[test]
fn custom_tables_belong_to_custom_routes_only() {
    let root = env!("CARGO_MANIFEST_DIR");
    let secrets = format!("secrets = [{{ file = \"{root}/tests/fixtures/secrets/good\" }}]");
    let bare = with_route(&format!(
        "name = \"c\"\npath = \"/c\"\nscheme = \"custom\"\n{secrets}"
    ));
    let e = Config::parse(&bare, "inline").unwrap_err().to_string();
    assert!(
        e.contains("scheme \"custom\" needs a [routes.custom] table"),
        "{e}"
    );

    let stray = with_route(&format!(
        "name = \"g\"\npath = \"/g\"\nscheme = \"github\"\n{secrets}\n\
         custom = {{ signature_header = \"X-Sig\", encoding = \"hex\", \
         signed_content = \"{{body}}\" }}"
    ));
    let e = Config::parse(&stray, "inline").unwrap_err().to_string();
    assert!(
        e.contains("[routes.custom] is only read with scheme = \"custom\""),
        "{e}"
    );

    let bad = with_route(&format!(
        "name = \"c\"\npath = \"/c\"\nscheme = \"custom\"\n{secrets}\n[routes.custom]\n\
         signature_header = \"X-Sig\"\nencoding = \"hex\"\nsigned_content = \"{{id}}\""
    ));
    let e = Config::parse(&bad, "inline").unwrap_err().to_string();
    assert!(
        e.contains("[[routes]] #1 (\"c\"): custom.signed_content: must include {body}"),
        "{e}"
    );
}

#[test]
fn whsec_secrets_are_decoded_for_standard_webhooks_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("whsec");
    std::fs::write(&file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    let route = |scheme: &str| {
        with_route(&format!(
            "name = \"r\"\npath = \"/r\"\nscheme = \"{scheme}\"\n\
             secrets = [{{ file = \"{}\" }}]",
            file.display()
        ))
    };
    let standard = Config::parse(&route("standard-webhooks"), "inline").unwrap();
    let key = standard.routes[0].secrets[0].expose();
    assert_eq!(key.len(), 24);
    assert_eq!(standard.routes[0].reread_secrets(), Ok(None));

    let stripe = Config::parse(&route("stripe"), "inline").unwrap();
    assert_eq!(
        stripe.routes[0].secrets[0].expose(),
        b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );

    std::fs::write(&file, "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=").unwrap();
    let e = Config::parse(&route("standard-webhooks"), "inline")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("decodes to 20 bytes; at least 24 are required"),
        "{e}"
    );
    assert!(!e.contains("MTIz"), "{e}");
}
