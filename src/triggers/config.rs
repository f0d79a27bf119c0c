//! `[triggers]` in the config file: what each care trigger is for and the
//! limits that protect people from too many messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::local::{parse_clock, parse_offset};

/// Trigger kinds and the channel each is meant for unless configured.
pub const KINDS: &[(&str, &str)] = &[
    ("payment_pending", "sms"),
    ("birthday", "email_marketing"),
    ("anniversary", "email_marketing"),
    ("lifecycle_changed", "email_marketing"),
    ("complaint_opened", "sms"),
    ("first_order", "email_marketing"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerConfig {
    /// Seconds between sweeps; 0 turns care triggers off.
    pub sweep_interval_seconds: u64,
    /// An order still pending payment this long after it was placed gets a
    /// reminder (the 催付).
    pub payment_pending_after_minutes: i64,
    /// Orders placed longer ago than this (plus the delay) are stale and
    /// never reminded, so a backfill of old orders sends nothing.
    pub payment_pending_lookback_hours: i64,
    /// Channel per trigger kind (`sms`, `email_marketing`, `chat`); kinds
    /// not named keep their default.
    pub channels: BTreeMap<String, String>,
    /// Default time zone of people as a UTC offset (`+08:00`).
    pub timezone: String,
    /// Local quiet window `HH:MM`; triggers due inside it wait for its end.
    /// Equal start and end mean no quiet hours.
    pub quiet_start: String,
    pub quiet_end: String,
    /// At most this many triggers per person per `cap_window_hours`.
    pub max_per_person: i64,
    pub cap_window_hours: i64,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            sweep_interval_seconds: 60,
            payment_pending_after_minutes: 30,
            payment_pending_lookback_hours: 24,
            channels: BTreeMap::new(),
            timezone: "+08:00".into(),
            quiet_start: "21:00".into(),
            quiet_end: "09:00".into(),
            max_per_person: 2,
            cap_window_hours: 24,
        }
    }
}

impl TriggerConfig {
    pub fn channel(&self, kind: &str) -> &str {
        self.channels
            .get(kind)
            .map(String::as_str)
            .or_else(|| KINDS.iter().find(|(k, _)| *k == kind).map(|(_, c)| *c))
            .unwrap_or("email_marketing")
    }

    /// Problems a config file can have, named by key.
    pub fn validate(&self) -> Result<(), String> {
        parse_offset(&self.timezone)
            .ok_or("triggers.timezone: expected a UTC offset like +08:00")?;
        parse_clock(&self.quiet_start).ok_or("triggers.quiet_start: expected HH:MM")?;
        parse_clock(&self.quiet_end).ok_or("triggers.quiet_end: expected HH:MM")?;
        for (kind, channel) in &self.channels {
            if !KINDS.iter().any(|(k, _)| k == kind) {
                return Err(format!("triggers.channels.{kind}: unknown trigger kind"));
            }
            if !["sms", "email_marketing", "chat"].contains(&channel.as_str()) {
                return Err(format!(
                    "triggers.channels.{kind}: expected sms, email_marketing or chat"
                ));
            }
        }
        if self.payment_pending_after_minutes < 0
            || self.max_per_person < 0
            || self.cap_window_hours < 0
        {
            return Err("triggers: delays and limits must not be negative".into());
        }
        Ok(())
    }
}
