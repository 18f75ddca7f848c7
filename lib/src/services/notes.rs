//! Notes on a lead: add, list (newest first), edit, delete. Every change records its event.

use crate::domain::account::Tenant;
use crate::domain::event::EventKind;
use crate::domain::ids::{LeadId, NoteId};
use crate::domain::note::{Note, validate_content};
use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, QueryReq, SkCond, Table, WriteOp};
use crate::schema;
use crate::services::events::event_op;
use crate::services::leads::load_lead;
use crate::services::txn::{Check, Txn, TxnError};
use crate::services::{Deps, backoff, from_body, to_body};

/// The notes use cases.
#[derive(Clone)]
pub struct NoteService {
    deps: Deps,
}

impl NoteService {
    /// Builds the service.
    pub fn new(deps: Deps) -> Self {
        NoteService { deps }
    }

    async fn note_event(&self, t: &Tenant, kind: EventKind, note: &Note) -> Result<WriteOp> {
        let data = serde_json::to_value(note).map_err(Error::internal)?;
        event_op(&self.deps, &t.account_id, kind, data, None).await
    }

    /// Adds a note to a lead.
    pub async fn create_note(&self, t: &Tenant, lead_id: &LeadId, content: &str) -> Result<Note> {
        let content = validate_content(content)?;
        load_lead(&self.deps, &t.account_id, lead_id).await?;
        let now_ms = self.deps.clock.now_ms();
        let note = Note {
            id: format!("note_{}", self.deps.ids.time_ordered(now_ms)),
            lead_id: lead_id.to_string(),
            content,
            created_at: now_ms.div_euclid(1000),
            updated_at: now_ms.div_euclid(1000),
        };
        let mut tx = Txn::new();
        // The lead must still exist when the note is written.
        tx.push(
            Check::LeadExists,
            WriteOp::Check {
                table: Table::Leads,
                key: schema::lead_key(&t.account_id, lead_id),
                cond: Cond::Exists,
            },
        )
        .push(
            Check::NoteAbsent,
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(
                    schema::note_key(&t.account_id, lead_id, &note.id),
                    to_body(&note)?,
                ),
                cond: Cond::NotExists,
            },
        )
        .push(
            Check::NoteAbsent,
            WriteOp::Put {
                table: Table::Leads,
                item: Item::new(
                    schema::note_pointer_key(&t.account_id, &note.id),
                    to_body(&serde_json::json!({ "lead_id": lead_id }))?,
                ),
                cond: Cond::NotExists,
            },
        )
        .push(
            Check::EventAbsent,
            self.note_event(t, EventKind::NoteCreated, &note).await?,
        );
        match tx.commit(&*self.deps.store).await {
            Ok(()) => Ok(note),
            Err(TxnError::Failed(Check::LeadExists)) => Err(Error::lead_not_found()),
            Err(e) => Err(e.into_error("a note with this id already exists; please retry")),
        }
    }

    /// A lead's notes, newest first.
    pub async fn list_notes(&self, t: &Tenant, lead_id: &LeadId) -> Result<Vec<Note>> {
        load_lead(&self.deps, &t.account_id, lead_id).await?;
        let items = self.note_items(t, lead_id, true).await?;
        items.iter().map(|i| from_body::<Note>(&i.body)).collect()
    }

    async fn load_note(&self, t: &Tenant, note_id: &NoteId) -> Result<(Note, u64, Key)> {
        let ptr = self
            .deps
            .store
            .get(
                Table::Leads,
                &schema::note_pointer_key(&t.account_id, note_id),
            )
            .await?
            .ok_or_else(NoteId::not_found)?;
        let v: serde_json::Value = from_body(&ptr.body)?;
        let lead_id = v["lead_id"].as_str().unwrap_or_default().to_string();
        let key = schema::note_key(&t.account_id, &lead_id, note_id);
        let item = self
            .deps
            .store
            .get(Table::Leads, &key)
            .await?
            .ok_or_else(NoteId::not_found)?;
        Ok((from_body(&item.body)?, item.version, key))
    }

    /// Edits a note's content.
    pub async fn update_note(&self, t: &Tenant, note_id: &NoteId, content: &str) -> Result<Note> {
        let content = validate_content(content)?;
        for attempt in 0..10 {
            let (mut note, version, key) = self.load_note(t, note_id).await?;
            let changed = note.content != content;
            note.content.clone_from(&content);
            if changed {
                note.updated_at = self.deps.clock.now_secs();
            }
            let mut item = Item::new(key, to_body(&note)?);
            item.version = version + 1;
            let mut tx = Txn::new();
            tx.push(
                Check::NoteVersion,
                WriteOp::Put {
                    table: Table::Leads,
                    item,
                    cond: Cond::Version(version),
                },
            );
            if changed {
                tx.push(
                    Check::EventAbsent,
                    self.note_event(t, EventKind::NoteUpdated, &note).await?,
                );
            }
            match tx.commit(&*self.deps.store).await {
                Ok(()) => return Ok(note),
                Err(TxnError::Failed(_)) => backoff(attempt).await,
                Err(TxnError::Store(e)) => return Err(e),
            }
        }
        Err(Error::conflict(
            "the note is being changed concurrently; please retry",
        ))
    }

    /// Deletes a note.
    pub async fn delete_note(&self, t: &Tenant, note_id: &NoteId) -> Result<()> {
        let (note, version, key) = self.load_note(t, note_id).await?;
        let mut tx = Txn::new();
        tx.push(
            Check::NoteVersion,
            WriteOp::Delete {
                table: Table::Leads,
                key,
                cond: Cond::Version(version),
            },
        )
        .push(
            Check::None,
            WriteOp::Delete {
                table: Table::Leads,
                key: schema::note_pointer_key(&t.account_id, note_id),
                cond: Cond::Always,
            },
        )
        .push(
            Check::EventAbsent,
            self.note_event(t, EventKind::NoteDeleted, &note).await?,
        );
        match tx.commit(&*self.deps.store).await {
            Ok(()) => Ok(()),
            // Changed or deleted since it was read: a concurrent delete won.
            Err(TxnError::Failed(_)) => Err(NoteId::not_found()),
            Err(TxnError::Store(e)) => Err(e),
        }
    }

    /// The stored items of a lead's notes, newest first when `descending`.
    async fn note_items(&self, t: &Tenant, lead_id: &str, descending: bool) -> Result<Vec<Item>> {
        self.deps
            .query_all(QueryReq {
                table: Table::Leads,
                index: None,
                pk: schema::tenant_pk(&t.account_id),
                sk: SkCond::BeginsWith(schema::note_prefix(lead_id)),
                start_after: None,
                descending,
                limit: 500,
            })
            .await
    }

    /// Removes a deleted lead's notes (note items and their pointers). Notes of a deleted lead
    /// are unreachable (every note route checks its lead), so removing them after the lead's
    /// own delete cannot expose anything.
    pub(crate) async fn delete_all_of(&self, t: &Tenant, lead_id: &str) -> Result<()> {
        let items = self.note_items(t, lead_id, false).await?;
        let mut keys = Vec::with_capacity(items.len() * 2);
        for item in &items {
            let note: Note = from_body(&item.body)?;
            keys.push(item.key.clone());
            keys.push(schema::note_pointer_key(&t.account_id, &note.id));
        }
        for chunk in keys.chunks(90) {
            let ops = chunk
                .iter()
                .map(|k| WriteOp::Delete {
                    table: Table::Leads,
                    key: k.clone(),
                    cond: Cond::Always,
                })
                .collect();
            self.deps.store.transact(ops).await?;
        }
        Ok(())
    }
}
