//! WecomKf: not connected yet; registered so the module can be built beside
//! the others.

use crate::webhook::Connector;

pub struct WecomKf;

impl Connector for WecomKf {
    fn platform(&self) -> &'static str {
        "wecom_kf"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
