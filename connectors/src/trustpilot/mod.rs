//! Trustpilot: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Trustpilot;

impl Connector for Trustpilot {
    fn platform(&self) -> &'static str {
        "trustpilot"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
