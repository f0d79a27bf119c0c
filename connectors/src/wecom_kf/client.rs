//! Reading the `messages` stream: `gettoken`, then one `sync_msg` page per
//! poll, with WeCom's own cursor.
//!
//! WeCom answers HTTP 200 with an `errcode` in the body for almost every
//! failure; those codes are classified here (global error codes,
//! developer.work.weixin.qq.com/document/path/90313):
//! - `-1` (system busy) → `Transient`;
//! - `40001` (invalid secret), `40013` (invalid CorpID), `40014` (invalid
//!   access_token), `42001` (access_token expired), `48002` (API not
//!   permitted for this app), `60020` (calling IP not trusted) →
//!   `Unauthorized`: each needs someone to fix the connection or the app;
//! - `45009` (API frequency/quota exceeded), `45011` (calls too frequent),
//!   `45033` (too many concurrent calls) → `RateLimited` (WeCom sends no
//!   retry time);
//! - everything else (such as `95000`, invalid `open_kfid`) → `Permanent`.
//!
//! Errors name the call and the code, plus WeCom's short English reason
//! (without its `hint`/IP tail); never the secret or the token, which
//! travel in the URL (transport errors are reported without it).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::mapping::{self, SyncMsgResponse, TokenResponse};
use super::webhook::{APP_SECRET, CORP_ID_SETTING, OPEN_KFID_SETTING};
use super::WecomKf;
use crate::http::{check_status, json, send};
use crate::poll::{Api, ConnectorError, Page, PollingSource, Resource};

/// WeCom's API host.
pub(super) const DEFAULT_BASE_URL: &str = "https://qyapi.weixin.qq.com";
/// `sync_msg`'s default and maximum page size.
pub(super) const LIMIT: u32 = 1000;
/// `voice_format` 0: voice media as AMR.
const VOICE_FORMAT_AMR: u32 = 0;

const RESOURCES: &[Resource] = &[Resource::Messages];

/// The `messages` cursor. See the module documentation of `wecom_kf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// WeCom's `next_cursor`; `None` starts at the oldest kept message.
    #[serde(default)]
    pub(super) next_cursor: Option<String>,
    /// When the last sweep caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) watermark: Option<DateTime<Utc>>,
    /// A callback `Token` the hub may add for one call; never written back.
    #[serde(default, skip_serializing)]
    pub(super) token: Option<String>,
}

impl Cursor {
    pub(super) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({ "next_cursor": null }))
    }

    fn parse(value: &Value) -> Result<Cursor, ConnectorError> {
        if value.is_null() {
            return Ok(Cursor::default());
        }
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent("the messages cursor is not a wecom_kf cursor".to_owned())
        })
    }
}

#[async_trait]
impl PollingSource for WecomKf {
    fn platform(&self) -> &'static str {
        "wecom_kf"
    }

    fn default_base_url(&self, _settings: &Map<String, Value>) -> Option<String> {
        Some(DEFAULT_BASE_URL.to_owned())
    }

    fn resources(&self) -> &'static [Resource] {
        RESOURCES
    }

    fn credentials(&self) -> &'static [&'static str] {
        &[APP_SECRET]
    }

    /// WeCom's stream has no time filter: every start reads what WeCom still
    /// keeps (3 days), whatever `since` is. Re-reading is harmless.
    fn start_cursor(&self, _resource: Resource, _since: Option<DateTime<Utc>>) -> Value {
        Cursor::default().to_value()
    }

    async fn poll(
        &self,
        api: &Api<'_>,
        resource: Resource,
        cursor: &Value,
    ) -> Result<Page, ConnectorError> {
        if resource != Resource::Messages {
            return Err(ConnectorError::Permanent(format!(
                "wecom_kf has no {} to poll",
                resource.as_str()
            )));
        }
        let cursor = Cursor::parse(cursor)?;
        let corp_id = api.setting(CORP_ID_SETTING).ok_or_else(|| {
            ConnectorError::Permanent(format!("settings.{CORP_ID_SETTING} is not set"))
        })?;
        let secret = api.require_secret(APP_SECRET)?;
        let only_kfid = api.setting(OPEN_KFID_SETTING).map(str::trim);

        let access_token = access_token(api, corp_id, secret).await?;
        let response = sync_msg(api, &access_token, &cursor, only_kfid).await?;

        let has_more = response.has_more();
        let next_cursor = response
            .next_cursor
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if has_more && next_cursor.is_none() {
            return Err(ConnectorError::Malformed(
                "sync_msg has_more without next_cursor".to_owned(),
            ));
        }
        let mut records = Vec::new();
        for entry in &response.msg_list {
            if let Some(record) = mapping::message_record(entry, only_kfid, api.default_region)? {
                records.push(record);
            }
        }
        let caught_up = !has_more;
        let watermark = if caught_up {
            Some(cursor.watermark.map_or(api.now, |w| w.max(api.now)))
        } else {
            cursor.watermark
        };
        let next = Cursor {
            next_cursor: next_cursor.or(cursor.next_cursor),
            watermark,
            token: None,
        };
        Ok(Page {
            records,
            cursor: next.to_value(),
            caught_up,
            watermark,
            pace: None,
        })
    }
}

/// `GET /cgi-bin/gettoken?corpid=…&corpsecret=…`.
async fn access_token(
    api: &Api<'_>,
    corp_id: &str,
    secret: &str,
) -> Result<String, ConnectorError> {
    let url = format!("{}/cgi-bin/gettoken", api.base_url.trim_end_matches('/'));
    let request = api
        .http
        .get(url)
        .query(&[("corpid", corp_id), ("corpsecret", secret)]);
    let response: TokenResponse = json(check_status(send(request).await?)?).await?;
    if response.errcode != 0 {
        return Err(classify(
            "gettoken",
            response.errcode,
            response.errmsg.as_deref(),
        ));
    }
    response
        .access_token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ConnectorError::Malformed("gettoken answered no access_token".to_owned()))
}

/// `POST /cgi-bin/kf/sync_msg?access_token=…`: one page after `cursor`.
async fn sync_msg(
    api: &Api<'_>,
    access_token: &str,
    cursor: &Cursor,
    only_kfid: Option<&str>,
) -> Result<SyncMsgResponse, ConnectorError> {
    let url = format!("{}/cgi-bin/kf/sync_msg", api.base_url.trim_end_matches('/'));
    let mut body = Map::new();
    if let Some(next) = cursor.next_cursor.as_deref().filter(|c| !c.is_empty()) {
        body.insert("cursor".into(), json!(next));
    }
    if let Some(token) = cursor.token.as_deref().filter(|t| !t.is_empty()) {
        body.insert("token".into(), json!(token));
    }
    body.insert("limit".into(), json!(LIMIT));
    body.insert("voice_format".into(), json!(VOICE_FORMAT_AMR));
    if let Some(kfid) = only_kfid {
        body.insert("open_kfid".into(), json!(kfid));
    }
    let request = api
        .http
        .post(url)
        .query(&[("access_token", access_token)])
        .json(&body);
    let response: SyncMsgResponse = json(check_status(send(request).await?)?).await?;
    if response.errcode != 0 {
        return Err(classify(
            "sync_msg",
            response.errcode,
            response.errmsg.as_deref(),
        ));
    }
    Ok(response)
}

/// Classifies a non-zero `errcode` (see the module documentation).
pub(super) fn classify(call: &str, errcode: i64, errmsg: Option<&str>) -> ConnectorError {
    // WeCom's errmsg reads "api freq out of limit, hint: [...], from ip: …,
    // more info at …": keep the reason, drop the rest.
    let reason = errmsg
        .and_then(|m| m.split(',').next())
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let what = format!("{call} answered errcode {errcode}{reason}");
    match errcode {
        -1 => ConnectorError::Transient(what),
        40001 | 40013 | 40014 | 42001 | 48002 | 60020 => ConnectorError::Unauthorized(what),
        45009 | 45011 | 45033 => ConnectorError::RateLimited { retry_after: None },
        _ => ConnectorError::Permanent(what),
    }
}
