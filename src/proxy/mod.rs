//! The request path: pingora hooks that verify, de-duplicate and forward each webhook.
//!
//! ```text
//! request_filter ─► route? ─► POST? ─► body ─► verify ─► claim ─► forward ─► commit
//!                     │ no                                     │ dup      │ not 2xx: release
//!                     ▼                                        ▼          ▼
//!             404, or pingora's own proxying       already_processed   app's answer relayed
//! ```
//! Protected routes are answered entirely inside `request_filter`; only unverified
//! passthrough (`unmatched = "forward"`) uses pingora's proxy phases. Every request ends
//! in one [`Outcome`], counted and logged in the `logging` hook.

mod body;
mod forward;
mod headers;
mod respond;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use time::OffsetDateTime;

use crate::config::{Config, Route, Unmatched};
use crate::metrics::{self, Metrics};
use crate::outcome::Outcome;
use crate::scheme::{self, Claims};
use crate::store::{self, Claim, Store, StoreSlot};
pub use forward::Upstream;
use headers::Verdict;

/// What every request shares: the live config (secrets may be swapped while running),
/// the store, the app, metrics, and the count of requests in flight.
pub struct Shared {
    /// The config; replaced whole when secrets are re-read.
    pub config: Arc<ArcSwap<Config>>,
    /// The replay store, once open.
    pub store: Arc<StoreSlot>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requests being handled now, for a graceful shutdown.
    pub in_flight: Arc<AtomicUsize>,
}

/// The proxy.
pub struct Hookwarden {
    shared: Shared,
    upstream: Upstream,
}

/// Why a verified delivery is not forwarded.
enum NotClaimed {
    /// The app already accepted it, under this event id.
    Duplicate(String),
    /// It cannot be claimed now (in flight elsewhere, or the store failed).
    Refused(Outcome),
}

/// Per-request state. Counts the request as in flight while it lives.
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
    /// Builds the proxy.
    pub fn new(shared: Shared) -> Self {
        let config = shared.config.load();
        let up = &config.upstream;
        let upstream = Upstream::new(&up.host, up.port, up.timeout);
        Hookwarden { shared, upstream }
    }

    /// Runs a request on a protected route to its outcome, answering the sender.
    async fn deliver(
        &self,
        session: &mut ServerSession,
        config: &Config,
        route: &Route,
        ctx: &mut RequestCtx,
    ) -> Outcome {
        if session.req_header().method != http::Method::POST {
            return refuse(session, Outcome::MethodNotAllowed).await;
        }

        let limit = route.max_body_bytes;
        let patience = body::Patience {
            stall: config.server.body_timeout,
            deadline: config.server.body_deadline,
        };
        let body = match body::read_whole(session, limit, patience).await {
            Ok(body) => body,
            Err(outcome) => return refuse(session, outcome).await,
        };

        let claims = match self.verify(session, route, &body) {
            Ok(claims) => claims,
            Err(outcome) => return self.refuse_or_shadow(session, route, body, outcome).await,
        };
        ctx.event_id = Some(claims.event_id.clone());
        if !event_allowed(route, &claims) {
            let outcome = Outcome::EventNotAllowed;
            return self.refuse_or_shadow(session, route, body, outcome).await;
        }

        let Some(store) = self.shared.store.get() else {
            let outcome = Outcome::StoreUnavailable;
            return self.refuse_or_shadow(session, route, body, outcome).await;
        };
        let ticket = match self.claim(store, route, &claims, config).await {
            Ok(ticket) => ticket,
            Err(NotClaimed::Duplicate(_)) if !route.enforce => {
                // Verified, but seen before: the app learns both.
                self.count_shadow(route, Outcome::Duplicate);
                let key_id = key_id(route, &claims);
                let verdict = Verdict::Verified {
                    claims: &claims,
                    key_id,
                    duplicate: true,
                };
                return self.forward(session, route, &verdict, body, None).await;
            }
            Err(NotClaimed::Duplicate(event_id)) => {
                respond::duplicate(session, &event_id).await;
                return Outcome::Duplicate;
            }
            Err(NotClaimed::Refused(outcome)) => {
                return self.refuse_or_shadow(session, route, body, outcome).await;
            }
        };

        let key_id = key_id(route, &claims);
        let metrics = &self.shared.metrics;
        metrics
            .verified
            .with_label_values(&[&route.name, key_id])
            .inc();
        let verdict = Verdict::Verified {
            claims: &claims,
            key_id,
            duplicate: false,
        };
        self.forward(session, route, &verdict, body, Some(ticket))
            .await
    }

    /// Refuses with `outcome`, or in shadow mode forwards anyway, saying why in the
    /// trusted headers and counting what would have been refused.
    async fn refuse_or_shadow(
        &self,
        session: &mut ServerSession,
        route: &Route,
        body: Bytes,
        outcome: Outcome,
    ) -> Outcome {
        if route.enforce {
            return refuse(session, outcome).await;
        }
        self.count_shadow(route, outcome);
        let verdict = Verdict::Shadow {
            reason: outcome.label(),
        };
        self.forward(session, route, &verdict, body, None).await
    }

    fn count_shadow(&self, route: &Route, would_be: Outcome) {
        let labels = [route.name.as_str(), would_be.label()];
        self.shared
            .metrics
            .shadow_refusals
            .with_label_values(&labels)
            .inc();
        let (route, would_be) = (route.name.as_str(), would_be.label());
        tracing::debug!(
            route,
            would_be,
            "shadow mode: forwarding what enforcing would refuse"
        );
    }

    /// Forwards to the app and relays its answer. With a ticket, the app's 2xx commits
    /// the claim and anything else releases it.
    async fn forward(
        &self,
        session: &mut ServerSession,
        route: &Route,
        verdict: &Verdict<'_>,
        body: Bytes,
        ticket: Option<store::Ticket>,
    ) -> Outcome {
        let request = match self.trusted_request(session, route, verdict, body.len()) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(route = %route.name, %error, "could not build the app's request");
                return refuse(session, Outcome::UpstreamUnavailable).await;
            }
        };

        let metrics = &self.shared.metrics;
        let sent = Instant::now();
        let answer = match self.upstream.send(request, body).await {
            Ok(answer) => answer,
            Err(e) => {
                let outcome = e.outcome();
                let class = match outcome {
                    Outcome::UpstreamTimeout => "timeout",
                    _ => "unavailable",
                };
                metrics.observe_upstream(&route.name, class, sent.elapsed());
                if let Some(ticket) = ticket {
                    self.release(ticket, route).await;
                }
                let label = outcome.label();
                tracing::warn!(route = %route.name, outcome = label, "app did not answer");
                return refuse(session, outcome).await;
            }
        };
        let class = metrics::status_class(answer.status().as_u16());
        metrics.observe_upstream(&route.name, class, sent.elapsed());

        // Only the app's 2xx marks the event processed; anything else leaves it retryable.
        match ticket {
            Some(ticket) if answer.status().is_success() => {
                let started = Instant::now();
                let committed = ticket.commit(store::now_ms()).await;
                metrics
                    .store_commit_duration
                    .observe(started.elapsed().as_secs_f64());
                if let Err(error) = committed {
                    metrics.store_error("commit");
                    let route = route.name.as_str();
                    tracing::warn!(route, %error, "could not record a processed event");
                    return refuse(session, Outcome::StoreUnavailable).await;
                }
            }
            Some(ticket) => self.release(ticket, route).await,
            None => {}
        }

        if !self.upstream.relay(answer, session).await {
            tracing::warn!(route = %route.name, "app broke off its answer");
        }
        Outcome::Forwarded
    }

    fn verify(
        &self,
        session: &ServerSession,
        route: &Route,
        body: &[u8],
    ) -> Result<Claims, Outcome> {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let verified = scheme::verify(route, &session.req_header().headers, body, now);

        let metrics = &self.shared.metrics;
        let labels = [route.name.as_str()];
        let took = started.elapsed().as_secs_f64();
        metrics
            .verify_duration
            .with_label_values(&labels)
            .observe(took);
        if let Some(signed_at) = verified.as_ref().ok().and_then(|c| c.signed_at) {
            let skew = (now - signed_at).as_seconds_f64();
            metrics
                .timestamp_skew
                .with_label_values(&labels)
                .observe(skew);
        }
        verified.map_err(|e| e.outcome())
    }

    /// Claims the event for delivery, waiting for a copy already with the app.
    async fn claim(
        &self,
        store: &Store,
        route: &Route,
        claims: &Claims,
        config: &Config,
    ) -> Result<store::Ticket, NotClaimed> {
        let wait = config.upstream.timeout;
        let id = &claims.event_id;
        match store
            .claim_or_wait(&route.name, id, &claims.digest, wait, store::now_ms)
            .await
        {
            Ok(Claim::Granted(ticket)) => {
                if ticket.used_fallback() {
                    self.shared.metrics.store_fallbacks.inc();
                }
                Ok(ticket)
            }
            Ok(Claim::Duplicate { event_id }) => Err(NotClaimed::Duplicate(event_id)),
            Ok(Claim::InFlight) => Err(NotClaimed::Refused(Outcome::InFlight)),
            Err(error) => {
                self.shared.metrics.store_error("claim");
                tracing::warn!(route = %route.name, %error, "replay store failed; refusing");
                Err(NotClaimed::Refused(Outcome::StoreUnavailable))
            }
        }
    }

    async fn release(&self, ticket: store::Ticket, route: &Route) {
        if let Err(error) = ticket.release().await {
            self.shared.metrics.store_error("release");
            let route = &route.name;
            tracing::warn!(route, %error, "could not release a claim; its lease will lapse");
        }
    }

    fn trusted_request(
        &self,
        session: &ServerSession,
        route: &Route,
        verdict: &Verdict<'_>,
        body_len: usize,
    ) -> pingora::Result<RequestHeader> {
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let config = self.shared.config.load();
        let prefix = &config.server.trusted_header_prefix;
        headers::trusted_request(
            session.req_header(),
            route,
            verdict,
            body_len,
            client,
            prefix,
        )
    }
}

/// The id of the secret that verified: configured, or its position in the list.
fn key_id<'a>(route: &'a Route, claims: &Claims) -> &'a str {
    route
        .key_ids
        .get(claims.key_index)
        .map_or("?", String::as_str)
}

fn event_allowed(route: &Route, claims: &Claims) -> bool {
    match (&route.events, &claims.event) {
        (None, _) => true,
        (Some(allowed), Some(event)) => allowed.iter().any(|a| a == event),
        (Some(_), None) => false,
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
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestCtx {
            route: None,
            outcome: None,
            event_id: None,
            started: Instant::now(),
            in_flight: self.shared.in_flight.clone(),
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let config = self.shared.config.load_full();
        let downstream = session.as_downstream_mut();
        let route = config.route_for(downstream.req_header().uri.path());
        ctx.route = route.map(|r| r.name.clone());

        if body::framing_is_ambiguous(downstream) {
            ctx.outcome = Some(refuse(downstream, Outcome::InvalidFraming).await);
            return Ok(true);
        }

        let Some(route) = route else {
            if config.server.unmatched == Unmatched::Forward {
                ctx.outcome = Some(Outcome::Passthrough);
                return Ok(false);
            }
            ctx.outcome = Some(refuse(downstream, Outcome::NoRoute).await);
            return Ok(true);
        };

        ctx.outcome = Some(self.deliver(downstream, &config, route, ctx).await);
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
        let config = self.shared.config.load();
        headers::strip_prefixed(upstream_request, &config.server.trusted_header_prefix);
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
        let Some(outcome) = ctx.outcome else { return };
        let route = ctx.route.as_deref().unwrap_or(metrics::NO_ROUTE);
        let elapsed = ctx.started.elapsed();
        self.shared.metrics.observe_request(route, outcome, elapsed);
        // Refusals are counted, and logged only at debug, so a flood cannot fill the logs.
        tracing::debug!(
            route,
            outcome = outcome.label(),
            event_id = ctx.event_id.as_deref().unwrap_or("-"),
            elapsed_ms = elapsed.as_millis() as u64,
            error = error.map(|e| e.etype().as_str()),
            "request done"
        );
    }
}
