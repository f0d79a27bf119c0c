//! Youzan's open API: calls, error classification and the orders cursor.
//!
//! Calls are `POST {base}/api/{method}/{version}?access_token=…` with a JSON
//! body. The gateway answers HTTP 200 even for errors: gateway refusals come
//! as `{"gw_err_resp": {"err_code", "err_msg"}}`, business errors as
//! `{"success": false, "code", "message"}` (3.x APIs: `error_response`).
//!
//! # Cursor
//! `youzan.trades.sold.get` filters by `start_update`/`end_update` (Beijing
//! time, spans of at most three months) and pages by `page_no`/`page_size`,
//! `page_no × page_size ≤ 10 000`, in no documented order. A sweep covers
//! `[from, until]`, `until` being fixed by the sweep's first call, in windows
//! of [`WINDOW`] that share their boundary second (re-reading is harmless).
//! Inside a window the query is fixed and pages are numbered, so records
//! sharing one timestamp are never skipped. An order updated during the
//! sweep leaves the window (its new time is after `until`) and shifts later
//! pages up; `total_results` then changes and the window restarts at page 1,
//! so nothing is skipped, and the order itself is read by the next sweep.
//! A window holding more than 10 000 orders is halved. When the last window
//! is read, the watermark becomes the highest `update_time` seen (or the
//! sweep end minus [`LOOKBACK`], if higher) and the returned cursor starts
//! the next sweep at watermark minus [`LOOKBACK`].

use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::mapping::{self, format_time, FullOrderInfo};
use super::Youzan;
use crate::http;
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::webhook::DecodeContext;

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
        let cursor = Cursor {
            from: since.unwrap_or_else(history_start),
            until: None,
            window: None,
            seen: None,
            watermark: since,
        };
        serde_json::to_value(cursor).expect("cursor serialises")
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

/// Where a sweep stands. Times are UTC; Youzan is queried in Beijing time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// Fixed start of this sweep's query.
    pub from: DateTime<Utc>,
    /// Fixed end of this sweep, set by its first call.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// The window being paged; `None` before the sweep's first call.
    #[serde(default)]
    pub window: Option<Window>,
    /// Highest `update_time` read in this sweep.
    #[serde(default)]
    pub seen: Option<DateTime<Utc>>,
    /// Everything modified before this was read by an earlier sweep.
    #[serde(default)]
    pub watermark: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Next `page_no` (1-based).
    pub page: u32,
    /// `total_results` of the window's previous page.
    #[serde(default)]
    pub total: Option<u64>,
}

impl Window {
    fn starting(from: DateTime<Utc>, until: DateTime<Utc>) -> Window {
        Window {
            from,
            to: (from + WINDOW).min(until),
            page: 1,
            total: None,
        }
    }
}

async fn poll_orders(api: &Api<'_>, mut cursor: Cursor) -> Result<Page, ConnectorError> {
    let until = *cursor.until.get_or_insert_with(|| api.now.trunc_subsecs(0));
    if cursor.from >= until {
        return Ok(finish(cursor, until, Vec::new()));
    }
    let window = cursor
        .window
        .take()
        .unwrap_or_else(|| Window::starting(cursor.from, until));

    let params = json!({
        "start_update": format_time(window.from),
        "end_update": format_time(window.to),
        "page_no": window.page,
        "page_size": PAGE_SIZE,
    });
    let data: SoldGet = call(api, SOLD_GET, params).await?;
    let total = data.total_results.unwrap_or(0);

    if total > MAX_RESULTS && window.to - window.from > TimeDelta::seconds(1) {
        // Too many to page through: read the first half first.
        let half = window.from + (window.to - window.from) / 2;
        cursor.window = Some(Window {
            from: window.from,
            to: half.trunc_subsecs(0),
            page: 1,
            total: None,
        });
        return Ok(in_progress(cursor, Vec::new()));
    }

    let records = data
        .full_order_info_list
        .unwrap_or_default()
        .into_iter()
        .map(|item| record(api, item.full_order_info))
        .collect::<Result<Vec<_>, _>>()?;
    cursor.seen = records.iter().map(|r| r.version).chain(cursor.seen).max();

    let shifted = window.page > 1 && window.total.is_some_and(|t| t != total);
    let last_page = u64::from(window.page) * u64::from(PAGE_SIZE) >= total
        || records.is_empty()
        || u64::from(window.page + 1) * u64::from(PAGE_SIZE) > MAX_RESULTS;
    if shifted {
        // The set changed under the pages: read the window again.
        cursor.window = Some(Window {
            page: 1,
            total: Some(total),
            ..window
        });
    } else if last_page {
        if window.to >= until {
            return Ok(finish(cursor, until, records));
        }
        cursor.window = Some(Window::starting(window.to, until));
    } else {
        cursor.window = Some(Window {
            page: window.page + 1,
            total: Some(total),
            ..window
        });
    }
    Ok(in_progress(cursor, records))
}

fn in_progress(cursor: Cursor, records: Vec<SourceRecord>) -> Page {
    let watermark = cursor.watermark;
    Page {
        records,
        cursor: serde_json::to_value(cursor).expect("cursor serialises"),
        caught_up: false,
        watermark,
        pace: None,
    }
}

/// The sweep is complete: raise the watermark and start the next sweep.
fn finish(cursor: Cursor, until: DateTime<Utc>, records: Vec<SourceRecord>) -> Page {
    let lookback = TimeDelta::from_std(LOOKBACK).expect("lookback fits");
    let watermark = [cursor.watermark, cursor.seen, Some(until - lookback)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(until);
    let next = Cursor {
        from: watermark - lookback,
        until: None,
        window: None,
        seen: None,
        watermark: Some(watermark),
    };
    Page {
        records,
        cursor: serde_json::to_value(next).expect("cursor serialises"),
        caught_up: true,
        watermark: Some(watermark),
        pace: None,
    }
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
