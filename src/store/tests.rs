//! Unit tests of the replay store on a temporary sled directory.

use super::*;
use crate::config::StoreBackend;

const HOUR_MS: u64 = 3_600_000;

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        backend: StoreBackend::Sled,
        path: dir.join("store"),
        retention: Duration::from_millis(HOUR_MS),
        sync: SyncMode::Always,
        lease: Duration::from_secs(60),
        sweep_interval: Duration::from_secs(60),
        cache_bytes: 1 << 24,
    }
}

fn granted(claim: Claim) -> Ticket {
    match claim {
        Claim::Granted(ticket) => ticket,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn duplicate_of(claim: Claim) -> String {
    match claim {
        Claim::Duplicate { event_id } => event_id,
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

async fn claim(store: &Store, route: &str, id: &str, digest: &[u8], now_ms: u64) -> Claim {
    store.claim(route, id, digest, now_ms).await.unwrap()
}

#[tokio::test]
async fn only_a_commit_makes_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();

    let ticket = granted(claim(&store, "aj", "e1", b"d1", 1_000).await);
    assert!(matches!(
        claim(&store, "aj", "e1", b"d2", 1_001).await,
        Claim::InFlight
    ));
    // Same digest under another id (an exact replay with a changed header): in flight too.
    assert!(matches!(
        claim(&store, "aj", "other", b"d1", 1_001).await,
        Claim::InFlight
    ));

    ticket.release().await.unwrap();
    let ticket = granted(claim(&store, "aj", "e1", b"d2", 1_002).await);
    ticket.commit(1_003).await.unwrap();

    assert_eq!(
        duplicate_of(claim(&store, "aj", "e1", b"d9", 1_004).await),
        "e1"
    );
    assert_eq!(
        duplicate_of(claim(&store, "aj", "changed-id", b"d2", 1_004).await),
        "e1"
    );
    // Routes are separate namespaces.
    granted(claim(&store, "other", "e1", b"d2", 1_004).await)
        .release()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lapsed_lease_lets_the_retry_through() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let first = granted(claim(&store, "aj", "e1", b"d1", 0).await);
    std::mem::forget(first); // the holder "crashed": no release, no drop
    assert!(matches!(
        claim(&store, "aj", "e1", b"d1", 59_999).await,
        Claim::InFlight
    ));
    granted(claim(&store, "aj", "e1", b"d1", 60_000).await);
}

#[tokio::test]
async fn dropping_a_ticket_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    drop(granted(claim(&store, "aj", "e1", b"d1", 0).await));
    // The release runs in the background: the claim is free once it has run.
    let again = store.claim_or_wait("aj", "e1", b"d1", Duration::from_secs(2), || 1);
    granted(again.await.unwrap());
}

#[tokio::test]
async fn a_stale_release_does_not_remove_a_newer_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let old = granted(claim(&store, "aj", "e1", b"d1", 0).await);
    let new = granted(claim(&store, "aj", "e1", b"d1", 60_000).await);
    old.release().await.unwrap();
    assert!(matches!(
        claim(&store, "aj", "e1", b"d1", 60_001).await,
        Claim::InFlight
    ));
    new.release().await.unwrap();
}

#[tokio::test]
async fn processed_marks_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&config(dir.path())).unwrap();
        granted(claim(&store, "aj", "e1", b"d1", 0).await)
            .commit(1)
            .await
            .unwrap();
    }
    let store = Store::open(&config(dir.path())).unwrap();
    assert_eq!(duplicate_of(claim(&store, "aj", "e1", b"x", 2).await), "e1");
}

#[tokio::test]
async fn sweep_removes_only_expired_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    granted(claim(&store, "aj", "old", b"d-old", 0).await)
        .commit(0)
        .await
        .unwrap();
    granted(claim(&store, "aj", "new", b"d-new", 0).await)
        .commit(HOUR_MS)
        .await
        .unwrap();

    let report = store.sweep(HOUR_MS + 1).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            scanned: 4,
            removed: 2,
            entries: Some(2)
        }
    );
    granted(claim(&store, "aj", "old", b"d-old", HOUR_MS + 2).await);
    duplicate_of(claim(&store, "aj", "new", b"zz", HOUR_MS + 2).await);
}

#[tokio::test]
async fn a_waiting_copy_learns_the_first_ones_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let first = granted(claim(&store, "aj", "e1", b"d1", now_ms()).await);

    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_or_wait("aj", "e1", b"d2", Duration::from_secs(5), now_ms)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.commit(now_ms()).await.unwrap();

    let answer = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(duplicate_of(answer.unwrap()), "e1");
}

#[tokio::test]
async fn a_waiting_copy_gives_up_after_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let _first = granted(claim(&store, "aj", "e1", b"d1", now_ms()).await);
    let answer = store
        .claim_or_wait("aj", "e1", b"d1", Duration::from_millis(100), now_ms)
        .await;
    assert!(matches!(answer.unwrap(), Claim::InFlight));
}

/// A claim whose holder died: the process is gone, the directory is reopened.
async fn claim_after_a_crash(sync: SyncMode, now_ms: u64) -> Verdict {
    use sled_backend::SledBackend;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let key = ClaimKey {
        route: "aj".into(),
        event_id: "e1".into(),
        digest: b"d1".to_vec(),
    };
    {
        let crashed = SledBackend::open(&path, 1 << 20, sync, HOUR_MS).unwrap();
        assert_eq!(
            crashed.claim(&key, 7, 0, 60_000).await.unwrap(),
            Verdict::Granted
        );
        // sled writes what it was given when dropped; a SIGKILL may lose more, never less.
    }

    let restarted = SledBackend::open(&path, 1 << 20, sync, HOUR_MS).unwrap();
    restarted.claim(&key, 8, now_ms, 60_000).await.unwrap()
}

#[tokio::test]
async fn with_sync_always_a_claim_outlives_its_process_until_the_lease_ends() {
    assert_eq!(
        claim_after_a_crash(SyncMode::Always, 59_999).await,
        Verdict::InFlight
    );
    assert_eq!(
        claim_after_a_crash(SyncMode::Always, 60_000).await,
        Verdict::Granted
    );
}

#[tokio::test]
async fn with_sync_interval_claims_live_in_memory_only() {
    assert_eq!(
        claim_after_a_crash(SyncMode::Interval, 1).await,
        Verdict::Granted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_get_one_grant() {
    for sync in [SyncMode::Interval, SyncMode::Always] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.sync = sync;
        let store = std::sync::Arc::new(Store::open(&config).unwrap());

        let copies: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim("aj", "e1", b"d1", 5).await })
            })
            .collect();
        let mut grants = Vec::new();
        for copy in copies {
            match copy.await.unwrap().unwrap() {
                Claim::Granted(ticket) => grants.push(ticket),
                Claim::InFlight => {}
                other => panic!("{sync:?}: unexpected {other:?}"),
            }
        }
        assert_eq!(grants.len(), 1, "{sync:?}");
    }
}
