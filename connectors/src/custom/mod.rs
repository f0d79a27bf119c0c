//! Custom: not connected yet; the platform is registered so its module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Custom;

impl Connector for Custom {
    fn platform(&self) -> &'static str {
        "custom"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
