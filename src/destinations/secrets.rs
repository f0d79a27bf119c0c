//! Webhook signing secrets: `whsec_<base64>`, several active at once so a
//! receiver can move to a new one without missing a delivery.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

const PREFIX: &str = "whsec_";
/// Secrets replaced by a PATCH, each with the time (ms) it stops signing.
pub const RETIRED: &str = "retired_signing_secrets";

/// The key bytes of a `whsec_` secret (Standard Webhooks: base64 after the prefix).
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(PREFIX)
        .ok_or_else(|| "must start with whsec_".to_string())?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "must be whsec_ followed by base64".to_string())?;
    // Standard Webhooks secrets are 24 to 64 bytes.
    if !(24..=64).contains(&key.len()) {
        return Err("must hold 24 to 64 bytes of key".into());
    }
    Ok(key)
}

/// The configured secrets: `signing_secret` and the `signing_secrets` list.
pub fn configured(secrets: &Map<String, Value>) -> Vec<&str> {
    let mut out: Vec<&str> = secrets
        .get("signing_secret")
        .and_then(Value::as_str)
        .into_iter()
        .collect();
    if let Some(Value::Array(list)) = secrets.get("signing_secrets") {
        out.extend(list.iter().filter_map(Value::as_str));
    }
    out
}

/// Every key that signs a message at `now`: the configured ones and the
/// retired ones still in their grace period.
pub fn active_keys(secrets: &Map<String, Value>, now_ms: i64) -> Result<Vec<Vec<u8>>, String> {
    let mut keys = Vec::new();
    for secret in configured(secrets) {
        keys.push(key_of(secret)?);
    }
    if let Some(Value::Array(retired)) = secrets.get(RETIRED) {
        for entry in retired {
            let until = entry.get("until").and_then(Value::as_i64).unwrap_or(0);
            if let (Some(secret), true) =
                (entry.get("secret").and_then(Value::as_str), until > now_ms)
            {
                keys.push(key_of(secret)?);
            }
        }
    }
    keys.dedup();
    Ok(keys)
}

/// After a PATCH: configured secrets that were dropped keep signing for
/// `grace_ms`, so receivers can switch over; expired ones are forgotten.
pub fn retire_replaced(
    before: &Map<String, Value>,
    after: &mut Map<String, Value>,
    grace_ms: i64,
    now_ms: i64,
) {
    let kept: Vec<String> = configured(after).into_iter().map(str::to_string).collect();
    let mut retired: Vec<Value> = match before.get(RETIRED) {
        Some(Value::Array(list)) => list
            .iter()
            .filter(|e| e.get("until").and_then(Value::as_i64).unwrap_or(0) > now_ms)
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    for secret in configured(before) {
        if !kept.iter().any(|k| k == secret) {
            retired.push(json!({"secret": secret, "until": now_ms + grace_ms}));
        }
    }
    if retired.is_empty() {
        after.remove(RETIRED);
    } else {
        after.insert(RETIRED.into(), Value::Array(retired));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> String {
        format!("whsec_{}", STANDARD.encode([byte; 32]))
    }

    #[test]
    fn a_replaced_secret_signs_until_its_grace_ends() {
        let mut before = Map::new();
        before.insert("signing_secret".into(), json!(secret(1)));
        let mut after = Map::new();
        after.insert("signing_secret".into(), json!(secret(2)));
        retire_replaced(&before, &mut after, 1000, 5000);
        assert_eq!(active_keys(&after, 5500).unwrap().len(), 2);
        assert_eq!(active_keys(&after, 6000).unwrap(), vec![vec![2u8; 32]]);
    }

    #[test]
    fn refuses_malformed_secrets() {
        assert!(key_of("abc").is_err());
        assert!(key_of("whsec_!!!").is_err());
        assert!(key_of(&format!("whsec_{}", STANDARD.encode([1u8; 8]))).is_err());
        assert!(key_of(&secret(3)).is_ok());
    }
}
