//! The embedded backend: one sled database in a local directory.
//!
//! Claims and marks are written in sled transactions over two keys (event id and
//! digest). A sweep walks the tree and removes what has expired. With
//! `sync = "always"`, a commit returns only once sled has flushed it to disk.

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::record::{self, Record, State};
use super::{Backend, ClaimKey, StoreError, SweepReport, Verdict};
use crate::config::SyncMode;

/// sled's page cache bound: small, since records are tiny and mostly written once.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How often sled writes its log in the background, in milliseconds.
const BACKGROUND_FLUSH_MS: u64 = 500;

/// The sled backend.
pub struct SledBackend {
    db: sled::Db,
    sync: SyncMode,
    retention_ms: u64,
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
    pub fn open(
        path: &std::path::Path,
        sync: SyncMode,
        retention_ms: u64,
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(BACKGROUND_FLUSH_MS))
            .open()?;
        Ok(SledBackend {
            db,
            sync,
            retention_ms,
        })
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

        let verdict = self.db.transaction(|tx| {
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
        self.db.transaction(|tx| {
            for k in &keys {
                tx.insert(k.as_slice(), done.as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<record::Damaged>>(())
        })?;
        if self.sync == SyncMode::Always {
            self.db.flush_async().await?;
        }
        Ok(())
    }

    async fn release(&self, key: &ClaimKey, token: u64) -> Result<(), StoreError> {
        let keys = Self::keys(key);
        self.db.transaction(|tx| {
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
        let mut report = SweepReport::default();
        for entry in self.db.iter() {
            let (k, value) = entry?;
            report.scanned += 1;
            let expired = Record::decode(&value)
                .map(|r| r.expired(now_ms, self.retention_ms))
                // A damaged record can never be read back; removing it is the only way on.
                .unwrap_or(true);
            // Remove only if unchanged since we read it: a fresh claim may have replaced it.
            let removed = expired
                && self
                    .db
                    .compare_and_swap(&k, Some(value), None::<&[u8]>)?
                    .is_ok();
            report.removed += u64::from(removed);
        }
        report.entries = Some(report.scanned - report.removed);
        Ok(report)
    }

    async fn probe(&self) -> Result<(), StoreError> {
        self.db.get(b"\0probe")?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    fn disk_bytes(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }
}
