//! GoogleBusiness: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct GoogleBusiness;

impl Connector for GoogleBusiness {
    fn platform(&self) -> &'static str {
        "google_business"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
