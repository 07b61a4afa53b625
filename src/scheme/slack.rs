//! Slack: `X-Slack-Signature: v0=<hex>` over `v0:<X-Slack-Request-Timestamp>:<body>`,
//! the timestamp in Unix seconds.
//!
//! Form-encoded bodies (slash commands, interactivity) are verified exactly as received,
//! never decoded and re-encoded. Slack has no delivery id header: the event id is the
//! Events API's `event_id` (the same on Slack's retries), a form's `trigger_id`, or else
//! the digest. The event type is the Events API's inner `event.type` (or the top-level
//! `type`, e.g. `url_verification`), a slash command's `command`, or an interaction
//! payload's `type`.

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

use super::event_id::{self, IdSource};
use super::{custom, Claims, VerifyError, Window};
use crate::config::{
    Algorithm, CustomScheme, Encoding, KeyForm, Secret, TemplatePart, TimestampFormat,
    TimestampSpec,
};

/// Signature header.
pub const SIGNATURE: &str = "x-slack-signature";
/// Timestamp header, Unix seconds.
pub const TIMESTAMP: &str = "x-slack-request-timestamp";
/// Text before the hex digest (the signature version).
pub const PREFIX: &str = "v0=";

/// The scheme, as the engine runs it.
pub fn spec() -> &'static CustomScheme {
    static SPEC: LazyLock<CustomScheme> = LazyLock::new(|| CustomScheme {
        signature_header: HeaderName::from_static(SIGNATURE),
        prefix: Some(PREFIX.into()),
        encoding: Encoding::Hex,
        separator: None,
        template: vec![
            TemplatePart::Literal("v0:".into()),
            TemplatePart::Timestamp,
            TemplatePart::Literal(":".into()),
            TemplatePart::Body,
        ],
        timestamp: Some(TimestampSpec {
            header: HeaderName::from_static(TIMESTAMP),
            format: TimestampFormat::Unix,
        }),
        id_sources: Vec::new(),
        algorithm: Algorithm::Sha256,
        event_header: None,
        key_form: KeyForm::Raw,
    });
    &SPEC
}

/// Verifies a Slack request.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    let mut verified = custom::check(spec(), headers, body, secrets, window, now)?;
    let (id, event) = match event_id::json_object(body) {
        Some(object) => json_fields(&object),
        None => form_fields(body),
    };
    verified.id = id;
    verified.event = event;
    verified.into_claims()
}

/// The `X-Slack-Signature` value Slack puts on a request.
pub fn sign(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    custom::sign(spec(), key, timestamp, "", body)
}

type Fields = (Option<(String, IdSource)>, Option<String>);

/// Events API: `event_id`, and `event.type` or else `type`.
fn json_fields(object: &serde_json::Map<String, serde_json::Value>) -> Fields {
    let id = object
        .get("event_id")
        .and_then(event_id::scalar)
        .map(|id| (id, IdSource::BodyEventId));
    let inner = object.get("event").and_then(|e| e.get("type"));
    let event = inner
        .or_else(|| object.get("type"))
        .and_then(|t| event_id::clean_event(t.as_str()?));
    (id, event)
}

/// Slash commands and interactivity: `trigger_id`, and `command` or the `payload`'s `type`.
fn form_fields(body: &[u8]) -> Fields {
    let mut id = None;
    let mut event = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        match name.as_ref() {
            "trigger_id" if !value.is_empty() => {
                id = Some((value.into_owned(), IdSource::body("trigger_id")));
            }
            "command" => event = event_id::clean_event(&value),
            "payload" if event.is_none() => {
                event = event_id::json_object(value.as_bytes())
                    .and_then(|p| event_id::clean_event(p.get("type")?.as_str()?));
            }
            _ => {}
        }
    }
    (id, event)
}

#[cfg(test)]
mod tests;
