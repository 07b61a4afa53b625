//! Reading a saved request for `hookwarden verify`: a raw HTTP/1.1 message, or header
//! lines (as `hookwarden sign` prints them) beside a body file.
//!
//! Only what verification needs is read: headers and the body's exact bytes. The
//! request line is not checked, and nothing is sent anywhere.

use http::{HeaderMap, HeaderName, HeaderValue};

/// More header lines than this in one saved request are refused.
const MAX_HEADERS: usize = 128;

/// A request's headers and body.
#[derive(Debug)]
pub struct SavedRequest {
    /// The headers, repeats kept in order.
    pub headers: HeaderMap,
    /// The body, with any chunked framing removed.
    pub body: Vec<u8>,
}

/// Parses a raw HTTP/1.1 request: request line, headers, blank line, body. The body is
/// cut to `Content-Length` (editors add a final newline), or de-chunked.
pub fn parse_request(raw: &[u8]) -> Result<SavedRequest, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let head_len = match request.parse(raw) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err("the request ends before the blank line after its headers".into())
        }
        Err(e) => return Err(format!("not an HTTP/1.1 request: {e}")),
    };
    let mut headers = HeaderMap::new();
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| format!("{:?} is not a header name", header.name))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| format!("the {name} header's value is not a header value"))?;
        headers.append(name, value);
    }

    let rest = &raw[head_len..];
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
        });
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = headers.get(http::header::CONTENT_LENGTH) {
        let length: usize = length
            .to_str()
            .ok()
            .and_then(|l| l.trim().parse().ok())
            .ok_or("Content-Length is not a number")?;
        rest.get(..length)
            .ok_or(format!(
                "the body has {} bytes, fewer than Content-Length {length}",
                rest.len()
            ))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(SavedRequest { headers, body })
}

/// Parses `Name: value` lines; blank lines and lines starting with `#` are skipped.
pub fn parse_header_lines(text: &[u8]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.starts_with(b"#") {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(format!("line {}: not a \"Name: value\" header line", n + 1))?;
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| format!("line {}: not a header name", n + 1))?;
        let value = line[colon + 1..].trim_ascii();
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| format!("line {}: not a header value", n + 1))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Removes chunked framing (RFC 9112 section 7.1); extensions and trailers are ignored.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line has no CRLF")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("{size_text:?} is not a chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("the body ends inside a chunk")?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("a chunk is not followed by CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_request_with_crlf_or_lf_and_a_trailing_newline() {
        for raw in [
            &b"POST /w HTTP/1.1\r\nHost: x\r\nA: 1\r\nA: 2\r\nContent-Length: 4\r\n\r\nbody\n"[..],
            &b"POST /w HTTP/1.1\nHost: x\nA: 1\nA: 2\nContent-Length: 4\n\nbody\n"[..],
        ] {
            let request = parse_request(raw).unwrap();
            assert_eq!(request.body, b"body");
            let values: Vec<_> = request.headers.get_all("a").iter().collect();
            assert_eq!(values, ["1", "2"]);
        }
    }

    #[test]
    fn chunked_bodies_are_dechunked_and_short_ones_refused() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    2;x=y\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(parse_request(raw).unwrap().body, b"abc");
        let short = b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc";
        let err = parse_request(short).unwrap_err();
        assert!(err.contains("fewer than Content-Length 9"), "{err}");
        assert!(parse_request(b"POST / HTTP/1.1\r\nA: 1\r\n").is_err());
    }

    #[test]
    fn header_lines_as_sign_prints_them() {
        let text =
            b"# from sign\nContent-Type: application/json\r\n\nX-Hub-Signature-256:  sha256=ab \n";
        let headers = parse_header_lines(text).unwrap();
        assert_eq!(headers["x-hub-signature-256"], "sha256=ab");
        assert_eq!(headers.len(), 2);
        let err = parse_header_lines(b"A: 1\nno colon here\n").unwrap_err();
        assert_eq!(err, "line 2: not a \"Name: value\" header line");
    }
}
