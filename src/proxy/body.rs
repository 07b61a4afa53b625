//! Reading a request body whole, within the route's size limit and the server's deadline,
//! and spotting framing that two parsers could read differently.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::protocols::http::ServerSession;
use pingora::ErrorType;

use crate::outcome::Outcome;

/// Most header lines we look at when checking framing; pingora itself accepts no more.
const MAX_HEADER_LINES: usize = 256;

/// Whether the request's framing is ambiguous: Content-Length together with
/// Transfer-Encoding (pingora quietly drops the Content-Length; an app behind another
/// proxy might not), a transfer coding other than plain `chunked` (the bytes we verify
/// would not be the bytes the sender meant), or headers we cannot re-read.
pub fn framing_is_ambiguous(session: &ServerSession) -> bool {
    let Some(h1) = session.as_http1() else {
        return false;
    };
    let raw = h1.get_headers_raw_bytes();
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADER_LINES];
    let mut request = httparse::Request::new(&mut lines);
    if !matches!(request.parse(&raw), Ok(httparse::Status::Complete(_))) {
        return true;
    }

    let named = |name: &'static str| {
        request
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let lengths = named("content-length").count();
    let codings: Vec<Vec<u8>> = named("transfer-encoding")
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(|coding| coding.trim_ascii().to_ascii_lowercase())
        .collect();
    let plain_chunked = codings.is_empty() || codings == [b"chunked".to_vec()];
    (lengths > 0 && !codings.is_empty()) || !plain_chunked
}

/// How long a client may take with its body.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// Longest pause between two reads.
    pub stall: Duration,
    /// Longest time for the whole body.
    pub deadline: Duration,
}

/// Reads the whole body. Refuses a declared length over `max_bytes` before reading, a
/// chunked body as soon as it passes `max_bytes`, and a client that pauses or takes
/// longer than `patience` allows. Answers `Expect: 100-continue` only once the size is
/// known to be fine.
pub async fn read_whole(
    session: &mut ServerSession,
    max_bytes: u64,
    patience: Patience,
) -> Result<Bytes, Outcome> {
    let declared = declared_length(session)?;
    if declared.is_some_and(|len| len > max_bytes) {
        return Err(Outcome::PayloadTooLarge);
    }

    if expects_continue(session) {
        session
            .write_continue_response()
            .await
            .map_err(|_| Outcome::InvalidFraming)?;
    }

    let capacity = declared.unwrap_or(0).min(max_bytes) as usize;
    let mut body = BytesMut::with_capacity(capacity);
    let until = tokio::time::Instant::now() + patience.deadline;
    loop {
        let next = until.min(tokio::time::Instant::now() + patience.stall);
        let chunk = match tokio::time::timeout_at(next, session.read_request_body()).await {
            Err(_) => return Err(Outcome::RequestTimeout),
            Ok(Err(e)) if matches!(e.etype(), ErrorType::ReadTimedout) => {
                return Err(Outcome::RequestTimeout)
            }
            Ok(Err(_)) => return Err(Outcome::InvalidFraming),
            Ok(Ok(None)) => return Ok(body.freeze()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if (body.len() + chunk.len()) as u64 > max_bytes {
            return Err(Outcome::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
}

fn declared_length(session: &ServerSession) -> Result<Option<u64>, Outcome> {
    let Some(value) = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
    else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| Outcome::InvalidFraming)?;
    text.trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| Outcome::InvalidFraming)
}

fn expects_continue(session: &ServerSession) -> bool {
    session
        .req_header()
        .headers
        .get_all(http::header::EXPECT)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}
