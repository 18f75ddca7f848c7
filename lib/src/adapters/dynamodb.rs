//! The production store on DynamoDB.
//!
//! Items map to attributes `pk`, `sk`, `b` (the JSON document), `v` (version), `c` (counter),
//! `expires_at` (TTL) and `<index>_pk` / `<index>_sk` for each index entry. Atomic groups map to
//! `TransactWriteItems`; reads of the base table are strongly consistent.
//!
//! This module and the composition root are the only places that name AWS SDK types.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};

use crate::error::Error;
use crate::ports::{
    Clock, Cond, Item, Key, Page, Position, QueryReq, SkCond, Store, StoreError, SystemClock,
    Table, WriteOp, check_transaction,
};
use crate::schema::{self, PK_ATTR, SK_ATTR, TABLES, TTL_ATTR, table_def};

type Attrs = HashMap<String, AttributeValue>;

/// The DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    prefix: String,
    clock: std::sync::Arc<dyn Clock>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn sdk_err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> Error {
    let code = e.code().unwrap_or("").to_string();
    let msg = e.message().unwrap_or("").to_string();
    if matches!(
        code.as_str(),
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
    ) || matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
    {
        return Error::Unavailable(format!("DynamoDB {op} is temporarily unavailable ({code})"));
    }
    tracing::error!(operation = op, code = %code, message = %msg, error = ?e, "DynamoDB call failed");
    Error::internal(format!("DynamoDB {op} failed: {code} {msg}"))
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        (PK_ATTR.to_string(), s(&key.pk)),
        (SK_ATTR.to_string(), s(&key.sk)),
    ])
}

fn item_attrs(table: Table, item: &Item) -> Attrs {
    let mut m = key_attrs(&item.key);
    m.insert(
        "b".into(),
        s(String::from_utf8_lossy(&item.body).into_owned()),
    );
    m.insert("v".into(), n(item.version));
    m.insert("c".into(), n(item.counter));
    if let Some(t) = item.expires_at {
        m.insert(TTL_ATTR.into(), n(t));
    }
    let def = table_def(table);
    for ik in &item.index_keys {
        if let Some(idx) = def.indexes.iter().find(|d| d.name == ik.index) {
            m.insert(idx.pk_attr(), s(&ik.pk));
            m.insert(idx.sk_attr(), s(&ik.sk));
        }
    }
    m
}

fn get_s(m: &Attrs, k: &str) -> Option<String> {
    m.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(m: &Attrs, k: &str) -> Option<i64> {
    m.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|x| x.parse::<f64>().ok())
        .map(|x| x as i64)
}

fn attrs_item(m: &Attrs) -> Result<Item, Error> {
    let pk = get_s(m, PK_ATTR).ok_or_else(|| Error::internal("DynamoDB item without pk"))?;
    let sk = get_s(m, SK_ATTR).ok_or_else(|| Error::internal("DynamoDB item without sk"))?;
    Ok(Item {
        key: Key::new(pk, sk),
        body: get_s(m, "b").unwrap_or_default().into_bytes(),
        version: get_n(m, "v").unwrap_or(0) as u64,
        index_keys: Vec::new(),
        expires_at: get_n(m, TTL_ATTR),
        counter: get_n(m, "c").unwrap_or(0),
    })
}

/// The condition expression for `cond`, with its values, treating expired items as absent.
fn cond_expr(cond: Cond, now: i64, vals: &mut Attrs) -> Option<String> {
    let alive = "(attribute_not_exists(expires_at) OR expires_at > :now)";
    let expr = match cond {
        Cond::Always => return None,
        Cond::NotExists => "(attribute_not_exists(pk) OR expires_at <= :now)".to_string(),
        Cond::Exists => format!("attribute_exists(pk) AND {alive}"),
        Cond::Version(v) => {
            vals.insert(":ver".into(), n(v));
            format!("v = :ver AND {alive}")
        }
    };
    vals.insert(":now".into(), n(now));
    Some(expr)
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl DynamoStore {
    /// Wraps a client built once per cold start; `prefix` is prepended to every table name.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        DynamoStore {
            client,
            prefix: prefix.into(),
            clock: std::sync::Arc::new(SystemClock),
        }
    }

    /// Uses `clock` to decide which items have expired (tests move time by hand).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn name(&self, t: Table) -> String {
        schema::physical_name(&self.prefix, t)
    }

    fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    fn write_item(&self, op: &WriteOp, now: i64) -> Result<TransactWriteItem, Error> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| Error::internal(e);
        let mut vals = Attrs::new();
        Ok(match op {
            WriteOp::Put { table, item, cond } => {
                let expr = cond_expr(*cond, now, &mut vals);
                let put = Put::builder()
                    .table_name(self.name(*table))
                    .set_item(Some(item_attrs(*table, item)))
                    .set_condition_expression(expr)
                    .set_expression_attribute_values((!vals.is_empty()).then_some(vals))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().put(put).build()
            }
            WriteOp::Delete { table, key, cond } => {
                let expr = cond_expr(*cond, now, &mut vals);
                let del = Delete::builder()
                    .table_name(self.name(*table))
                    .set_key(Some(key_attrs(key)))
                    .set_condition_expression(expr)
                    .set_expression_attribute_values((!vals.is_empty()).then_some(vals))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().delete(del).build()
            }
            WriteOp::Add {
                table,
                key,
                delta,
                max,
            } => {
                vals.insert(":d".into(), n(delta));
                vals.insert(":zero".into(), n(0));
                vals.insert(":one".into(), n(1));
                vals.insert(":empty".into(), s(""));
                let cond = max.map(|m| {
                    vals.insert(":lim".into(), n(m - delta));
                    "attribute_not_exists(c) OR c <= :lim".to_string()
                });
                let upd = Update::builder()
                    .table_name(self.name(*table))
                    .set_key(Some(key_attrs(key)))
                    .update_expression(
                        "SET c = if_not_exists(c, :zero) + :d, v = if_not_exists(v, :zero) + :one, b = if_not_exists(b, :empty)",
                    )
                    .set_condition_expression(cond)
                    .set_expression_attribute_values(Some(vals))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().update(upd).build()
            }
            WriteOp::Check { table, key, cond } => {
                let expr = cond_expr(*cond, now, &mut vals)
                    .unwrap_or_else(|| "attribute_exists(pk) OR attribute_not_exists(pk)".into());
                let chk = ConditionCheck::builder()
                    .table_name(self.name(*table))
                    .set_key(Some(key_attrs(key)))
                    .condition_expression(expr)
                    .set_expression_attribute_values((!vals.is_empty()).then_some(vals))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().condition_check(chk).build()
            }
        })
    }

    /// Creates every table of [`TABLES`] with its indexes and TTL (for emulators and first
    /// deployments without SAM). Existing tables are left alone.
    pub async fn create_tables(&self) -> Result<Vec<String>, Error> {
        let mut created = Vec::new();
        for def in TABLES {
            let name = self.name(def.table);
            let mut attr_defs = vec![attr_def(PK_ATTR)?, attr_def(SK_ATTR)?];
            let mut gsis = Vec::new();
            for idx in def.indexes {
                attr_defs.push(attr_def(&idx.pk_attr())?);
                attr_defs.push(attr_def(&idx.sk_attr())?);
                gsis.push(
                    GlobalSecondaryIndex::builder()
                        .index_name(idx.name)
                        .key_schema(key_elem(&idx.pk_attr(), KeyType::Hash)?)
                        .key_schema(key_elem(&idx.sk_attr(), KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(Error::internal)?,
                );
            }
            let res = self
                .client
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(attr_defs))
                .key_schema(key_elem(PK_ATTR, KeyType::Hash)?)
                .key_schema(key_elem(SK_ATTR, KeyType::Range)?)
                .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
                .send()
                .await;
            match res {
                Ok(_) => created.push(name.clone()),
                Err(e) if e.code() == Some("ResourceInUseException") => continue,
                Err(e) => return Err(sdk_err("CreateTable", e)),
            }
            if def.ttl {
                self.client
                    .update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(
                        TimeToLiveSpecification::builder()
                            .enabled(true)
                            .attribute_name(TTL_ATTR)
                            .build()
                            .map_err(Error::internal)?,
                    )
                    .send()
                    .await
                    .map_err(|e| sdk_err("UpdateTimeToLive", e))?;
            }
        }
        Ok(created)
    }
}

fn attr_def(name: &str) -> Result<AttributeDefinition, Error> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(Error::internal)
}

fn key_elem(name: &str, kt: KeyType) -> Result<KeySchemaElement, Error> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kt)
        .build()
        .map_err(Error::internal)
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(self.name(table))
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        let now = self.now();
        match out.item() {
            Some(m) => {
                let item = attrs_item(m)?;
                Ok(item.expires_at.is_none_or(|t| t > now).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn batch_get(&self, table: Table, keys: &[Key]) -> Result<Vec<Item>, Error> {
        let name = self.name(table);
        let now = self.now();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending: Vec<Attrs> = chunk.iter().map(key_attrs).collect();
            let mut attempts = 0u32;
            while !pending.is_empty() {
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(Error::internal)?;
                let res = self
                    .client
                    .batch_get_item()
                    .request_items(&name, ka)
                    .send()
                    .await
                    .map_err(|e| sdk_err("BatchGetItem", e))?;
                if let Some(items) = res.responses().and_then(|r| r.get(&name)) {
                    for m in items {
                        let item = attrs_item(m)?;
                        if item.expires_at.is_none_or(|t| t > now) {
                            out.push(item);
                        }
                    }
                }
                if let Some(un) = res.unprocessed_keys().and_then(|u| u.get(&name)) {
                    pending = un.keys().to_vec();
                }
                attempts += 1;
                if !pending.is_empty() {
                    if attempts > 8 {
                        return Err(Error::Unavailable(
                            "DynamoDB kept throttling a batch read".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempts)).await;
                }
            }
        }
        Ok(out)
    }

    async fn query(&self, req: &QueryReq) -> Result<Page, Error> {
        let def = table_def(req.table);
        let (pk_attr, sk_attr) = match req.index {
            None => (PK_ATTR.to_string(), SK_ATTR.to_string()),
            Some(name) => {
                let idx = def
                    .indexes
                    .iter()
                    .find(|d| d.name == name)
                    .ok_or_else(|| Error::internal(format!("unknown index {name}")))?;
                (idx.pk_attr(), idx.sk_attr())
            }
        };
        let mut names = HashMap::from([("#p".to_string(), pk_attr.clone())]);
        let mut vals = HashMap::from([(":p".to_string(), s(&req.pk))]);
        let mut expr = "#p = :p".to_string();
        let mut add = |tmpl: &str, a: &str, b: Option<&str>| {
            names.insert("#s".into(), sk_attr.clone());
            vals.insert(":a".into(), s(a));
            if let Some(b) = b {
                vals.insert(":b".into(), s(b));
            }
            expr.push_str(" AND ");
            expr.push_str(tmpl);
        };
        match &req.sk {
            SkCond::Any => {}
            SkCond::BeginsWith(p) => add("begins_with(#s, :a)", p, None),
            SkCond::Between(a, b) => add("#s BETWEEN :a AND :b", a, Some(b)),
            SkCond::Gt(a) => add("#s > :a", a, None),
            SkCond::Ge(a) => add("#s >= :a", a, None),
            SkCond::Lt(a) => add("#s < :a", a, None),
            SkCond::Le(a) => add("#s <= :a", a, None),
        }
        let mut start = req.start_after.as_ref().map(|pos| {
            let mut m = key_attrs(&pos.key);
            if let Some((ipk, isk)) = &pos.index {
                m.insert(pk_attr.clone(), s(ipk));
                m.insert(sk_attr.clone(), s(isk));
            }
            m
        });
        let wanted = req.limit as usize;
        let mut items = Vec::new();
        // DynamoDB ends a page at 1 MB of data read, and the expired items it returns are
        // dropped here, so one call may come back short while more items match. The port
        // promises a full page, so read on from LastEvaluatedKey until the page is full or the
        // range ends.
        while items.len() < wanted {
            let out = self
                .client
                .query()
                .table_name(self.name(req.table))
                .set_index_name(req.index.map(str::to_string))
                .key_condition_expression(&expr)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(vals.clone()))
                .set_exclusive_start_key(start.take())
                .scan_index_forward(!req.descending)
                .limit((wanted - items.len()).min(i32::MAX as usize) as i32)
                .consistent_read(req.index.is_none())
                .send()
                .await
                .map_err(|e| sdk_err("Query", e))?;
            let now = self.now();
            let mut last_live = None;
            for m in out.items() {
                let item = attrs_item(m)?;
                if item.expires_at.is_none_or(|t| t > now) {
                    items.push(item);
                    last_live = Some(m);
                }
            }
            if items.len() == wanted {
                // Each call asks for just the items still missing, so a page fills on the
                // last item a call read: the position to resume from is that item's.
                let last = last_live.map(|m| Position {
                    key: Key::new(
                        get_s(m, PK_ATTR).unwrap_or_default(),
                        get_s(m, SK_ATTR).unwrap_or_default(),
                    ),
                    index: req.index.map(|_| {
                        (
                            get_s(m, &pk_attr).unwrap_or_default(),
                            get_s(m, &sk_attr).unwrap_or_default(),
                        )
                    }),
                });
                return Ok(Page { items, last });
            }
            match out.last_evaluated_key {
                Some(lek) => start = Some(lek),
                None => break,
            }
        }
        Ok(Page { items, last: None })
    }

    async fn scan(
        &self,
        table: Table,
        start_after: Option<Key>,
        limit: u32,
    ) -> Result<Page, Error> {
        let now = self.now();
        let mut items = Vec::new();
        let mut start = start_after.as_ref().map(key_attrs);
        loop {
            let want = limit.saturating_sub(items.len() as u32).max(1);
            let out = self
                .client
                .scan()
                .table_name(self.name(table))
                .set_exclusive_start_key(start)
                .limit(want.min(i32::MAX as u32) as i32)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_err("Scan", e))?;
            for m in out.items() {
                let item = attrs_item(m)?;
                if item.expires_at.is_none_or(|t| t > now) {
                    items.push(item);
                }
            }
            match out.last_evaluated_key() {
                Some(m) => {
                    let key = Key::new(
                        get_s(m, PK_ATTR).unwrap_or_default(),
                        get_s(m, SK_ATTR).unwrap_or_default(),
                    );
                    if items.len() as u32 >= limit {
                        return Ok(Page {
                            items,
                            last: Some(Position { key, index: None }),
                        });
                    }
                    start = Some(key_attrs(&key));
                }
                None => return Ok(Page { items, last: None }),
            }
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction(&ops)?;
        if ops.is_empty() {
            // TransactWriteItems refuses an empty list; an empty group has nothing to apply.
            return Ok(());
        }
        let now = self.now();
        for (i, op) in ops.iter().enumerate() {
            if let WriteOp::Add {
                delta,
                max: Some(m),
                ..
            } = op
                && delta > m
            {
                return Err(StoreError::ConditionFailed(i));
            }
        }
        let items = ops
            .iter()
            .map(|op| self.write_item(op, now))
            .collect::<Result<Vec<_>, _>>()?;
        let mut attempt = 0u32;
        loop {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                err.as_service_error()
            {
                let reasons = c.cancellation_reasons();
                if let Some(i) = reasons
                    .iter()
                    .position(|r| r.code() == Some("ConditionalCheckFailed"))
                {
                    return Err(StoreError::ConditionFailed(i));
                }
                let conflict = reasons
                    .iter()
                    .any(|r| r.code() == Some("TransactionConflict"));
                if conflict && attempt < 5 {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                    continue;
                }
                if conflict {
                    return Err(StoreError::Other(Error::Conflict {
                        code: crate::error::Code::Conflict,
                        message: "a concurrent change was detected; please retry".into(),
                    }));
                }
            }
            return Err(StoreError::Other(sdk_err("TransactWriteItems", err)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{IndexKey, item_size};

    /// The size of the attributes the adapter sends, by DynamoDB's rules: names and strings by
    /// UTF-8 length, numbers by one byte per two digits (rounded up) plus one, plus the sign.
    fn attrs_size(m: &Attrs) -> usize {
        m.iter()
            .map(|(name, v)| {
                name.len()
                    + match v {
                        AttributeValue::S(s) => s.len(),
                        AttributeValue::N(n) => {
                            let digits = n.trim_start_matches('-');
                            digits.len().div_ceil(2) + 1 + usize::from(n.starts_with('-'))
                        }
                        other => panic!("unexpected attribute {other:?}"),
                    }
            })
            .sum()
    }

    #[test]
    fn the_port_sizes_items_as_this_adapter_stores_them() {
        let mut item = Item::new(
            Key::new("A#acct", "L#cl_1"),
            r#"{"name":"é"}"#.as_bytes().to_vec(),
        );
        assert_eq!(
            item_size(&item),
            attrs_size(&item_attrs(Table::Leads, &item))
        );
        item.version = 1_234_567;
        item.counter = -42;
        item.expires_at = Some(1_900_000_000);
        item.index_keys = table_def(Table::Leads)
            .indexes
            .iter()
            .map(|d| IndexKey {
                index: d.name,
                pk: format!("A#acct#{}", d.name),
                sk: "cl_1".into(),
            })
            .collect();
        assert_eq!(
            item_size(&item),
            attrs_size(&item_attrs(Table::Leads, &item))
        );
        // Invalid UTF-8 is sent as U+FFFD.
        item.body = vec![b'{', 0xff, 0xfe, b'}'];
        assert_eq!(
            item_size(&item),
            attrs_size(&item_attrs(Table::Leads, &item))
        );
        let plain = Item::new(Key::new("ACCT#1", "COUNT#leads"), Vec::new());
        assert_eq!(
            item_size(&plain),
            attrs_size(&item_attrs(Table::Accounts, &plain))
        );
    }
}
