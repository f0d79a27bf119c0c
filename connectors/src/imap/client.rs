//! One poll of one mailbox: the TLS session, the cursor and the page plan.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::{Response, Status};
use async_imap::{Client, Session};
use chrono::{DateTime, Days, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::mapping;
use crate::email::thread::{OwnAddresses, OWN_ADDRESSES};
use crate::poll::{Api, Page};
use crate::webhook::DecodeContext;
use crate::ConnectorError;

/// IMAPS, RFC 8314.
pub const DEFAULT_PORT: u16 = 993;
pub const DEFAULT_MAILBOX: &str = "INBOX";
/// Messages fetched per page at most.
pub const BATCH: usize = 50;
/// About this many bytes of mail are fetched per page (at least one
/// message, however large).
pub const BATCH_BYTES: u64 = 25 * 1024 * 1024;
/// UIDs searched per page before falling back to an open-ended search.
pub const WINDOW: u32 = 10_000;

type ImapSession = Session<TlsStream<TcpStream>>;

/// Page sizes and time limits of one poll.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    pub batch: usize,
    pub batch_bytes: u64,
    pub window: u32,
    /// TCP connect, TLS handshake and greeting, each.
    pub connect: Duration,
    /// Each command (LOGIN, EXAMINE, SEARCH, the size FETCH).
    pub command: Duration,
    /// The FETCH of the bodies.
    pub fetch: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch: BATCH,
            batch_bytes: BATCH_BYTES,
            window: WINDOW,
            connect: Duration::from_secs(20),
            command: Duration::from_secs(60),
            fetch: Duration::from_secs(300),
        }
    }
}

/// Where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// The mailbox's UIDVALIDITY when `last_uid` was read; `null` before
    /// the first page.
    pub uidvalidity: Option<u32>,
    /// Every message up to this UID has been read.
    pub last_uid: u32,
    /// Mail that arrived before this is not read (a backfill's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl Cursor {
    pub fn start(since: Option<DateTime<Utc>>) -> Self {
        Self {
            uidvalidity: None,
            last_uid: 0,
            since,
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("cursor serialises")
    }

    pub fn from_value(value: &Value) -> Result<Self, ConnectorError> {
        if value.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(value.clone()).map_err(|_| {
            ConnectorError::Permanent(
                "cursor is not an IMAP cursor ({uidvalidity, last_uid})".into(),
            )
        })
    }
}

/// What a connection says about its server and mailbox.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub mailbox: String,
    pub tls_ca_pem: Option<String>,
}

impl Account {
    pub fn from_api(api: &Api<'_>) -> Result<Self, ConnectorError> {
        let setting = |key: &str| api.setting(key).map(str::trim).filter(|v| !v.is_empty());
        let host = setting("host")
            .ok_or_else(|| ConnectorError::Permanent("settings.host is not set".into()))?
            .to_owned();
        let username = api
            .setting("username")
            .ok_or_else(|| ConnectorError::Permanent("settings.username is not set".into()))?
            .to_owned();
        let password = api.require_secret("password")?.to_owned();
        Ok(Self {
            host,
            port: port_setting(api.settings.get("port"))?,
            username,
            password,
            mailbox: setting("mailbox").unwrap_or(DEFAULT_MAILBOX).to_owned(),
            tls_ca_pem: setting("tls_ca_pem").map(str::to_owned),
        })
    }
}

/// The `port` setting: absent means 993; a number or a string of digits.
pub(super) fn port_setting(value: Option<&Value>) -> Result<u16, ConnectorError> {
    let invalid = || ConnectorError::Permanent("settings.port is not a TCP port".into());
    let port = match value {
        None | Some(Value::Null) => return Ok(DEFAULT_PORT),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(DEFAULT_PORT),
        Some(Value::String(s)) => s.trim().parse::<u16>().map_err(|_| invalid())?,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(invalid)?,
        Some(_) => return Err(invalid()),
    };
    if port == 0 {
        return Err(invalid());
    }
    Ok(port)
}

/// The TLS client: the public roots plus the connection's own CA.
pub(super) fn tls_config(extra_ca_pem: Option<&str>) -> Result<ClientConfig, ConnectorError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let unusable =
            || ConnectorError::Permanent("settings.tls_ca_pem holds no usable certificate".into());
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
            let cert = cert.map_err(|_| unusable())?;
            roots.add(cert).map_err(|_| unusable())?;
            added += 1;
        }
        if added == 0 {
            return Err(unusable());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Permanent(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn transient(what: &str, detail: impl Display) -> ConnectorError {
    ConnectorError::Transient(format!("{what}: {detail}"))
}

async fn within<T, E>(
    limit: Duration,
    what: &str,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, ConnectorError> {
    timeout(limit, step)
        .await
        .map_err(|_| transient(what, format!("no answer within {}s", limit.as_secs())))
}

/// A TCP connection, TLS on top, and the server's greeting read.
pub(super) async fn connect(
    account: &Account,
    limits: &Limits,
) -> Result<Client<TlsStream<TcpStream>>, ConnectorError> {
    let config = tls_config(account.tls_ca_pem.as_deref())?;
    let host = account.host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|_| ConnectorError::Permanent("settings.host is not a valid host name".into()))?;
    let tcp = within(
        limits.connect,
        "connecting to the IMAP server",
        TcpStream::connect((host, account.port)),
    )
    .await?
    .map_err(|e| transient("connecting to the IMAP server", e))?;
    let _ = tcp.set_nodelay(true);
    let tls = within(
        limits.connect,
        "TLS handshake with the IMAP server",
        TlsConnector::from(Arc::new(config)).connect(server_name, tcp),
    )
    .await?
    .map_err(|e| transient("TLS handshake with the IMAP server", e))?;
    let mut client = Client::new(tls);
    let greeting = within(
        limits.connect,
        "reading the IMAP greeting",
        client.read_response(),
    )
    .await?
    .map_err(|e| transient("reading the IMAP greeting", e))?
    .ok_or_else(|| transient("reading the IMAP greeting", "connection closed"))?;
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(client),
        Response::Data {
            status: Status::Bye,
            ..
        } => Err(transient("the IMAP server", "refused the connection (BYE)")),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ConnectorError::Permanent(
            "the IMAP server pre-authenticated the connection; refusing to use it".into(),
        )),
        _ => Err(ConnectorError::Malformed(
            "the IMAP server's greeting is not an OK".into(),
        )),
    }
}

/// Server answers that mean "try again later" (RFC 5530 response codes).
fn temporary_refusal(text: &str) -> bool {
    let text = text.to_ascii_uppercase();
    ["UNAVAILABLE", "SERVERBUG", "INUSE", "LIMIT", "OVERQUOTA"]
        .iter()
        .any(|code| text.contains(code))
}

/// Classifies a failed command other than LOGIN.
fn classify(what: &str, error: ImapError) -> ConnectorError {
    match error {
        ImapError::Io(e) => transient(what, e),
        ImapError::ConnectionLost => transient(what, "connection closed"),
        ImapError::Parse(_) => {
            ConnectorError::Malformed(format!("{what}: the server's answer could not be read"))
        }
        ImapError::No(text) | ImapError::Bad(text) if temporary_refusal(&text) => {
            transient(what, "temporarily refused by the server")
        }
        ImapError::No(_) => ConnectorError::Permanent(format!("{what}: refused by the server")),
        ImapError::Bad(_) => {
            ConnectorError::Permanent(format!("{what}: the server called the command invalid"))
        }
        ImapError::Validate(_) => ConnectorError::Permanent(format!(
            "{what}: a setting contains a character IMAP cannot send"
        )),
        _ => ConnectorError::Permanent(format!("{what}: failed")),
    }
}

pub(super) async fn login(
    client: Client<TlsStream<TcpStream>>,
    account: &Account,
    limits: &Limits,
) -> Result<ImapSession, ConnectorError> {
    let what = "IMAP LOGIN";
    match within(
        limits.command,
        what,
        client.login(&account.username, &account.password),
    )
    .await?
    {
        Ok(session) => Ok(session),
        Err((ImapError::No(text), _)) if temporary_refusal(&text) => {
            Err(transient(what, "login temporarily unavailable"))
        }
        Err((ImapError::No(_), _)) => Err(ConnectorError::Unauthorized(
            "the IMAP server refused settings.username with secrets.password".into(),
        )),
        Err((ImapError::Validate(_), _)) => Err(ConnectorError::Unauthorized(
            "settings.username or secrets.password contains a line break".into(),
        )),
        Err((ImapError::Bad(_), _)) => Err(ConnectorError::Permanent(
            "the IMAP server does not accept LOGIN (BAD)".into(),
        )),
        Err((error, _)) => Err(classify(what, error)),
    }
}

/// Which UIDs a page searches and how the cursor moves when all found are
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Search {
    /// Nothing can be there: `from` is at or past `UIDNEXT`.
    Nothing,
    /// `UID {from}:{to}`; every message of the mailbox is at most
    /// `uid_next - 1`.
    Window { from: u32, to: u32, uid_next: u32 },
    /// `UID {from}:*` (the server sent no `UIDNEXT`).
    Open { from: u32 },
}

pub(super) fn search_plan(last_uid: u32, uid_next: Option<u32>, window: u32) -> Search {
    let Some(from) = last_uid.checked_add(1) else {
        return Search::Nothing;
    };
    match uid_next {
        Some(next) if from >= next => Search::Nothing,
        Some(next) => Search::Window {
            from,
            to: from.saturating_add(window.max(1) - 1).min(next - 1),
            uid_next: next,
        },
        None => Search::Open { from },
    }
}

/// The found UIDs at or after `from`, ascending. `n:*` matches the highest
/// UID even when it is below `n`, so the answer is filtered.
pub(super) fn new_uids(found: HashSet<u32>, from: u32) -> Vec<u32> {
    let mut uids: Vec<u32> = found.into_iter().filter(|&uid| uid >= from).collect();
    uids.sort_unstable();
    uids
}

/// A UID set in IMAP syntax, consecutive runs as ranges: `1:3,7,9:10`.
pub(super) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            end = uids[i + 1];
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The longest prefix of `uids` whose sizes add up to at most `budget`
/// bytes, at least one message. Unknown sizes count as zero.
pub(super) fn within_budget(uids: &[u32], sizes: &BTreeMap<u32, u32>, budget: u64) -> usize {
    let mut total = 0u64;
    for (i, uid) in uids.iter().enumerate() {
        total += u64::from(sizes.get(uid).copied().unwrap_or(0));
        if total > budget {
            return i.max(1);
        }
    }
    uids.len()
}

/// `SINCE` wants a date (`1-Jan-2025`) in the server's time zone: the day
/// before the instant covers every zone.
pub(super) fn since_criterion(since: DateTime<Utc>) -> String {
    let day = since
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap_or(since.date_naive());
    format!(" SINCE {}", day.format("%-d-%b-%Y"))
}

async fn search(
    session: &mut ImapSession,
    range: &str,
    since: Option<DateTime<Utc>>,
    limits: &Limits,
) -> Result<HashSet<u32>, ConnectorError> {
    let what = "IMAP UID SEARCH";
    let query = format!(
        "UID {range}{}",
        since.map(since_criterion).unwrap_or_default()
    );
    within(limits.command, what, session.uid_search(query))
        .await?
        .map_err(|e| classify(what, e))
}

/// One fetched message.
pub(super) struct Fetched {
    pub internal_date: Option<DateTime<Utc>>,
    pub body: Vec<u8>,
}

async fn sizes(
    session: &mut ImapSession,
    uids: &[u32],
    limits: &Limits,
) -> Result<BTreeMap<u32, u32>, ConnectorError> {
    let what = "IMAP UID FETCH (RFC822.SIZE)";
    let wanted: HashSet<u32> = uids.iter().copied().collect();
    let step = async {
        let mut stream = session
            .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
            .await?;
        let mut sizes = BTreeMap::new();
        while let Some(fetch) = stream.try_next().await? {
            if let (Some(uid), Some(size)) = (fetch.uid, fetch.size) {
                if wanted.contains(&uid) {
                    sizes.insert(uid, size);
                }
            }
        }
        Ok::<_, ImapError>(sizes)
    };
    within(limits.command, what, step)
        .await?
        .map_err(|e| classify(what, e))
}

async fn bodies(
    session: &mut ImapSession,
    uids: &[u32],
    limits: &Limits,
) -> Result<BTreeMap<u32, Fetched>, ConnectorError> {
    let what = "IMAP UID FETCH (BODY.PEEK[])";
    let wanted: HashSet<u32> = uids.iter().copied().collect();
    let step = async {
        let mut stream = session
            .uid_fetch(uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])")
            .await?;
        let mut fetched = BTreeMap::new();
        while let Some(fetch) = stream.try_next().await? {
            // Unsolicited FETCH answers (flag changes of other messages)
            // come through the same stream.
            let Some(uid) = fetch.uid.filter(|uid| wanted.contains(uid)) else {
                continue;
            };
            let Some(body) = fetch.body() else { continue };
            fetched.insert(
                uid,
                Fetched {
                    internal_date: fetch.internal_date().map(|d| d.with_timezone(&Utc)),
                    body: body.to_vec(),
                },
            );
        }
        Ok::<_, ImapError>(fetched)
    };
    within(limits.fetch, what, step)
        .await?
        .map_err(|e| classify(what, e))
}

/// One page: see the module documentation.
pub(super) async fn poll(
    api: &Api<'_>,
    cursor: &Value,
    limits: &Limits,
) -> Result<Page, ConnectorError> {
    let cursor = Cursor::from_value(cursor)?;
    let account = Account::from_api(api)?;
    let own = OwnAddresses::from_setting(api.settings.get(OWN_ADDRESSES));
    if own.to_list().is_empty() {
        return Err(ConnectorError::Permanent(format!(
            "settings.{OWN_ADDRESSES} lists no address"
        )));
    }
    let ctx = DecodeContext {
        default_region: api.default_region.map(str::to_owned),
    };
    let client = connect(&account, limits).await?;
    let mut session = login(client, &account, limits).await?;
    let page = read_page(&mut session, &account, cursor, limits, &own, &ctx, api.now).await;
    // A failed LOGOUT changes nothing read; the connection closes anyway.
    let _ = timeout(limits.connect, session.logout()).await;
    page
}

async fn read_page(
    session: &mut ImapSession,
    account: &Account,
    mut cursor: Cursor,
    limits: &Limits,
    own: &OwnAddresses,
    ctx: &DecodeContext,
    now: DateTime<Utc>,
) -> Result<Page, ConnectorError> {
    let what = "IMAP EXAMINE";
    let mailbox = within(limits.command, what, session.examine(&account.mailbox))
        .await?
        .map_err(|e| match e {
            ImapError::No(text) if !temporary_refusal(&text) => ConnectorError::Permanent(
                "settings.mailbox names no mailbox the server lets this user open".into(),
            ),
            e => classify(what, e),
        })?;
    let uidvalidity = mailbox.uid_validity.ok_or_else(|| {
        ConnectorError::Malformed("EXAMINE answered no UIDVALIDITY (no UID support)".into())
    })?;
    if cursor.uidvalidity.is_some_and(|v| v != uidvalidity) {
        // Every UID read before means nothing now: a full resync.
        cursor.last_uid = 0;
    }
    cursor.uidvalidity = Some(uidvalidity);

    let plan = search_plan(cursor.last_uid, mailbox.uid_next, limits.window);
    // Everything up to `covered` is known once the found UIDs are read.
    let (found, covered, uid_next) = match plan {
        Search::Nothing => (Vec::new(), None, None),
        Search::Window { from, to, uid_next } => {
            let found = new_uids(
                search(session, &format!("{from}:{to}"), cursor.since, limits).await?,
                from,
            );
            let found: Vec<u32> = found.into_iter().filter(|&uid| uid <= to).collect();
            if found.is_empty() && to < uid_next - 1 {
                // A gap in the UIDs: find where mail resumes.
                let found = new_uids(
                    search(session, &format!("{from}:*"), cursor.since, limits).await?,
                    from,
                );
                (found, Some(uid_next - 1), Some(uid_next))
            } else {
                (found, Some(to), Some(uid_next))
            }
        }
        Search::Open { from } => (
            new_uids(
                search(session, &format!("{from}:*"), cursor.since, limits).await?,
                from,
            ),
            None,
            None,
        ),
    };

    let mut batch: Vec<u32> = found.iter().copied().take(limits.batch.max(1)).collect();
    if batch.len() > 1 {
        let sizes = sizes(session, &batch, limits).await?;
        batch.truncate(within_budget(&batch, &sizes, limits.batch_bytes));
    }
    let fetched = if batch.is_empty() {
        BTreeMap::new()
    } else {
        bodies(session, &batch, limits).await?
    };
    if !batch.is_empty() && fetched.is_empty() {
        // Listed a moment ago but none came back: expunged meanwhile, or
        // the FETCH failed. The next page searches again.
        return Err(transient(
            "IMAP UID FETCH",
            "none of the listed messages came back",
        ));
    }

    let mut records = Vec::new();
    for (uid, message) in &fetched {
        if let Some(record) = mapping::record(*uid, message, own, ctx)? {
            records.push(record);
        }
    }

    let all_read = batch.len() == found.len();
    let last_read = batch.last().copied();
    let caught_up;
    if all_read {
        match (covered, uid_next) {
            (Some(covered), Some(next)) => {
                cursor.last_uid = cursor.last_uid.max(covered);
                caught_up = covered >= next - 1;
            }
            _ => {
                if let Some(last) = last_read {
                    cursor.last_uid = cursor.last_uid.max(last);
                }
                caught_up = true;
            }
        }
    } else {
        cursor.last_uid = last_read.expect("a partial batch has a last UID");
        caught_up = false;
    }

    Ok(Page {
        records,
        cursor: cursor.to_value(),
        caught_up,
        watermark: caught_up.then_some(now),
        pace: None,
    })
}
