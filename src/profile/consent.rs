//! Consent per identifier and channel.
//!
//! A choice belongs to an identifier (`email:a@b.com`, `phone:+86...`), not
//! to a profile: merges and splits move identifiers between profiles and the
//! choices go with them. Per (identifier, channel) the most recent explicit
//! choice wins, whether it came from a platform's customer record (its
//! `accepts_email_marketing`, timed by the record's version) or from the API.

use serde::{Deserialize, Serialize};
use shophub_connectors::identity::{normalise_email, normalise_phone};
use shophub_connectors::model::{KeyKind, RecordBody};

use super::decode_record;
use crate::clock::to_rfc3339;
use crate::store::{ConsentRow, NewConsent, StoreResult, StoredRecord, WriteTx};

/// The channels a person can consent to being contacted on.
pub const CHANNELS: [&str; 3] = ["email_marketing", "sms", "chat"];

/// One choice as the profile view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub identifier: String,
    pub channel: String,
    pub granted: bool,
    pub source: String,
    pub at: String,
}

impl Consent {
    fn of(row: ConsentRow) -> Consent {
        Consent {
            identifier: row.identifier,
            channel: row.channel,
            granted: row.granted != 0,
            source: row.source,
            at: to_rfc3339(row.chosen_at),
        }
    }
}

/// `email:<normalised>` or `phone:<E.164>` from what a person typed; `None`
/// if it is neither.
pub fn parse_identifier(raw: &str) -> Option<String> {
    let (kind, value) = raw.split_once(':')?;
    match kind.trim() {
        "email" => normalise_email(value).map(|v| format!("email:{v}")),
        "phone" => normalise_phone(value, None).map(|v| format!("phone:{v}")),
        _ => None,
    }
}

/// The identifiers a profile's emails and phones stand for.
pub fn identifiers(emails: &[String], phones: &[String]) -> Vec<String> {
    emails
        .iter()
        .map(|e| format!("email:{e}"))
        .chain(phones.iter().map(|p| format!("phone:{p}")))
        .collect()
}

/// Feeds the email marketing choices customer records carry. A record
/// replayed or older than a later choice changes nothing.
pub async fn record_choices(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    records: &[StoredRecord],
    now: i64,
) -> StoreResult<()> {
    for stored in records.iter().filter(|r| r.kind == "customer") {
        let Ok(record) = decode_record(stored) else {
            continue;
        };
        let RecordBody::Customer(customer) = &record.body else {
            continue;
        };
        let Some(granted) = customer.accepts_email_marketing else {
            continue;
        };
        let source = format!("{}/{}", stored.platform, stored.connection_id);
        for key in record.keys.iter().filter(|k| k.kind == KeyKind::Email) {
            let identifier = format!("email:{}", key.value);
            tx.record_consent(&NewConsent {
                workspace_id,
                identifier: &identifier,
                channel: "email_marketing",
                granted,
                source: &source,
                chosen_at: stored.version,
                now,
            })
            .await?;
        }
    }
    Ok(())
}

/// The stored choices for a profile's identifiers, in identifier and channel order.
pub async fn of_identifiers(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    identifiers: &[String],
) -> StoreResult<Vec<Consent>> {
    Ok(tx
        .consents(workspace_id, identifiers)
        .await?
        .into_iter()
        .map(Consent::of)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_normalised_or_refused() {
        assert_eq!(
            parse_identifier("email: Ada@Example.COM ").as_deref(),
            Some("email:ada@example.com")
        );
        assert_eq!(
            parse_identifier("phone:+86 138 1234 5678").as_deref(),
            Some("phone:+8613812345678")
        );
        assert_eq!(
            parse_identifier("phone:13812345678"),
            None,
            "needs +country"
        );
        assert_eq!(parse_identifier("shoe:42"), None);
        assert_eq!(parse_identifier("ada@example.com"), None);
    }
}
