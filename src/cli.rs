//! The command line: `run`, `check`, `sign` and `verify`.
//!
//! Each command returns an [`Exit`] code; `main` only parses, starts logging and exits.
//! What each scheme's sender puts on a request is in [`sign`]; reading a saved request
//! and explaining a refusal is in [`verify`].

mod request_file;
pub mod sign;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use crate::config::{Config, ConfigError};

/// Default config file, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/hookwarden.toml";

/// Process exit codes (sysexits where one fits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A runtime failure (port taken, store locked, sender unreachable).
    Failure = 1,
    /// Bad command-line usage.
    Usage = 64,
    /// The config is invalid.
    Config = 78,
}

/// hookwarden: lets only genuine webhooks through to your app.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format; JSON by default when stderr is not a terminal.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Run {
        /// Config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check the config and secrets, report every problem, open nothing.
    Check {
        /// Config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Also connect to a Redis store and ping it (the default opens nothing).
        #[arg(long)]
        connect: bool,
    },
    /// Print the signed headers for a body, or send it signed.
    Sign(SignArgs),
    /// Check a saved request against a route's scheme; say which check fails and why.
    /// Exits 0 when it verifies, 1 when it is refused.
    Verify(verify::VerifyArgs),
}

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Config file (the route's secret is read as configured).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Route whose scheme and secret to use.
    #[arg(long)]
    pub route: String,
    /// File holding the exact body.
    #[arg(long)]
    pub body: PathBuf,
    /// Event type header value (aj: default the body's top-level "event"; required for
    /// github, shopify, and custom schemes with an event header).
    #[arg(long)]
    pub event: Option<String>,
    /// Signing time as sent, in the scheme's format (RFC 3339 for aj, Unix seconds for
    /// stripe, slack and standard-webhooks); default: now.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Delivery id header value (aj, github, shopify, custom; standard-webhooks'
    /// webhook-id, default msg_<timestamp>_<nanoseconds>).
    #[arg(long)]
    pub id: Option<String>,
    /// Id of the route's secret to sign with; default: the first.
    #[arg(long)]
    pub key: Option<String>,
    /// Send the request to this URL and print the answer.
    #[arg(long)]
    pub send: Option<String>,
    /// With --send: exit 0 only if the answer's status matches, else 1. A code (`401`),
    /// a class (`2xx`), or a comma-separated list of them.
    #[arg(long, requires = "send", value_parser = parse_expected_status)]
    pub expect_status: Option<ExpectedStatus>,
}

/// Statuses `sign --send --expect-status` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStatus(Vec<(u16, u16)>);

impl ExpectedStatus {
    /// Whether `status` is one of the expected ones.
    pub fn matches(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }
}

fn parse_expected_status(spec: &str) -> Result<ExpectedStatus, String> {
    let ranges = spec
        .split(',')
        .map(|item| {
            let item = item.trim().to_ascii_lowercase();
            let class = item.strip_suffix("xx").and_then(|d| d.parse::<u16>().ok());
            match (class, item.parse::<u16>()) {
                (Some(class @ 1..=5), _) => Ok((class * 100, class * 100 + 99)),
                (None, Ok(code @ 100..=599)) => Ok((code, code)),
                _ => Err(format!(
                    "{item:?} is neither a status code (401) nor a class (2xx)"
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ExpectedStatus(ranges))
}

/// Runs a parsed command line.
pub fn execute(command: Command) -> Exit {
    match command {
        Command::Run { config } => run(&config),
        Command::Check { config, connect } => check(&config, connect),
        Command::Sign(args) => sign_body(&args),
        Command::Verify(args) => verify::verify(&args),
    }
}

/// Loads the config, printing why it cannot be used.
fn load(path: &std::path::Path) -> Result<Config, Exit> {
    Config::load(path).map_err(|e| {
        eprintln!("hookwarden: {e}");
        match e {
            ConfigError::Read { .. } | ConfigError::Parse { .. } | ConfigError::Invalid { .. } => {
                Exit::Config
            }
        }
    })
}

fn run(path: &std::path::Path) -> Exit {
    let config = match load(path) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    match crate::server::run(config) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            tracing::error!(error = %e, "hookwarden cannot start");
            eprintln!("hookwarden: {e}");
            Exit::Failure
        }
    }
}

fn check(path: &std::path::Path, connect: bool) -> Exit {
    let config = match load(path) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    if connect {
        if let Err(message) = connect_store(&config) {
            eprintln!("hookwarden: {message}");
            return Exit::Failure;
        }
    }
    println!(
        "{}: ok ({} route(s), upstream {}:{})",
        path.display(),
        config.routes.len(),
        config.upstream.host,
        config.upstream.port
    );
    Exit::Ok
}

/// Pings a Redis store; a sled store is left closed (opening it would take its lock
/// from a running proxy).
fn connect_store(config: &Config) -> Result<(), String> {
    let crate::config::StoreBackend::Redis(redis) = &config.store.backend else {
        println!(
            "store: sled at {} (not opened)",
            config.store.path.display()
        );
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let local_only = crate::config::StoreConfig {
        backend: crate::config::StoreBackend::Redis(crate::config::RedisConfig {
            on_unavailable: crate::config::OnUnavailable::Refuse,
            ..redis.clone()
        }),
        ..config.store.clone()
    };
    runtime.block_on(async {
        let store = crate::store::Store::open(&local_only).map_err(|e| e.to_string())?;
        store
            .probe()
            .await
            .map_err(|e| format!("the Redis store does not answer: {e}"))
    })?;
    println!("store: redis answers");
    Ok(())
}

fn sign_body(args: &SignArgs) -> Exit {
    let config = match load(&args.config) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let Some(route) = config.route_named(&args.route) else {
        eprintln!(
            "hookwarden: no route named {:?} in {}",
            args.route,
            args.config.display()
        );
        return Exit::Usage;
    };
    let body = match std::fs::read(&args.body) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("hookwarden: cannot read {}: {e}", args.body.display());
            return Exit::Usage;
        }
    };

    let key = match &args.key {
        None => route.secrets.first(),
        Some(id) => route
            .key_ids
            .iter()
            .position(|k| k == id)
            .and_then(|i| route.secrets.get(i)),
    };
    let Some(key) = key else {
        eprintln!(
            "hookwarden: route {:?} has no secret with that id",
            route.name
        );
        return Exit::Usage;
    };
    let input = sign::SignInput {
        body: &body,
        key: key.expose(),
        timestamp: args.timestamp.as_deref(),
        id: args.id.as_deref(),
        event: args.event.as_deref(),
        now: OffsetDateTime::now_utc(),
    };
    let headers = match sign::headers(route, &input) {
        Ok(headers) => headers,
        Err(message) => {
            eprintln!("hookwarden: {message}");
            return Exit::Usage;
        }
    };

    match &args.send {
        None => {
            for (name, value) in &headers {
                println!("{name}: {value}");
            }
            Exit::Ok
        }
        Some(url) => send(url, &headers, body, args.expect_status.as_ref()),
    }
}

/// Now, as senders write it: UTC, whole seconds, `Z`.
pub fn now_rfc3339() -> String {
    rfc3339_seconds(OffsetDateTime::now_utc())
}

/// `at` as senders write it: UTC, whole seconds, `Z`.
pub fn rfc3339_seconds(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn send(
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    expected: Option<&ExpectedStatus>,
) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hookwarden: cannot start a runtime: {e}");
            return Exit::Failure;
        }
    };
    match runtime.block_on(post(url, headers, Bytes::from(body))) {
        Ok((status, answer)) => {
            println!("HTTP {status}");
            println!("{}", String::from_utf8_lossy(&answer));
            match expected {
                Some(expected) if !expected.matches(status) => {
                    eprintln!("hookwarden: HTTP {status} is not the expected status");
                    Exit::Failure
                }
                _ => Exit::Ok,
            }
        }
        Err(message) => {
            eprintln!("hookwarden: cannot send to {url}: {message}");
            Exit::Failure
        }
    }
}

async fn post(
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> Result<(u16, Vec<u8>), String> {
    use pingora::connectors::http::Connector;
    use pingora::upstreams::peer::HttpPeer;

    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    if url.scheme() != "http" {
        return Err("only http:// URLs are supported".into());
    }
    let host = url
        .host_str()
        .ok_or("the URL has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };

    let mut peer = HttpPeer::new((host.as_str(), port), false, String::new());
    peer.options.connection_timeout = Some(Duration::from_secs(5));
    peer.options.read_timeout = Some(Duration::from_secs(60));
    let connector = Connector::new(None);
    let (mut session, _) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| e.root_cause().to_string())?;

    let mut request = pingora::http::RequestHeader::build("POST", target.as_bytes(), None)
        .map_err(|e| e.to_string())?;
    let authority = url[url::Position::BeforeHost..url::Position::AfterPort].to_string();
    let fixed = [
        ("Host".to_string(), authority),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    for (name, value) in fixed.iter().chain(headers) {
        request
            .insert_header(name.clone(), value.as_str())
            .map_err(|e| e.to_string())?;
    }

    session
        .write_request_header(Box::new(request))
        .await
        .map_err(|e| e.to_string())?;
    session
        .write_request_body(body, true)
        .await
        .map_err(|e| e.to_string())?;
    session
        .finish_request_body()
        .await
        .map_err(|e| e.to_string())?;
    session
        .read_response_header()
        .await
        .map_err(|e| e.to_string())?;
    let status = session.response_header().map_or(0, |h| h.status.as_u16());
    let mut answer = Vec::new();
    while let Some(chunk) = session
        .read_response_body()
        .await
        .map_err(|e| e.to_string())?
    {
        answer.extend_from_slice(&chunk);
    }
    Ok((status, answer))
}

#[cfg(test)]
mod expected_status_tests {
    use super::*;

    #[test]
    fn codes_classes_and_lists() {
        let spec = parse_expected_status("2xx, 401").unwrap();
        assert!(spec.matches(200) && spec.matches(299) && spec.matches(401));
        assert!(!spec.matches(300) && !spec.matches(400) && !spec.matches(503));
        assert!(parse_expected_status("6xx").is_err());
        assert!(parse_expected_status("abc").is_err());
        assert!(parse_expected_status("99").is_err());
    }
}
