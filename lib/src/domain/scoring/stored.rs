//! Rescoring straight from stored documents: [`StoredLeads`] reads, from each stored lead, only
//! what a [`RuleSet`] needs (its id, its stored score, and the fields and attributes the rules
//! read), computes the rule set's leaves on it while its bytes are still in the cache, and keeps
//! just those numbers, column by column.
//!
//! Parsing a whole [`Lead`] costs a dozen allocations and a 504-byte struct per lead, and scoring
//! it afterwards chases pointers through those allocations (the lead's text, tags, attributes and
//! their names): most of the time of rescoring leads held as `Lead`s goes to that memory traffic,
//! not to the rules. Here the unread fields are skipped without being built, the read ones are
//! written into one reused lead (so its strings keep their buffers from one document to the
//! next), and what is kept of a lead is a few numbers: scoring 100,000 of them reads a few
//! megabytes of dense columns.
//!
//! The scores are those of [`super::score`] on the parsed lead, bit for bit: the leaves are
//! computed by the same code, on a lead whose read fields hold the stored values. A property
//! test checks this on random rule sets and leads.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

use super::{Field, RuleSet, clamp_total};
use crate::domain::lead::{AttrType, Attribute, Lead, Status};

/// Leads read from their stored documents for rescoring with one [`RuleSet`]: each one's id, its
/// stored score and the values the rule set reads, column by column.
///
/// Make one per rescoring pass with [`StoredLeads::new`], [`push`](StoredLeads::push) each
/// stored document read, then compare [`scores`](StoredLeads::scores) with the
/// [`stored_score`](StoredLeads::stored_score)s; [`clear`](StoredLeads::clear) it between pages
/// to keep its memory.
pub struct StoredLeads<'s> {
    set: &'s RuleSet,
    /// The lead being read. Only the fields the rule set reads are ever written; a missing or
    /// null text field is kept as an empty string (which scores exactly as `None`), so its
    /// buffer is reused by the next document.
    scratch: Lead,
    /// The program's columns for `scratch` alone (one lane).
    one: Vec<f64>,
    /// The columns the rule set's loads write, in the order of `values`.
    loaded: Vec<usize>,
    /// For each loaded column, its value for each lead read.
    values: Vec<Vec<f64>>,
    /// The ids of the leads read, one after another; `id_ends[i]` is where lead `i`'s ends.
    ids: String,
    id_ends: Vec<usize>,
    /// Each lead's score as stored.
    stored: Vec<f64>,
}

impl<'s> StoredLeads<'s> {
    /// An empty table for rescoring with `set`.
    pub fn new(set: &'s RuleSet) -> StoredLeads<'s> {
        let loaded = set.loaded_columns();
        StoredLeads {
            set,
            scratch: Lead::default(),
            one: vec![0.0; set.columns],
            values: vec![Vec::new(); loaded.len()],
            loaded,
            ids: String::new(),
            id_ends: Vec::new(),
            stored: Vec::new(),
        }
    }

    /// Reads one stored lead document (the JSON of a [`Lead`]). A document that is not a lead
    /// (not JSON, no id, a read field of the wrong type) is an error and adds nothing.
    pub fn push(&mut self, doc: &[u8]) -> Result<(), serde_json::Error> {
        let ids_before = self.ids.len();
        reset(&mut self.scratch);
        let mut de = serde_json::Deserializer::from_slice(doc);
        let read = LeadDoc {
            set: self.set,
            lead: &mut self.scratch,
            id: &mut self.ids,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(e) = read {
            self.ids.truncate(ids_before);
            return Err(e);
        }
        self.set.load_one(&self.scratch, &mut self.one);
        for (column, &c) in self.values.iter_mut().zip(&self.loaded) {
            column.push(self.one.get(c).copied().unwrap_or(0.0));
        }
        self.id_ends.push(self.ids.len());
        self.stored.push(self.scratch.score);
        Ok(())
    }

    /// How many leads were read.
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// Whether no lead was read.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// The id of lead `i` (in the order read); empty when out of range.
    pub fn id(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(j) => self.id_ends.get(j).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.id_ends.get(i).copied().unwrap_or(start);
        self.ids.get(start..end).unwrap_or_default()
    }

    /// The score stored with lead `i`; 0 when out of range.
    pub fn stored_score(&self, i: usize) -> f64 {
        self.stored.get(i).copied().unwrap_or(0.0)
    }

    /// Forgets the leads read, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.values.iter_mut().for_each(Vec::clear);
        self.ids.clear();
        self.id_ends.clear();
        self.stored.clear();
    }

    /// Each lead's score under the rule set, in the order read: what [`super::score`] gives the
    /// parsed lead. Allocates its result and one scratch area per call, never per lead.
    pub fn scores(&self) -> Vec<f64> {
        let lanes = self.set.lanes;
        let total = self.len();
        let mut out = Vec::with_capacity(total);
        let mut cols = vec![0.0f64; self.set.columns * lanes];
        let mut start = 0;
        while start < total {
            let n = lanes.min(total - start);
            for (values, &c) in self.values.iter().zip(&self.loaded) {
                let column = cols.get_mut(c * lanes..c * lanes + n);
                if let (Some(dst), Some(src)) = (column, values.get(start..start + n)) {
                    dst.copy_from_slice(src);
                }
            }
            self.set.compute(&mut cols, n);
            let totals = cols.get(..n).unwrap_or_default();
            out.extend(totals.iter().map(|t| clamp_total(*t)));
            start += n;
        }
        out
    }
}

/// Makes `l` what a document with none of its fields reads as, keeping the string buffers.
/// Tags and attributes are cut to what each document holds when it is read (see `LeadDoc`).
fn reset(l: &mut Lead) {
    l.name.clear();
    l.source.clear();
    for t in crate::domain::lead::TextField::ALL {
        if let Some(s) = l.text_mut(t) {
            s.clear();
        }
    }
    l.latitude = None;
    l.longitude = None;
    l.rating = None;
    l.review_count = None;
    l.status = Status::default();
    l.score = 0.0;
    l.created_at = 0;
    l.updated_at = 0;
    l.last_interaction_at = 0;
}

/// A key of a stored lead document.
enum Key {
    Id,
    Score,
    Attributes,
    Field(Field),
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a lead field name")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "id" => Key::Id,
                    "score" => Key::Score,
                    "attributes" => Key::Attributes,
                    _ => Field::parse(k).map_or(Key::Other, Key::Field),
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A whole stored lead: its id is appended to `id`, the fields the rule set reads go into
/// `lead`, and the rest is skipped.
struct LeadDoc<'a> {
    set: &'a RuleSet,
    lead: &'a mut Lead,
    id: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for LeadDoc<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LeadDoc<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored lead")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let needs = &self.set.needs;
        let lead = self.lead;
        let (mut id, mut tags, mut attrs) = (false, false, false);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => {
                    map.next_value_seed(Append(self.id))?;
                    id = true;
                }
                Key::Score => lead.score = map.next_value()?,
                Key::Attributes if !needs.attrs.is_empty() => {
                    map.next_value_seed(Attrs {
                        names: &needs.attrs,
                        attrs: &mut lead.attributes,
                    })?;
                    attrs = true;
                }
                Key::Field(f) if needs.fields.contains(&f) => {
                    tags |= f == Field::Tags;
                    read_field(&mut map, f, lead)?;
                }
                Key::Attributes | Key::Field(_) | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !id {
            return Err(de::Error::missing_field("id"));
        }
        if !tags {
            lead.tags.clear();
        }
        if !attrs {
            lead.attributes.clear();
        }
        Ok(())
    }
}

/// Reads field `f`'s value into `lead`, as deserializing a [`Lead`] would.
fn read_field<'de, A: MapAccess<'de>>(
    map: &mut A,
    f: Field,
    lead: &mut Lead,
) -> Result<(), A::Error> {
    match f {
        Field::Rating => lead.rating = map.next_value()?,
        Field::ReviewCount => lead.review_count = map.next_value()?,
        Field::Score => lead.score = map.next_value()?,
        Field::Latitude => lead.latitude = map.next_value()?,
        Field::Longitude => lead.longitude = map.next_value()?,
        Field::CreatedAt => lead.created_at = map.next_value()?,
        Field::UpdatedAt => lead.updated_at = map.next_value()?,
        Field::LastInteractionAt => lead.last_interaction_at = map.next_value()?,
        Field::Name => map.next_value_seed(Overwrite(&mut lead.name))?,
        Field::Source => map.next_value_seed(Overwrite(&mut lead.source))?,
        Field::Status => lead.status = map.next_value()?,
        Field::Tags => map.next_value_seed(Tags(&mut lead.tags))?,
        Field::Text(t) => map.next_value_seed(Text(lead.text_mut(t)))?,
    }
    Ok(())
}

/// A string appended to a buffer.
struct Append<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Append<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

/// A string written over a buffer, keeping its capacity.
struct Overwrite<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Overwrite<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.clear();
        Append(self.0).deserialize(d)
    }
}

/// An optional text field: a string is written over the buffer, `null` empties it.
struct Text<'a>(&'a mut Option<String>);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Text<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        if let Some(s) = self.0 {
            s.clear();
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Overwrite(self.0.get_or_insert_default()).deserialize(d)
    }
}

/// The tags, each written over the buffer of the tag at its place in the last document.
struct Tags<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Tags<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Tags<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of tags")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let tags = self.0;
        let mut n = 0;
        loop {
            if n == tags.len() {
                tags.push(String::new());
            }
            let Some(slot) = tags.get_mut(n) else { break };
            if seq.next_element_seed(Overwrite(slot))?.is_none() {
                break;
            }
            n += 1;
        }
        tags.truncate(n);
        Ok(())
    }
}

/// The attributes the rule set reads (`names`), in document order (so [`super::attr_value`]
/// finds the same first one of a name as on the parsed lead); each is written over an
/// attribute of the last document, keeping its buffers.
struct Attrs<'a> {
    names: &'a [Box<str>],
    attrs: &'a mut Vec<Attribute>,
}

impl<'de> DeserializeSeed<'de> for Attrs<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Attrs<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of attributes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let attrs = self.attrs;
        let mut kept = 0;
        loop {
            if kept == attrs.len() {
                attrs.push(Attribute {
                    id: String::new(),
                    name: String::new(),
                    ty: AttrType::Text,
                    value: serde_json::Value::Null,
                });
            }
            let Some(slot) = attrs.get_mut(kept) else {
                break;
            };
            let read = seq.next_element_seed(Attr {
                names: self.names,
                slot,
            })?;
            match read {
                None => break,
                Some(true) => kept += 1,
                Some(false) => {}
            }
        }
        attrs.truncate(kept);
        Ok(())
    }
}

/// One attribute, read into `slot`; yields whether its name is one of `names`. Its value is
/// read only when it is (or when it comes before the name, which stored documents never do).
struct Attr<'a> {
    names: &'a [Box<str>],
    slot: &'a mut Attribute,
}

impl<'de> DeserializeSeed<'de> for Attr<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Attr<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let wanted = |name: &str| self.names.iter().any(|n| **n == *name);
        let (mut named, mut valued) = (false, false);
        while let Some(key) = map.next_key::<AttrKey>()? {
            match key {
                AttrKey::Name => {
                    map.next_value_seed(Overwrite(&mut self.slot.name))?;
                    named = true;
                }
                AttrKey::Value if !named || wanted(&self.slot.name) => {
                    map.next_value_seed(Value(&mut self.slot.value))?;
                    valued = true;
                }
                AttrKey::Value | AttrKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !named {
            return Err(de::Error::missing_field("name"));
        }
        let keep = wanted(&self.slot.name);
        if keep && !valued {
            return Err(de::Error::missing_field("value"));
        }
        Ok(keep)
    }
}

/// A key of a stored attribute.
enum AttrKey {
    Name,
    Value,
    Other,
}

impl<'de> Deserialize<'de> for AttrKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AttrKey, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = AttrKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute field name")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<AttrKey, E> {
                Ok(match k {
                    "name" => AttrKey::Name,
                    "value" => AttrKey::Value,
                    _ => AttrKey::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Any JSON value, as `serde_json::Value` reads it, except that a string is written over the
/// string already there (the same attribute's value in the last document, usually).
struct Value<'a>(&'a mut serde_json::Value);

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        *self.0 = serde_json::Value::Bool(v);
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        *self.0 = serde_json::Value::Number(v.into());
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        *self.0 = serde_json::Value::Number(v.into());
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        *self.0 = serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into);
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.0 {
            serde_json::Value::String(s) => {
                s.clear();
                s.push_str(v);
            }
            other => *other = serde_json::Value::String(v.to_owned()),
        }
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        *self.0 = serde_json::Value::Null;
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        *self.0 = serde_json::Value::Array(items);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut m = serde_json::Map::new();
        while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
            m.insert(k, v);
        }
        *self.0 = serde_json::Value::Object(m);
        Ok(())
    }
}
