//! Platforms played by fake servers on 127.0.0.1 that authenticate,
//! paginate and throttle like the real ones.

pub mod shopify;
pub mod woocommerce;
pub mod webhook_receiver;
pub mod hubspot;
pub mod klaviyo;
pub mod mailchimp;
pub mod quota;
