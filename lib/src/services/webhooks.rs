//! Webhooks: subscriptions, turning recorded events into deliveries (the dispatcher), making
//! delivery attempts with retries (the worker), and the delivery log.
//!
//! Every step is at least once and idempotent where it repeats: a delivery's id is its event's
//! id (so dispatching an event twice finds the delivery already there), each attempt sends the
//! same body and `webhook-id`, and the next attempt is queued before the attempt is recorded.

use std::sync::Arc;

use crate::config::WebhookConfig;
use crate::domain::account::Tenant;
use crate::domain::event::OutboxEvent;
use crate::domain::job::JobMessage;
use crate::domain::webhook::{
    Delivery, DeliveryStatus, MAX_WEBHOOKS, PING_EVENT, Webhook, delivery_headers, parse_events,
    payload, validate_secret, validate_url,
};
use crate::error::{Error, Result};
use crate::ports::{
    Attempt, Cond, Item, JobQueue, OutMessage, Outgoing, QueryReq, SkCond, Table, WebhookSender,
    WriteOp,
};
use crate::schema;
use crate::services::scoring::job_group;
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, events, from_body, to_body};

/// How long the members of a batch may wait for their batch to fold them before the
/// dispatcher folds them itself: longer than any request can run (Lambda stops at 15 min).
pub const ORPHAN_AFTER_SECS: i64 = 15 * 60;
/// Most deliveries listed by `GET /webhooks/{id}/deliveries`.
pub const DELIVERY_LOG_LIMIT: u32 = 100;

/// What a create or an update sets (absent fields stay as they are).
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    /// New target.
    pub url: Option<String>,
    /// New subscribed events (`Some(None)` or an empty list: every event).
    pub events: Option<Option<Vec<String>>>,
    /// New secret (`Some(None)` removes it).
    pub secret: Option<Option<String>>,
    /// Enable or disable deliveries.
    pub active: Option<bool>,
}

/// The webhooks use cases.
#[derive(Clone)]
pub struct WebhookService {
    deps: Deps,
    queue: Arc<dyn JobQueue>,
    sender: Arc<dyn WebhookSender>,
    cfg: WebhookConfig,
}

fn webhook_not_found() -> Error {
    Error::NotFound("Webhook not found".into())
}

fn delivery_not_found() -> Error {
    Error::NotFound("Delivery not found".into())
}

impl WebhookService {
    /// Builds the service.
    pub fn new(
        deps: Deps,
        queue: Arc<dyn JobQueue>,
        sender: Arc<dyn WebhookSender>,
        cfg: WebhookConfig,
    ) -> Self {
        WebhookService {
            deps,
            queue,
            sender,
            cfg,
        }
    }

    fn check_url(&self, url: &str) -> Result<()> {
        validate_url(url, &self.cfg.http_hosts)
    }

    /// Creates a webhook.
    pub async fn create(&self, t: &Tenant, c: WebhookChanges) -> Result<Webhook> {
        let url = c.url.ok_or_else(|| Error::invalid("url is required"))?;
        self.check_url(&url)?;
        let events = parse_events(c.events.flatten().as_deref())?;
        let secret = c.secret.flatten();
        if let Some(s) = &secret {
            validate_secret(s)?;
        }
        if self.list(t).await?.len() >= MAX_WEBHOOKS {
            return Err(Error::invalid(format!(
                "an account has at most {MAX_WEBHOOKS} webhooks"
            )));
        }
        let now_ms = self.deps.clock.now_ms();
        let hook = Webhook {
            // Time-ordered, so the list (in key order) is in creation order.
            id: self.deps.ids.time_ordered(now_ms).to_string(),
            url,
            events,
            active: c.active.unwrap_or(true),
            created_at: now_ms.div_euclid(1000),
            secret,
        };
        let mut tx = Txn::new();
        tx.push(
            Check::None,
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(
                    schema::webhook_key(&t.account_id, &hook.id),
                    to_body(&hook)?,
                ),
                cond: Cond::NotExists,
            },
        )
        .push(
            Check::None,
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(schema::webhooks_marker_key(&t.account_id), b"{}".to_vec()),
                cond: Cond::Always,
            },
        );
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("a webhook with this id already exists; please retry"))?;
        // From now on this account's changes record their events (`events::HookPresence`).
        self.deps.hooks.mark_present(&t.account_id);
        Ok(hook)
    }

    /// The account's webhooks, oldest first (their ids are time-ordered).
    pub async fn list(&self, t: &Tenant) -> Result<Vec<Webhook>> {
        self.list_of(&t.account_id).await
    }

    async fn list_of(&self, account_id: &str) -> Result<Vec<Webhook>> {
        let items = self
            .deps
            .query_all(schema::webhooks_query(account_id, MAX_WEBHOOKS as u32 + 1))
            .await?;
        items
            .iter()
            .map(|i| from_body::<Webhook>(&i.body))
            .collect()
    }

    async fn load(&self, account_id: &str, id: &str) -> Result<(Webhook, u64)> {
        let item = self
            .deps
            .store
            .get(Table::Leads, &schema::webhook_key(account_id, id))
            .await?
            .ok_or_else(webhook_not_found)?;
        Ok((from_body(&item.body)?, item.version))
    }

    /// Reads one webhook.
    pub async fn get(&self, t: &Tenant, id: &str) -> Result<Webhook> {
        Ok(self.load(&t.account_id, id).await?.0)
    }

    /// Changes a webhook.
    pub async fn update(&self, t: &Tenant, id: &str, c: WebhookChanges) -> Result<Webhook> {
        let (mut hook, version) = self.load(&t.account_id, id).await?;
        if let Some(url) = c.url {
            self.check_url(&url)?;
            hook.url = url;
        }
        if let Some(events) = c.events {
            hook.events = parse_events(events.as_deref())?;
        }
        if let Some(secret) = c.secret {
            if let Some(s) = &secret {
                validate_secret(s)?;
            }
            hook.secret = secret;
        }
        if let Some(active) = c.active {
            hook.active = active;
        }
        let mut item = Item::new(schema::webhook_key(&t.account_id, id), to_body(&hook)?);
        item.version = version + 1;
        let mut tx = Txn::new();
        tx.push(
            Check::None,
            WriteOp::Put {
                table: Table::Leads,
                item,
                cond: Cond::Version(version),
            },
        );
        tx.commit(&*self.deps.store)
            .await
            .map_err(|e| e.into_error("the webhook changed concurrently; please retry"))?;
        Ok(hook)
    }

    /// Deletes a webhook; deliveries still queued for it are marked failed when their turn
    /// comes.
    pub async fn delete(&self, t: &Tenant, id: &str) -> Result<()> {
        let mut tx = Txn::new();
        tx.push(
            Check::None,
            WriteOp::Delete {
                table: Table::Leads,
                key: schema::webhook_key(&t.account_id, id),
                cond: Cond::Exists,
            },
        );
        match tx.commit(&*self.deps.store).await {
            Ok(()) => Ok(()),
            Err(TxnError::Failed(_)) => Err(webhook_not_found()),
            Err(TxnError::Store(e)) => Err(e),
        }
    }

    /// A webhook's most recent deliveries, newest first.
    pub async fn deliveries(&self, t: &Tenant, webhook_id: &str) -> Result<Vec<Delivery>> {
        self.load(&t.account_id, webhook_id).await?;
        let page = self
            .deps
            .store
            .query(&QueryReq {
                table: Table::Accounts,
                index: None,
                pk: schema::delivery_pk(&t.account_id, webhook_id),
                sk: SkCond::Any,
                start_after: None,
                descending: true,
                limit: DELIVERY_LOG_LIMIT,
            })
            .await?;
        page.items.iter().map(|i| from_body(&i.body)).collect()
    }

    async fn load_delivery(
        &self,
        account_id: &str,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<Option<(Delivery, u64)>> {
        let item = self
            .deps
            .store
            .get(
                Table::Accounts,
                &schema::delivery_key(account_id, webhook_id, delivery_id),
            )
            .await?;
        item.map(|i| Ok((from_body(&i.body)?, i.version)))
            .transpose()
    }

    fn delivery_item(&self, account_id: &str, d: &Delivery, version: u64) -> Result<Item> {
        let mut item = Item::new(
            schema::delivery_key(account_id, &d.webhook_id, &d.id),
            to_body(d)?,
        );
        item.version = version;
        item.expires_at = Some(d.created_at + schema::DELIVERY_RETENTION_SECS);
        Ok(item)
    }

    fn deliver_message(account_id: &str, d: &Delivery, not_before: i64) -> JobMessage {
        JobMessage::Deliver {
            account_id: account_id.to_string(),
            webhook_id: d.webhook_id.clone(),
            delivery_id: d.id.clone(),
            not_before,
        }
    }

    async fn enqueue(&self, msg: &JobMessage, delay_secs: u64) -> Result<()> {
        let delay = delay_secs.min(u64::from(self.queue.max_delay_secs())) as u32;
        self.queue
            .send(vec![OutMessage {
                body: msg.to_body(),
                delay_secs: delay,
            }])
            .await
    }

    /// Sends a delivery again now, whatever its state (the count of attempts goes on).
    pub async fn retry(&self, t: &Tenant, webhook_id: &str, delivery_id: &str) -> Result<Delivery> {
        self.load(&t.account_id, webhook_id).await?;
        let (mut d, version) = self
            .load_delivery(&t.account_id, webhook_id, delivery_id)
            .await?
            .ok_or_else(delivery_not_found)?;
        let now = self.deps.clock.now_secs();
        d.status = DeliveryStatus::Pending;
        d.next_attempt_at = Some(now);
        self.enqueue(&Self::deliver_message(&t.account_id, &d, now), 0)
            .await?;
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item: self.delivery_item(&t.account_id, &d, version + 1)?,
                cond: Cond::Version(version),
            }])
            .await
            .map_err(|e| match e {
                crate::ports::StoreError::ConditionFailed(_) => {
                    Error::conflict("the delivery changed concurrently; please retry")
                }
                crate::ports::StoreError::Other(e) => e,
            })?;
        Ok(d)
    }

    /// Sends a `ping` event to a webhook now (whatever events it subscribes to).
    pub async fn test(&self, t: &Tenant, webhook_id: &str) -> Result<Delivery> {
        let (hook, _) = self.load(&t.account_id, webhook_id).await?;
        let now_ms = self.deps.clock.now_ms();
        let now = now_ms.div_euclid(1000);
        let id = self.deps.ids.time_ordered(now_ms).to_string();
        let data = serde_json::json!({ "webhook_id": hook.id, "url": hook.url });
        let d = Delivery {
            id,
            webhook_id: hook.id.clone(),
            event: PING_EVENT.into(),
            payload: payload(PING_EVENT, now, &data)?,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            next_attempt_at: Some(now),
            created_at: now,
            timestamp: now,
        };
        self.deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item: self.delivery_item(&t.account_id, &d, 1)?,
                cond: Cond::NotExists,
            }])
            .await?;
        self.enqueue(&Self::deliver_message(&t.account_id, &d, now), 0)
            .await?;
        Ok(d)
    }

    /// One pass over every account's outbox (the dispatcher of one machine; on AWS the outbox
    /// table's stream calls [`WebhookService::dispatch_item`] instead): dispatches each event
    /// and folds orphaned batch members. Returns the number of items looked at.
    pub async fn dispatch_pending(&self) -> Result<usize> {
        let mut start = None;
        let mut seen = 0;
        loop {
            let page = self.deps.store.scan(Table::Outbox, start, 200).await?;
            for item in &page.items {
                seen += 1;
                if let Err(e) = self.dispatch_item(item).await {
                    tracing::warn!(error = %e, key = %item.key.sk, "could not dispatch an event; will retry");
                }
            }
            match page.last {
                Some(p) => start = Some(p.key),
                None => return Ok(seen),
            }
        }
    }

    /// Dispatches one outbox item: an event becomes one delivery per subscribed webhook (each
    /// queued for its first attempt) and is then removed; the members of a batch that died
    /// before folding them are folded once they are [`ORPHAN_AFTER_SECS`] old. Safe to run
    /// again on the same item.
    pub async fn dispatch_item(&self, item: &Item) -> Result<()> {
        let Some(account_id) = schema::account_of_outbox_pk(&item.key.pk) else {
            return Ok(());
        };
        if item.key.sk.starts_with(schema::OUTBOX_MEMBER_PREFIX) {
            return self.fold_orphan(account_id, item).await;
        }
        if !item.key.sk.starts_with(schema::OUTBOX_EVENT_PREFIX) {
            return Ok(());
        }
        let ev: OutboxEvent = from_body(&item.body)?;
        self.dispatch_event(&ev).await?;
        self.deps
            .store
            .transact(vec![WriteOp::Delete {
                table: Table::Outbox,
                key: item.key.clone(),
                cond: Cond::Always,
            }])
            .await?;
        Ok(())
    }

    /// Creates and queues the deliveries of one event; returns how many webhooks receive it.
    pub async fn dispatch_event(&self, ev: &OutboxEvent) -> Result<usize> {
        let hooks: Vec<Webhook> = self
            .list_of(&ev.account_id)
            .await?
            .into_iter()
            .filter(|h| h.wants(ev.event))
            .collect();
        if hooks.is_empty() {
            return Ok(0);
        }
        let body = payload(ev.event.as_str(), ev.timestamp, &ev.data)?;
        let now = self.deps.clock.now_secs();
        for h in &hooks {
            let d = Delivery {
                id: ev.id.clone(),
                webhook_id: h.id.clone(),
                event: ev.event.as_str().to_string(),
                payload: body.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                last_status_code: None,
                last_error: None,
                next_attempt_at: Some(now),
                created_at: now,
                timestamp: ev.timestamp,
            };
            let created = self
                .deps
                .store
                .transact(vec![WriteOp::Put {
                    table: Table::Accounts,
                    item: self.delivery_item(&ev.account_id, &d, 1)?,
                    cond: Cond::NotExists,
                }])
                .await;
            match created {
                Ok(()) => {}
                // Dispatched before (a retried dispatch): queue it again only if no attempt
                // was made yet, since the first queueing may be what was lost.
                Err(crate::ports::StoreError::ConditionFailed(_)) => {
                    let existing = self.load_delivery(&ev.account_id, &h.id, &d.id).await?;
                    if existing.is_none_or(|(e, _)| e.attempts != 0) {
                        continue;
                    }
                }
                Err(crate::ports::StoreError::Other(e)) => return Err(e),
            }
            self.enqueue(&Self::deliver_message(&ev.account_id, &d, now), 0)
                .await?;
        }
        Ok(hooks.len())
    }

    async fn fold_orphan(&self, account_id: &str, item: &Item) -> Result<()> {
        let ev: OutboxEvent = from_body(&item.body)?;
        let Some(group) = ev.group.as_deref() else {
            return Ok(());
        };
        if ev.timestamp + ORPHAN_AFTER_SECS > self.deps.clock.now_secs() {
            return Ok(());
        }
        // A rescoring job still running folds its own members when it finishes.
        if let Some(job_id) = group.strip_prefix("job-")
            && job_group(job_id) == group
            && let Some(job) = self
                .deps
                .store
                .get(Table::Accounts, &schema::job_key(account_id, job_id))
                .await?
            && from_body::<crate::domain::job::Job>(&job.body)
                .is_ok_and(|j| j.status == crate::domain::job::JobStatus::Running)
        {
            return Ok(());
        }
        events::fold_group(&self.deps, account_id, group, None).await
    }

    /// Makes the next attempt of a delivery (the worker's part), records it, and queues the
    /// attempt after it or gives up. An error means nothing was recorded and the message
    /// should be tried again.
    pub async fn deliver(
        &self,
        account_id: &str,
        webhook_id: &str,
        delivery_id: &str,
        not_before: i64,
    ) -> Result<()> {
        let now = self.deps.clock.now_secs();
        let Some((mut d, version)) = self
            .load_delivery(account_id, webhook_id, delivery_id)
            .await?
        else {
            return Ok(());
        };
        if d.status != DeliveryStatus::Pending {
            return Ok(());
        }
        if not_before > now {
            // A wait longer than the queue's largest delay: hop again.
            let msg = Self::deliver_message(account_id, &d, not_before);
            return self.enqueue(&msg, (not_before - now) as u64).await;
        }
        let hook = match self.load(account_id, webhook_id).await {
            Ok((h, _)) if h.active => Some(h),
            Ok(_) => None,
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let Some(hook) = hook else {
            d.status = DeliveryStatus::Failed;
            d.next_attempt_at = None;
            d.last_error = Some("the webhook was deleted or disabled".into());
            return self.save_delivery(account_id, &d, version).await;
        };
        let body = d.payload.clone().into_bytes();
        let headers = delivery_headers(hook.secret.as_deref(), &d.id, d.timestamp, &d.event, &body);
        let attempt = self
            .sender
            .post(Outgoing {
                url: hook.url.clone(),
                headers,
                body,
            })
            .await;
        d.attempts += 1;
        let ok = match &attempt {
            Attempt::Answered { status, body_start } => {
                d.last_status_code = Some(*status);
                let ok = (200..300).contains(status);
                d.last_error = (!ok).then(|| {
                    if body_start.is_empty() {
                        format!("answered {status}")
                    } else {
                        format!("answered {status}: {body_start}")
                    }
                });
                ok
            }
            Attempt::NoAnswer { error } => {
                d.last_status_code = None;
                d.last_error = Some(error.clone());
                false
            }
        };
        let done_at = self.deps.clock.now_secs();
        if ok {
            d.status = DeliveryStatus::Succeeded;
            d.next_attempt_at = None;
        } else {
            match self
                .cfg
                .retry
                .delay_after(d.attempts, rand::random::<f64>())
            {
                Some(delay) => {
                    let at = done_at + delay as i64;
                    d.next_attempt_at = Some(at);
                    // Queued before it is recorded: a crash in between repeats an attempt
                    // rather than losing the delivery.
                    self.enqueue(&Self::deliver_message(account_id, &d, at), delay)
                        .await?;
                }
                None => {
                    d.status = DeliveryStatus::Failed;
                    d.next_attempt_at = None;
                    let msg = Self::deliver_message(account_id, &d, done_at);
                    if let Err(e) = self.queue.dead_letter(msg.to_body()).await {
                        tracing::warn!(error = %e, "could not dead-letter a failed delivery");
                    }
                }
            }
        }
        tracing::info!(
            webhook = %webhook_id,
            delivery = %d.id,
            event = %d.event,
            attempts = d.attempts,
            status = ?d.status,
            code = ?d.last_status_code,
            "webhook delivery attempt"
        );
        self.save_delivery(account_id, &d, version).await
    }

    async fn save_delivery(&self, account_id: &str, d: &Delivery, version: u64) -> Result<()> {
        match self
            .deps
            .store
            .transact(vec![WriteOp::Put {
                table: Table::Accounts,
                item: self.delivery_item(account_id, d, version + 1)?,
                cond: Cond::Version(version),
            }])
            .await
        {
            // Another attempt of the same delivery (a redelivered message) recorded first.
            Ok(()) | Err(crate::ports::StoreError::ConditionFailed(_)) => Ok(()),
            Err(crate::ports::StoreError::Other(e)) => Err(e),
        }
    }
}
