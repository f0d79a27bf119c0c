//! Wechat: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Wechat;

impl Connector for Wechat {
    fn platform(&self) -> &'static str {
        "wechat"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
