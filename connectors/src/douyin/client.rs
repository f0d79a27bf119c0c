//! Doudian's open API: request signing, calls, error classification and the
//! orders cursor.
//!
//! Every call is `POST {base}{path}` with the method (`order.searchList`
//! for `/order/searchList`), the app key, the access token, a Beijing-time
//! timestamp, `v=2`, `sign_method=hmac-sha256` and the signature in the
//! query, and `param_json` as the body. Answers are HTTP 200 with
//! `{"code": 10000, "msg": "success", "sub_code", "sub_msg", "data"}`; any
//! other `code` is an error (`err_no`/`message` in the older format).
//!
//! # Cursor
//! `order.searchList` filters by `update_time_start`/`update_time_end`
//! (seconds) and pages by `page` (from 0) and `size` (≤ 100), ordered by
//! `update_time` ascending. It is read by the windowed sweep of
//! [`crate::window`] in windows of [`WINDOW`]; a change of `total` between
//! pages restarts a window, and one reporting more than [`MAX_RESULTS`]
//! orders is halved.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::mapping::{self, ShopOrder};
use super::Douyin;
use crate::http;
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};
use crate::signature::hmac_sha256;
use crate::webhook::DecodeError;
use crate::window::{self, Answer, Sweep};

pub(super) use crate::window::Cursor;

pub(super) const DEFAULT_BASE_URL: &str = "https://openapi-fxg.jinritemai.com";
pub(super) const SEARCH_LIST: &str = "/order/searchList";
pub(super) const ORDER_DETAIL: &str = "/order/orderDetail";
/// The documented maximum `size`.
pub(super) const PAGE_SIZE: u32 = 100;
/// Deepest offset read in one window before it is halved [U: Doudian
/// documents no limit; deep pages of a large window are the usual refusal].
pub(super) const MAX_RESULTS: u64 = 10_000;
/// One week per query.
pub(super) const WINDOW: TimeDelta = TimeDelta::days(7);
const SWEEP: Sweep = Sweep {
    window: WINDOW,
    first_page: 0,
    page_size: PAGE_SIZE,
    max_results: MAX_RESULTS,
};
/// `code` of a successful call.
const SUCCESS: i64 = 10_000;
/// The request timestamp format, Beijing time.
pub(super) const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Doudian's published platform error codes (平台基础错误码).
mod codes {
    /// 服务不可用, 内部服务超时.
    pub const UNAVAILABLE: [i64; 2] = [20_000, 20_001];
    /// 操作权限不足: the app lost its permission or the shop its authorisation.
    pub const NO_PERMISSION: i64 = 30_001;
    /// 触发限流.
    pub const THROTTLED: i64 = 60_000;
    /// 其他异常.
    pub const OTHER: i64 = 90_000;
}

/// `sub_code`s meaning the credentials themselves were refused.
const AUTH_SUB_CODES: &[&str] = &[
    "isv.access-token-expired",
    "isv.access-token-no-existed",
    "isv.access-token-invalid",
    "isv.access-token-missing",
    "isv.signature-invalid",
    "isv.app-id-invalid",
    "isv.app-id-expired",
    "isv.app-id-missing",
    "isv.authorization-type-invalid",
    "dop.authorization-no-existed",
    "dop.authorization-closed",
    "dop.app-forbidden",
];

/// Doudian (抖店) opened in 2018; a sync from the start of history begins here.
pub(super) fn history_start() -> DateTime<Utc> {
    mapping::beijing()
        .with_ymd_and_hms(2018, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        .with_timezone(&Utc)
}

#[async_trait::async_trait]
impl PollingSource for Douyin {
    fn platform(&self) -> &'static str {
        "douyin"
    }

    fn default_base_url(&self, _settings: &serde_json::Map<String, Value>) -> Option<String> {
        Some(DEFAULT_BASE_URL.to_owned())
    }

    fn resources(&self) -> &'static [Resource] {
        &[Resource::Orders]
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        window::start_cursor(since, history_start())
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if resource != Resource::Orders {
            return Err(unsupported(resource));
        }
        let cursor: Cursor = serde_json::from_value(cursor.clone()).map_err(|_| {
            ConnectorError::Permanent("cursor is not a Douyin orders cursor".to_owned())
        })?;
        poll_orders(api, cursor).await
    }

    /// The current state of one record named by a push (`order.orderDetail`).
    /// Only orders can be fetched.
    async fn fetch(
        &self,
        api: &Api<'_>,
        resource: Resource,
        id: &str,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        if resource != Resource::Orders {
            return Err(unsupported(resource));
        }
        let data: OrderDetail = call(api, ORDER_DETAIL, &json!({ "shop_order_id": id })).await?;
        let order = data.shop_order_detail.ok_or_else(|| {
            ConnectorError::Malformed("answer has no shop_order_detail".to_owned())
        })?;
        Ok(vec![record(order)?])
    }
}

fn unsupported(resource: Resource) -> ConnectorError {
    ConnectorError::Permanent(format!("Douyin does not sync {}", resource.as_str()))
}

async fn poll_orders(api: &Api<'_>, cursor: Cursor) -> Result<Page, ConnectorError> {
    let fetch = |w: &window::Window| {
        let params = json!({
            "update_time_start": w.from.timestamp(),
            "update_time_end": w.to.timestamp(),
            "page": w.page,
            "size": PAGE_SIZE,
            "order_by": "update_time",
            "order_asc": true,
        });
        async move {
            let data: SearchList = call(api, SEARCH_LIST, &params).await?;
            Ok(Answer {
                total: data.total.unwrap_or(0),
                items: data.shop_order_list.unwrap_or_default(),
            })
        }
    };
    SWEEP.poll(api.now, cursor, fetch, record).await
}

fn record(order: ShopOrder) -> Result<SourceRecord, ConnectorError> {
    mapping::order_record("doudian.order", order).map_err(|e| match e {
        DecodeError::Invalid { reason, .. } => {
            ConnectorError::Malformed(format!("order: {reason}"))
        }
    })
}

#[derive(Debug, Deserialize)]
struct SearchList {
    shop_order_list: Option<Vec<ShopOrder>>,
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OrderDetail {
    shop_order_detail: Option<ShopOrder>,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default, deserialize_with = "mapping::flex")]
    code: Option<String>,
    /// The older answer format.
    #[serde(default, deserialize_with = "mapping::flex")]
    err_no: Option<String>,
    sub_code: Option<String>,
    data: Option<T>,
}

/// `method` of a path: `/order/searchList` is `order.searchList`.
pub(super) fn method_of(path: &str) -> String {
    path.trim_start_matches('/').replace('/', ".")
}

/// `param_json`: keys sorted at every level, no whitespace.
pub(super) fn param_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Hex HMAC-SHA256 keyed by the app secret of
/// `secret + app_key… + method… + param_json… + timestamp… + v2 + secret`.
pub(super) fn sign(
    app_key: &str,
    app_secret: &str,
    method: &str,
    param_json: &str,
    timestamp: &str,
) -> String {
    let text = format!(
        "{app_secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v2{app_secret}"
    );
    hex::encode(hmac_sha256(app_secret.as_bytes(), text.as_bytes()))
}

async fn call<T: DeserializeOwned>(
    api: &Api<'_>,
    path: &str,
    params: &Value,
) -> Result<T, ConnectorError> {
    let app_key = api
        .setting("app_key")
        .ok_or_else(|| ConnectorError::Permanent("settings.app_key is not set".to_owned()))?;
    let app_secret = api.require_secret("app_secret")?;
    let token = api.require_secret("access_token")?;
    let method = method_of(path);
    let body = param_json(params);
    let timestamp = api
        .now
        .with_timezone(&mapping::beijing())
        .format(TIMESTAMP_FORMAT)
        .to_string();
    let signature = sign(app_key, app_secret, &method, &body, &timestamp);
    let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
    let request = api
        .http
        .post(url)
        .query(&[
            ("app_key", app_key),
            ("method", method.as_str()),
            ("access_token", token),
            ("timestamp", timestamp.as_str()),
            ("v", "2"),
            ("sign", signature.as_str()),
            ("sign_method", "hmac-sha256"),
        ])
        // Ask for the current error codes rather than the legacy ones.
        .header("x-open-no-old-err-code", "1")
        .header(::http::header::CONTENT_TYPE, "application/json")
        .body(body);
    let response = http::check_status(http::send(request).await?)?;
    let envelope: Envelope<T> = http::json(response).await?;
    let code = envelope.code.as_deref().map(str::trim);
    let succeeded = match (code, envelope.err_no.as_deref().map(str::trim)) {
        (Some(code), _) => code == SUCCESS.to_string(),
        (None, Some(err_no)) => err_no == "0",
        (None, None) => false,
    };
    if !succeeded {
        let code = code.or(envelope.err_no.as_deref());
        return Err(classify(code, envelope.sub_code.as_deref()));
    }
    envelope
        .data
        .ok_or_else(|| ConnectorError::Malformed(format!("{method} answered without data")))
}

/// An in-body error as a reaction. Only `code` and `sub_code` reach the
/// message: `msg`/`sub_msg` can repeat request values.
pub(super) fn classify(code: Option<&str>, sub_code: Option<&str>) -> ConnectorError {
    let number = code.and_then(|c| c.trim().parse::<i64>().ok());
    let sub = sub_code.map(str::trim).unwrap_or("");
    // `isv.business-failed:{detail}`: the detail may repeat request values.
    let sub_name = sub.split(':').next().unwrap_or("");
    let described = format!(
        "Doudian answered code {} ({})",
        code.unwrap_or("none"),
        if sub_name.is_empty() {
            "no sub_code"
        } else {
            sub_name
        }
    );
    if AUTH_SUB_CODES.contains(&sub) || sub.starts_with("dop.token-generate-failed") {
        return ConnectorError::Unauthorized(described);
    }
    match number {
        Some(codes::NO_PERMISSION) => ConnectorError::Unauthorized(described),
        Some(codes::THROTTLED) => ConnectorError::RateLimited { retry_after: None },
        Some(n) if codes::UNAVAILABLE.contains(&n) || n == codes::OTHER => {
            ConnectorError::Transient(described)
        }
        _ => ConnectorError::Permanent(described),
    }
}
