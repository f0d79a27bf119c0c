//! Per-workspace profile settings: which sources the golden record trusts
//! first, and the thresholds traits are computed with.
//!
//! Stored as one JSON document per workspace; `PATCH /v1/settings` merges a
//! JSON merge patch (RFC 7396) into it. Profiles pick changes up the next
//! time they are refreshed (a new record, or `shophub profiles refresh`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{StoreError, StoreResult, WriteTx};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileSettings {
    /// Platforms (`shopify`) or connection ids, most trusted first. Records
    /// from unlisted sources rank after listed ones; within a rank a customer
    /// record beats an order, a review, then a chat; then the newest wins.
    pub source_priority: Vec<String>,
    pub traits: TraitSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraitSettings {
    /// The currency value tiers, monetary scores and CLV are in; unset, the
    /// currency most of the workspace's buyers spend in.
    pub main_currency: Option<String>,
    pub lifecycle: Lifecycle,
    pub clv: ClvSettings,
    /// Tiers by total spent in the main currency, lowest first; a buyer is
    /// in the last tier whose `min_spent` they reached.
    pub value_tiers: Vec<ValueTier>,
}

/// Day thresholds of the lifecycle stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// `new` while the first order is at most this many days old.
    pub new_days: i64,
    /// `at_risk` when the last order is more than this many days old.
    pub at_risk_days: i64,
    /// `churned` when the last order is more than this many days old.
    pub churned_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClvSettings {
    /// Share of revenue that is profit, 0..=1.
    pub margin: Decimal,
    /// Yearly discount rate for future value, 0..=1.
    pub annual_discount_rate: Decimal,
    /// Years of future purchases projected, 1..=50.
    pub horizon_years: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueTier {
    pub name: String,
    pub min_spent: Decimal,
}

impl Default for TraitSettings {
    fn default() -> Self {
        let tier = |name: &str, min: i64| ValueTier {
            name: name.to_string(),
            min_spent: Decimal::from(min),
        };
        TraitSettings {
            main_currency: None,
            lifecycle: Lifecycle::default(),
            clv: ClvSettings::default(),
            value_tiers: vec![
                tier("first_time_buyer", 0),
                tier("repeat_buyer", 500),
                tier("loyal", 2000),
                tier("vip", 5000),
                tier("top_customer", 20000),
            ],
        }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            new_days: 30,
            at_risk_days: 90,
            churned_days: 180,
        }
    }
}

impl Default for ClvSettings {
    fn default() -> Self {
        ClvSettings {
            margin: Decimal::new(3, 1),
            annual_discount_rate: Decimal::new(1, 1),
            horizon_years: 3,
        }
    }
}

impl ProfileSettings {
    /// The settings after a JSON merge patch, validated; the error names the
    /// field and the problem.
    pub fn patched(&self, patch: &Value) -> Result<ProfileSettings, (String, String)> {
        let mut document = serde_json::to_value(self).expect("settings serialise");
        merge_patch(&mut document, patch);
        let settings: ProfileSettings = serde_json::from_value(document)
            .map_err(|e| ("settings".to_string(), e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, detail: &str| Err((field.to_string(), detail.to_string()));
        if self.source_priority.len() > 100
            || self.source_priority.iter().any(|s| s.trim().is_empty())
        {
            return fail(
                "source_priority",
                "must be at most 100 non-empty platform names or connection ids",
            );
        }
        let t = &self.traits;
        if let Some(currency) = &t.main_currency {
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
                return fail(
                    "traits.main_currency",
                    "must be a three-letter upper-case code",
                );
            }
        }
        let l = &t.lifecycle;
        if !(0 < l.new_days && l.new_days <= l.at_risk_days && l.at_risk_days < l.churned_days) {
            return fail(
                "traits.lifecycle",
                "needs 0 < new_days <= at_risk_days < churned_days",
            );
        }
        let unit = Decimal::ZERO..=Decimal::ONE;
        if !unit.contains(&t.clv.margin) || !unit.contains(&t.clv.annual_discount_rate) {
            return fail(
                "traits.clv",
                "margin and annual_discount_rate must be between 0 and 1",
            );
        }
        if !(1..=50).contains(&t.clv.horizon_years) {
            return fail("traits.clv.horizon_years", "must be 1 to 50");
        }
        let tiers = &t.value_tiers;
        let ascending = tiers.windows(2).all(|w| w[0].min_spent < w[1].min_spent);
        if tiers.is_empty()
            || tiers[0].min_spent != Decimal::ZERO
            || !ascending
            || tiers.iter().any(|tier| tier.name.trim().is_empty())
        {
            return fail(
                "traits.value_tiers",
                "must be named tiers with strictly increasing min_spent, the first 0",
            );
        }
        Ok(())
    }
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let fields = target.as_object_mut().expect("an object");
    for (key, value) in changes {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The workspace's settings (defaults where none were saved).
pub async fn load(tx: &mut dyn WriteTx, workspace_id: &str) -> StoreResult<ProfileSettings> {
    parse(tx.profile_settings(workspace_id).await?.as_deref())
}

pub fn parse(stored: Option<&str>) -> StoreResult<ProfileSettings> {
    match stored {
        None => Ok(ProfileSettings::default()),
        Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_merges_and_null_restores_the_default() {
        let settings = ProfileSettings::default()
            .patched(&json!({"source_priority": ["woocommerce"],
                             "traits": {"clv": {"margin": "0.5"}}}))
            .unwrap();
        assert_eq!(settings.source_priority, ["woocommerce"]);
        assert_eq!(settings.traits.clv.margin, Decimal::new(5, 1));
        assert_eq!(
            settings.traits.clv.horizon_years, 3,
            "untouched fields stay"
        );
        let back = settings.patched(&json!({"traits": {"clv": null}})).unwrap();
        assert_eq!(back.traits.clv, ClvSettings::default());
    }

    #[test]
    fn invalid_settings_name_their_field() {
        let base = ProfileSettings::default();
        let field = |patch: Value| base.patched(&patch).unwrap_err().0;
        assert_eq!(
            field(json!({"traits": {"lifecycle": {"at_risk_days": 10}}})),
            "traits.lifecycle"
        );
        assert_eq!(
            field(json!({"traits": {"value_tiers": [{"name": "a", "min_spent": "5"}]}})),
            "traits.value_tiers"
        );
        assert_eq!(
            field(json!({"traits": {"clv": {"margin": "1.5"}}})),
            "traits.clv"
        );
        assert_eq!(field(json!({"colour": "red"})), "settings");
    }
}
