//! Releasing pending triggers: consent, quiet hours, frequency cap.

use serde_json::{json, Value};
use shophub_connectors::model::{OrderStatus, RecordBody, SourceRecord};

use super::local::{parse_clock, parse_offset, quiet_until};
use super::{SweepReport, TriggerConfig};
use crate::store::{NewChange, RecordRef, StoreResult, TriggerRow, WriteTx};

/// Triggers released per workspace per sweep; the rest wait for the next.
const RELEASE_PAGE: i64 = 500;

pub async fn release(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    config: &TriggerConfig,
    now: i64,
    report: &mut SweepReport,
) -> StoreResult<()> {
    let utc = chrono::FixedOffset::east_opt(0).expect("UTC");
    let default_offset = parse_offset(&config.timezone).unwrap_or(utc);
    let quiet = parse_clock(&config.quiet_start).zip(parse_clock(&config.quiet_end));
    for trigger in tx.due_triggers(workspace_id, now, RELEASE_PAGE).await? {
        let Some(profile) = tx.live_profile(&trigger.profile_id).await? else {
            suppress(tx, &trigger, "profile_gone", now, report).await?;
            continue;
        };
        let details: Value = serde_json::from_str(&trigger.details).unwrap_or(Value::Null);
        if trigger.kind == "payment_pending" && !still_pending(tx, &details).await? {
            suppress(tx, &trigger, "order_paid", now, report).await?;
            continue;
        }
        let channel = config.channel(&trigger.kind);
        let view: Value =
            serde_json::from_str(&tx.profile_view(&profile.id).await?).unwrap_or(Value::Null);
        if !consented(&view, channel) {
            suppress(tx, &trigger, "no_consent", now, report).await?;
            continue;
        }
        let offset = match tx.profile_timezone(&profile.id).await? {
            Some(own) => parse_offset(&own).unwrap_or(default_offset),
            None => default_offset,
        };
        if let Some(until) = quiet.and_then(|(start, end)| quiet_until(now, offset, start, end)) {
            tx.defer_trigger(trigger.id, until).await?;
            report.deferred += 1;
            continue;
        }
        let window_start = now - config.cap_window_hours * 3_600_000;
        if tx.fired_triggers_since(&profile.id, window_start).await? >= config.max_per_person {
            suppress(tx, &trigger, "frequency_cap", now, report).await?;
            continue;
        }
        let mut data = json!({ "trigger": trigger.kind, "channel": channel });
        if let (Some(data), Some(details)) = (data.as_object_mut(), details.as_object()) {
            data.extend(details.clone());
        }
        tx.append_change(&NewChange {
            workspace_id,
            kind: &format!("trigger.{}", trigger.kind),
            profile_id: &profile.id,
            data: &data.to_string(),
            now,
        })
        .await?;
        tx.finish_trigger(trigger.id, "fired", None, now).await?;
        report.fired += 1;
    }
    Ok(())
}

async fn suppress(
    tx: &mut dyn WriteTx,
    trigger: &TriggerRow,
    reason: &str,
    now: i64,
    report: &mut SweepReport,
) -> StoreResult<()> {
    tx.finish_trigger(trigger.id, "suppressed", Some(reason), now)
        .await?;
    report.suppressed += 1;
    Ok(())
}

/// A granted entry for the channel in the view's consent (the most recent
/// choice per identifier and channel, as the profile computes it).
pub fn consented(view: &Value, channel: &str) -> bool {
    view["consent"].as_array().is_some_and(|entries| {
        entries
            .iter()
            .any(|e| e["channel"].as_str() == Some(channel) && e["granted"] == Value::Bool(true))
    })
}

/// The order a payment reminder is about is still there and still unpaid.
async fn still_pending(tx: &mut dyn WriteTx, details: &Value) -> StoreResult<bool> {
    let (Some(connection_id), Some(external_id)) = (
        details["connection_id"].as_str(),
        details["external_id"].as_str(),
    ) else {
        return Ok(false);
    };
    let record = RecordRef {
        connection_id,
        kind: "order",
        external_id,
    };
    let Some(data) = tx.record_data(record).await? else {
        return Ok(false);
    };
    Ok(matches!(
        serde_json::from_str::<SourceRecord>(&data).map(|r| r.body),
        Ok(RecordBody::Order(order)) if order.status == OrderStatus::PendingPayment
    ))
}
