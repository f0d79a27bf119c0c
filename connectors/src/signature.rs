//! HMAC helpers shared by the platform verifiers.
//!
//! Each platform differs only in what it signs and how it writes the digest
//! (base64, hex); the comparison itself is always the `hmac` crate's
//! constant-time `verify_slice`, tried against every candidate secret so a
//! secret rotation never drops genuine deliveries.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `msg` keyed with `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    mac(key, msg).finalize().into_bytes().into()
}

/// Whether `expected` is the HMAC-SHA256 of `msg` under any of `secrets`.
///
/// Every secret is tried (no early exit), so timing does not reveal which one
/// matched; each comparison is constant-time.
pub fn verify_hmac_sha256(secrets: &[&[u8]], msg: &[u8], expected: &[u8]) -> bool {
    secrets.iter().fold(false, |found, secret| {
        mac(secret, msg).verify_slice(expected).is_ok() | found
    })
}

/// Verifies a base64 (standard alphabet) HMAC-SHA256 of `body`, as Shopify
/// and WooCommerce send it. An undecodable header is simply a mismatch.
pub fn verify_base64_hmac_sha256(secrets: &[&[u8]], body: &[u8], header_value: &str) -> bool {
    match base64::engine::general_purpose::STANDARD.decode(header_value.trim()) {
        Ok(digest) => verify_hmac_sha256(secrets, body, &digest),
        Err(_) => false,
    }
}

/// Verifies a hex (either case) HMAC-SHA256 of `msg`, such as Shopify's
/// OAuth query `hmac` parameter.
pub fn verify_hex_hmac_sha256(secrets: &[&[u8]], msg: &[u8], hex_digest: &str) -> bool {
    match hex::decode(hex_digest.trim()) {
        Ok(digest) => verify_hmac_sha256(secrets, msg, &digest),
        Err(_) => false,
    }
}

/// Lower-case hex SHA-256 of `data`: the content-derived dedupe key fallback.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn mac(key: &[u8], msg: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, including empty (WooCommerce signs
    // with an empty key when the webhook has no secret).
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac
}

/// Equality whose time depends only on the lengths, which are public
/// here (digest sizes, configured token lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Hex MD5 of `prefix + body + secret` (Youzan's `Event-Sign`, Douyin's
/// `event-sign`), checked against every candidate secret in constant time.
pub fn verify_hex_md5_sandwich(
    secrets: &[&[u8]],
    prefix: &[u8],
    body: &[u8],
    hex_sign: &str,
) -> bool {
    use md5::{Digest, Md5};
    let Ok(expected) = hex::decode(hex_sign.trim()) else {
        return false;
    };
    secrets.iter().fold(false, |found, secret| {
        let mut hash = Md5::new();
        hash.update(prefix);
        hash.update(body);
        hash.update(secret);
        constant_time_eq(&hash.finalize(), &expected) | found
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::fixtures;

    /// (secret, message, expected header value) of a named shared vector.
    fn vector(name: &str, header: &str) -> (String, String, String) {
        let all = fixtures::load("signature-test-vectors.json");
        let v = all["vectors"]
            .as_array()
            .expect("vectors array")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("vector {name} missing"));
        let s = |x: &serde_json::Value| x.as_str().expect("string").to_owned();
        (
            s(&v["inputs"]["secret"]),
            s(&v["inputs"]["body"]),
            s(&v["expected"][header]),
        )
    }

    #[test]
    fn shopify_vector_verifies() {
        let (secret, body, sig) = vector("shopify-webhook", "X-Shopify-Hmac-Sha256");
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(secret.as_bytes(), body.as_bytes()));
        assert_eq!(b64, sig);
        assert!(verify_base64_hmac_sha256(
            &[secret.as_bytes()],
            body.as_bytes(),
            &sig
        ));
    }

    #[test]
    fn woocommerce_vector_verifies() {
        let (secret, body, sig) = vector("woocommerce-webhook", "X-WC-Webhook-Signature");
        assert!(verify_base64_hmac_sha256(
            &[secret.as_bytes()],
            body.as_bytes(),
            &sig
        ));
    }

    #[test]
    fn shopify_oauth_hex_vector_verifies() {
        // Same primitive, hex-encoded over a query string: the official vector.
        let secret = b"hush";
        let msg = b"code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173";
        let hmac = "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20";
        assert!(verify_hex_hmac_sha256(&[secret], msg, hmac));
        assert!(verify_hex_hmac_sha256(&[secret], msg, &hmac.to_uppercase()));
        assert!(!verify_hex_hmac_sha256(&[b"hushh"], msg, hmac));
        assert!(!verify_hex_hmac_sha256(&[secret], msg, "not hex"));
    }

    #[test]
    fn mismatches_are_rejected() {
        let (secret, body, sig) = vector("shopify-webhook", "X-Shopify-Hmac-Sha256");
        let tampered = body.replace("1001", "1002");
        assert!(!verify_base64_hmac_sha256(
            &[secret.as_bytes()],
            tampered.as_bytes(),
            &sig
        ));
        assert!(!verify_base64_hmac_sha256(
            &[b"wrong"],
            body.as_bytes(),
            &sig
        ));
        assert!(!verify_base64_hmac_sha256(&[], body.as_bytes(), &sig));
        assert!(!verify_base64_hmac_sha256(
            &[secret.as_bytes()],
            body.as_bytes(),
            "%%% not base64"
        ));
        assert!(!verify_base64_hmac_sha256(
            &[secret.as_bytes()],
            body.as_bytes(),
            ""
        ));
        // A truncated digest must not pass as a prefix match.
        let digest = hmac_sha256(secret.as_bytes(), body.as_bytes());
        let short = base64::engine::general_purpose::STANDARD.encode(&digest[..16]);
        assert!(!verify_base64_hmac_sha256(
            &[secret.as_bytes()],
            body.as_bytes(),
            &short
        ));
    }

    #[test]
    fn any_candidate_secret_may_match() {
        let (secret, body, sig) = vector("woocommerce-webhook", "X-WC-Webhook-Signature");
        assert!(verify_base64_hmac_sha256(
            &[b"old", secret.as_bytes()],
            body.as_bytes(),
            &sig
        ));
        assert!(verify_base64_hmac_sha256(
            &[secret.as_bytes(), b"new"],
            body.as_bytes(),
            &sig
        ));
    }

    #[test]
    fn sha256_hex_is_lower_case_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
