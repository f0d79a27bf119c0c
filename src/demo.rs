//! `serve --demo`: a workspace with sample data, so a first run has
//! something to look at. Sample deliveries go into the same durable inbox as
//! real webhooks and are processed by the same workers; only the signature
//! check is skipped, because the hub itself is the sender.

use std::net::SocketAddr;

use serde_json::{json, Value};

use crate::app::Hub;
use crate::clock::now_ms;
use crate::store::{NewConnection, NewDelivery};
use crate::workspaces;

pub async fn seed(hub: &Hub, addr: SocketAddr) -> anyhow::Result<()> {
    let workspace = workspaces::create(hub.store.as_ref(), "Demo shop").await?;
    let shopify = connect(
        hub,
        &workspace.id,
        "shopify",
        json!({"shop_domain": "demo-shop.myshopify.com"}),
    )
    .await?;
    let woo = connect(
        hub,
        &workspace.id,
        "woocommerce",
        json!({"store_url": "https://shop.example.com", "default_region": "CN"}),
    )
    .await?;

    let deliveries = [
        (&shopify, "customers/create", "demo-1", shopify_customer()),
        (&shopify, "orders/create", "demo-2", shopify_order()),
        (&woo, "order.created", "demo-3", woocommerce_order()),
    ];
    let batch: Vec<NewDelivery> = deliveries
        .into_iter()
        .map(|(connection, topic, key, body)| NewDelivery {
            workspace_id: workspace.id.clone(),
            connection_id: connection.clone(),
            platform: if connection == &shopify {
                "shopify"
            } else {
                "woocommerce"
            }
            .to_string(),
            topic: topic.to_string(),
            dedupe_key: key.to_string(),
            body: body.to_string().into_bytes(),
            now: now_ms(),
        })
        .collect();
    hub.store.insert_deliveries(&batch).await?;

    let base = format!("http://{addr}");
    println!(
        "\nDemo workspace {id} is ready. Its API key (shown once):\n\n  export SHOPHUB_KEY={key}\n\n\
         Look the buyer up by email, or by the phone as the WooCommerce shop wrote it:\n\n  \
         curl -s -H \"Authorization: Bearer $SHOPHUB_KEY\" '{base}/v1/profiles?email=wang.wei@example.com'\n  \
         curl -s -H \"Authorization: Bearer $SHOPHUB_KEY\" '{base}/v1/profiles?phone=13812345678&region=CN'\n  \
         curl -s -H \"Authorization: Bearer $SHOPHUB_KEY\" '{base}/v1/changes'\n",
        id = workspace.id,
        key = workspace.api_key,
    );
    Ok(())
}

async fn connect(
    hub: &Hub,
    workspace_id: &str,
    platform: &str,
    settings: Value,
) -> anyhow::Result<String> {
    let id = format!("con_{}", uuid::Uuid::now_v7().simple());
    let secrets = json!({ "webhook_secret": crate::crypto::new_api_key() }).to_string();
    hub.store
        .create_connection(&NewConnection {
            id: id.clone(),
            workspace_id: workspace_id.to_string(),
            platform: platform.to_string(),
            name: format!("Demo {platform}"),
            settings: settings.to_string(),
            secrets: hub.master_key.seal(secrets.as_bytes(), &id),
            now: now_ms(),
        })
        .await?;
    Ok(id)
}

fn shopify_customer() -> Value {
    json!({
        "id": 7001, "email": "Wang.Wei@example.com", "phone": "+8613812345678",
        "first_name": "Wei", "last_name": "Wang", "tags": "vip",
        "created_at": "2026-01-05T10:00:00+08:00", "updated_at": "2026-01-05T10:00:00+08:00",
        "email_marketing_consent": {"state": "subscribed"}
    })
}

fn shopify_order() -> Value {
    json!({
        "id": 9001, "name": "#1001", "email": "wang.wei@example.com", "phone": null,
        "created_at": "2026-02-01T09:30:00+08:00", "updated_at": "2026-02-01T09:35:00+08:00",
        "currency": "USD", "total_price": "59.90", "financial_status": "paid", "fulfillment_status": null,
        "customer": {"id": 7001, "email": "wang.wei@example.com", "first_name": "Wei", "last_name": "Wang"},
        "line_items": [{"title": "Silk scarf", "sku": "SCARF-1", "quantity": 1, "price": "59.90"}]
    })
}

fn woocommerce_order() -> Value {
    json!({
        "id": 727, "number": "727", "status": "completed", "currency": "CNY", "total": "268.00",
        "date_created_gmt": "2026-03-10T04:00:00", "date_modified_gmt": "2026-03-12T08:00:00",
        "customer_id": 0,
        "billing": {"first_name": "伟", "last_name": "王", "email": " WANG.WEI@example.com ", "phone": "138 1234 5678", "country": "CN"},
        "line_items": [{"name": "Tea set", "sku": "TEA-7", "quantity": 2, "total": "268.00"}]
    })
}
