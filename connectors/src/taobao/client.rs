//! The TOP client: signed calls, error classification, and the orders
//! cursor.
//!
//! # Protocol
//! Every call is a form POST to the gateway carrying the system parameters
//! (`method`, `app_key`, `session`, `timestamp` in GMT+8, `format=json`,
//! `v=2.0`, `sign_method`) and the API's own parameters, signed over all of
//! them sorted by name and concatenated as `key` + `value` (the `sign`
//! parameter excluded): `md5` is MD5(secret + text + secret), `hmac` is
//! HMAC-MD5 and `hmac-sha256` HMAC-SHA256 keyed with the app secret, written
//! as upper-case hex. TOP answers HTTP 200 with either
//! `{"<method>_response": {...}}` (the method name without `taobao.`, dots
//! as underscores) or `{"error_response": {code, msg, sub_code, sub_msg}}`.
//!
//! # Orders cursor
//! A sweep walks `modified` windows `[from, to]` of [`WINDOW`] (the API
//! allows one day) from its start to the present, one window completely
//! before the next, which starts at `to` + 1 s. TOP reads `start_modified`
//! and `end_modified` as inclusive bounds at second precision; the cursor
//! relies on that.
//!
//! - `begin`: a window starts at `from` (absent: the oldest trades the API
//!   keeps, [`HORIZON`] before now; older starts are moved up to it); its
//!   end is fixed when it is first read (one window later, or now for the
//!   sweep's last window).
//! - `window`: the API sorts a window's trades by `modified`, newest first,
//!   and shifts every later page when a trade in it is modified again, so
//!   forward page numbers can skip trades (the docs advise paging from the
//!   last page back). Instead the window is read top-down by time: always
//!   page 1 of `[from, upper]` with `use_has_next=true`, then `upper` drops
//!   to the oldest `modified` on that page (trades already returned at
//!   `upper` are in `skip` and not fetched again). A trade modified again
//!   leaves the window without moving anything still unread, and comes back
//!   in a later window. `has_next=false` ends the window.
//! - `tie`: when a whole page shares one second `s`, time cannot split it;
//!   the seconds `lo..=hi` (`s - 1 s..=s`) are counted with one
//!   `use_has_next=false` call, then read by page number from the last page
//!   back to page 1, as the docs advise; the window continues below `lo`.
//! - `drain`: after the last window, TMC is pulled in batches of
//!   [`TMC_QUANTITY`]; trade and refund messages give `tid`s whose full
//!   trades are returned, other topics and unreadable contents are only
//!   confirmed. Every batch's message ids ride in `confirm` and are confirmed
//!   at the start of the next call, that is after the hub committed the page
//!   they produced (a retried call confirms them again). A short batch (the
//!   queue is empty for now) is confirmed by one more call that returns
//!   `caught_up` without consuming; so does the batch after
//!   [`MAX_DRAIN_BATCHES`] full ones. The next sweep starts [`LOOKBACK`]
//!   before the end of the last window (`watermark`).
//!
//! Each call makes one list or consume call plus one `fullinfo` call per
//! new `tid` on it (at most [`PAGE_SIZE`] or [`TMC_QUANTITY`]), and the
//! confirm call when the cursor carries ids.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::mapping::{self, ListedTrade, Scalar, TmcMessage};
use super::Taobao;
use crate::http;
use crate::model::SourceRecord;
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::signature::hmac_sha256;
use crate::webhook::Connector;

/// TOP's HTTPS gateway (`http://gw.api.taobao.com/router/rest` is the HTTP one).
pub(super) const GATEWAY: &str = "https://eco.taobao.com/router/rest";

/// Length of one `modified` window (the API allows at most one day and
/// recommends short spans for speed).
pub(super) const WINDOW: TimeDelta = TimeDelta::hours(1);
/// The API only returns trades of the last three months.
pub(super) const HORIZON: TimeDelta = TimeDelta::days(90);
/// Trades per list page (the API allows 1..=100 and recommends 40..=50).
pub(super) const PAGE_SIZE: u32 = 50;
/// Messages per TMC consume (the API allows 10..=200).
pub(super) const TMC_QUANTITY: usize = 50;
/// Full TMC batches one sweep drains before it ends anyway, so a busy queue
/// cannot hold the windows back.
pub(super) const MAX_DRAIN_BATCHES: u32 = 20;

pub(super) const LIST_METHOD: &str = "taobao.trades.sold.increment.get";
pub(super) const FULLINFO_METHOD: &str = "taobao.trade.fullinfo.get";
pub(super) const CONSUME_METHOD: &str = "taobao.tmc.messages.consume";
pub(super) const CONFIRM_METHOD: &str = "taobao.tmc.messages.confirm";

/// What the list call asks for: the full trade comes from `fullinfo`.
const LIST_FIELDS: &str = "tid,modified";
/// What the full trade call asks for. `oaid` and the receiver's name,
/// mobile and street are deliberately not requested.
pub(super) const TRADE_FIELDS: &str = "tid,status,payment,created,modified,buyer_open_uid,ouid,\
receiver_state,receiver_city,receiver_district,receiver_zip,orders";

const ONE_SECOND: TimeDelta = TimeDelta::seconds(1);

// --- connector ------------------------------------------------------------

impl Connector for Taobao {
    fn platform(&self) -> &'static str {
        "taobao"
    }

    fn required_settings(&self) -> &'static [&'static str] {
        &["app_key"]
    }

    fn required_secrets(&self) -> &'static [&'static str] {
        &["app_secret", "session"]
    }

    fn polling(&self) -> Option<&dyn PollingSource> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl PollingSource for Taobao {
    fn platform(&self) -> &'static str {
        "taobao"
    }

    fn default_base_url(&self, _settings: &Map<String, Value>) -> Option<String> {
        Some(GATEWAY.to_owned())
    }

    fn resources(&self) -> &'static [Resource] {
        &[Resource::Orders]
    }

    fn start_cursor(&self, _resource: Resource, since: Option<DateTime<Utc>>) -> Value {
        Cursor::new(Step::Begin {
            from: since.map(whole_seconds),
        })
        .to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if resource != Resource::Orders {
            return Err(ConnectorError::Permanent(format!(
                "taobao has no {} resource",
                resource.as_str()
            )));
        }
        let mut cursor: Cursor = serde_json::from_value(cursor.clone()).map_err(|_| {
            ConnectorError::Permanent("the cursor is not a taobao orders cursor".to_owned())
        })?;
        let top = Top::new(api)?;
        let options = Options::new(api);
        // Confirm-after-commit: these ids came with the previous page, which
        // the hub has committed together with this cursor.
        if !cursor.confirm.is_empty() {
            top.confirm(&options, &cursor.confirm).await?;
            cursor.confirm.clear();
        }
        Sweep {
            top,
            options,
            now: whole_seconds(api.now),
        }
        .step(cursor)
        .await
    }
}

// --- signing --------------------------------------------------------------

/// The three TOP signature methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignMethod {
    Md5,
    HmacMd5,
    HmacSha256,
}

impl SignMethod {
    pub(super) fn parse(name: &str) -> Option<SignMethod> {
        match name.trim() {
            "md5" => Some(SignMethod::Md5),
            "hmac" => Some(SignMethod::HmacMd5),
            "hmac-sha256" => Some(SignMethod::HmacSha256),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::HmacMd5 => "hmac",
            SignMethod::HmacSha256 => "hmac-sha256",
        }
    }
}

/// The `sign` of a parameter set: sorted `key` + `value` pairs (without
/// `sign` itself) digested with the app secret, as upper-case hex.
pub(super) fn sign(method: SignMethod, secret: &[u8], params: &BTreeMap<String, String>) -> String {
    let mut text = Vec::new();
    for (key, value) in params.iter().filter(|(k, _)| k.as_str() != "sign") {
        text.extend_from_slice(key.as_bytes());
        text.extend_from_slice(value.as_bytes());
    }
    let digest: Vec<u8> = match method {
        SignMethod::Md5 => {
            let mut md5 = Md5::new();
            md5.update(secret);
            md5.update(&text);
            md5.update(secret);
            md5.finalize().to_vec()
        }
        SignMethod::HmacMd5 => {
            let mut mac =
                Hmac::<Md5>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(&text);
            mac.finalize().into_bytes().to_vec()
        }
        SignMethod::HmacSha256 => hmac_sha256(secret, &text).to_vec(),
    };
    hex::encode_upper(digest)
}

// --- errors ---------------------------------------------------------------

/// TOP's `error_response`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TopError {
    code: Option<Scalar>,
    msg: Option<String>,
    sub_code: Option<String>,
    sub_msg: Option<String>,
}

impl TopError {
    fn code(&self) -> Option<i64> {
        self.code.as_ref()?.text()?.parse().ok()
    }

    fn sub_code(&self) -> &str {
        self.sub_code.as_deref().map(str::trim).unwrap_or_default()
    }

    /// A business error about the requested object (`isv.*`), such as a
    /// trade that does not exist.
    fn is_business(&self) -> bool {
        self.sub_code().starts_with("isv.")
    }

    /// Classifies the error. The message names the method and TOP's codes,
    /// never `sub_msg`, which can repeat request values.
    pub(super) fn classify(&self, method: &str) -> ConnectorError {
        let code = self.code();
        let sub = self.sub_code();
        let describe = || {
            let mut text = format!("{method}: TOP error {}", code.unwrap_or_default());
            if let Some(msg) = self.msg.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
                text.push(' ');
                text.push_str(msg);
            }
            if !sub.is_empty() {
                text.push_str(&format!(" ({sub})"));
            }
            text
        };
        // 4..=8: user, session, partner and app call limits and frequency.
        if matches!(code, Some(4..=8))
            || sub.starts_with("accesscontrol.")
            || sub == "isp.call-limited"
        {
            return ConnectorError::RateLimited {
                retry_after: ban_duration(self.sub_msg.as_deref()),
            };
        }
        // 11..=13 insufficient ISV/user/partner permissions, 25 invalid
        // signature (wrong app secret), 26/27/53 missing or invalid session,
        // 28/29 app key, 42 short authorisation, 44 invalid access token.
        if matches!(code, Some(11..=13 | 25..=29 | 42 | 44 | 53))
            || matches!(
                sub,
                "invalid-sessionkey" | "session-expired" | "session-not-exist"
            )
        {
            return ConnectorError::Unauthorized(describe());
        }
        // `isp.*` are platform faults TOP says to retry later; 10 is
        // "Service Currently Unavailable", 15 and 520 remote service errors
        // unless a business sub code says the request itself was refused.
        if sub.starts_with("isp.")
            || code == Some(10)
            || (matches!(code, Some(15 | 520)) && !self.is_business())
        {
            return ConnectorError::Transient(describe());
        }
        ConnectorError::Permanent(describe())
    }
}

/// The ban TOP announces in `sub_msg`: "This ban will last for 2 more seconds".
fn ban_duration(sub_msg: Option<&str>) -> Option<Duration> {
    let msg = sub_msg?;
    let rest = &msg[msg.find("last for ")? + "last for ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Duration::from_secs)
}

fn malformed(method: &str, what: &str) -> ConnectorError {
    ConnectorError::Malformed(format!("{method}: {what}"))
}

// --- calls ----------------------------------------------------------------

/// A signed TOP client for one connection.
struct Top<'a> {
    api: &'a Api<'a>,
    app_key: &'a str,
    secret: &'a str,
    session: &'a str,
    sign_method: SignMethod,
}

impl<'a> Top<'a> {
    fn new(api: &'a Api<'a>) -> Result<Top<'a>, ConnectorError> {
        let app_key = api.setting("app_key").ok_or_else(|| {
            ConnectorError::Unauthorized("settings.app_key is not set".to_owned())
        })?;
        let sign_method = match api.setting("sign_method") {
            None => SignMethod::HmacSha256,
            Some(name) => SignMethod::parse(name).ok_or_else(|| {
                ConnectorError::Permanent(
                    "settings.sign_method must be md5, hmac or hmac-sha256".to_owned(),
                )
            })?,
        };
        Ok(Top {
            api,
            app_key,
            secret: api.require_secret("app_secret")?,
            session: api.require_secret("session")?,
            sign_method,
        })
    }

    /// System and API parameters with their `sign`; empty values are left
    /// out, as the TOP SDKs do.
    fn signed_params(&self, method: &str, params: &[(&str, String)]) -> BTreeMap<String, String> {
        let system = [
            ("method", method.to_owned()),
            ("app_key", self.app_key.to_owned()),
            ("session", self.session.to_owned()),
            ("timestamp", mapping::format_top_time(self.api.now)),
            ("format", "json".to_owned()),
            ("v", "2.0".to_owned()),
            ("sign_method", self.sign_method.as_str().to_owned()),
        ];
        let mut all: BTreeMap<String, String> = system
            .into_iter()
            .chain(params.iter().map(|(k, v)| (*k, v.clone())))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let signature = sign(self.sign_method, self.secret.as_bytes(), &all);
        all.insert("sign".to_owned(), signature);
        all
    }

    /// One call: the method's answer object, or TOP's own error unclassified.
    async fn call_top(
        &self,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Result<Value, TopError>, ConnectorError> {
        let form = self.signed_params(method, params);
        let response = http::send(self.api.http.post(&self.api.base_url).form(&form)).await?;
        let body: Value = http::json(http::check_status(response)?).await?;
        if let Some(error) = body.get("error_response") {
            let error: TopError = serde_json::from_value(error.clone())
                .map_err(|_| malformed(method, "unreadable error_response"))?;
            return Ok(Err(error));
        }
        let key = response_key(method);
        match body.get(&key) {
            Some(answer) if answer.is_object() => Ok(Ok(answer.clone())),
            _ => Err(malformed(
                method,
                &format!("the answer has no {key} object"),
            )),
        }
    }

    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, ConnectorError> {
        self.call_top(method, params)
            .await?
            .map_err(|e| e.classify(method))
    }

    async fn list(&self, query: &ListQuery<'_>) -> Result<ListPage, ConnectorError> {
        let mut params = vec![
            ("fields", LIST_FIELDS.to_owned()),
            ("start_modified", mapping::format_top_time(query.start)),
            ("end_modified", mapping::format_top_time(query.end)),
            ("page_no", query.page_no.to_string()),
            ("page_size", query.page_size.to_string()),
            ("use_has_next", query.use_has_next.to_string()),
        ];
        if let Some(types) = query.types {
            params.push(("type", types.to_owned()));
        }
        let answer = self.call(LIST_METHOD, &params).await?;
        let trades = items(answer.get("trades"), "trade")
            .iter()
            .map(|item| {
                let listed: ListedTrade = serde_json::from_value(item.clone())
                    .map_err(|_| malformed(LIST_METHOD, "a trade entry has an unexpected shape"))?;
                let tid = listed
                    .tid
                    .as_ref()
                    .and_then(Scalar::text)
                    .ok_or_else(|| malformed(LIST_METHOD, "a trade entry has no tid"))?;
                let modified = listed
                    .modified
                    .as_deref()
                    .and_then(mapping::parse_top_time)
                    .ok_or_else(|| {
                        malformed(LIST_METHOD, "a trade entry has no readable modified")
                    })?;
                Ok(Listed { tid, modified })
            })
            .collect::<Result<Vec<_>, ConnectorError>>()?;
        let total = match answer.get("total_results") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| malformed(LIST_METHOD, "total_results is not a count"))?,
            ),
        };
        Ok(ListPage {
            has_next: answer
                .get("has_next")
                .and_then(|v| v.as_bool().or_else(|| v.as_str().map(|s| s == "true")))
                .unwrap_or(false),
            total,
            trades,
        })
    }

    /// The full trade, or `None` when TOP says it does not exist (or, with
    /// `tolerant`, refuses it with any business error: TMC can name trades
    /// of other shops when a message group is shared).
    async fn full_trade(
        &self,
        tid: &str,
        tolerant: bool,
    ) -> Result<Option<SourceRecord>, ConnectorError> {
        let params = [("fields", TRADE_FIELDS.to_owned()), ("tid", tid.to_owned())];
        let answer = match self.call_top(FULLINFO_METHOD, &params).await? {
            Ok(answer) => answer,
            Err(e) if e.sub_code() == "isv.trade-not-exist" || (tolerant && e.is_business()) => {
                return Ok(None)
            }
            Err(e) => return Err(e.classify(FULLINFO_METHOD)),
        };
        let trade = answer
            .get("trade")
            .ok_or_else(|| malformed(FULLINFO_METHOD, "the answer has no trade"))?;
        let record = mapping::parse_trade(trade)
            .and_then(|t| mapping::trade_record(&t))
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        Ok(Some(record))
    }

    /// Full trades for `tids` in order, each fetched once.
    async fn full_trades(
        &self,
        tids: Vec<String>,
        tolerant: bool,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        for tid in tids {
            if seen.insert(tid.clone()) {
                records.extend(self.full_trade(&tid, tolerant).await?);
            }
        }
        Ok(records)
    }

    /// One TMC batch; messages without an id cannot be confirmed and are dropped.
    async fn consume(
        &self,
        options: &Options<'_>,
    ) -> Result<Vec<(String, TmcMessage)>, ConnectorError> {
        let mut params = vec![("quantity", TMC_QUANTITY.to_string())];
        if let Some(group) = options.tmc_group {
            params.push(("group_name", group.to_owned()));
        }
        let answer = self.call(CONSUME_METHOD, &params).await?;
        Ok(items(answer.get("messages"), "tmc_message")
            .iter()
            .filter_map(|item| serde_json::from_value::<TmcMessage>(item.clone()).ok())
            .filter_map(|m| Some((m.id.as_ref()?.text()?, m)))
            .collect())
    }

    async fn confirm(&self, options: &Options<'_>, ids: &[String]) -> Result<(), ConnectorError> {
        let mut params = vec![("s_message_ids", ids.join(","))];
        if let Some(group) = options.tmc_group {
            params.push(("group_name", group.to_owned()));
        }
        let answer = self.call(CONFIRM_METHOD, &params).await?;
        if answer.get("is_success") == Some(&Value::Bool(false)) {
            return Err(ConnectorError::Transient(format!(
                "{CONFIRM_METHOD}: TOP did not accept the confirmation"
            )));
        }
        Ok(())
    }
}

/// `taobao.trades.sold.increment.get` -> `trades_sold_increment_get_response`.
pub(super) fn response_key(method: &str) -> String {
    let name = method.strip_prefix("taobao.").unwrap_or(method);
    format!("{}_response", name.replace('.', "_"))
}

/// A TOP list: `{"<inner>": [...]}` in standard JSON, a plain array when
/// simplified, absent or `{}` when empty.
pub(super) fn items<'v>(value: Option<&'v Value>, inner: &str) -> &'v [Value] {
    match value {
        Some(Value::Array(list)) => list,
        Some(Value::Object(object)) => match object.get(inner) {
            Some(Value::Array(list)) => list,
            _ => &[],
        },
        _ => &[],
    }
}

struct ListQuery<'a> {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    page_no: u32,
    page_size: u32,
    use_has_next: bool,
    types: Option<&'a str>,
}

struct Listed {
    tid: String,
    modified: DateTime<Utc>,
}

/// The listed tids not returned already.
fn unseen(trades: &[Listed], skip: &[String]) -> Vec<String> {
    trades
        .iter()
        .filter(|t| !skip.contains(&t.tid))
        .map(|t| t.tid.clone())
        .collect()
}

struct ListPage {
    trades: Vec<Listed>,
    has_next: bool,
    total: Option<u64>,
}

/// Optional settings.
struct Options<'a> {
    tmc: bool,
    tmc_group: Option<&'a str>,
    trade_types: Option<&'a str>,
}

impl<'a> Options<'a> {
    fn new(api: &'a Api<'a>) -> Options<'a> {
        let tmc = match api.settings.get("tmc_enabled") {
            Some(Value::Bool(enabled)) => *enabled,
            Some(Value::String(s)) => !matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "false" | "off" | "no" | "0"
            ),
            _ => true,
        };
        Options {
            tmc,
            tmc_group: api.setting("tmc_group").map(str::trim),
            trade_types: api.setting("trade_types").map(str::trim),
        }
    }
}

// --- cursor ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    #[serde(flatten)]
    pub(super) step: Step,
    /// The end of the last completed window walk: the next sweep starts
    /// [`LOOKBACK`] before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) watermark: Option<DateTime<Utc>>,
    /// TMC message ids to confirm at the start of the next call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) confirm: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(super) enum Step {
    Begin {
        from: Option<DateTime<Utc>>,
    },
    Window {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        /// `to` is the sweep's present: the window walk ends with this window.
        last: bool,
        /// Everything in `(upper, to]` has been returned.
        upper: DateTime<Utc>,
        /// Trades already returned whose `modified` is `upper`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skip: Vec<String>,
    },
    Tie {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        last: bool,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skip: Vec<String>,
        /// Pages of `[lo, hi]` once counted; `page` is the next to read.
        pages: Option<u32>,
        page: u32,
    },
    Drain {
        batches: u32,
        closing: bool,
    },
}

impl Cursor {
    fn new(step: Step) -> Cursor {
        Cursor {
            step,
            watermark: None,
            confirm: Vec::new(),
        }
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// Everything modified before this instant has been returned.
    fn seen_until(&self) -> Option<DateTime<Utc>> {
        let progress = match &self.step {
            Step::Begin { from } => *from,
            Step::Window { from, .. } | Step::Tie { from, .. } => Some(*from),
            Step::Drain { .. } => None,
        };
        progress.max(self.watermark)
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn lookback() -> TimeDelta {
    TimeDelta::from_std(LOOKBACK).unwrap_or(TimeDelta::minutes(5))
}

/// One poll call's worth of work.
struct Sweep<'a> {
    top: Top<'a>,
    options: Options<'a>,
    now: DateTime<Utc>,
}

impl Sweep<'_> {
    fn horizon(&self) -> DateTime<Utc> {
        self.now - HORIZON
    }

    async fn step(&self, cursor: Cursor) -> Result<Page, ConnectorError> {
        let watermark = cursor.watermark;
        match cursor.step {
            Step::Begin { from } => {
                let from = from.unwrap_or_else(|| self.horizon()).max(self.horizon());
                if from >= self.now {
                    // Nothing can have changed after now: wait for the next sweep.
                    let cursor = Cursor {
                        step: Step::Begin { from: Some(from) },
                        watermark,
                        confirm: Vec::new(),
                    };
                    return Ok(page(Vec::new(), cursor, true));
                }
                let to = (from + WINDOW).min(self.now);
                let window = WindowState {
                    from,
                    to,
                    last: to == self.now,
                    upper: to,
                    skip: Vec::new(),
                };
                self.read_window(window, watermark).await
            }
            Step::Window {
                from,
                to,
                last,
                upper,
                skip,
            } => {
                let window = WindowState {
                    from,
                    to,
                    last,
                    upper,
                    skip,
                };
                self.read_window(window, watermark).await
            }
            Step::Tie {
                from,
                to,
                last,
                lo,
                hi,
                skip,
                pages,
                page: next,
            } => {
                let tie = TieState {
                    window: WindowState {
                        from,
                        to,
                        last,
                        upper: hi,
                        skip,
                    },
                    lo,
                    hi,
                    pages,
                    page: next,
                };
                self.read_tie(tie, watermark).await
            }
            Step::Drain { batches, closing } => self.drain(batches, closing, watermark).await,
        }
    }

    /// One top-down page of a window.
    async fn read_window(
        &self,
        mut w: WindowState,
        watermark: Option<DateTime<Utc>>,
    ) -> Result<Page, ConnectorError> {
        // Trades older than the horizon are gone from the API.
        let lo = w.from.max(self.horizon());
        if w.upper < lo {
            return Ok(self.window_done(&w, Vec::new(), watermark));
        }
        if w.upper == lo {
            // Only the window's first second is left (TOP needs end > start):
            // read it as a tie.
            let tie = TieState::new(w, lo, lo + ONE_SECOND);
            return self.read_tie(tie, watermark).await;
        }
        let listed = self
            .top
            .list(&ListQuery {
                start: lo,
                end: w.upper,
                page_no: 1,
                page_size: PAGE_SIZE,
                use_has_next: true,
                types: self.options.trade_types,
            })
            .await?;
        let records = self
            .top
            .full_trades(unseen(&listed.trades, &w.skip), false)
            .await?;
        if !listed.has_next {
            return Ok(self.window_done(&w, records, watermark));
        }
        let oldest = listed.trades.iter().map(|t| t.modified).min();
        let newest = listed.trades.iter().map(|t| t.modified).max();
        let (Some(oldest), Some(newest)) = (oldest, newest) else {
            return Err(malformed(LIST_METHOD, "has_next is true on an empty page"));
        };
        if oldest == newest || oldest >= w.upper {
            // A full page within one second: time cannot split it further.
            let second = oldest.clamp(lo, w.upper);
            for t in listed.trades.iter().filter(|t| t.modified == second) {
                if !w.skip.contains(&t.tid) {
                    w.skip.push(t.tid.clone());
                }
            }
            let (tie_lo, tie_hi) = if second > lo {
                (second - ONE_SECOND, second)
            } else {
                (second, second + ONE_SECOND)
            };
            let cursor = Cursor {
                step: TieState::new(w, tie_lo, tie_hi).into_step(),
                watermark,
                confirm: Vec::new(),
            };
            return Ok(page(records, cursor, false));
        }
        let cursor = Cursor {
            step: Step::Window {
                from: w.from,
                to: w.to,
                last: w.last,
                upper: oldest,
                skip: listed
                    .trades
                    .iter()
                    .filter(|t| t.modified == oldest)
                    .map(|t| t.tid.clone())
                    .collect(),
            },
            watermark,
            confirm: Vec::new(),
        };
        Ok(page(records, cursor, false))
    }

    /// One page of crowded seconds, counted first, then read from the last
    /// page back to page 1.
    async fn read_tie(
        &self,
        mut tie: TieState,
        watermark: Option<DateTime<Utc>>,
    ) -> Result<Page, ConnectorError> {
        let query = |page_no: u32| ListQuery {
            start: tie.lo,
            end: tie.hi,
            page_no,
            page_size: PAGE_SIZE,
            use_has_next: false,
            types: self.options.trade_types,
        };
        let (listed, done) = match tie.pages {
            None => {
                let listed = self.top.list(&query(1)).await?;
                let total = listed
                    .total
                    .ok_or_else(|| malformed(LIST_METHOD, "total_results is missing"))?;
                let pages = total.div_ceil(u64::from(PAGE_SIZE));
                if pages <= 1 {
                    (listed.trades, true)
                } else {
                    // Page 1 is read again last; the count call's trades wait until then.
                    let pages = u32::try_from(pages)
                        .map_err(|_| malformed(LIST_METHOD, "total_results is out of range"))?;
                    tie.pages = Some(pages);
                    tie.page = pages;
                    let cursor = Cursor {
                        step: tie.into_step(),
                        watermark,
                        confirm: Vec::new(),
                    };
                    return Ok(page(Vec::new(), cursor, false));
                }
            }
            Some(_) => {
                let page_no = tie.page.max(1);
                let listed = self.top.list(&query(page_no)).await?;
                tie.page = page_no - 1;
                (listed.trades, page_no == 1)
            }
        };
        let records = self
            .top
            .full_trades(unseen(&listed, &tie.window.skip), false)
            .await?;
        if !done {
            let cursor = Cursor {
                step: tie.into_step(),
                watermark,
                confirm: Vec::new(),
            };
            return Ok(page(records, cursor, false));
        }
        // The crowded seconds are complete: continue below them.
        let mut w = tie.window;
        w.upper = tie.lo - ONE_SECOND;
        w.skip.clear();
        if w.upper < w.from.max(self.horizon()) {
            return Ok(self.window_done(&w, records, watermark));
        }
        let cursor = Cursor {
            step: w.into_step(),
            watermark,
            confirm: Vec::new(),
        };
        Ok(page(records, cursor, false))
    }

    /// The page that completes window `w`.
    fn window_done(
        &self,
        w: &WindowState,
        records: Vec<SourceRecord>,
        watermark: Option<DateTime<Utc>>,
    ) -> Page {
        if !w.last {
            let cursor = Cursor {
                step: Step::Begin {
                    from: Some(w.to + ONE_SECOND),
                },
                watermark,
                confirm: Vec::new(),
            };
            return page(records, cursor, false);
        }
        let watermark = Some(w.to);
        if self.options.tmc {
            let cursor = Cursor {
                step: Step::Drain {
                    batches: 0,
                    closing: false,
                },
                watermark,
                confirm: Vec::new(),
            };
            return page(records, cursor, false);
        }
        page(records, next_sweep(watermark), true)
    }

    /// One TMC batch: its trades now, its confirmation on the next call.
    async fn drain(
        &self,
        batches: u32,
        closing: bool,
        watermark: Option<DateTime<Utc>>,
    ) -> Result<Page, ConnectorError> {
        if closing || !self.options.tmc {
            return Ok(page(Vec::new(), next_sweep(watermark), true));
        }
        let messages = self.top.consume(&self.options).await?;
        if messages.is_empty() {
            return Ok(page(Vec::new(), next_sweep(watermark), true));
        }
        let tids: Vec<String> = messages
            .iter()
            .filter_map(|(_, m)| mapping::message_tid(m))
            .collect();
        let records = self.top.full_trades(tids, true).await?;
        let closing = messages.len() < TMC_QUANTITY || batches + 1 >= MAX_DRAIN_BATCHES;
        let cursor = Cursor {
            step: Step::Drain {
                batches: batches + 1,
                closing,
            },
            watermark,
            confirm: messages.into_iter().map(|(id, _)| id).collect(),
        };
        Ok(page(records, cursor, false))
    }
}

/// The cursor that starts the next sweep [`LOOKBACK`] before `watermark`.
fn next_sweep(watermark: Option<DateTime<Utc>>) -> Cursor {
    Cursor {
        step: Step::Begin {
            from: watermark.map(|w| w - lookback()),
        },
        watermark,
        confirm: Vec::new(),
    }
}

fn page(records: Vec<SourceRecord>, cursor: Cursor, caught_up: bool) -> Page {
    Page {
        records,
        watermark: cursor.seen_until(),
        cursor: cursor.to_value(),
        caught_up,
        pace: None,
    }
}

struct WindowState {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    last: bool,
    upper: DateTime<Utc>,
    skip: Vec<String>,
}

impl WindowState {
    fn into_step(self) -> Step {
        Step::Window {
            from: self.from,
            to: self.to,
            last: self.last,
            upper: self.upper,
            skip: self.skip,
        }
    }
}

struct TieState {
    window: WindowState,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    pages: Option<u32>,
    page: u32,
}

impl TieState {
    fn new(window: WindowState, lo: DateTime<Utc>, hi: DateTime<Utc>) -> TieState {
        TieState {
            window,
            lo,
            hi,
            pages: None,
            page: 0,
        }
    }

    fn into_step(self) -> Step {
        Step::Tie {
            from: self.window.from,
            to: self.window.to,
            last: self.window.last,
            lo: self.lo,
            hi: self.hi,
            skip: self.window.skip,
            pages: self.pages,
            page: self.page,
        }
    }
}
