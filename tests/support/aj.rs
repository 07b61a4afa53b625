//! The AJ scheme from the sender's side: an HMAC-SHA256 signer and a request builder.
//!
//! The digest is computed here with `hmac` and `sha2` directly, never through the proxy's
//! library, so a bug in the proxy's signing code cannot make its own tests pass. The
//! builder can also produce deliberately broken requests (missing, repeated or malformed
//! headers, a body changed after signing) because most tests are about refusals.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::{Duration as TimeDelta, OffsetDateTime, UtcOffset};

use super::raw::{self, RawResponse};

/// The shared secret most tests configure: 40 bytes, above the 32-byte minimum.
pub const SECRET: &str = "e2e-shared-secret-0123456789abcdef012345";

/// A second valid secret, for wrong-secret and rotation tests.
pub const OTHER_SECRET: &str = "e2e-other-secret-fedcba9876543210fedcba98";

/// Returns the lower-case hex HMAC-SHA256 of `timestamp "." body` under `secret`.
pub fn digest_hex(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Returns the `X-AJ-Signature` value: `sha256=` and the hex digest.
pub fn signature_value(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("sha256={}", digest_hex(secret, timestamp, body))
}

/// Formats an instant as RFC 3339 in UTC with whole seconds and `Z`, as the sender does.
pub fn format_z(at: OffsetDateTime) -> String {
    let whole = at
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("zero nanoseconds is always valid");
    whole
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of a UTC instant")
}

/// Returns now, in the sender's format.
pub fn now_z() -> String {
    format_z(OffsetDateTime::now_utc())
}

/// Returns now plus `seconds` (negative for the past), in the sender's format.
pub fn z_from_now(seconds: i64) -> String {
    format_z(OffsetDateTime::now_utc() + TimeDelta::seconds(seconds))
}

/// Formats now as local time at `hours:minutes` east of UTC with its offset, e.g.
/// `2024-01-15T16:00:00+05:30`, adding `fraction` (digits only) after the seconds if given.
pub fn now_with_offset(hours: i8, minutes: i8, fraction: Option<&str>) -> String {
    let offset = UtcOffset::from_hms(hours, minutes, 0).expect("a valid UTC offset");
    let local = OffsetDateTime::now_utc().to_offset(offset);
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        fraction.map(|f| format!(".{f}")).unwrap_or_default(),
        sign,
        offset.whole_hours().unsigned_abs(),
        offset.minutes_past_hour().unsigned_abs(),
    )
}

/// Builds one AJ delivery. By default: POST to `/webhooks/aj`, signed with [`SECRET`] now,
/// event `status_change`, `Content-Type: application/json`, no `X-AJ-Id`.
#[derive(Clone, Debug)]
pub struct AjRequest {
    secret: Vec<u8>,
    timestamp: String,
    event: String,
    id: Option<String>,
    body: Vec<u8>,
    sent_body: Option<Vec<u8>>,
    method: String,
    path: String,
    signature: Option<Vec<String>>,
    omitted: Vec<String>,
    extra: Vec<(String, String)>,
}

impl AjRequest {
    /// Starts a delivery of `body`, signed with [`SECRET`] at the current second.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: SECRET.as_bytes().to_vec(),
            timestamp: now_z(),
            event: "status_change".to_owned(),
            id: None,
            body: body.into(),
            sent_body: None,
            method: "POST".to_owned(),
            path: "/webhooks/aj".to_owned(),
            signature: None,
            omitted: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// A JSON body with a unique top-level `id`, which becomes the event id.
    pub fn with_id(id: &str) -> Self {
        Self::new(format!(
            r#"{{"event":"status_change","id":"{id}","from":"operational","to":"degraded"}}"#
        ))
    }

    /// Signs with another secret.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = secret.as_bytes().to_vec();
        self
    }

    /// Sets `X-AJ-Timestamp` (and the signed timestamp) to exactly `timestamp`.
    pub fn timestamp(mut self, timestamp: impl Into<String>) -> Self {
        self.timestamp = timestamp.into();
        self
    }

    /// Sets the `X-AJ-Event` value.
    pub fn event(mut self, event: &str) -> Self {
        self.event = event.to_owned();
        self
    }

    /// Adds `X-AJ-Id`.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Sends `body` instead of the signed body (a tampered delivery).
    pub fn send_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.sent_body = Some(body.into());
        self
    }

    /// Uses another request method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.to_owned();
        self
    }

    /// Uses another request target (path and query).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Replaces the computed `X-AJ-Signature` with these values, one header line each.
    pub fn signature_lines(mut self, values: &[&str]) -> Self {
        self.signature = Some(values.iter().map(|v| (*v).to_owned()).collect());
        self
    }

    /// Leaves out one of the standard headers (`X-AJ-Signature`, `X-AJ-Timestamp`,
    /// `X-AJ-Event`, `Content-Type`).
    pub fn omit(mut self, name: &str) -> Self {
        self.omitted.push(name.to_ascii_lowercase());
        self
    }

    /// Appends a header line after the standard ones.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The correct `X-AJ-Signature` value for this request's secret, timestamp and body.
    pub fn signature(&self) -> String {
        signature_value(&self.secret, &self.timestamp, &self.body)
    }

    /// The timestamp as sent.
    pub fn timestamp_value(&self) -> &str {
        &self.timestamp
    }

    /// The bytes that go on the wire as the body.
    pub fn body(&self) -> &[u8] {
        self.sent_body.as_deref().unwrap_or(&self.body)
    }

    /// The header lines, in order, without any framing header.
    pub fn headers(&self) -> Vec<(String, String)> {
        let signatures = self
            .signature
            .clone()
            .unwrap_or_else(|| vec![self.signature()]);
        let mut lines = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        lines.push(("X-AJ-Timestamp".to_owned(), self.timestamp.clone()));
        lines.push(("X-AJ-Event".to_owned(), self.event.clone()));
        for value in signatures {
            lines.push(("X-AJ-Signature".to_owned(), value));
        }
        if let Some(id) = &self.id {
            lines.push(("X-AJ-Id".to_owned(), id.clone()));
        }
        lines.retain(|(name, _)| !self.omitted.contains(&name.to_ascii_lowercase()));
        lines.extend(self.extra.iter().cloned());
        lines
    }

    /// The request line and headers, followed by `framing` lines and the blank line.
    pub fn head(&self, framing: &[(&str, &str)]) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            self.method, self.path
        );
        let framing = framing
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()));
        for (name, value) in self.headers().into_iter().chain(framing) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The whole request framed with `Content-Length`.
    pub fn raw(&self) -> Vec<u8> {
        let length = self.body().len().to_string();
        let mut bytes = self.head(&[("Content-Length", &length)]);
        bytes.extend_from_slice(self.body());
        bytes
    }

    /// The whole request framed with `Transfer-Encoding: chunked`, in chunks of `sizes`
    /// (the last size repeats until the body is used up).
    pub fn raw_chunked(&self, sizes: &[usize]) -> Vec<u8> {
        let mut bytes = self.head(&[("Transfer-Encoding", "chunked")]);
        bytes.extend_from_slice(&raw::chunked(self.body(), sizes));
        bytes
    }

    /// Sends the request with `Content-Length` on a new connection and returns the final
    /// answer.
    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        raw::exchange(addr, &self.raw()).await
    }
}
