//! Contract tests of the store port: the same cases run on the embedded store and on DynamoDB
//! (through the emulator), so the services above the port can rely on identical behaviour.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use klozeo_core::Error;
use klozeo_core::ports::{
    Cond, IndexKey, Item, Key, MAX_ITEM_BYTES, MAX_TRANSACTION_OPS, Position, QueryReq, SkCond,
    Store, StoreError, Table, WriteOp, item_size,
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

/// An item whose [`item_size`] is exactly `size`, its body `tag` then padding.
fn sized_item(pk: &str, sk: &str, size: usize, index_keys: Vec<IndexKey>) -> Item {
    let mut it = Item::new(Key::new(pk, sk), Vec::new());
    it.index_keys = index_keys;
    let pad = size - item_size(&it) - sk.len();
    it.body = format!("{sk}{}", "x".repeat(pad)).into_bytes();
    assert_eq!(item_size(&it), size);
    it
}

fn status_entry(pk: &str, sk: &str) -> Vec<IndexKey> {
    vec![IndexKey {
        index: "by_status",
        pk: pk.into(),
        sk: sk.into(),
    }]
}

fn range(pk: &str, sk: SkCond, index: Option<&'static str>, limit: u32) -> QueryReq {
    QueryReq {
        table: Table::Leads,
        index,
        pk: pk.into(),
        sk,
        start_after: None,
        descending: false,
        limit,
    }
}

/// Every item of a range, page by page, checking the port's page contract on the way: a page
/// is full exactly when it carries a resume position.
async fn walk(s: &Arc<dyn Store>, mut req: QueryReq, b: Backend) -> Vec<Item> {
    let mut out = Vec::new();
    loop {
        let page = s.query(&req).await.unwrap();
        let n = page.items.len();
        out.extend(page.items);
        match page.last {
            Some(p) => {
                assert_eq!(
                    n, req.limit as usize,
                    "{b:?}: a page with a position is full"
                );
                assert_eq!(Some(&p.key), out.last().map(|i| &i.key), "{b:?}");
                req.start_after = Some(p);
            }
            None => {
                assert!(n < req.limit as usize, "{b:?}: a full page has a position");
                return out;
            }
        }
    }
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.key.sk.clone()).collect()
}

/// Keys and bodies (a read item does not list its index entries).
fn contents(items: &[Item]) -> Vec<(&str, &[u8])> {
    items
        .iter()
        .map(|i| (i.key.sk.as_str(), i.body.as_slice()))
        .collect()
}

async fn absent(s: &Arc<dyn Store>, table: Table, pk: &str, sk: &str) -> bool {
    s.get(table, &Key::new(pk, sk)).await.unwrap().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_of_the_largest_size_is_stored_and_read_back_whole() {
    each_backend(|s, b| async move {
        let it = sized_item("big", "max", MAX_ITEM_BYTES, status_entry("big#s", "max"));
        s.transact(vec![put(it.clone(), Cond::NotExists)])
            .await
            .unwrap();
        let got = s.get(Table::Leads, &it.key).await.unwrap().expect("stored");
        assert_eq!(got.body, it.body, "{b:?}");
        let page = s
            .query(&range("big#s", SkCond::Any, Some("by_status"), 10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "{b:?}");
        assert_eq!(page.items[0].body, it.body, "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_item_is_refused_and_nothing_is_written() {
    each_backend(|s, b| async move {
        let over = sized_item("big", "over", MAX_ITEM_BYTES + 1, Vec::new());
        let err = s
            .transact(vec![put(over.clone(), Cond::Always)])
            .await
            .unwrap_err();
        let StoreError::Other(Error::TooLarge(msg)) = err else {
            panic!("{b:?}: {err:?}");
        };
        assert!(msg.contains("400,001 bytes"), "{b:?}: {msg}");
        assert!(absent(&s, Table::Leads, "big", "over").await, "{b:?}");

        // A lead of 100 attributes of 16 KiB (the case), inside a group: the other
        // writes of the group are not made either.
        let attrs: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    "{{\"name\":\"a{i}\",\"value\":\"{}\"}}",
                    "v".repeat(16 * 1024)
                )
            })
            .collect();
        let doc = format!("{{\"attributes\":[{}]}}", attrs.join(","));
        let lead = Item::new(Key::new("big", "lead"), doc.into_bytes());
        let err = s
            .transact(vec![
                put(item("big", "before", "1"), Cond::NotExists),
                WriteOp::Add {
                    table: Table::Accounts,
                    key: Key::new("big", "count"),
                    delta: 1,
                    max: None,
                },
                put(lead, Cond::NotExists),
                put(item("big", "after", "1"), Cond::NotExists),
            ])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Other(Error::TooLarge(_))),
            "{b:?}: {err:?}"
        );
        for sk in ["before", "lead", "after"] {
            assert!(absent(&s, Table::Leads, "big", sk).await, "{b:?}: {sk}");
        }
        assert!(absent(&s, Table::Accounts, "big", "count").await, "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_over_4_mb_is_refused_and_nothing_is_written() {
    each_backend(|s, b| async move {
        let ops: Vec<WriteOp> = (0..11)
            .map(|i| {
                put(
                    sized_item("t4", &format!("{i:02}"), 380_000, Vec::new()),
                    Cond::Always,
                )
            })
            .collect();
        let err = s.transact(ops).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Other(Error::TooLarge(_))),
            "{b:?}: {err:?}"
        );
        let page = s.query(&range("t4", SkCond::Any, None, 100)).await.unwrap();
        assert!(page.items.is_empty(), "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writes_on_one_item_are_refused_and_nothing_is_written() {
    each_backend(|s, b| async move {
        let groups = [
            vec![
                put(item("d", "other", "1"), Cond::Always),
                put(item("d", "a", "1"), Cond::NotExists),
                put(item("d", "a", "2"), Cond::Always),
            ],
            vec![
                put(item("d", "other", "1"), Cond::Always),
                put(item("d", "a", "1"), Cond::NotExists),
                WriteOp::Check {
                    table: Table::Leads,
                    key: Key::new("d", "a"),
                    cond: Cond::Always,
                },
            ],
            vec![
                put(item("d", "other", "1"), Cond::Always),
                WriteOp::Add {
                    table: Table::Leads,
                    key: Key::new("d", "a"),
                    delta: 1,
                    max: None,
                },
                WriteOp::Delete {
                    table: Table::Leads,
                    key: Key::new("d", "a"),
                    cond: Cond::Always,
                },
            ],
        ];
        for ops in groups {
            let err = s.transact(ops).await.unwrap_err();
            assert!(
                matches!(err, StoreError::Other(Error::Internal(ref m)) if m.contains("writes 1 and 2")),
                "{b:?}: {err:?}"
            );
            assert!(absent(&s, Table::Leads, "d", "other").await, "{b:?}");
            assert!(absent(&s, Table::Leads, "d", "a").await, "{b:?}");
        }
        // The same key in two tables is two items.
        s.transact(vec![
            put(item("d", "a", "1"), Cond::NotExists),
            WriteOp::Check {
                table: Table::Accounts,
                key: Key::new("d", "a"),
                cond: Cond::NotExists,
            },
        ])
        .await
        .unwrap();
        assert_eq!(body(&s, "d", "a").await.as_deref(), Some("1"), "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_writes_are_refused_and_100_are_applied() {
    each_backend(|s, b| async move {
        let ops = |n: usize, pk: &str| -> Vec<WriteOp> {
            (0..n)
                .map(|i| put(item(pk, &format!("{i:03}"), "v"), Cond::NotExists))
                .collect()
        };
        let err = s
            .transact(ops(MAX_TRANSACTION_OPS + 1, "o101"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Other(Error::Internal(_))),
            "{b:?}: {err:?}"
        );
        let page = s
            .query(&range("o101", SkCond::Any, None, 1000))
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{b:?}");
        s.transact(ops(MAX_TRANSACTION_OPS, "o100")).await.unwrap();
        let page = s
            .query(&range("o100", SkCond::Any, None, 1000))
            .await
            .unwrap();
        assert_eq!(page.items.len(), MAX_TRANSACTION_OPS, "{b:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_full_past_dynamodb_1_mb_page_cut() {
    each_backend(|s, b| async move {
        // 16 items of 100 to 350 KB in one partition (about 3.6 MB), each also in an index,
        // between neighbours outside the queried prefix.
        let mut want = Vec::new();
        let mut total = 0;
        for i in 0..16usize {
            let sk = format!("I#{i:02}");
            let size = 100_000 + (i * 97_331) % 250_000;
            total += size;
            let it = sized_item("mb", &sk, size, status_entry("mb#s", &format!("{i:02}")));
            s.transact(vec![
                put(it.clone(), Cond::NotExists),
                put(item("mb", &format!("J#{i:02}"), "x"), Cond::NotExists),
            ])
            .await
            .unwrap();
            want.push(it);
        }
        s.transact(vec![put(item("mb", "H#", "x"), Cond::NotExists)])
            .await
            .unwrap();
        assert!(total > 3_000_000, "{total}");
        let prefix = || SkCond::BeginsWith("I#".into());

        // One call with a limit gets exactly that many items, whole, even past 1 MB.
        let page = s.query(&range("mb", prefix(), None, 7)).await.unwrap();
        assert_eq!(sks(&page.items), sks(&want[..7]), "{b:?}");
        assert_eq!(
            contents(&page.items),
            contents(&want[..7]),
            "{b:?}: bodies read back whole"
        );
        assert_eq!(page.last.map(|p| p.key.sk).as_deref(), Some("I#06"));
        // A limit above the range returns all of it and no position.
        let page = s.query(&range("mb", prefix(), None, 100)).await.unwrap();
        assert_eq!(page.items.len(), 16, "{b:?}");
        assert!(page.last.is_none(), "{b:?}");

        // Full walks return every item once, in order, on the table and on the index.
        for limit in [1, 5, 16] {
            let all = walk(&s, range("mb", prefix(), None, limit), b).await;
            assert_eq!(contents(&all), contents(&want), "{b:?}: walk by {limit}");
        }
        let mut desc = range("mb", prefix(), None, 6);
        desc.descending = true;
        let all = walk(&s, desc, b).await;
        assert_eq!(
            sks(&all),
            sks(&want).into_iter().rev().collect::<Vec<_>>(),
            "{b:?}"
        );
        let all = walk(&s, range("mb#s", SkCond::Any, Some("by_status"), 4), b).await;
        assert_eq!(sks(&all), sks(&want), "{b:?}: index walk");
        let page = s
            .query(&range("mb#s", SkCond::Any, Some("by_status"), 9))
            .await
            .unwrap();
        assert_eq!(sks(&page.items), sks(&want[..9]), "{b:?}");
        let last = page.last.unwrap();
        assert_eq!(
            last.index,
            Some(("mb#s".to_string(), "08".to_string())),
            "{b:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_do_not_shorten_a_page() {
    each_backend(|s, b| async move {
        let mut ops = Vec::new();
        for i in 0..12 {
            let mut it = item("ex", &format!("K#{i:02}"), "v");
            it.index_keys = status_entry("ex#s", &format!("{i:02}"));
            if i % 2 == 0 {
                it.expires_at = Some(1_000);
            }
            ops.push(put(it, Cond::Always));
        }
        s.transact(ops).await.unwrap();
        let live = ["K#01", "K#03", "K#05", "K#07", "K#09", "K#11"];
        for index in [None, Some("by_status")] {
            let pk = if index.is_some() { "ex#s" } else { "ex" };
            let page = s.query(&range(pk, SkCond::Any, index, 3)).await.unwrap();
            assert_eq!(sks(&page.items), live[..3], "{b:?} {index:?}");
            assert!(page.last.is_some(), "{b:?}");
            let page = s.query(&range(pk, SkCond::Any, index, 6)).await.unwrap();
            assert_eq!(sks(&page.items), live, "{b:?} {index:?}");
            let page = s.query(&range(pk, SkCond::Any, index, 7)).await.unwrap();
            assert_eq!(sks(&page.items), live, "{b:?} {index:?}");
            assert!(page.last.is_none(), "{b:?} {index:?}");
            for limit in [1, 2, 4] {
                let all = walk(&s, range(pk, SkCond::Any, index, limit), b).await;
                assert_eq!(sks(&all), live, "{b:?} {index:?} by {limit}");
            }
        }
    })
    .await;
}

/// `query_many` answers each request's page, in the order asked, exactly as `query` would:
/// limits that differ from one request to the next (a bulk write's phone and name + city
/// lookups alternate 1 and more), empty ranges and resumed ranges included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_many_answers_each_page_as_query_does() {
    each_backend(|s, b| async move {
        let mut ops = Vec::new();
        for i in 0..12 {
            ops.push(put(item("qm", &format!("P#{i:02}"), "p"), Cond::Always));
            ops.push(put(item("qm", &format!("N#{i:02}"), "n"), Cond::Always));
        }
        s.transact(ops).await.unwrap();
        let mut resumed = range("qm", SkCond::BeginsWith("P#".into()), None, 4);
        resumed.start_after = Some(Position {
            key: Key::new("qm", "P#05"),
            index: None,
        });
        let mut reqs = Vec::new();
        for limit in [1, 5, 1, 100, 3] {
            reqs.push(range("qm", SkCond::BeginsWith("P#".into()), None, limit));
            reqs.push(range("qm", SkCond::BeginsWith("N#0".into()), None, limit));
        }
        reqs.push(range("qm", SkCond::BeginsWith("Z#".into()), None, 5));
        reqs.push(resumed);
        let pages = s.query_many(&reqs).await.unwrap();
        assert_eq!(pages.len(), reqs.len(), "{b:?}");
        for (req, page) in reqs.iter().zip(&pages) {
            let alone = s.query(req).await.unwrap();
            let keys_of = |p: &klozeo_core::ports::Page| -> Vec<String> {
                p.items.iter().map(|i| i.key.sk.clone()).collect()
            };
            assert_eq!(keys_of(page), keys_of(&alone), "{b:?} {req:?}");
            assert_eq!(
                page.last.as_ref().map(|p| p.key.clone()),
                alone.last.as_ref().map(|p| p.key.clone()),
                "{b:?} {req:?}"
            );
        }
        assert_eq!(pages[0].items.len(), 1);
        assert_eq!(pages[0].items[0].key.sk, "P#00");
        assert_eq!(pages[7].items.len(), 10, "N#00..N#09 under a limit of 100");
        assert!(pages[10].items.is_empty());
        let resumed: Vec<&str> = pages[11].items.iter().map(|i| i.key.sk.as_str()).collect();
        assert_eq!(resumed, ["P#06", "P#07", "P#08", "P#09"]);
    })
    .await;
}
