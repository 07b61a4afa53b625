//! A tiny "protected app" to put behind hookwarden in demos and manual tests.
//!
//! It accepts `POST` on any path, prints one line per request to stdout (the path, every
//! `X-Hookwarden-*` header it received and the body, cut to 200 characters) and answers
//! `200 {"ok":true}`. Other methods get `405`. It verifies nothing itself: that is the
//! proxy's job, and the printed headers show what the proxy vouched for.
//!
//! ```text
//! cargo run --release --example sample_app -- --listen 127.0.0.1:3000
//! ```

use std::net::SocketAddr;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use clap::Parser;

/// How many characters of a body are printed before it is cut.
const BODY_PREVIEW_CHARS: usize = 200;

/// The header prefix the proxy uses for the facts it vouches for (matched in lower case).
const TRUSTED_PREFIX: &str = "x-hookwarden-";

/// Command-line arguments of the sample app.
#[derive(Debug, Parser)]
#[command(about = "A sample app that prints the webhooks hookwarden forwards to it")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();

    // One line with the error chain, without the backtrace anyhow adds under RUST_BACKTRACE.
    match serve(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sample_app: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Listens on the configured address and serves until Ctrl-C or SIGTERM.
async fn serve(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("sample_app listening on http://{}", args.listen);

    let app = Router::new().fallback(handle);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    Ok(())
}

/// Prints one line describing the request and answers `200 {"ok":true}` to a `POST`.
async fn handle(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    if method != Method::POST {
        println!("{method} {} -> 405 (only POST is accepted)", uri.path());
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":false,"error":"method_not_allowed"}"#,
        );
    }

    println!(
        "app got POST {} [{}] body={}",
        uri.path(),
        trusted_headers(&headers),
        preview(&body)
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"ok":true}"#,
    )
}

/// Lists the `X-Hookwarden-*` headers as `name=value`, comma-separated, in arrival order.
fn trusted_headers(headers: &HeaderMap) -> String {
    let trusted: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with(TRUSTED_PREFIX))
        .map(|(name, value)| format!("{name}={}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    if trusted.is_empty() {
        "no x-hookwarden-* headers".to_owned()
    } else {
        trusted.join(", ")
    }
}

/// The body as text, cut to `BODY_PREVIEW_CHARS` characters with a marker when longer.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(BODY_PREVIEW_CHARS).collect();
    if text.chars().count() > BODY_PREVIEW_CHARS {
        cut.push('…');
    }
    cut
}

/// Resolves on Ctrl-C or SIGTERM, so the server stops accepting and drains.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
