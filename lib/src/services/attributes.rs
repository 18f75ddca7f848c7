//! Typed custom attributes of a lead. An attribute change is a lead update (same transaction,
//! same event, score recomputed), so this service writes through [`IngestService`].

use crate::domain::account::Tenant;
use crate::domain::ids::{AttributeId, LeadId};
use crate::domain::lead::{Attribute, AttributeSpec, LeadChanges};
use crate::error::{Error, Result};
use crate::services::Deps;
use crate::services::ingest::IngestService;
use crate::services::leads::load_lead;

/// The attributes use cases.
#[derive(Clone)]
pub struct AttributeService {
    deps: Deps,
    ingest: IngestService,
}

impl AttributeService {
    /// Builds the service.
    pub fn new(deps: Deps, ingest: IngestService) -> Self {
        AttributeService { deps, ingest }
    }

    /// A lead's attributes.
    pub async fn list_attributes(&self, t: &Tenant, lead_id: &LeadId) -> Result<Vec<Attribute>> {
        Ok(load_lead(&self.deps, &t.account_id, lead_id)
            .await?
            .0
            .attributes)
    }

    /// Creates an attribute, or replaces the value of the one with that name. Returns the
    /// attribute and whether it was created.
    pub async fn upsert_attribute(
        &self,
        t: &Tenant,
        lead_id: &LeadId,
        spec: AttributeSpec,
    ) -> Result<(Attribute, bool)> {
        let existed = load_lead(&self.deps, &t.account_id, lead_id)
            .await?
            .0
            .attributes
            .iter()
            .any(|a| a.name == spec.name);
        let name = spec.name.clone();
        let changes = LeadChanges {
            attributes: vec![spec],
            ..Default::default()
        };
        let lead = self.ingest.update(t, lead_id, &changes).await?;
        let attr = lead
            .attributes
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| Error::internal("attribute vanished after upsert"))?;
        Ok((attr, !existed))
    }

    async fn find(&self, t: &Tenant, lead_id: &LeadId, attr_id: &AttributeId) -> Result<Attribute> {
        load_lead(&self.deps, &t.account_id, lead_id)
            .await?
            .0
            .attributes
            .into_iter()
            .find(|a| a.id == attr_id.as_str())
            .ok_or_else(AttributeId::not_found)
    }

    /// Replaces an attribute's value, keeping its name and type.
    pub async fn set_attribute_value(
        &self,
        t: &Tenant,
        lead_id: &LeadId,
        attr_id: &AttributeId,
        value: serde_json::Value,
    ) -> Result<Attribute> {
        let attr = self.find(t, lead_id, attr_id).await?;
        let spec = AttributeSpec::new(&attr.name, attr.ty.as_str(), value)?;
        Ok(self.upsert_attribute(t, lead_id, spec).await?.0)
    }

    /// Deletes an attribute.
    pub async fn delete_attribute(
        &self,
        t: &Tenant,
        lead_id: &LeadId,
        attr_id: &AttributeId,
    ) -> Result<()> {
        let attr = self.find(t, lead_id, attr_id).await?;
        let changes = LeadChanges {
            remove_attributes: vec![attr.name],
            ..Default::default()
        };
        self.ingest.update(t, lead_id, &changes).await?;
        Ok(())
    }
}
