//! Douyin: not connected yet; the platform is registered so its module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Douyin;

impl Connector for Douyin {
    fn platform(&self) -> &'static str {
        "douyin"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
