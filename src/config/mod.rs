//! Configuration: the TOML file, checked and turned into the values the proxy runs on.
//!
//! [`Config::load`] reads a file, refuses unknown keys, checks every value, loads every
//! secret and reports all problems at once, so `hookwarden check` can list them in one
//! go. Nothing here opens a socket or the store.

mod custom;
mod file;
mod routes;
mod secret;
mod store;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use custom::{
    parse_template, Algorithm, CustomScheme, Encoding, IdSpec, TemplatePart, TimestampFormat,
    TimestampSpec,
};
pub use file::{CustomSection, FileConfig, OnUnavailable, SecretFormat, SyncMode, Unmatched};
use routes::check_routes;
pub use secret::Masked;
pub use secret::{
    KeyForm, Secret, SecretError, SecretSource, MIN_SECRET_BYTES, MIN_WHSEC_KEY_BYTES, WHSEC_PREFIX,
};
use store::check_store;

/// The signature schemes hookwarden knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    /// The internal event bus (`X-AJ-*` headers).
    Aj,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks,
    /// Stripe (`Stripe-Signature: t=…,v1=…`).
    Stripe,
    /// GitHub (`X-Hub-Signature-256`).
    Github,
    /// Slack (`X-Slack-Signature`, `X-Slack-Request-Timestamp`).
    Slack,
    /// Shopify (`X-Shopify-Hmac-Sha256`).
    Shopify,
    /// Described in the route's `[routes.custom]` table.
    Custom,
}

impl SchemeKind {
    /// Every scheme, in the order the docs list them.
    pub const ALL: [SchemeKind; 7] = [
        SchemeKind::Aj,
        SchemeKind::StandardWebhooks,
        SchemeKind::Stripe,
        SchemeKind::Github,
        SchemeKind::Slack,
        SchemeKind::Shopify,
        SchemeKind::Custom,
    ];

    /// Parses a scheme name from the config.
    pub fn from_name(name: &str) -> Option<Self> {
        SchemeKind::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scheme's name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            SchemeKind::Aj => "aj",
            SchemeKind::StandardWebhooks => "standard-webhooks",
            SchemeKind::Stripe => "stripe",
            SchemeKind::Github => "github",
            SchemeKind::Slack => "slack",
            SchemeKind::Shopify => "shopify",
            SchemeKind::Custom => "custom",
        }
    }

    /// How the route's secrets become key bytes: only Standard Webhooks decodes `whsec_`
    /// (Stripe's secrets look alike but are used as written).
    pub fn key_form(self) -> KeyForm {
        match self {
            SchemeKind::StandardWebhooks => KeyForm::Whsec,
            _ => KeyForm::Raw,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The webhook listener.
    pub server: ServerConfig,
    /// The protected app.
    pub upstream: UpstreamConfig,
    /// The replay store.
    pub store: StoreConfig,
    /// The protected routes, in file order.
    pub routes: Vec<Route>,
}

/// The webhook listener's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen for webhooks.
    pub listen: SocketAddr,
    /// Where to serve `/metrics`, `/livez` and `/readyz`.
    pub admin_listen: SocketAddr,
    /// Worker threads.
    pub threads: usize,
    /// What to do with paths that match no route.
    pub unmatched: Unmatched,
    /// Prefix of the trusted headers, as configured (case kept for the headers we add).
    pub trusted_header_prefix: String,
    /// Longest pause while a client sends its body.
    pub body_timeout: Duration,
    /// Longest time a client may take to send a whole body.
    pub body_deadline: Duration,
    /// Longest time in-flight requests get after SIGTERM.
    pub shutdown_grace: Duration,
}

/// The protected app.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Host name or address of the app.
    pub host: String,
    /// Port of the app.
    pub port: u16,
    /// Longest wait for the app's response header.
    pub timeout: Duration,
}

/// The replay store's settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Which backend, and its settings.
    pub backend: StoreBackend,
    /// The sled directory (empty when no sled store is used).
    pub path: PathBuf,
    /// How long processed events and signatures are remembered.
    pub retention: Duration,
    /// When a processed mark is made durable.
    pub sync: SyncMode,
    /// How long an in-flight claim holds off copies if its holder dies.
    pub lease: Duration,
    /// How often expired records are swept.
    pub sweep_interval: Duration,
    /// The bound of sled's page cache, in bytes.
    pub cache_bytes: u64,
}

/// The replay store's backend.
#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// Embedded sled database at `path`.
    Sled,
    /// Shared Redis.
    Redis(RedisConfig),
}

/// Settings of the Redis backend.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The URL; it may carry a password, so it prints masked.
    pub url: Masked,
    /// Prefix of every key.
    pub prefix: String,
    /// Connect and response timeout.
    pub timeout: Duration,
    /// What to do while Redis cannot be reached.
    pub on_unavailable: OnUnavailable,
}

/// One protected route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name for logs, metrics and the trusted route header.
    pub name: String,
    /// Exact request path.
    pub path: String,
    /// The sender's signature scheme.
    pub scheme: SchemeKind,
    /// The signature description, exactly when `scheme` is [`SchemeKind::Custom`].
    pub custom: Option<CustomScheme>,
    /// Largest accepted age of the signed time.
    pub tolerance: Duration,
    /// Largest accepted lead of the signed time over our clock.
    pub tolerance_future: Duration,
    /// Event types accepted; `None` accepts all.
    pub events: Option<Vec<String>>,
    /// `false`: shadow mode, everything is forwarded with the verdict in trusted headers.
    pub enforce: bool,
    /// Largest accepted body, in bytes.
    pub max_body_bytes: u64,
    /// The secrets; any one of them verifies.
    pub secrets: Vec<Secret>,
    /// Where the secrets come from, to re-read them when their files change.
    pub sources: Vec<SecretSource>,
    /// Each secret's id (configured, or its position), parallel to `secrets`.
    pub key_ids: Vec<String>,
}

impl Route {
    /// How the route's secrets become key bytes: as its scheme, or its custom table, says.
    pub fn key_form(&self) -> KeyForm {
        self.custom
            .as_ref()
            .map_or_else(|| self.scheme.key_form(), |spec| spec.key_form)
    }

    /// Re-reads the route's secrets. `Ok(None)` when nothing changed; an error leaves the
    /// running secrets in place (a half-written file must not lock senders out).
    pub fn reread_secrets(&self) -> Result<Option<Vec<Secret>>, SecretError> {
        let fresh = self
            .sources
            .iter()
            .map(|source| source.load_as(self.key_form()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((fresh != self.secrets).then_some(fresh))
    }
}

/// Why a config could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid TOML for our schema (syntax, types, unknown keys).
    #[error("config file {path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong (the offending text is not repeated, it may hold a secret).
        message: String,
    },
    /// The file parsed, but some values are unusable.
    #[error("config file {path} has {} problem(s):\n{}", .problems.len(), Bullets(.problems))]
    Invalid {
        /// The file.
        path: String,
        /// Every problem found, one sentence each.
        problems: Vec<String>,
    },
}

struct Bullets<'a>(&'a [String]);

impl fmt::Display for Bullets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and checks a config file, loading its secrets.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Config::parse(&text, &shown)
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        Config::from_file(file).map_err(|problems| ConfigError::Invalid {
            path: origin.to_string(),
            problems,
        })
    }

    /// Checks every value of a parsed file and loads the secrets; every problem is listed.
    pub fn from_file(file: FileConfig) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();

        let server = check_server(&file.server, &mut problems);
        let upstream = check_upstream(&file.upstream, &mut problems);
        let routes = check_routes(&file.routes, &mut problems);
        let store = check_store(&file, &routes, &mut problems);

        match (server, upstream, store) {
            (Some(server), Some(upstream), Some(store)) if problems.is_empty() => Ok(Config {
                server,
                upstream,
                store,
                routes,
            }),
            _ => Err(problems),
        }
    }

    /// The route whose path is exactly `path`.
    pub fn route_for(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.path == path)
    }

    /// The route named `name`.
    pub fn route_named(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn check_server(s: &file::ServerSection, problems: &mut Vec<String>) -> Option<ServerConfig> {
    let listen = s.listen.parse::<SocketAddr>().map_err(|_| {
        problems.push(format!(
            "[server] listen = {:?} is not an address and port such as 127.0.0.1:8080",
            s.listen
        ))
    });
    let admin_listen = s.admin_listen.parse::<SocketAddr>().map_err(|_| {
        problems.push(format!(
            "[server] admin_listen = {:?} is not an address and port such as 127.0.0.1:9090",
            s.admin_listen
        ))
    });
    if let (Ok(a), Ok(b)) = (&listen, &admin_listen) {
        if a == b {
            problems.push("[server] admin_listen must differ from listen".into());
        }
    }
    if s.threads == 0 {
        problems.push("[server] threads must be at least 1".into());
    }
    let prefix_ok = !s.trusted_header_prefix.is_empty()
        && http::HeaderName::from_bytes(s.trusted_header_prefix.as_bytes()).is_ok();
    if !prefix_ok {
        problems.push(format!(
            "[server] trusted_header_prefix = {:?} is not a valid header name prefix",
            s.trusted_header_prefix
        ));
    }
    if s.body_timeout_seconds == 0 {
        problems.push("[server] body_timeout_seconds must be at least 1".into());
    }
    if s.body_deadline_seconds < s.body_timeout_seconds {
        problems
            .push("[server] body_deadline_seconds must be at least body_timeout_seconds".into());
    }
    Some(ServerConfig {
        listen: listen.ok()?,
        admin_listen: admin_listen.ok()?,
        threads: s.threads,
        unmatched: s.unmatched,
        trusted_header_prefix: s.trusted_header_prefix.clone(),
        body_timeout: Duration::from_secs(s.body_timeout_seconds),
        body_deadline: Duration::from_secs(s.body_deadline_seconds),
        shutdown_grace: Duration::from_secs(s.shutdown_grace_seconds),
    })
}

fn check_upstream(u: &file::UpstreamSection, problems: &mut Vec<String>) -> Option<UpstreamConfig> {
    if u.timeout_seconds == 0 {
        problems.push("[upstream] timeout_seconds must be at least 1".into());
    }
    let url = match url::Url::parse(&u.url) {
        Ok(url) => url,
        Err(e) => {
            problems.push(format!("[upstream] url = {:?} is not a URL: {e}", u.url));
            return None;
        }
    };
    if url.scheme() != "http" {
        problems.push(format!(
            "[upstream] url = {:?}: only http:// is supported (the app runs beside the proxy)",
            u.url
        ));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        problems.push(format!(
            "[upstream] url = {:?} must be just http://host:port (requests keep their own path)",
            u.url
        ));
    }
    let host = url
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_string());
    let Some(host) = host else {
        problems.push(format!("[upstream] url = {:?} has no host", u.url));
        return None;
    };
    Some(UpstreamConfig {
        host,
        port: url.port_or_known_default().unwrap_or(80),
        timeout: Duration::from_secs(u.timeout_seconds),
    })
}

#[cfg(test)]
mod tests;
