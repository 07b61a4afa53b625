//! Just enough HTTP/1.1 over one keep-alive connection: write a request whose body may be
//! in several pieces, read one response (Content-Length, chunked, or until close).

use std::io::{self, IoSlice};
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response, as far as the generator cares.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Whether the body holds `needle` (when one was asked for).
    pub found: bool,
    /// Whether the server will close the connection after this response.
    pub close: bool,
}

/// A client connection with its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Conn {
    /// Connects, with Nagle off.
    pub async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Writes all of `parts`, in order, with as few system calls as the kernel allows.
    pub async fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = self.stream.write_vectored(rest).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        Ok(n)
    }

    /// Reads one response; `needle`, if not empty, is looked for in its body.
    pub async fn receive(&mut self, needle: &[u8]) -> io::Result<Response> {
        // The header.
        let (status, head_len, length, chunked, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 48];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut length = None;
                    let mut chunked = false;
                    let mut close = parsed.version == Some(0);
                    for h in parsed.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let text =
                                std::str::from_utf8(h.value).map_err(|_| broken("length"))?;
                            length =
                                Some(text.trim().parse::<usize>().map_err(|_| broken("length"))?);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = h.value.eq_ignore_ascii_case(b"chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    break (status, head_len, length, chunked, close);
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(_) => return Err(broken("response header")),
            }
        };

        // The body.
        let end = if chunked {
            self.chunked_end(head_len).await?
        } else if let Some(length) = length {
            while self.buf.len() < head_len + length {
                if self.fill().await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            head_len + length
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            head_len
        } else {
            while self.fill().await? > 0 {}
            self.buf.len()
        };
        let body = &self.buf[head_len..end];
        let found = !needle.is_empty() && body.windows(needle.len()).any(|w| w == needle);
        self.buf.drain(..end);
        Ok(Response {
            status,
            found,
            close: close || (length.is_none() && !chunked && status >= 200),
        })
    }

    /// Reads a chunked body that starts at `from`; returns where the message ends.
    async fn chunked_end(&mut self, from: usize) -> io::Result<usize> {
        let mut at = from;
        loop {
            let line_end = loop {
                if let Some(i) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                if self.fill().await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            };
            let line = std::str::from_utf8(&self.buf[at..line_end]).map_err(|_| broken("chunk"))?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| broken("chunk size"))?;
            at = line_end + 2;
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                loop {
                    if let Some(i) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                        let empty = i == 0;
                        at += i + 2;
                        if empty {
                            return Ok(at);
                        }
                        continue;
                    }
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
            while self.buf.len() < at + size + 2 {
                if self.fill().await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            at += size + 2;
        }
    }
}

/// A one-off `GET path` with `Connection: close`; returns the status and body.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(&all) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(broken("response header")),
    };
    let status = parsed.code.unwrap_or(0);
    let chunked = parsed
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    let mut body = all[head_len..].to_vec();
    if chunked {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = raw.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&raw[..i]);
        let size =
            usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        raw = &raw[i + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    out
}
