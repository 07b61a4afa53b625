//! Finding a delivery's event id: in the body's top-level fields, then in a header.
//!
//! The body is parsed only to read the id, after verification and never to forward:
//! the app gets the raw bytes.

use std::fmt;

use super::{VerifyError, MAX_EVENT_ID_BYTES};

/// Where an event id came from; sent to the app as a trusted header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// The body's top-level `id`.
    BodyId,
    /// The body's top-level `event_id`.
    BodyEventId,
    /// The delivery id header (not signed: exact replays are caught by the digest).
    Header,
    /// None was given; the id is derived from the signature digest.
    Signature,
}

impl IdSource {
    /// The header value naming this source.
    pub fn as_str(self) -> &'static str {
        match self {
            IdSource::BodyId => "body.id",
            IdSource::BodyEventId => "body.event_id",
            IdSource::Header => "header",
            IdSource::Signature => "signature",
        }
    }
}

impl fmt::Display for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event id: body `id`, body `event_id`, then `header`, then the digest.
pub fn find(
    body: &[u8],
    header: Option<&str>,
    digest: &[u8; 32],
) -> Result<(String, IdSource), VerifyError> {
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            let object = value.as_object()?;
            [
                ("id", IdSource::BodyId),
                ("event_id", IdSource::BodyEventId),
            ]
            .into_iter()
            .find_map(|(field, source)| Some((scalar(object.get(field)?)?, source)))
        });

    let (id, source) = match (from_body, header.map(str::trim).filter(|h| !h.is_empty())) {
        (Some(found), _) => found,
        (None, Some(header)) => (header.to_string(), IdSource::Header),
        (None, None) => (format!("sig:{}", hex::encode(digest)), IdSource::Signature),
    };

    let printable = id.chars().all(|c| !c.is_control());
    if id.is_empty() || id.len() > MAX_EVENT_ID_BYTES || !printable {
        return Err(VerifyError::InvalidEventId);
    }
    Ok((id, source))
}

/// A string or number id as text; anything else does not count as an id.
fn scalar(value: &serde_json::Value) -> Option<String> {
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
