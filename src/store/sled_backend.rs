//! The embedded backend: one sled database in a local directory.
//!
//! Each delivery is recorded under two keys, its event id and its signature digest.
//! Claims of this process live in memory, under one lock that also covers the look-up on
//! disk, so two copies can never both be granted; the process holds the directory's lock,
//! so no one else writes here. Processed marks are plain sled inserts. No sled
//! transaction is on the request path: in sled 0.34 each one waits for its own log
//! writes, which made the store cost ten times the rest of a delivery (bench/README.md).
//!
//! With `sync = "always"`, a claim is also written and flushed before the app sees the
//! event (so a full or read-only disk is found first, and a claim outlives a crash as a
//! lease), and a processed mark is flushed before the sender is answered. Flushes are
//! shared by every write waiting for one (group commit). With `sync = "interval"`, sled
//! writes in the background and claims stay in memory only.
//!
//! sled fails every operation once it has met an I/O error; the probe then reopens the
//! database, so the store heals by itself when the disk does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LockResult, Mutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;

use super::record::{self, Record, State};
use super::{Backend, ClaimKey, StoreError, SweepReport, Verdict};
use crate::config::SyncMode;

/// How often sled writes its log in the background, in milliseconds.
const BACKGROUND_FLUSH_MS: u64 = 500;

/// A tree apart from the records, for the probe's writes (sweeps never see them).
const HEALTH_TREE: &[u8] = b"health";

/// Records a sweep looks at between rests, when it has to rest by itself.
const SWEEP_BATCH: u64 = 1024;

/// Whether a background thread yields the core by itself (its scheduling could not be
/// lowered) or the kernel does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Yields {
    ByKernel,
    ByResting,
}

/// Puts the calling thread in Linux's idle scheduling class (`SCHED_IDLE`, no privilege
/// needed): it runs only on a core nothing else wants.
fn background_priority() -> Yields {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };

    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
        Ok(()) => Yields::ByKernel,
        Err(error) => {
            tracing::debug!(
                ?error,
                "sweep runs at normal priority, resting between batches"
            );
            Yields::ByResting
        }
    }
}

/// Removes every expired record, each only if unchanged since it was read (a fresh
/// claim or mark may have replaced it).
fn sweep_tree(
    db: &sled::Db,
    now_ms: u64,
    retention_ms: u64,
    yields: Yields,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let mut batch_started = std::time::Instant::now();
    for entry in db.iter() {
        let (k, value) = entry?;
        report.scanned += 1;
        let expired = Record::decode(&value)
            .map(|r| r.expired(now_ms, retention_ms))
            // A damaged record can never be read back; removing it is the only way on.
            .unwrap_or(true);
        let removed = expired && db.compare_and_swap(&k, Some(value), None::<&[u8]>)?.is_ok();
        report.removed += u64::from(removed);

        // Without the idle class, rest after each batch as long as it took: the sweep
        // then takes at most half a busy core.
        if yields == Yields::ByResting && report.scanned % SWEEP_BATCH == 0 {
            std::thread::sleep(batch_started.elapsed());
            batch_started = std::time::Instant::now();
        }
    }
    report.entries = Some(report.scanned - report.removed);
    Ok(report)
}

/// A lock's guard even if a panic poisoned it: nothing panics while holding the store's
/// locks, but a poisoned lock must not stop the store either.
fn unpoisoned<G>(locked: LockResult<G>) -> G {
    locked.unwrap_or_else(PoisonError::into_inner)
}

fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(BACKGROUND_FLUSH_MS))
        .open()?;
    Ok(db)
}

/// The sled backend.
pub struct SledBackend {
    /// `None` while it is being reopened after an I/O error.
    db: RwLock<Option<sled::Db>>,
    path: PathBuf,
    cache_bytes: u64,
    sync: SyncMode,
    retention_ms: u64,
    flushes: GroupFlush,
    /// This process's live claims, by record key.
    claims: Mutex<HashMap<Vec<u8>, Lease>>,
    /// Claims given up while sled refused writes, still on disk: they would hold off the
    /// sender's retries until their lease ran out, so the reopen removes them.
    orphans: Mutex<Vec<Orphan>>,
}

/// A claim record that could not be removed when it was given up.
struct Orphan {
    keys: [Vec<u8>; 2],
    token: u64,
}

/// A claim held in memory.
#[derive(Debug, Clone, Copy)]
struct Lease {
    until_ms: u64,
    token: u64,
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

impl SledBackend {
    /// Opens (or creates) the store directory, with sled's page cache bounded to
    /// `cache_bytes`.
    pub fn open(
        path: &Path,
        cache_bytes: u64,
        sync: SyncMode,
        retention_ms: u64,
    ) -> Result<Self, StoreError> {
        let db = open_db(path, cache_bytes)?;
        Ok(SledBackend {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            cache_bytes,
            sync,
            retention_ms,
            flushes: GroupFlush::default(),
            claims: Mutex::new(HashMap::new()),
            orphans: Mutex::new(Vec::new()),
        })
    }

    /// A handle for one operation.
    fn db(&self) -> Result<sled::Db, StoreError> {
        unpoisoned(self.db.read())
            .clone()
            .ok_or(StoreError::Reopening)
    }

    /// The claims table.
    fn claims(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Lease>> {
        unpoisoned(self.claims.lock())
    }

    /// Closes the broken database and opens it again. sled holds a lock on the
    /// directory, so the old handle must be gone first; operations meanwhile fail
    /// with [`StoreError::Reopening`] (and the proxy answers 503).
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = unpoisoned(self.db.write());
        drop(guard.take());
        let db = open_db(&self.path, self.cache_bytes)?;

        // On failure the orphans stay for the next reopen: the disk is not well yet.
        let mut orphans = unpoisoned(self.orphans.lock());
        for orphan in orphans.iter() {
            self.unrecord(&db, &orphan.keys, orphan.token)?;
        }
        orphans.clear();
        drop(orphans);

        *guard = Some(db);
        Ok(())
    }

    /// Gives up our claim: off the disk where it was written (when sled refuses, the
    /// reopen removes it), then out of memory.
    fn give_up(&self, keys: &[Vec<u8>; 2], token: u64) -> Result<(), StoreError> {
        let unrecorded = match self.sync {
            SyncMode::Always => self.db().and_then(|db| self.unrecord(&db, keys, token)),
            SyncMode::Interval => Ok(()),
        };
        if unrecorded.is_err() {
            let orphan = Orphan {
                keys: keys.clone(),
                token,
            };
            unpoisoned(self.orphans.lock()).push(orphan);
        }
        self.forget(keys, token);
        unrecorded
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

    /// Decides a claim under the claims lock, key by key (event id, then signature): a
    /// processed record is a duplicate, a live claim in memory or on disk (left by an
    /// earlier process) is in flight; when neither key has one, the claim is ours.
    fn decide(
        &self,
        db: &sled::Db,
        key: &ClaimKey,
        keys: &[Vec<u8>; 2],
        lease: Lease,
        now_ms: u64,
    ) -> Result<Verdict, StoreError> {
        let mut claims = self.claims();
        for k in keys {
            let on_disk = db.get(k)?.map(|value| Record::decode(&value)).transpose()?;
            if let Some(Record {
                state: State::Processed { .. },
                event_id,
            }) = on_disk
            {
                let event_id = if event_id.is_empty() {
                    key.event_id.clone()
                } else {
                    event_id
                };
                return Ok(Verdict::Duplicate { event_id });
            }
            let held_here = claims.get(k).is_some_and(|held| held.until_ms > now_ms);
            let held_before = matches!(
                on_disk,
                Some(Record { state: State::Claimed { lease_until_ms, .. }, .. })
                    if lease_until_ms > now_ms
            );
            if held_here || held_before {
                return Ok(Verdict::InFlight);
            }
        }

        for k in keys {
            claims.insert(k.clone(), lease);
        }
        Ok(Verdict::Granted)
    }

    /// Forgets our claims in memory (not someone else's that replaced a lapsed one).
    fn forget(&self, keys: &[Vec<u8>; 2], token: u64) {
        let mut claims = self.claims();
        for k in keys {
            if claims.get(k).is_some_and(|held| held.token == token) {
                claims.remove(k);
            }
        }
    }

    /// Removes our claim records from disk, if they are still ours.
    fn unrecord(&self, db: &sled::Db, keys: &[Vec<u8>; 2], token: u64) -> Result<(), StoreError> {
        for k in keys {
            let Some(value) = db.get(k)? else { continue };
            let ours = matches!(
                Record::decode(&value).map(|r| r.state),
                Ok(State::Claimed { token: t, .. }) if t == token
            );
            if ours {
                // Only if unchanged: a commit or a newer claim wins.
                let _ = db.compare_and_swap(k, Some(value), None::<&[u8]>)?;
            }
        }
        Ok(())
    }

    /// With `sync = "always"`, puts a granted claim on disk before the app sees the event.
    async fn record_claim(
        &self,
        db: &sled::Db,
        key: &ClaimKey,
        keys: &[Vec<u8>; 2],
        lease: Lease,
    ) -> Result<(), StoreError> {
        let claim = Record {
            state: State::Claimed {
                lease_until_ms: lease.until_ms,
                token: lease.token,
            },
            event_id: key.event_id.clone(),
        }
        .encode();
        for k in keys {
            db.insert(k.as_slice(), claim.as_slice())?;
        }
        self.flushes.flush(db).await
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
        let lease = Lease {
            until_ms: now_ms.saturating_add(lease_ms),
            token,
        };
        let db = self.db()?;
        let verdict = self.decide(&db, key, &keys, lease, now_ms)?;

        if verdict == Verdict::Granted && self.sync == SyncMode::Always {
            if let Err(error) = self.record_claim(&db, key, &keys, lease).await {
                // Not on disk: not ours either. Undo it, as far as sled still can.
                let _ = self.give_up(&keys, token);
                return Err(error);
            }
        }
        Ok(verdict)
    }

    async fn commit(&self, key: &ClaimKey, token: u64, now_ms: u64) -> Result<(), StoreError> {
        let keys = Self::keys(key);
        let done = Record {
            state: State::Processed { at_ms: now_ms },
            event_id: key.event_id.clone(),
        }
        .encode();

        // The app accepted the event: it is processed, whoever holds the claim now. The
        // mark goes to disk before the claim leaves memory, so no copy slips in between.
        let marked = async {
            let db = self.db()?;
            for k in &keys {
                db.insert(k.as_slice(), done.as_slice())?;
            }
            self.durable(&db).await
        }
        .await;
        self.forget(&keys, token);
        marked
    }

    async fn release(&self, key: &ClaimKey, token: u64) -> Result<(), StoreError> {
        self.give_up(&Self::keys(key), token)
    }

    async fn sweep(&self, now_ms: u64) -> Result<SweepReport, StoreError> {
        self.claims().retain(|_, held| held.until_ms > now_ms);

        // A sweep reads every record: on a thread of its own that the kernel runs only
        // when the request path leaves the core idle.
        let db = self.db()?;
        let retention_ms = self.retention_ms;
        let (answer, report) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("store-sweep".into())
            .spawn(move || {
                let yields = background_priority();
                let _ = answer.send(sweep_tree(&db, now_ms, retention_ms, yields));
            })
            .map_err(|error| StoreError::SweepThread(error.to_string()))?;
        report
            .await
            .map_err(|_| StoreError::SweepThread("it stopped without a report".into()))?
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
