//! Signature schemes: pure functions from a request's headers and raw body to verified
//! claims, or to the precise reason for refusing it.
//!
//! Nothing here does I/O or reads the clock: the time is passed in, so every edge of the
//! freshness window can be tested exactly. Each sender's scheme lives in its own module;
//! those that fit are a constant [`crate::config::CustomScheme`] run by the same engine
//! as the configurable `custom` scheme ([`custom`]). Refusals of every scheme share the
//! codes of [`VerifyError`].

pub mod aj;
pub mod custom;
mod digest;
mod event_id;
pub mod github;
pub mod shopify;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;
#[cfg(test)]
mod testing;

use std::time::Duration;

use http::HeaderMap;
use time::OffsetDateTime;

use crate::config::{Route, SchemeKind};
use crate::outcome::Outcome;

pub use digest::{digests_equal, hmac, hmac_sha256, hmac_sha256_hex};
pub use event_id::IdSource;

/// The longest event id we carry (store key and trusted header), in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 256;

/// What a verified request proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The event type, e.g. `status_change`, when the scheme carries one.
    pub event: Option<String>,
    /// The event id used for de-duplication.
    pub event_id: String,
    /// Where the event id came from.
    pub id_source: IdSource,
    /// The signed time, when the scheme signs one.
    pub signed_at: Option<OffsetDateTime>,
    /// The digest that matched: identical only for an exact replay of the same signed bytes.
    pub digest: Vec<u8>,
    /// Position of the secret that verified, in the route's list.
    pub key_index: usize,
}

/// Why a request was refused. Carries nothing a sender could use to forge: never the
/// expected digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No signature header.
    #[error("no signature header")]
    MissingSignature,
    /// No timestamp header.
    #[error("no timestamp header")]
    MissingTimestamp,
    /// No event type header.
    #[error("no event type header")]
    MissingEvent,
    /// No signature matched.
    #[error("no signature matched")]
    InvalidSignature,
    /// Older than the tolerance.
    #[error("timestamp older than the tolerance")]
    TimestampTooOld,
    /// Ahead of our clock by more than the tolerance.
    #[error("timestamp ahead of our clock by more than the tolerance")]
    TimestampInFuture,
    /// Unreadable, or several different timestamps.
    #[error("timestamp unreadable or ambiguous")]
    InvalidTimestamp,
    /// The event id cannot be carried (too long, or control characters), or an id the
    /// scheme signs is missing.
    #[error("event id missing where signed, too long, or not printable")]
    InvalidEventId,
}

impl VerifyError {
    /// The outcome this refusal ends in.
    pub fn outcome(self) -> Outcome {
        match self {
            VerifyError::MissingSignature => Outcome::MissingSignature,
            VerifyError::MissingTimestamp => Outcome::MissingTimestamp,
            VerifyError::MissingEvent => Outcome::MissingEvent,
            VerifyError::InvalidSignature => Outcome::InvalidSignature,
            VerifyError::TimestampTooOld => Outcome::TimestampTooOld,
            VerifyError::TimestampInFuture => Outcome::TimestampInFuture,
            VerifyError::InvalidTimestamp => Outcome::InvalidTimestamp,
            VerifyError::InvalidEventId => Outcome::InvalidEventId,
        }
    }
}

/// How far a signed time may be from our clock, each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Largest accepted age.
    pub past: Duration,
    /// Largest accepted lead over our clock.
    pub future: Duration,
}

impl Window {
    /// The same tolerance both ways.
    pub fn symmetric(tolerance: Duration) -> Self {
        Window {
            past: tolerance,
            future: tolerance,
        }
    }

    /// Checks a signed time against `now`.
    pub fn check(&self, signed_at: OffsetDateTime, now: OffsetDateTime) -> Result<(), VerifyError> {
        let age = now - signed_at;
        if age > self.past {
            return Err(VerifyError::TimestampTooOld);
        }
        if -age > self.future {
            return Err(VerifyError::TimestampInFuture);
        }
        Ok(())
    }
}

/// Verifies a request for `route` at time `now`.
pub fn verify(
    route: &Route,
    headers: &HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    let window = Window {
        past: route.tolerance,
        future: route.tolerance_future,
    };
    let secrets = &route.secrets;
    match route.scheme {
        SchemeKind::Aj => aj::verify(headers, body, secrets, window, now),
        SchemeKind::StandardWebhooks => {
            standard_webhooks::verify(headers, body, secrets, window, now)
        }
        SchemeKind::Stripe => stripe::verify(headers, body, secrets, window, now),
        SchemeKind::Github => github::verify(headers, body, secrets, window, now),
        SchemeKind::Slack => slack::verify(headers, body, secrets, window, now),
        SchemeKind::Shopify => shopify::verify(headers, body, secrets, window, now),
        SchemeKind::Custom => match &route.custom {
            Some(spec) => custom::verify(spec, headers, body, secrets, window, now),
            // The config never builds this; refuse rather than wave it through.
            None => Err(VerifyError::InvalidSignature),
        },
    }
}
