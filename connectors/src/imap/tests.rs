//! The page plan and mapping on their own, then every poll against a real
//! dovecot on 127.0.0.1 (skipped, saying so, where dovecot is missing).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::{
    self, new_uids, search_plan, since_criterion, uid_set, within_budget, Account, Cursor, Fetched,
    Limits, Search,
};
use super::mapping;
use super::testserver::TestServer;
use super::Imap;
use crate::email::thread::OwnAddresses;
use crate::model::{Direction, IdentityKey, KeyKind, Message, RecordBody, SourceRecord};
use crate::poll::{Api, Page, PollingSource, Resource};
use crate::webhook::{Connector, DecodeContext};
use crate::ConnectorError;

/// Every network step of a test is bounded by this.
const STEP: Duration = Duration::from_secs(30);
const OWN: &str = "support@shop.example, *@shop.example";

async fn step<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {STEP:?}"))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/imap/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn map(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn email_key(address: &str) -> Vec<IdentityKey> {
    vec![IdentityKey {
        kind: KeyKind::Email,
        value: address.to_owned(),
    }]
}

fn message(record: &SourceRecord) -> &Message {
    match &record.body {
        RecordBody::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

fn ids(records: &[SourceRecord]) -> Vec<String> {
    records.iter().map(|r| r.external_id.clone()).collect()
}

fn test_limits(batch: usize) -> Limits {
    Limits {
        batch,
        connect: Duration::from_secs(10),
        command: Duration::from_secs(20),
        fetch: Duration::from_secs(20),
        ..Limits::default()
    }
}

/// A connection's settings and secrets for the test server.
struct Conn {
    settings: Map<String, Value>,
    secrets: Map<String, Value>,
    http: reqwest::Client,
}

impl Conn {
    fn new(server: &TestServer, mailbox: Option<&str>) -> Conn {
        let mut settings = map(json!({
            "host": "127.0.0.1",
            "port": server.port.to_string(),
            "username": server.user,
            "own_addresses": OWN,
            "tls_ca_pem": server.ca_pem,
        }));
        if let Some(mailbox) = mailbox {
            settings.insert("mailbox".into(), json!(mailbox));
        }
        Conn {
            settings,
            secrets: map(json!({ "password": server.password })),
            http: reqwest::Client::new(),
        }
    }

    fn api(&self) -> Api<'_> {
        Api {
            http: &self.http,
            base_url: Imap.default_base_url(&self.settings).unwrap(),
            settings: &self.settings,
            secrets: &self.secrets,
            default_region: None,
            now: utc("2025-03-10T00:00:00Z"),
        }
    }

    async fn poll(&self, cursor: &Value, limits: &Limits) -> Result<Page, ConnectorError> {
        step("a poll", client::poll(&self.api(), cursor, limits)).await
    }

    /// Polls until caught up (at most `max_pages`), returning every page.
    async fn sweep(&self, cursor: &Value, limits: &Limits, max_pages: usize) -> Vec<Page> {
        let mut pages = Vec::new();
        let mut cursor = cursor.clone();
        for _ in 0..max_pages {
            let page = self.poll(&cursor, limits).await.expect("a page");
            cursor = page.cursor.clone();
            let done = page.caught_up;
            pages.push(page);
            if done {
                return pages;
            }
        }
        panic!("not caught up after {max_pages} pages");
    }
}

fn account(server: &TestServer) -> Account {
    Account {
        host: "127.0.0.1".into(),
        port: server.port,
        username: server.user.clone(),
        password: server.password.clone(),
        mailbox: "INBOX".into(),
        tls_ca_pem: Some(server.ca_pem.clone()),
    }
}

/// A session of the test's own, to change mailboxes the way a mail client
/// or an administrator would.
async fn admin(
    server: &TestServer,
) -> async_imap::Session<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let account = account(server);
    let limits = test_limits(50);
    let client = step("connect", client::connect(&account, &limits))
        .await
        .expect("connect");
    step("login", client::login(client, &account, &limits))
        .await
        .expect("login")
}

fn cursor_of(page: &Page) -> Cursor {
    Cursor::from_value(&page.cursor).unwrap()
}

// ---------------------------------------------------------------------------
// Without a server
// ---------------------------------------------------------------------------

#[test]
fn connector_declares_settings_secrets_and_messages() {
    assert_eq!(Connector::platform(&Imap), "imap");
    assert_eq!(PollingSource::platform(&Imap), "imap");
    assert_eq!(
        Imap.required_settings(),
        &["host", "username", "own_addresses"]
    );
    assert_eq!(Imap.required_secrets(), &["password"]);
    assert!(Imap.webhooks().is_none());
    let polling = Imap.polling().expect("imap polls");
    assert_eq!(polling.resources(), &[Resource::Messages]);
    assert_eq!(polling.credentials(), &["password"]);
    assert_eq!(
        polling.default_base_url(&map(json!({"host": "imap.example.com"}))),
        Some("imaps://imap.example.com:993".into())
    );
    assert_eq!(
        polling.default_base_url(&map(json!({"host": "127.0.0.1", "port": 10993}))),
        Some("imaps://127.0.0.1:10993".into())
    );
    assert_eq!(polling.default_base_url(&map(json!({}))), None);
    assert_eq!(
        polling.default_base_url(&map(json!({"host": "h", "port": "x"}))),
        None
    );
}

#[test]
fn start_cursor_shape() {
    assert_eq!(
        Imap.start_cursor(Resource::Messages, None),
        json!({"uidvalidity": null, "last_uid": 0})
    );
    assert_eq!(
        Imap.start_cursor(Resource::Messages, Some(utc("2025-01-15T08:00:00Z"))),
        json!({"uidvalidity": null, "last_uid": 0, "since": "2025-01-15T08:00:00Z"})
    );
    let cursor = Cursor::from_value(&json!({"uidvalidity": 7, "last_uid": 42})).unwrap();
    assert_eq!(cursor.uidvalidity, Some(7));
    assert_eq!(cursor.last_uid, 42);
    assert_eq!(Cursor::from_value(&Value::Null).unwrap(), Cursor::default());
    assert!(matches!(
        Cursor::from_value(&json!({"page": 2})),
        Err(ConnectorError::Permanent(_))
    ));
}

#[test]
fn search_plan_windows_and_stops_at_uidnext() {
    // Nothing past UIDNEXT: no search at all.
    assert_eq!(search_plan(9, Some(10), 1000), Search::Nothing);
    assert_eq!(search_plan(12, Some(10), 1000), Search::Nothing);
    assert_eq!(search_plan(u32::MAX, None, 1000), Search::Nothing);
    assert_eq!(
        search_plan(0, Some(10), 1000),
        Search::Window {
            from: 1,
            to: 9,
            uid_next: 10
        }
    );
    assert_eq!(
        search_plan(100, Some(100_000), 1000),
        Search::Window {
            from: 101,
            to: 1100,
            uid_next: 100_000
        }
    );
    assert_eq!(search_plan(5, None, 1000), Search::Open { from: 6 });
}

#[test]
fn new_uids_drop_the_star_quirk() {
    // `UID SEARCH UID 8:*` on a mailbox whose highest UID is 5 answers 5.
    assert_eq!(new_uids(HashSet::from([5]), 8), Vec::<u32>::new());
    assert_eq!(new_uids(HashSet::from([12, 9, 5, 8]), 8), vec![8, 9, 12]);
}

#[test]
fn uid_sets_compress_runs() {
    assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    assert_eq!(uid_set(&[4]), "4");
    assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
}

#[test]
fn byte_budget_keeps_at_least_one_message() {
    let sizes = BTreeMap::from([(1, 600), (2, 600), (3, 600)]);
    assert_eq!(within_budget(&[1, 2, 3], &sizes, 1300), 2);
    assert_eq!(within_budget(&[1, 2, 3], &sizes, 2000), 3);
    assert_eq!(within_budget(&[1, 2, 3], &sizes, 100), 1);
    // Unknown sizes (expunged meanwhile) count as nothing.
    assert_eq!(within_budget(&[1, 4, 2], &sizes, 1300), 3);
}

#[test]
fn since_is_a_day_early_in_imap_date_syntax() {
    assert_eq!(
        since_criterion(utc("2025-03-01T00:30:00Z")),
        " SINCE 28-Feb-2025"
    );
    assert_eq!(
        since_criterion(utc("2025-12-10T23:00:00Z")),
        " SINCE 9-Dec-2025"
    );
}

#[test]
fn port_setting_accepts_numbers_and_strings() {
    assert_eq!(client::port_setting(None).unwrap(), 993);
    assert_eq!(client::port_setting(Some(&json!(""))).unwrap(), 993);
    assert_eq!(client::port_setting(Some(&json!("143"))).unwrap(), 143);
    assert_eq!(client::port_setting(Some(&json!(10993))).unwrap(), 10993);
    for bad in [json!("0"), json!(70000), json!("imaps"), json!(true)] {
        assert!(matches!(
            client::port_setting(Some(&bad)),
            Err(ConnectorError::Permanent(_))
        ));
    }
}

#[test]
fn tls_ca_pem_must_hold_a_certificate() {
    assert!(client::tls_config(None).is_ok());
    assert!(matches!(
        client::tls_config(Some("not a certificate")),
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        client::tls_config(Some(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )),
        Err(ConnectorError::Permanent(_))
    ));
}

fn map_fixture(name: &str, internal_date: Option<DateTime<Utc>>) -> Option<SourceRecord> {
    let own = OwnAddresses::from_setting(Some(&json!(OWN)));
    let fetched = Fetched {
        internal_date,
        body: fixture(name),
    };
    mapping::record(1, &fetched, &own, &DecodeContext::default()).expect("maps")
}

#[test]
fn fixtures_map_through_the_email_code() {
    let arrived = Some(utc("2025-03-09T00:00:00Z"));

    let question = map_fixture("01-question.eml", arrived).expect("a record");
    assert_eq!(question.external_id, "question-1042@example.com");
    assert_eq!(question.version, utc("2025-03-03T09:15:00Z"));
    assert_eq!(question.occurred_at, utc("2025-03-03T09:15:00Z"));
    assert_eq!(question.keys, email_key("ada@example.com"));
    let m = message(&question);
    assert_eq!(m.conversation_id, "question-1042@example.com");
    assert_eq!(m.channel, "email");
    assert_eq!(m.direction, Direction::Inbound);
    assert_eq!(m.sender_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(m.sender_handle.as_deref(), Some("ada@example.com"));
    assert_eq!(m.subject.as_deref(), Some("Where is order #1042?"));
    assert_eq!(
        m.text.as_deref(),
        Some("Hello, my order #1042 has not arrived yet. Could you check? \u{2014} Ada")
    );

    // The merchant's reply: outbound, keyed by the customer it went to.
    let reply = map_fixture("02-reply-outbound.eml", arrived).expect("a record");
    assert_eq!(reply.external_id, "reply-1042@shop.example");
    assert_eq!(reply.keys, email_key("ada@example.com"));
    let m = message(&reply);
    assert_eq!(m.direction, Direction::Outbound);
    assert_eq!(m.conversation_id, "question-1042@example.com");
    assert_eq!(m.sender_handle.as_deref(), Some("support@shop.example"));

    // The customer's answer: same thread, through References.
    let answer = map_fixture("03-customer-reply.eml", arrived).expect("a record");
    assert_eq!(answer.version, utc("2025-03-04T07:30:00Z"));
    assert_eq!(answer.keys, email_key("ada@example.com"));
    assert_eq!(
        message(&answer).conversation_id,
        "question-1042@example.com"
    );
    assert_eq!(message(&answer).direction, Direction::Inbound);

    // GB2312 in the body (8bit, not UTF-8) and in encoded words.
    let chinese = map_fixture("04-chinese-gb2312.eml", arrived).expect("a record");
    assert_eq!(chinese.version, utc("2025-03-05T04:00:00Z"));
    assert_eq!(chinese.keys, email_key("li.lei@example.cn"));
    let m = message(&chinese);
    assert_eq!(m.sender_name.as_deref(), Some("李雷"));
    assert_eq!(m.subject.as_deref(), Some("订单还没到"));
    assert_eq!(
        m.text.as_deref(),
        Some("你好，我的订单还没有到，请帮我查一下。")
    );

    // Machines identify nobody.
    assert_eq!(map_fixture("05-auto-reply.eml", arrived), None);
    assert_eq!(map_fixture("06-bounce.eml", arrived), None);

    // No Date header: INTERNALDATE versions the mail.
    let undated = map_fixture("08-no-date.eml", arrived).expect("a record");
    assert_eq!(undated.version, utc("2025-03-09T00:00:00Z"));
    assert!(matches!(
        map_fixture_err("08-no-date.eml"),
        ConnectorError::Malformed(reason) if reason.contains("UID 1") && !reason.contains("dan@")
    ));
}

fn map_fixture_err(name: &str) -> ConnectorError {
    let own = OwnAddresses::from_setting(Some(&json!(OWN)));
    let fetched = Fetched {
        internal_date: None,
        body: fixture(name),
    };
    mapping::record(1, &fetched, &own, &DecodeContext::default()).unwrap_err()
}

// ---------------------------------------------------------------------------
// Against dovecot
// ---------------------------------------------------------------------------

const INBOX_FIXTURES: [&str; 6] = [
    "01-question.eml",
    "02-reply-outbound.eml",
    "03-customer-reply.eml",
    "04-chinese-gb2312.eml",
    "05-auto-reply.eml",
    "06-bounce.eml",
];

/// Message-IDs of the inbox fixtures that make records.
fn inbox_ids() -> BTreeSet<String> {
    [
        "question-1042@example.com",
        "reply-1042@shop.example",
        "thanks-1042@example.com",
        "gb2312-0305@example.cn",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_a_mailbox_in_batches_and_resumes() {
    let Some(server) = TestServer::start() else {
        return;
    };
    for name in INBOX_FIXTURES {
        server.deliver("INBOX", name, &fixture(name));
    }
    let conn = Conn::new(&server, None);
    let limits = test_limits(2);
    let start = Imap.start_cursor(Resource::Messages, None);

    // Six messages, two per page: three pages, the last one caught up.
    let pages = conn.sweep(&start, &limits, 10).await;
    assert_eq!(pages.len(), 3, "log: {}", server.log());
    assert_eq!(
        pages.iter().map(|p| p.caught_up).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(
        pages
            .iter()
            .map(|p| cursor_of(p).last_uid)
            .collect::<Vec<_>>(),
        [2, 4, 6]
    );
    let uidvalidity = cursor_of(&pages[0]).uidvalidity.expect("UIDVALIDITY kept");
    assert!(pages
        .iter()
        .all(|p| cursor_of(p).uidvalidity == Some(uidvalidity)));
    assert_eq!(pages[2].watermark, Some(utc("2025-03-10T00:00:00Z")));
    assert_eq!(pages[0].watermark, None);
    let records: Vec<SourceRecord> = pages.iter().flat_map(|p| p.records.clone()).collect();
    let got = ids(&records);
    assert_eq!(got.len(), 4, "each record exactly once: {got:?}");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), inbox_ids());

    // What came over IMAP is what the email code makes of the file.
    let chinese = records
        .iter()
        .find(|r| r.external_id == "gb2312-0305@example.cn")
        .unwrap();
    assert_eq!(
        chinese,
        &map_fixture("04-chinese-gb2312.eml", None).unwrap()
    );
    let outbound = records
        .iter()
        .find(|r| r.external_id == "reply-1042@shop.example")
        .unwrap();
    assert_eq!(message(outbound).direction, Direction::Outbound);
    assert_eq!(outbound.keys, email_key("ada@example.com"));

    // A crash after page one: its cursor gives page two again, no gap.
    let again = conn.poll(&pages[0].cursor, &limits).await.unwrap();
    assert_eq!(again, pages[1]);

    // Caught up: polling again reads nothing and keeps the cursor.
    let idle = conn.poll(&pages[2].cursor, &limits).await.unwrap();
    assert!(idle.records.is_empty());
    assert!(idle.caught_up);
    assert_eq!(idle.cursor, pages[2].cursor);

    // New mail is picked up from the caught-up cursor, and only it.
    server.deliver("INBOX", "07-later.eml", &fixture("07-later.eml"));
    let later = conn.poll(&idle.cursor, &limits).await.unwrap();
    assert_eq!(ids(&later.records), ["exchange-5@example.net"]);
    assert_eq!(later.records[0].keys, email_key("carol@example.net"));
    assert!(later.caught_up);
    assert_eq!(cursor_of(&later).last_uid, 7);

    // Through the trait with the default limits: everything in one page.
    let whole = step("a poll", Imap.poll(&conn.api(), Resource::Messages, &start))
        .await
        .unwrap();
    assert!(whole.caught_up);
    assert_eq!(whole.records.len(), 5);
    assert_eq!(cursor_of(&whole).last_uid, 7);

    // EXAMINE and BODY.PEEK[]: nothing was marked \Seen.
    let mut session = admin(&server).await;
    step("examine", session.examine("INBOX")).await.unwrap();
    let flags: Vec<String> = step("fetch flags", async {
        use futures_util::TryStreamExt;
        let stream = session.uid_fetch("1:*", "(UID FLAGS)").await.unwrap();
        let fetches: Vec<_> = stream.try_collect().await.unwrap();
        fetches
            .iter()
            .flat_map(|f| {
                f.flags()
                    .map(|flag| format!("{flag:?}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    })
    .await;
    assert!(
        !flags.iter().any(|f| f.contains("Seen")),
        "flags changed: {flags:?}"
    );
    let _ = step("logout", session.logout()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_resyncs_and_gaps_are_skipped() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let internal = "\"01-Feb-2025 10:00:00 +0000\"";
    let mut session = admin(&server).await;
    step("create", session.create("Support")).await.unwrap();
    for name in [
        "01-question.eml",
        "07-later.eml",
        "05-auto-reply.eml",
        "03-customer-reply.eml",
        "08-no-date.eml",
    ] {
        step(
            "append",
            session.append("Support", None, Some(internal), fixture(name)),
        )
        .await
        .unwrap();
    }
    // A gap: UIDs 2 and 3 expunged, 1, 4 and 5 remain.
    step("select", session.select("Support")).await.unwrap();
    step("store", async {
        use futures_util::TryStreamExt;
        let stream = session
            .uid_store("2:3", "+FLAGS (\\Deleted)")
            .await
            .unwrap();
        let _: Vec<_> = stream.try_collect().await.unwrap();
    })
    .await;
    step("expunge", async {
        use futures_util::TryStreamExt;
        let stream = session.expunge().await.unwrap();
        let _: Vec<_> = stream.try_collect().await.unwrap();
    })
    .await;

    let conn = Conn::new(&server, Some("Support"));
    // A window of one UID: page 2 finds the gap at UID 2 and jumps to 4.
    let limits = Limits {
        window: 1,
        ..test_limits(1)
    };
    let start = Imap.start_cursor(Resource::Messages, None);
    let pages = conn.sweep(&start, &limits, 10).await;
    assert_eq!(
        pages
            .iter()
            .map(|p| (ids(&p.records), cursor_of(p).last_uid, p.caught_up))
            .collect::<Vec<_>>(),
        [
            (vec!["question-1042@example.com".to_owned()], 1, false),
            (vec!["thanks-1042@example.com".to_owned()], 4, false),
            (vec!["nodate-1@example.com".to_owned()], 5, true),
        ],
        "log: {}",
        server.log()
    );
    // No Date header: the APPEND's INTERNALDATE versions it.
    assert_eq!(pages[2].records[0].version, utc("2025-02-01T10:00:00Z"));
    let old = cursor_of(&pages[2]);

    // The mailbox is deleted and made again: a new UIDVALIDITY, UIDs from 1.
    step("unselect", session.close()).await.unwrap();
    step("delete", session.delete("Support")).await.unwrap();
    step("create", session.create("Support")).await.unwrap();
    for name in ["01-question.eml", "07-later.eml"] {
        step(
            "append",
            session.append("Support", None, Some(internal), fixture(name)),
        )
        .await
        .unwrap();
    }
    let _ = step("logout", session.logout()).await;

    let resync = conn.sweep(&pages[2].cursor, &test_limits(50), 3).await;
    assert_eq!(resync.len(), 1);
    let new = cursor_of(&resync[0]);
    assert_ne!(new.uidvalidity, old.uidvalidity);
    assert_eq!(new.last_uid, 2);
    // UIDs 1 and 2 are below the old cursor's last_uid 5: read anyway.
    assert_eq!(
        ids(&resync[0].records),
        ["question-1042@example.com", "exchange-5@example.net"]
    );
    // The re-read message is the same record, so the hub changes nothing.
    assert_eq!(resync[0].records[0], pages[0].records[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_skips_older_mail() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let mut session = admin(&server).await;
    for (name, date) in [
        ("01-question.eml", "\"03-Mar-2025 09:15:00 +0000\""),
        ("07-later.eml", "\"06-Mar-2025 16:45:00 +0000\""),
    ] {
        step(
            "append",
            session.append("INBOX", None, Some(date), fixture(name)),
        )
        .await
        .unwrap();
    }
    let _ = step("logout", session.logout()).await;
    let conn = Conn::new(&server, None);
    let since = Imap.start_cursor(Resource::Messages, Some(utc("2025-03-06T12:00:00Z")));
    let pages = conn.sweep(&since, &test_limits(50), 3).await;
    assert_eq!(ids(&pages[0].records), ["exchange-5@example.net"]);
    assert_eq!(
        cursor_of(&pages[0]).since,
        Some(utc("2025-03-06T12:00:00Z"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_classified() {
    let Some(server) = TestServer::start() else {
        return;
    };
    server.deliver("INBOX", "01-question.eml", &fixture("01-question.eml"));
    let start = Imap.start_cursor(Resource::Messages, None);
    let limits = test_limits(50);

    let mut wrong = Conn::new(&server, None);
    wrong
        .secrets
        .insert("password".into(), json!("not the password"));
    match wrong.poll(&start, &limits).await {
        Err(ConnectorError::Unauthorized(reason)) => {
            assert!(!reason.contains("not the password"));
            assert!(!reason.contains(&server.user));
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    let mut no_password = Conn::new(&server, None);
    no_password.secrets.clear();
    assert!(matches!(
        no_password.poll(&start, &limits).await,
        Err(ConnectorError::Unauthorized(_))
    ));

    let missing = Conn::new(&server, Some("Archive/2019"));
    assert!(matches!(
        missing.poll(&start, &limits).await,
        Err(ConnectorError::Permanent(reason)) if reason.contains("settings.mailbox")
    ));

    // Without the test CA the certificate is not trusted: no session.
    let mut untrusted = Conn::new(&server, None);
    untrusted.settings.remove("tls_ca_pem");
    assert!(matches!(
        untrusted.poll(&start, &limits).await,
        Err(ConnectorError::Transient(reason)) if reason.contains("TLS")
    ));

    // The certificate is for 127.0.0.1, not for localhost.
    let mut wrong_name = Conn::new(&server, None);
    wrong_name
        .settings
        .insert("host".into(), json!("localhost"));
    assert!(matches!(
        wrong_name.poll(&start, &limits).await,
        Err(ConnectorError::Transient(reason)) if reason.contains("TLS")
    ));

    let mut no_own = Conn::new(&server, None);
    no_own.settings.insert("own_addresses".into(), json!(" , "));
    assert!(matches!(
        no_own.poll(&start, &limits).await,
        Err(ConnectorError::Permanent(reason)) if reason.contains("own_addresses")
    ));

    // The same connection with everything right works.
    let ok = Conn::new(&server, None)
        .poll(&start, &limits)
        .await
        .unwrap();
    assert_eq!(ids(&ok.records), ["question-1042@example.com"]);

    // The server speaks TLS first: a plaintext client gets no greeting.
    let mut raw = step(
        "connect",
        tokio::net::TcpStream::connect(("127.0.0.1", server.port)),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let greeting = tokio::time::timeout(Duration::from_millis(500), raw.read(&mut buf)).await;
    assert!(
        !matches!(greeting, Ok(Ok(n)) if buf[..n].starts_with(b"* OK")),
        "dovecot greeted in plaintext"
    );
}

#[tokio::test]
async fn connection_failures_are_transient() {
    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = map(json!({
        "host": "127.0.0.1",
        "port": port,
        "username": "merchant",
        "own_addresses": OWN,
    }));
    let secrets = map(json!({"password": "pw"}));
    let http = reqwest::Client::new();
    let api = Api {
        http: &http,
        base_url: String::new(),
        settings: &settings,
        secrets: &secrets,
        default_region: None,
        now: Utc.timestamp_opt(0, 0).unwrap(),
    };
    let result = step("a poll", client::poll(&api, &Value::Null, &test_limits(50))).await;
    assert!(
        matches!(result, Err(ConnectorError::Transient(_))),
        "{result:?}"
    );
}

/// A plaintext IMAP server: greets at once and records what it receives.
/// The connector must answer with a TLS ClientHello, never a LOGIN.
#[tokio::test]
async fn never_speaks_plaintext_imap() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket
            .write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plaintext ready\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the client gives up (it must) or two seconds pass.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        received
    });
    let settings = map(json!({
        "host": "127.0.0.1",
        "port": port,
        "username": "merchant",
        "own_addresses": OWN,
    }));
    let secrets = map(json!({"password": "plaintext-canary"}));
    let http = reqwest::Client::new();
    let api = Api {
        http: &http,
        base_url: String::new(),
        settings: &settings,
        secrets: &secrets,
        default_region: None,
        now: Utc.timestamp_opt(0, 0).unwrap(),
    };
    let result = step("a poll", client::poll(&api, &Value::Null, &test_limits(50))).await;
    assert!(
        matches!(&result, Err(ConnectorError::Transient(reason)) if reason.contains("TLS")),
        "{result:?}"
    );
    let received = step("the fake server", server).await.unwrap();
    // A TLS handshake record (0x16, version 3.x), nothing readable.
    assert_eq!(received.first(), Some(&0x16), "{received:?}");
    assert_eq!(received.get(1), Some(&0x03));
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("LOGIN") && !text.contains("plaintext-canary"));
}
