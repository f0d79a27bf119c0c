//! Line: not connected yet; registered so the module
//! can be built beside the others.

use crate::webhook::Connector;

pub struct Line;

impl Connector for Line {
    fn platform(&self) -> &'static str {
        "line"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &[]
    }
}
