//! The request header the app receives: the sender's, less hop-by-hop headers and any
//! client-sent copies of our trusted headers, plus the trusted headers themselves.

use std::net::IpAddr;

use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::config::Route;
use crate::scheme::Claims;

/// Headers that describe one connection, never to be passed on (RFC 9110 section 7.6.1),
/// plus `Expect`, which we have already answered.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes every header whose name starts with `prefix`, in any case and any number.
pub fn strip_prefixed(headers: &mut RequestHeader, prefix: &str) {
    let doomed: Vec<HeaderName> = headers
        .headers
        .keys()
        .filter(|name| has_prefix(name.as_str(), prefix))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove_header(&name);
    }
}

fn has_prefix(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Removes hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut RequestHeader) {
    let named: Vec<String> = headers
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        while headers.remove_header(name).is_some() {}
    }
}

/// Appends the client's address to `X-Forwarded-For`.
pub fn append_forwarded_for(headers: &mut RequestHeader, client: Option<IpAddr>) {
    let Some(client) = client else { return };
    let value = match headers
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client.to_string(),
    };
    // An address and commas are always a valid header value.
    let _ = headers.insert_header("X-Forwarded-For", value);
}

/// What the trusted headers tell the app about a delivery.
pub enum Verdict<'a> {
    /// Verified with the key named `key_id`.
    Verified {
        /// The verified claims.
        claims: &'a Claims,
        /// The id of the secret that verified.
        key_id: &'a str,
        /// A repeat of a processed event, forwarded only because of shadow mode.
        duplicate: bool,
    },
    /// Not verified, forwarded only because the route runs in shadow mode.
    Shadow {
        /// The refusal it would have been (an outcome label).
        reason: &'static str,
    },
}

/// The request the app receives for a delivery of `body_len` bytes.
pub fn trusted_request(
    original: &RequestHeader,
    route: &Route,
    verdict: &Verdict<'_>,
    body_len: usize,
    client: Option<IpAddr>,
    prefix: &str,
) -> pingora::Result<RequestHeader> {
    let mut request = original.clone();
    request.set_version(http::Version::HTTP_11);
    strip_hop_by_hop(&mut request);
    strip_prefixed(&mut request, prefix);
    request.remove_header(&header::EXPECT);
    request.remove_header(&header::CONTENT_LENGTH);
    request.insert_header(header::CONTENT_LENGTH, body_len.to_string())?;
    append_forwarded_for(&mut request, client);

    let mut trusted: Vec<(&str, String)> = vec![("Route", route.name.clone())];
    match verdict {
        Verdict::Verified {
            claims,
            key_id,
            duplicate,
        } => {
            trusted.push(("Verified", "true".into()));
            trusted.extend(claims.event.clone().map(|e| ("Event", e)));
            trusted.push(("Event-Id", claims.event_id.clone()));
            trusted.push(("Event-Id-Source", claims.id_source.to_string()));
            let rfc3339 = &time::format_description::well_known::Rfc3339;
            let signed_at = claims.signed_at.and_then(|t| t.format(rfc3339).ok());
            trusted.extend(signed_at.map(|t| ("Signed-At", t)));
            trusted.push(("Key", key_id.to_string()));
            if *duplicate {
                trusted.push(("Duplicate", "true".into()));
            }
        }
        Verdict::Shadow { reason } => {
            trusted.push(("Verified", "false".into()));
            trusted.push(("Reason", reason.to_string()));
        }
    }
    for (name, value) in trusted {
        // Claims were checked for control characters when they were found.
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
            pingora::Error::explain(pingora::ErrorType::InternalError, "untransmittable claim")
        })?;
        request.insert_header(format!("{prefix}{name}"), value)?;
    }
    Ok(request)
}

/// The app's response header as the sender receives it: unchanged but for the headers
/// that describe our connection to the app.
pub fn relayed_response(upstream: &ResponseHeader) -> ResponseHeader {
    let mut response = upstream.clone();
    // We speak HTTP/1.1 to the sender whatever the app spoke to us (RFC 9110 6.2).
    response.set_version(http::Version::HTTP_11);
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
    ] {
        while response.remove_header(name).is_some() {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/webhooks/aj?x=1", None).unwrap();
        for (n, v) in lines {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn prefixed_headers_go_in_any_case_and_number() {
        let mut r = request(&[
            ("X-Hookwarden-Verified", "true"),
            ("x-hookwarden-route", "evil"),
            ("X-HOOKWARDEN-Event-Id", "1"),
            ("X-Hookwarden-Verified", "again"),
            ("X-Hookwardens", "prefix match is literal"),
            ("Content-Type", "application/json"),
        ]);
        strip_prefixed(&mut r, "X-Hookwarden-");
        let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "x-hookwardens"]);
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut r = request(&[
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Secret-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("X-Kept", "1"),
        ]);
        strip_hop_by_hop(&mut r);
        let names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_string()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut r = request(&[("X-Forwarded-For", "203.0.113.7")]);
        append_forwarded_for(&mut r, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    }
}
