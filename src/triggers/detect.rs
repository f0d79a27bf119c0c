//! Finding care triggers: state changes seen when a profile is recomputed,
//! and time-based ones the sweep looks for (pending payments, birthdays,
//! membership anniversaries). Found triggers are stored `pending`, once per
//! dedupe key; `release` decides when, and whether, they fire.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{json, Value};
use shophub_connectors::model::{OrderStatus, RecordBody, SourceRecord};

use super::local::{is_anniversary, local_date, parse_offset};
use super::TriggerConfig;
use crate::store::{NewTrigger, StoreResult, WriteTx};

const HOUR_MS: i64 = 3_600_000;
/// A first order older than this when it arrives is history (a backfill),
/// not news: no trigger.
const FIRST_ORDER_NEWS_HOURS: i64 = 72;
/// Orders read per query while sweeping.
const ORDER_PAGE: i64 = 500;

async fn note(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    kind: &str,
    key: &str,
    details: Value,
    now: i64,
) -> StoreResult<bool> {
    tx.insert_trigger(&NewTrigger {
        workspace_id,
        profile_id,
        kind,
        dedupe_key: &format!("{kind}:{key}"),
        details: &details.to_string(),
        due_at: now,
        now,
    })
    .await
}

/// State-based triggers and yearly dates, from the view before and after a
/// recompute (`previous` is `{}` for a new profile).
pub async fn observe(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    id: &str,
    previous: &Value,
    current: &Value,
    customers: &[SourceRecord],
    now: i64,
) -> StoreResult<()> {
    let birthday = current["golden"]["birth_date"]["value"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .or_else(|| {
            customers.iter().find_map(|r| match &r.body {
                RecordBody::Customer(c) => c.birth_date,
                _ => None,
            })
        });
    let first_seen = customers
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Customer(c) => c.created_at,
            _ => None,
        })
        .chain(time(&current["traits"]["first_order_at"]))
        .min();
    let birthday = birthday.map(|d| d.format("%Y-%m-%d").to_string());
    tx.set_profile_date(workspace_id, id, "birthday", birthday.as_deref())
        .await?;
    let member_since = first_seen.map(|t| t.date_naive().format("%Y-%m-%d").to_string());
    tx.set_profile_date(workspace_id, id, "anniversary", member_since.as_deref())
        .await?;

    let (before, after) = (&previous["traits"], &current["traits"]);
    let orders = |traits: &Value| traits["order_count"].as_i64().unwrap_or(0);
    if orders(before) == 0 && orders(after) > 0 {
        let first = time(&after["first_order_at"]);
        if first.map_or(true, |at| {
            at.timestamp_millis() >= now - FIRST_ORDER_NEWS_HOURS * HOUR_MS
        }) {
            let details = json!({ "first_order_at": after["first_order_at"] });
            note(tx, workspace_id, id, "first_order", id, details, now).await?;
        }
    }
    if let (Some(from), Some(to)) = (
        before["lifecycle_stage"].as_str(),
        after["lifecycle_stage"].as_str(),
    ) {
        let became_inactive = from != to && matches!(to, "at_risk" | "churned");
        let returned = matches!(from, "at_risk" | "churned") && matches!(to, "active" | "new");
        if became_inactive || returned {
            let details = json!({ "from": from, "to": to, "returned": returned });
            note(
                tx,
                workspace_id,
                id,
                "lifecycle_changed",
                &format!("{id}:{to}:{now}"),
                details,
                now,
            )
            .await?;
        }
    }
    let open = |traits: &Value| traits["complaints"]["open"].as_i64().unwrap_or(0);
    if open(after) > open(before) {
        let details =
            json!({ "open": open(after), "by_severity": after["complaints"]["by_severity"] });
        note(
            tx,
            workspace_id,
            id,
            "complaint_opened",
            &format!("{id}:{now}"),
            details,
            now,
        )
        .await?;
    }
    Ok(())
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Orders placed in the window `[now - delay - lookback, now - delay)` that
/// are still pending payment; one trigger per order.
pub async fn pending_payments(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    config: &TriggerConfig,
    now: i64,
) -> StoreResult<usize> {
    let until = now - config.payment_pending_after_minutes * 60_000;
    let mut from = until - config.payment_pending_lookback_hours * HOUR_MS;
    let mut found = 0;
    loop {
        let page = tx
            .orders_between(workspace_id, from, until, ORDER_PAGE)
            .await?;
        for row in &page {
            let Ok(record) = serde_json::from_str::<SourceRecord>(&row.data) else {
                continue;
            };
            let RecordBody::Order(order) = &record.body else {
                continue;
            };
            if order.status != OrderStatus::PendingPayment {
                continue;
            }
            let details = json!({
                "order": order.number, "total": order.total.to_string(), "currency": order.currency,
                "connection_id": row.connection_id, "external_id": row.external_id,
                "ordered_at": crate::profile::rfc3339(record.occurred_at),
            });
            let key = format!("{}:{}", row.connection_id, row.external_id);
            if note(
                tx,
                workspace_id,
                &row.profile_id,
                "payment_pending",
                &key,
                details,
                now,
            )
            .await?
            {
                found += 1;
            }
        }
        let next = page
            .last()
            .map(|row| serde_json::from_str::<SourceRecord>(&row.data));
        match next {
            Some(Ok(last))
                if page.len() as i64 == ORDER_PAGE
                    && last.occurred_at.timestamp_millis() > from =>
            {
                from = last.occurred_at.timestamp_millis();
            }
            _ => return Ok(found),
        }
    }
}

/// Birthdays and membership anniversaries that are today in each person's
/// own time zone; once per person, kind and year.
pub async fn yearly_dates(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    config: &TriggerConfig,
    now: i64,
) -> StoreResult<usize> {
    let default =
        parse_offset(&config.timezone).unwrap_or(chrono::FixedOffset::east_opt(0).expect("UTC"));
    // Every time zone's today is within a day of UTC's.
    let utc_today = local_date(now, chrono::FixedOffset::east_opt(0).expect("UTC"));
    let mut days: Vec<String> = [utc_today.pred_opt(), Some(utc_today), utc_today.succ_opt()]
        .into_iter()
        .flatten()
        .map(|d| d.format("%m-%d").to_string())
        .collect();
    if days.iter().any(|d| d == "02-28") {
        days.push("02-29".into());
    }
    let mut found = 0;
    for row in tx.dates_on(workspace_id, &days).await? {
        let Ok(date) = NaiveDate::parse_from_str(&row.date, "%Y-%m-%d") else {
            continue;
        };
        let offset = match tx.profile_timezone(&row.profile_id).await? {
            Some(own) => parse_offset(&own).unwrap_or(default),
            None => default,
        };
        let today = local_date(now, offset);
        let years = today.year() - date.year();
        let due = is_anniversary(date, today)
            && match row.kind.as_str() {
                "anniversary" => years >= 1,
                _ => years >= 0,
            };
        if due {
            let details = json!({ "date": row.date, "years": years });
            let key = format!("{}:{}", row.profile_id, today.year());
            if note(
                tx,
                workspace_id,
                &row.profile_id,
                &row.kind,
                &key,
                details,
                now,
            )
            .await?
            {
                found += 1;
            }
        }
    }
    Ok(found)
}
