//! Tests of the `[routes.custom]` checks: templates, and one message per mistake.

use super::*;

fn problems(toml: &str) -> Vec<String> {
    let section: CustomSection = toml::from_str(toml).unwrap();
    check(&section).expect_err("should be refused")
}

const BASE: &str = r#"
    signature_header = "X-Sig"
    encoding = "hex"
    signed_content = "{body}"
"#;

#[test]
fn templates_parse_into_parts() {
    use TemplatePart::*;
    let lit = |s: &str| Literal(s.to_string());
    assert_eq!(parse_template("{body}"), Ok(vec![Body]));
    assert_eq!(
        parse_template("v0:{timestamp}:{body}"),
        Ok(vec![lit("v0:"), Timestamp, lit(":"), Body])
    );
    assert_eq!(
        parse_template("{{{id}}}.{body}é"),
        Ok(vec![lit("{"), Id, lit("}."), Body, lit("é")])
    );
}

#[test]
fn bad_templates_say_why() {
    for (template, message) in [
        ("{timestamp}.", "must include {body}"),
        ("{body}{body}", "{body} appears twice"),
        ("{nonce}.{body}", "unknown placeholder {nonce}"),
        ("{body", "an unclosed '{'"),
        ("}{body}", "a lone '}'"),
    ] {
        let err = parse_template(template).unwrap_err();
        assert!(err.contains(message), "{template}: {err}");
    }
}

#[test]
fn a_minimal_table_checks_with_defaults() {
    let section: CustomSection = toml::from_str(BASE).unwrap();
    let spec = check(&section).unwrap();
    assert_eq!(spec.algorithm, Algorithm::Sha256);
    assert_eq!(spec.signature_header.as_str(), "x-sig");
    assert_eq!(
        (spec.prefix, spec.separator, spec.timestamp),
        (None, None, None)
    );
    assert!(spec.id_sources.is_empty());
    assert_eq!(spec.key_form, KeyForm::Raw);
}

#[test]
fn every_mistake_is_named() {
    let cases = [
        (
            r#"signature_header = "X Sig"
               encoding = "hex"
               signed_content = "{body}""#,
            r#"custom.signature_header = "X Sig" is not a header name"#,
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{timestamp}.{body}""#,
            "uses {timestamp} but no timestamp_header is set",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{body}"
               timestamp_header = "X-Time"
               timestamp_format = "unix""#,
            "must include {timestamp} when custom.timestamp_header is set",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{timestamp}.{body}"
               timestamp_header = "X-Time""#,
            "needs custom.timestamp_format",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{body}"
               timestamp_format = "unix""#,
            "timestamp_format is set without custom.timestamp_header",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{id}.{body}""#,
            "uses {id} but custom.id_sources is empty",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{body}"
               id_sources = ["query:id"]"#,
            r#"entry "query:id" must be "header:<Header-Name>" or "body:<top-level field>""#,
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{body}"
               id_sources = ["body:id", "body:id"]"#,
            r#"lists "body:id" twice"#,
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "base64"
               separator = "="
               signed_content = "{body}""#,
            "holds characters that appear in base64 digests",
        ),
        (
            r#"signature_header = "X-Sig"
               signature_prefix = "v1,"
               encoding = "base64"
               separator = ","
               signed_content = "{body}""#,
            "appears inside custom.signature_prefix",
        ),
        (
            r#"signature_header = "X-Sig"
               signature_prefix = "v 1"
               encoding = "hex"
               signed_content = "{body}""#,
            "signature_prefix must be printable ASCII",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{body}"
               event_header = "X:Event""#,
            "custom.event_header",
        ),
        (
            r#"signature_header = "X-Sig"
               encoding = "hex"
               signed_content = "{nonce}{body}""#,
            "custom.signed_content: unknown placeholder {nonce}",
        ),
    ];
    for (toml, message) in cases {
        let found = problems(toml);
        assert!(
            found.iter().any(|p| p.contains(message)),
            "{message:?} not in {found:?}"
        );
    }
}

#[test]
fn unknown_keys_and_values_are_parse_errors() {
    let typo = format!("{BASE}\nsignature_headr = \"x\"");
    assert!(toml::from_str::<CustomSection>(&typo).is_err());
    let encoding = BASE.replace("\"hex\"", "\"b64\"");
    let err = toml::from_str::<CustomSection>(&encoding).unwrap_err();
    assert!(
        err.message().contains("expected `hex` or `base64`"),
        "{err}"
    );
    let algorithm = format!("{BASE}\nalgorithm = \"sha1\"");
    assert!(toml::from_str::<CustomSection>(&algorithm).is_err());
}
