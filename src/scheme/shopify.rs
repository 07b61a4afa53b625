//! Shopify: `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 of the raw body.
//!
//! Like GitHub, Shopify signs no timestamp: replays are bounded only by de-duplication on
//! `X-Shopify-Webhook-Id`, bound to the digest. `X-Shopify-Topic` is the event type and
//! is required.

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

use super::{custom, Claims, VerifyError, Window};
use crate::config::{Algorithm, CustomScheme, Encoding, IdSpec, KeyForm, Secret, TemplatePart};

/// Signature header (base64).
pub const SIGNATURE: &str = "x-shopify-hmac-sha256";
/// Event type header.
pub const TOPIC: &str = "x-shopify-topic";
/// Webhook id header.
pub const WEBHOOK_ID: &str = "x-shopify-webhook-id";

/// The scheme, as the engine runs it.
pub fn spec() -> &'static CustomScheme {
    static SPEC: LazyLock<CustomScheme> = LazyLock::new(|| CustomScheme {
        signature_header: HeaderName::from_static(SIGNATURE),
        prefix: None,
        encoding: Encoding::Base64,
        separator: None,
        template: vec![TemplatePart::Body],
        timestamp: None,
        id_sources: vec![IdSpec::Header(HeaderName::from_static(WEBHOOK_ID))],
        algorithm: Algorithm::Sha256,
        event_header: Some(HeaderName::from_static(TOPIC)),
        key_form: KeyForm::Raw,
    });
    &SPEC
}

/// Verifies a Shopify webhook; `window` is unused, Shopify signs no time.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    custom::verify(spec(), headers, body, secrets, window, now)
}

/// The `X-Shopify-Hmac-Sha256` value a sender puts on `body`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    custom::sign(spec(), key, "", "", body)
}

#[cfg(test)]
mod tests;
