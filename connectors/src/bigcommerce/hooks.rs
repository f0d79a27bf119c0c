//! Registering the hub's webhooks (`/v3/hooks`) with the secret header that
//! [`verify`](crate::WebhookSource::verify) requires.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::webhook::WEBHOOK_SECRET_HEADER;
use crate::http::{check_status, json, send};
use crate::poll::{Api, ConnectorError};

/// Scopes whose callbacks the hub turns into fetches (see `references`).
pub const DEFAULT_SCOPES: &[&str] = &["store/order/*", "store/customer/*"];

/// A bound on `/v3/hooks` pages read.
const MAX_HOOK_PAGES: u32 = 20;

/// What [`ensure_webhooks`] found or did for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookChange {
    /// A hook of this scope to the destination was created.
    Created { scope: String, id: u64 },
    /// One existed but was inactive or sent another secret; it was updated.
    Updated { scope: String, id: u64 },
    /// One existed, active and with the current secret.
    Existing { scope: String, id: u64 },
}

#[derive(Debug, Deserialize)]
struct HookList {
    #[serde(default)]
    data: Vec<Hook>,
    meta: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct HookOne {
    data: Hook,
}

#[derive(Debug, Deserialize)]
struct Hook {
    id: u64,
    scope: String,
    destination: String,
    #[serde(default)]
    is_active: bool,
    headers: Option<Value>,
}

/// Makes sure the store sends each of `scopes` to `destination` (an HTTPS
/// URL on port 443, as BigCommerce requires) with the header
/// `X-Shophub-Webhook-Secret: <secrets.webhook_secret>`: lists the token's
/// hooks, creates the missing ones, re-activates or re-keys stale ones
/// (after a secret rotation), and reports each scope in the order given.
/// Hooks to other destinations are left alone.
pub async fn ensure_webhooks(
    api: &Api<'_>,
    destination: &str,
    scopes: &[&str],
) -> Result<Vec<WebhookChange>, ConnectorError> {
    let secret = api.require_secret("webhook_secret")?;
    let mut existing: Vec<Hook> = Vec::new();
    for page in 1..=MAX_HOOK_PAGES {
        let query = [("page", page.to_string()), ("limit", "250".to_owned())];
        let response = request(api, Method::GET, "/v3/hooks", &query, None).await?;
        let list: HookList = json(response).await?;
        let total_pages = list
            .meta
            .as_ref()
            .and_then(|m| m.pointer("/pagination/total_pages"))
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let empty = list.data.is_empty();
        existing.extend(
            list.data
                .into_iter()
                .filter(|h| h.destination == destination),
        );
        if empty || u64::from(page) >= total_pages {
            break;
        }
        if page == MAX_HOOK_PAGES {
            return Err(ConnectorError::Permanent(
                "the store lists more hooks than this client reads".to_owned(),
            ));
        }
    }

    let headers = json!({ WEBHOOK_SECRET_HEADER: secret });
    let mut changes = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let found = existing.iter().find(|h| h.scope == *scope);
        let change = match found {
            Some(hook) if hook.is_active && sends_secret(hook, secret) => WebhookChange::Existing {
                scope: scope.to_string(),
                id: hook.id,
            },
            Some(hook) => {
                let body = json!({ "is_active": true, "headers": headers });
                let path = format!("/v3/hooks/{}", hook.id);
                request(api, Method::PUT, &path, &[], Some(body)).await?;
                WebhookChange::Updated {
                    scope: scope.to_string(),
                    id: hook.id,
                }
            }
            None => {
                let body = json!({
                    "scope": scope,
                    "destination": destination,
                    "is_active": true,
                    "headers": headers,
                });
                let response = request(api, Method::POST, "/v3/hooks", &[], Some(body)).await?;
                let created: HookOne = json(response).await?;
                WebhookChange::Created {
                    scope: scope.to_string(),
                    id: created.data.id,
                }
            }
        };
        changes.push(change);
    }
    Ok(changes)
}

fn sends_secret(hook: &Hook, secret: &str) -> bool {
    hook.headers
        .as_ref()
        .and_then(Value::as_object)
        .is_some_and(|h| {
            h.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case(WEBHOOK_SECRET_HEADER) && value.as_str() == Some(secret)
            })
        })
}

async fn request(
    api: &Api<'_>,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> Result<reqwest::Response, ConnectorError> {
    let token = api.require_secret("access_token")?;
    let url = format!("{}{path}", api.base_url.trim_end_matches('/'));
    let mut builder = api
        .http
        .request(method, url)
        .query(query)
        .header("X-Auth-Token", token)
        .header(http::header::ACCEPT, "application/json");
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    check_status(send(builder).await?)
}
