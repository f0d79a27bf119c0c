//! Imap: not connected yet; registered so the module can be built beside
//! the others.

use crate::webhook::Connector;

pub struct Imap;

impl Connector for Imap {
    fn platform(&self) -> &'static str {
        "imap"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
