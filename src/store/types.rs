//! Rows and arguments that cross the storage interface.

use serde::Serialize;

pub struct NewWorkspace {
    pub id: String,
    pub name: String,
    pub api_key_id: String,
    pub api_key_hash: String,
    pub now: i64,
}

pub struct NewConnection {
    pub id: String,
    pub workspace_id: String,
    pub platform: String,
    pub name: String,
    /// JSON object.
    pub settings: String,
    /// Sealed with the master key.
    pub secrets: Vec<u8>,
    pub now: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: String,
    pub workspace_id: String,
    pub platform: String,
    pub name: String,
    pub settings: String,
    pub created_at: i64,
    /// `ok`, or `needs_reauth` after the platform refused the credentials.
    pub auth_status: String,
    pub auth_error: Option<String>,
}

pub struct ConnectionUpdate<'a> {
    pub name: &'a str,
    pub settings: &'a str,
    pub secrets: &'a [u8],
    pub now: i64,
}

#[derive(sqlx::FromRow)]
pub struct ConnectionSecrets {
    pub id: String,
    pub workspace_id: String,
    pub platform: String,
    pub settings: String,
    pub secrets: Vec<u8>,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct DeliveryStats {
    pub received: i64,
    pub pending: i64,
    pub done: i64,
    pub dead: i64,
    pub last_delivery_at: Option<i64>,
}

pub struct NewDelivery {
    pub workspace_id: String,
    pub connection_id: String,
    pub platform: String,
    pub topic: String,
    pub dedupe_key: String,
    pub body: Vec<u8>,
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Stored(i64),
    Duplicate,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub workspace_id: String,
    pub connection_id: String,
    pub platform: String,
    pub topic: String,
    pub body: Vec<u8>,
    pub attempts: i64,
    pub lease_token: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRow {
    pub id: i64,
    pub connection_id: String,
    pub platform: String,
    pub topic: String,
    pub status: String,
    pub attempts: i64,
    pub received_at: i64,
    pub last_error: Option<String>,
    pub processed_at: Option<i64>,
}

pub enum ProfileQuery {
    Email(String),
    Phone(String),
    External {
        platform: String,
        external_id: String,
    },
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    pub id: String,
    pub view: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    pub seq: i64,
    pub kind: String,
    pub profile_id: String,
    pub data: String,
    pub created_at: i64,
}

/// Identifies a source record.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub connection_id: &'a str,
    pub kind: &'a str,
    pub external_id: &'a str,
}

#[derive(sqlx::FromRow)]
pub struct RecordState {
    pub version: i64,
    pub profile_id: String,
}

/// An identity key with its scope: empty for global keys, the connection id
/// for keys that only mean something within one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopedKey {
    pub kind: &'static str,
    pub scope: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileStub {
    pub id: String,
    pub created_at: i64,
}

pub struct NewRecord<'a> {
    pub workspace_id: &'a str,
    pub connection_id: &'a str,
    pub kind: &'a str,
    pub external_id: &'a str,
    pub version: i64,
    pub occurred_at: i64,
    /// The model record as JSON.
    pub data: &'a str,
    pub profile_id: &'a str,
    pub keys: &'a [ScopedKey],
    /// Messages only: their channel and conversation.
    pub channel: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub now: i64,
}

/// Which of a profile's records a timeline shows.
#[derive(Debug, Default)]
pub struct TimelineFilter {
    pub kind: Option<String>,
    pub channel: Option<String>,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    pub conversation_id: String,
    pub channel: String,
    pub messages: i64,
    pub first_at: i64,
    pub last_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRecord {
    pub connection_id: String,
    pub platform: String,
    pub kind: String,
    pub external_id: String,
    pub version: i64,
    pub occurred_at: i64,
    pub data: String,
}

pub struct NewChange<'a> {
    pub workspace_id: &'a str,
    pub kind: &'a str,
    pub profile_id: &'a str,
    pub data: &'a str,
    pub now: i64,
}

/// Where one sync stream of a connection stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StreamRow {
    pub connection_id: String,
    pub stream: String,
    pub cursor: String,
    pub since: Option<i64>,
    pub watermark: Option<i64>,
    pub caught_up: i64,
    pub records: i64,
    pub pages: i64,
    pub started_at: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub updated_at: i64,
}

/// A page's effect on its stream, applied only if the stream is still at
/// `expected_cursor` (otherwise another poller got there first).
pub struct StreamAdvance<'a> {
    pub connection_id: &'a str,
    pub stream: &'a str,
    pub expected_cursor: &'a str,
    pub cursor: &'a str,
    pub watermark: Option<i64>,
    pub caught_up: bool,
    pub records: i64,
    pub now: i64,
}

/// A connection whose sync is due, with what polling it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SyncTarget {
    pub id: String,
    pub workspace_id: String,
    pub platform: String,
    pub settings: String,
    pub secrets: Vec<u8>,
    pub auth_status: String,
}

pub struct NewComplaint<'a> {
    pub workspace_id: &'a str,
    pub record: &'a RecordRef<'a>,
    pub severity: &'a str,
    pub reason: &'a str,
    pub now: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ComplaintRow {
    pub id: i64,
    pub profile_id: String,
    pub connection_id: String,
    pub platform: String,
    pub record_kind: String,
    pub external_id: String,
    pub severity: String,
    pub reason: String,
    pub status: String,
    pub occurred_at: i64,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
}

pub struct NewSuggestion<'a> {
    pub workspace_id: &'a str,
    pub profile_a: &'a str,
    pub profile_b: &'a str,
    /// For people: what the evidence is.
    pub reason: &'a str,
    /// JSON: the records and values compared.
    pub evidence: &'a str,
    pub now: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuggestionRow {
    pub id: i64,
    pub profile_a: String,
    pub profile_b: String,
    pub reason: String,
    pub evidence: String,
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

/// A source record's identity, owned.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, sqlx::FromRow,
)]
#[serde(deny_unknown_fields)]
pub struct RecordId {
    pub connection_id: String,
    pub kind: String,
    pub external_id: String,
}

impl RecordId {
    pub fn new(connection_id: &str, kind: &str, external_id: &str) -> RecordId {
        RecordId {
            connection_id: connection_id.to_string(),
            kind: kind.to_string(),
            external_id: external_id.to_string(),
        }
    }

    /// Whether this is the record `other` refers to.
    pub fn is(&self, other: &RecordRef<'_>) -> bool {
        self.connection_id == other.connection_id
            && self.kind == other.kind
            && self.external_id == other.external_id
    }

    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            connection_id: &self.connection_id,
            kind: &self.kind,
            external_id: &self.external_id,
        }
    }
}

/// A record that carries a key, with the profile it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyHolder {
    pub connection_id: String,
    pub kind: String,
    pub external_id: String,
    pub profile_id: String,
    pub key_kind: String,
    pub key_scope: String,
    pub key_value: String,
}

/// One key a record of a profile carries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordKeyRow {
    pub profile_id: String,
    pub connection_id: String,
    pub kind: String,
    pub external_id: String,
    pub created_at: i64,
    pub key_kind: Option<String>,
    pub key_scope: Option<String>,
    pub key_value: Option<String>,
}

pub struct NewLink<'a> {
    pub workspace_id: &'a str,
    pub a: RecordRef<'a>,
    pub b: RecordRef<'a>,
    pub rule: &'a str,
    pub score: Option<f64>,
    pub evidence: &'a str,
    pub now: i64,
}

/// A stored link, with the platforms of both records for explaining it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub id: i64,
    pub a_connection: String,
    pub a_kind: String,
    pub a_external: String,
    pub a_platform: String,
    pub b_connection: String,
    pub b_kind: String,
    pub b_external: String,
    pub b_platform: String,
    pub rule: String,
    pub score: Option<f64>,
    pub evidence: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CannotLinkRow {
    pub a_connection: String,
    pub a_kind: String,
    pub a_external: String,
    pub b_connection: String,
    pub b_kind: String,
    pub b_external: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ProtectedRow {
    pub key_kind: String,
    pub key_value: String,
    pub source: String,
    pub reason: String,
    pub created_at: i64,
}

impl KeyHolder {
    pub fn record_id(&self) -> RecordId {
        RecordId::new(&self.connection_id, &self.kind, &self.external_id)
    }
}

impl RecordKeyRow {
    pub fn record_id(&self) -> RecordId {
        RecordId::new(&self.connection_id, &self.kind, &self.external_id)
    }
}

impl LinkRow {
    /// The two records the link joins.
    pub fn records(&self) -> (RecordId, RecordId) {
        (
            RecordId::new(&self.a_connection, &self.a_kind, &self.a_external),
            RecordId::new(&self.b_connection, &self.b_kind, &self.b_external),
        )
    }
}

impl CannotLinkRow {
    /// The two records kept apart.
    pub fn records(&self) -> (RecordId, RecordId) {
        (
            RecordId::new(&self.a_connection, &self.a_kind, &self.a_external),
            RecordId::new(&self.b_connection, &self.b_kind, &self.b_external),
        )
    }
}

// segments and care triggers:
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SegmentRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// The filter as JSON (see `crate::segments::filter`).
    pub filter: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

/// A care trigger waiting to be released.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TriggerRow {
    pub id: i64,
    pub profile_id: String,
    pub kind: String,
    pub details: String,
    pub due_at: i64,
    pub created_at: i64,
}

pub struct NewTrigger<'a> {
    pub workspace_id: &'a str,
    pub profile_id: &'a str,
    pub kind: &'a str,
    /// Makes the trigger happen once (`payment_pending:<conn>:<order>`).
    pub dedupe_key: &'a str,
    pub details: &'a str,
    pub due_at: i64,
    pub now: i64,
}

/// An order record of a live profile (for the pending-payment sweep).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRecordRow {
    pub connection_id: String,
    pub external_id: String,
    pub profile_id: String,
    pub data: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileDateRow {
    pub profile_id: String,
    pub kind: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}


// destinations:
/// A destination as the API and the engine read it; its sealed secrets
/// travel separately.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DestinationRow {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub name: String,
    pub settings: String,
    pub segment_id: Option<String>,
    pub mapping: Option<String>,
    pub status: String,
    pub cursor: i64,
    pub next_run_at: i64,
    pub attempts: i64,
    pub consecutive_failures: i64,
    pub breaker_open_until: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub created_at: i64,
}

pub struct NewDestination {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub name: String,
    pub settings: String,
    pub secrets: Vec<u8>,
    pub segment_id: Option<String>,
    pub mapping: Option<String>,
    pub now: i64,
}

pub struct DestinationUpdate<'a> {
    pub name: &'a str,
    pub settings: &'a str,
    pub secrets: &'a [u8],
    pub segment_id: Option<&'a str>,
    pub mapping: Option<&'a str>,
    pub status: &'a str,
    pub now: i64,
}

/// What a destination last received for one profile.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveredContact {
    pub profile_id: String,
    pub hash: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DestinationLogRow {
    pub id: i64,
    pub profile_id: String,
    pub seq: i64,
    pub message_id: String,
    pub op: String,
    pub result: String,
    pub error: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetterRow {
    pub id: i64,
    pub profile_id: String,
    pub seq: i64,
    pub change: String,
    pub error: String,
    pub status: String,
    pub created_at: i64,
    pub replayed_at: Option<i64>,
}

pub struct NewLogEntry {
    pub profile_id: String,
    pub seq: i64,
    pub message_id: String,
    pub op: String,
    pub result: String,
    pub error: Option<String>,
}

pub struct NewDeadLetter {
    pub profile_id: String,
    pub seq: i64,
    pub change: String,
    pub error: String,
}

/// A contact's delivered state: `hash: None` forgets the profile (deleted
/// or merged away on the other side).
#[derive(Debug, Clone)]
pub struct ContactState {
    pub profile_id: String,
    pub hash: Option<String>,
    pub email: Option<String>,
}

/// Everything one engine run writes, committed at once and only while the
/// run still holds the destination's lease.
pub struct DestinationProgress {
    pub destination_id: String,
    pub owner: String,
    pub cursor: i64,
    pub next_run_at: i64,
    pub attempts: i64,
    pub consecutive_failures: i64,
    pub breaker_open_until: Option<i64>,
    pub succeeded: bool,
    pub error: Option<String>,
    /// `disabled` when the receiver said the endpoint is gone.
    pub status: Option<String>,
    pub contacts: Vec<ContactState>,
    pub log: Vec<NewLogEntry>,
    pub dead: Vec<NewDeadLetter>,
    /// Dead letters delivered by a replay.
    pub replayed: Vec<i64>,
    /// Replayed dead letters that failed again, with why.
    pub redead: Vec<(i64, String)>,
    pub now: i64,
}


// profile: consent choices.
pub struct NewConsent<'a> {
    pub workspace_id: &'a str,
    /// `email:<normalised>` or `phone:<E.164>`.
    pub identifier: &'a str,
    pub channel: &'a str,
    pub granted: bool,
    pub source: &'a str,
    /// When the person made the choice.
    pub chosen_at: i64,
    pub now: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub identifier: String,
    pub channel: String,
    /// 1 granted, 0 withdrawn (an integer on both backends).
    pub granted: i64,
    pub source: String,
    pub chosen_at: i64,
}


// search:
/// What the search index holds for one profile.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SearchDoc {
    pub workspace_id: String,
    pub recency: i64,
    /// The indexed terms, joined by newlines.
    pub terms: String,
}

/// One index lookup: an exact term, or every term in `[from, to)` (a prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermLookup {
    Exact(String),
    Range { from: String, to: String },
}

/// A profile a lookup found (`lookup` is its position in the request).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TermHit {
    pub lookup: i64,
    pub profile_id: String,
    pub recency: i64,
}
