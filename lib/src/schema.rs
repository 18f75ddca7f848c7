//! The table and key design, written once above the store port.
//!
//! Both backends run exactly these keys, so a contract test that passes on one exercises the same
//! logic on the other. The DynamoDB table definitions (`template.yaml`, `klozeo dynamodb
//! create-tables`, the LocalStack init hook) are all derived from [`TABLES`]; a test checks that
//! `template.yaml` agrees.
//!
//! Every partition key starts with the tenant's account id, except the few global lookups that
//! must work before the tenant is known (API key hash, account e-mail).

use crate::domain::lead::{Lead, TextField};
use crate::domain::query::{SORT_TEXT_BYTES, SortField, SortValue};
use crate::ports::{IndexKey, Key, Table};

/// Name of a secondary index and the attribute names that hold its keys in DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// Index name.
    pub name: &'static str,
}

impl IndexDef {
    /// Attribute holding the index partition key.
    pub fn pk_attr(&self) -> String {
        format!("{}_pk", self.name)
    }
    /// Attribute holding the index sort key.
    pub fn sk_attr(&self) -> String {
        format!("{}_sk", self.name)
    }
}

/// One table: its logical identity, physical name suffix, indexes and whether items expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// Logical table.
    pub table: Table,
    /// Physical name = deployment prefix + suffix (e.g. `klozeo-prod-` + `leads`).
    pub suffix: &'static str,
    /// Global secondary indexes (projection ALL, string keys).
    pub indexes: &'static [IndexDef],
    /// Whether the table has a TTL attribute ([`TTL_ATTR`]).
    pub ttl: bool,
    /// Logical id of the table resource in `template.yaml`.
    pub resource: &'static str,
}

/// Leads with one status, newest last (sort key = lead id, which is time-ordered).
pub const IDX_STATUS: IndexDef = IndexDef { name: "by_status" };
/// Leads with one source (case-folded), by id.
pub const IDX_SOURCE: IndexDef = IndexDef { name: "by_source" };
/// Leads in one city (case-folded), by id.
pub const IDX_CITY: IndexDef = IndexDef { name: "by_city" };
/// All leads of a tenant by score.
pub const IDX_SCORE: IndexDef = IndexDef { name: "by_score" };
/// Leads with a rating, by rating.
pub const IDX_RATING: IndexDef = IndexDef { name: "by_rating" };
/// All leads of a tenant by last interaction.
pub const IDX_LAST_INTERACTION: IndexDef = IndexDef {
    name: "by_last_interaction",
};

/// All leads of a tenant by last update.
pub const IDX_SORT_UPDATED: IndexDef = IndexDef {
    name: "sort_updated",
};
/// All leads of a tenant by review count (missing last).
pub const IDX_SORT_REVIEW_COUNT: IndexDef = IndexDef {
    name: "sort_review_count",
};
/// All leads of a tenant by case-folded name.
pub const IDX_SORT_NAME: IndexDef = IndexDef { name: "sort_name" };
/// All leads of a tenant by case-folded source.
pub const IDX_SORT_SOURCE: IndexDef = IndexDef {
    name: "sort_source",
};
/// All leads of a tenant by case-folded city (missing last).
pub const IDX_SORT_CITY: IndexDef = IndexDef { name: "sort_city" };
/// All leads of a tenant by case-folded state (missing last).
pub const IDX_SORT_STATE: IndexDef = IndexDef { name: "sort_state" };
/// All leads of a tenant by case-folded country (missing last).
pub const IDX_SORT_COUNTRY: IndexDef = IndexDef {
    name: "sort_country",
};
/// All leads of a tenant by case-folded category (missing last).
pub const IDX_SORT_CATEGORY: IndexDef = IndexDef {
    name: "sort_category",
};
/// All leads of a tenant by case-folded e-mail (missing last).
pub const IDX_SORT_EMAIL: IndexDef = IndexDef { name: "sort_email" };
/// All leads of a tenant by case-folded phone (missing last).
pub const IDX_SORT_PHONE: IndexDef = IndexDef { name: "sort_phone" };
/// All leads of a tenant by case-folded website (missing last).
pub const IDX_SORT_WEBSITE: IndexDef = IndexDef {
    name: "sort_website",
};

/// The index whose key order is the order of `field`, for every sort field that has one.
///
/// Their sort keys are [`sort_index_sk`]: the ordered encoding of the field's sort value, then
/// `#` and the lead id; a lead without the value is under `m#<id>`, after every value.
pub fn sort_index(field: &SortField) -> Option<IndexDef> {
    Some(match field {
        SortField::Score => IDX_SCORE,
        SortField::Rating => IDX_RATING,
        SortField::LastInteractionAt => IDX_LAST_INTERACTION,
        SortField::UpdatedAt => IDX_SORT_UPDATED,
        SortField::ReviewCount => IDX_SORT_REVIEW_COUNT,
        SortField::Name => IDX_SORT_NAME,
        SortField::Source => IDX_SORT_SOURCE,
        SortField::Text(TextField::City) => IDX_SORT_CITY,
        SortField::Text(TextField::State) => IDX_SORT_STATE,
        SortField::Text(TextField::Country) => IDX_SORT_COUNTRY,
        SortField::Text(TextField::Category) => IDX_SORT_CATEGORY,
        SortField::Text(TextField::Email) => IDX_SORT_EMAIL,
        SortField::Text(TextField::Phone) => IDX_SORT_PHONE,
        SortField::Text(TextField::Website) => IDX_SORT_WEBSITE,
        _ => return None,
    })
}

/// The sort fields served by [`sort_index`] (created_at is the base table's own order).
pub const INDEXED_SORTS: [SortField; 14] = [
    SortField::Score,
    SortField::Rating,
    SortField::LastInteractionAt,
    SortField::UpdatedAt,
    SortField::ReviewCount,
    SortField::Name,
    SortField::Source,
    SortField::Text(TextField::City),
    SortField::Text(TextField::State),
    SortField::Text(TextField::Country),
    SortField::Text(TextField::Category),
    SortField::Text(TextField::Email),
    SortField::Text(TextField::Phone),
    SortField::Text(TextField::Website),
];

/// Sort-key prefix of the leads without a value in a sort index. `m` sorts after every
/// encoded value (lowercase hex digits), so an ascending read yields the values, then the
/// missing ones, both in the domain order; a descending read takes the two ranges in turn.
pub const MISSING_PREFIX: &str = "m#";

/// The upper bound (exclusive) of the present values in a sort index.
pub const PRESENT_END: &str = "g";

/// The ordered encoding of a sort value: numbers as [`sortable_f64`], texts (already case-folded
/// and bounded by [`SortValue::text`]) as lowercase hex of their UTF-8 bytes. Hex keeps byte
/// order and never contains `#`, which sorts below every hex digit, so a text sorts before
/// every longer text it is a prefix of, exactly as in the domain order.
pub fn sort_value_key(v: &SortValue) -> String {
    match v {
        SortValue::Num(x) => sortable_f64(*x),
        SortValue::Text(s) => hex::encode(s.as_bytes()),
        SortValue::Missing => "m".into(),
    }
}

/// The sort key of a lead in a sort index: `<value key>#<id>`.
pub fn sort_index_sk(v: &SortValue, lead_id: &str) -> String {
    format!("{}#{lead_id}", sort_value_key(v))
}

/// Every table of the product.
pub const TABLES: [TableDef; 3] = [
    TableDef {
        table: Table::Leads,
        suffix: "leads",
        indexes: &[
            IDX_STATUS,
            IDX_SOURCE,
            IDX_CITY,
            IDX_SCORE,
            IDX_RATING,
            IDX_LAST_INTERACTION,
            IDX_SORT_UPDATED,
            IDX_SORT_REVIEW_COUNT,
            IDX_SORT_NAME,
            IDX_SORT_SOURCE,
            IDX_SORT_CITY,
            IDX_SORT_STATE,
            IDX_SORT_COUNTRY,
            IDX_SORT_CATEGORY,
            IDX_SORT_EMAIL,
            IDX_SORT_PHONE,
            IDX_SORT_WEBSITE,
        ],
        ttl: false,
        resource: "LeadsTable",
    },
    TableDef {
        table: Table::Accounts,
        suffix: "accounts",
        indexes: &[],
        ttl: true,
        resource: "AccountsTable",
    },
    TableDef {
        table: Table::Outbox,
        suffix: "outbox",
        indexes: &[],
        ttl: true,
        resource: "OutboxTable",
    },
];

/// Primary key attribute names in DynamoDB.
pub const PK_ATTR: &str = "pk";
/// Sort key attribute name in DynamoDB.
pub const SK_ATTR: &str = "sk";
/// TTL attribute name in DynamoDB.
pub const TTL_ATTR: &str = "expires_at";

/// The definition of a logical table.
pub fn table_def(t: Table) -> &'static TableDef {
    TABLES
        .iter()
        .find(|d| d.table == t)
        .expect("every Table variant is declared in TABLES")
}

/// The physical table name for a deployment prefix.
pub fn physical_name(prefix: &str, t: Table) -> String {
    format!("{prefix}{}", table_def(t).suffix)
}

/// Sort-key prefix of lead items within a tenant partition.
pub const LEAD_PREFIX: &str = "L#";

/// The tenant partition of the leads table.
pub fn tenant_pk(account_id: &str) -> String {
    format!("A#{account_id}")
}

/// Key of a lead.
pub fn lead_key(account_id: &str, lead_id: &str) -> Key {
    Key::new(tenant_pk(account_id), format!("{LEAD_PREFIX}{lead_id}"))
}

/// The lead id inside a lead item's sort key.
pub fn lead_id_of(sk: &str) -> Option<&str> {
    sk.strip_prefix(LEAD_PREFIX)
}

/// Key of the uniqueness marker of an e-mail (normalised) within a tenant; its body names the
/// lead that owns the e-mail. Written in the same transaction as the lead, so two concurrent
/// pushes of one e-mail cannot both create a lead.
pub fn email_marker_key(account_id: &str, email_norm: &str) -> Key {
    Key::new(tenant_pk(account_id), format!("E#{}", bounded(email_norm)))
}

/// Key of the uniqueness marker of a `source_id` within a tenant.
pub fn source_marker_key(account_id: &str, source_id: &str) -> Key {
    Key::new(tenant_pk(account_id), format!("S#{}", bounded(source_id)))
}

/// Sort-key prefix of the phone items of one normalised phone (tier-3 candidates).
pub fn phone_prefix(phone_norm: &str) -> String {
    format!("P#{}#", bounded(phone_norm))
}

/// Key of a lead's phone item.
pub fn phone_item_key(account_id: &str, phone_norm: &str, lead_id: &str) -> Key {
    Key::new(
        tenant_pk(account_id),
        format!("{}{lead_id}", phone_prefix(phone_norm)),
    )
}

/// Sort-key prefix of the name + city items of one (folded) name and city.
pub fn name_city_prefix(name_fold: &str, city_fold: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(name_fold.as_bytes());
    h.update([0]);
    h.update(city_fold.as_bytes());
    format!("NC#{}#", hex::encode(&h.finalize()[..16]))
}

/// Key of a lead's name + city item.
pub fn name_city_key(account_id: &str, name_fold: &str, city_fold: &str, lead_id: &str) -> Key {
    Key::new(
        tenant_pk(account_id),
        format!("{}{lead_id}", name_city_prefix(name_fold, city_fold)),
    )
}

/// Key of a note, under its lead so a lead's notes list in one query (newest last).
pub fn note_key(account_id: &str, lead_id: &str, note_id: &str) -> Key {
    Key::new(
        tenant_pk(account_id),
        format!("{}{note_id}", note_prefix(lead_id)),
    )
}

/// Sort-key prefix of one lead's notes.
pub fn note_prefix(lead_id: &str) -> String {
    format!("N#{lead_id}#")
}

/// Key of the item that resolves a note id to its lead (`PUT /notes/{id}` has no lead id).
pub fn note_pointer_key(account_id: &str, note_id: &str) -> Key {
    Key::new(tenant_pk(account_id), format!("NP#{note_id}"))
}

/// Key of a scoring rule.
pub fn rule_key(account_id: &str, rule_id: &str) -> Key {
    Key::new(tenant_pk(account_id), format!("{RULE_PREFIX}{rule_id}"))
}

/// Sort-key prefix of an account's scoring rules.
pub const RULE_PREFIX: &str = "R#";

/// Keeps key components well under DynamoDB's 1 KB sort-key limit: long values are hashed.
fn bounded(v: &str) -> String {
    use sha2::Digest;
    if v.len() <= 200 {
        v.to_string()
    } else {
        format!("h:{}", hex::encode(sha2::Sha256::digest(v.as_bytes())))
    }
}

/// Key of an account item.
pub fn account_key(account_id: &str) -> Key {
    Key::new(format!("ACCT#{account_id}"), "#")
}

/// Key of the global e-mail uniqueness marker of an account.
pub fn account_email_key(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "#")
}

/// Key of the item that resolves an API key hash to its account.
pub fn api_key_key(hash: &str) -> Key {
    Key::new(format!("KEY#{hash}"), "#")
}

/// Key of the per-account listing entry of an API key.
pub fn api_key_listing_key(account_id: &str, key_id: &str) -> Key {
    Key::new(format!("ACCT#{account_id}"), format!("KEY#{key_id}"))
}

/// Sort-key prefix of the listing entries in an account partition.
pub const API_KEY_LISTING_PREFIX: &str = "KEY#";

/// Key of the account's lead counter (the plan limit is a condition on it).
pub fn lead_counter_key(account_id: &str) -> Key {
    Key::new(format!("ACCT#{account_id}"), "COUNT#leads")
}

/// Key of an outbox event.
pub fn outbox_key(account_id: &str, event_id: &str) -> Key {
    Key::new(format!("O#{account_id}"), format!("E#{event_id}"))
}

/// Sort-key prefix of the events waiting for delivery in an account's outbox partition.
pub const OUTBOX_EVENT_PREFIX: &str = "E#";
/// Sort-key prefix of batch member records in an account's outbox partition.
pub const OUTBOX_MEMBER_PREFIX: &str = "G#";

/// Key of a member record of batch `group`: all members of a group share a key prefix, so
/// folding them reads exactly that group.
pub fn outbox_member_key(account_id: &str, group: &str, event_id: &str) -> Key {
    Key::new(
        format!("O#{account_id}"),
        format!("{}{}", outbox_group_prefix(group), event_id),
    )
}

/// The sort-key prefix of every member record of `group`.
pub fn outbox_group_prefix(group: &str) -> String {
    format!("{OUTBOX_MEMBER_PREFIX}{group}#")
}

/// The account id of an outbox partition key.
pub fn account_of_outbox_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("O#")
}

/// Sort-key prefix of webhooks in a tenant partition.
pub const WEBHOOK_PREFIX: &str = "W#";

/// Key of a webhook subscription.
pub fn webhook_key(account_id: &str, webhook_id: &str) -> Key {
    Key::new(
        tenant_pk(account_id),
        format!("{WEBHOOK_PREFIX}{webhook_id}"),
    )
}

/// The range of an account's webhooks, at most `limit` of them.
pub fn webhooks_query(account_id: &str, limit: u32) -> crate::ports::QueryReq {
    crate::ports::QueryReq {
        table: Table::Leads,
        index: None,
        pk: tenant_pk(account_id),
        sk: crate::ports::SkCond::BeginsWith(WEBHOOK_PREFIX.into()),
        start_after: None,
        descending: false,
        limit,
    }
}

/// Key of the item that says an account has (or once had) a webhook. Written with the first
/// webhook and never removed, so "no webhook" can guard a write: a change recorded without its
/// outbox event checks that this item is absent (`services::events::HookPresence`).
pub fn webhooks_marker_key(account_id: &str) -> Key {
    Key::new(tenant_pk(account_id), "HOOKS")
}

/// Partition of one webhook's delivery log (accounts table, expiring).
pub fn delivery_pk(account_id: &str, webhook_id: &str) -> String {
    format!("D#{account_id}#{webhook_id}")
}

/// Key of one delivery (its id is time-ordered, so the log reads newest first descending).
pub fn delivery_key(account_id: &str, webhook_id: &str, delivery_id: &str) -> Key {
    Key::new(delivery_pk(account_id, webhook_id), delivery_id.to_string())
}

/// How long a delivery stays in the log.
pub const DELIVERY_RETENTION_SECS: i64 = 30 * 24 * 3600;

/// Key of a job record.
pub fn job_key(account_id: &str, job_id: &str) -> Key {
    Key::new(format!("JOB#{account_id}"), job_id.to_string())
}

/// How long a finished job's record is kept.
pub const JOB_RETENTION_SECS: i64 = 7 * 24 * 3600;

/// Partition of the embedded jobs queue (accounts table): sort key `<due ms>#<message id>`.
pub const QUEUE_PK: &str = "QUEUE";

/// How long a delivered-or-not event stays in the outbox before DynamoDB TTL removes it.
pub const OUTBOX_RETENTION_SECS: i64 = 7 * 24 * 3600;

/// Encodes a float so that byte-wise string order equals numeric order (16 hex digits).
pub fn sortable_f64(x: f64) -> String {
    let bits = x.to_bits();
    let ordered = if x.is_sign_negative() {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("{ordered:016x}")
}

/// Encodes a non-negative integer timestamp for byte-wise ordering.
pub fn sortable_i64(x: i64) -> String {
    sortable_f64(x as f64)
}

/// Longest text an equality index key (`by_source`, `by_city`) holds as it is. DynamoDB refuses
/// an item whose index partition key passes 2,048 bytes, and a lead's city or source may be
/// 2,048 characters, so a longer text is keyed by its first bytes and its SHA-256: no text of
/// [`EQ_KEY_TEXT_BYTES`] or fewer can share that key.
pub const EQ_KEY_TEXT_BYTES: usize = 1024;

/// The partition key under which an equality index (`by_source`, `by_city`) files the leads
/// whose case-folded text is `folded`; the write and the query use this one function.
pub fn eq_index_pk(tenant: &str, folded: &str) -> String {
    if folded.len() <= EQ_KEY_TEXT_BYTES {
        return format!("{tenant}#{folded}");
    }
    use sha2::Digest;
    let cut = eq_key_cut(folded);
    let digest = hex::encode(sha2::Sha256::digest(folded.as_bytes()));
    format!("{tenant}#{}#{digest}", &folded[..cut])
}

/// Where [`eq_index_pk`] cuts a long text: at a character boundary 100 bytes short of the
/// bound, leaving room for the digest.
fn eq_key_cut(folded: &str) -> usize {
    let mut cut = EQ_KEY_TEXT_BYTES - 100;
    while !folded.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// The byte length of [`eq_index_pk`] for `folded`, without building it.
fn eq_index_pk_len(tenant: usize, folded: &str) -> usize {
    if folded.len() <= EQ_KEY_TEXT_BYTES {
        tenant + 1 + folded.len()
    } else {
        tenant + 1 + eq_key_cut(folded) + 1 + 64
    }
}

/// The secondary-index entries of a lead: one per declared index it belongs to.
pub fn lead_index_keys(account_id: &str, lead: &Lead) -> Vec<IndexKey> {
    let t = tenant_pk(account_id);
    let id = &lead.id;
    let mut keys = vec![
        IndexKey {
            index: IDX_STATUS.name,
            pk: format!("{t}#{}", lead.status.as_str()),
            sk: id.clone(),
        },
        IndexKey {
            index: IDX_SOURCE.name,
            pk: eq_index_pk(&t, &lead.source.to_lowercase()),
            sk: id.clone(),
        },
    ];
    if let Some(city) = &lead.city {
        keys.push(IndexKey {
            index: IDX_CITY.name,
            pk: eq_index_pk(&t, &city.to_lowercase()),
            sk: id.clone(),
        });
    }
    // Every lead is in every sort index (a missing value under `m#`), so a sort lists them all.
    for field in &INDEXED_SORTS {
        let def = sort_index(field).expect("every INDEXED_SORTS field has an index");
        keys.push(IndexKey {
            index: def.name,
            pk: t.clone(),
            sk: sort_index_sk(&field.value(lead), id),
        });
    }
    keys
}

/// About the bytes [`lead_index_keys`] add to a stored lead, as `ports::item_size` counts them,
/// computed from lengths without building the keys: the explain plan's read estimate runs it
/// for every item read. Exact for ASCII text; other text is counted at its stored length.
pub fn index_entries_size(account_id: &str, lead: &Lead) -> usize {
    let t = tenant_pk(account_id).len();
    let id = lead.id.len();
    let entry = |name: &str, pk: usize, sk: usize| 2 * (name.len() + 3) + pk + sk;
    let text = |v: Option<&str>| v.map_or(1, |s| 2 * s.len().min(SORT_TEXT_BYTES));
    let num = |present: bool| if present { 16 } else { 1 };
    let mut n = entry(IDX_STATUS.name, t + 1 + lead.status.as_str().len(), id)
        + entry(IDX_SOURCE.name, eq_index_pk_len(t, &lead.source), id);
    if let Some(c) = &lead.city {
        n += entry(IDX_CITY.name, eq_index_pk_len(t, c), id);
    }
    for field in &INDEXED_SORTS {
        let def = sort_index(field).expect("every INDEXED_SORTS field has an index");
        let value = match field {
            SortField::Rating => num(lead.rating.is_some()),
            SortField::ReviewCount => num(lead.review_count.is_some()),
            SortField::Name => text(Some(&lead.name)),
            SortField::Source => text(Some(&lead.source)),
            SortField::Text(f) => text(lead.text(*f)),
            _ => 16,
        };
        n += entry(def.name, t, value + 1 + id);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_f64_orders_like_numbers() {
        let xs = [-1e9, -2.5, -0.0001, 0.0, 1e-7, 0.5, 4.0, 4.5, 100.0, 1e12];
        for w in xs.windows(2) {
            assert!(
                sortable_f64(w[0]) < sortable_f64(w[1]),
                "{} < {}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn every_index_key_belongs_to_a_declared_index() {
        let lead: Lead = serde_json::from_value(serde_json::json!({
            "id": "cl_1", "name": "n", "source": "s", "city": "Paris", "rating": 4.5,
            "description": null, "address": null, "state": null, "country": null,
            "postal_code": null, "latitude": null, "longitude": null, "phone": null,
            "email": null, "website": null, "review_count": null, "category": null,
            "source_id": null, "logo_url": null,
            "created_at": 1, "updated_at": 1, "last_interaction_at": 1
        }))
        .unwrap();
        let keys = lead_index_keys("acct", &lead);
        let declared = table_def(Table::Leads).indexes;
        assert_eq!(keys.len(), declared.len());
        for k in keys {
            assert!(declared.iter().any(|d| d.name == k.index));
        }
    }

    #[test]
    fn index_entries_size_counts_what_the_index_keys_add() {
        let mut lead: Lead = serde_json::from_value(serde_json::json!({
            "id": "cl_0190-abc", "name": "Bistro du Coin", "source": "Google Maps",
            "city": "Paris", "rating": 4.5, "description": null, "address": null,
            "state": null, "country": "FR", "postal_code": null, "latitude": null,
            "longitude": null, "phone": "+33 1 23", "email": "a@b.fr", "website": null,
            "review_count": null, "category": "Food", "source_id": null, "logo_url": null,
            "created_at": 1, "updated_at": 2, "last_interaction_at": 3
        }))
        .unwrap();
        for _ in 0..2 {
            let exact: usize = lead_index_keys("acct-1", &lead)
                .iter()
                .map(|k| 2 * (k.index.len() + 3) + k.pk.len() + k.sk.len())
                .sum();
            assert_eq!(index_entries_size("acct-1", &lead), exact);
            lead.city = None;
            lead.rating = None;
            lead.review_count = Some(7);
        }
    }
}
