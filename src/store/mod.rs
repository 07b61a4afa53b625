//! The replay and de-duplication store, on an embedded sled database.
//!
//! A delivery is *claimed* before it goes to the app, *committed* when the app answers
//! 2xx, and *released* on anything else, so only what the app accepted is ever treated
//! as processed. A claim is a lease: if its holder dies, it lapses and the sender's
//! retry goes through. Both the event id and the matched signature digest are recorded,
//! so an exact replay is caught even when its unsigned headers were changed.
//!
//! This module knows nothing about HTTP; the proxy decides what each answer means.

mod record;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use thiserror::Error;
use tokio::sync::Notify;

use crate::config::{StoreConfig, SyncMode};
use record::{Record, State};

/// sled's page cache bound: small, since records are tiny and mostly written once.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How often sled writes its log in the background, in milliseconds (`sync = "interval"`).
const BACKGROUND_FLUSH_MS: u64 = 500;

/// A store failure. The proxy refuses with 503 rather than forward without a record.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled failed (disk full, read-only, damaged, locked by another process).
    #[error("replay store failure: {0}")]
    Sled(#[from] sled::Error),
    /// A record could not be decoded.
    #[error(transparent)]
    Damaged(#[from] record::Damaged),
}

impl From<TransactionError<record::Damaged>> for StoreError {
    fn from(e: TransactionError<record::Damaged>) -> Self {
        match e {
            TransactionError::Abort(damaged) => StoreError::Damaged(damaged),
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
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

/// What the store counted in one sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Records looked at.
    pub scanned: u64,
    /// Expired records removed.
    pub removed: u64,
}

/// The replay store. Cheap to clone; clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    sync: SyncMode,
    lease_ms: u64,
    retention_ms: u64,
    changed: Notify,
    next_token: AtomicU64,
    healthy: AtomicBool,
}

/// A granted claim. Dropping it unused releases the claim, so a cancelled delivery
/// never blocks its retries for the whole lease.
#[derive(Debug)]
pub struct Ticket {
    store: Option<Store>,
    keys: [Vec<u8>; 2],
    token: u64,
    event_id: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("sync", &self.inner.sync)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store directory.
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(&config.path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(BACKGROUND_FLUSH_MS))
            .open()?;
        // Tokens only need to differ between claims; seeding from the clock keeps them
        // distinct across restarts too.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                sync: config.sync,
                lease_ms: millis(config.lease),
                retention_ms: millis(config.retention),
                changed: Notify::new(),
                next_token: AtomicU64::new(seed as u64),
                healthy: AtomicBool::new(true),
            }),
        })
    }

    /// Tries to claim an event (by id and by digest) for delivery at `now_ms`.
    pub fn claim(
        &self,
        route: &str,
        event_id: &str,
        digest: &[u8],
        now_ms: u64,
    ) -> Result<Claim, StoreError> {
        let keys = [
            record::event_key(route, event_id),
            record::signature_key(route, digest),
        ];
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let claim = Record {
            state: State::Claimed {
                lease_until_ms: now_ms + self.inner.lease_ms,
                token,
            },
            event_id: event_id.to_string(),
        }
        .encode();

        let verdict = self.inner.db.transaction(|tx| {
            for key in &keys {
                let Some(value) = tx.get(key)? else { continue };
                let found = Record::decode(&value).map_err(ConflictableTransactionError::Abort)?;
                match found.state {
                    State::Processed { .. } => {
                        let event_id = if found.event_id.is_empty() {
                            event_id.to_string()
                        } else {
                            found.event_id
                        };
                        return Ok(Some(Claim::Duplicate { event_id }));
                    }
                    State::Claimed { lease_until_ms, .. } if lease_until_ms > now_ms => {
                        return Ok(Some(Claim::InFlight));
                    }
                    State::Claimed { .. } => {}
                }
            }
            for key in &keys {
                tx.insert(key.as_slice(), claim.as_slice())?;
            }
            Ok(None)
        });
        let verdict = self.note(verdict.map_err(StoreError::from))?;

        Ok(verdict.unwrap_or_else(|| {
            Claim::Granted(Ticket {
                store: Some(self.clone()),
                keys,
                token,
                event_id: event_id.to_string(),
            })
        }))
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

            match self.claim(route, event_id, digest, now_ms())? {
                Claim::InFlight if tokio::time::Instant::now() < deadline => {
                    // Also wake now and then: the holder may be another process's lapsed
                    // lease, which sends no notification.
                    let nap = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
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

    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.inner.healthy.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    /// Whether processed marks are flushed before the sender is answered.
    pub fn sync(&self) -> SyncMode {
        self.inner.sync
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let flushed = self
            .inner
            .db
            .flush_async()
            .await
            .map(drop)
            .map_err(StoreError::from);
        self.note(flushed)
    }

    /// Removes processed records past the retention and claims past their lease.
    pub fn sweep(&self, now_ms: u64) -> Result<SweepReport, StoreError> {
        let swept = self.sweep_once(now_ms);
        self.note(swept)
    }

    fn sweep_once(&self, now_ms: u64) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for entry in self.inner.db.iter() {
            let (key, value) = entry?;
            report.scanned += 1;
            let expired = Record::decode(&value)
                .map(|r| r.expired(now_ms, self.inner.retention_ms))
                // A damaged record can never be read back; removing it is the only way on.
                .unwrap_or(true);
            // Remove only if unchanged since we read it: a fresh claim may have replaced it.
            if expired
                && self
                    .inner
                    .db
                    .compare_and_swap(&key, Some(value), None::<&[u8]>)?
                    .is_ok()
            {
                report.removed += 1;
            }
        }
        Ok(report)
    }

    /// Number of records (events and signatures), for metrics.
    pub fn len(&self) -> usize {
        self.inner.db.len()
    }

    /// Whether the store holds no records.
    pub fn is_empty(&self) -> bool {
        self.inner.db.is_empty()
    }

    /// Size of the store on disk, in bytes.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.size_on_disk()?)
    }
}

impl Ticket {
    /// The event id this ticket claims.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// Marks the event processed at `now_ms`; with `sync = "always"` it is on disk when
    /// this returns.
    pub async fn commit(mut self, now_ms: u64) -> Result<(), StoreError> {
        let Some(store) = self.store.take() else {
            return Ok(());
        };
        let done = Record {
            state: State::Processed { at_ms: now_ms },
            event_id: self.event_id.clone(),
        }
        .encode();
        let written = store.inner.db.transaction(|tx| {
            for key in &self.keys {
                tx.insert(key.as_slice(), done.as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<record::Damaged>>(())
        });
        store.inner.changed.notify_waiters();
        store.note(written.map_err(StoreError::from))?;

        if store.inner.sync == SyncMode::Always {
            store.flush().await?;
        }
        Ok(())
    }

    /// Gives the claim up, so a retry can deliver the event.
    pub fn release(mut self) -> Result<(), StoreError> {
        match self.store.take() {
            Some(store) => release(&store, &self.keys, self.token),
            None => Ok(()),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            if let Err(error) = release(&store, &self.keys, self.token) {
                tracing::warn!(%error, "could not release an abandoned claim; its lease will lapse");
            }
        }
    }
}

/// Deletes the claims that are still ours; a lapsed claim re-taken by someone else, or a
/// processed mark, is left alone.
fn release(store: &Store, keys: &[Vec<u8>; 2], token: u64) -> Result<(), StoreError> {
    let result = store.inner.db.transaction(|tx| {
        for key in keys {
            let Some(value) = tx.get(key)? else { continue };
            let ours = matches!(
                Record::decode(&value).map(|r| r.state),
                Ok(State::Claimed { token: t, .. }) if t == token
            );
            if ours {
                tx.remove(key.as_slice())?;
            }
        }
        Ok::<_, ConflictableTransactionError<record::Damaged>>(())
    });
    store.inner.changed.notify_waiters();
    store.note(result.map_err(StoreError::from))
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
