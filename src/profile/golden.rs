//! The golden record: per field, the value from the most trusted record.
//!
//! Survivorship per field: the source's place in the workspace's
//! `source_priority` (listed sources first, in order), then the kind of
//! record (a customer record, an order, a review, a chat message), then the
//! newest version. Each field names the record it came from.

use serde::{Deserialize, Serialize};
use shophub_connectors::model::{Address, Direction, KeyKind, RecordBody, SourceRecord};

use super::settings::ProfileSettings;
use crate::store::StoredRecord;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Golden {
    pub name: Option<Field<String>>,
    pub email: Option<Field<String>>,
    pub phone: Option<Field<String>>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<Field<String>>,
    pub country: Option<Field<String>>,
    pub region: Option<Field<String>>,
    pub city: Option<Field<String>>,
    pub address: Option<Field<GoldenAddress>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field<T> {
    pub value: T,
    pub source: FieldSource,
}

/// The record a golden value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSource {
    pub connection_id: String,
    pub kind: String,
    pub external_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// Lower wins: (source priority, kind of record, newest first, record id).
type Rank = (usize, u8, std::cmp::Reverse<i64>, String);

fn rank(stored: &StoredRecord, record: &SourceRecord, settings: &ProfileSettings) -> Rank {
    let priority = &settings.source_priority;
    let listed = priority
        .iter()
        .position(|s| *s == stored.connection_id)
        .or_else(|| priority.iter().position(|s| *s == stored.platform))
        .unwrap_or(priority.len());
    let kind = match record.body {
        RecordBody::Customer(_) => 0,
        RecordBody::Order(_) => 1,
        RecordBody::Review(_) => 2,
        RecordBody::Message(_) => 3,
    };
    (
        listed,
        kind,
        std::cmp::Reverse(stored.version),
        format!("{}/{}", stored.connection_id, stored.external_id),
    )
}

/// What one record says about each field.
#[derive(Default)]
struct Claims {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    birth_date: Option<String>,
    address: Option<GoldenAddress>,
}

fn claims(record: &SourceRecord) -> Claims {
    let key = |kind: KeyKind| {
        record
            .keys
            .iter()
            .find(|k| k.kind == kind)
            .map(|k| k.value.clone())
    };
    let mut claims = Claims {
        email: key(KeyKind::Email),
        phone: key(KeyKind::Phone),
        ..Claims::default()
    };
    let (names, address) = match &record.body {
        RecordBody::Customer(c) => {
            claims.birth_date = c.birth_date.map(|d| d.format("%Y-%m-%d").to_string());
            (
                [c.first_name.as_deref(), c.last_name.as_deref()],
                c.address.as_ref(),
            )
        }
        RecordBody::Order(o) => (
            [o.buyer_first_name.as_deref(), o.buyer_last_name.as_deref()],
            o.shipping_address.as_ref(),
        ),
        RecordBody::Review(v) => ([v.reviewer_name.as_deref(), None], None),
        // An outbound message's sender is the shop.
        RecordBody::Message(m) if m.direction == Direction::Inbound => {
            ([m.sender_name.as_deref(), None], None)
        }
        RecordBody::Message(_) => ([None, None], None),
    };
    let name = names
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    claims.name = (!name.is_empty()).then_some(name);
    claims.address = address.and_then(golden_address);
    claims
}

fn golden_address(address: &Address) -> Option<GoldenAddress> {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let golden = GoldenAddress {
        line1: clean(&address.line1),
        line2: clean(&address.line2),
        city: clean(&address.city),
        region: clean(&address.region),
        postcode: clean(&address.postcode),
        country: clean(&address.country),
    };
    (golden != GoldenAddress::default()).then_some(golden)
}

/// Picks each field's value from the best-ranked record that has one.
pub fn compute(records: &[(&StoredRecord, SourceRecord)], settings: &ProfileSettings) -> Golden {
    let mut ranked: Vec<(Rank, &StoredRecord, Claims)> = records
        .iter()
        .map(|(stored, record)| (rank(stored, record, settings), *stored, claims(record)))
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    let source = |stored: &StoredRecord| FieldSource {
        connection_id: stored.connection_id.clone(),
        kind: stored.kind.clone(),
        external_id: stored.external_id.clone(),
    };
    let pick = |get: &dyn Fn(&Claims) -> Option<String>| {
        ranked.iter().find_map(|(_, stored, claims)| {
            get(claims).map(|value| Field {
                value,
                source: source(stored),
            })
        })
    };
    let part = |get: fn(&GoldenAddress) -> &Option<String>| {
        pick(&|c: &Claims| c.address.as_ref().and_then(|a| get(a).clone()))
    };
    Golden {
        name: pick(&|c| c.name.clone()),
        email: pick(&|c| c.email.clone()),
        phone: pick(&|c| c.phone.clone()),
        birth_date: pick(&|c| c.birth_date.clone()),
        country: part(|a| &a.country),
        region: part(|a| &a.region),
        city: part(|a| &a.city),
        address: ranked.iter().find_map(|(_, stored, claims)| {
            claims.address.clone().map(|value| Field {
                value,
                source: source(stored),
            })
        }),
    }
}
