//! Sending a verified request to the app through pingora's connector, and relaying the
//! app's answer.
//!
//! pingora cannot forward a body its request filter has already read (beyond a 64 KiB
//! retry buffer; pingora issues #191 and #349), so verified requests are sent here with
//! the stock HTTP connector rather than through pingora's proxy phases.

use std::time::Duration;

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::ServerSession;
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;

use crate::outcome::Outcome;

/// How long an idle connection to the app is kept for reuse: below the 5 s keep-alive
/// timeout common in app servers (Node.js, gunicorn), so the app rarely closes one under
/// us just as we reuse it.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// The app's side: where it is, how long we wait for it, and pooled connections to it.
pub struct Upstream {
    connector: Connector,
    peer: HttpPeer,
    timeout: Duration,
}

/// How a forward went wrong, before any answer was relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// Connecting, writing or reading failed.
    Unavailable,
    /// The app took longer than the timeout.
    Timeout,
}

impl ForwardError {
    /// The outcome the sender is told.
    pub fn outcome(self) -> Outcome {
        match self {
            ForwardError::Unavailable => Outcome::UpstreamUnavailable,
            ForwardError::Timeout => Outcome::UpstreamTimeout,
        }
    }
}

/// An answer from the app whose header has arrived and whose body is still to relay.
pub struct Answer {
    session: HttpSession,
    header: ResponseHeader,
}

impl Upstream {
    /// Prepares the app's address and per-operation timeouts; pingora sets none itself.
    pub fn new(host: &str, port: u16, timeout: Duration) -> Self {
        let mut peer = HttpPeer::new((host, port), false, String::new());
        peer.options.connection_timeout = Some(timeout.min(Duration::from_secs(5)));
        peer.options.total_connection_timeout = Some(timeout.min(Duration::from_secs(5)));
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        peer.options.idle_timeout = Some(POOL_IDLE);
        Upstream {
            connector: Connector::new(None),
            peer,
            timeout,
        }
    }

    /// The peer, for pingora's own proxying of unverified passthrough requests.
    pub fn peer(&self) -> &HttpPeer {
        &self.peer
    }

    /// Sends the request and waits for the app's response header, within the timeout.
    pub async fn send(&self, request: RequestHeader, body: Bytes) -> Result<Answer, ForwardError> {
        match tokio::time::timeout(self.timeout, self.exchange(request, body)).await {
            Err(_) => Err(ForwardError::Timeout),
            Ok(result) => result,
        }
    }

    async fn exchange(&self, request: RequestHeader, body: Bytes) -> Result<Answer, ForwardError> {
        // A pooled connection may have been closed by the app since its last use; that is
        // only found out by using it, so one fresh connection is tried after such a failure.
        for attempt in 0..2 {
            let (mut session, reused) = self
                .connector
                .get_http_session(&self.peer)
                .await
                .map_err(|e| classify(&e))?;
            session.set_read_timeout(Some(self.timeout));
            session.set_write_timeout(Some(self.timeout));
            match round_trip(&mut session, request.clone(), body.clone()).await {
                Ok(header) => return Ok(Answer { session, header }),
                Err(e) if reused && attempt == 0 && is_stale_connection(&e) => continue,
                Err(e) => return Err(classify(&e)),
            }
        }
        Err(ForwardError::Unavailable)
    }

    /// Relays the answer's header and body to the sender, then returns the connection to
    /// the pool if it can be reused. Returns false if the app broke off mid-body.
    pub async fn relay(&self, mut answer: Answer, downstream: &mut ServerSession) -> bool {
        let header = super::headers::relayed_response(&answer.header);
        if downstream
            .write_response_header(Box::new(header))
            .await
            .is_err()
        {
            return true;
        }

        let mut complete = true;
        loop {
            match answer.session.read_response_body().await {
                Ok(Some(chunk)) => {
                    if downstream.write_response_body(chunk, false).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    complete = false;
                    downstream.set_keepalive(None);
                    break;
                }
            }
        }
        let _ = downstream.write_response_body(Bytes::new(), true).await;

        if complete && answer.session.response_done() {
            self.connector
                .release_http_session(answer.session, &self.peer, Some(POOL_IDLE))
                .await;
        } else {
            answer.session.shutdown().await;
        }
        complete
    }
}

impl Answer {
    /// The app's status code.
    pub fn status(&self) -> http::StatusCode {
        self.header.status
    }
}

async fn round_trip(
    session: &mut HttpSession,
    request: RequestHeader,
    body: Bytes,
) -> pingora::Result<ResponseHeader> {
    session.write_request_header(Box::new(request)).await?;
    session.write_request_body(body, true).await?;
    session.finish_request_body().await?;
    loop {
        session.read_response_header().await?;
        let header = session
            .response_header()
            .ok_or_else(|| pingora::Error::explain(ErrorType::InvalidHTTPHeader, "no header"))?;
        // 1xx answers are interim; the real one follows on the same connection.
        if !header.status.is_informational() {
            return Ok(header.clone());
        }
    }
}

fn is_stale_connection(e: &pingora::Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
    )
}

fn classify(e: &pingora::Error) -> ForwardError {
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            ForwardError::Timeout
        }
        _ => ForwardError::Unavailable,
    }
}
