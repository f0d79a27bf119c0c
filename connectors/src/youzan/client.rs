//! Youzan's open API: calls, error classification and the orders cursor.
//!
//! Calls are `POST {base}/api/{method}/{version}?access_token=…` with a JSON
//! body. The gateway answers HTTP 200 even for errors: gateway refusals come
//! as `{"gw_err_resp": {"err_code", "err_msg"}}`, business errors as
//! `{"success": false, "code", "message"}` (3.x APIs: `error_response`).
//!
//! # Cursor
//! `youzan.trades.sold.get` filters by `start_update`/`end_update` (Beijing
//! time, spans of at most three months) and pages by `page_no` (from 1) and
//! `page_size`, `page_no × page_size ≤ 10 000`, in no documented order. It
//! is read by the windowed sweep of [`crate::window`] in windows of
//! [`WINDOW`]; a change of `total_results` between pages restarts a window,
//! and one reporting more than [`MAX_RESULTS`] orders is halved.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::mapping::{self, format_time, FullOrderInfo};
use super::Youzan;
use crate::http;
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};
use crate::webhook::DecodeContext;
use crate::window::{self, Answer, Sweep};

pub(super) use crate::window::Cursor;

pub(super) const DEFAULT_BASE_URL: &str = "https://open.youzanyun.com";
pub(super) const SOLD_GET: &str = "youzan.trades.sold.get";
pub(super) const TRADE_GET: &str = "youzan.trade.get";
pub(super) const API_VERSION: &str = "4.0.0";
/// The documented maximum page size.
pub(super) const PAGE_SIZE: u32 = 100;
/// `page_no × page_size` may not exceed this.
pub(super) const MAX_RESULTS: u64 = 10_000;
/// Well inside the documented three-month span of one query.
pub(super) const WINDOW: TimeDelta = TimeDelta::days(30);
const SWEEP: Sweep = Sweep {
    window: WINDOW,
    first_page: 1,
    page_size: PAGE_SIZE,
    max_results: MAX_RESULTS,
};

/// Gateway codes for a missing, expired or unknown access token (4201
/// "非法的请求凭证" and 4203 "Token 不存在" observed; 4202 expired).
const TOKEN_CODES: std::ops::RangeInclusive<i64> = 4201..=4204;
/// Youzan's "调用频率超限" [U: from Youzan's FAQ, not its error table].
const RATE_LIMIT_CODES: &[i64] = &[20001];

/// Youzan opened to merchants in 2012; a sync from the start of history
/// begins here.
pub(super) fn history_start() -> DateTime<Utc> {
    mapping::beijing()
        .with_ymd_and_hms(2012, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        .with_timezone(&Utc)
}

#[async_trait::async_trait]
impl PollingSource for Youzan {
    fn platform(&self) -> &'static str {
        "youzan"
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
            ConnectorError::Permanent("cursor is not a Youzan orders cursor".to_owned())
        })?;
        poll_orders(api, cursor).await
    }

    /// The current state of one record named by a thin push
    /// (`youzan.trade.get`). Only orders can be fetched.
    async fn fetch(
        &self,
        api: &Api<'_>,
        resource: Resource,
        id: &str,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        if resource != Resource::Orders {
            return Err(unsupported(resource));
        }
        let data: TradeGet = call(api, TRADE_GET, json!({ "tid": id })).await?;
        let info = data
            .full_order_info
            .ok_or_else(|| ConnectorError::Malformed("trade has no full_order_info".to_owned()))?;
        Ok(vec![record(api, info)?])
    }
}

fn unsupported(resource: Resource) -> ConnectorError {
    ConnectorError::Permanent(format!("Youzan does not sync {}", resource.as_str()))
}

async fn poll_orders(api: &Api<'_>, cursor: Cursor) -> Result<Page, ConnectorError> {
    let fetch = |w: &window::Window| {
        let params = json!({
            "start_update": format_time(w.from),
            "end_update": format_time(w.to),
            "page_no": w.page,
            "page_size": PAGE_SIZE,
        });
        async move {
            let data: SoldGet = call(api, SOLD_GET, params).await?;
            Ok(Answer {
                total: data.total_results.unwrap_or(0),
                items: data.full_order_info_list.unwrap_or_default(),
            })
        }
    };
    let map = |item: FullOrderInfoItem| record(api, item.full_order_info);
    SWEEP.poll(api.now, cursor, fetch, map).await
}

fn record(api: &Api<'_>, info: FullOrderInfo) -> Result<SourceRecord, ConnectorError> {
    let ctx = DecodeContext {
        default_region: api.default_region.map(str::to_owned),
    };
    mapping::order_record("youzan.trade", info, &ctx).map_err(|e| match e {
        crate::webhook::DecodeError::Invalid { reason, .. } => {
            ConnectorError::Malformed(format!("trade: {reason}"))
        }
    })
}

#[derive(Debug, Deserialize)]
struct SoldGet {
    full_order_info_list: Option<Vec<FullOrderInfoItem>>,
    total_results: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct FullOrderInfoItem {
    full_order_info: FullOrderInfo,
}

#[derive(Debug, Deserialize)]
struct TradeGet {
    full_order_info: Option<FullOrderInfo>,
}

/// Every answer shape of the gateway and its APIs.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    success: Option<bool>,
    #[serde(default, deserialize_with = "mapping::flex")]
    code: Option<String>,
    data: Option<T>,
    /// 3.x APIs answer in `response` instead of `data`.
    response: Option<T>,
    gw_err_resp: Option<GatewayError>,
    error_response: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct GatewayError {
    #[serde(default, deserialize_with = "mapping::flex")]
    err_code: Option<String>,
    err_msg: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default, deserialize_with = "mapping::flex")]
    code: Option<String>,
    msg: Option<String>,
}

/// One API call: HTTP status first, then the in-body error shapes.
async fn call<T: DeserializeOwned>(
    api: &Api<'_>,
    method: &str,
    params: Value,
) -> Result<T, ConnectorError> {
    let token = api.require_secret("access_token")?;
    let url = format!(
        "{}/api/{method}/{API_VERSION}",
        api.base_url.trim_end_matches('/')
    );
    let request = api
        .http
        .post(url)
        .query(&[("access_token", token)])
        .json(&params);
    let response = http::check_status(http::send(request).await?)?;
    let envelope: Envelope<T> = http::json(response).await?;
    if let Some(error) = envelope.gw_err_resp {
        return Err(classify(
            error.err_code.as_deref(),
            error.err_msg.as_deref(),
        ));
    }
    if let Some(error) = envelope.error_response {
        return Err(classify(error.code.as_deref(), error.msg.as_deref()));
    }
    if envelope.success == Some(false) {
        return Err(classify(envelope.code.as_deref(), None));
    }
    envelope
        .data
        .or(envelope.response)
        .ok_or_else(|| ConnectorError::Malformed(format!("{method} answered without data")))
}

/// An in-body error as a reaction. Only codes reach the message: Youzan's
/// texts could repeat request values.
pub(super) fn classify(code: Option<&str>, message: Option<&str>) -> ConnectorError {
    let number = code.and_then(|c| c.trim().parse::<i64>().ok());
    let shown = code.unwrap_or("none");
    let throttled_text = message.is_some_and(|m| {
        ["频率", "限流", "frequency", "too many requests"]
            .iter()
            .any(|hint| m.to_lowercase().contains(hint))
    });
    match number {
        Some(n) if TOKEN_CODES.contains(&n) => {
            ConnectorError::Unauthorized(format!("Youzan refused the access token (code {n})"))
        }
        Some(n) if RATE_LIMIT_CODES.contains(&n) => {
            ConnectorError::RateLimited { retry_after: None }
        }
        _ if throttled_text => ConnectorError::RateLimited { retry_after: None },
        _ => ConnectorError::Permanent(format!("Youzan answered error code {shown}")),
    }
}
