//! Zendesk: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Zendesk;

impl Connector for Zendesk {
    fn platform(&self) -> &'static str {
        "zendesk"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
