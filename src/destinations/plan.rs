//! From feed events to the changes one destination must receive.
//!
//! Contacts are built from the profile's current view, not the view in the
//! event: a destination that catches up after an outage sends each profile
//! once, as it is now. A contact whose hash equals what the destination last
//! received is skipped.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use shophub_connectors::destinations::{Change, Contact};

use super::mapping;
use crate::store::{ChangeRow, ContactState, DestinationRow, Store, StoreResult};

/// One change ready to push, with what to remember once it is delivered.
#[derive(Debug, Clone)]
pub struct Planned {
    pub seq: i64,
    pub profile_id: String,
    pub message_id: String,
    pub change: Change,
    pub contacts: Vec<ContactState>,
}

/// A feed row and the changes it produced (possibly none).
pub struct PlannedRow {
    pub seq: i64,
    pub changes: Vec<Planned>,
}

pub struct Planner<'a> {
    store: &'a dyn Store,
    destination: &'a DestinationRow,
    mapping: Option<Map<String, Value>>,
    events: bool,
    /// What the destination holds per profile, as this batch leaves it:
    /// `Some((hash, email))` delivered, `None` not there.
    delivered: HashMap<String, Option<(String, Option<String>)>>,
}

impl<'a> Planner<'a> {
    pub fn new(store: &'a dyn Store, destination: &'a DestinationRow) -> Planner<'a> {
        let mapping = destination
            .mapping
            .as_deref()
            .and_then(|m| serde_json::from_str::<Map<String, Value>>(m).ok())
            // Mailchimp refuses merge fields its audience does not define, and
            // the default trait properties are none of them: without a mapping
            // it gets the standard FNAME, LNAME and PHONE only.
            .or_else(|| (destination.kind == "mailchimp").then(Map::new));
        Planner {
            store,
            destination,
            mapping,
            events: super::wants_events(&destination.kind),
            delivered: HashMap::new(),
        }
    }

    pub async fn plan(&mut self, rows: &[ChangeRow]) -> StoreResult<Vec<PlannedRow>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let data: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
            let mut changes = Vec::new();
            self.plan_row(row, &data, &mut changes).await?;
            let changes = changes
                .into_iter()
                .enumerate()
                .map(|(n, (profile_id, change, contacts))| {
                    let message_id = format!("msg_{}_{}_{}", self.destination.id, row.seq, n);
                    let change = self.wrap(row, &message_id, change);
                    Planned {
                        seq: row.seq,
                        profile_id,
                        message_id,
                        change,
                        contacts,
                    }
                })
                .collect();
            out.push(PlannedRow {
                seq: row.seq,
                changes,
            });
        }
        Ok(out)
    }

    /// Hub kinds get every change as an event named after its cause.
    fn wrap(&self, row: &ChangeRow, message_id: &str, change: Change) -> Change {
        match change {
            Change::Event {
                kind,
                timestamp,
                payload,
                ..
            } => Change::Event {
                id: message_id.to_string(),
                kind,
                timestamp,
                payload,
            },
            change if !self.events => change,
            change => Change::Event {
                id: message_id.to_string(),
                kind: row.kind.clone(),
                timestamp: row.created_at / 1000,
                payload: serde_json::to_value(&change).expect("a change serialises"),
            },
        }
    }

    async fn plan_row(
        &mut self,
        row: &ChangeRow,
        data: &Value,
        out: &mut Vec<(String, Change, Vec<ContactState>)>,
    ) -> StoreResult<()> {
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
        match row.kind.as_str() {
            "profile.created" | "profile.updated" | "segment.entered" => {
                self.upsert(&row.profile_id, out).await?;
            }
            "segment.exited" => {
                let scoped_here = self.destination.segment_id.is_some()
                    && text("segment_id") == self.destination.segment_id;
                match scoped_here {
                    true => self.delete(&row.profile_id, out).await?,
                    false => self.upsert(&row.profile_id, out).await?,
                }
            }
            "profile.erased" => self.delete(&row.profile_id, out).await?,
            "profile.split" => {
                let mut parts = vec![text("profile").unwrap_or_else(|| row.profile_id.clone())];
                if let Some(Value::Array(into)) = data.get("into") {
                    parts.extend(into.iter().filter_map(Value::as_str).map(str::to_string));
                }
                for part in parts {
                    self.upsert(&part, out).await?;
                }
            }
            "profile.merged" => {
                let survivor = text("survivor").unwrap_or_else(|| row.profile_id.clone());
                let absorbed: Vec<String> = match data.get("absorbed") {
                    Some(Value::Array(ids)) => ids
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    _ => Vec::new(),
                };
                for gone in absorbed {
                    self.merge(&survivor, &gone, out).await?;
                }
                self.upsert(&survivor, out).await?;
            }
            kind if kind.starts_with("trigger.") && self.events => {
                self.trigger(row, data, out).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Care triggers go to segment-scoped destinations only for members.
    async fn trigger(
        &mut self,
        row: &ChangeRow,
        data: &Value,
        out: &mut Vec<(String, Change, Vec<ContactState>)>,
    ) -> StoreResult<()> {
        if self.destination.segment_id.is_some() && self.known(&row.profile_id).await?.is_none() {
            return Ok(());
        }
        let payload = json!({"op": "event", "profile_id": row.profile_id, "data": data});
        let event = Change::Event {
            id: String::new(),
            kind: row.kind.clone(),
            timestamp: row.created_at / 1000,
            payload,
        };
        out.push((row.profile_id.clone(), event, Vec::new()));
        Ok(())
    }

    async fn known(&mut self, profile_id: &str) -> StoreResult<Option<(String, Option<String>)>> {
        if let Some(state) = self.delivered.get(profile_id) {
            return Ok(state.clone());
        }
        let rows = self
            .store
            .delivered_contacts(&self.destination.id, &[profile_id.to_string()])
            .await?;
        let state = rows.into_iter().next().map(|r| (r.hash, r.email));
        self.delivered.insert(profile_id.to_string(), state.clone());
        Ok(state)
    }

    /// The contact as the destination should hold it now, or `None` when the
    /// profile is gone, merged away, or outside the destination's segment.
    async fn current(&mut self, profile_id: &str) -> StoreResult<Option<Contact>> {
        let Some(row) = self
            .store
            .get_profile(&self.destination.workspace_id, profile_id)
            .await?
        else {
            return Ok(None);
        };
        if row.id != profile_id {
            return Ok(None);
        }
        let view: Value = serde_json::from_str(&row.view).unwrap_or(Value::Null);
        if let Some(segment) = &self.destination.segment_id {
            if !mapping::in_segment(&view, segment) {
                return Ok(None);
            }
        }
        Ok(Some(mapping::contact(
            profile_id,
            &view,
            self.mapping.as_ref(),
        )))
    }

    async fn upsert(
        &mut self,
        profile_id: &str,
        out: &mut Vec<(String, Change, Vec<ContactState>)>,
    ) -> StoreResult<()> {
        let Some(contact) = self.current(profile_id).await? else {
            // Outside the segment now (or gone): remove what the destination has.
            let live = self
                .store
                .get_profile(&self.destination.workspace_id, profile_id)
                .await?;
            if live.is_some_and(|p| p.id == profile_id) {
                self.delete(profile_id, out).await?;
            }
            return Ok(());
        };
        let hash = mapping::hash(&contact);
        if self
            .known(profile_id)
            .await?
            .is_some_and(|(h, _)| h == hash)
        {
            return Ok(());
        }
        let state = ContactState {
            profile_id: profile_id.to_string(),
            hash: Some(hash.clone()),
            email: contact.email.clone(),
        };
        self.delivered
            .insert(profile_id.to_string(), Some((hash, contact.email.clone())));
        out.push((
            profile_id.to_string(),
            Change::Upsert { contact },
            vec![state],
        ));
        Ok(())
    }

    async fn delete(
        &mut self,
        profile_id: &str,
        out: &mut Vec<(String, Change, Vec<ContactState>)>,
    ) -> StoreResult<()> {
        let Some((_, email)) = self.known(profile_id).await? else {
            return Ok(());
        };
        self.delivered.insert(profile_id.to_string(), None);
        let state = ContactState {
            profile_id: profile_id.to_string(),
            hash: None,
            email: None,
        };
        let change = Change::Delete {
            profile_id: profile_id.to_string(),
            email,
        };
        out.push((profile_id.to_string(), change, vec![state]));
        Ok(())
    }

    /// One contact remains: the survivor, told which contact it absorbed.
    /// Only an absorbed contact the destination holds needs merging.
    async fn merge(
        &mut self,
        survivor: &str,
        absorbed: &str,
        out: &mut Vec<(String, Change, Vec<ContactState>)>,
    ) -> StoreResult<()> {
        let Some((_, absorbed_email)) = self.known(absorbed).await? else {
            return Ok(());
        };
        let Some(into) = self.current(survivor).await? else {
            return self.delete(absorbed, out).await;
        };
        // A tool keyed by email, when the survivor now has the absorbed
        // contact's email, keeps that contact: the survivor's old one is
        // folded in. Event receivers are told what happened instead.
        let survivor_email = self.known(survivor).await?.and_then(|(_, email)| email);
        let absorbed_email = match (&absorbed_email, &survivor_email) {
            (Some(gone), Some(old))
                if !self.events && into.email.as_ref() == Some(gone) && old != gone =>
            {
                Some(old.clone())
            }
            _ => absorbed_email,
        };
        let hash = mapping::hash(&into);
        self.delivered.insert(absorbed.to_string(), None);
        self.delivered.insert(
            survivor.to_string(),
            Some((hash.clone(), into.email.clone())),
        );
        let contacts = vec![
            ContactState {
                profile_id: absorbed.to_string(),
                hash: None,
                email: None,
            },
            ContactState {
                profile_id: survivor.to_string(),
                hash: Some(hash),
                email: into.email.clone(),
            },
        ];
        let change = Change::Merge {
            into,
            absorbed_profile_id: absorbed.to_string(),
            absorbed_email,
        };
        out.push((survivor.to_string(), change, contacts));
        Ok(())
    }
}
