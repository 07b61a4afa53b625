//! The TOML file's schema, exactly as written by users.
//!
//! These types only describe the file (serde, unknown keys refused, defaults filled in).
//! Checking that the values make sense is [`super::Config::from_file`]'s job.

use std::path::PathBuf;

use serde::Deserialize;

use super::custom::{Algorithm, Encoding, TimestampFormat};
use super::secret::SecretSource;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The webhook listener.
    pub server: ServerSection,
    /// The protected app.
    pub upstream: UpstreamSection,
    /// The replay and de-duplication store.
    pub store: StoreSection,
    /// The protected routes; at least one.
    #[serde(default)]
    pub routes: Vec<RouteSection>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address and port of the webhook listener, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Address and port of the admin listener (`/metrics`, `/livez`, `/readyz`).
    /// Default `127.0.0.1:9090`.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Worker threads. Default 2.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// What to do with paths that match no route: `refuse` (404, the default) or `forward`.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// Prefix of the trusted headers added for the app. Default `X-Hookwarden-`.
    #[serde(default = "default_prefix")]
    pub trusted_header_prefix: String,
    /// Longest pause while a client sends its body, in seconds. Default 10.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_seconds: u64,
    /// Longest time a client may take to send a whole body, however steadily, in seconds.
    /// Default 60.
    #[serde(default = "default_body_deadline")]
    pub body_deadline_seconds: u64,
    /// Longest time in-flight requests get to finish after SIGTERM, in seconds. Default 10.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
}

/// What happens to a request on a path that matches no route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// Answer 404 `no_route`.
    #[default]
    Refuse,
    /// Pass it to the app unverified (trusted headers are still stripped).
    Forward,
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// The app's base address, `http://host:port`.
    pub url: String,
    /// Longest wait for the app's response header, in seconds. Default 30.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_seconds: u64,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Where records live: `sled` (embedded, the default) or `redis` (shared).
    #[serde(default)]
    pub backend: BackendName,
    /// The sled directory (with `backend = "redis"`, only for `on_unavailable = "local"`).
    pub path: Option<PathBuf>,
    /// The Redis URL, inline or from `{ env = ... }` / `{ file = ... }` when it carries a
    /// password.
    pub redis_url: Option<UrlSource>,
    /// Prefix of every Redis key. Default `hookwarden`.
    #[serde(default = "default_redis_prefix")]
    pub redis_prefix: String,
    /// Connect and response timeout for Redis, in milliseconds. Default 1000.
    #[serde(default = "default_redis_timeout")]
    pub redis_timeout_ms: u64,
    /// What to do while Redis is unreachable: `refuse` (503, the default) or `local`.
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// How long processed events and signatures are remembered, in seconds. Default 7 days.
    #[serde(default = "default_retention")]
    pub retention_seconds: u64,
    /// When a processed mark is made durable. Default `always`.
    #[serde(default)]
    pub sync: SyncMode,
    /// How long an in-flight claim holds off copies if its holder dies, in seconds.
    /// Default: the upstream timeout plus 30.
    pub lease_seconds: Option<u64>,
    /// How often expired records are swept, in seconds. Default 60.
    #[serde(default = "default_sweep")]
    pub sweep_interval_seconds: u64,
    /// The bound of sled's page cache, in bytes. Default 16 MiB.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
}

/// The store backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    /// Embedded sled database.
    #[default]
    Sled,
    /// Shared Redis or Valkey server.
    Redis,
}

/// What the proxy does while the shared store cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// Refuse deliveries with 503 `store_unavailable` (fail closed).
    #[default]
    Refuse,
    /// De-duplicate in the local sled store meanwhile, with a warning and a metric.
    Local,
}

/// A URL written inline, or read from the environment or a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum UrlSource {
    /// Written in the config.
    Inline(String),
    /// From an environment variable or a file.
    From(SecretSource),
}

/// When a processed mark reaches the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Before the sender gets its 2xx: survives `kill -9` and power loss.
    #[default]
    Always,
    /// In the background, about every half second: faster, may forget the last moments
    /// after a crash (the app may then see a redelivery).
    Interval,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Name used in logs, metrics and the trusted route header.
    pub name: String,
    /// Exact request path.
    pub path: String,
    /// Signature scheme: `aj`, `standard-webhooks`, `stripe`, `github`, `slack`, `shopify`
    /// or `custom`.
    pub scheme: String,
    /// Largest accepted age of the signed time, in seconds. Default 300.
    #[serde(default = "default_tolerance")]
    pub tolerance_seconds: u64,
    /// Largest accepted lead of the signed time over our clock, in seconds.
    /// Default: `tolerance_seconds`.
    pub tolerance_future_seconds: Option<u64>,
    /// Event types to accept; others get 422 `event_not_allowed`. Default: all.
    pub events: Option<Vec<String>>,
    /// `false` runs the route in shadow mode: everything is forwarded, with trusted headers
    /// saying whether it verified and why not. Default `true`.
    #[serde(default = "default_true")]
    pub enforce: bool,
    /// Largest accepted body, in bytes. Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Where the shared secret comes from.
    #[serde(default)]
    pub secrets: Vec<SecretSource>,
    /// The signature description; read only with `scheme = "custom"`, and required there.
    pub custom: Option<CustomSection>,
}

/// `[routes.custom]`: a sender's signature scheme, described (see [`super::CustomScheme`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSection {
    /// The header holding the signature(s), e.g. `X-Acme-Signature`.
    pub signature_header: String,
    /// Text before each digest, e.g. `sha256=`. Default: none.
    pub signature_prefix: Option<String>,
    /// How digests are written: `hex` or `base64`.
    pub encoding: Encoding,
    /// What separates several signatures in one header value. Default: one per value.
    pub separator: Option<String>,
    /// The signed bytes: `{timestamp}`, `{id}` and `{body}` between literal text, e.g.
    /// `{timestamp}.{body}`.
    pub signed_content: String,
    /// The timestamp header. Default: none (replays then rest on de-duplication alone).
    pub timestamp_header: Option<String>,
    /// How the timestamp is written: `unix`, `unix_ms` or `rfc3339`. Required with a
    /// timestamp header.
    pub timestamp_format: Option<TimestampFormat>,
    /// Where the event id is, in order: `header:<Name>` or `body:<top-level field>`.
    /// Default: none (the digest is the id).
    #[serde(default)]
    pub id_sources: Vec<String>,
    /// `sha256` (the default) or `sha512`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// The event type header; when set, requests without it are refused. Default: none.
    pub event_header: Option<String>,
    /// How secrets are read: `raw` (as written, the default) or `whsec` (a secret written
    /// `whsec_<base64>` is decoded, as Standard Webhooks senders mean it).
    #[serde(default)]
    pub secret_format: SecretFormat,
}

/// How a custom route's secrets are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretFormat {
    /// As written.
    #[default]
    Raw,
    /// `whsec_<base64>` decoded.
    Whsec,
}

fn default_redis_prefix() -> String {
    "hookwarden".to_string()
}
fn default_redis_timeout() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_threads() -> usize {
    2
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".to_string()
}
fn default_prefix() -> String {
    "X-Hookwarden-".to_string()
}
fn default_body_timeout() -> u64 {
    10
}
fn default_body_deadline() -> u64 {
    60
}
fn default_grace() -> u64 {
    10
}
fn default_upstream_timeout() -> u64 {
    30
}
fn default_retention() -> u64 {
    7 * 24 * 3600
}
fn default_sweep() -> u64 {
    60
}
fn default_cache_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_tolerance() -> u64 {
    300
}
fn default_max_body() -> u64 {
    1024 * 1024
}
