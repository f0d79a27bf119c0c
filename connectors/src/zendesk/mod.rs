//! Zendesk Support: signed webhooks treated as thin "this ticket changed"
//! notifications, and polling of ticket comments through the cursor-based
//! incremental ticket export.
//!
//! - `webhook`: signature and timestamp check, dedupe key, the ticket id a
//!   body names.
//! - `client`: the export sweep, comment and user reads, fetching one
//!   ticket, error classification and pacing.
//! - `mapping`: typed API resources and their translation into messages.
//!
//! # Connection
//! - settings: `subdomain` (required: `acme` for `acme.zendesk.com`; the
//!   API lives at `https://{subdomain}.zendesk.com` unless the connection
//!   sets `api_base_url`), `default_region` (optional, for requester phones
//!   without a country code).
//! - secrets: `webhook_secret` (required: the webhook's signing secret, from
//!   "Reveal secret" in Admin Center; `previous_webhook_secret` during a
//!   rotation); for polling and webhook fetches also `email` and
//!   `api_token` (an API token, sent as HTTP Basic `{email}/token:{api_token}`).
//!   Missing keys make every call `Unauthorized` naming the key.
//!
//! # Webhooks
//! Any webhook of the account may point at the hub: event subscriptions
//! (`zen:event-type:ticket.*`, ticket in `detail`) or trigger/automation
//! webhooks whose JSON body names the ticket as `ticket.id`, `ticket_id` or
//! `id` (for example `{"ticket_id": "{{ticket.id}}"}`). A delivery decodes
//! to nothing itself; its reference `(messages, ticket id)` makes the worker
//! call `fetch`, which reads `GET /api/v2/tickets/{id}.json?include=users`
//! and the ticket's comments. A ticket that no longer exists yields no
//! records. Events about users or organisations reference nothing.
//!
//! # Polling (`messages`)
//! One `poll` reads one page of
//! `GET /api/v2/incremental/tickets/cursor.json?start_time=…` (then
//! `?cursor={after_cursor}`) with `per_page=100`, `include=users` and
//! `exclude_deleted=true`, and for each ticket on it
//! `GET /api/v2/tickets/{id}/comments.json?page[size]=100&include=users`
//! (all pages, following `meta.after_cursor` while `meta.has_more`), plus
//! `GET /api/v2/users/show_many.json` for a requester no sideload carried.
//! A sweep ends when the export says `end_of_stream`. Every public comment
//! becomes a message: `conversation_id` = ticket id, `external_id` =
//! comment id, subject = ticket subject, text = `plain_body`, inbound when
//! written by an end user. Internal notes are not emitted. Every message
//! carries the requester's keys (email, phone, Zendesk user id as
//! `customer_id`), agent replies included. Version: the ticket's
//! `updated_at`; occurrence: the comment's `created_at`.
//!
//! # Cursor
//! `{"start_time", "after", "seen", "watermark"}`: `start_time` (Unix
//! seconds) is fixed for a sweep, `after` is the export's cursor within it,
//! `seen` the highest ticket `updated_at` so far; a completed sweep sets
//! `watermark` to it and the next sweep starts `LOOKBACK` before it.
//! `start_cursor(_, None)` starts at 2007-01-01 (before any Zendesk account).
//! A `start_time` is never sent closer than five minutes to the hub's clock
//! (Zendesk refuses too recent starts).
//!
//! # Rate limits
//! 429 is `RateLimited` with `Retry-After`. The incremental endpoints allow
//! 10 requests a minute, so a page that does not end the sweep asks for at
//! least 6 s (`Page::pace`); when `x-rate-limit-remaining` falls under a
//! tenth of `x-rate-limit`, the pace is `ratelimit-reset` (else 60 s).

mod client;
mod mapping;
mod webhook;

#[cfg(test)]
mod tests;

/// The Zendesk connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Zendesk;
