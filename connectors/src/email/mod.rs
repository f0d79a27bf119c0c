//! Mailgun, Sendgrid, Postmark: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Mailgun;

impl Connector for Mailgun {
    fn platform(&self) -> &'static str {
        "mailgun"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}

pub struct Sendgrid;

impl Connector for Sendgrid {
    fn platform(&self) -> &'static str {
        "sendgrid"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}

pub struct Postmark;

impl Connector for Postmark {
    fn platform(&self) -> &'static str {
        "postmark"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
