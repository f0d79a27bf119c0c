//! The platform edge of shophub.
//!
//! This crate knows platforms and nothing about storage: how each one signs
//! its webhooks, what its payloads look like, and how to turn them into the
//! common model ([`model`]). Everything here is a pure function of its input,
//! so every platform is testable from fixtures alone.
//!
//! # Layout
//! - [`model`]: the records every connector emits.
//! - [`identity`]: normalisation of emails and phones into identity keys.
//! - [`signature`]: HMAC helpers with constant-time comparison.
//! - [`webhook`]: the trait a webhook-capable platform implements, and its errors.
//! - [`poll`]: the trait an API-polling platform implements, its cursor and errors.
//! - [`http`]: classification of platform HTTP answers.
//! - one module per platform, each behind a cargo feature.
//! - [`registry`]: the one list of available platforms.

pub mod http;
pub mod identity;
pub mod model;
#[cfg(any(feature = "judgeme", feature = "trustpilot"))]
mod newest_first;
mod payload;
pub mod poll;
pub mod signature;
pub mod webhook;
mod window;
// WeChat's message encryption, also used by WeCom customer service.
#[cfg(any(feature = "wechat", feature = "wecom_kf"))]
#[allow(dead_code)]
mod wxcrypt;

#[cfg(test)]
pub mod testkit;

#[cfg(feature = "bigcommerce")]
pub mod bigcommerce;
#[cfg(feature = "custom")]
pub mod custom;
pub mod destinations;
#[cfg(feature = "douyin")]
pub mod douyin;
#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "google_business")]
pub mod google_business;
#[cfg(feature = "imap")]
pub mod imap;
#[cfg(feature = "intercom")]
pub mod intercom;
#[cfg(feature = "judgeme")]
pub mod judgeme;
#[cfg(feature = "line")]
pub mod line;
#[cfg(feature = "magento")]
pub mod magento;
#[cfg(feature = "meta")]
pub mod meta;
#[cfg(feature = "shopify")]
pub mod shopify;
#[cfg(feature = "taobao")]
pub mod taobao;
#[cfg(feature = "telegram")]
pub mod telegram;
#[cfg(feature = "trustpilot")]
pub mod trustpilot;
#[cfg(feature = "wechat")]
pub mod wechat;
#[cfg(feature = "wecom_kf")]
pub mod wecom_kf;
#[cfg(feature = "woocommerce")]
pub mod woocommerce;
#[cfg(feature = "youzan")]
pub mod youzan;
#[cfg(feature = "zendesk")]
pub mod zendesk;

pub use poll::{ConnectorError, PollingSource};
pub use webhook::{Connector, DecodeContext, DecodeError, Intake, VerifyError, WebhookSource};

/// Every platform this build supports, one line each.
pub fn registry() -> &'static [&'static dyn Connector] {
    &[
        #[cfg(feature = "shopify")]
        &shopify::Shopify,
        #[cfg(feature = "woocommerce")]
        &woocommerce::WooCommerce,
        #[cfg(feature = "bigcommerce")]
        &bigcommerce::BigCommerce,
        #[cfg(feature = "magento")]
        &magento::Magento,
        #[cfg(feature = "taobao")]
        &taobao::Taobao,
        #[cfg(feature = "youzan")]
        &youzan::Youzan,
        #[cfg(feature = "douyin")]
        &douyin::Douyin,
        #[cfg(feature = "custom")]
        &custom::Custom,
        #[cfg(feature = "wecom_kf")]
        &wecom_kf::WecomKf,
        #[cfg(feature = "imap")]
        &imap::Imap,
        #[cfg(feature = "meta")]
        &meta::Messenger,
        #[cfg(feature = "meta")]
        &meta::Instagram,
        #[cfg(feature = "meta")]
        &meta::WhatsApp,
        #[cfg(feature = "wechat")]
        &wechat::Wechat,
        #[cfg(feature = "line")]
        &line::Line,
        #[cfg(feature = "telegram")]
        &telegram::Telegram,
        #[cfg(feature = "zendesk")]
        &zendesk::Zendesk,
        #[cfg(feature = "intercom")]
        &intercom::Intercom,
        #[cfg(feature = "email")]
        &email::Mailgun,
        #[cfg(feature = "email")]
        &email::Sendgrid,
        #[cfg(feature = "email")]
        &email::Postmark,
        #[cfg(feature = "judgeme")]
        &judgeme::Judgeme,
        #[cfg(feature = "google_business")]
        &google_business::GoogleBusiness,
        #[cfg(feature = "trustpilot")]
        &trustpilot::Trustpilot,
    ]
}

/// The connector for a platform id such as `shopify`, if this build has it.
pub fn connector(platform: &str) -> Option<&'static dyn Connector> {
    registry()
        .iter()
        .copied()
        .find(|c| c.platform() == platform)
}
