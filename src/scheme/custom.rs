//! The engine that runs a [`CustomScheme`]: the `custom` scheme as configured, and the
//! built-in schemes that are written as one (GitHub, Shopify, Slack, Standard Webhooks).
//!
//! Checks run cheapest first, as for AJ: the signature header is there, the timestamp is
//! there, the event header is there (when the scheme has one), the timestamp reads and is
//! in the window, then the digest, then the event id. It knows nothing of any sender:
//! a built-in adds what does not fit here (an event type from the body, say) itself.

use http::{HeaderMap, HeaderName};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::digest::{find_signer, hmac, MAX_CANDIDATES};
use super::event_id::{self, IdSource};
use super::{Claims, VerifyError, Window};
use crate::config::{CustomScheme, Encoding, IdSpec, Secret, TemplatePart, TimestampFormat};

/// What the engine proved about a request, before the event id falls back to the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Position of the secret that verified.
    pub key_index: usize,
    /// The digest that matched.
    pub digest: Vec<u8>,
    /// The signed time, when the scheme signs one.
    pub signed_at: Option<OffsetDateTime>,
    /// The event id from the scheme's id sources, when one had it.
    pub id: Option<(String, IdSource)>,
    /// The event type from the scheme's event header, when it has one.
    pub event: Option<String>,
}

impl Verified {
    /// The claims, with the digest standing in for a missing event id.
    pub fn into_claims(self) -> Result<Claims, VerifyError> {
        let (event_id, id_source) = event_id::finish(self.id, &self.digest)?;
        Ok(Claims {
            event: self.event,
            event_id,
            id_source,
            signed_at: self.signed_at,
            digest: self.digest,
            key_index: self.key_index,
        })
    }
}

/// Verifies a request against `spec`.
pub fn verify(
    spec: &CustomScheme,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    check(spec, headers, body, secrets, window, now)?.into_claims()
}

/// Runs every check of `spec`, leaving the event id's fallback to the caller.
pub fn check(
    spec: &CustomScheme,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    window: Window,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    if !headers.contains_key(&spec.signature_header) {
        return Err(VerifyError::MissingSignature);
    }
    let timestamp = match &spec.timestamp {
        Some(ts) => Some((single_timestamp(headers, &ts.header)?, ts.format)),
        None => None,
    };
    let event = match &spec.event_header {
        Some(name) => Some(header_event(headers, name).ok_or(VerifyError::MissingEvent)?),
        None => None,
    };

    let signed_at = match timestamp {
        Some((value, format)) => Some(parse_timestamp(value, format)?),
        None => None,
    };
    if let Some(signed_at) = signed_at {
        window.check(signed_at, now)?;
    }

    // A signed id must be there before the digest can be computed at all.
    let id = find_id(&spec.id_sources, headers, body);
    let signed_id = match (&id, spec.signs(&TemplatePart::Id)) {
        (Some((id, _)), true) => id.as_bytes(),
        (None, true) => return Err(VerifyError::InvalidEventId),
        (_, false) => &[],
    };
    let signed_timestamp = timestamp.map_or(&b""[..], |(t, _)| t.as_bytes());
    let parts = content(&spec.template, signed_timestamp, signed_id, body);

    let candidates = candidates(spec, headers);
    let (key_index, digest) = find_signer(secrets, spec.algorithm, &parts, &candidates)
        .ok_or(VerifyError::InvalidSignature)?;
    Ok(Verified {
        key_index,
        digest,
        signed_at,
        id,
        event,
    })
}

/// The signature header value a sender of `spec` sends: prefix and encoded digest.
pub fn sign(spec: &CustomScheme, key: &[u8], timestamp: &str, id: &str, body: &[u8]) -> String {
    let parts = content(&spec.template, timestamp.as_bytes(), id.as_bytes(), body);
    let digest = hmac(spec.algorithm, key, &parts);
    let encoded = match spec.encoding {
        Encoding::Hex => hex::encode(digest),
        Encoding::Base64 => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(digest)
        }
    };
    format!("{}{encoded}", spec.prefix.as_deref().unwrap_or(""))
}

/// The signed content, as slices in template order.
fn content<'a>(
    template: &'a [TemplatePart],
    timestamp: &'a [u8],
    id: &'a [u8],
    body: &'a [u8],
) -> Vec<&'a [u8]> {
    template
        .iter()
        .map(|part| match part {
            TemplatePart::Timestamp => timestamp,
            TemplatePart::Id => id,
            TemplatePart::Body => body,
            TemplatePart::Literal(text) => text.as_bytes(),
        })
        .collect()
}

/// Parses a timestamp as `format` says. Digits only for the Unix forms: a sign, a
/// fraction or blanks inside mean it was not written by the sender we expect.
pub fn parse_timestamp(
    value: &str,
    format: TimestampFormat,
) -> Result<OffsetDateTime, VerifyError> {
    let invalid = VerifyError::InvalidTimestamp;
    let digits = |max: usize| {
        let ok =
            !value.is_empty() && value.len() <= max && value.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| value.parse::<i64>().ok())
            .flatten()
            .ok_or(invalid)
    };
    match format {
        TimestampFormat::Unix => {
            OffsetDateTime::from_unix_timestamp(digits(12)?).map_err(|_| invalid)
        }
        TimestampFormat::UnixMs => {
            let nanos = i128::from(digits(15)?) * 1_000_000;
            OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid)
        }
        TimestampFormat::Rfc3339 => OffsetDateTime::parse(value, &Rfc3339).map_err(|_| invalid),
    }
}

/// The one timestamp of the request. Repeats of the same value are
/// tolerated; different values are refused, since only one of them can have been signed.
pub fn single_timestamp<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().ok_or(VerifyError::MissingTimestamp)?;
    let first = first.to_str().map_err(|_| VerifyError::InvalidTimestamp)?;
    let first = trim_ows(first);
    for other in values {
        if other.to_str().map(trim_ows).ok() != Some(first) {
            return Err(VerifyError::InvalidTimestamp);
        }
    }
    Ok(first)
}

/// The first value of `name` as UTF-8 text without surrounding blanks, if non-empty.
pub fn header_text<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    let value = headers.get(name)?;
    let text = trim_ows(std::str::from_utf8(value.as_bytes()).ok()?);
    (!text.is_empty()).then_some(text)
}

fn header_event(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    event_id::clean_event(header_text(headers, name)?)
}

/// The first id source that has a value. The body is parsed once, and only if a body
/// field is asked for.
pub fn find_id(sources: &[IdSpec], headers: &HeaderMap, body: &[u8]) -> Option<(String, IdSource)> {
    let mut json = None;
    sources.iter().find_map(|source| match source {
        IdSpec::Header(name) => Some((header_text(headers, name)?.to_string(), IdSource::Header)),
        IdSpec::BodyField(field) => {
            let object = json.get_or_insert_with(|| event_id::json_object(body));
            let value = event_id::scalar(object.as_ref()?.get(field)?)?;
            Some((value, IdSource::body(field)))
        }
    })
}

/// Every well-formed signature in the header: from each header line, split by the
/// separator, with the prefix (any ASCII case) removed and decoded. Malformed entries
/// cannot match, so they are skipped.
fn candidates(spec: &CustomScheme, headers: &HeaderMap) -> Vec<Vec<u8>> {
    let prefix = spec.prefix.as_deref().unwrap_or("");
    headers
        .get_all(&spec.signature_header)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .flat_map(|v| match spec.separator.as_deref() {
            Some(separator) => v.split(separator).collect::<Vec<_>>(),
            None => vec![v],
        })
        .filter_map(|item| {
            let item = trim_ows(item);
            let (head, digest) = item.split_at_checked(prefix.len())?;
            head.eq_ignore_ascii_case(prefix).then_some(())?;
            decode(digest, spec.encoding)
        })
        .take(MAX_CANDIDATES)
        .collect()
}

/// Decodes one digest. Base64 padding is optional; a digest of the wrong length decodes
/// but can never match.
pub fn decode(digest: &str, encoding: Encoding) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    match encoding {
        Encoding::Hex => hex::decode(digest).ok(),
        Encoding::Base64 => BASE64.decode(digest).ok(),
    }
}

/// Removes HTTP's optional whitespace (spaces and tabs) around a value.
pub fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests;
