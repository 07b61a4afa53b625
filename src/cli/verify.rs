//! `hookwarden verify`: runs a route's scheme over a saved request, as the proxy would,
//! and says which check failed and why.
//!
//! It never prints a digest it expected, nor a secret: only what the request carried,
//! what the scheme reads, and the verdict. The replay store is not consulted, so a
//! duplicate verifies here.

use std::path::PathBuf;

use clap::Args;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::request_file::{self, SavedRequest};
use super::{Exit, DEFAULT_CONFIG};
use crate::config::{CustomScheme, Encoding, IdSpec, Route, SchemeKind, TemplatePart};
use crate::scheme::{self, Claims, VerifyError};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Config file (the route's secrets are read as configured).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Route whose scheme and secrets to use.
    #[arg(long)]
    pub route: String,
    /// File holding the raw HTTP/1.1 request (request line, headers, blank line, body).
    #[arg(long, required_unless_present = "headers", conflicts_with = "headers")]
    pub request: Option<PathBuf>,
    /// File of `Name: value` header lines, as `hookwarden sign` prints them.
    #[arg(long, requires = "body")]
    pub headers: Option<PathBuf>,
    /// File holding the exact body (with --headers).
    #[arg(long, requires = "headers")]
    pub body: Option<PathBuf>,
    /// The time to verify at: RFC 3339 or Unix seconds. Default: now.
    #[arg(long)]
    pub now: Option<String>,
}

/// Runs `verify`: 0 verified, 1 refused, 64 unreadable input, 78 bad config.
pub fn verify(args: &VerifyArgs) -> Exit {
    let config = match super::load(&args.config) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let Some(route) = config.route_named(&args.route) else {
        eprintln!(
            "hookwarden: no route named {:?} in {}",
            args.route,
            args.config.display()
        );
        return Exit::Usage;
    };
    let (request, now) = match (read(args), parse_now(args.now.as_deref())) {
        (Ok(request), Ok(now)) => (request, now),
        (Err(message), _) | (_, Err(message)) => {
            eprintln!("hookwarden: {message}");
            return Exit::Usage;
        }
    };

    let verdict = scheme::verify(route, &request.headers, &request.body, now);
    println!(
        "route {:?} (scheme {}), {} body bytes, at {}",
        route.name,
        route.scheme.name(),
        request.body.len(),
        super::rfc3339_seconds(now)
    );
    match verdict {
        Ok(claims) => report_verified(route, &claims),
        Err(error) => {
            let (check, why) = explain(route, error, now);
            println!("refused: {}", error.outcome().label());
            println!("  check: {check}");
            println!("  why:   {why}");
            Exit::Failure
        }
    }
}

fn read(args: &VerifyArgs) -> Result<SavedRequest, String> {
    let file = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    match (&args.request, &args.headers, &args.body) {
        (Some(path), _, _) => request_file::parse_request(&file(path)?)
            .map_err(|e| format!("{}: {e}", path.display())),
        (None, Some(headers), Some(body)) => Ok(SavedRequest {
            headers: request_file::parse_header_lines(&file(headers)?)
                .map_err(|e| format!("{}: {e}", headers.display()))?,
            body: file(body)?,
        }),
        _ => Err("give --request FILE, or --headers FILE and --body FILE".into()),
    }
}

fn parse_now(value: Option<&str>) -> Result<OffsetDateTime, String> {
    let Some(value) = value else {
        return Ok(OffsetDateTime::now_utc());
    };
    let unix = value
        .parse::<i64>()
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    unix.or_else(|| OffsetDateTime::parse(value, &Rfc3339).ok())
        .ok_or(format!(
            "--now {value:?} is neither RFC 3339 nor Unix seconds"
        ))
}

fn report_verified(route: &Route, claims: &Claims) -> Exit {
    let key = route
        .key_ids
        .get(claims.key_index)
        .map_or("?", String::as_str);
    let signed_at = match claims.signed_at {
        Some(at) => at.format(&Rfc3339).unwrap_or_default(),
        None => "not signed: replays are bounded only by de-duplication".into(),
    };
    let allowed = match (&route.events, &claims.event) {
        (None, _) => true,
        (Some(events), Some(event)) => events.contains(event),
        (Some(_), None) => false,
    };
    println!(
        "{}",
        if allowed {
            "verified"
        } else {
            "refused: event_not_allowed"
        }
    );
    println!("  key:       {key}");
    println!("  event:     {}", claims.event.as_deref().unwrap_or("-"));
    println!(
        "  event id:  {} (from {})",
        claims.event_id, claims.id_source
    );
    println!("  signed at: {signed_at}");
    if allowed {
        return Exit::Ok;
    }
    println!("  why:       the event type is not in the route's events list");
    Exit::Failure
}

/// Where a scheme reads each part of a request, for messages.
struct Reads {
    signature: String,
    timestamp: String,
    event: String,
    id: String,
    signed: String,
}

fn reads(route: &Route) -> Reads {
    let r = |signature: &str, timestamp: &str, event: &str, id: &str, signed: &str| Reads {
        signature: signature.into(),
        timestamp: timestamp.into(),
        event: event.into(),
        id: id.into(),
        signed: signed.into(),
    };
    match route.scheme {
        SchemeKind::Aj => r(
            "X-AJ-Signature: sha256=<hex>",
            "X-AJ-Timestamp (RFC 3339)",
            "X-AJ-Event",
            "the body's id or event_id, X-AJ-Id, or the digest",
            "X-AJ-Timestamp.body",
        ),
        SchemeKind::StandardWebhooks => r(
            "webhook-signature: v1,<base64> (space-separated list)",
            "webhook-timestamp (Unix seconds)",
            "the body's type",
            "webhook-id",
            "webhook-id.webhook-timestamp.body, keyed by the decoded whsec_ secret",
        ),
        SchemeKind::Stripe => r(
            "Stripe-Signature: t=<unix>,v1=<hex>",
            "the t= entry of Stripe-Signature (Unix seconds)",
            "the body's type",
            "the body's id, or the digest",
            "t.body, keyed by the whsec_ string as written",
        ),
        SchemeKind::Github => r(
            "X-Hub-Signature-256: sha256=<hex>",
            "none",
            "X-GitHub-Event",
            "X-GitHub-Delivery, or the digest",
            "the body",
        ),
        SchemeKind::Slack => r(
            "X-Slack-Signature: v0=<hex>",
            "X-Slack-Request-Timestamp (Unix seconds)",
            "the body's event type or command",
            "the body's event_id or trigger_id, or the digest",
            "v0:X-Slack-Request-Timestamp:body",
        ),
        SchemeKind::Shopify => r(
            "X-Shopify-Hmac-Sha256: <base64>",
            "none",
            "X-Shopify-Topic",
            "X-Shopify-Webhook-Id, or the digest",
            "the body",
        ),
        SchemeKind::Custom => match &route.custom {
            Some(spec) => custom_reads(spec),
            None => r("?", "?", "?", "?", "?"),
        },
    }
}

fn custom_reads(spec: &CustomScheme) -> Reads {
    let encoding = match spec.encoding {
        Encoding::Hex => "<hex>",
        Encoding::Base64 => "<base64>",
    };
    let prefix = spec.prefix.as_deref().unwrap_or("");
    let mut ids: Vec<String> = spec
        .id_sources
        .iter()
        .map(|s| match s {
            IdSpec::Header(name) => name.to_string(),
            IdSpec::BodyField(field) => format!("the body's {field}"),
        })
        .collect();
    ids.push("the digest".into());
    let signed = spec
        .template
        .iter()
        .map(|part| match part {
            TemplatePart::Timestamp => "<timestamp>".to_string(),
            TemplatePart::Id => "<id>".to_string(),
            TemplatePart::Body => "<body>".to_string(),
            TemplatePart::Literal(text) => text.clone(),
        })
        .collect::<String>();
    Reads {
        signature: format!("{}: {prefix}{encoding}", spec.signature_header),
        timestamp: spec.timestamp.as_ref().map_or("none".into(), |t| {
            format!("{} ({})", t.header, t.format.describe())
        }),
        event: spec
            .event_header
            .as_ref()
            .map_or("none".into(), ToString::to_string),
        id: ids.join(", then "),
        signed,
    }
}

/// The check that refused, and why, in words an operator can act on.
fn explain(route: &Route, error: VerifyError, now: OffsetDateTime) -> (&'static str, String) {
    let reads = reads(route);
    let now = super::rfc3339_seconds(now);
    match error {
        VerifyError::MissingSignature if route.scheme == SchemeKind::Github => (
            "signature header",
            format!(
                "the request has no {} (the legacy X-Hub-Signature, HMAC-SHA1, is not \
                 accepted on its own)",
                reads.signature
            ),
        ),
        VerifyError::MissingSignature => (
            "signature header",
            format!("the request has no {}", reads.signature),
        ),
        VerifyError::MissingTimestamp => (
            "timestamp header",
            format!(
                "the request has no timestamp; the scheme reads {}",
                reads.timestamp
            ),
        ),
        VerifyError::MissingEvent => (
            "event header",
            format!("{} is absent, empty or not printable", reads.event),
        ),
        VerifyError::InvalidTimestamp => (
            "timestamp",
            format!(
                "the timestamp is unreadable, or several different ones were sent; the \
                 scheme reads {}",
                reads.timestamp
            ),
        ),
        VerifyError::TimestampTooOld => (
            "freshness",
            format!(
                "signed more than {} s before {now} (the route's tolerance_seconds)",
                route.tolerance.as_secs()
            ),
        ),
        VerifyError::TimestampInFuture => (
            "freshness",
            format!(
                "signed more than {} s after {now} (the route's future tolerance)",
                route.tolerance_future.as_secs()
            ),
        ),
        VerifyError::InvalidSignature => (
            "signature",
            format!(
                "no well-formed signature in {} matches any of the route's {} key(s) over \
                 {}: the body, the signed headers or the key differ from the sender's",
                reads.signature,
                route.secrets.len(),
                reads.signed
            ),
        ),
        VerifyError::InvalidEventId => (
            "event id",
            format!(
                "the event id (from {}) is missing where it is signed, longer than {} \
                 bytes, or holds control characters",
                reads.id,
                scheme::MAX_EVENT_ID_BYTES
            ),
        ),
    }
}
