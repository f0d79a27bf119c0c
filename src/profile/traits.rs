//! Computed traits: what a profile's orders, reviews and messages add up to.
//!
//! Money stays exact (`rust_decimal`) and is rounded to two places (half
//! away from zero) only where a division or discounting makes more digits.
//! Traits that depend on the time (`days_since_last_order`, `rfm.recency`,
//! `lifecycle_stage`, `clv.projected`) are as of the last refresh.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use shophub_connectors::model::{OrderStatus, RecordBody};

use super::settings::{ClvSettings, TraitSettings};
use super::stats::{days_between, score_higher, score_lower, TraitStats};
use super::{rfc3339, Decoded, Traits};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rfm {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clv {
    pub historical: String,
    pub projected: String,
    pub currency: String,
}

fn money(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Customer lifetime value in the main currency.
///
/// - `historical` = what the buyer spent (paid, shipped or completed orders).
/// - `projected` = margin × annual spend × Σ_{t=1..horizon} 1 / (1 + rate)^t,
///   where annual spend = historical × 365 / max(days since the first order, 365):
///   the buyer's historical yearly rate (a buyer of less than a year counts
///   as one year, so a first order is not extrapolated into a huge rate),
///   kept up for `horizon_years` and discounted at `annual_discount_rate`.
///
/// Both rounded to two places.
pub fn clv(historical: Decimal, tenure_days: i64, settings: &ClvSettings) -> (Decimal, Decimal) {
    let annual = historical * Decimal::from(365) / Decimal::from(tenure_days.max(365));
    let one_plus_rate = Decimal::ONE + settings.annual_discount_rate;
    let mut factor = Decimal::ONE;
    let mut discounted = Decimal::ZERO;
    for _ in 0..settings.horizon_years {
        factor /= one_plus_rate;
        discounted += factor;
    }
    (
        money(historical),
        money(settings.margin * annual * discounted),
    )
}

/// `prospect` without orders; else `churned` / `at_risk` after their day
/// thresholds since the last order, `new` while the first order is recent,
/// otherwise `active`.
pub fn lifecycle_stage(
    since_first: Option<i64>,
    since_last: Option<i64>,
    settings: &TraitSettings,
) -> &'static str {
    let l = &settings.lifecycle;
    match (since_first, since_last) {
        (Some(first), Some(last)) => {
            if last > l.churned_days {
                "churned"
            } else if last > l.at_risk_days {
                "at_risk"
            } else if first <= l.new_days {
                "new"
            } else {
                "active"
            }
        }
        _ => "prospect",
    }
}

pub fn compute(
    records: &[Decoded<'_>],
    settings: &TraitSettings,
    stats: &TraitStats,
    now: i64,
) -> Traits {
    let mut traits = Traits::default();
    let mut spent: BTreeMap<String, (Decimal, i64)> = BTreeMap::new();
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    let mut scores: Vec<f64> = Vec::new();
    let mut channels: BTreeSet<String> = BTreeSet::new();
    let mut last_contact: Option<DateTime<Utc>> = None;
    for (stored, record) in records {
        channels.insert(stored.platform.clone());
        match &record.body {
            RecordBody::Order(order) => {
                if order.status == OrderStatus::Cancelled {
                    continue;
                }
                traits.order_count += 1;
                if order.status.counts_as_spent() {
                    let entry = spent.entry(order.currency.clone()).or_default();
                    entry.0 += order.total;
                    entry.1 += 1;
                }
                first = Some(first.map_or(record.occurred_at, |t| t.min(record.occurred_at)));
                last = Some(last.map_or(record.occurred_at, |t| t.max(record.occurred_at)));
            }
            RecordBody::Review(review) => scores.push(review.score),
            RecordBody::Message(message) => {
                channels.insert(message.channel.clone());
                last_contact =
                    Some(last_contact.map_or(record.occurred_at, |t| t.max(record.occurred_at)));
            }
            RecordBody::Customer(_) => {}
        }
    }
    traits.total_spent = spent
        .iter()
        .map(|(currency, (sum, _))| (currency.clone(), sum.to_string()))
        .collect();
    // Average over the orders that count as spent, per currency.
    traits.average_order_value = spent
        .iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(currency, (sum, n))| {
            (
                currency.clone(),
                money(*sum / Decimal::from(*n)).to_string(),
            )
        })
        .collect();
    traits.first_order_at = first.map(rfc3339);
    traits.last_order_at = last.map(rfc3339);
    let since_first = first.map(|t| days_between(t.timestamp_millis(), now));
    let since_last = last.map(|t| days_between(t.timestamp_millis(), now));
    traits.days_since_last_order = since_last;
    traits.lifecycle_stage = lifecycle_stage(since_first, since_last, settings).to_string();

    let main_currency = settings
        .main_currency
        .clone()
        .or_else(|| stats.main_currency.clone())
        .or_else(|| {
            // A workspace's first buyer: their own most used currency.
            spent
                .iter()
                .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(a.0)))
                .map(|(c, _)| c.clone())
        });
    if let (Some(currency), Some(since_first), Some(since_last)) =
        (main_currency, since_first, since_last)
    {
        let historical = spent.get(&currency).map(|s| s.0).unwrap_or_default();
        traits.rfm = Some(Rfm {
            recency: score_lower(&since_last, &stats.recency_days),
            frequency: score_higher(&traits.order_count, &stats.frequency),
            monetary: score_higher(&historical, &stats.monetary),
        });
        let (historical, projected) = clv(historical, since_first, &settings.clv);
        traits.value_tier = settings
            .value_tiers
            .iter()
            .rev()
            .find(|tier| tier.min_spent <= historical)
            .map(|tier| tier.name.clone());
        traits.clv = Some(Clv {
            historical: historical.to_string(),
            projected: projected.to_string(),
            currency,
        });
    }

    traits.review_count = scores.len() as i64;
    traits.review_average = (!scores.is_empty()).then(|| {
        let five_point = scores.iter().sum::<f64>() / scores.len() as f64 * 5.0;
        (five_point * 100.0).round() / 100.0
    });
    traits.channels = channels.into_iter().collect();
    traits.last_contact_at = last_contact.map(rfc3339);
    traits
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn projected_clv_discounts_each_year() {
        // 300.00 in 200 days counts as one year: 300/year; 30% margin: 90/year.
        // 90/1.1 + 90/1.1^2 + 90/1.1^3 = 81.8182 + 74.3802 + 67.6183 = 223.8167
        let (historical, projected) = clv(
            Decimal::from_str("300.00").unwrap(),
            200,
            &ClvSettings::default(),
        );
        assert_eq!(historical.to_string(), "300.00");
        assert_eq!(projected.to_string(), "223.82");
        // 1460 days (four years) of 1000.00: 250/year, 75 margin;
        // 75 × 2.486852 = 186.51
        let (_, projected) = clv(
            Decimal::from_str("1000.00").unwrap(),
            1460,
            &ClvSettings::default(),
        );
        assert_eq!(projected.to_string(), "186.51");
    }

    #[test]
    fn lifecycle_thresholds() {
        let s = TraitSettings::default();
        assert_eq!(lifecycle_stage(None, None, &s), "prospect");
        assert_eq!(lifecycle_stage(Some(10), Some(10), &s), "new");
        assert_eq!(lifecycle_stage(Some(400), Some(90), &s), "active");
        assert_eq!(lifecycle_stage(Some(400), Some(91), &s), "at_risk");
        assert_eq!(lifecycle_stage(Some(400), Some(181), &s), "churned");
    }
}
