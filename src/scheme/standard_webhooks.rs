//! Standard Webhooks: `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`, a space-separated list of `v1,<base64>` over
//! `id.timestamp.body`.
//!
//! The route's `whsec_<base64>` secrets arrive here already decoded (the config does
//! that). A signature that decodes to anything but 32 bytes never matches, whatever it
//! starts with: one reference library once compared only the shorter length. Entries of
//! other versions (`v1a,` for asymmetric keys) are skipped. The event type is the JSON
//! body's top-level `type`.

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

use super::{custom, event_id, Claims, VerifyError, Window};
use crate::config::{
    Algorithm, CustomScheme, Encoding, IdSpec, KeyForm, Secret, TemplatePart, TimestampFormat,
    TimestampSpec,
};

/// Message id header; signed, and the event id.
pub const ID: &str = "webhook-id";
/// Timestamp header, Unix seconds.
pub const TIMESTAMP: &str = "webhook-timestamp";
/// Signature list header.
pub const SIGNATURE: &str = "webhook-signature";
/// Text before each base64 digest.
pub const PREFIX: &str = "v1,";

/// The scheme, as the engine runs it.
pub fn spec() -> &'static CustomScheme {
    static SPEC: LazyLock<CustomScheme> = LazyLock::new(|| CustomScheme {
        signature_header: HeaderName::from_static(SIGNATURE),
        prefix: Some(PREFIX.into()),
        encoding: Encoding::Base64,
        separator: Some(" ".into()),
        template: vec![
            TemplatePart::Id,
            TemplatePart::Literal(".".into()),
            TemplatePart::Timestamp,
            TemplatePart::Literal(".".into()),
            TemplatePart::Body,
        ],
        timestamp: Some(TimestampSpec {
            header: HeaderName::from_static(TIMESTAMP),
            format: TimestampFormat::Unix,
        }),
        id_sources: vec![IdSpec::Header(HeaderName::from_static(ID))],
        algorithm: Algorithm::Sha256,
        event_header: None,
        key_form: KeyForm::Whsec,
    });
    &SPEC
}

/// Verifies a Standard Webhooks message. A missing `webhook-id` is `invalid_event_id`:
/// it is signed, so nothing can be checked without it.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    let mut claims = custom::verify(spec(), headers, body, secrets, window, now)?;
    claims.event = event_id::json_object(body)
        .and_then(|object| event_id::clean_event(object.get("type")?.as_str()?));
    Ok(claims)
}

/// The `webhook-signature` value a sender puts on a message: `v1,<base64>`.
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    custom::sign(spec(), key, timestamp, id, body)
}

#[cfg(test)]
mod tests;
