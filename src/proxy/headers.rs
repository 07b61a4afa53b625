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

/// The request the app receives for a verified delivery of `body_len` bytes.
pub fn verified_request(
    original: &RequestHeader,
    route: &Route,
    claims: &Claims,
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

    let signed_at = claims
        .signed_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let trusted = [
        ("Verified", "true".as_bytes()),
        ("Route", route.name.as_bytes()),
        ("Event", claims.event.as_bytes()),
        ("Event-Id", claims.event_id.as_bytes()),
        ("Event-Id-Source", claims.id_source.as_str().as_bytes()),
        ("Signed-At", signed_at.as_bytes()),
    ];
    for (name, value) in trusted {
        // Values were checked for control characters when they were found.
        let value = HeaderValue::from_bytes(value).map_err(|_| {
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
