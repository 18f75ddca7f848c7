//! Group commit in the embedded store: concurrent transactions commit together, yet each keeps
//! its own conditions. A transaction whose condition fails writes nothing and fails alone; its
//! neighbours in the same group commit whole.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use klozeo_core::adapters::sqlite::SqliteStore;
use klozeo_core::ports::{Cond, Item, Key, Store, StoreError, Table, WriteOp};

fn put(sk: &str, cond: Cond) -> WriteOp {
    WriteOp::Put {
        table: Table::Accounts,
        item: Item::new(Key::new("G", sk), sk.as_bytes().to_vec()),
        cond,
    }
}

async fn present(store: &SqliteStore, sk: &str) -> bool {
    store
        .get(Table::Accounts, &Key::new("G", sk))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_transactions_keep_their_own_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store
        .transact(vec![put("gate-open", Cond::NotExists)])
        .await
        .unwrap();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Every writer also races for one shared key: exactly one may create it.
                let shared = format!("shared-{round}");
                let mine = format!("own-{round}-{i}");
                let gate = if i % 2 == 0 { "gate-open" } else { "gate-shut" };
                let ops = vec![
                    put(&mine, Cond::NotExists),
                    WriteOp::Check {
                        table: Table::Accounts,
                        key: Key::new("G", gate),
                        cond: Cond::Exists,
                    },
                    put(&format!("{shared}-{}", i % 2), Cond::NotExists),
                ];
                (i, store.transact(ops).await)
            }));
        }
        let mut won = [0; 2];
        for t in tasks {
            let (i, outcome) = t.await.unwrap();
            let mine = format!("own-{round}-{i}");
            match outcome {
                Ok(()) => {
                    assert_eq!(i % 2, 0, "writer {i} passed a gate that is shut");
                    won[i % 2] += 1;
                    assert!(
                        present(&store, &mine).await,
                        "writer {i}: committed but absent"
                    );
                }
                Err(StoreError::ConditionFailed(at)) => {
                    // Odd writers fail at the gate, even losers at the shared key.
                    assert_eq!(at, if i % 2 == 1 { 1 } else { 2 }, "writer {i}");
                    assert!(
                        !present(&store, &mine).await,
                        "writer {i}: failed but its first write stayed"
                    );
                }
                Err(e) => panic!("writer {i}: {e}"),
            }
        }
        assert_eq!(
            won,
            [1, 0],
            "round {round}: exactly one even writer creates the key"
        );
        assert!(present(&store, &format!("shared-{round}-0")).await);
        assert!(!present(&store, &format!("shared-{round}-1")).await);
    }
    let (commits, carried) = store.commit_stats();
    assert_eq!(
        carried,
        1 + 5 * 64,
        "every transaction went through a group commit"
    );
    // How much grouping happened depends on scheduling, so it is shown, not asserted.
    eprintln!("{carried} transactions in {commits} SQLite commits");
    // A reopened store (a fresh process) reads the same state.
    drop(store);
    let again = SqliteStore::open(dir.path()).unwrap();
    assert!(present(&again, "shared-4-0").await);
    assert!(!present(&again, "own-4-1").await);
}
