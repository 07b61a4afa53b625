//! The embedded backend: one sled database in a local directory.
//!
//! Claims and marks are written in sled transactions over two keys (event id and
//! digest). A sweep walks the tree and removes what has expired. With
//! `sync = "always"`, a claim and a commit return only once sled has flushed them, so
//! nothing is forwarded that the disk has not taken (a full or read-only disk is found
//! before the app sees the event, not after).
//!
//! sled fails every operation once it has met an I/O error; the probe then reopens the
//! database, so the store heals by itself when the disk does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::record::{self, Record, State};
use super::{Backend, ClaimKey, StoreError, SweepReport, Verdict};
use crate::config::SyncMode;

/// sled's page cache bound: small, since records are tiny and mostly written once.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How often sled writes its log in the background, in milliseconds.
const BACKGROUND_FLUSH_MS: u64 = 500;

/// A tree apart from the records, for the probe's writes (sweeps never see them).
const HEALTH_TREE: &[u8] = b"health";

fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        .flush_every_ms(Some(BACKGROUND_FLUSH_MS))
        .open()?;
    Ok(db)
}

/// The sled backend.
pub struct SledBackend {
    /// `None` while it is being reopened after an I/O error.
    db: RwLock<Option<sled::Db>>,
    path: PathBuf,
    sync: SyncMode,
    retention_ms: u64,
    flushes: GroupFlush,
}

/// Group commit: writers that need durability queue behind one flush at a time, and
/// one flush makes every write before it durable, so N concurrent deliveries share a
/// few fsyncs instead of paying one each.
///
/// sled's own `flush_async` runs the flush on sled's small thread pool, which also does
/// the log writes that flush waits for; with a few dozen concurrent callers every pool
/// thread waits and nothing writes (a hang found by the benchmark). Flushes run on
/// tokio's blocking pool instead.
#[derive(Default)]
struct GroupFlush {
    /// Writes that asked to be made durable, counted.
    asked: AtomicU64,
    /// Every write up to this count is on disk.
    done: AtomicU64,
    /// One flush at a time.
    turn: tokio::sync::Mutex<()>,
}

impl GroupFlush {
    /// Returns once every write made before the call is on disk.
    async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        let mine = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        loop {
            if self.done.load(Ordering::SeqCst) >= mine {
                return Ok(());
            }
            let _turn = self.turn.lock().await;
            if self.done.load(Ordering::SeqCst) >= mine {
                return Ok(());
            }
            // Everyone who asked before this load is covered by the flush that follows.
            let covered = self.asked.load(Ordering::SeqCst);
            let handle = db.clone();
            tokio::task::spawn_blocking(move || handle.flush())
                .await
                .map_err(|_| StoreError::FlushAborted)??;
            self.done.fetch_max(covered, Ordering::SeqCst);
        }
    }
}

impl From<TransactionError<record::Damaged>> for StoreError {
    fn from(e: TransactionError<record::Damaged>) -> Self {
        match e {
            TransactionError::Abort(damaged) => StoreError::Damaged(damaged),
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

impl SledBackend {
    /// Opens (or creates) the store directory.
    pub fn open(path: &Path, sync: SyncMode, retention_ms: u64) -> Result<Self, StoreError> {
        let db = open_db(path)?;
        Ok(SledBackend {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            sync,
            retention_ms,
            flushes: GroupFlush::default(),
        })
    }

    /// A handle for one operation.
    fn db(&self) -> Result<sled::Db, StoreError> {
        let guard = self
            .db
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.clone().ok_or(StoreError::Reopening)
    }

    /// Closes the broken database and opens it again. sled holds a lock on the
    /// directory, so the old handle must be gone first; operations meanwhile fail
    /// with [`StoreError::Reopening`] (and the proxy answers 503).
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self
            .db
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(guard.take());
        *guard = Some(open_db(&self.path)?);
        Ok(())
    }

    async fn durable(&self, db: &sled::Db) -> Result<(), StoreError> {
        if self.sync == SyncMode::Always {
            self.flushes.flush(db).await?;
        }
        Ok(())
    }

    fn keys(key: &ClaimKey) -> [Vec<u8>; 2] {
        [
            record::event_key(&key.route, &key.event_id),
            record::signature_key(&key.route, &key.digest),
        ]
    }
}

#[async_trait]
impl Backend for SledBackend {
    fn name(&self) -> &'static str {
        "sled"
    }

    async fn claim(
        &self,
        key: &ClaimKey,
        token: u64,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Verdict, StoreError> {
        let keys = Self::keys(key);
        let claim = Record {
            state: State::Claimed {
                lease_until_ms: now_ms + lease_ms,
                token,
            },
            event_id: key.event_id.clone(),
        }
        .encode();

        let db = self.db()?;
        let verdict = db.transaction(|tx| {
            for k in &keys {
                let Some(value) = tx.get(k)? else { continue };
                let found = Record::decode(&value).map_err(ConflictableTransactionError::Abort)?;
                match found.state {
                    State::Processed { .. } => {
                        let event_id = if found.event_id.is_empty() {
                            key.event_id.clone()
                        } else {
                            found.event_id
                        };
                        return Ok(Verdict::Duplicate { event_id });
                    }
                    State::Claimed { lease_until_ms, .. } if lease_until_ms > now_ms => {
                        return Ok(Verdict::InFlight);
                    }
                    State::Claimed { .. } => {}
                }
            }
            for k in &keys {
                tx.insert(k.as_slice(), claim.as_slice())?;
            }
            Ok(Verdict::Granted)
        })?;

        if verdict == Verdict::Granted {
            if let Err(error) = self.durable(&db).await {
                // Not on disk: not ours either. Undo it, as far as sled still can.
                let _ = self.release(key, token).await;
                return Err(error);
            }
        }
        Ok(verdict)
    }

    async fn commit(&self, key: &ClaimKey, _token: u64, now_ms: u64) -> Result<(), StoreError> {
        let keys = Self::keys(key);
        let done = Record {
            state: State::Processed { at_ms: now_ms },
            event_id: key.event_id.clone(),
        }
        .encode();
        // The app accepted the event: it is processed, whoever holds the claim now.
        let db = self.db()?;
        db.transaction(|tx| {
            for k in &keys {
                tx.insert(k.as_slice(), done.as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<record::Damaged>>(())
        })?;
        self.durable(&db).await
    }

    async fn release(&self, key: &ClaimKey, token: u64) -> Result<(), StoreError> {
        let keys = Self::keys(key);
        self.db()?.transaction(|tx| {
            for k in &keys {
                let Some(value) = tx.get(k)? else { continue };
                let ours = matches!(
                    Record::decode(&value).map(|r| r.state),
                    Ok(State::Claimed { token: t, .. }) if t == token
                );
                if ours {
                    tx.remove(k.as_slice())?;
                }
            }
            Ok::<_, ConflictableTransactionError<record::Damaged>>(())
        })?;
        Ok(())
    }

    async fn sweep(&self, now_ms: u64) -> Result<SweepReport, StoreError> {
        let db = self.db()?;
        let mut report = SweepReport::default();
        for entry in db.iter() {
            let (k, value) = entry?;
            report.scanned += 1;
            let expired = Record::decode(&value)
                .map(|r| r.expired(now_ms, self.retention_ms))
                // A damaged record can never be read back; removing it is the only way on.
                .unwrap_or(true);
            // Remove only if unchanged since we read it: a fresh claim may have replaced it.
            let removed = expired && db.compare_and_swap(&k, Some(value), None::<&[u8]>)?.is_ok();
            report.removed += u64::from(removed);
        }
        report.entries = Some(report.scanned - report.removed);
        Ok(report)
    }

    /// Writes and flushes a small record: only a write finds a full or read-only disk.
    /// On failure, reopens the database for the next operation.
    async fn probe(&self) -> Result<(), StoreError> {
        let written = async {
            let db = self.db()?;
            let health = db.open_tree(HEALTH_TREE)?;
            health.insert(b"probe", &super::now_ms().to_be_bytes())?;
            self.flushes.flush(&db).await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if written.is_err() {
            if let Err(error) = self.reopen() {
                tracing::debug!(%error, "store not reopened yet");
            }
        }
        written
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flushes.flush(&self.db()?).await
    }

    fn disk_bytes(&self) -> Option<u64> {
        self.db().ok()?.size_on_disk().ok()
    }
}
