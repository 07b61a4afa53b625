//! `RecordingUpstream`: the application behind the proxy, played by a real HTTP server.
//!
//! It records every request exactly as it arrived (method, target, header lines, body
//! bytes) and answers from a script: a default reply plus a queue of one-off replies, each
//! with an optional delay. It can be stopped and started again on the same port, which is
//! how tests model an application that goes down and comes back. It does not try to judge
//! what it receives; the tests do that from the record.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// Path and query as received.
    pub target: String,
    /// Header lines in arrival order; names lower-case (as the HTTP library hands them
    /// over), values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body after HTTP framing was removed, byte for byte.
    pub body: Vec<u8>,
    /// Set when the body could not be read completely.
    pub body_error: Option<String>,
}

impl RecordedRequest {
    /// Every value of header `name` (any case), in order, as lossy text.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The single value of header `name`; panics if it appears more than once, since a
    /// trusted header that appears twice is itself a failure.
    pub fn header(&self, name: &str) -> Option<String> {
        let values = self.header_values(name);
        assert!(
            values.len() <= 1,
            "upstream got header {name} {} times: {values:?}",
            values.len()
        );
        values.into_iter().next()
    }

    /// Names of all headers that start with `prefix` (any case).
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.to_ascii_lowercase();
        self.headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra header lines (besides those the server adds itself).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// `200 {"ok":true}` with `Content-Type: application/json`, at once.
    pub fn ok() -> Self {
        Self::json(200, r#"{"ok":true}"#)
    }

    /// A JSON answer with this status and body.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

struct Script {
    default: Reply,
    queue: VecDeque<Reply>,
}

struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    script: Mutex<Script>,
    /// True while the server is told to stop; delayed answers give up their wait then.
    stopping: watch::Sender<bool>,
}

/// A recording HTTP server on 127.0.0.1.
pub struct RecordingUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl RecordingUpstream {
    /// Starts on an ephemeral port, answering `200 {"ok":true}`.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(Script {
                default: Reply::ok(),
                queue: VecDeque::new(),
            }),
            stopping: watch::Sender::new(false),
        });
        let task = Some(serve(listener, Arc::clone(&shared)));
        Self { addr, shared, task }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for the proxy's `[upstream] url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the answer given when no one-off answer is queued.
    pub fn set_default(&self, reply: Reply) {
        self.shared.script.lock().unwrap().default = reply;
    }

    /// Queues a one-off answer for the next request.
    pub fn push(&self, reply: Reply) {
        self.shared.script.lock().unwrap().queue.push_back(reply);
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// The only request received; panics with the count otherwise.
    pub fn single(&self) -> RecordedRequest {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "upstream requests: {:?}",
            summarise(&requests)
        );
        requests.into_iter().next().unwrap()
    }

    /// Waits up to `timeout` until at least `n` requests arrived; returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        while self.count() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.requests()
    }

    /// Stops answering: the port is closed, idle connections are closed, and answers that
    /// are still waiting out a delay are given at once. Returns when the server is gone.
    pub async fn stop(&mut self) {
        self.shared.stopping.send_replace(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                // A connection that will not close must not keep the port bound.
                task.abort();
            }
        }
    }

    /// Starts answering again on the same port (after [`stop`](Self::stop)).
    pub async fn restart(&mut self) {
        assert!(
            self.task.is_none(),
            "restart of an upstream that is running"
        );
        self.shared.stopping.send_replace(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebinding the upstream on {}: {e}", self.addr),
            }
        };
        self.task = Some(serve(listener, Arc::clone(&self.shared)));
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        self.shared.stopping.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Method, target and body size of each request, for assertion messages.
pub fn summarise(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} ({} B)", r.method, r.target, r.body.len()))
        .collect()
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    let mut stopping = shared.stopping.subscribe();
    let app = Router::new().fallback(record).with_state(shared);
    tokio::spawn(async move {
        let stop = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await;
    })
}

async fn record(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (body, body_error) = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => (bytes.to_vec(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body,
        body_error,
    };

    let reply = {
        let mut script = shared.script.lock().unwrap();
        script
            .queue
            .pop_front()
            .unwrap_or_else(|| script.default.clone())
    };
    shared.requests.lock().unwrap().push(recorded);

    if !reply.delay.is_zero() {
        let mut stopping = shared.stopping.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(reply.delay) => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
    }

    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}
