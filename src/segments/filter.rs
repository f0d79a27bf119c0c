//! The segment filter language: JSON over the profile view.
//!
//! ```json
//! {"all": [
//!   {"field": "traits.lifecycle_stage", "op": "eq", "value": "at_risk"},
//!   {"field": "golden.region", "op": "in", "value": ["Zhejiang", "浙江省"]},
//!   {"field": "traits.order_count", "op": "gte", "value": 2},
//!   {"consent": {"channel": "sms", "granted": true}}
//! ]}
//! ```
//!
//! - Combinators: `all` (every one), `any` (at least one), `not`.
//! - A condition names a dotted `field` of the view, an `op` and a `value`.
//!   Walking into a list looks into each element (`identities.platform` is
//!   the platforms of all identities); a `golden.*` field compares the
//!   golden value, not its source. A field holding a list matches when any
//!   element does.
//! - Ops: `eq`, `ne` (no value equals), `gt`/`gte`/`lt`/`lte` (numbers, and
//!   decimal strings such as `total_spent.CNY`, compare as numbers; other
//!   strings such as dates compare as text), `in` (value is a list),
//!   `contains` (a list holds the value, or a text holds it case-insensitively),
//!   `exists` (value `true`, the default, or `false`).
//! - Shorthands: `{"platform": "taobao"}` (a record or identity from that
//!   platform), `{"tag": "vip"}`, `{"consent": {"channel": "sms", "granted": true}}`
//!   (`granted: false` matches people without a granted entry for the channel).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// Fields a condition may start with.
const ROOTS: &[&str] = &[
    "name",
    "emails",
    "phones",
    "identities",
    "traits",
    "golden",
    "tags",
    "consent",
];
const CHANNELS: &[&str] = &["email_marketing", "sms", "chat"];
const MAX_DEPTH: usize = 16;
const MAX_NODES: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Condition {
        path: Vec<String>,
        op: Op,
        value: Value,
    },
    Platform(String),
    Tag(String),
    Consent {
        channel: String,
        granted: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    Exists,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "contains" => Op::Contains,
            "exists" => Op::Exists,
            _ => return None,
        })
    }
}

/// Reads and validates a filter; the error names where the problem is
/// (`filter.all[1].op: ...`).
pub fn parse(value: &Value) -> Result<Filter, String> {
    let mut nodes = 0;
    parse_at(value, "filter", 0, &mut nodes)
}

fn parse_at(value: &Value, at: &str, depth: usize, nodes: &mut usize) -> Result<Filter, String> {
    *nodes += 1;
    if depth > MAX_DEPTH {
        return Err(format!("{at}: nested more than {MAX_DEPTH} levels"));
    }
    if *nodes > MAX_NODES {
        return Err(format!("filter: more than {MAX_NODES} parts"));
    }
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object"))?;
    let one_key = |key: &str| -> Result<(), String> {
        if object.len() == 1 {
            Ok(())
        } else {
            Err(format!("{at}: `{key}` must be the only key of its object"))
        }
    };
    let list = |key: &str, nodes: &mut usize| -> Result<Vec<Filter>, String> {
        let items = object[key]
            .as_array()
            .ok_or_else(|| format!("{at}.{key}: expected a list of filters"))?;
        if items.is_empty() {
            return Err(format!("{at}.{key}: empty list"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_at(item, &format!("{at}.{key}[{i}]"), depth + 1, nodes))
            .collect()
    };
    if object.contains_key("all") {
        one_key("all")?;
        return Ok(Filter::All(list("all", nodes)?));
    }
    if object.contains_key("any") {
        one_key("any")?;
        return Ok(Filter::Any(list("any", nodes)?));
    }
    if let Some(inner) = object.get("not") {
        one_key("not")?;
        let inner = parse_at(inner, &format!("{at}.not"), depth + 1, nodes)?;
        return Ok(Filter::Not(Box::new(inner)));
    }
    if let Some(platform) = object.get("platform") {
        one_key("platform")?;
        return Ok(Filter::Platform(non_empty_text(
            platform,
            &format!("{at}.platform"),
        )?));
    }
    if let Some(tag) = object.get("tag") {
        one_key("tag")?;
        let tag = non_empty_text(tag, &format!("{at}.tag"))?;
        return Ok(Filter::Tag(crate::tags::normalise(&tag)));
    }
    if let Some(consent) = object.get("consent") {
        one_key("consent")?;
        return parse_consent(consent, &format!("{at}.consent"));
    }
    if object.contains_key("field") {
        return parse_condition(object, at);
    }
    Err(format!(
        "{at}: expected one of all, any, not, field, platform, tag, consent"
    ))
}

fn non_empty_text(value: &Value, at: &str) -> Result<String, String> {
    match value.as_str().map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text.to_string()),
        _ => Err(format!("{at}: expected a non-empty string")),
    }
}

fn parse_consent(value: &Value, at: &str) -> Result<Filter, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at}: expected {{\"channel\", \"granted\"}}"))?;
    if let Some(key) = object
        .keys()
        .find(|k| !["channel", "granted"].contains(&k.as_str()))
    {
        return Err(format!(
            "{at}.{key}: unknown key (expected channel, granted)"
        ));
    }
    let channel = non_empty_text(
        object.get("channel").unwrap_or(&Value::Null),
        &format!("{at}.channel"),
    )?;
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(format!(
            "{at}.channel: expected one of {}",
            CHANNELS.join(", ")
        ));
    }
    let granted = match object.get("granted") {
        None => true,
        Some(Value::Bool(granted)) => *granted,
        Some(_) => return Err(format!("{at}.granted: expected true or false")),
    };
    Ok(Filter::Consent { channel, granted })
}

fn parse_condition(object: &serde_json::Map<String, Value>, at: &str) -> Result<Filter, String> {
    if let Some(key) = object
        .keys()
        .find(|k| !["field", "op", "value"].contains(&k.as_str()))
    {
        return Err(format!(
            "{at}.{key}: unknown key (expected field, op, value)"
        ));
    }
    let field = non_empty_text(&object["field"], &format!("{at}.field"))?;
    let path: Vec<String> = field.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) {
        return Err(format!("{at}.field: `{field}` has an empty part"));
    }
    if !ROOTS.contains(&path[0].as_str()) {
        return Err(format!(
            "{at}.field: `{field}` is not a profile field (start with one of {})",
            ROOTS.join(", ")
        ));
    }
    let op_name = object
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}.op: missing"))?;
    let op = Op::parse(op_name).ok_or_else(|| {
        format!("{at}.op: unknown op `{op_name}` (expected eq, ne, gt, gte, lt, lte, in, contains, exists)")
    })?;
    let value = object.get("value").cloned();
    let value = match (op, value) {
        (Op::Exists, None) => Value::Bool(true),
        (Op::Exists, Some(Value::Bool(b))) => Value::Bool(b),
        (Op::Exists, Some(_)) => return Err(format!("{at}.value: exists takes true or false")),
        (_, None) | (_, Some(Value::Null)) => return Err(format!("{at}.value: missing")),
        (Op::In, Some(Value::Array(items))) if !items.is_empty() => Value::Array(items),
        (Op::In, Some(_)) => return Err(format!("{at}.value: in takes a non-empty list")),
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v)) if v.is_number() || v.is_string() => v,
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(_)) => {
            return Err(format!("{at}.value: {op_name} takes a number or a string"))
        }
        (_, Some(Value::Array(_) | Value::Object(_))) => {
            return Err(format!("{at}.value: {op_name} takes a single value"))
        }
        (_, Some(v)) => v,
    };
    Ok(Filter::Condition { path, op, value })
}

impl Filter {
    /// Whether the profile view (as JSON) matches.
    pub fn matches(&self, view: &Value) -> bool {
        match self {
            Filter::All(parts) => parts.iter().all(|f| f.matches(view)),
            Filter::Any(parts) => parts.iter().any(|f| f.matches(view)),
            Filter::Not(inner) => !inner.matches(view),
            Filter::Condition { path, op, value } => condition(&resolve(view, path), *op, value),
            Filter::Platform(platform) => has_platform(view, platform),
            Filter::Tag(tag) => view["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag))),
            Filter::Consent { channel, granted } => {
                let has = view["consent"].as_array().is_some_and(|entries| {
                    entries.iter().any(|e| {
                        e["channel"].as_str() == Some(channel) && e["granted"] == Value::Bool(true)
                    })
                });
                has == *granted
            }
        }
    }
}

/// The values a dotted path reaches; lists met on the way are looked into.
fn resolve<'a>(view: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let mut current = vec![view];
    for key in path {
        let mut next = Vec::new();
        for value in current {
            match value {
                Value::Object(map) => next.extend(map.get(key)),
                Value::Array(items) => next.extend(items.iter().filter_map(|i| i.get(key))),
                _ => {}
            }
        }
        current = next;
    }
    if path[0] == "golden" && path.len() == 2 {
        // A golden field is {"value", "source"}: compare the value.
        current = current
            .into_iter()
            .map(|v| v.get("value").unwrap_or(v))
            .collect();
    }
    current.into_iter().filter(|v| !v.is_null()).collect()
}

fn condition(found: &[&Value], op: Op, expected: &Value) -> bool {
    // A list-valued field matches when any element does.
    let scalars = || {
        found.iter().flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![*other],
        })
    };
    match op {
        Op::Exists => found.is_empty() != (expected == &Value::Bool(true)),
        Op::Eq => scalars().any(|v| equal(v, expected)),
        Op::Ne => !scalars().any(|v| equal(v, expected)),
        Op::In => expected
            .as_array()
            .is_some_and(|options| scalars().any(|v| options.iter().any(|o| equal(v, o)))),
        Op::Contains => found.iter().any(|v| match (v, expected) {
            (Value::Array(items), _) => items.iter().any(|i| equal(i, expected)),
            (Value::String(text), Value::String(needle)) => {
                text.to_lowercase().contains(&needle.to_lowercase())
            }
            _ => false,
        }),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => scalars().any(|v| {
            compare(v, expected).is_some_and(|ordering| match op {
                Op::Gt => ordering.is_gt(),
                Op::Gte => ordering.is_ge(),
                Op::Lt => ordering.is_lt(),
                _ => ordering.is_le(),
            })
        }),
    }
}

fn number(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    if a.is_number() || b.is_number() {
        if let (Some(x), Some(y)) = (number(a), number(b)) {
            return x == y;
        }
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    if b.is_number() || a.is_number() {
        return Some(number(a)?.cmp(&number(b)?));
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

fn has_platform(view: &Value, platform: &str) -> bool {
    view["identities"].as_array().is_some_and(|identities| {
        identities.iter().any(|identity| {
            identity["platform"].as_str() == Some(platform)
                || identity["sources"].as_array().is_some_and(|sources| {
                    sources
                        .iter()
                        .any(|s| s["platform"].as_str() == Some(platform))
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> Value {
        json!({
            "name": "王芳",
            "emails": ["fang@example.com"],
            "phones": ["+8613800000001"],
            "identities": [
                {"kind": "email", "value": "fang@example.com",
                 "sources": [{"platform": "taobao", "connection_id": "c1", "record": "order", "external_id": "o1"}]},
                {"kind": "customer_id", "value": "u1", "platform": "youzan",
                 "sources": [{"platform": "youzan", "connection_id": "c2", "record": "customer", "external_id": "u1"}]}
            ],
            "traits": {"order_count": 3, "total_spent": {"CNY": "459.90"}, "lifecycle_stage": "at_risk",
                       "last_order_at": "2026-05-01T00:00:00Z", "review_average": null,
                       "complaints": {"open": 1, "by_severity": {"high": 1}}},
            "golden": {"region": {"value": "浙江省", "source": {"connection_id": "c1", "kind": "order", "external_id": "o1"}},
                       "city": {"value": "杭州市", "source": {}}, "country": null},
            "tags": ["vip", "wholesale"],
            "consent": [{"identifier": "phone:+8613800000001", "channel": "sms", "granted": true, "source": "form", "at": "2026-01-01T00:00:00Z"},
                        {"identifier": "email:fang@example.com", "channel": "email_marketing", "granted": false, "source": "shopify", "at": "2026-01-01T00:00:00Z"}]
        })
    }

    fn matches(filter: Value) -> bool {
        parse(&filter).unwrap().matches(&view())
    }

    #[test]
    fn the_at_risk_zhejiang_sms_example_matches() {
        let filter = json!({"all": [
            {"field": "traits.lifecycle_stage", "op": "eq", "value": "at_risk"},
            {"field": "golden.region", "op": "in", "value": ["Zhejiang", "浙江", "浙江省"]},
            {"field": "traits.order_count", "op": "gte", "value": 2},
            {"consent": {"channel": "sms", "granted": true}}
        ]});
        assert!(matches(filter.clone()));
        let mut other = view();
        other["golden"]["region"]["value"] = json!("江苏省");
        assert!(!parse(&filter).unwrap().matches(&other));
        let mut once = view();
        once["traits"]["order_count"] = json!(1);
        assert!(!parse(&filter).unwrap().matches(&once));
    }

    #[test]
    fn comparisons_read_numbers_and_decimal_strings() {
        assert!(matches(
            json!({"field": "traits.order_count", "op": "gt", "value": 2})
        ));
        assert!(!matches(
            json!({"field": "traits.order_count", "op": "lt", "value": 3})
        ));
        assert!(matches(
            json!({"field": "traits.order_count", "op": "lte", "value": 3})
        ));
        assert!(matches(
            json!({"field": "traits.total_spent.CNY", "op": "gte", "value": 459.9})
        ));
        assert!(!matches(
            json!({"field": "traits.total_spent.CNY", "op": "gt", "value": "459.90"})
        ));
        assert!(matches(
            json!({"field": "traits.last_order_at", "op": "lt", "value": "2026-06-01"})
        ));
        assert!(matches(
            json!({"field": "traits.order_count", "op": "eq", "value": 3})
        ));
        assert!(matches(
            json!({"field": "traits.order_count", "op": "ne", "value": 4})
        ));
    }

    #[test]
    fn lists_paths_and_golden_values() {
        assert!(matches(
            json!({"field": "tags", "op": "contains", "value": "vip"})
        ));
        assert!(!matches(
            json!({"field": "tags", "op": "contains", "value": "vi"})
        ));
        assert!(matches(
            json!({"field": "tags", "op": "eq", "value": "wholesale"})
        ));
        assert!(matches(
            json!({"field": "identities.platform", "op": "eq", "value": "youzan"})
        ));
        assert!(matches(
            json!({"field": "emails", "op": "contains", "value": "fang@example.com"})
        ));
        assert!(matches(
            json!({"field": "name", "op": "contains", "value": "芳"})
        ));
        assert!(matches(
            json!({"field": "golden.city", "op": "eq", "value": "杭州市"})
        ));
        assert!(matches(json!({"field": "golden.region", "op": "exists"})));
        assert!(matches(
            json!({"field": "golden.country", "op": "exists", "value": false})
        ));
        assert!(matches(
            json!({"field": "traits.review_average", "op": "exists", "value": false})
        ));
        assert!(matches(
            json!({"field": "traits.complaints.by_severity.high", "op": "gte", "value": 1})
        ));
    }

    #[test]
    fn shorthands_and_combinators() {
        assert!(matches(json!({"platform": "taobao"})));
        assert!(matches(json!({"platform": "youzan"})));
        assert!(!matches(json!({"platform": "shopify"})));
        assert!(matches(json!({"tag": "VIP"})));
        assert!(!matches(
            json!({"consent": {"channel": "email_marketing", "granted": true}})
        ));
        assert!(matches(
            json!({"consent": {"channel": "email_marketing", "granted": false}})
        ));
        assert!(matches(
            json!({"any": [{"tag": "nope"}, {"platform": "taobao"}]})
        ));
        assert!(!matches(json!({"not": {"platform": "taobao"}})));
        assert!(matches(
            json!({"all": [{"not": {"tag": "nope"}}, {"tag": "vip"}]})
        ));
    }

    #[test]
    fn invalid_filters_say_where() {
        let error = |filter: Value| parse(&filter).unwrap_err();
        assert_eq!(error(json!([])), "filter: expected an object");
        assert!(error(
            json!({"all": [{"tag": "a"}, {"field": "traits.x", "op": "gtx", "value": 1}]})
        )
        .starts_with("filter.all[1].op: unknown op `gtx`"));
        assert!(error(json!({"field": "password", "op": "eq", "value": 1}))
            .starts_with("filter.field: `password` is not a profile field"));
        assert!(
            error(json!({"field": "traits.order_count", "op": "in", "value": 2}))
                .contains("in takes a non-empty list")
        );
        assert!(
            error(json!({"field": "traits.order_count", "op": "gte"})).ends_with("value: missing")
        );
        assert!(error(json!({"consent": {"channel": "fax"}})).starts_with("filter.consent.channel"));
        assert!(error(json!({"any": []})).ends_with("empty list"));
        assert!(error(json!({"all": [{"tag": "a"}], "any": [{"tag": "b"}]})).contains("only key"));
        assert!(error(json!({"nope": 1})).contains("expected one of"));
        let mut deep = json!({"tag": "a"});
        for _ in 0..20 {
            deep = json!({"not": deep});
        }
        assert!(error(deep).contains("nested more than"));
    }
}
