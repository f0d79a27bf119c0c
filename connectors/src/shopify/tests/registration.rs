//! Webhook registration through `webhookSubscriptions` and
//! `webhookSubscriptionCreate` against the fake shop.

use serde_json::json;

use super::fake::{self, Failure, Shop};
use crate::poll::ConnectorError;
use crate::shopify::{ensure_webhooks, topic_enum, WebhookChange};
use crate::testkit::ApiFixture;

const CALLBACK: &str = "https://hub.example.com/webhooks/shopify/conn_1";

fn api_for(base: &str) -> ApiFixture {
    ApiFixture::new(
        base,
        json!({"shop_domain": fake::SHOP_DOMAIN}),
        json!({"access_token": fake::TOKEN, "webhook_secret": "shpss_secret"}),
    )
}

fn sub(id: &str, topic: &str, uri: &str) -> (String, String, String) {
    (id.to_owned(), topic.to_owned(), uri.to_owned())
}

#[test]
fn topics_become_graphql_enums() {
    assert_eq!(
        topic_enum("orders/create").as_deref(),
        Some("ORDERS_CREATE")
    );
    assert_eq!(
        topic_enum("customers/update").as_deref(),
        Some("CUSTOMERS_UPDATE")
    );
    assert_eq!(
        topic_enum("app/uninstalled").as_deref(),
        Some("APP_UNINSTALLED")
    );
    assert_eq!(
        topic_enum("customers/data_request").as_deref(),
        Some("CUSTOMERS_DATA_REQUEST")
    );
    for bad in [
        "",
        "orders",
        "orders/",
        "/create",
        "Orders/Create",
        "orders/create now",
        "orders//x",
    ] {
        assert_eq!(topic_enum(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn missing_subscriptions_are_created_and_existing_ones_reported() {
    let (base, shop) = fake::start(Shop {
        subscriptions: vec![
            sub(
                "gid://shopify/WebhookSubscription/1",
                "ORDERS_CREATE",
                CALLBACK,
            ),
            // Same topic, someone else's address: not ours.
            sub(
                "gid://shopify/WebhookSubscription/2",
                "ORDERS_UPDATED",
                "https://other.example.com/hook",
            ),
            sub(
                "gid://shopify/WebhookSubscription/3",
                "APP_UNINSTALLED",
                CALLBACK,
            ),
        ],
        // One subscription per page: the listing must follow hasNextPage.
        page_cap: 1,
        ..Shop::default()
    })
    .await;
    let api = api_for(&base);
    let topics = [
        "orders/create",
        "orders/updated",
        "customers/update",
        "orders/create",
    ];
    let changes = ensure_webhooks(&api.api(), CALLBACK, &topics)
        .await
        .unwrap();
    assert_eq!(
        changes,
        vec![
            WebhookChange::Existing {
                topic: "orders/create".to_owned(),
                id: "gid://shopify/WebhookSubscription/1".to_owned()
            },
            WebhookChange::Created {
                topic: "orders/updated".to_owned(),
                id: "gid://shopify/WebhookSubscription/9001".to_owned()
            },
            WebhookChange::Created {
                topic: "customers/update".to_owned(),
                id: "gid://shopify/WebhookSubscription/9002".to_owned()
            },
        ]
    );
    {
        let shop = shop.lock().unwrap();
        let ops: Vec<&str> = shop.seen.iter().map(|s| s.op).collect();
        assert_eq!(
            ops,
            [
                "webhookSubscriptions",
                "webhookSubscriptions",
                "webhookSubscriptions",
                "webhookSubscriptionCreate",
                "webhookSubscriptionCreate"
            ]
        );
        let create = &shop.seen[3].variables;
        assert_eq!(
            *create,
            json!({"topic": "ORDERS_UPDATED", "webhookSubscription": {"uri": CALLBACK, "format": "JSON"}})
        );
        assert_eq!(shop.subscriptions.len(), 5);
    }

    // Running it again changes nothing.
    shop.lock().unwrap().seen.clear();
    let again = ensure_webhooks(&api.api(), CALLBACK, &topics[..3])
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|c| matches!(c, WebhookChange::Existing { .. })),
        "{again:?}"
    );
    assert_eq!(again.len(), 3);
    assert!(shop
        .lock()
        .unwrap()
        .seen
        .iter()
        .all(|s| s.op == "webhookSubscriptions"));
}

#[tokio::test]
async fn user_errors_are_permanent() {
    let (base, _shop) = fake::start(Shop::default()).await;
    let api = api_for(&base);
    let err = ensure_webhooks(&api.api(), "", &["orders/create"])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ConnectorError::Permanent(
            "Shopify refused the orders/create subscription: Address can't be blank".to_owned()
        )
    );
}

#[tokio::test]
async fn an_invalid_topic_fails_before_any_call() {
    let (base, shop) = fake::start(Shop::default()).await;
    let api = api_for(&base);
    let err = ensure_webhooks(&api.api(), CALLBACK, &["orders/create", "ORDERS CREATE"])
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Permanent(_)), "{err:?}");
    assert!(shop.lock().unwrap().seen.is_empty());
}

#[tokio::test]
async fn registration_failures_are_classified() {
    let (base, shop) = fake::start(Shop {
        failures: [Failure::Code("THROTTLED")].into(),
        ..Shop::default()
    })
    .await;
    let api = api_for(&base);
    assert!(matches!(
        ensure_webhooks(&api.api(), CALLBACK, &["orders/create"]).await,
        Err(ConnectorError::RateLimited { .. })
    ));
    shop.lock().unwrap().token = "revoked".to_owned();
    assert!(matches!(
        ensure_webhooks(&api.api(), CALLBACK, &["orders/create"]).await,
        Err(ConnectorError::Unauthorized(_))
    ));
}
