//! The one result every request ends in.
//!
//! An [`Outcome`] knows its HTTP status, its JSON error code and its metric label, so the
//! three can never disagree: a new refusal is added here and nowhere else. It deliberately
//! knows nothing about HTTP servers; the proxy turns it into bytes.

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Verified and handed to the app; the app's own answer went back.
    Forwarded,
    /// A repeat of an event the app already accepted; answered without the app.
    Duplicate,
    /// A request on no route, passed to the app unverified (`unmatched = "forward"`).
    Passthrough,
    /// No signature header.
    MissingSignature,
    /// No timestamp header.
    MissingTimestamp,
    /// No event type header.
    MissingEvent,
    /// The digest did not match, or the signature header was malformed.
    InvalidSignature,
    /// The signed time is older than the route's tolerance.
    TimestampTooOld,
    /// The signed time is further ahead of our clock than the tolerance.
    TimestampInFuture,
    /// The timestamp could not be read, or several different ones were sent.
    InvalidTimestamp,
    /// The event id in the body cannot be carried safely (too long or control characters).
    InvalidEventId,
    /// The event type is not in the route's allowlist.
    EventNotAllowed,
    /// A protected route was called with a method other than POST.
    MethodNotAllowed,
    /// The body is larger than the route allows.
    PayloadTooLarge,
    /// The client did not send its body in time.
    RequestTimeout,
    /// Ambiguous or broken message framing (for example Content-Length with
    /// Transfer-Encoding, or a bad chunk).
    InvalidFraming,
    /// No route matches the path.
    NoRoute,
    /// The app could not be reached, or broke the connection.
    UpstreamUnavailable,
    /// The app did not answer in time.
    UpstreamTimeout,
    /// A copy of this event is with the app right now; retry later.
    InFlight,
    /// The replay store failed; nothing was forwarded without a record.
    StoreUnavailable,
}

impl Outcome {
    /// Every outcome, so that metrics can start each label combination at zero.
    pub const ALL: [Outcome; 21] = [
        Outcome::Forwarded,
        Outcome::Duplicate,
        Outcome::Passthrough,
        Outcome::MissingSignature,
        Outcome::MissingTimestamp,
        Outcome::MissingEvent,
        Outcome::InvalidSignature,
        Outcome::TimestampTooOld,
        Outcome::TimestampInFuture,
        Outcome::InvalidTimestamp,
        Outcome::InvalidEventId,
        Outcome::EventNotAllowed,
        Outcome::MethodNotAllowed,
        Outcome::PayloadTooLarge,
        Outcome::RequestTimeout,
        Outcome::InvalidFraming,
        Outcome::NoRoute,
        Outcome::UpstreamUnavailable,
        Outcome::UpstreamTimeout,
        Outcome::InFlight,
        Outcome::StoreUnavailable,
    ];

    /// The status and JSON `error` code of a refusal; `None` for outcomes whose answer
    /// comes from the app or is the duplicate acknowledgement.
    pub fn refusal(self) -> Option<(u16, &'static str)> {
        let refusal = match self {
            Outcome::Forwarded | Outcome::Duplicate | Outcome::Passthrough => return None,
            Outcome::MissingSignature => (401, "missing_signature"),
            Outcome::MissingTimestamp => (401, "missing_timestamp"),
            Outcome::MissingEvent => (401, "missing_event"),
            Outcome::InvalidSignature => (401, "invalid_signature"),
            Outcome::TimestampTooOld => (401, "timestamp_too_old"),
            Outcome::TimestampInFuture => (401, "timestamp_in_future"),
            Outcome::InvalidTimestamp => (401, "invalid_timestamp"),
            Outcome::InvalidEventId => (400, "invalid_event_id"),
            Outcome::EventNotAllowed => (422, "event_not_allowed"),
            Outcome::MethodNotAllowed => (405, "method_not_allowed"),
            Outcome::PayloadTooLarge => (413, "payload_too_large"),
            Outcome::RequestTimeout => (408, "request_timeout"),
            Outcome::InvalidFraming => (400, "invalid_framing"),
            Outcome::NoRoute => (404, "no_route"),
            Outcome::UpstreamUnavailable => (502, "upstream_unavailable"),
            Outcome::UpstreamTimeout => (504, "upstream_timeout"),
            Outcome::InFlight => (503, "in_flight"),
            Outcome::StoreUnavailable => (503, "store_unavailable"),
        };
        Some(refusal)
    }

    /// The value of the `outcome` metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Duplicate => "duplicate",
            Outcome::Passthrough => "passthrough",
            other => other.refusal().map(|(_, code)| code).unwrap_or("unknown"),
        }
    }

    /// Whether the sender should try again later (a 5xx or 408 answer).
    pub fn is_retryable(self) -> bool {
        self.refusal()
            .is_some_and(|(status, _)| status >= 500 || status == 408)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn labels_are_unique_and_codes_match_labels() {
        let labels: HashSet<_> = Outcome::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), Outcome::ALL.len());
        for outcome in Outcome::ALL {
            if let Some((_, code)) = outcome.refusal() {
                assert_eq!(outcome.label(), code);
            }
        }
    }

    #[test]
    fn scheme_doc_codes_are_401() {
        assert_eq!(
            Outcome::InvalidSignature.refusal(),
            Some((401, "invalid_signature"))
        );
        assert_eq!(
            Outcome::TimestampTooOld.refusal(),
            Some((401, "timestamp_too_old"))
        );
        assert!(Outcome::InFlight.is_retryable());
        assert!(!Outcome::InvalidSignature.is_retryable());
    }
}
