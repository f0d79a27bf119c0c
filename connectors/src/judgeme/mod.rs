//! Judgeme: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Judgeme;

impl Connector for Judgeme {
    fn platform(&self) -> &'static str {
        "judgeme"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
