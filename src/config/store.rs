//! Checking the `[store]` table: retention against the routes' tolerances, the lease
//! against the upstream timeout, and the backend's own settings.

use std::path::PathBuf;
use std::time::Duration;

use super::file::{BackendName, FileConfig, OnUnavailable, UrlSource};
use super::secret::Masked;
use super::{RedisConfig, Route, StoreBackend, StoreConfig};

/// The smallest page cache sled is given: below it, every read goes to disk.
const MIN_CACHE_BYTES: u64 = 1024 * 1024;

/// Checks `[store]`, adding every problem found.
pub(super) fn check_store(
    file: &FileConfig,
    routes: &[Route],
    problems: &mut Vec<String>,
) -> Option<StoreConfig> {
    let s = &file.store;
    let widest = routes
        .iter()
        .map(|r| r.tolerance.max(r.tolerance_future))
        .max()
        .unwrap_or_default();
    if Duration::from_secs(s.retention_seconds) < widest * 2 {
        problems.push(format!(
            "[store] retention_seconds = {} is below twice the largest tolerance ({} s): \
             a replay must not outlive its record",
            s.retention_seconds,
            widest.as_secs() * 2
        ));
    }
    let lease_seconds = s
        .lease_seconds
        .unwrap_or(file.upstream.timeout_seconds + 30);
    if lease_seconds <= file.upstream.timeout_seconds {
        problems.push(format!(
            "[store] lease_seconds = {lease_seconds} must exceed [upstream] timeout_seconds = {}: \
             a claim must outlive the delivery it guards",
            file.upstream.timeout_seconds
        ));
    }
    if s.cache_bytes < MIN_CACHE_BYTES {
        problems.push(format!(
            "[store] cache_bytes = {} is below {MIN_CACHE_BYTES} (1 MiB)",
            s.cache_bytes
        ));
    }
    if s.sweep_interval_seconds == 0 {
        problems.push("[store] sweep_interval_seconds must be at least 1".into());
    }

    let needs_path = match s.backend {
        BackendName::Sled => true,
        BackendName::Redis => s.on_unavailable == OnUnavailable::Local,
    };
    let path = s.path.clone().unwrap_or_default();
    if needs_path && path.as_os_str().is_empty() {
        problems.push(match s.backend {
            BackendName::Sled => "[store] path is missing or empty: the sled directory".into(),
            BackendName::Redis => {
                "[store] on_unavailable = \"local\" needs path, the local sled directory".into()
            }
        });
    }
    let backend = match s.backend {
        BackendName::Sled => {
            let redis_only = s.redis_url.is_some() || s.on_unavailable != OnUnavailable::Refuse;
            if redis_only {
                problems.push(
                    "[store] redis_url and on_unavailable apply only with backend = \"redis\""
                        .into(),
                );
            }
            StoreBackend::Sled
        }
        BackendName::Redis => StoreBackend::Redis(check_redis(s, problems)?),
    };

    Some(StoreConfig {
        backend,
        path: if needs_path { path } else { PathBuf::new() },
        retention: Duration::from_secs(s.retention_seconds),
        sync: s.sync,
        lease: Duration::from_secs(lease_seconds),
        sweep_interval: Duration::from_secs(s.sweep_interval_seconds),
        cache_bytes: s.cache_bytes,
    })
}

fn check_redis(s: &super::file::StoreSection, problems: &mut Vec<String>) -> Option<RedisConfig> {
    let url = match &s.redis_url {
        None => {
            problems.push("[store] backend = \"redis\" needs redis_url".into());
            return None;
        }
        Some(UrlSource::Inline(url)) => url.clone(),
        Some(UrlSource::From(source)) => match source.load_text() {
            Ok(url) => url,
            Err(e) => {
                problems.push(format!("[store] redis_url: {e}"));
                return None;
            }
        },
    };
    // The URL may hold a password: name the problem, never the value.
    let scheme_ok = [
        "redis://",
        "rediss://",
        "valkey://",
        "unix://",
        "redis+unix://",
    ]
    .iter()
    .any(|scheme| url.starts_with(scheme));
    if !scheme_ok || url::Url::parse(&url).is_err() {
        problems.push("[store] redis_url is not a redis:// URL".into());
    }
    let prefix_ok = !s.redis_prefix.is_empty()
        && s.redis_prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':');
    if !prefix_ok {
        problems.push("[store] redis_prefix must be non-empty printable ASCII without ':'".into());
    }
    if s.redis_timeout_ms == 0 {
        problems.push("[store] redis_timeout_ms must be at least 1".into());
    }
    Some(RedisConfig {
        url: Masked::new(url),
        prefix: s.redis_prefix.clone(),
        timeout: Duration::from_millis(s.redis_timeout_ms),
        on_unavailable: s.on_unavailable,
    })
}
