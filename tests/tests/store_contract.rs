//! Contract tests of the store port: the same cases run on the embedded store and on DynamoDB
//! (through the emulator), so the services above the port can rely on identical behaviour.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use klozeo_core::ports::{
    Cond, IndexKey, Item, Key, Position, QueryReq, SkCond, Store, StoreError, Table, WriteOp,
};
use klozeo_tests::{Backend, backends, fresh_store};

fn item(pk: &str, sk: &str, body: &str) -> Item {
    Item::new(Key::new(pk, sk), body.as_bytes().to_vec())
}

fn put(i: Item, cond: Cond) -> WriteOp {
    WriteOp::Put {
        table: Table::Leads,
        item: i,
        cond,
    }
}

async fn body(store: &Arc<dyn Store>, pk: &str, sk: &str) -> Option<String> {
    store
        .get(Table::Leads, &Key::new(pk, sk))
        .await
        .unwrap()
        .map(|i| String::from_utf8(i.body).unwrap())
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Arc<dyn Store>, Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for b in backends() {
        let (store, _dir) = fresh_store(b).await;
        f(store, b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_and_conditions() {
    each_backend(|s, b| async move {
        s.transact(vec![put(item("p", "a", "1"), Cond::NotExists)])
            .await
            .unwrap();
        assert_eq!(body(&s, "p", "a").await.as_deref(), Some("1"), "{b:?}");
        // NotExists on an existing item fails and writes nothing.
        let err = s
            .transact(vec![put(item("p", "a", "2"), Cond::NotExists)])
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::ConditionFailed(0), "{b:?}");
        assert_eq!(body(&s, "p", "a").await.as_deref(), Some("1"));
        // Version conditions: the stored version is 1.
        let mut v2 = item("p", "a", "2");
        v2.version = 2;
        assert_eq!(
            s.transact(vec![put(v2.clone(), Cond::Version(7))]).await,
            Err(StoreError::ConditionFailed(0))
        );
        s.transact(vec![put(v2, Cond::Version(1))]).await.unwrap();
        let got = s
            .get(Table::Leads, &Key::new("p", "a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.version, got.body), (2, b"2".to_vec()), "{b:?}");
        // Exists on a missing item fails.
        assert_eq!(
            s.transact(vec![WriteOp::Delete {
                table: Table::Leads,
                key: Key::new("p", "zz"),
                cond: Cond::Exists
            }])
            .await,
            Err(StoreError::ConditionFailed(0))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_condition_rolls_back_the_whole_group() {
    each_backend(|s, b| async move {
        s.transact(vec![put(item("p", "taken", "x"), Cond::Always)])
            .await
            .unwrap();
        let err = s
            .transact(vec![
                put(item("p", "new", "y"), Cond::NotExists),
                WriteOp::Add {
                    table: Table::Accounts,
                    key: Key::new("c", "n"),
                    delta: 1,
                    max: None,
                },
                put(item("p", "taken", "z"), Cond::NotExists),
            ])
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::ConditionFailed(2), "{b:?}");
        assert_eq!(
            body(&s, "p", "new").await,
            None,
            "{b:?}: first write must roll back"
        );
        assert!(
            s.get(Table::Accounts, &Key::new("c", "n"))
                .await
                .unwrap()
                .is_none(),
            "{b:?}: counter must roll back"
        );
        assert_eq!(body(&s, "p", "taken").await.as_deref(), Some("x"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_respect_their_maximum_under_concurrency() {
    each_backend(|s, b| async move {
        let key = Key::new("acct", "COUNT");
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let s = s.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                s.transact(vec![WriteOp::Add {
                    table: Table::Accounts,
                    key,
                    delta: 1,
                    max: Some(10),
                }])
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(StoreError::ConditionFailed(0)) => {}
                Err(e) => panic!("{b:?}: unexpected {e:?}"),
            }
        }
        assert_eq!(ok, 10, "{b:?}");
        let c = s.get(Table::Accounts, &key).await.unwrap().unwrap();
        assert_eq!(c.counter, 10, "{b:?}");
        s.transact(vec![WriteOp::Add {
            table: Table::Accounts,
            key: key.clone(),
            delta: -3,
            max: None,
        }])
        .await
        .unwrap();
        assert_eq!(
            s.get(Table::Accounts, &key).await.unwrap().unwrap().counter,
            7
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_follow_key_order_conditions_and_cursors() {
    each_backend(|s, b| async move {
        let mut ops = Vec::new();
        for i in 0..10 {
            ops.push(put(
                item("q", &format!("L#{i:02}"), &i.to_string()),
                Cond::Always,
            ));
        }
        ops.push(put(item("q", "N#x", "note"), Cond::Always));
        ops.push(put(item("other", "L#00", "other tenant"), Cond::Always));
        s.transact(ops).await.unwrap();
        let q = |sk: SkCond, after: Option<&str>, desc: bool, limit: u32| QueryReq {
            table: Table::Leads,
            index: None,
            pk: "q".into(),
            sk,
            start_after: after.map(|a| Position {
                key: Key::new("q", a),
                index: None,
            }),
            descending: desc,
            limit,
        };
        let sks = |p: &klozeo_core::ports::Page| {
            p.items.iter().map(|i| i.key.sk.clone()).collect::<Vec<_>>()
        };
        let p = s
            .query(&q(SkCond::BeginsWith("L#".into()), None, false, 4))
            .await
            .unwrap();
        assert_eq!(sks(&p), ["L#00", "L#01", "L#02", "L#03"], "{b:?}");
        let last = p.last.clone().unwrap();
        assert_eq!(last.key.sk, "L#03");
        let p = s
            .query(&q(
                SkCond::BeginsWith("L#".into()),
                Some("L#03"),
                false,
                100,
            ))
            .await
            .unwrap();
        assert_eq!(sks(&p).len(), 6, "{b:?}");
        assert!(
            p.last.is_none(),
            "{b:?}: a short page has no resume position"
        );
        let p = s
            .query(&q(SkCond::BeginsWith("L#".into()), Some("L#05"), true, 3))
            .await
            .unwrap();
        assert_eq!(sks(&p), ["L#04", "L#03", "L#02"], "{b:?}");
        let p = s
            .query(&q(
                SkCond::Between("L#02".into(), "L#04".into()),
                None,
                false,
                100,
            ))
            .await
            .unwrap();
        assert_eq!(sks(&p), ["L#02", "L#03", "L#04"], "{b:?}");
        let p = s
            .query(&q(SkCond::Gt("L#08".into()), None, false, 100))
            .await
            .unwrap();
        assert_eq!(sks(&p), ["L#09", "N#x"], "{b:?}");
        let p = s
            .query(&q(SkCond::Lt("L#01".into()), None, false, 100))
            .await
            .unwrap();
        assert_eq!(sks(&p), ["L#00"], "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_queries_see_only_current_index_entries() {
    each_backend(|s, b| async move {
        let mut ops = Vec::new();
        for (i, status) in ["new", "won", "new", "new"].iter().enumerate() {
            let mut it = item("t", &format!("L#{i}"), status);
            it.index_keys = vec![IndexKey {
                index: "by_status",
                pk: format!("t#{status}"),
                sk: format!("id{i}"),
            }];
            ops.push(put(it, Cond::Always));
        }
        s.transact(ops).await.unwrap();
        // Re-putting item 2 without an index entry removes it from the index.
        s.transact(vec![put(item("t", "L#2", "plain"), Cond::Always)])
            .await
            .unwrap();
        let req = |after: Option<Position>| QueryReq {
            table: Table::Leads,
            index: Some("by_status"),
            pk: "t#new".into(),
            sk: SkCond::Any,
            start_after: after,
            descending: false,
            limit: 1,
        };
        let p1 = s.query(&req(None)).await.unwrap();
        assert_eq!(p1.items[0].key.sk, "L#0", "{b:?}");
        let p2 = s.query(&req(p1.last)).await.unwrap();
        assert_eq!(p2.items[0].key.sk, "L#3", "{b:?}");
        // A store may or may not report a resume position after the last entry; if it does,
        // resuming from it yields nothing.
        if let Some(last) = p2.last {
            let p3 = s.query(&req(Some(last))).await.unwrap();
            assert!(p3.items.is_empty(), "{b:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_read_as_absent_and_can_be_recreated() {
    each_backend(|s, b| async move {
        let mut old = item("e", "x", "old");
        old.expires_at = Some(1_000);
        s.transact(vec![put(old, Cond::Always)]).await.unwrap();
        assert_eq!(body(&s, "e", "x").await, None, "{b:?}");
        s.transact(vec![put(item("e", "x", "new"), Cond::NotExists)])
            .await
            .unwrap();
        assert_eq!(body(&s, "e", "x").await.as_deref(), Some("new"), "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_get_returns_the_items_that_exist() {
    each_backend(|s, b| async move {
        let mut ops = Vec::new();
        for i in 0..150 {
            ops.push(put(item("bg", &format!("{i:03}"), "v"), Cond::Always));
            if ops.len() == 50 {
                s.transact(std::mem::take(&mut ops)).await.unwrap();
            }
        }
        let keys: Vec<Key> = (0..160)
            .map(|i| Key::new("bg", format!("{i:03}")))
            .collect();
        let got = s.batch_get(Table::Leads, &keys).await.unwrap();
        assert_eq!(got.len(), 150, "{b:?}");
    })
    .await;
}
