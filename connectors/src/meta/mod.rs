//! Messenger, Instagram, WhatsApp: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Messenger;

impl Connector for Messenger {
    fn platform(&self) -> &'static str {
        "messenger"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}

pub struct Instagram;

impl Connector for Instagram {
    fn platform(&self) -> &'static str {
        "instagram"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}

pub struct WhatsApp;

impl Connector for WhatsApp {
    fn platform(&self) -> &'static str {
        "whatsapp"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
