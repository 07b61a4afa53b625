//! The admin listener: `/metrics`, `/livez` and `/readyz`, on a port of their own so that
//! probes and scrapes never pass through the verifying listener.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::metrics::Metrics;
use crate::store::StoreSlot;

/// What the admin endpoints report on.
pub struct Admin {
    metrics: Arc<Metrics>,
    store: Arc<StoreSlot>,
    running: Arc<AtomicBool>,
}

impl Admin {
    /// `running` turns true once the server's listeners are up.
    pub fn new(metrics: Arc<Metrics>, store: Arc<StoreSlot>, running: Arc<AtomicBool>) -> Self {
        Admin {
            metrics,
            store,
            running,
        }
    }

    /// Why the proxy is not ready, if it is not.
    fn not_ready_because(&self) -> Option<&'static str> {
        if !self.running.load(Ordering::SeqCst) {
            return Some("starting");
        }
        match self.store.get() {
            None => Some("store_not_open"),
            Some(store) if !store.is_healthy() => Some("store_failing"),
            Some(_) => None,
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        if request.method != Method::GET && request.method != Method::HEAD {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"error":"method_not_allowed"}"#,
            );
        }
        match request.uri.path() {
            "/metrics" => {
                let text = self.metrics.render();
                Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .header("Content-Length", text.len())
                    .body(text)
                    .unwrap_or_default()
            }
            "/livez" => json(StatusCode::OK, r#"{"status":"ok"}"#),
            "/readyz" => match self.not_ready_because() {
                None => json(StatusCode::OK, r#"{"status":"ready"}"#),
                Some(reason) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({ "status": "not_ready", "reason": reason }).to_string(),
                ),
            },
            _ => json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#),
        }
    }
}

fn json(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .header("Content-Length", body.len())
        .body(body.as_bytes().to_vec())
        .unwrap_or_default()
}
