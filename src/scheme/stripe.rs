//! Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` over `t.body`.
//!
//! Only `v1` entries count (`v0` is a test-mode scheme Stripe no longer recommends, and
//! anything else is unknown). The key is the endpoint secret exactly as Stripe shows it,
//! `whsec_` included. The event id is the body's `id` and the event type its `type`.
//! Stripe does not fit the engine (its timestamp lives inside the signature header), so
//! it parses its header here and shares the engine's timestamp and digest helpers.

use http::HeaderMap;
use time::OffsetDateTime;

use super::custom::{self, trim_ows, Verified};
use super::digest::{find_signer, hmac_sha256, MAX_CANDIDATES};
use super::event_id::{self, IdSource};
use super::{Claims, VerifyError, Window};
use crate::config::{Algorithm, Secret, TimestampFormat};

/// Signature header.
pub const SIGNATURE: &str = "stripe-signature";

/// Verifies a Stripe event.
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
    let parsed = parse(headers);
    let timestamp = single(&parsed.timestamps)?;
    let signed_at = custom::parse_timestamp(timestamp, TimestampFormat::Unix)?;
    window.check(signed_at, now)?;

    let parts: [&[u8]; 3] = [timestamp.as_bytes(), b".", body];
    let (key_index, digest) = find_signer(secrets, Algorithm::Sha256, &parts, &parsed.v1)
        .ok_or(VerifyError::InvalidSignature)?;

    let object = event_id::json_object(body);
    let field = |name: &str| object.as_ref()?.get(name);
    let id = field("id")
        .and_then(event_id::scalar)
        .map(|id| (id, IdSource::BodyId));
    let event = field("type").and_then(|t| event_id::clean_event(t.as_str()?));
    Verified {
        key_index,
        digest,
        signed_at: Some(signed_at),
        id,
        event,
    }
    .into_claims()
}

/// The `Stripe-Signature` value Stripe puts on an event: `t=<timestamp>,v1=<hex>`.
pub fn sign(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let digest = hmac_sha256(key, &[timestamp.as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// The `t` and `v1` entries of every `Stripe-Signature` line.
struct Parsed<'h> {
    timestamps: Vec<&'h str>,
    v1: Vec<Vec<u8>>,
}

fn parse(headers: &HeaderMap) -> Parsed<'_> {
    let mut parsed = Parsed {
        timestamps: Vec::new(),
        v1: Vec::new(),
    };
    let entries = headers
        .get_all(SIGNATURE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| trim_ows(entry).split_once('='));
    for (key, value) in entries {
        match key {
            "t" => parsed.timestamps.push(trim_ows(value)),
            "v1" if parsed.v1.len() < MAX_CANDIDATES => {
                // Malformed hex cannot match, so it is skipped.
                parsed.v1.extend(hex::decode(trim_ows(value)));
            }
            _ => {}
        }
    }
    parsed
}

/// The one `t` value: none is a missing timestamp, two different ones are ambiguous.
fn single<'h>(timestamps: &[&'h str]) -> Result<&'h str, VerifyError> {
    let first = *timestamps.first().ok_or(VerifyError::MissingTimestamp)?;
    if timestamps.iter().any(|t| *t != first) {
        return Err(VerifyError::InvalidTimestamp);
    }
    Ok(first)
}

#[cfg(test)]
mod tests;
