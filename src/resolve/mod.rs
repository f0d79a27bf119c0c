//! Deterministic identity resolution, applied inside the worker's transaction.
//!
//! Records that share a key (normalised email, E.164 phone, or a platform
//! customer id within its connection) belong to one profile; a record that
//! links several profiles merges them into the oldest, whose id survives and
//! the others become aliases of it. A record older than or equal to the
//! stored version of the same record changes nothing, so replays and
//! out-of-order deliveries are harmless.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;
use shophub_connectors::model::{Direction, Message, RecordBody, SourceRecord};

use crate::complaints::ComplaintRules;
use crate::mentions::{self, Mention};
use crate::profile;
use crate::store::{
    KeyHolder, NewChange, NewComplaint, NewLink, NewRecord, NewSuggestion, ProfileStub, RecordId,
    RecordRef, ScopedKey, StoreError, StoreResult, WriteTx,
};
use matching::Matcher;

pub mod graph;
pub mod matching;
pub mod rebuild;

/// Records carrying a record's keys that are looked at: enough for any
/// real person, bounded for a value that many records share.
const HOLDER_LIMIT: i64 = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub records: usize,
    pub stale: usize,
    pub changes: usize,
}

pub fn new_profile_id() -> String {
    format!("prof_{}", uuid::Uuid::now_v7().simple())
}

/// The record's keys with their scope filled in.
pub fn scoped_keys(record: &SourceRecord, connection_id: &str) -> Vec<ScopedKey> {
    record
        .keys
        .iter()
        .map(|key| ScopedKey {
            kind: key.kind.as_str(),
            scope: if key.kind.is_connection_scoped() {
                connection_id.to_string()
            } else {
                String::new()
            },
            value: key.value.clone(),
        })
        .collect()
}

/// Records decoded from one delivery, with the connection they came from.
pub struct Batch<'a> {
    pub connection_id: &'a str,
    pub records: &'a [SourceRecord],
}

impl<'a> Batch<'a> {
    fn tagged(&self) -> Vec<(&'a str, &'a SourceRecord)> {
        self.records
            .iter()
            .map(|record| (self.connection_id, record))
            .collect()
    }
}

/// Applies the records of one or more deliveries of a workspace. Profiles
/// they touch are recomputed once, at the end.
pub async fn apply(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    batches: &[Batch<'_>],
    rules: &ComplaintRules,
    now: i64,
) -> StoreResult<Applied> {
    let mut applied = Applied::default();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut regions: HashMap<String, Option<String>> = HashMap::new();
    let mut protection = graph::Protection::load(tx, workspace_id).await?;
    let matcher = Matcher::load(tx, workspace_id).await?;
    let mut recheck: BTreeSet<String> = BTreeSet::new();

    for (connection_id, record) in batches.iter().flat_map(Batch::tagged) {
        let kind = record.kind().as_str();
        let at = RecordRef {
            connection_id,
            kind,
            external_id: &record.external_id,
        };
        let existing = tx.record_state(&at).await?;
        let version = record.version.timestamp_millis();
        if existing
            .as_ref()
            .is_some_and(|state| state.version >= version)
        {
            applied.stale += 1;
            continue;
        }

        let mut keys = scoped_keys(record, connection_id);
        let own = existing.as_ref().map(|s| s.profile_id.as_str());
        let subject = crate::identity::subject_of(record, connection_id);
        let blocks = Matcher::blocks(&subject);
        let (model_links, model_suggestions) = matcher
            .matches(tx, workspace_id, &at, &subject, &blocks, own)
            .await?;
        let placed = place(
            tx,
            workspace_id,
            &at,
            own,
            &keys,
            model_links,
            &mut protection,
            now,
        )
        .await?;
        let profile_id = match placed.group.split_first() {
            None => {
                let id = new_profile_id();
                tx.create_profile(workspace_id, &id, now).await?;
                created.insert(id.clone());
                id
            }
            Some((survivor, absorbed)) => {
                merge(
                    tx,
                    workspace_id,
                    survivor,
                    absorbed,
                    now,
                    &mut created,
                    &mut touched,
                    &mut applied,
                )
                .await?;
                survivor.id.clone()
            }
        };
        recheck.extend(placed.recheck);
        for likely in &model_suggestions {
            if !placed.group.iter().any(|p| p.id == likely.profile_id) {
                matching::suggest(tx, workspace_id, &profile_id, likely, now).await?;
            }
        }
        // Blocking values are stored with the keys, for later records to
        // find this one as a candidate.
        keys.extend(blocks);

        let data = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (channel, conversation_id) = match &record.body {
            RecordBody::Message(m) => (Some(m.channel.as_str()), Some(m.conversation_id.as_str())),
            _ => (None, None),
        };
        tx.upsert_record(&NewRecord {
            workspace_id,
            connection_id,
            kind,
            external_id: &record.external_id,
            version,
            occurred_at: record.occurred_at.timestamp_millis(),
            data: &data,
            profile_id: &profile_id,
            keys: &keys,
            channel,
            conversation_id,
            now,
        })
        .await?;
        for joiner in &placed.links {
            tx.add_link(&NewLink {
                workspace_id,
                a: at,
                b: joiner.record.as_ref(),
                rule: &joiner.rule,
                score: joiner.score,
                evidence: &joiner.evidence,
                now,
            })
            .await?;
        }
        match rules.classify(record) {
            Some(complaint) => {
                let severity = complaint.severity.as_str();
                let reason = &complaint.reason;
                tx.set_complaint(&NewComplaint {
                    workspace_id,
                    record: &at,
                    severity,
                    reason,
                    now,
                })
                .await?;
            }
            None => tx.clear_complaint(&at).await?,
        }
        if let RecordBody::Message(message) = &record.body {
            if message.direction == Direction::Inbound {
                let region = match regions.get(connection_id) {
                    Some(region) => region.clone(),
                    None => {
                        let settings = tx
                            .connection_settings(connection_id)
                            .await?
                            .unwrap_or_default();
                        let region = crate::connections::default_region(&settings);
                        regions.insert(connection_id.to_string(), region.clone());
                        region
                    }
                };
                suggest_from_mentions(
                    tx,
                    workspace_id,
                    &profile_id,
                    &at,
                    message,
                    region.as_deref(),
                    now,
                )
                .await?;
            }
        }
        touched.insert(profile_id);
        applied.records += 1;
    }

    // Profiles a detected protection may have to take apart.
    for id in &recheck {
        if let Some(live) = tx.live_profile(id).await? {
            if live.id == *id {
                graph::recompute(
                    tx,
                    workspace_id,
                    id,
                    "a protected value stopped linking",
                    now,
                )
                .await?;
            }
        }
    }
    for id in &touched {
        if refresh_profile(tx, workspace_id, id, created.contains(id), now).await? {
            applied.changes += 1;
        }
    }
    Ok(applied)
}

/// Where a record goes: the profiles it joins (oldest first; empty for a new
/// profile), the records whose keys it links to, and profiles to recompute
/// because a key value was found to join implausibly many people.
struct Placement {
    group: Vec<ProfileStub>,
    links: Vec<Joiner>,
    recheck: BTreeSet<String>,
}

/// Why a record joins a profile: a shared key, or a model match with one
/// of the profile's records.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub record: RecordId,
    pub profile_id: String,
    pub rule: String,
    pub score: Option<f64>,
    pub evidence: String,
    /// The key value, for key joins: it is what protection stops.
    pub key: Option<(String, String)>,
    /// Lower decides first.
    pub rank: u8,
}

impl Joiner {
    fn of_key(holder: KeyHolder) -> Joiner {
        let record = holder.record_id();
        Joiner {
            rank: key_rank(&holder.key_kind),
            rule: format!("key:{}", holder.key_kind),
            evidence: json!({ "kind": holder.key_kind, "value": holder.key_value }).to_string(),
            key: Some((holder.key_kind, holder.key_value)),
            score: None,
            record,
            profile_id: holder.profile_id,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn place(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    at: &RecordRef<'_>,
    own: Option<&str>,
    keys: &[ScopedKey],
    model_matches: Vec<Joiner>,
    protection: &mut graph::Protection,
    now: i64,
) -> StoreResult<Placement> {
    let linking: Vec<ScopedKey> = keys
        .iter()
        .filter(|k| !protection.blocks(k.kind, &k.value))
        .cloned()
        .collect();
    let mut best: BTreeMap<String, Joiner> = BTreeMap::new();
    let holders = tx.key_holders(workspace_id, &linking, HOLDER_LIMIT).await?;
    for joiner in holders.into_iter().map(Joiner::of_key).chain(model_matches) {
        if joiner.record.is(at) || Some(joiner.profile_id.as_str()) == own {
            continue;
        }
        match best.get(&joiner.profile_id) {
            Some(held) if held.rank <= joiner.rank => {}
            _ => {
                best.insert(joiner.profile_id.clone(), joiner);
            }
        }
    }
    // The most specific reason decides first: when a person kept two of the
    // candidates apart, the record stays with its own account's id rather
    // than with a shared phone, and a shared key beats a model match.
    let mut candidates = Vec::new();
    for (id, joiner) in &best {
        let stub = tx.profile_stub(id).await?;
        candidates.push((joiner.rank, stub));
    }
    candidates
        .sort_by(|(ra, a), (rb, b)| (ra, a.created_at, &a.id).cmp(&(rb, b.created_at, &b.id)));
    let candidates: Vec<ProfileStub> = candidates.into_iter().map(|(_, stub)| stub).collect();

    let mut placement = Placement {
        group: Vec::new(),
        links: Vec::new(),
        recheck: BTreeSet::new(),
    };
    let mut values: BTreeSet<(String, String)> = keys
        .iter()
        .filter(|k| matches!(k.kind, "email" | "phone"))
        .map(|k| (k.kind.to_string(), k.value.clone()))
        .collect();
    if let Some(own) = own {
        placement.group.push(tx.profile_stub(own).await?);
        values.extend(tx.profile_values(own).await?);
    }
    'candidates: for candidate in candidates {
        let joiner = &best[&candidate.id];
        if let Some((kind, value)) = &joiner.key {
            if protection.blocks(kind, value) {
                continue;
            }
        }
        for member in &placement.group {
            if tx.cannot_link_between(&member.id, &candidate.id).await? {
                continue 'candidates;
            }
        }
        let mut joined = values.clone();
        joined.extend(tx.profile_values(&candidate.id).await?);
        let crowded = ["email", "phone"].into_iter().find_map(|kind| {
            let n = joined.iter().filter(|(k, _)| k == kind).count();
            let limit = protection.settings().max_values_per_kind.get(kind).copied();
            (n > limit.unwrap_or(usize::MAX)).then_some((kind, n))
        });
        if let Some((crowded_kind, n)) = crowded {
            // A model match that would crowd a profile is simply not made;
            // a key that would is a value shared by many people.
            let Some((kind, value)) = &joiner.key else {
                continue;
            };
            let reason = format!(
                "{kind} {value} would join {n} distinct {crowded_kind} values in one profile"
            );
            tx.protect(workspace_id, kind, value, "detected", &reason, now)
                .await?;
            protection.insert(kind, value);
            placement.recheck.insert(candidate.id.clone());
            placement
                .recheck
                .extend(placement.group.iter().map(|p| p.id.clone()));
            continue;
        }
        values = joined;
        placement.links.push(joiner.clone());
        placement.group.push(candidate);
    }
    placement
        .group
        .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(placement)
}

/// How specific a key is: an account id names one person on one
/// connection; an email or phone may be shared.
fn key_rank(kind: &str) -> u8 {
    match kind {
        "customer_id" => 0,
        "wechat_unionid" => 1,
        "email" => 2,
        _ => 3,
    }
}

/// Mentions of another customer's email, phone or order in a message are
/// evidence, not proof: each becomes a suggestion a person decides on.
async fn suggest_from_mentions(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    profile_id: &str,
    message_ref: &RecordRef<'_>,
    message: &Message,
    region: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let text = message.text.as_deref().unwrap_or_default();
    for mention in mentions::find(text, region) {
        let (kind, value, others) = match &mention {
            Mention::Email(email) | Mention::Phone(email) => {
                let kind = if matches!(mention, Mention::Email(_)) {
                    "email"
                } else {
                    "phone"
                };
                let key = ScopedKey {
                    kind,
                    scope: String::new(),
                    value: email.clone(),
                };
                let found = tx.profiles_with_keys(workspace_id, &[key]).await?;
                (
                    kind,
                    email,
                    found.into_iter().map(|p| p.id).collect::<Vec<_>>(),
                )
            }
            Mention::Order(number) => (
                "order",
                number,
                tx.order_profile(workspace_id, number)
                    .await?
                    .into_iter()
                    .collect(),
            ),
        };
        for other in others.iter().filter(|other| other.as_str() != profile_id) {
            let (a, b) = if profile_id < other.as_str() {
                (profile_id, other.as_str())
            } else {
                (other.as_str(), profile_id)
            };
            let reason = format!("a message mentions the {kind} of another customer");
            let evidence = json!({
                "message": {"connection_id": message_ref.connection_id, "external_id": message_ref.external_id},
                "mention": {"kind": kind, "value": value},
                "message_profile": profile_id,
                "mentioned_profile": other,
            })
            .to_string();
            tx.suggest(&NewSuggestion {
                workspace_id,
                profile_a: a,
                profile_b: b,
                reason: &reason,
                evidence: &evidence,
                now,
            })
            .await?;
        }
    }
    Ok(())
}

/// Merges two profiles a person decided are one (an accepted suggestion):
/// the older survives, the other becomes its alias. Returns the survivor.
pub async fn merge_profiles(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    a: &str,
    b: &str,
    now: i64,
) -> StoreResult<String> {
    let (Some(a), Some(b)) = (tx.live_profile(a).await?, tx.live_profile(b).await?) else {
        return Err(StoreError::NotFound);
    };
    if a.id == b.id {
        return Ok(a.id);
    }
    let (survivor, absorbed) = if (a.created_at, &a.id) <= (b.created_at, &b.id) {
        (a, b)
    } else {
        (b, a)
    };
    // A person's merge overrides an earlier "not the same person", and is
    // itself a link: a later recomputation keeps the two together.
    tx.clear_cannot_links(&survivor.id, &absorbed.id).await?;
    let first = |rows: Vec<crate::store::RecordKeyRow>| {
        rows.first().map(crate::store::RecordKeyRow::record_id)
    };
    let left = first(tx.profile_keys(&survivor.id).await?);
    let right = first(tx.profile_keys(&absorbed.id).await?);
    if let (Some(left), Some(right)) = (left, right) {
        tx.add_link(&NewLink {
            workspace_id,
            a: left.as_ref(),
            b: right.as_ref(),
            rule: "manual",
            score: None,
            evidence: &json!({ "merged": [survivor.id, absorbed.id] }).to_string(),
            now,
        })
        .await?;
    }
    let mut applied = Applied::default();
    let (mut created, mut touched) = (BTreeSet::new(), BTreeSet::new());
    merge(
        tx,
        workspace_id,
        &survivor,
        &[absorbed],
        now,
        &mut created,
        &mut touched,
        &mut applied,
    )
    .await?;
    refresh_profile(tx, workspace_id, &survivor.id, false, now).await?;
    Ok(survivor.id)
}

/// Recomputes a profile's view from its records and open complaints, and
/// announces it in the change feed if it is new or changed. Returns whether
/// a change was appended.
pub async fn refresh_profile(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    id: &str,
    is_new: bool,
    now: i64,
) -> StoreResult<bool> {
    let records = tx.profile_records(id).await?;
    profile::consent::record_choices(tx, workspace_id, &records, now).await?;
    let settings = profile::settings::load(tx, workspace_id).await?;
    let stats = profile::stats::load(tx, workspace_id, &settings, now).await?;
    let context = profile::Context {
        settings,
        stats,
        now,
    };
    let mut view =
        profile::compute(&records, &context).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    view.traits.complaints = profile::ComplaintCounts::of(&tx.open_complaint_severities(id).await?);
    let identifiers = profile::consent::identifiers(&view.emails, &view.phones);
    view.consent = profile::consent::of_identifiers(tx, workspace_id, &identifiers).await?;
    // Segments filter on everything above, consent included.
    crate::segments::apply(tx, workspace_id, id, &mut view, now).await?;
    let view_json = serde_json::to_string(&view).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if !is_new && tx.profile_view(id).await? == view_json {
        return Ok(false);
    }
    tx.save_profile_view(id, &view_json, now).await?;
    crate::search::index(tx, workspace_id, id, &records, &view).await?;
    let kind = if is_new {
        "profile.created"
    } else {
        "profile.updated"
    };
    let data = json!({ "profile": view }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind,
        profile_id: id,
        data: &data,
        now,
    })
    .await?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn merge(
    tx: &mut dyn WriteTx,
    workspace_id: &str,
    survivor: &ProfileStub,
    absorbed: &[ProfileStub],
    now: i64,
    created: &mut BTreeSet<String>,
    touched: &mut BTreeSet<String>,
    applied: &mut Applied,
) -> StoreResult<()> {
    if absorbed.is_empty() {
        return Ok(());
    }
    for gone in absorbed {
        tx.absorb_profile(&survivor.id, &gone.id, now).await?;
        crate::segments::absorbed(tx, &survivor.id, &gone.id, now).await?;
        crate::search::forget(tx, &gone.id).await?;
        touched.remove(&gone.id);
        // A profile created and absorbed in the same delivery was never
        // announced; the survivor's change covers it.
        created.remove(&gone.id);
    }
    let absorbed_ids: Vec<&str> = absorbed.iter().map(|p| p.id.as_str()).collect();
    let data = json!({ "survivor": survivor.id, "absorbed": absorbed_ids }).to_string();
    tx.append_change(&NewChange {
        workspace_id,
        kind: "profile.merged",
        profile_id: &survivor.id,
        data: &data,
        now,
    })
    .await?;
    applied.changes += 1;
    Ok(())
}
