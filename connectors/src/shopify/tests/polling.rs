//! Polling against the fake shop: whole sweeps, resumption, ties, the
//! lookback, pacing and error classification; and the GraphQL fixtures
//! decoded exactly.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::fake::{self, Failure, FakeOrder, Shop};
use crate::model::{
    Address, Customer, IdentityKey, KeyKind, LineItem, Order, OrderStatus, RecordBody, SourceRecord,
};
use crate::payload::fixtures;
use crate::poll::{ConnectorError, Page, PollingSource, Resource, LOOKBACK};
use crate::shopify::graphql::{legacy_id, Envelope};
use crate::shopify::{Shopify, API_VERSION};
use crate::testkit::ApiFixture;
use crate::webhook::{DecodeContext, WebhookSource};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn key(kind: KeyKind, value: &str) -> IdentityKey {
    IdentityKey {
        kind,
        value: value.to_owned(),
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn lookback() -> chrono::Duration {
    chrono::Duration::from_std(LOOKBACK).unwrap()
}

fn api_for(base: &str) -> ApiFixture {
    ApiFixture::new(
        base,
        json!({"shop_domain": fake::SHOP_DOMAIN}),
        json!({"access_token": fake::TOKEN, "webhook_secret": "shpss_secret"}),
    )
}

async fn serve(shop: Shop) -> (ApiFixture, fake::Shared) {
    let (base, shared) = fake::start(shop).await;
    (api_for(&base), shared)
}

async fn poll(
    fixture: &ApiFixture,
    resource: Resource,
    cursor: &Value,
) -> Result<Page, ConnectorError> {
    Shopify.poll(&fixture.api(), resource, cursor).await
}

/// Polls until the sweep is caught up; returns every page.
async fn sweep(fixture: &ApiFixture, resource: Resource, mut cursor: Value) -> Vec<Page> {
    let mut pages = Vec::new();
    for _ in 0..50 {
        let page = poll(fixture, resource, &cursor).await.expect("page");
        cursor = page.cursor.clone();
        let done = page.caught_up;
        pages.push(page);
        if done {
            return pages;
        }
    }
    panic!("the sweep never caught up");
}

fn ids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.external_id.clone()))
        .collect()
}

fn start(resource: Resource) -> Value {
    Shopify.start_cursor(resource, None)
}

fn shop_with_orders(orders: Vec<FakeOrder>, page_cap: usize) -> Shop {
    Shop {
        orders,
        page_cap,
        ..Shop::default()
    }
}

fn order_of(record: &SourceRecord) -> &Order {
    match &record.body {
        RecordBody::Order(o) => o,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn customer_of(record: &SourceRecord) -> &Customer {
    match &record.body {
        RecordBody::Customer(c) => c,
        other => panic!("expected a customer, got {other:?}"),
    }
}

// --- connector surface ----------------------------------------------------

#[test]
fn polling_is_offered_for_orders_and_customers() {
    let c = crate::connector("shopify").unwrap();
    let polling = c.polling().expect("shopify polls");
    assert_eq!(polling.platform(), "shopify");
    assert_eq!(
        polling.resources(),
        &[Resource::Orders, Resource::Customers]
    );
    assert_eq!(API_VERSION, "2026-10");
    assert_eq!(
        crate::shopify::graphql_url("https://example-store.myshopify.com/"),
        "https://example-store.myshopify.com/admin/api/2026-10/graphql.json"
    );
}

#[test]
fn default_base_url_only_for_myshopify_domains() {
    let base = |domain: Value| {
        let settings = json!({"shop_domain": domain});
        Shopify.default_base_url(settings.as_object().unwrap())
    };
    assert_eq!(
        base(json!("example-store.myshopify.com")).as_deref(),
        Some("https://example-store.myshopify.com")
    );
    assert_eq!(
        base(json!(" Example-Store.MyShopify.com ")).as_deref(),
        Some("https://example-store.myshopify.com")
    );
    for bad in [
        json!("attacker.example"),
        json!("example-store.myshopify.com.attacker.example"),
        json!("example-store.myshopify.com/admin"),
        json!("example-store.myshopify.com:8443"),
        json!("user@example-store.myshopify.com"),
        json!("https://example-store.myshopify.com"),
        json!(".myshopify.com"),
        json!(""),
        json!(42),
    ] {
        assert_eq!(base(bad.clone()), None, "{bad}");
    }
    assert_eq!(
        Shopify.default_base_url(json!({}).as_object().unwrap()),
        None
    );
}

#[test]
fn start_cursor_shapes() {
    assert_eq!(
        Shopify.start_cursor(Resource::Orders, None),
        json!({"from": null, "after": null, "high": null, "watermark": null})
    );
    assert_eq!(
        Shopify.start_cursor(Resource::Customers, Some(t("2025-02-01T00:00:00Z"))),
        json!({"from": "2025-02-01T00:00:00Z", "after": null, "high": null, "watermark": null})
    );
}

// --- sweeps ---------------------------------------------------------------

/// Eight orders, three sharing one `updatedAt` across a page boundary.
fn eight_orders() -> Vec<FakeOrder> {
    vec![
        fake::order(8, "2025-03-01T09:00:00Z"),
        fake::order(3, "2025-03-01T10:00:00Z"),
        fake::order(1, "2025-03-01T10:00:00Z"),
        fake::order(2, "2025-03-01T10:00:00Z"),
        fake::order(5, "2025-03-02T00:00:00Z"),
        fake::order(4, "2025-03-03T00:00:00Z"),
        fake::order(7, "2025-03-03T00:00:00Z"),
        fake::order(6, "2025-03-04T12:30:00Z"),
    ]
}

#[tokio::test]
async fn an_orders_sweep_reads_every_order_once_across_pages() {
    let (api, shop) = serve(shop_with_orders(eight_orders(), 3)).await;
    let pages = sweep(&api, Resource::Orders, start(Resource::Orders)).await;

    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), ["8", "1", "2", "3", "5", "4", "7", "6"]);
    assert_eq!(
        pages.iter().map(|p| p.caught_up).collect::<Vec<_>>(),
        [false, false, true]
    );
    // The watermark only moves when the sweep completes.
    assert_eq!(pages[0].watermark, None);
    assert_eq!(pages[1].watermark, None);
    let high = t("2025-03-04T12:30:00Z");
    assert_eq!(pages[2].watermark, Some(high));
    assert_eq!(
        pages[2].cursor,
        json!({
            "from": (high - lookback()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "after": null, "high": null,
            "watermark": "2025-03-04T12:30:00Z"
        })
    );
    assert!(
        pages.iter().all(|p| p.pace.is_none()),
        "a full bucket needs no pace"
    );

    let shop = shop.lock().unwrap();
    assert_eq!(shop.seen.len(), 3);
    let mut previous_after = Value::Null;
    for (seen, page) in shop.seen.iter().zip(&pages) {
        assert_eq!(seen.op, "orders");
        assert!(seen.query.contains("sortKey: UPDATED_AT"), "{}", seen.query);
        assert_eq!(seen.variables["first"], 10);
        assert_eq!(
            seen.variables["query"],
            Value::Null,
            "no filter from the start of history"
        );
        assert_eq!(seen.variables["after"], previous_after);
        previous_after = page.cursor["after"].clone();
    }
}

#[tokio::test]
async fn a_mid_sweep_cursor_resumes_without_gaps() {
    let (api, _shop) = serve(shop_with_orders(eight_orders(), 3)).await;
    let first = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap();
    assert_eq!(ids(std::slice::from_ref(&first)), ["8", "1", "2"]);

    // A crash after committing page one: the runner polls again with its
    // cursor, perhaps twice. Both give the same next page.
    let again = poll(&api, Resource::Orders, &first.cursor).await.unwrap();
    let again_twice = poll(&api, Resource::Orders, &first.cursor).await.unwrap();
    assert_eq!(again, again_twice);
    assert_eq!(ids(std::slice::from_ref(&again)), ["3", "5", "4"]);

    let rest = sweep(&api, Resource::Orders, again.cursor.clone()).await;
    let mut all = ids(&[first, again]);
    all.extend(ids(&rest));
    assert_eq!(all, ["8", "1", "2", "3", "5", "4", "7", "6"]);
    assert_eq!(
        rest.last().unwrap().watermark,
        Some(t("2025-03-04T12:30:00Z"))
    );
}

#[tokio::test]
async fn ties_on_one_timestamp_are_never_skipped() {
    let orders = (1..=7)
        .rev()
        .map(|id| fake::order(id, "2025-05-05T05:05:05Z"))
        .collect();
    let (api, _shop) = serve(shop_with_orders(orders, 2)).await;
    let pages = sweep(&api, Resource::Orders, start(Resource::Orders)).await;
    assert_eq!(pages.len(), 4);
    assert_eq!(ids(&pages), ["1", "2", "3", "4", "5", "6", "7"]);
    assert_eq!(pages[3].watermark, Some(t("2025-05-05T05:05:05Z")));
}

#[tokio::test]
async fn the_next_sweep_starts_lookback_before_the_watermark() {
    let (api, shop) = serve(shop_with_orders(eight_orders(), 3)).await;
    let first_sweep = sweep(&api, Resource::Orders, start(Resource::Orders)).await;
    let watermark = t("2025-03-04T12:30:00Z");
    let cursor = first_sweep.last().unwrap().cursor.clone();
    {
        let mut shop = shop.lock().unwrap();
        // Indexed late: updated two minutes before the watermark but not
        // visible to the first sweep.
        shop.orders.push(fake::order(9, "2025-03-04T12:28:00Z"));
        shop.orders.push(fake::order(10, "2025-03-05T08:00:00Z"));
        shop.seen.clear();
    }
    let second = sweep(&api, Resource::Orders, cursor).await;
    // The overlap re-reads order 6 (harmless: versioned) and finds 9.
    assert_eq!(ids(&second), ["9", "6", "10"]);
    assert_eq!(
        second.last().unwrap().watermark,
        Some(t("2025-03-05T08:00:00Z"))
    );
    let shop = shop.lock().unwrap();
    assert_eq!(
        shop.seen[0].variables["query"],
        format!(
            "updated_at:>='{}'",
            (watermark - lookback()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    );
    assert_eq!(
        shop.seen[0].variables["query"],
        "updated_at:>='2025-03-04T12:25:00Z'"
    );
    assert_eq!(shop.seen[0].variables["after"], Value::Null);
}

#[tokio::test]
async fn an_order_updated_mid_sweep_is_read_again_later_in_the_sweep() {
    let (api, shop) = serve(shop_with_orders(eight_orders(), 3)).await;
    let first = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap();
    assert_eq!(ids(std::slice::from_ref(&first)), ["8", "1", "2"]);
    {
        let mut shop = shop.lock().unwrap();
        let order = shop
            .orders
            .iter_mut()
            .find(|o| o.node["id"] == "gid://shopify/Order/1")
            .unwrap();
        order.node["updatedAt"] = json!("2025-03-06T00:00:00Z");
    }
    let rest = sweep(&api, Resource::Orders, first.cursor.clone()).await;
    assert_eq!(ids(&rest), ["3", "5", "4", "7", "6", "1"]);
    let last = rest.last().unwrap();
    assert_eq!(last.watermark, Some(t("2025-03-06T00:00:00Z")));
    assert_eq!(
        last.records.last().unwrap().version,
        t("2025-03-06T00:00:00Z")
    );
}

#[tokio::test]
async fn a_start_instant_filters_the_first_sweep() {
    let (api, shop) = serve(shop_with_orders(eight_orders(), 0)).await;
    let since = t("2025-03-03T00:00:00Z");
    let pages = sweep(
        &api,
        Resource::Orders,
        Shopify.start_cursor(Resource::Orders, Some(since)),
    )
    .await;
    assert_eq!(ids(&pages), ["4", "7", "6"]);
    assert_eq!(
        shop.lock().unwrap().seen[0].variables["query"],
        "updated_at:>='2025-03-03T00:00:00Z'"
    );
}

#[tokio::test]
async fn an_empty_sweep_keeps_its_start_and_watermark() {
    let (api, _shop) = serve(Shop::default()).await;
    let since = t("2025-03-03T00:00:00Z");
    let cursor = Shopify.start_cursor(Resource::Orders, Some(since));
    let page = poll(&api, Resource::Orders, &cursor).await.unwrap();
    assert!(page.caught_up);
    assert!(page.records.is_empty());
    assert_eq!(page.watermark, None);
    assert_eq!(page.cursor, cursor);

    // A quiet shop after a real sweep keeps its watermark.
    let done = json!({"from": "2025-03-04T12:25:00Z", "after": null, "high": null, "watermark": "2025-03-04T12:30:00Z"});
    let page = poll(&api, Resource::Orders, &done).await.unwrap();
    assert_eq!(page.cursor, done);
    assert_eq!(page.watermark, Some(t("2025-03-04T12:30:00Z")));
}

#[tokio::test]
async fn a_customers_sweep_paginates_and_maps_ids() {
    let customers = vec![
        fake::customer(30, "2025-04-02T00:00:00Z"),
        fake::customer(10, "2025-04-01T00:00:00Z"),
        fake::customer(20, "2025-04-01T00:00:00Z"),
    ];
    let (api, shop) = serve(Shop {
        customers,
        page_cap: 2,
        ..Shop::default()
    })
    .await;
    let pages = sweep(&api, Resource::Customers, start(Resource::Customers)).await;
    assert_eq!(ids(&pages), ["10", "20", "30"]);
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[1].watermark, Some(t("2025-04-02T00:00:00Z")));
    assert!(pages[0].records[0]
        .keys
        .contains(&key(KeyKind::CustomerId, "10")));
    let shop = shop.lock().unwrap();
    assert!(shop.seen.iter().all(|s| s.op == "customers"
        && s.variables["first"] == 100
        && s.query.contains("sortKey: UPDATED_AT")));
}

#[tokio::test]
async fn orders_with_many_line_items_fetch_the_rest_by_order_id() {
    let mut big = fake::order(77, "2025-06-01T00:00:00Z");
    big.lines = (1..=130)
        .map(|i| fake::line(&format!("L{i}"), 2, "0.05"))
        .collect();
    let (api, shop) = serve(shop_with_orders(
        vec![big, fake::order(78, "2025-06-02T00:00:00Z")],
        0,
    ))
    .await;
    let page = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap();
    assert!(page.caught_up);
    let order = order_of(&page.records[0]);
    assert_eq!(order.line_items.len(), 130);
    assert_eq!(order.line_items[0].title, "L1");
    assert_eq!(order.line_items[129].title, "L130");
    assert!(order.line_items.iter().all(|l| l.total == dec("0.10")));
    assert_eq!(order_of(&page.records[1]).line_items.len(), 1);

    let shop = shop.lock().unwrap();
    let ops: Vec<&str> = shop.seen.iter().map(|s| s.op).collect();
    assert_eq!(ops, ["orders", "order", "order"]);
    assert!(shop.seen[0].query.contains("lineItems(first: 25)"));
    assert_eq!(shop.seen[1].variables["id"], "gid://shopify/Order/77");
    assert!(shop.seen[1]
        .query
        .contains("lineItems(first: 100, after: $after)"));
    assert_ne!(
        shop.seen[1].variables["after"],
        shop.seen[2].variables["after"]
    );
}

// --- fixtures: GraphQL and webhook agree ----------------------------------

fn orders_fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/graphql-orders-page.json")).unwrap()
}

fn customers_fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/graphql-customers-page.json")).unwrap()
}

#[tokio::test]
async fn a_polled_order_is_the_webhook_record_of_the_same_order() {
    let (api, _shop) = serve(shop_with_orders(
        fake::orders_from_fixture(&orders_fixture()),
        0,
    ))
    .await;
    let page = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 2);

    let delivery = fixtures::load("shopify-webhook-delivery.json");
    let body = serde_json::to_vec(&delivery["body"]).unwrap();
    let webhook = Shopify
        .decode("orders/create", &body, &DecodeContext::default())
        .unwrap()
        .remove(0);
    assert_eq!(page.records[0], webhook);
    assert_eq!(page.records[0].external_id, "450789469");
    assert!(page.records[0]
        .keys
        .contains(&key(KeyKind::CustomerId, "207119551")));
}

#[tokio::test]
async fn the_guest_order_fixture_decodes_exactly() {
    let (mut api, _shop) = serve(shop_with_orders(
        fake::orders_from_fixture(&orders_fixture()),
        0,
    ))
    .await;
    api.default_region = Some("DE".to_owned());
    let page = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap();
    let expected = SourceRecord {
        external_id: "450789470".to_owned(),
        version: Utc.with_ymd_and_hms(2025, 1, 3, 9, 30, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2025, 1, 2, 8, 15, 0).unwrap(),
        keys: vec![
            key(KeyKind::Email, "guest@example.com"),
            key(KeyKind::Phone, "+4930901820"),
        ],
        body: RecordBody::Order(Order {
            number: "#1002".to_owned(),
            status: OrderStatus::Cancelled,
            currency: "USD".to_owned(),
            total: dec("40.28"),
            customer_id: None,
            buyer_first_name: Some("Grace".to_owned()),
            buyer_last_name: Some("Hopper".to_owned()),
            email: Some("Guest@Example.com".to_owned()),
            phone: Some("+49 30 901820".to_owned()),
            line_items: vec![
                LineItem {
                    sku: None,
                    title: "Sock".to_owned(),
                    quantity: 3,
                    total: dec("0.30"),
                },
                LineItem {
                    sku: None,
                    title: "Hat".to_owned(),
                    quantity: 2,
                    total: dec("39.98"),
                },
            ],
            shipping_address: None,
        }),
    };
    assert_eq!(page.records[1], expected);
    assert_eq!(page.watermark, Some(t("2025-01-03T09:30:00Z")));
}

#[tokio::test]
async fn polled_customers_match_the_webhook_record_and_decode_exactly() {
    let customers = customers_fixture()["data"]["customers"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let (mut api, _shop) = serve(Shop {
        customers,
        ..Shop::default()
    })
    .await;
    api.default_region = Some("DE".to_owned());
    let page = poll(&api, Resource::Customers, &start(Resource::Customers))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 2);

    let body = serde_json::to_vec(&fixtures::resource("shopify-customer.json")).unwrap();
    let ctx = DecodeContext {
        default_region: Some("DE".to_owned()),
    };
    let webhook = Shopify
        .decode("customers/update", &body, &ctx)
        .unwrap()
        .remove(0);
    assert_eq!(page.records[0], webhook);

    let expected = SourceRecord {
        external_id: "207119552".to_owned(),
        version: Utc.with_ymd_and_hms(2025, 1, 5, 8, 0, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2025, 1, 4, 10, 0, 0).unwrap(),
        keys: vec![
            key(KeyKind::Phone, "+4930901820"),
            key(KeyKind::Phone, "+4930901821"),
            key(KeyKind::CustomerId, "207119552"),
        ],
        body: RecordBody::Customer(Customer {
            first_name: Some("Grace".to_owned()),
            last_name: None,
            emails: vec![],
            phones: vec!["030 901820".to_owned(), "+49 30 901821".to_owned()],
            tags: vec!["wholesale".to_owned(), "newsletter".to_owned()],
            address: Some(Address {
                line1: Some("Unter den Linden 1".to_owned()),
                line2: None,
                city: Some("Berlin".to_owned()),
                region: Some("BE".to_owned()),
                postcode: Some("10117".to_owned()),
                country: Some("DE".to_owned()),
            }),
            accepts_email_marketing: None,
            created_at: Some(Utc.with_ymd_and_hms(2025, 1, 4, 10, 0, 0).unwrap()),
            birth_date: None,
            document_id: None,
        }),
    };
    assert_eq!(page.records[1], expected);
    assert_eq!(
        customer_of(&page.records[0]).accepts_email_marketing,
        Some(true)
    );
}

#[test]
fn fixture_envelopes_report_their_cost() {
    let envelope: Envelope = serde_json::from_value(orders_fixture()).unwrap();
    assert!(envelope.failure().is_none());
    let cost = envelope.cost().unwrap();
    assert_eq!(cost.requested_query_cost, Some(852.0));
    assert_eq!(cost.actual_query_cost, Some(24.0));
    // 1,976 points left cover the next 852-point query.
    assert_eq!(cost.wait(), None);
}

#[test]
fn global_ids_become_numeric_ids() {
    assert_eq!(
        legacy_id("gid://shopify/Customer/207119551", "Customer"),
        Some(207119551)
    );
    assert_eq!(
        legacy_id("gid://shopify/Order/450789469", "Order"),
        Some(450789469)
    );
    assert_eq!(
        legacy_id("gid://shopify/Order/450789469?x=1", "Order"),
        Some(450789469)
    );
    for bad in [
        "gid://shopify/Order/450789469",
        "gid://shopify/Customer/",
        "gid://shopify/Customer/12a",
        "gid://shopify/CustomerX/1",
        "207119551",
        "gid://other/Customer/1",
    ] {
        assert_eq!(legacy_id(bad, "Customer"), None, "{bad}");
    }
}

#[tokio::test]
async fn a_node_with_a_foreign_id_is_malformed_without_values() {
    let mut order = fake::order(5, "2025-03-01T00:00:00Z");
    order.node["customer"]["id"] = json!("gid://shopify/Company/5");
    order.node["totalPriceSet"]["shopMoney"]["amount"] = json!("secret@example.com");
    let (api, _shop) = serve(shop_with_orders(vec![order], 0)).await;
    let err = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Malformed("orders.customer.id is not a Customer global id".to_owned())
    );

    let mut order = fake::order(6, "2025-03-01T00:00:00Z");
    order.node["totalPriceSet"]["shopMoney"]["amount"] = json!("secret@example.com");
    let (api, _shop) = serve(shop_with_orders(vec![order], 0)).await;
    let err = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Malformed("order 6: total_price is not a decimal amount".to_owned())
    );
}

// --- rate limits ----------------------------------------------------------

#[tokio::test]
async fn a_low_bucket_paces_the_next_call() {
    let (api, shop) = serve(Shop {
        orders: vec![fake::order(1, "2025-03-01T00:00:00Z")],
        available: 900.0,
        restore_per_call: 0.0,
        ..Shop::default()
    })
    .await;
    let page = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap();
    // 900 - 85 = 815 left; the next 852-point query waits for 37 points
    // at 100 points per second.
    assert_eq!(page.pace, Some(Duration::from_millis(370)));
    assert_eq!(shop.lock().unwrap().available, 815.0);
}

#[tokio::test]
async fn throttled_answers_are_rate_limited_with_the_refill_time() {
    // The bucket itself refuses: 500 available, 852 requested.
    let (api, _shop) = serve(Shop {
        orders: vec![fake::order(1, "2025-03-01T00:00:00Z")],
        available: 500.0,
        restore_per_call: 0.0,
        ..Shop::default()
    })
    .await;
    let cursor = start(Resource::Orders);
    assert_eq!(
        poll(&api, Resource::Orders, &cursor).await,
        Err(ConnectorError::RateLimited {
            retry_after: Some(Duration::from_millis(3520))
        })
    );

    // The shared fixture: message "Throttled", no code, 252 requested,
    // 48 available, 50 per second.
    let (api, _shop) = serve(Shop {
        failures: [Failure::ThrottleFixture].into(),
        ..Shop::default()
    })
    .await;
    assert_eq!(
        poll(&api, Resource::Customers, &start(Resource::Customers)).await,
        Err(ConnectorError::RateLimited {
            retry_after: Some(Duration::from_millis(4080))
        })
    );
}

#[test]
fn the_throttle_fixture_is_classified_directly() {
    let envelope: Envelope =
        serde_json::from_value(fixtures::resource("shopify-graphql-throttle.json")).unwrap();
    assert_eq!(
        envelope.failure(),
        Some(ConnectorError::RateLimited {
            retry_after: Some(Duration::from_millis(4080))
        })
    );
}

#[tokio::test]
async fn http_failures_are_classified_and_the_cursor_stays() {
    type Expect = fn(&ConnectorError) -> bool;
    let cases: Vec<(Failure, Expect)> = vec![
        (Failure::TooManyRequests("2"), |e| {
            *e == ConnectorError::RateLimited {
                retry_after: Some(Duration::from_secs(2)),
            }
        }),
        (Failure::Status(403), |e| {
            matches!(e, ConnectorError::Unauthorized(_))
        }),
        (Failure::Status(500), |e| {
            matches!(e, ConnectorError::Transient(_))
        }),
        (Failure::Status(503), |e| {
            matches!(e, ConnectorError::Transient(_))
        }),
        (Failure::Status(402), |e| {
            matches!(e, ConnectorError::Permanent(_))
        }),
        (Failure::Status(404), |e| {
            matches!(e, ConnectorError::Permanent(_))
        }),
        (Failure::Garbage, |e| {
            matches!(e, ConnectorError::Malformed(_))
        }),
        (Failure::Code("ACCESS_DENIED"), |e| {
            matches!(e, ConnectorError::Unauthorized(_))
        }),
        (Failure::Code("INTERNAL_SERVER_ERROR"), |e| {
            matches!(e, ConnectorError::Transient(_))
        }),
        (Failure::Code("MAX_COST_EXCEEDED"), |e| {
            *e == ConnectorError::Permanent(
                "GraphQL error MAX_COST_EXCEEDED: Access denied for this field.".to_owned(),
            )
        }),
    ];
    for (failure, expected) in cases {
        let (api, _shop) = serve(shop_with_orders(
            vec![fake::order(1, "2025-03-01T00:00:00Z")],
            0,
        ))
        .await;
        _shop.lock().unwrap().failures.push_back(failure.clone());
        let cursor = start(Resource::Orders);
        let err = poll(&api, Resource::Orders, &cursor).await.unwrap_err();
        assert!(expected(&err), "{failure:?} gave {err:?}");
        // The same cursor works once the failure is gone.
        let page = poll(&api, Resource::Orders, &cursor).await.unwrap();
        assert_eq!(ids(&[page]), ["1"], "{failure:?}");
    }
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized() {
    let (api, shop) = serve(shop_with_orders(
        vec![fake::order(1, "2025-03-01T00:00:00Z")],
        0,
    ))
    .await;
    shop.lock().unwrap().token = "shpat_rotated".to_owned();
    let err = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized("the platform answered 401".to_owned())
    );
}

#[tokio::test]
async fn a_missing_token_is_unauthorized_before_any_call() {
    let (base, shop) = fake::start(Shop::default()).await;
    let api = ApiFixture::new(&base, json!({"shop_domain": fake::SHOP_DOMAIN}), json!({}));
    let err = poll(&api, Resource::Orders, &start(Resource::Orders))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Unauthorized("secrets.access_token is not set".to_owned())
    );
    assert!(shop.lock().unwrap().seen.is_empty());
}

#[tokio::test]
async fn foreign_cursors_and_resources_are_permanent() {
    let (api, shop) = serve(Shop::default()).await;
    for cursor in [
        json!({"page": 2}),
        json!("abc"),
        json!({"from": "yesterday"}),
    ] {
        assert!(
            matches!(
                poll(&api, Resource::Orders, &cursor).await,
                Err(ConnectorError::Permanent(_))
            ),
            "{cursor}"
        );
    }
    assert!(matches!(
        poll(&api, Resource::Reviews, &start(Resource::Reviews)).await,
        Err(ConnectorError::Permanent(_))
    ));
    assert!(shop.lock().unwrap().seen.is_empty());
}

#[test]
fn graphql_errors_without_codes_are_permanent_and_string_errors_unauthorized() {
    let envelope: Envelope = serde_json::from_value(json!({
        "errors": [{"message": "Field 'bogus' doesn't exist on type 'Order'"}]
    }))
    .unwrap();
    assert_eq!(
        envelope.failure(),
        Some(ConnectorError::Permanent(
            "GraphQL error: Field 'bogus' doesn't exist on type 'Order'".to_owned()
        ))
    );
    let envelope: Envelope = serde_json::from_value(json!({
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }))
    .unwrap();
    assert!(matches!(
        envelope.failure(),
        Some(ConnectorError::Unauthorized(_))
    ));
    let envelope: Envelope = serde_json::from_value(json!({"data": {}, "errors": []})).unwrap();
    assert_eq!(envelope.failure(), None);
}
