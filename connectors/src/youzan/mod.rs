//! Youzan: not connected yet; the platform is registered so its module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Youzan;

impl Connector for Youzan {
    fn platform(&self) -> &'static str {
        "youzan"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
