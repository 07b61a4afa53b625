//! The request path: pingora hooks that verify, de-duplicate and forward each webhook.
//!
//! ```text
//! request_filter ─► route? ─► POST? ─► read body ─► verify ─► claim ─► forward ─► commit
//!                     │ no                                     │ dup      │ not 2xx: release
//!                     ▼                                        ▼          ▼
//!             404, or pingora's own proxying       already_processed   app's answer relayed
//! ```
//! Protected routes are answered entirely inside `request_filter`; only unverified
//! passthrough (`unmatched = "forward"`) uses pingora's proxy phases.

mod body;
mod forward;
mod headers;
mod respond;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use time::OffsetDateTime;

use crate::config::{Config, Route, Unmatched};
use crate::outcome::Outcome;
use crate::scheme::{self, Claims};
use crate::store::{self, Claim, Store};
pub use forward::Upstream;

/// The proxy: configuration, store and upstream shared by every request.
pub struct Hookwarden {
    config: Arc<Config>,
    store: Store,
    upstream: Upstream,
    in_flight: Arc<AtomicUsize>,
}

/// Per-request state, for logging. Counts the request as in flight while it lives.
pub struct RequestCtx {
    route: Option<String>,
    outcome: Option<Outcome>,
    event_id: Option<String>,
    started: Instant,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hookwarden {
    /// Builds the proxy over an open store.
    pub fn new(config: Arc<Config>, store: Store, in_flight: Arc<AtomicUsize>) -> Self {
        let up = &config.upstream;
        let upstream = Upstream::new(&up.host, up.port, up.timeout);
        Hookwarden {
            config,
            store,
            upstream,
            in_flight,
        }
    }

    /// Runs a request on a protected route to its outcome, answering the sender.
    async fn deliver(
        &self,
        session: &mut ServerSession,
        route: &Route,
        ctx: &mut RequestCtx,
    ) -> Outcome {
        if session.req_header().method != http::Method::POST {
            return refuse(session, Outcome::MethodNotAllowed).await;
        }

        let server = &self.config.server;
        let body = match body::read_whole(session, route.max_body_bytes, server.body_timeout).await
        {
            Ok(body) => body,
            Err(outcome) => return refuse(session, outcome).await,
        };

        let now = OffsetDateTime::now_utc();
        let claims = match scheme::verify(route, &session.req_header().headers, &body, now) {
            Ok(claims) => claims,
            Err(e) => return refuse(session, e.outcome()).await,
        };
        ctx.event_id = Some(claims.event_id.clone());

        let wait = self.config.upstream.timeout;
        let claim = self
            .store
            .claim_or_wait(
                &route.name,
                &claims.event_id,
                &claims.digest,
                wait,
                store::now_ms,
            )
            .await;
        let ticket = match claim {
            Ok(Claim::Granted(ticket)) => ticket,
            Ok(Claim::Duplicate { event_id }) => {
                respond::duplicate(session, &event_id).await;
                return Outcome::Duplicate;
            }
            Ok(Claim::InFlight) => return refuse(session, Outcome::InFlight).await,
            Err(error) => {
                tracing::warn!(route = %route.name, %error, "replay store failed; refusing");
                return refuse(session, Outcome::StoreUnavailable).await;
            }
        };

        let request = match self.verified_request(session, route, &claims, body.len()) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(route = %route.name, %error, "could not build the app's request");
                return refuse(session, Outcome::UpstreamUnavailable).await;
            }
        };
        let answer = match self.upstream.send(request, body).await {
            Ok(answer) => answer,
            Err(e) => {
                drop(ticket.release());
                tracing::warn!(route = %route.name, outcome = e.outcome().label(), "app did not answer");
                return refuse(session, e.outcome()).await;
            }
        };

        // Only the app's 2xx marks the event processed; anything else leaves it retryable.
        if answer.status().is_success() {
            if let Err(error) = ticket.commit(store::now_ms()).await {
                tracing::warn!(route = %route.name, %error, "could not record a processed event");
                return refuse(session, Outcome::StoreUnavailable).await;
            }
        } else if let Err(error) = ticket.release() {
            tracing::warn!(route = %route.name, %error, "could not release a claim; its lease will lapse");
        }

        if !self.upstream.relay(answer, session).await {
            tracing::warn!(route = %route.name, "app broke off its answer");
        }
        Outcome::Forwarded
    }

    fn verified_request(
        &self,
        session: &ServerSession,
        route: &Route,
        claims: &Claims,
        body_len: usize,
    ) -> pingora::Result<RequestHeader> {
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let prefix = &self.config.server.trusted_header_prefix;
        headers::verified_request(
            session.req_header(),
            route,
            claims,
            body_len,
            client,
            prefix,
        )
    }
}

async fn refuse(session: &mut ServerSession, outcome: Outcome) -> Outcome {
    respond::refusal(session, outcome).await;
    outcome
}

#[async_trait]
impl ProxyHttp for Hookwarden {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestCtx {
            route: None,
            outcome: None,
            event_id: None,
            started: Instant::now(),
            in_flight: self.in_flight.clone(),
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let downstream = session.as_downstream_mut();
        if body::framing_is_ambiguous(downstream) {
            ctx.outcome = Some(refuse(downstream, Outcome::InvalidFraming).await);
            return Ok(true);
        }

        let path = downstream.req_header().uri.path();
        let Some(route) = self.config.route_for(path) else {
            if self.config.server.unmatched == Unmatched::Forward {
                ctx.outcome = Some(Outcome::Passthrough);
                return Ok(false);
            }
            ctx.outcome = Some(refuse(downstream, Outcome::NoRoute).await);
            return Ok(true);
        };

        ctx.route = Some(route.name.clone());
        ctx.outcome = Some(self.deliver(downstream, route, ctx).await);
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(self.upstream.peer().clone()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // Unverified traffic must never carry headers the app trusts.
        headers::strip_prefixed(upstream_request, &self.config.server.trusted_header_prefix);
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        headers::append_forwarded_for(upstream_request, client);
        Ok(())
    }

    async fn logging(
        &self,
        _session: &mut Session,
        error: Option<&pingora::Error>,
        ctx: &mut RequestCtx,
    ) {
        let outcome = ctx.outcome.map_or("unknown", Outcome::label);
        tracing::debug!(
            route = ctx.route.as_deref().unwrap_or("-"),
            outcome,
            event_id = ctx.event_id.as_deref().unwrap_or("-"),
            elapsed_ms = ctx.started.elapsed().as_millis() as u64,
            error = error.map(|e| e.etype().as_str()),
            "request done"
        );
    }
}
