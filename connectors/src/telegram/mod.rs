//! Telegram: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Telegram;

impl Connector for Telegram {
    fn platform(&self) -> &'static str {
        "telegram"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
