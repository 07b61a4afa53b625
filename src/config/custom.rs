//! A signature scheme described as data: the `[routes.custom]` table, checked.
//!
//! [`CustomScheme`] says where a request carries its signature, timestamp, id and event
//! type, which bytes are signed and how the digest is written. The `custom` scheme runs
//! it as configured, and the built-in schemes that fit are written as constant values of
//! the same type. Nothing here verifies anything: that is `crate::scheme::custom`'s job.

use http::HeaderName;
use serde::Deserialize;

use super::file::{CustomSection, SecretFormat};
use super::secret::KeyForm;

/// How digests are written in the signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64 (`+/`), padding optional.
    Base64,
}

/// How a timestamp header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Whole seconds since the Unix epoch, digits only.
    Unix,
    /// Milliseconds since the Unix epoch, digits only.
    UnixMs,
    /// RFC 3339 with a zone (`Z` or an offset).
    Rfc3339,
}

impl TimestampFormat {
    /// The format in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            TimestampFormat::Unix => "Unix seconds",
            TimestampFormat::UnixMs => "Unix milliseconds",
            TimestampFormat::Rfc3339 => "RFC 3339",
        }
    }
}

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256 (the default).
    #[default]
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// Length of a digest, in bytes.
    pub fn digest_bytes(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// One piece of the signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// The timestamp header's value, exactly as sent (surrounding blanks removed).
    Timestamp,
    /// The event id, from the first id source that has one.
    Id,
    /// The raw body.
    Body,
    /// Fixed text.
    Literal(String),
}

/// Where an event id may be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    /// A request header.
    Header(HeaderName),
    /// A top-level field of a JSON body (a string or a number).
    BodyField(String),
}

/// The timestamp header and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampSpec {
    /// The header.
    pub header: HeaderName,
    /// Its format.
    pub format: TimestampFormat,
}

/// A checked signature description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomScheme {
    /// The header holding the signature(s).
    pub signature_header: HeaderName,
    /// Text before each digest, e.g. `sha256=`; matched in any ASCII case.
    pub prefix: Option<String>,
    /// How digests are written.
    pub encoding: Encoding,
    /// What separates several signatures in one header value; `None`: one per value.
    pub separator: Option<String>,
    /// The signed content, in order.
    pub template: Vec<TemplatePart>,
    /// The signed timestamp, when the sender signs one.
    pub timestamp: Option<TimestampSpec>,
    /// Where the event id is looked for, in order; the digest when none has one.
    pub id_sources: Vec<IdSpec>,
    /// The HMAC hash function.
    pub algorithm: Algorithm,
    /// The event type header; when set, a request without it is refused.
    pub event_header: Option<HeaderName>,
    /// How the route's secrets become key bytes.
    pub key_form: KeyForm,
}

impl CustomSection {
    /// Checks the table; see [`check`].
    pub fn check(&self) -> Result<CustomScheme, Vec<String>> {
        check(self)
    }
}

impl CustomScheme {
    /// Whether the signed content includes `part`.
    pub fn signs(&self, part: &TemplatePart) -> bool {
        self.template.contains(part)
    }
}

/// Checks a `[routes.custom]` table; every problem is listed, each naming its key.
pub fn check(section: &CustomSection) -> Result<CustomScheme, Vec<String>> {
    let mut problems = Vec::new();
    let mut header = |key: &str, value: &str| match HeaderName::from_bytes(value.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            problems.push(format!("custom.{key} = {value:?} is not a header name"));
            None
        }
    };
    let signature_header = header("signature_header", &section.signature_header);
    let event_header = section
        .event_header
        .as_deref()
        .map(|e| header("event_header", e));
    let timestamp_header = section
        .timestamp_header
        .as_deref()
        .map(|t| header("timestamp_header", t));

    let prefix = section.signature_prefix.clone().filter(|p| !p.is_empty());
    if prefix.as_deref().is_some_and(|p| !is_visible_ascii(p)) {
        problems.push("custom.signature_prefix must be printable ASCII without spaces".into());
    }
    check_separator(section, prefix.as_deref(), &mut problems);

    let template = match parse_template(&section.signed_content) {
        Ok(parts) => parts,
        Err(problem) => {
            problems.push(format!("custom.signed_content: {problem}"));
            Vec::new()
        }
    };

    let timestamp = match (timestamp_header, section.timestamp_format) {
        (Some(header), Some(format)) => header.map(|header| TimestampSpec { header, format }),
        (Some(_), None) => {
            problems.push(
                "custom.timestamp_header needs custom.timestamp_format \
                 (unix, unix_ms or rfc3339)"
                    .into(),
            );
            None
        }
        (None, Some(_)) => {
            problems.push("custom.timestamp_format is set without custom.timestamp_header".into());
            None
        }
        (None, None) => None,
    };
    let signs_timestamp = template.contains(&TemplatePart::Timestamp);
    if section.timestamp_header.is_some() && !signs_timestamp && !template.is_empty() {
        problems.push(
            "custom.signed_content must include {timestamp} when custom.timestamp_header is \
             set: an unsigned timestamp proves nothing"
                .into(),
        );
    }
    if section.timestamp_header.is_none() && signs_timestamp {
        problems
            .push("custom.signed_content uses {timestamp} but no timestamp_header is set".into());
    }

    let id_sources = check_id_sources(&section.id_sources, &mut problems);
    if template.contains(&TemplatePart::Id) && section.id_sources.is_empty() {
        problems.push("custom.signed_content uses {id} but custom.id_sources is empty".into());
    }

    match (signature_header, event_header) {
        (Some(signature_header), event_header) if problems.is_empty() => Ok(CustomScheme {
            signature_header,
            prefix,
            encoding: section.encoding,
            separator: section.separator.clone(),
            template,
            timestamp,
            id_sources,
            algorithm: section.algorithm,
            event_header: event_header.flatten(),
            key_form: match section.secret_format {
                SecretFormat::Raw => KeyForm::Raw,
                SecretFormat::Whsec => KeyForm::Whsec,
            },
        }),
        _ => Err(problems),
    }
}

fn is_visible_ascii(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_graphic())
}

/// A separator must split signatures without cutting one: never a character a digest or
/// the prefix may hold.
fn check_separator(section: &CustomSection, prefix: Option<&str>, problems: &mut Vec<String>) {
    let Some(separator) = section.separator.as_deref() else {
        return;
    };
    if separator.is_empty() || separator.chars().any(char::is_control) {
        problems
            .push("custom.separator must be non-empty printable text, e.g. \",\" or \" \"".into());
        return;
    }
    let in_digest = |c: char| match section.encoding {
        Encoding::Hex => c.is_ascii_hexdigit(),
        Encoding::Base64 => c.is_ascii_alphanumeric() || "+/=".contains(c),
    };
    if separator.chars().any(in_digest) {
        problems.push(format!(
            "custom.separator = {separator:?} holds characters that appear in {} digests",
            match section.encoding {
                Encoding::Hex => "hex",
                Encoding::Base64 => "base64",
            }
        ));
    }
    if prefix.is_some_and(|p| p.contains(separator)) {
        problems.push(format!(
            "custom.separator = {separator:?} appears inside custom.signature_prefix"
        ));
    }
}

fn check_id_sources(sources: &[String], problems: &mut Vec<String>) -> Vec<IdSpec> {
    let mut specs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        if sources[..i].contains(source) {
            problems.push(format!("custom.id_sources lists {source:?} twice"));
            continue;
        }
        let spec = match source.split_once(':') {
            Some(("header", name)) => HeaderName::from_bytes(name.as_bytes())
                .ok()
                .map(IdSpec::Header),
            Some(("body", field)) if !field.is_empty() && is_visible_ascii(field) => {
                Some(IdSpec::BodyField(field.to_string()))
            }
            _ => None,
        };
        match spec {
            Some(spec) => specs.push(spec),
            None => problems.push(format!(
                "custom.id_sources entry {source:?} must be \"header:<Header-Name>\" or \
                 \"body:<top-level field>\""
            )),
        }
    }
    specs
}

/// Parses signed content such as `{timestamp}.{body}`: the placeholders `{timestamp}`,
/// `{id}` and `{body}` (each at most once, `{body}` exactly once) between literal text;
/// `{{` and `}}` stand for literal braces.
pub fn parse_template(text: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            literal.push('{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            literal.push('}');
            rest = after;
        } else if c == '{' {
            let end = rest
                .find('}')
                .ok_or("an unclosed '{' (write {{ for a literal brace)")?;
            let part = match &rest[1..end] {
                "timestamp" => TemplatePart::Timestamp,
                "id" => TemplatePart::Id,
                "body" => TemplatePart::Body,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} (known: {{timestamp}}, {{id}}, {{body}})"
                    ))
                }
            };
            if parts.contains(&part) {
                return Err(format!("{} appears twice", &rest[..=end]));
            }
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err("a lone '}' (write }} for a literal brace)".into());
        } else {
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    if !parts.contains(&TemplatePart::Body) {
        return Err(
            "must include {body}: a signature that does not cover the body proves \
                    nothing about it"
                .into(),
        );
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
