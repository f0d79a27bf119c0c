//! The HubSpot, Mailchimp and Klaviyo clients against the fake tools the
//! hub's integration tests use (tests/it/fakes/), which check auth, request
//! shapes and batch limits and throttle like the real ones.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::{build, Change, Consent, Contact, Destination, DestinationError, Setup};
use crate::testkit::serve;

#[path = "../../../tests/it/fakes/quota.rs"]
mod quota;

#[path = "../../../tests/it/fakes/hubspot.rs"]
mod hubspot_fake;

#[path = "../../../tests/it/fakes/mailchimp.rs"]
mod mailchimp_fake;

#[path = "../../../tests/it/fakes/klaviyo.rs"]
mod klaviyo_fake;

use hubspot_fake::FakeHubSpot;
use klaviyo_fake::FakeKlaviyo;
use mailchimp_fake::FakeMailchimp;

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn try_build(
    kind: &str,
    settings: Value,
    secrets: Value,
) -> Result<Option<Box<dyn Destination>>, DestinationError> {
    build(
        kind,
        Setup {
            settings: &object(settings),
            secrets: &object(secrets),
            http: reqwest::Client::new(),
        },
    )
}

fn destination(
    kind: &str,
    base_url: &str,
    mut settings: Value,
    secrets: Value,
) -> Box<dyn Destination> {
    settings["api_base_url"] = json!(base_url);
    try_build(kind, settings, secrets)
        .unwrap()
        .expect("a client for the kind")
}

fn person(profile_id: &str, email: Option<&str>) -> Contact {
    Contact {
        profile_id: profile_id.to_owned(),
        email: email.map(str::to_owned),
        ..Contact::default()
    }
}

fn upsert(contact: Contact) -> Change {
    Change::Upsert { contact }
}

fn consenting(mut contact: Contact, email_marketing: Option<bool>) -> Contact {
    contact.consent = Consent {
        email_marketing,
        sms: None,
    };
    contact
}

fn permanent(outcome: &Result<(), DestinationError>, containing: &str) -> bool {
    matches!(outcome, Err(DestinationError::Permanent(m)) if m.contains(containing))
}

// ---- build ----

#[test]
fn build_names_what_is_missing() {
    let message = |r: Result<Option<Box<dyn Destination>>, DestinationError>| match r {
        Err(DestinationError::Permanent(m)) => m,
        Err(other) => panic!("expected a permanent error, got {other:?}"),
        Ok(_) => panic!("expected an error"),
    };
    assert!(message(try_build("hubspot", json!({}), json!({}))).contains("secrets.access_token"));
    assert!(message(try_build(
        "mailchimp",
        json!({}),
        json!({"api_key": "k-us6"})
    ))
    .contains("settings.list_id"));
    assert!(message(try_build(
        "mailchimp",
        json!({"list_id": "abc1"}),
        json!({})
    ))
    .contains("secrets.api_key"));
    assert!(message(try_build(
        "mailchimp",
        json!({"list_id": "abc1"}),
        json!({"api_key": "nodc"})
    ))
    .contains("data centre"));
    assert!(
        message(try_build("klaviyo", json!({}), json!({"api_key": " "})))
            .contains("secrets.api_key")
    );
    assert!(message(try_build(
        "klaviyo",
        json!({"revision": "latest"}),
        json!({"api_key": "pk"})
    ))
    .contains("settings.revision"));
    assert!(message(try_build(
        "hubspot",
        json!({"delete_mode": "shred"}),
        json!({"access_token": "t"})
    ))
    .contains("delete_mode"));
    assert!(message(try_build(
        "hubspot",
        json!({"api_base_url": "ftp://x"}),
        json!({"access_token": "t"})
    ))
    .contains("api_base_url"));
    for kind in ["webhook", "http", "file", "unknown"] {
        assert!(
            try_build(kind, json!({}), json!({})).unwrap().is_none(),
            "{kind}"
        );
    }
    let hubspot = try_build("hubspot", json!({}), json!({"access_token": "t"}))
        .unwrap()
        .unwrap();
    assert_eq!((hubspot.kind(), hubspot.max_batch()), ("hubspot", 100));
    assert_eq!(hubspot.max_rate().requests, 100);
    assert_eq!(hubspot.max_rate().per, Duration::from_secs(10));
}

#[test]
fn mailchimp_addresses_members_by_hash_in_the_keys_data_centre() {
    assert_eq!(
        super::mailchimp::subscriber_hash(" Urist.McVankab@FreddiesJokes.com"),
        "62eeb292278cc15f5817cb78f7790b08"
    );
    assert_eq!(
        super::mailchimp::data_centre_url("0123456789abcdef-us6").unwrap(),
        "https://us6.api.mailchimp.com/3.0"
    );
}

// ---- HubSpot ----

async fn hubspot(settings: Value) -> (FakeHubSpot, Box<dyn Destination>) {
    let fake = FakeHubSpot::new("pat-na1-token");
    let url = serve(fake.router()).await;
    let client = destination(
        "hubspot",
        &url,
        settings,
        json!({"access_token": "pat-na1-token"}),
    );
    (fake, client)
}

#[tokio::test]
async fn hubspot_upserts_by_email_and_answers_per_contact() {
    let (fake, client) = hubspot(json!({})).await;
    let mut ada = person("p1", Some("Ada@Example.com"));
    ada.first_name = Some("Ada".into());
    ada.last_name = Some("Lovelace".into());
    ada.phone = Some("+447700900123".into());
    ada.properties
        .insert("shophub_value_tier".into(), json!("top"));
    ada.properties
        .insert("shophub_order_count".into(), json!(3));
    let event = Change::Event {
        id: "msg_1".into(),
        kind: "profile.updated".into(),
        timestamp: 0,
        payload: json!({}),
    };
    let changes = vec![
        upsert(ada.clone()),
        upsert(person("p2", None)),
        upsert(person("p3", Some("not-an-email"))),
        event,
    ];
    let outcomes = client.push(&changes).await.unwrap();
    assert_eq!(outcomes[0], Ok(()));
    assert!(permanent(&outcomes[1], "no email"), "{:?}", outcomes[1]);
    assert!(
        permanent(&outcomes[2], "VALIDATION_ERROR"),
        "{:?}",
        outcomes[2]
    );
    assert!(
        permanent(&outcomes[3], "not feed events"),
        "{:?}",
        outcomes[3]
    );

    let stored = fake.by_email("ada@example.com").expect("Ada is a contact");
    assert_eq!(stored.properties["firstname"], "Ada");
    assert_eq!(stored.properties["lastname"], "Lovelace");
    assert_eq!(stored.properties["phone"], "+447700900123");
    assert_eq!(stored.properties["shophub_value_tier"], "top");
    assert_eq!(stored.properties["shophub_order_count"], "3");

    // A second sync updates the same contact.
    ada.first_name = Some("Augusta".into());
    assert_eq!(client.push(&[upsert(ada)]).await.unwrap(), vec![Ok(())]);
    assert_eq!(fake.contacts().len(), 1);
    assert_eq!(
        fake.by_email("ada@example.com").unwrap().properties["firstname"],
        "Augusta"
    );
}

#[tokio::test]
async fn hubspot_splits_more_than_a_batch_and_dedupes_keys() {
    let (fake, client) = hubspot(json!({})).await;
    let mut changes: Vec<Change> = (0..150)
        .map(|i| upsert(person(&format!("p{i}"), Some(&format!("c{i}@example.com")))))
        .collect();
    // The same email twice in a batch is one input (HubSpot refuses duplicates).
    changes.push(upsert(person("p0", Some("C0@example.com"))));
    let outcomes = client.push(&changes).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(fake.contacts().len(), 150);
    assert_eq!(
        fake.quota.requests(),
        2,
        "150 inputs are two batches of at most 100"
    );
}

#[tokio::test]
async fn hubspot_merge_leaves_one_contact() {
    let (fake, client) = hubspot(json!({})).await;
    let ada = person("p1", Some("ada@example.com"));
    let other = person("p2", Some("ada.l@example.org"));
    client
        .push(&[upsert(ada.clone()), upsert(other)])
        .await
        .unwrap();
    assert_eq!(fake.contacts().len(), 2);

    let merge = Change::Merge {
        into: ada,
        absorbed_profile_id: "p2".into(),
        absorbed_email: Some("ada.l@example.org".into()),
    };
    assert_eq!(
        client.push(std::slice::from_ref(&merge)).await.unwrap(),
        vec![Ok(())]
    );
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].properties["email"], "ada@example.com");
    assert_eq!(
        contacts[0].properties["hs_additional_emails"],
        "ada.l@example.org"
    );
    assert_eq!(fake.crm.lock().unwrap().merges.len(), 1);

    // Resent after a failure elsewhere in its batch: nothing more to merge.
    assert_eq!(client.push(&[merge]).await.unwrap(), vec![Ok(())]);
    assert_eq!(fake.contacts().len(), 1);
    assert_eq!(fake.crm.lock().unwrap().merges.len(), 1);
}

#[tokio::test]
async fn hubspot_deletes_for_good_or_archives() {
    let (fake, client) = hubspot(json!({})).await;
    client
        .push(&[upsert(person("p1", Some("ada@example.com")))])
        .await
        .unwrap();
    let delete = Change::Delete {
        profile_id: "p1".into(),
        email: Some("ada@example.com".into()),
    };
    assert_eq!(
        client.push(std::slice::from_ref(&delete)).await.unwrap(),
        vec![Ok(())]
    );
    assert!(fake.contacts().is_empty());
    assert_eq!(
        fake.crm.lock().unwrap().gdpr_deleted,
        vec!["ada@example.com".to_owned()]
    );

    let (fake, client) = hubspot(json!({"delete_mode": "archive"})).await;
    client
        .push(&[upsert(person("p1", Some("ada@example.com")))])
        .await
        .unwrap();
    assert_eq!(client.push(&[delete]).await.unwrap(), vec![Ok(())]);
    assert!(fake.contacts().is_empty());
    assert_eq!(fake.crm.lock().unwrap().archived.len(), 1);
    assert!(fake.crm.lock().unwrap().gdpr_deleted.is_empty());
}

#[tokio::test]
async fn hubspot_keys_by_a_custom_unique_property_when_set() {
    let fake = FakeHubSpot::new("tok");
    fake.unique_properties
        .lock()
        .unwrap()
        .insert("shophub_id".into());
    let url = serve(fake.router()).await;
    let client = destination(
        "hubspot",
        &url,
        json!({"id_property": "shophub_id"}),
        json!({"access_token": "tok"}),
    );
    let outcomes = client
        .push(&[
            upsert(person("p1", None)),
            upsert(person("p2", Some("b@example.com"))),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Ok(()), Ok(())]);
    let ids: Vec<String> = fake
        .contacts()
        .iter()
        .map(|c| c.properties["shophub_id"].clone())
        .collect();
    assert_eq!(ids, vec!["p1", "p2"]);

    // Without the property being unique in the account, HubSpot refuses.
    let fake = FakeHubSpot::new("tok");
    let url = serve(fake.router()).await;
    let client = destination(
        "hubspot",
        &url,
        json!({"id_property": "shophub_id"}),
        json!({"access_token": "tok"}),
    );
    assert!(matches!(
        client.push(&[upsert(person("p1", None))]).await,
        Err(DestinationError::Permanent(m)) if m.contains("400")
    ));
}

#[tokio::test]
async fn hubspot_classifies_throttles_credentials_and_outages() {
    let (fake, client) = hubspot(json!({})).await;
    fake.quota.limit(1, Duration::from_secs(10));
    let batch = [upsert(person("p1", Some("ada@example.com")))];
    assert_eq!(client.push(&batch).await.unwrap(), vec![Ok(())]);
    assert_eq!(
        client.push(&batch).await,
        Err(DestinationError::RateLimited {
            retry_after: Some(Duration::from_secs(10))
        }),
        "the rolling window's length comes from X-HubSpot-RateLimit-Interval-Milliseconds"
    );

    let (fake, client) = hubspot(json!({})).await;
    fake.quota.fail_next(1, StatusCode::BAD_GATEWAY);
    assert!(matches!(
        client.push(&batch).await,
        Err(DestinationError::Transient(_))
    ));
    assert_eq!(client.push(&batch).await.unwrap(), vec![Ok(())]);

    let url = serve(fake.router()).await;
    let wrong = destination(
        "hubspot",
        &url,
        json!({}),
        json!({"access_token": "revoked"}),
    );
    assert!(matches!(
        wrong.push(&batch).await,
        Err(DestinationError::Unauthorized(m)) if m.contains("INVALID_AUTHENTICATION")
    ));
}

// ---- Mailchimp ----

async fn mailchimp(settings: Value) -> (FakeMailchimp, Box<dyn Destination>) {
    let fake = FakeMailchimp::new("0123456789abcdef-us6", "a1b2c3d4e5");
    let url = serve(fake.router()).await;
    let mut settings = settings;
    settings["list_id"] = json!("a1b2c3d4e5");
    let client = destination(
        "mailchimp",
        &format!("{url}/3.0"),
        settings,
        json!({"api_key": "0123456789abcdef-us6"}),
    );
    (fake, client)
}

#[tokio::test]
async fn mailchimp_follows_the_hubs_consent() {
    let (fake, client) = mailchimp(json!({})).await;
    let mut ada = consenting(person("p1", Some("Ada@Example.com")), Some(true));
    ada.first_name = Some("Ada".into());
    ada.last_name = Some("Lovelace".into());
    ada.phone = Some("+447700900123".into());
    ada.tags = vec!["vip".into()];
    let never_asked = person("p2", Some("grace@example.com"));
    let outcomes = client
        .push(&[upsert(ada.clone()), upsert(never_asked)])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Ok(()), Ok(())]);

    let member = fake.member("ada@example.com").expect("Ada is a member");
    assert_eq!(member.status, "subscribed");
    assert_eq!(member.merge_fields["FNAME"], "Ada");
    assert_eq!(member.merge_fields["LNAME"], "Lovelace");
    assert_eq!(member.merge_fields["PHONE"], "+447700900123");
    assert!(member.tags.contains("vip"));
    assert_eq!(
        fake.member("grace@example.com").unwrap().status,
        "transactional",
        "never asked is not a subscription"
    );

    // Consent withdrawn in the hub reaches Mailchimp as unsubscribed.
    let withdrawn = consenting(ada.clone(), Some(false));
    assert_eq!(
        client.push(&[upsert(withdrawn)]).await.unwrap(),
        vec![Ok(())]
    );
    assert_eq!(
        fake.member("ada@example.com").unwrap().status,
        "unsubscribed"
    );

    // "Never asked" leaves a status set in Mailchimp as it is.
    let unknown = consenting(ada, None);
    assert_eq!(client.push(&[upsert(unknown)]).await.unwrap(), vec![Ok(())]);
    assert_eq!(
        fake.member("ada@example.com").unwrap().status,
        "unsubscribed"
    );
}

#[tokio::test]
async fn mailchimp_merges_and_deletes() {
    let (fake, client) = mailchimp(json!({})).await;
    let ada = consenting(person("p1", Some("ada@example.com")), Some(true));
    let other = consenting(person("p2", Some("ada.l@example.org")), Some(true));
    client
        .push(&[upsert(ada.clone()), upsert(other)])
        .await
        .unwrap();
    let merge = Change::Merge {
        into: ada,
        absorbed_profile_id: "p2".into(),
        absorbed_email: Some("ada.l@example.org".into()),
    };
    assert_eq!(
        client.push(std::slice::from_ref(&merge)).await.unwrap(),
        vec![Ok(())]
    );
    let members = fake.members();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].email, "ada@example.com");
    assert!(fake.member("ada.l@example.org").unwrap().archived);
    // Resending the merge finds the absorbed member already archived.
    assert_eq!(client.push(&[merge]).await.unwrap(), vec![Ok(())]);

    let erase = Change::Delete {
        profile_id: "p1".into(),
        email: Some("ada@example.com".into()),
    };
    let never_there = Change::Delete {
        profile_id: "p9".into(),
        email: Some("nobody@example.com".into()),
    };
    assert_eq!(
        client.push(&[erase, never_there]).await.unwrap(),
        vec![Ok(()), Ok(())]
    );
    assert!(fake.member("ada@example.com").is_none());
    // Mailchimp refuses to re-import a permanently deleted email.
    let again = client
        .push(&[upsert(person("p1", Some("ada@example.com")))])
        .await
        .unwrap();
    assert!(
        permanent(&again[0], "Forgotten Email Not Subscribed"),
        "{again:?}"
    );
}

#[tokio::test]
async fn mailchimp_answers_per_member_and_throttles_the_batch() {
    let (fake, client) = mailchimp(json!({})).await;
    let mut odd = person("p2", Some("b@example.com"));
    odd.properties.insert("NOPE".into(), json!("x"));
    let outcomes = client
        .push(&[
            upsert(person("p1", Some("a@example.com"))),
            upsert(odd),
            upsert(person("p3", None)),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes[0], Ok(()));
    assert!(
        permanent(&outcomes[1], "Invalid Resource"),
        "{:?}",
        outcomes[1]
    );
    assert!(permanent(&outcomes[2], "no email"), "{:?}", outcomes[2]);

    // A full batch stays within the 10 simultaneous connections.
    let batch: Vec<Change> = (0..client.max_batch())
        .map(|i| upsert(person(&format!("p{i}"), Some(&format!("m{i}@example.com")))))
        .collect();
    let outcomes = client.push(&batch).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

    fake.quota.fail_next(1, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        client.push(&batch[..3]).await,
        Err(DestinationError::RateLimited { retry_after: None })
    );

    let url = serve(fake.router()).await;
    let wrong = destination(
        "mailchimp",
        &format!("{url}/3.0"),
        json!({"list_id": "a1b2c3d4e5"}),
        json!({"api_key": "wrong-us6"}),
    );
    assert!(matches!(
        wrong.push(&batch[..1]).await,
        Err(DestinationError::Unauthorized(m)) if m.contains("API Key Invalid")
    ));
}

// ---- Klaviyo ----

async fn klaviyo(settings: Value) -> (FakeKlaviyo, Box<dyn Destination>) {
    let fake = FakeKlaviyo::new("pk_live_123");
    let url = serve(fake.router()).await;
    let client = destination("klaviyo", &url, settings, json!({"api_key": "pk_live_123"}));
    (fake, client)
}

#[tokio::test]
async fn klaviyo_imports_profiles_and_their_consent() {
    let (fake, client) = klaviyo(json!({"list_id": "Y6nRLr"})).await;
    let mut ada = consenting(person("p1", Some("ada@example.com")), Some(true));
    ada.first_name = Some("Ada".into());
    ada.phone = Some("+447700900123".into());
    ada.consent.sms = Some(true);
    ada.properties.insert("value_tier".into(), json!("top"));
    ada.tags = vec!["vip".into()];
    let grace = consenting(person("p2", Some("grace@example.com")), Some(false));
    let phone_only = person("p3", None);
    let outcomes = client
        .push(&[upsert(ada), upsert(grace), upsert(phone_only)])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Ok(()), Ok(()), Ok(())]);

    let ada = fake.by_email("ada@example.com").unwrap();
    assert_eq!(ada.external_id.as_deref(), Some("p1"));
    assert_eq!(ada.first_name.as_deref(), Some("Ada"));
    assert_eq!(ada.properties["value_tier"], "top");
    assert_eq!(ada.properties["shophub_tags"], json!(["vip"]));
    assert_eq!(ada.email_marketing.as_deref(), Some("SUBSCRIBED"));
    assert_eq!(ada.sms_marketing.as_deref(), Some("SUBSCRIBED"));
    assert!(ada.lists.contains("Y6nRLr"));
    let grace = fake.by_email("grace@example.com").unwrap();
    assert_eq!(grace.email_marketing.as_deref(), Some("UNSUBSCRIBED"));
    assert_eq!(
        fake.profiles().len(),
        3,
        "the profile without email is kept by external_id"
    );
    assert_eq!(
        fake.account.lock().unwrap().jobs,
        vec![
            "profile-bulk-import-job",
            "profile-subscription-bulk-create-job",
            "profile-subscription-bulk-delete-job"
        ]
    );
}

#[tokio::test]
async fn klaviyo_merges_and_deletes_through_data_privacy_jobs() {
    let (fake, client) = klaviyo(json!({})).await;
    let ada = person("p1", Some("ada@example.com"));
    client
        .push(&[
            upsert(ada.clone()),
            upsert(person("p2", Some("ada.l@example.org"))),
        ])
        .await
        .unwrap();
    let merge = Change::Merge {
        into: ada,
        absorbed_profile_id: "p2".into(),
        absorbed_email: Some("ada.l@example.org".into()),
    };
    assert_eq!(client.push(&[merge]).await.unwrap(), vec![Ok(())]);
    let emails: Vec<Option<String>> = fake.profiles().into_iter().map(|p| p.email).collect();
    assert_eq!(emails, vec![Some("ada@example.com".to_owned())]);

    let erase = Change::Delete {
        profile_id: "p1".into(),
        email: Some("ada@example.com".into()),
    };
    assert_eq!(client.push(&[erase]).await.unwrap(), vec![Ok(())]);
    assert!(fake.profiles().is_empty());
    assert_eq!(
        fake.account.lock().unwrap().deletions.last(),
        Some(&json!({"email": "ada@example.com"}))
    );
}

#[tokio::test]
async fn klaviyo_classifies_refusals_and_throttles() {
    let (fake, client) = klaviyo(json!({})).await;
    let mut bad_phone = person("p1", Some("ada@example.com"));
    bad_phone.phone = Some("07700 900123".into());
    let outcomes = client
        .push(&[
            upsert(bad_phone),
            upsert(person("p2", Some("b@example.com"))),
        ])
        .await
        .unwrap();
    assert!(permanent(&outcomes[0], "invalid"), "{outcomes:?}");
    assert!(
        permanent(&outcomes[1], "invalid"),
        "one import job: all or nothing"
    );
    assert!(fake.profiles().is_empty());

    fake.quota.limit(1, Duration::from_secs(3));
    let batch = [upsert(person("p2", Some("b@example.com")))];
    assert_eq!(client.push(&batch).await.unwrap(), vec![Ok(())]);
    assert_eq!(
        client.push(&batch).await,
        Err(DestinationError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        })
    );

    let url = serve(fake.router()).await;
    let wrong = destination("klaviyo", &url, json!({}), json!({"api_key": "pk_wrong"}));
    assert!(matches!(
        wrong.push(&batch).await,
        Err(DestinationError::Unauthorized(m)) if m.contains("not_authenticated")
    ));
}
