//! Unit tests of the replay store on a temporary sled directory.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        path: dir.join("store"),
        retention: HOUR,
        sync: SyncMode::Always,
        lease: Duration::from_secs(60),
        sweep_interval: Duration::from_secs(60),
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

#[tokio::test]
async fn only_a_commit_makes_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();

    let ticket = granted(store.claim("aj", "e1", b"d1", 1_000).unwrap());
    assert!(matches!(
        store.claim("aj", "e1", b"d2", 1_001).unwrap(),
        Claim::InFlight
    ));
    // Same digest under another id (an exact replay with a changed header): in flight too.
    assert!(matches!(
        store.claim("aj", "other", b"d1", 1_001).unwrap(),
        Claim::InFlight
    ));

    ticket.release().unwrap();
    let ticket = granted(store.claim("aj", "e1", b"d2", 1_002).unwrap());
    ticket.commit(1_003).await.unwrap();

    assert_eq!(
        duplicate_of(store.claim("aj", "e1", b"d9", 1_004).unwrap()),
        "e1"
    );
    assert_eq!(
        duplicate_of(store.claim("aj", "changed-id", b"d2", 1_004).unwrap()),
        "e1"
    );
    // Routes are separate namespaces.
    granted(store.claim("other", "e1", b"d2", 1_004).unwrap())
        .release()
        .unwrap();
}

#[tokio::test]
async fn a_lapsed_lease_lets_the_retry_through() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let first = granted(store.claim("aj", "e1", b"d1", 0).unwrap());
    std::mem::forget(first); // the holder "crashed": no release, no drop
    assert!(matches!(
        store.claim("aj", "e1", b"d1", 59_999).unwrap(),
        Claim::InFlight
    ));
    granted(store.claim("aj", "e1", b"d1", 60_000).unwrap());
}

#[tokio::test]
async fn dropping_a_ticket_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    drop(granted(store.claim("aj", "e1", b"d1", 0).unwrap()));
    granted(store.claim("aj", "e1", b"d1", 1).unwrap());
}

#[tokio::test]
async fn a_stale_release_does_not_remove_a_newer_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let old = granted(store.claim("aj", "e1", b"d1", 0).unwrap());
    let new = granted(store.claim("aj", "e1", b"d1", 60_000).unwrap());
    old.release().unwrap();
    assert!(matches!(
        store.claim("aj", "e1", b"d1", 60_001).unwrap(),
        Claim::InFlight
    ));
    new.release().unwrap();
}

#[tokio::test]
async fn processed_marks_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&config(dir.path())).unwrap();
        granted(store.claim("aj", "e1", b"d1", 0).unwrap())
            .commit(1)
            .await
            .unwrap();
    }
    let store = Store::open(&config(dir.path())).unwrap();
    assert_eq!(
        duplicate_of(store.claim("aj", "e1", b"x", 2).unwrap()),
        "e1"
    );
}

#[tokio::test]
async fn sweep_removes_only_expired_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    granted(store.claim("aj", "old", b"d-old", 0).unwrap())
        .commit(0)
        .await
        .unwrap();
    granted(store.claim("aj", "new", b"d-new", 0).unwrap())
        .commit(HOUR.as_millis() as u64)
        .await
        .unwrap();
    assert_eq!(store.len(), 4);

    let report = store.sweep(HOUR.as_millis() as u64 + 1).unwrap();
    assert_eq!(
        report,
        SweepReport {
            scanned: 4,
            removed: 2
        }
    );
    granted(
        store
            .claim("aj", "old", b"d-old", HOUR.as_millis() as u64 + 2)
            .unwrap(),
    );
    duplicate_of(
        store
            .claim("aj", "new", b"zz", HOUR.as_millis() as u64 + 2)
            .unwrap(),
    );
}

#[tokio::test]
async fn a_waiting_copy_learns_the_first_ones_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).unwrap();
    let first = granted(store.claim("aj", "e1", b"d1", now_ms()).unwrap());

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
    let _first = granted(store.claim("aj", "e1", b"d1", now_ms()).unwrap());
    let answer = store
        .claim_or_wait("aj", "e1", b"d1", Duration::from_millis(100), now_ms)
        .await;
    assert!(matches!(answer.unwrap(), Claim::InFlight));
}
