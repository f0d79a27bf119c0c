//! The OAuth install flow: shop domains, the install URL, the query HMAC
//! (official vector), callbacks, and the token endpoint of the fake shop.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::fake::{self, Shop};
use crate::payload::fixtures;
use crate::poll::ConnectorError;
use crate::shopify::oauth::{
    exchange_code, exchange_code_expiring, install_url, refresh_access_token, valid_shop_domain,
    verify_callback, verify_query_hmac, Callback, OAuthError,
};
use crate::signature::hmac_sha256;
use crate::testkit::ApiFixture;

const SECRET: &str = "hush";

fn hex_hmac(secret: &str, message: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

/// The official vector as (secret, query with its real hmac, hmac).
fn official() -> (String, String, String) {
    let all = fixtures::load("signature-test-vectors.json");
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "shopify-oauth-query")
        .expect("shopify-oauth-query vector")
        .clone();
    assert_eq!(v["official_vector"], true);
    let hmac = v["expected"]["hmac"].as_str().unwrap().to_owned();
    let query = v["inputs"]["query"]
        .as_str()
        .unwrap()
        .replace("hmac=...", &format!("hmac={hmac}"));
    (
        v["inputs"]["client_secret"].as_str().unwrap().to_owned(),
        query,
        hmac,
    )
}

#[test]
fn only_myshopify_hostnames_are_shop_domains() {
    for good in [
        "some-shop.myshopify.com",
        "shop1.myshopify.com",
        "a.myshopify.com",
        "Some-Shop.MYSHOPIFY.com",
    ] {
        assert!(valid_shop_domain(good), "{good}");
    }
    for bad in [
        "",
        "myshopify.com",
        ".myshopify.com",
        "-shop.myshopify.com",
        "shop-.myshopify.com",
        "sub.shop.myshopify.com",
        "shop.myshopify.com.",
        "shop.myshopify.com.evil.com",
        "evil.com/shop.myshopify.com",
        "shop.myshopify.com/",
        "shop.myshopify.com:443",
        "user@shop.myshopify.com",
        "https://shop.myshopify.com",
        "shop_underscore.myshopify.com",
        "shop .myshopify.com",
        "shop.myshopify.io",
        "shop.shopify.com",
    ] {
        assert!(!valid_shop_domain(bad), "{bad}");
    }
    let long = format!("{}.myshopify.com", "a".repeat(64));
    assert!(!valid_shop_domain(&long));
}

#[test]
fn the_install_url_asks_for_offline_access() {
    let url = install_url(
        "Example-Store.myshopify.com",
        "abc123",
        &["read_orders", "read_customers"],
        "https://hub.example.com/shopify/callback?conn=1",
        "n0nce",
    )
    .unwrap();
    assert_eq!(
        url,
        "https://example-store.myshopify.com/admin/oauth/authorize?client_id=abc123\
&scope=read_orders%2Cread_customers\
&redirect_uri=https%3A%2F%2Fhub.example.com%2Fshopify%2Fcallback%3Fconn%3D1\
&state=n0nce"
    );
    assert!(!url.contains("grant_options"));
}

#[test]
fn the_install_url_refuses_bad_input() {
    let url = |shop: &str, client: &str, redirect: &str, state: &str| {
        install_url(shop, client, &["read_orders"], redirect, state)
    };
    let ok = "https://hub.example.com/cb";
    assert_eq!(
        url("evil.example", "abc", ok, "s"),
        Err(OAuthError::InvalidShopDomain)
    );
    assert_eq!(
        url("shop.myshopify.com.evil.example", "abc", ok, "s"),
        Err(OAuthError::InvalidShopDomain)
    );
    assert_eq!(
        url("shop.myshopify.com", " ", ok, "s"),
        Err(OAuthError::Missing("client_id"))
    );
    assert_eq!(
        url("shop.myshopify.com", "abc", ok, ""),
        Err(OAuthError::Missing("state"))
    );
    for bad in [
        "/relative/cb",
        "javascript:alert(1)",
        "ftp://hub.example.com/cb",
        "",
    ] {
        assert_eq!(
            url("shop.myshopify.com", "abc", bad, "s"),
            Err(OAuthError::InvalidRedirectUri),
            "{bad}"
        );
    }
}

#[test]
fn the_official_query_vector_verifies() {
    let (secret, query, hmac) = official();
    assert_eq!(secret, SECRET);
    assert!(verify_query_hmac(&query, &secret));
    assert!(verify_query_hmac(&format!("?{query}"), &secret));
    // Order on the wire does not matter; the legacy signature is ignored.
    let shuffled = format!(
        "timestamp=1337178173&hmac={hmac}&shop=some-shop.myshopify.com&signature=ignored&code=0907a61c0c8d55e99db179b68161bc00"
    );
    assert!(verify_query_hmac(&shuffled, &secret));
    assert!(verify_query_hmac(
        &query.replace(&hmac, &hmac.to_uppercase()),
        &secret
    ));
    // The signed message is exactly the documented one.
    assert_eq!(
        hex_hmac(
            SECRET,
            "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173"
        ),
        hmac
    );
}

#[test]
fn tampered_or_unsigned_queries_fail() {
    let (secret, query, hmac) = official();
    assert!(!verify_query_hmac(&query, "hushh"));
    assert!(!verify_query_hmac(&query, ""));
    assert!(!verify_query_hmac(
        &query.replace("some-shop", "evil-shop"),
        &secret
    ));
    assert!(!verify_query_hmac(
        &query.replace("1337178173", "1337178174"),
        &secret
    ));
    assert!(!verify_query_hmac(&format!("{query}&extra=1"), &secret));
    assert!(!verify_query_hmac(
        &query.replace(&format!("hmac={hmac}&"), ""),
        &secret
    ));
    assert!(
        !verify_query_hmac(&format!("{query}&hmac={hmac}"), &secret),
        "two hmacs"
    );
    assert!(!verify_query_hmac(
        &query.replace(&hmac, &hmac[..32]),
        &secret
    ));
    assert!(!verify_query_hmac(&query.replace(&hmac, "zz"), &secret));
    assert!(!verify_query_hmac(&format!("{query}&bad=%G0"), &secret));
    assert!(!verify_query_hmac("", &secret));
}

#[test]
fn special_characters_are_signed_form_encoded() {
    // host is base64 and may carry + / =; values are decoded, then written
    // form-encoded (space as %20) like Shopify's app libraries do.
    let message = "host=YWRt%2Bx%2F%3D&shop=a-shop.myshopify.com&state=a%20b&timestamp=1";
    let hmac = hex_hmac(SECRET, message);
    let query =
        format!("shop=a-shop.myshopify.com&host=YWRt%2Bx%2F%3D&state=a+b&timestamp=1&hmac={hmac}");
    assert!(verify_query_hmac(&query, SECRET));
    // The plain-decoded join is not what is signed.
    let plain = hex_hmac(
        SECRET,
        "host=YWRt+x/=&shop=a-shop.myshopify.com&state=a b&timestamp=1",
    );
    let query =
        format!("shop=a-shop.myshopify.com&host=YWRt%2Bx%2F%3D&state=a+b&timestamp=1&hmac={plain}");
    assert!(!verify_query_hmac(&query, SECRET));
}

fn callback_query(shop: &str, state: &str, timestamp: i64) -> String {
    let message = format!(
        "code={}&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZXhhbXBsZQ&shop={shop}&state={state}&timestamp={timestamp}",
        fake::CODE
    );
    let hmac = hex_hmac(SECRET, &message);
    format!("{message}&hmac={hmac}")
}

#[test]
fn callbacks_are_verified_completely() {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 7, 0, 0).unwrap();
    let ts = now.timestamp();
    assert_eq!(
        verify_callback(
            &callback_query("example-store.myshopify.com", "n0nce", ts - 30),
            SECRET,
            "n0nce",
            now
        ),
        Ok(Callback {
            shop: "example-store.myshopify.com".to_owned(),
            code: fake::CODE.to_owned(),
            host: Some("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZXhhbXBsZQ".to_owned()),
        })
    );
    let check = |query: String, state: &str| verify_callback(&query, SECRET, state, now);
    assert_eq!(
        check(
            callback_query("example-store.myshopify.com", "n0nce", ts),
            "other"
        ),
        Err(OAuthError::StateMismatch)
    );
    assert_eq!(
        check(
            callback_query("example-store.myshopify.com", "n0nce", ts),
            ""
        ),
        Err(OAuthError::StateMismatch)
    );
    assert_eq!(
        check(
            callback_query("example-store.myshopify.com", "n0nce", ts - 91),
            "n0nce"
        ),
        Err(OAuthError::Stale)
    );
    assert_eq!(
        check(
            callback_query("example-store.myshopify.com", "n0nce", ts + 91),
            "n0nce"
        ),
        Err(OAuthError::Stale)
    );
    // Correctly signed (by whoever holds the secret) but not a shop domain.
    assert_eq!(
        check(callback_query("attacker.example", "n0nce", ts), "n0nce"),
        Err(OAuthError::InvalidShopDomain)
    );
    assert_eq!(
        verify_callback(
            &callback_query("example-store.myshopify.com", "n0nce", ts),
            "wrong",
            "n0nce",
            now
        ),
        Err(OAuthError::BadHmac)
    );
    let no_code = {
        let message = format!("shop=example-store.myshopify.com&state=n0nce&timestamp={ts}");
        format!("{message}&hmac={}", hex_hmac(SECRET, &message))
    };
    assert_eq!(check(no_code, "n0nce"), Err(OAuthError::Missing("code")));
}

// --- token endpoint -------------------------------------------------------

fn api_for(base: &str) -> ApiFixture {
    ApiFixture::new(base, json!({"shop_domain": fake::SHOP_DOMAIN}), json!({}))
}

#[tokio::test]
async fn a_code_is_exchanged_once_for_an_offline_token() {
    let (base, shop) = fake::start(Shop::default()).await;
    let api = api_for(&base);
    let token = exchange_code(&api.api(), fake::CLIENT_ID, fake::CLIENT_SECRET, fake::CODE)
        .await
        .unwrap();
    assert_eq!(token.access_token, fake::TOKEN);
    assert_eq!(token.scope, "read_orders,read_customers");
    assert_eq!(token.expires_in, None);
    assert_eq!(token.refresh_token, None);
    let debug = format!("{token:?}");
    assert!(!debug.contains(fake::TOKEN), "{debug}");
    assert_eq!(
        shop.lock().unwrap().token_requests[0],
        json!({"client_id": fake::CLIENT_ID, "client_secret": fake::CLIENT_SECRET, "code": fake::CODE})
    );

    // Codes are single use.
    let again = exchange_code(&api.api(), fake::CLIENT_ID, fake::CLIENT_SECRET, fake::CODE).await;
    assert!(
        matches!(again, Err(ConnectorError::Permanent(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn wrong_client_credentials_are_unauthorized() {
    let (base, _shop) = fake::start(Shop::default()).await;
    let api = api_for(&base);
    let err = exchange_code(&api.api(), fake::CLIENT_ID, "not-the-secret", fake::CODE)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized("the platform answered 401".to_owned())
    );
}

#[tokio::test]
async fn expiring_tokens_come_with_a_rotating_refresh_token() {
    let (base, shop) = fake::start(Shop::default()).await;
    let api = api_for(&base);
    let first =
        exchange_code_expiring(&api.api(), fake::CLIENT_ID, fake::CLIENT_SECRET, fake::CODE)
            .await
            .unwrap();
    assert_eq!(first.expires_in, Some(3600));
    assert_eq!(first.refresh_token_expires_in, Some(7_776_000));
    let refresh = first.refresh_token.clone().expect("a refresh token");
    assert_eq!(shop.lock().unwrap().token_requests[0]["expiring"], "1");
    assert!(!format!("{first:?}").contains(&refresh));

    let second = refresh_access_token(&api.api(), fake::CLIENT_ID, fake::CLIENT_SECRET, &refresh)
        .await
        .unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token.as_deref(), Some(refresh.as_str()));
    assert_eq!(
        shop.lock().unwrap().token_requests[1],
        json!({
            "client_id": fake::CLIENT_ID,
            "client_secret": fake::CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh,
        })
    );

    // The replaced refresh token is refused: the merchant must reinstall.
    let stale =
        refresh_access_token(&api.api(), fake::CLIENT_ID, fake::CLIENT_SECRET, &refresh).await;
    assert_eq!(
        stale,
        Err(ConnectorError::Unauthorized(
            "the refresh token was refused".to_owned()
        ))
    );
}

#[tokio::test]
async fn the_new_token_polls_the_shop() {
    use crate::poll::{PollingSource, Resource};
    use crate::shopify::Shopify;

    let (base, shop) = fake::start(Shop {
        orders: vec![fake::order(1, "2025-03-01T00:00:00Z")],
        ..Shop::default()
    })
    .await;
    let token = exchange_code_expiring(
        &api_for(&base).api(),
        fake::CLIENT_ID,
        fake::CLIENT_SECRET,
        fake::CODE,
    )
    .await
    .unwrap();
    let api = ApiFixture::new(
        &base,
        json!({"shop_domain": fake::SHOP_DOMAIN}),
        json!({"access_token": token.access_token}),
    );
    let cursor: Value = Shopify.start_cursor(Resource::Orders, None);
    let page = Shopify
        .poll(&api.api(), Resource::Orders, &cursor)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(shop.lock().unwrap().seen.len(), 1);
}
