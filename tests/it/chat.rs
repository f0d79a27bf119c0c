//! Chat channels through the real hub: verification handshakes on GET,
//! signed deliveries, and chat customers joining their shop profiles.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::harness::*;

async fn get_text(hub: &TestHub, path: &str) -> (u16, String) {
    let response = hub.http.get(hub.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_text(
    hub: &TestHub,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut request = hub.http.post(hub.url(path)).body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

both_backends! {
    async fn a_whatsapp_customer_who_later_orders_is_one_profile(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let (status, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": "whatsapp", "name": "WhatsApp",
            "settings": {"verify_token": "vt-123"}, "secrets": {"app_secret": "meta-secret"}})).await;
        assert_eq!(status, 201, "{conn}");
        let url = conn["webhook_url"].as_str().unwrap().to_string();

        // Meta's subscription handshake.
        let (status, challenge) = get_text(&hub, &format!("{url}?hub.mode=subscribe&hub.verify_token=vt-123&hub.challenge=1158201444")).await;
        assert_eq!((status, challenge.as_str()), (200, "1158201444"));
        assert_eq!(get_text(&hub, &format!("{url}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")).await.0, 403);

        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PHONE_ID"},
            "contacts": [{"profile": {"name": "王伟"}, "wa_id": "8613812345678"}],
            "messages": [{"from": "8613812345678", "id": "wamid.HBgN1", "timestamp": "1767225600", "type": "text",
                          "text": {"body": "我的订单到哪了?"}}]}}]}]}).to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"meta-secret").unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex(&mac.finalize().into_bytes()));
        let (status, answer) = post_text(&hub, &url, &body, &[("X-Hub-Signature-256", signature.clone()), ("Content-Type", "application/json".into())]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(post_text(&hub, &url, &body, &[("X-Hub-Signature-256", "sha256=00".into())]).await.0, 401);
        assert_eq!(hub.drain().await, 1);

        // Later the same person orders in the WooCommerce shop, phone written locally.
        let woo = hub.woocommerce(&ws).await;
        let order = woocommerce_order(88, "", "138 1234 5678", "20.00", "2026-02-01T11:05:00");
        assert_eq!(hub.send_woocommerce(&woo, "order.created", &order).await.0, 200);
        hub.drain().await;

        let profile = hub.find_one(&ws, "phone=%2B8613812345678").await;
        assert_eq!(profile["traits"]["order_count"], 1);
        let id = profile["id"].as_str().unwrap();
        let (_, timeline) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?channel=whatsapp")).await;
        assert_eq!(timeline["data"][0]["message"]["text"], "我的订单到哪了?");
        assert_eq!(timeline["data"][0]["message"]["conversation_id"], "PHONE_ID:8613812345678");
    }

    async fn wechat_handshake_and_plain_messages(backend: Backend) {
        use sha1::{Digest, Sha1};
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let (status, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": "wechat", "name": "公众号",
            "settings": {"app_id": "wx1234567890abcdef"}, "secrets": {"token": "wxtoken"}})).await;
        assert_eq!(status, 201, "{conn}");
        let url = conn["webhook_url"].as_str().unwrap().to_string();
        let sign = |parts: &[&str]| {
            let mut sorted: Vec<&str> = parts.to_vec();
            sorted.sort();
            hex(&Sha1::digest(sorted.concat().as_bytes()))
        };
        let (timestamp, nonce) = ("1700000000", "1514398510");
        let signature = sign(&["wxtoken", timestamp, nonce]);
        let query = format!("signature={signature}&timestamp={timestamp}&nonce={nonce}");
        let (status, echo) = get_text(&hub, &format!("{url}?{query}&echostr=hello-wechat")).await;
        assert_eq!((status, echo.as_str()), (200, "hello-wechat"));
        assert_eq!(get_text(&hub, &format!("{url}?signature=bad&timestamp={timestamp}&nonce={nonce}&echostr=x")).await.0, 403);

        let xml = "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName><FromUserName><![CDATA[oUser123]]></FromUserName>\
                   <CreateTime>1767225600</CreateTime><MsgType><![CDATA[text]]></MsgType>\
                   <Content><![CDATA[你好,我想退货]]></Content><MsgId>24000000000000001</MsgId></xml>";
        let (status, answer) = post_text(&hub, &format!("{url}?{query}"), xml, &[("Content-Type", "text/xml".into())]).await;
        assert_eq!((status, answer.as_str()), (200, "success"), "WeChat expects exactly `success`");
        assert_eq!(hub.drain().await, 1);

        let profile = hub.find_one(&ws, "platform=wechat&external_id=oUser123").await;
        assert_eq!(profile["traits"]["complaints"]["open"], 1, "退货 is a complaint term");
        let id = profile["id"].as_str().unwrap();
        let (_, conversations) = hub.get(&ws.key, &format!("/v1/profiles/{id}/conversations")).await;
        assert_eq!(conversations["data"][0]["channel"], "wechat");
    }
}

both_backends! {
    async fn inbound_mail_threads_onto_the_customer_and_own_addresses_are_not_customers(backend: Backend) {
        use base64::Engine;
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let (status, conn) = hub.post(&ws.key, "/v1/connections", json!({"platform": "postmark", "name": "support mail",
            "settings": {"own_addresses": ["support@shop.example", "*@mail.shop.example"]},
            "secrets": {"basic_username": "hub", "basic_password": "pw"}})).await;
        assert_eq!(status, 201, "{conn}");
        let url = conn["webhook_url"].as_str().unwrap().to_string();
        let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("hub:pw"));
        let mail = |id: &str, from: &str, to: &str, subject: &str, text: &str, date: &str, refs: &str| json!({
            "From": from, "FromFull": {"Email": from, "Name": ""}, "To": to, "ToFull": [{"Email": to, "Name": ""}],
            "Subject": subject, "MessageID": format!("pm-{id}"), "Date": date, "TextBody": text, "HtmlBody": "",
            "Headers": [{"Name": "Message-ID", "Value": format!("<{id}@mail.example>")},
                        {"Name": "References", "Value": refs}],
            "Attachments": []}).to_string();

        let question = mail("q1", "Ada@Customer.example", "support@shop.example", "Order 727", "Where is my parcel? Not received yet.", "Mon, 02 Mar 2026 10:00:00 +0000", "");
        let (status, answer) = post_text(&hub, &url, &question, &[("Authorization", auth.clone()), ("Content-Type", "application/json".into())]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(post_text(&hub, &url, &question, &[("Authorization", "Basic eDp5".into())]).await.0, 401);
        let reply = mail("a1", "support@shop.example", "ada@customer.example", "Re: Order 727", "It ships today.", "Mon, 02 Mar 2026 11:00:00 +0000", "<q1@mail.example>");
        assert_eq!(post_text(&hub, &url, &reply, &[("Authorization", auth.clone())]).await.0, 200);
        assert_eq!(hub.drain().await, 2);

        // One customer, one thread; the shop's own address is nobody's profile.
        let profile = hub.find_one(&ws, "email=ada@customer.example").await;
        let id = profile["id"].as_str().unwrap();
        let (_, conversations) = hub.get(&ws.key, &format!("/v1/profiles/{id}/conversations")).await;
        assert_eq!(conversations["data"].as_array().unwrap().len(), 1, "{conversations}");
        assert_eq!(conversations["data"][0]["messages"], 2);
        assert_eq!(conversations["data"][0]["channel"], "email");
        let (_, timeline) = hub.get(&ws.key, &format!("/v1/profiles/{id}/timeline?channel=email")).await;
        assert_eq!(timeline["data"][0]["message"]["direction"], "outbound");
        assert_eq!(timeline["data"][1]["message"]["subject"], "Order 727");
        assert_eq!(timeline["data"][1]["complaint"]["severity"], "low", "not received");
        assert_eq!(hub.get(&ws.key, "/v1/profiles?email=support@shop.example").await.1["data"], json!([]));
    }
}
