//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body.
//!
//! GitHub signs no timestamp, so a captured delivery never goes stale: replays are
//! bounded only by de-duplication on `X-GitHub-Delivery`, bound to the signature digest
//! (the store remembers both). The legacy `X-Hub-Signature` (HMAC-SHA1) is never read:
//! a request that carries only it has no signature. `X-GitHub-Event` is required.

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName};
use time::OffsetDateTime;

use super::{custom, Claims, VerifyError, Window};
use crate::config::{Algorithm, CustomScheme, Encoding, IdSpec, KeyForm, Secret, TemplatePart};

/// Signature header (HMAC-SHA256).
pub const SIGNATURE: &str = "x-hub-signature-256";
/// The legacy HMAC-SHA1 signature header, never accepted alone.
pub const LEGACY_SIGNATURE: &str = "x-hub-signature";
/// Event type header.
pub const EVENT: &str = "x-github-event";
/// Delivery id header.
pub const DELIVERY: &str = "x-github-delivery";
/// Text before the hex digest.
pub const PREFIX: &str = "sha256=";

/// The scheme, as the engine runs it.
pub fn spec() -> &'static CustomScheme {
    static SPEC: LazyLock<CustomScheme> = LazyLock::new(|| CustomScheme {
        signature_header: HeaderName::from_static(SIGNATURE),
        prefix: Some(PREFIX.into()),
        encoding: Encoding::Hex,
        separator: None,
        template: vec![TemplatePart::Body],
        timestamp: None,
        id_sources: vec![IdSpec::Header(HeaderName::from_static(DELIVERY))],
        algorithm: Algorithm::Sha256,
        event_header: Some(HeaderName::from_static(EVENT)),
        key_form: KeyForm::Raw,
    });
    &SPEC
}

/// Verifies a GitHub delivery; `window` is unused, GitHub signs no time.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    custom::verify(spec(), headers, body, secrets, window, now)
}

/// The `X-Hub-Signature-256` value a sender puts on `body`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    custom::sign(spec(), key, "", "", body)
}

#[cfg(test)]
mod tests;
