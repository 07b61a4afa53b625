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
    let retry_after = matches!(outcome, Outcome::InFlight | Outcome::StoreUnavailable);
    write_json(session, status, body, retry_after).await;
}

/// Writes the acknowledgement of an event the app already accepted.
pub async fn duplicate(session: &mut ServerSession, event_id: &str) {
    let body = serde_json::json!({
        "ok": true,
        "already_processed": true,
        "event_id": event_id,
    })
    .to_string();
    write_json(session, 200, body, false).await;
}

async fn write_json(session: &mut ServerSession, status: u16, body: String, retry_after: bool) {
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
    if retry_after {
        let _ = header.insert_header("Retry-After", RETRY_AFTER_SECONDS);
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
