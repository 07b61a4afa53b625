//! A deliberately small HTTP/1.1 client over a plain TCP stream.
//!
//! Framing tests need to put exact bytes on the wire (conflicting length headers, chosen
//! chunk sizes, a body that stops half-way), which no ordinary client allows. Writing runs
//! in a task of its own while the answer is read, so a proxy that answers early and closes
//! (a 413, a 408) is still heard rather than lost in a write error. The client parses only
//! what a proxy may send back: status line, headers, and a body framed by Content-Length,
//! chunked encoding or the end of the connection.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// How long a test waits for an answer before it calls the proxy hung. Generous because
/// debug builds move 5 MiB bodies slowly; a passing test never waits this long.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// One answer as it came off the wire.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body with any chunked framing removed.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics with the body shown if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {:?}; headers {:?}",
                self.status,
                String::from_utf8_lossy(&self.body),
                self.headers
            )
        })
    }

    /// The body as (lossy) text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A one-line summary for assertion messages.
    pub fn summary(&self) -> String {
        format!("{} {}", self.status, self.text())
    }
}

/// One action of a background writer.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Wait before the next step.
    Pause(Duration),
}

/// A client connection.
pub struct RawConn {
    reader: OwnedReadHalf,
    writer: Option<OwnedWriteHalf>,
    writer_task: Option<JoinHandle<()>>,
    buf: Vec<u8>,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        if let Some(task) = self.writer_task.take() {
            task.abort();
        }
    }
}

impl RawConn {
    /// Connects to `addr`; panics if it cannot.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::try_connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Connects to `addr`.
    pub async fn try_connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        Ok(Self {
            reader,
            writer: Some(writer),
            writer_task: None,
            buf: Vec::new(),
        })
    }

    /// Writes `bytes` now.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let writer = self
            .writer
            .as_mut()
            .expect("the writer was handed to a task");
        writer.write_all(bytes).await?;
        writer.flush().await
    }

    /// Hands the writing side to a task that performs `steps` in order. Write errors end
    /// the task quietly: a proxy may close after answering early, and the answer is what the
    /// test judges. The writing half stays open until this connection is dropped, because
    /// a half-close would tell the proxy the client gave up.
    pub fn write_in_background(&mut self, steps: Vec<Step>) {
        let mut writer = self
            .writer
            .take()
            .expect("the writer was already handed off");
        self.writer_task = Some(tokio::spawn(async move {
            for step in steps {
                match step {
                    Step::Write(bytes) => {
                        if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err()
                        {
                            return;
                        }
                    }
                    Step::Pause(pause) => tokio::time::sleep(pause).await,
                }
            }
            std::future::pending::<()>().await;
        }));
    }

    /// Reads the next answer, informational (1xx) ones included.
    pub async fn read_response(&mut self, timeout: Duration) -> anyhow::Result<RawResponse> {
        tokio::time::timeout(timeout, self.read_response_inner())
            .await
            .map_err(|_| anyhow!("no complete answer within {timeout:?}"))?
    }

    /// Reads answers until a final (non-1xx) one; returns the 1xx codes seen and that one.
    pub async fn read_final(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(Vec<u16>, RawResponse)> {
        let mut interim = Vec::new();
        loop {
            let answer = self.read_response(timeout).await?;
            if (100..200).contains(&answer.status) {
                interim.push(answer.status);
                continue;
            }
            return Ok((interim, answer));
        }
    }

    /// Waits up to `timeout` for the peer to close; true if it did, with nothing more sent.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let mut scratch = [0u8; 1024];
        matches!(
            tokio::time::timeout(timeout, self.reader.read(&mut scratch)).await,
            Ok(Ok(0)) | Ok(Err(_))
        ) && self.buf.is_empty()
    }

    async fn fill(&mut self) -> anyhow::Result<usize> {
        // On the heap: async state machines copy their locals, and the tests nest them deeply.
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self
            .reader
            .read(&mut chunk)
            .await
            .context("reading the answer")?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn read_response_inner(&mut self) -> anyhow::Result<RawResponse> {
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.fill().await? == 0 {
                bail!(
                    "connection closed before a complete answer head; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);

        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("bad header line {line:?}"))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };

        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.body = self.read_chunked().await?;
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().context("bad Content-Length in answer")?;
            while self.buf.len() < length {
                if self.fill().await? == 0 {
                    bail!(
                        "connection closed after {} of {length} body bytes",
                        self.buf.len()
                    );
                }
            }
            response.body = self.buf.drain(..length).collect();
        } else {
            while self.fill().await? > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    async fn read_line(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 2);
                return Ok(line);
            }
            if self.fill().await? == 0 {
                bail!("connection closed inside a chunked body");
            }
        }
    }

    async fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    bail!("connection closed inside a chunk");
                }
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Encodes `body` as chunks of `sizes` (the last size repeats), then the last chunk.
pub fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    assert!(
        sizes.iter().all(|&s| s > 0),
        "a zero-size chunk would end the body"
    );
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut rest = body;
    let mut index = 0;
    while !rest.is_empty() {
        let size = sizes[index.min(sizes.len() - 1)].min(rest.len());
        out.extend_from_slice(&chunk(&rest[..size]));
        rest = &rest[size..];
        index += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// One chunk: hex size, CRLF, the data, CRLF.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Sends `bytes` on a new connection and returns the final answer; panics on timeout or
/// a broken answer, naming what happened.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    conn.write_in_background(vec![Step::Write(bytes.to_vec())]);
    match conn.read_final(ANSWER_TIMEOUT).await {
        Ok((_, answer)) => answer,
        Err(e) => panic!("request to {addr} got no usable answer: {e:#}"),
    }
}
