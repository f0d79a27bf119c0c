//! Taobao: not connected yet; the platform is registered so its module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Taobao;

impl Connector for Taobao {
    fn platform(&self) -> &'static str {
        "taobao"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
