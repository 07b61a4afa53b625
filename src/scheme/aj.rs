//! The AJ event bus scheme (`../shared/docs/aj-scheme.md`).
//!
//! `X-AJ-Signature: sha256=<hex>` over `X-AJ-Timestamp + "." + raw body`, an RFC 3339
//! timestamp within the route's tolerance, the event type in `X-AJ-Event`, and an
//! optional delivery id in `X-AJ-Id`.

use http::HeaderMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::digest::{digests_equal, hmac_sha256, MAX_CANDIDATES};
use super::{event_id, Claims, VerifyError, Window};
use crate::config::Secret;

/// Signature header.
pub const SIGNATURE: &str = "x-aj-signature";
/// Timestamp header.
pub const TIMESTAMP: &str = "x-aj-timestamp";
/// Event type header.
pub const EVENT: &str = "x-aj-event";
/// Optional delivery id header.
pub const DELIVERY_ID: &str = "x-aj-id";

/// Verifies an AJ delivery. Checks run cheapest first: headers, then the window, then
/// the digest, then the event id.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    if !headers.contains_key(SIGNATURE) {
        return Err(VerifyError::MissingSignature);
    }
    let timestamp = single_timestamp(headers)?;
    let event = headers
        .get(EVENT)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(trim_ows)
        .filter(|e| !e.is_empty())
        .ok_or(VerifyError::MissingEvent)?;

    let signed_at = parse_timestamp(timestamp)?;
    window.check(signed_at, now)?;

    let candidates = candidate_digests(headers);
    let (key_index, digest) = secrets
        .iter()
        .enumerate()
        .find_map(|(index, secret)| {
            let expected = sign(secret.expose(), timestamp, body);
            candidates
                .iter()
                .any(|c| digests_equal(&expected, c))
                .then_some((index, expected))
        })
        .ok_or(VerifyError::InvalidSignature)?;

    let delivery_id = headers.get(DELIVERY_ID).and_then(|v| v.to_str().ok());
    let (event_id, id_source) = event_id::find(body, delivery_id, &digest)?;
    Ok(Claims {
        event: Some(event.to_string()),
        event_id,
        id_source,
        signed_at: Some(signed_at),
        digest: digest.to_vec(),
        key_index,
    })
}

/// The digest a sender puts after `sha256=`: HMAC-SHA256 of `timestamp.body`.
pub fn sign(key: &[u8], timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[timestamp.as_bytes(), b".", body])
}

/// Parses an RFC 3339 timestamp; offsets and fractional seconds are real instants.
pub fn parse_timestamp(value: &str) -> Result<OffsetDateTime, VerifyError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| VerifyError::InvalidTimestamp)
}

/// The one timestamp of the request. Repeats of the same value are tolerated; different
/// values are ambiguous, since only one of them can have been signed.
fn single_timestamp(headers: &HeaderMap) -> Result<&str, VerifyError> {
    let mut values = headers.get_all(TIMESTAMP).iter();
    let first = values.next().ok_or(VerifyError::MissingTimestamp)?;
    let first = first.to_str().map_err(|_| VerifyError::InvalidTimestamp)?;
    let first = trim_ows(first);
    for other in values {
        if other.to_str().map(trim_ows).ok() != Some(first) {
            return Err(VerifyError::InvalidTimestamp);
        }
    }
    Ok(first)
}

/// Every well-formed `sha256=<hex>` value, from comma-separated lists and repeated
/// header lines. Malformed entries cannot match, so they are skipped.
fn candidate_digests(headers: &HeaderMap) -> Vec<Vec<u8>> {
    headers
        .get_all(SIGNATURE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let item = trim_ows(item);
            let (prefix, digest) = item.split_at_checked(7)?;
            prefix
                .eq_ignore_ascii_case("sha256=")
                .then(|| hex::decode(digest).ok())?
        })
        .take(MAX_CANDIDATES)
        .collect()
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests;
