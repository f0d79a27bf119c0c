//! The OAuth authorization code grant that installs the hub as a Shopify app
//! on a shop and yields the `access_token` polling needs.
//!
//! 1. [`install_url`]: send the merchant to
//!    `https://{shop}/admin/oauth/authorize?client_id=…&scope=…&redirect_uri=…&state=…`
//!    (offline access: no `grant_options[]`).
//! 2. Shopify redirects back with `code`, `hmac`, `host`, `shop`, `state`,
//!    `timestamp`: [`verify_callback`] (or the bare [`verify_query_hmac`])
//!    checks the HMAC, the shop domain, the state and the timestamp.
//! 3. [`exchange_code`] (or [`exchange_code_expiring`]) posts the code to
//!    `https://{shop}/admin/oauth/access_token`; [`refresh_access_token`]
//!    renews an expiring token.
//!
//! Every address is built from a shop domain that passed
//! [`valid_shop_domain`]: the `shop` parameter arrives from the browser, and
//! an unchecked value would send the client secret to an attacker's host.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::http::{check_status, send};
use crate::poll::{Api, ConnectorError};
use crate::signature::{constant_time_eq, verify_hex_hmac_sha256};

/// How far a callback's `timestamp` may be from the hub's clock (the
/// tolerance Shopify's own app libraries use).
pub const CALLBACK_TOLERANCE_SECS: i64 = 90;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("the shop domain is not a <name>.myshopify.com hostname")]
    InvalidShopDomain,
    #[error("redirect_uri is not an absolute http(s) URL")]
    InvalidRedirectUri,
    #[error("{0} is missing or empty")]
    Missing(&'static str),
    #[error("the hmac does not match")]
    BadHmac,
    #[error("the timestamp is missing or too far from now")]
    Stale,
    #[error("the state does not match the one this install started with")]
    StateMismatch,
}

/// Whether `domain` is exactly a `<name>.myshopify.com` hostname: a name of
/// letters, digits and inner hyphens, no port, path, user info or trailing
/// dot. The only hosts the hub sends credentials to.
pub fn valid_shop_domain(domain: &str) -> bool {
    let lower = domain.to_ascii_lowercase();
    let Some(name) = lower.strip_suffix(".myshopify.com") else {
        return false;
    };
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The authorisation page to send the merchant to. `scopes` such as
/// `read_orders`, `read_customers`; `state` a fresh nonce the callback must
/// return.
pub fn install_url(
    shop_domain: &str,
    client_id: &str,
    scopes: &[&str],
    redirect_uri: &str,
    state: &str,
) -> Result<String, OAuthError> {
    if !valid_shop_domain(shop_domain) {
        return Err(OAuthError::InvalidShopDomain);
    }
    if client_id.trim().is_empty() {
        return Err(OAuthError::Missing("client_id"));
    }
    if state.is_empty() {
        return Err(OAuthError::Missing("state"));
    }
    let redirect = reqwest::Url::parse(redirect_uri).map_err(|_| OAuthError::InvalidRedirectUri)?;
    if !matches!(redirect.scheme(), "https" | "http") || redirect.host_str().is_none() {
        return Err(OAuthError::InvalidRedirectUri);
    }
    let scope = scopes
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    Ok(format!(
        "https://{}/admin/oauth/authorize?client_id={}&scope={}&redirect_uri={}&state={}",
        shop_domain.to_ascii_lowercase(),
        encode(client_id.trim()),
        encode(&scope),
        encode(redirect_uri),
        encode(state),
    ))
}

/// Whether the `hmac` parameter of a query string Shopify sent (install
/// launch or OAuth callback; with or without the leading `?`) is the
/// lower-case hex HMAC-SHA256, under `client_secret`, of the other
/// parameters: `hmac` and the legacy `signature` removed, the decoded pairs
/// sorted by key, written `key=value` and joined with `&`.
///
/// Keys and values are written form-encoded (unreserved characters as they
/// are, a space as `%20`), as Shopify's own app libraries do; for the usual
/// parameters (hex codes, domains, digits, base64 `host`) this is the plain
/// decoded text. A repeated key is one pair with its values joined by `,`.
/// The digest is compared in constant time.
pub fn verify_query_hmac(query: &str, client_secret: &str) -> bool {
    match signed_params(query) {
        Some(signed) => verify_hex_hmac_sha256(
            &[client_secret.as_bytes()],
            signed.message.as_bytes(),
            &signed.hmac,
        ),
        None => false,
    }
}

/// A verified OAuth callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The `<name>.myshopify.com` domain, lower-cased.
    pub shop: String,
    /// The authorisation code for [`exchange_code`]; single use.
    pub code: String,
    /// Shopify's base64 `host` parameter, when sent.
    pub host: Option<String>,
}

/// Checks an OAuth callback completely: the HMAC under `client_secret`, a
/// valid shop domain, `state` equal to the one the install started with, a
/// `timestamp` within [`CALLBACK_TOLERANCE_SECS`] of `now`, and a `code`.
pub fn verify_callback(
    query: &str,
    client_secret: &str,
    expected_state: &str,
    now: DateTime<Utc>,
) -> Result<Callback, OAuthError> {
    if !verify_query_hmac(query, client_secret) {
        return Err(OAuthError::BadHmac);
    }
    let params = signed_params(query).ok_or(OAuthError::BadHmac)?.pairs;
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let shop = get("shop").ok_or(OAuthError::Missing("shop"))?;
    if !valid_shop_domain(shop) {
        return Err(OAuthError::InvalidShopDomain);
    }
    let state = get("state").ok_or(OAuthError::Missing("state"))?;
    if expected_state.is_empty() || !constant_time_eq(state.as_bytes(), expected_state.as_bytes()) {
        return Err(OAuthError::StateMismatch);
    }
    let timestamp: i64 = get("timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or(OAuthError::Stale)?;
    if (now.timestamp() - timestamp).abs() > CALLBACK_TOLERANCE_SECS {
        return Err(OAuthError::Stale);
    }
    let code = get("code").ok_or(OAuthError::Missing("code"))?;
    Ok(Callback {
        shop: shop.to_ascii_lowercase(),
        code: code.to_owned(),
        host: get("host").map(str::to_owned),
    })
}

/// The token endpoint's answer. `Debug` never prints the tokens.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct AccessToken {
    /// Goes into the connection's `access_token` secret.
    pub access_token: String,
    /// The granted scopes, comma-separated (`read_orders,read_customers`).
    #[serde(default)]
    pub scope: String,
    /// Seconds until an expiring token lapses; `None` for a non-expiring one.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Renews an expiring token through [`refresh_access_token`]; replaced
    /// on every refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_token_expires_in: Option<u64>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"<redacted>")
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .finish()
    }
}

/// Trades a callback's `code` for a non-expiring offline access token
/// (`POST {base}/admin/oauth/access_token`). Shopify accepts non-expiring
/// tokens for custom and merchant-created apps; public apps must use
/// [`exchange_code_expiring`] from 2027-01-01.
pub async fn exchange_code(
    api: &Api<'_>,
    client_id: &str,
    client_secret: &str,
    code: &str,
) -> Result<AccessToken, ConnectorError> {
    let body = json!({ "client_id": client_id, "client_secret": client_secret, "code": code });
    token_request(api, body, Grant::Code).await
}

/// Like [`exchange_code`], asking for an expiring offline token
/// (`expiring=1`): valid for an hour, renewed with its `refresh_token`.
pub async fn exchange_code_expiring(
    api: &Api<'_>,
    client_id: &str,
    client_secret: &str,
    code: &str,
) -> Result<AccessToken, ConnectorError> {
    let body = json!({
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "expiring": "1",
    });
    token_request(api, body, Grant::Code).await
}

/// Renews an expiring offline token. The answer carries a new
/// `refresh_token` that must replace the stored one. A refused refresh
/// token is `Unauthorized`: the merchant has to install the app again.
pub async fn refresh_access_token(
    api: &Api<'_>,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
) -> Result<AccessToken, ConnectorError> {
    let body = json!({
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    });
    token_request(api, body, Grant::Refresh).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Grant {
    Code,
    Refresh,
}

async fn token_request(
    api: &Api<'_>,
    body: serde_json::Value,
    grant: Grant,
) -> Result<AccessToken, ConnectorError> {
    let url = format!(
        "{}/admin/oauth/access_token",
        api.base_url.trim_end_matches('/')
    );
    let request = api
        .http
        .post(url)
        .header(http::header::ACCEPT, "application/json")
        .json(&body);
    let response = send(request).await?;
    if grant == Grant::Refresh && response.status() == reqwest::StatusCode::BAD_REQUEST {
        return Err(ConnectorError::Unauthorized(
            "the refresh token was refused".to_owned(),
        ));
    }
    let token: AccessToken = crate::http::json(check_status(response)?).await?;
    if token.access_token.trim().is_empty() {
        return Err(ConnectorError::Malformed(
            "the token answer has an empty access_token".to_owned(),
        ));
    }
    Ok(token)
}

// --- query strings --------------------------------------------------------

/// A query string taken apart for its HMAC check.
struct Signed {
    /// The `hmac` parameter.
    hmac: String,
    /// The canonical message the `hmac` signs.
    message: String,
    /// The decoded pairs without `hmac` and `signature`, sorted by key,
    /// repeated keys merged.
    pairs: Vec<(String, String)>,
}

/// `None` if the query has no single `hmac` or does not decode.
fn signed_params(query: &str) -> Option<Signed> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut hmac = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let (key, value) = (decode(key)?, decode(value)?);
        match key.as_str() {
            "hmac" if hmac.is_some() => return None,
            "hmac" => hmac = Some(value),
            "signature" => {}
            _ => match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => pairs.push((key, value)),
            },
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let message = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    Some(Signed {
        hmac: hmac?,
        message,
        pairs,
    })
}

/// Form-urlencoding of one component: letters, digits and `*-._` stay,
/// everything else (a space too) becomes `%XX` of its UTF-8 bytes.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Form-urldecoding: `+` is a space, `%XX` a byte; `None` for a broken
/// escape or bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
