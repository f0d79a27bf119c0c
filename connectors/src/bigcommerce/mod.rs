//! BigCommerce: not connected yet; the platform is registered so its module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct BigCommerce;

impl Connector for BigCommerce {
    fn platform(&self) -> &'static str {
        "bigcommerce"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
