//! The replay and de-duplication store: one interface, an embedded sled backend (the
//! default) and a shared Redis backend.
//!
//! A delivery is *claimed* before it goes to the app, *committed* when the app answers
//! 2xx, and *released* on anything else, so only what the app accepted is ever treated
//! as processed. A claim is a lease: if its holder dies, it lapses and the sender's
//! retry goes through. Both the event id and the matched signature digest are recorded,
//! so an exact replay is caught even when its unsigned headers were changed.
//!
//! This module knows nothing about HTTP; the proxy decides what each answer means.

mod record;
mod redis_backend;
mod sled_backend;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::Notify;

use crate::config::{OnUnavailable, StoreBackend, StoreConfig, SyncMode};

/// How often a waiting copy looks again even without a notification: the holder may be
/// another process, which cannot notify us.
const RECHECK: Duration = Duration::from_millis(250);

/// A store failure. The proxy refuses with 503 rather than forward without a record.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled failed (disk full, read-only, damaged, locked by another process).
    #[error("replay store failure: {0}")]
    Sled(#[from] sled::Error),
    /// A record could not be decoded.
    #[error(transparent)]
    Damaged(#[from] record::Damaged),
    /// Redis failed or could not be reached (the message never holds the URL).
    #[error("redis failure: {0}")]
    Redis(String),
    /// A flush was cut off (the process is shutting down).
    #[error("the replay store's flush did not finish")]
    FlushAborted,
    /// The sweep's thread could not be started or ended without an answer.
    #[error("the replay store's sweep did not run: {0}")]
    SweepThread(String),
    /// The local store is being reopened after a disk error.
    #[error("the replay store is being reopened after a disk error")]
    Reopening,
}

/// What a claim is about: an event id and the digest that verified, on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimKey {
    /// Route name (a namespace).
    pub route: String,
    /// Event id.
    pub event_id: String,
    /// The matched signature digest.
    pub digest: Vec<u8>,
}

/// A backend's answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Claimed for us.
    Granted,
    /// Already processed, under this event id.
    Duplicate {
        /// The id it was recorded under.
        event_id: String,
    },
    /// Someone holds a live claim.
    InFlight,
}

/// What a store keeps and how: the operations the request path needs.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// Claims `key` with `token` for `lease_ms`, unless processed or claimed already.
    async fn claim(
        &self,
        key: &ClaimKey,
        token: u64,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Verdict, StoreError>;
    /// Marks `key` processed (durably, as configured).
    async fn commit(&self, key: &ClaimKey, token: u64, now_ms: u64) -> Result<(), StoreError>;
    /// Deletes our claim on `key`, if it is still ours.
    async fn release(&self, key: &ClaimKey, token: u64) -> Result<(), StoreError>;
    /// Removes what has expired.
    async fn sweep(&self, now_ms: u64) -> Result<SweepReport, StoreError>;
    /// A cheap check that the backend answers.
    async fn probe(&self) -> Result<(), StoreError>;
    /// Writes everything to disk, where that means anything.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Size on disk, where known.
    fn disk_bytes(&self) -> Option<u64>;
}

/// The answer to a claim.
#[derive(Debug)]
pub enum Claim {
    /// Ours to deliver; commit or release the ticket when the app has answered.
    Granted(Ticket),
    /// The app already accepted this event (or these exact signed bytes).
    Duplicate {
        /// The id of the event it was recorded under.
        event_id: String,
    },
    /// Another copy is with the app right now.
    InFlight,
}

/// What a sweep found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Records looked at.
    pub scanned: u64,
    /// Expired records removed.
    pub removed: u64,
    /// Records left, where the backend counts them.
    pub entries: Option<u64>,
}

/// The replay store. Cheap to clone; clones share one backend.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    primary: Box<dyn Backend>,
    /// The local store used while the primary is unreachable (`on_unavailable = "local"`).
    fallback: Option<Box<dyn Backend>>,
    sync: SyncMode,
    lease_ms: u64,
    changed: Notify,
    next_token: AtomicU64,
    healthy: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.primary.name())
            .field("sync", &self.inner.sync)
            .finish_non_exhaustive()
    }
}

/// A granted claim. Dropping it unused releases the claim (in the background), so a
/// cancelled delivery never blocks its retries for the whole lease.
#[derive(Debug)]
pub struct Ticket {
    store: Option<Store>,
    key: ClaimKey,
    token: u64,
    fallback: bool,
}

impl Store {
    /// Opens the configured backend. sled opens its directory now; Redis connects on
    /// first use and reconnects after failures.
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let retention_ms = millis(config.retention);
        let local = || {
            let cache = config.cache_bytes;
            sled_backend::SledBackend::open(&config.path, cache, config.sync, retention_ms)
        };
        let (primary, fallback): (Box<dyn Backend>, Option<Box<dyn Backend>>) =
            match &config.backend {
                StoreBackend::Sled => (Box::new(local()?), None),
                StoreBackend::Redis(redis) => {
                    let primary = redis_backend::RedisBackend::connect(
                        redis.url.expose(),
                        &redis.prefix,
                        redis.timeout,
                        retention_ms,
                    )?;
                    let fallback: Option<Box<dyn Backend>> = match redis.on_unavailable {
                        OnUnavailable::Refuse => None,
                        OnUnavailable::Local => Some(Box::new(local()?)),
                    };
                    (Box::new(primary), fallback)
                }
            };
        Ok(Store::with_backends(primary, fallback, config))
    }

    fn with_backends(
        primary: Box<dyn Backend>,
        fallback: Option<Box<dyn Backend>>,
        config: &StoreConfig,
    ) -> Store {
        // Tokens only need to differ between claims; seeding from the clock keeps them
        // distinct across restarts and processes too.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Store {
            inner: Arc::new(Inner {
                primary,
                fallback,
                sync: config.sync,
                lease_ms: millis(config.lease),
                changed: Notify::new(),
                next_token: AtomicU64::new(seed as u64 ^ u64::from(std::process::id()) << 32),
                healthy: AtomicBool::new(true),
            }),
        }
    }

    /// Tries to claim an event (by id and by digest) for delivery at `now_ms`.
    pub async fn claim(
        &self,
        route: &str,
        event_id: &str,
        digest: &[u8],
        now_ms: u64,
    ) -> Result<Claim, StoreError> {
        let key = ClaimKey {
            route: route.to_string(),
            event_id: event_id.to_string(),
            digest: digest.to_vec(),
        };
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let lease = self.inner.lease_ms;

        let primary = self.inner.primary.claim(&key, token, now_ms, lease).await;
        let (verdict, fallback) = match (self.note(primary), &self.inner.fallback) {
            (Ok(verdict), _) => (verdict, false),
            (Err(error), Some(local)) => {
                tracing::warn!(%error, "shared store unreachable; de-duplicating locally");
                (local.claim(&key, token, now_ms, lease).await?, true)
            }
            (Err(error), None) => return Err(error),
        };

        Ok(match verdict {
            Verdict::Granted => Claim::Granted(Ticket {
                store: Some(self.clone()),
                key,
                token,
                fallback,
            }),
            Verdict::Duplicate { event_id } => Claim::Duplicate { event_id },
            Verdict::InFlight => Claim::InFlight,
        })
    }

    /// Claims like [`Store::claim`], but while another copy is in flight waits (up to
    /// `wait`) for its outcome instead of answering [`Claim::InFlight`] at once.
    pub async fn claim_or_wait(
        &self,
        route: &str,
        event_id: &str,
        digest: &[u8],
        wait: Duration,
        now_ms: impl Fn() -> u64,
    ) -> Result<Claim, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Listen before looking, so a commit between the two cannot be missed.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            match self.claim(route, event_id, digest, now_ms()).await? {
                Claim::InFlight if tokio::time::Instant::now() < deadline => {
                    let nap = deadline.min(tokio::time::Instant::now() + RECHECK);
                    let _ = tokio::time::timeout_at(nap, changed).await;
                }
                other => return Ok(other),
            }
        }
    }

    /// Whether the last store operation succeeded (for readiness).
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// Any failure makes the store unhealthy; only a probe, which writes, makes it healthy
    /// again (a read that succeeds proves nothing about a full disk).
    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.inner.healthy.store(false, Ordering::Relaxed);
        }
        result
    }

    /// The backend's name (`sled` or `redis`).
    pub fn backend(&self) -> &'static str {
        self.inner.primary.name()
    }

    /// Whether processed marks are flushed before the sender is answered.
    pub fn sync(&self) -> SyncMode {
        self.inner.sync
    }

    /// Checks that the backend answers, for readiness.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let probed = self.inner.primary.probe().await;
        self.inner.healthy.store(probed.is_ok(), Ordering::Relaxed);
        probed
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let flushed = self.inner.primary.flush().await;
        if let Some(local) = &self.inner.fallback {
            local.flush().await?;
        }
        self.note(flushed)
    }

    /// Removes processed records past the retention and claims past their lease.
    pub async fn sweep(&self, now_ms: u64) -> Result<SweepReport, StoreError> {
        if let Some(local) = &self.inner.fallback {
            local.sweep(now_ms).await?;
        }
        let swept = self.inner.primary.sweep(now_ms).await;
        self.note(swept)
    }

    /// Size of the store on disk, in bytes, where known.
    pub fn disk_bytes(&self) -> Option<u64> {
        self.inner.primary.disk_bytes()
    }

    fn backend_of(&self, fallback: bool) -> &dyn Backend {
        match (&self.inner.fallback, fallback) {
            (Some(local), true) => local.as_ref(),
            _ => self.inner.primary.as_ref(),
        }
    }
}

impl Ticket {
    /// The event id this ticket claims.
    pub fn event_id(&self) -> &str {
        &self.key.event_id
    }

    /// Whether the claim was made in the local fallback store.
    pub fn used_fallback(&self) -> bool {
        self.fallback
    }

    /// Marks the event processed at `now_ms`; with `sync = "always"` (sled) it is on
    /// disk when this returns.
    pub async fn commit(mut self, now_ms: u64) -> Result<(), StoreError> {
        let Some(store) = self.store.take() else {
            return Ok(());
        };
        let committed = store
            .backend_of(self.fallback)
            .commit(&self.key, self.token, now_ms)
            .await;
        store.inner.changed.notify_waiters();
        if self.fallback {
            committed
        } else {
            store.note(committed)
        }
    }

    /// Gives the claim up, so a retry can deliver the event.
    pub async fn release(mut self) -> Result<(), StoreError> {
        let Some(store) = self.store.take() else {
            return Ok(());
        };
        let released = store
            .backend_of(self.fallback)
            .release(&self.key, self.token)
            .await;
        store.inner.changed.notify_waiters();
        if self.fallback {
            released
        } else {
            store.note(released)
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (key, token, fallback) = (self.key.clone(), self.token, self.fallback);
        runtime.spawn(async move {
            let ticket = Ticket {
                store: Some(store),
                key,
                token,
                fallback,
            };
            if let Err(error) = ticket.release().await {
                let message = "could not release an abandoned claim; its lease will lapse";
                tracing::warn!(%error, message);
            }
        });
    }
}

/// The store once it is open. The proxy starts without it when the directory cannot be
/// opened (another process holds its lock, the disk is not mounted yet), refuses
/// deliveries with 503 meanwhile, and keeps trying; `/readyz` says so.
#[derive(Default)]
pub struct StoreSlot(OnceLock<Store>);

impl StoreSlot {
    /// The store, if it is open.
    pub fn get(&self) -> Option<&Store> {
        self.0.get()
    }

    /// Puts the opened store in place (once; later calls are ignored).
    pub fn fill(&self, store: Store) {
        let _ = self.0.set(store);
    }
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
