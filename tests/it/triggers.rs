//! Care triggers: records arrive over HTTP, the sweep runs at chosen times
//! (no sleeping), and the feed shows what fired.

use chrono::{DateTime, Duration, Timelike, Utc};
use serde_json::{json, Value};
use shophub::triggers::{sweep, TriggerConfig};

use crate::harness::*;

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

/// Grants consent the way the profile's `consent` list carries it (the
/// contract's shape), on the stored view the sweep reads.
async fn grant(hub: &TestHub, ws: &Workspace, profile_id: &str, channel: &str) {
    let mut tx = hub.hub.store.begin_write(&ws.id).await.unwrap();
    let mut view: Value = serde_json::from_str(&tx.profile_view(profile_id).await.unwrap()).unwrap();
    view["consent"] = json!([{"identifier": "phone:+8613800000001", "channel": channel, "granted": true,
                              "source": "test", "at": "2026-01-01T00:00:00Z"}]);
    tx.save_profile_view(profile_id, &view.to_string(), 0).await.unwrap();
    tx.commit().await.unwrap();
}

async fn fired(hub: &TestHub, ws: &Workspace, kind: &str) -> Vec<Value> {
    hub.changes(ws).await.into_iter().filter(|c| c["type"] == kind).collect()
}

fn customer(id: &str, phone: &str) -> Value {
    json!({"kind": "customer", "external_id": id, "updated_at": "2029-06-01T00:00:00Z", "name": "王芳",
           "phones": [phone]})
}

fn pending_order(id: &str, customer: &str, created_at: &str) -> Value {
    json!({"kind": "order", "external_id": id, "updated_at": created_at, "created_at": created_at,
           "customer_external_id": customer, "status": "pending", "currency": "CNY", "total": "59.00", "line_items": []})
}

async fn sweep_at(hub: &TestHub, config: &TriggerConfig, now: &str) -> shophub::triggers::SweepReport {
    sweep(hub.hub.store.as_ref(), config, at(now)).await.unwrap()
}

both_backends! {
    async fn a_pending_payment_is_reminded_once_after_the_delay(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let config = TriggerConfig::default();
        // 10:00 in Shanghai (the default +08:00), outside quiet hours.
        hub.deliver(&conn, json!([customer("c-1", "+8613800000001"),
            pending_order("o-1", "c-1", "2030-01-01T02:00:00Z"),
            json!({"kind": "order", "external_id": "o-2", "updated_at": "2030-01-01T02:05:00Z", "created_at": "2030-01-01T02:00:00Z",
                   "customer_external_id": "c-1", "status": "paid", "currency": "CNY", "total": "9.00", "line_items": []})])).await;
        let id = hub.find_one(&ws, "platform=custom&external_id=c-1").await["id"].as_str().unwrap().to_string();
        grant(&hub, &ws, &id, "sms").await;

        sweep_at(&hub, &config, "2030-01-01T02:20:00Z").await;
        assert!(fired(&hub, &ws, "trigger.payment_pending").await.is_empty());
        sweep_at(&hub, &config, "2030-01-01T02:31:00Z").await;
        sweep_at(&hub, &config, "2030-01-01T02:45:00Z").await;
        let reminders = fired(&hub, &ws, "trigger.payment_pending").await;
        assert_eq!(reminders.len(), 1, "{reminders:?}");
        assert_eq!(reminders[0]["profile_id"], id.as_str());
        let data = &reminders[0];
        assert_eq!((data["trigger"].as_str(), data["channel"].as_str(), data["order"].as_str()),
                   (Some("payment_pending"), Some("sms"), Some("o-1")));
        assert_eq!(data["total"], "59.00");
    }

    async fn no_trigger_fires_without_consent_for_its_channel(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let config = TriggerConfig::default();
        hub.deliver(&conn, json!([customer("c-1", "+8613800000001"), pending_order("o-1", "c-1", "2030-01-01T02:00:00Z")])).await;
        let id = hub.find_one(&ws, "platform=custom&external_id=c-1").await["id"].as_str().unwrap().to_string();
        // Consent for email is not consent for SMS.
        grant(&hub, &ws, &id, "email_marketing").await;
        let report = sweep_at(&hub, &config, "2030-01-01T02:31:00Z").await;
        // The reminder is held back; the first-order greeting (email) goes.
        assert_eq!((report.found, report.fired, report.suppressed), (1, 1, 1));
        grant(&hub, &ws, &id, "sms").await;
        sweep_at(&hub, &config, "2030-01-01T02:40:00Z").await;
        assert!(fired(&hub, &ws, "trigger.payment_pending").await.is_empty());
    }

    async fn quiet_hours_delay_a_trigger_to_the_morning(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let config = TriggerConfig::default();
        // 21:00 in Shanghai: the reminder falls due in the quiet window.
        hub.deliver(&conn, json!([customer("c-1", "+8613800000001"), pending_order("o-1", "c-1", "2030-01-01T13:00:00Z")])).await;
        let id = hub.find_one(&ws, "platform=custom&external_id=c-1").await["id"].as_str().unwrap().to_string();
        grant(&hub, &ws, &id, "sms").await;
        let report = sweep_at(&hub, &config, "2030-01-01T13:31:00Z").await;
        assert_eq!(report.deferred, 1);
        sweep_at(&hub, &config, "2030-01-01T23:00:00Z").await; // 07:00 local: still quiet
        assert!(fired(&hub, &ws, "trigger.payment_pending").await.is_empty());
        let report = sweep_at(&hub, &config, "2030-01-02T01:00:00Z").await; // 09:00 local
        assert_eq!(report.fired, 1);
        let reminders = fired(&hub, &ws, "trigger.payment_pending").await;
        assert_eq!(reminders.len(), 1);
        assert_eq!(reminders[0]["created_at"].as_str().map(|t| t.starts_with("2030-01-02T01:00")), Some(true), "{reminders:?}");

        // A person in another time zone: at 14:00 UTC it is 09:00 in Lima.
        let (status, _) = send(&hub, &ws, &format!("/v1/profiles/{id}/timezone"), json!({"utc_offset": "-05:00"})).await;
        assert_eq!(status, 200);
        hub.deliver(&conn, json!([pending_order("o-2", "c-1", "2030-01-02T13:00:00Z")])).await;
        grant(&hub, &ws, &id, "sms").await;
        let report = sweep_at(&hub, &config, "2030-01-02T13:31:00Z").await; // 08:31 in Lima
        assert_eq!((report.fired, report.deferred), (0, 1));
        let report = sweep_at(&hub, &config, "2030-01-02T14:00:00Z").await;
        assert_eq!(report.fired, 1);
    }

    async fn the_frequency_cap_holds_per_person(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let config = TriggerConfig { max_per_person: 1, ..TriggerConfig::default() };
        hub.deliver(&conn, json!([customer("c-1", "+8613800000001"),
            pending_order("o-1", "c-1", "2030-01-01T02:00:00Z"), pending_order("o-2", "c-1", "2030-01-01T02:01:00Z")])).await;
        let id = hub.find_one(&ws, "platform=custom&external_id=c-1").await["id"].as_str().unwrap().to_string();
        grant(&hub, &ws, &id, "sms").await;
        let report = sweep_at(&hub, &config, "2030-01-01T02:40:00Z").await;
        // One reminder fires, the other is over the cap (and the first-order
        // greeting has no email consent).
        assert_eq!((report.found, report.fired, report.suppressed), (2, 1, 2));
        assert_eq!(fired(&hub, &ws, "trigger.payment_pending").await.len(), 1);
        // A day later the window has moved on and a new order is reminded.
        hub.deliver(&conn, json!([pending_order("o-3", "c-1", "2030-01-02T03:00:00Z")])).await;
        grant(&hub, &ws, &id, "sms").await;
        sweep_at(&hub, &config, "2030-01-02T03:40:00Z").await;
        assert_eq!(fired(&hub, &ws, "trigger.payment_pending").await.len(), 2);
    }

    async fn birthdays_and_anniversaries_fire_once_a_year(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let config = TriggerConfig::default();
        hub.deliver(&conn, json!([{"kind": "customer", "external_id": "c-1", "updated_at": "2029-06-01T00:00:00Z",
            "created_at": "2029-03-05T08:00:00Z", "phones": ["+8613800000001"], "birth_date": "1990-03-05"}])).await;
        let id = hub.find_one(&ws, "platform=custom&external_id=c-1").await["id"].as_str().unwrap().to_string();
        grant(&hub, &ws, &id, "email_marketing").await;
        sweep_at(&hub, &config, "2030-03-04T03:00:00Z").await;
        assert!(fired(&hub, &ws, "trigger.birthday").await.is_empty());
        // 00:30 on 5 March in Shanghai: today, but quiet until 09:00.
        let report = sweep_at(&hub, &config, "2030-03-04T16:30:00Z").await;
        assert_eq!((report.found, report.deferred), (2, 2));
        sweep_at(&hub, &config, "2030-03-05T01:00:00Z").await;
        sweep_at(&hub, &config, "2030-03-05T05:00:00Z").await;
        let birthdays = fired(&hub, &ws, "trigger.birthday").await;
        assert_eq!(birthdays.len(), 1);
        let b = &birthdays[0];
        assert_eq!((&b["trigger"], &b["channel"], &b["date"], &b["years"]),
                   (&json!("birthday"), &json!("email_marketing"), &json!("1990-03-05"), &json!(40)));
        let anniversaries = fired(&hub, &ws, "trigger.anniversary").await;
        assert_eq!(anniversaries.len(), 1);
        assert_eq!(anniversaries[0]["years"], 1);
    }

    async fn a_first_order_is_noticed_as_it_arrives(backend: Backend) {
        let hub = spawn(backend).await;
        let ws = hub.workspace("acme").await;
        let conn = hub.custom(&ws).await;
        let config = TriggerConfig::default();
        let now = Utc::now();
        let placed = now.to_rfc3339();
        hub.deliver(&conn, json!([customer("c-1", "+8613800000001"),
            {"kind": "order", "external_id": "o-1", "updated_at": placed, "created_at": placed,
             "customer_external_id": "c-1", "status": "paid", "currency": "CNY", "total": "9.00", "line_items": []},
            {"kind": "order", "external_id": "o-2", "updated_at": placed, "created_at": placed,
             "customer_external_id": "c-1", "status": "paid", "currency": "CNY", "total": "9.00", "line_items": []}])).await;
        let id = hub.find_one(&ws, "platform=custom&external_id=c-1").await["id"].as_str().unwrap().to_string();
        grant(&hub, &ws, &id, "email_marketing").await;
        // The next noon in Shanghai (04:00 UTC), after the order arrived.
        let mut noon = (now + Duration::hours(1)).with_minute(0).unwrap().with_second(0).unwrap();
        while noon.hour() != 4 {
            noon += Duration::hours(1);
        }
        sweep(hub.hub.store.as_ref(), &config, noon.timestamp_millis()).await.unwrap();
        sweep(hub.hub.store.as_ref(), &config, noon.timestamp_millis() + 60_000).await.unwrap();
        let first = fired(&hub, &ws, "trigger.first_order").await;
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0]["channel"], "email_marketing");
    }
}

async fn send(hub: &TestHub, ws: &Workspace, path: &str, body: Value) -> (u16, Value) {
    crate::segments::send_json(hub, "PUT", &ws.key, path, body).await
}
