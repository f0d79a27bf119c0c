//! Judge.me API v1 review representations and their translation into the
//! common model.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::sweep::Row;
use crate::identity::KeySet;
use crate::model::{RecordBody, Review, SourceRecord};
use crate::payload::{present, present_owned};

/// Judge.me's stars run from 1 to 5.
pub(super) const RATING_SCALE: u32 = 5;

/// One page of `GET /reviews`.
#[derive(Debug, Deserialize)]
pub(super) struct ReviewList {
    #[serde(default)]
    pub(super) reviews: Vec<JmReview>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct JmReview {
    pub(super) id: u64,
    pub(super) title: Option<String>,
    pub(super) body: Option<String>,
    pub(super) rating: Option<Value>,
    /// The shop platform's product id (Shopify product id).
    pub(super) product_external_id: Option<Value>,
    pub(super) product_title: Option<String>,
    pub(super) product_handle: Option<String>,
    pub(super) reviewer: Option<Reviewer>,
    /// `buyer` for a verified buyer; `email`, `admin`, `nothing`... otherwise.
    pub(super) verified: Option<String>,
    pub(super) created_at: Option<String>,
    pub(super) updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Reviewer {
    /// The shop platform's customer id (Shopify customer id).
    pub(super) external_id: Option<Value>,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) name: Option<String>,
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A number or string id as text; blank and zero ids are absent.
fn id_text(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    (!text.is_empty() && text != "0").then_some(text)
}

/// Title and body as one text, the title first when it adds something.
fn review_text(title: Option<&str>, body: Option<&str>) -> Option<String> {
    match (present(title), present(body)) {
        (Some(t), Some(b)) if !b.starts_with(t) => Some(format!("{t}\n\n{b}")),
        (_, Some(b)) => Some(b.to_owned()),
        (Some(t), None) => Some(t.to_owned()),
        (None, None) => None,
    }
}

/// Reads one listed review. Errors name the review and field, never values.
pub(super) fn review_row(review: &JmReview, region: Option<&str>) -> Result<Row, String> {
    let id = review.id;
    let time = |field: &str, value: &Option<String>| -> Result<Option<DateTime<Utc>>, String> {
        match present(value.as_deref()) {
            None => Ok(None),
            Some(raw) => parse_time(raw)
                .map(Some)
                .ok_or_else(|| format!("review {id}: {field} is not a time")),
        }
    };
    let created = time("created_at", &review.created_at)?
        .ok_or_else(|| format!("review {id}: missing created_at"))?;
    let version = time("updated_at", &review.updated_at)?.unwrap_or(created);

    let rating = match &review.rating {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.to_string()
                .parse::<Decimal>()
                .map_err(|_| format!("review {id}: rating is not a number"))?,
        ),
        Some(_) => return Err(format!("review {id}: rating is not a number")),
    };
    let scale = Decimal::from(RATING_SCALE);
    let Some(rating) = rating.filter(|r| *r > Decimal::ZERO) else {
        return Ok(Row {
            created,
            version,
            record: None,
        });
    };
    if rating > scale {
        return Err(format!("review {id}: rating is above {RATING_SCALE}"));
    }

    let reviewer = review.reviewer.as_ref();
    let email = reviewer.and_then(|r| present_owned(r.email.as_deref()));
    let mut keys = KeySet::new(region);
    keys.email(email.as_deref());
    keys.phone(reviewer.and_then(|r| r.phone.as_deref()));
    keys.customer_id(id_text(reviewer.and_then(|r| r.external_id.as_ref())).as_deref());

    let product = present_owned(review.product_title.as_deref())
        .or_else(|| present_owned(review.product_handle.as_deref()))
        .or_else(|| id_text(review.product_external_id.as_ref()));
    let verified = present(review.verified.as_deref()).map(|v| v.contains("buyer"));
    let record = SourceRecord {
        external_id: id.to_string(),
        version,
        occurred_at: created,
        keys: keys.into_keys(),
        body: RecordBody::Review(Review {
            product,
            rating,
            rating_scale: scale,
            score: Review::normalised(rating, scale),
            text: review_text(review.title.as_deref(), review.body.as_deref()),
            reviewer_name: reviewer.and_then(|r| present_owned(r.name.as_deref())),
            reviewer_email: email,
            verified,
        }),
    };
    Ok(Row {
        created,
        version,
        record: Some(record),
    })
}
