//! The headers each scheme's sender puts on a body, for `hookwarden sign`.
//!
//! Pure: the key, the body and the time come in, header lines go out, in the order a
//! reader expects them. Options a scheme has no use for are refused rather than ignored,
//! so a test request is never silently different from what was asked for.

use http::HeaderMap;
use time::OffsetDateTime;

use crate::config::{CustomScheme, IdSpec, Route, SchemeKind, TemplatePart, TimestampFormat};
use crate::scheme::{aj, custom, github, shopify, slack, standard_webhooks, stripe};

/// Header lines, name and value, in the order they are printed and sent.
pub type Headers = Vec<(String, String)>;

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// The exact body.
    pub body: &'a [u8],
    /// The HMAC key bytes.
    pub key: &'a [u8],
    /// The signing time as sent, in the scheme's format; default: `now`.
    pub timestamp: Option<&'a str>,
    /// The delivery id.
    pub id: Option<&'a str>,
    /// The event type.
    pub event: Option<&'a str>,
    /// The time, for defaults.
    pub now: OffsetDateTime,
}

/// The headers `route`'s sender would put on `input.body`; the error says which option is
/// missing or of no use to the scheme.
pub fn headers(route: &Route, input: &SignInput<'_>) -> Result<Headers, String> {
    let scheme = route.scheme.name();
    let unused = |option: &str, what: &str| -> Result<(), String> {
        Err(format!(
            "the {scheme} scheme {what}; --{option} is not used"
        ))
    };
    let mut out = vec![h("Content-Type", content_type(route.scheme, input.body))];

    match route.scheme {
        SchemeKind::Aj => return aj_headers(input),
        SchemeKind::Stripe => {
            if input.event.is_some() {
                unused("event", "reads the event type from the body's \"type\"")?;
            }
            if input.id.is_some() {
                unused("id", "reads the event id from the body's \"id\"")?;
            }
            let timestamp = timestamp(input, TimestampFormat::Unix, scheme)?;
            out.push(h(
                "Stripe-Signature",
                stripe::sign(input.key, &timestamp, input.body),
            ));
        }
        SchemeKind::Github => {
            if input.timestamp.is_some() {
                unused("timestamp", "signs no time")?;
            }
            out.push(h(
                "X-GitHub-Event",
                required_event(input, "X-GitHub-Event")?,
            ));
            out.extend(input.id.map(|id| h("X-GitHub-Delivery", id)));
            out.push(h(
                "X-Hub-Signature-256",
                github::sign(input.key, input.body),
            ));
        }
        SchemeKind::StandardWebhooks => {
            if input.event.is_some() {
                unused("event", "reads the event type from the body's \"type\"")?;
            }
            let timestamp = timestamp(input, TimestampFormat::Unix, scheme)?;
            let id = input
                .id
                .map_or_else(|| default_id(&timestamp, input.now), str::to_string);
            let signature = standard_webhooks::sign(input.key, &id, &timestamp, input.body);
            out.push(h("webhook-id", id));
            out.push(h("webhook-timestamp", timestamp));
            out.push(h("webhook-signature", signature));
        }
        SchemeKind::Slack => {
            if input.event.is_some() {
                unused("event", "reads the event type from the body")?;
            }
            if input.id.is_some() {
                unused("id", "has no delivery id header")?;
            }
            let timestamp = timestamp(input, TimestampFormat::Unix, scheme)?;
            let signature = slack::sign(input.key, &timestamp, input.body);
            out.push(h("X-Slack-Request-Timestamp", timestamp));
            out.push(h("X-Slack-Signature", signature));
        }
        SchemeKind::Shopify => {
            if input.timestamp.is_some() {
                unused("timestamp", "signs no time")?;
            }
            out.push(h(
                "X-Shopify-Topic",
                required_event(input, "X-Shopify-Topic")?,
            ));
            out.extend(input.id.map(|id| h("X-Shopify-Webhook-Id", id)));
            out.push(h(
                "X-Shopify-Hmac-Sha256",
                shopify::sign(input.key, input.body),
            ));
        }
        SchemeKind::Custom => {
            let spec = route
                .custom
                .as_ref()
                .ok_or("the route has no custom table")?;
            out.extend(custom_headers(spec, input)?);
        }
    }
    Ok(out)
}

fn h(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

/// AJ exactly as before the other schemes: other tools read these lines.
fn aj_headers(input: &SignInput<'_>) -> Result<Headers, String> {
    let timestamp = input
        .timestamp
        .map_or_else(|| super::rfc3339_seconds(input.now), str::to_string);
    let event = match input.event {
        Some(event) => event.to_string(),
        None => serde_json::from_slice::<serde_json::Value>(input.body)
            .ok()
            .and_then(|v| v.get("event")?.as_str().map(str::to_string))
            .ok_or("the body has no top-level \"event\"; pass --event")?,
    };
    let digest = aj::sign(input.key, &timestamp, input.body);
    let mut headers = vec![
        h("Content-Type", "application/json"),
        h("X-AJ-Event", event),
        h("X-AJ-Timestamp", timestamp),
        h("X-AJ-Signature", format!("sha256={}", hex::encode(digest))),
    ];
    headers.extend(input.id.map(|id| h("X-AJ-Id", id)));
    Ok(headers)
}

/// JSON bodies are labelled JSON; Slack's others are forms, anyone else's opaque.
fn content_type(scheme: SchemeKind, body: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        "application/json"
    } else if scheme == SchemeKind::Slack {
        "application/x-www-form-urlencoded"
    } else {
        "application/octet-stream"
    }
}

fn required_event(input: &SignInput<'_>, header: &str) -> Result<String, String> {
    input
        .event
        .map(str::to_string)
        .ok_or_else(|| format!("pass --event: it is sent as {header}"))
}

/// `--timestamp` checked against the scheme's format, or now in that format.
fn timestamp(
    input: &SignInput<'_>,
    format: TimestampFormat,
    scheme: &str,
) -> Result<String, String> {
    let Some(given) = input.timestamp else {
        return Ok(match format {
            TimestampFormat::Unix => input.now.unix_timestamp().to_string(),
            TimestampFormat::UnixMs => (input.now.unix_timestamp_nanos() / 1_000_000).to_string(),
            TimestampFormat::Rfc3339 => super::rfc3339_seconds(input.now),
        });
    };
    custom::parse_timestamp(given, format).map_err(|_| {
        let name = format.describe();
        format!("--timestamp {given:?} is not {name}, the {scheme} scheme's format")
    })?;
    Ok(given.to_string())
}

/// A message id unlikely to repeat: the signing time and the clock's nanoseconds.
fn default_id(timestamp: &str, now: OffsetDateTime) -> String {
    format!("msg_{timestamp}_{:09}", now.nanosecond())
}

/// A custom scheme's headers: timestamp, id and event headers where it reads them, then
/// the signature over exactly what the verifier will read.
fn custom_headers(spec: &CustomScheme, input: &SignInput<'_>) -> Result<Headers, String> {
    let mut out = Headers::new();
    let timestamp = match &spec.timestamp {
        Some(ts) => {
            let value = timestamp(input, ts.format, "custom")?;
            out.push(h(ts.header.as_str(), value.clone()));
            value
        }
        None if input.timestamp.is_some() => {
            return Err(
                "the route's custom scheme has no timestamp; --timestamp is not used".into(),
            )
        }
        None => String::new(),
    };

    let id_header = spec.id_sources.iter().find_map(|s| match s {
        IdSpec::Header(name) => Some(name),
        IdSpec::BodyField(_) => None,
    });
    let id = match (input.id, id_header) {
        (Some(id), Some(_)) => Some(id.to_string()),
        (Some(_), None) => {
            return Err("the route's custom scheme reads no id header; --id is not used".into())
        }
        (None, Some(_)) if spec.signs(&TemplatePart::Id) => Some(default_id(&timestamp, input.now)),
        (None, _) => None,
    };
    let mut sent = HeaderMap::new();
    if let (Some(id), Some(name)) = (&id, id_header) {
        let value = http::HeaderValue::from_str(id).map_err(|_| "--id is not a header value")?;
        sent.insert(name.clone(), value);
        out.push(h(name.as_str(), id.clone()));
    }
    // The verifier signs the first id source that has a value, which may be the body's.
    let signed_id = custom::find_id(&spec.id_sources, &sent, input.body);
    if spec.signs(&TemplatePart::Id) && signed_id.is_none() {
        return Err(
            "the route's custom scheme signs {id}, and the body has none of its id \
                    fields"
                .into(),
        );
    }

    match (&spec.event_header, input.event) {
        (Some(name), Some(event)) => out.push(h(name.as_str(), event)),
        (Some(name), None) => return Err(format!("pass --event: it is sent as {name}")),
        (None, Some(_)) => {
            return Err("the route's custom scheme has no event header; --event is not used".into())
        }
        (None, None) => {}
    }

    let signed_id = signed_id.map_or_else(String::new, |(id, _)| id);
    let signature = custom::sign(spec, input.key, &timestamp, &signed_id, input.body);
    out.push(h(spec.signature_header.as_str(), signature));
    Ok(out)
}

#[cfg(test)]
mod tests;
