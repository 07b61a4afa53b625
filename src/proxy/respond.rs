//! The answers hookwarden writes itself: refusals and duplicate acknowledgements, as JSON.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;

use crate::outcome::Outcome;

/// Seconds a sender is asked to wait before retrying a retryable refusal.
const RETRY_AFTER_SECONDS: &str = "5";

/// Writes the refusal for `outcome`: its status and `{"error":"<code>"}`.
pub async fn refusal(session: &mut ServerSession, outcome: Outcome) {
    let Some((status, code)) = outcome.refusal() else {
        return;
    };
    let body = serde_json::json!({ "error": code }).to_string();
    // After a framing, size or timing refusal the rest of the stream cannot be trusted to
    // hold the next request where it seems to.
    if matches!(
        outcome,
        Outcome::InvalidFraming | Outcome::PayloadTooLarge | Outcome::RequestTimeout
    ) {
        session.set_keepalive(None);
    }
    let mut extra = Vec::new();
    if matches!(outcome, Outcome::InFlight | Outcome::StoreUnavailable) {
        extra.push(("Retry-After", RETRY_AFTER_SECONDS));
    }
    if outcome == Outcome::MethodNotAllowed {
        extra.push(("Allow", "POST"));
    }
    write_json(session, status, body, &extra).await;
}

/// Writes the acknowledgement of an event the app already accepted.
pub async fn duplicate(session: &mut ServerSession, event_id: &str) {
    let body = serde_json::json!({
        "ok": true,
        "already_processed": true,
        "event_id": event_id,
    })
    .to_string();
    write_json(session, 200, body, &[]).await;
}

async fn write_json(
    session: &mut ServerSession,
    status: u16,
    body: String,
    extra: &[(&'static str, &'static str)],
) {
    // A body we did not read would be taken for the next request: close instead.
    if !session.is_body_done() {
        session.set_keepalive(None);
    }

    let Ok(mut header) = ResponseHeader::build(status, Some(4)) else {
        return;
    };
    let _ = header.insert_header("Content-Type", "application/json");
    let _ = header.insert_header("Content-Length", body.len().to_string());
    let _ = header.insert_header("Cache-Control", "no-store");
    for (name, value) in extra {
        let _ = header.insert_header(*name, *value);
    }

    // A sender that has gone away cannot be answered; nothing else is lost by it.
    if session
        .write_response_header(Box::new(header))
        .await
        .is_ok()
    {
        let _ = session.write_response_body(Bytes::from(body), true).await;
    }
}
