//! Finding a delivery's event id and event type, and keeping both fit for a header.
//!
//! The body is parsed only to read them, after verification and never to forward: the
//! app gets the raw bytes. Both values become trusted headers, so neither may hold a
//! control character.

use std::fmt;

use super::{VerifyError, MAX_EVENT_ID_BYTES};

/// The longest event type we carry, in bytes.
const MAX_EVENT_BYTES: usize = 256;

/// Where an event id came from; sent to the app as a trusted header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// The body's top-level `id`.
    BodyId,
    /// The body's top-level `event_id`.
    BodyEventId,
    /// Another top-level body field (or form field), named.
    BodyField(String),
    /// The delivery id header (not signed: exact replays are caught by the digest).
    Header,
    /// None was given; the id is derived from the signature digest.
    Signature,
}

impl IdSource {
    /// The source of a top-level body field's value.
    pub fn body(field: &str) -> IdSource {
        match field {
            "id" => IdSource::BodyId,
            "event_id" => IdSource::BodyEventId,
            other => IdSource::BodyField(other.to_string()),
        }
    }
}

impl fmt::Display for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSource::BodyId => f.write_str("body.id"),
            IdSource::BodyEventId => f.write_str("body.event_id"),
            IdSource::BodyField(field) => write!(f, "body.{field}"),
            IdSource::Header => f.write_str("header"),
            IdSource::Signature => f.write_str("signature"),
        }
    }
}

/// The event id: body `id`, body `event_id`, then `header`, then the digest.
pub fn find(
    body: &[u8],
    header: Option<&str>,
    digest: &[u8],
) -> Result<(String, IdSource), VerifyError> {
    let json = json_object(body);
    let from_body = ["id", "event_id"].into_iter().find_map(|field| {
        let value = scalar(json.as_ref()?.get(field)?)?;
        Some((value, IdSource::body(field)))
    });
    let from_header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| (h.to_string(), IdSource::Header));
    finish(from_body.or(from_header), digest)
}

/// The event id found, or `sig:<hex digest>` when none was; refused when it cannot be
/// carried (empty, longer than [`MAX_EVENT_ID_BYTES`], or holding a control character).
pub fn finish(
    found: Option<(String, IdSource)>,
    digest: &[u8],
) -> Result<(String, IdSource), VerifyError> {
    let (id, source) =
        found.unwrap_or_else(|| (format!("sig:{}", hex::encode(digest)), IdSource::Signature));
    let printable = id.chars().all(|c| !c.is_control());
    if id.is_empty() || id.len() > MAX_EVENT_ID_BYTES || !printable {
        return Err(VerifyError::InvalidEventId);
    }
    Ok((id, source))
}

/// The body as a JSON object, if it is one.
pub fn json_object(body: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Object(object) => Some(object),
        _ => None,
    }
}

/// An event type fit for a header: blanks around it removed, non-empty, at most 256
/// bytes, no control characters. Anything else counts as no event type.
pub fn clean_event(value: &str) -> Option<String> {
    let value = value.trim_matches([' ', '\t']);
    let fits =
        !value.is_empty() && value.len() <= MAX_EVENT_BYTES && !value.chars().any(char::is_control);
    fits.then(|| value.to_string())
}

/// A string or number id as text; anything else does not count as an id.
pub fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: [u8; 32] = [0xab; 32];

    #[test]
    fn precedence_is_id_then_event_id_then_header_then_digest() {
        let both = br#"{"event_id":"e-2","id":"i-1"}"#;
        assert_eq!(
            find(both, Some("h"), &D).unwrap(),
            ("i-1".into(), IdSource::BodyId)
        );
        let ev = br#"{"event_id":"e-2"}"#;
        assert_eq!(
            find(ev, Some("h"), &D).unwrap(),
            ("e-2".into(), IdSource::BodyEventId)
        );
        assert_eq!(
            find(b"{}", Some(" h-3 "), &D).unwrap(),
            ("h-3".into(), IdSource::Header)
        );
        let (id, source) = find(b"not json", None, &D).unwrap();
        assert_eq!(source, IdSource::Signature);
        assert_eq!(id, format!("sig:{}", "ab".repeat(32)));
    }

    #[test]
    fn numeric_ids_count_and_nested_ones_do_not() {
        assert_eq!(find(br#"{"id":42}"#, None, &D).unwrap().0, "42");
        let nested = br#"{"data":{"id":"x"},"id":null}"#;
        assert_eq!(find(nested, Some("h"), &D).unwrap().1, IdSource::Header);
    }

    #[test]
    fn events_are_trimmed_and_unprintable_ones_dropped() {
        assert_eq!(clean_event(" push\t").as_deref(), Some("push"));
        assert_eq!(clean_event(" "), None);
        assert_eq!(clean_event("a\u{7f}b"), None);
        assert_eq!(clean_event(&"e".repeat(257)), None);
        assert_eq!(IdSource::body("trigger_id").to_string(), "body.trigger_id");
        assert_eq!(IdSource::body("id"), IdSource::BodyId);
    }

    #[test]
    fn unprintable_or_long_ids_are_refused() {
        assert_eq!(
            find(br#"{"id":"a\nb"}"#, None, &D),
            Err(VerifyError::InvalidEventId)
        );
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_EVENT_ID_BYTES + 1));
        assert_eq!(
            find(long.as_bytes(), None, &D),
            Err(VerifyError::InvalidEventId)
        );
    }
}
