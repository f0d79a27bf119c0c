//! Intercom: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Intercom;

impl Connector for Intercom {
    fn platform(&self) -> &'static str {
        "intercom"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
