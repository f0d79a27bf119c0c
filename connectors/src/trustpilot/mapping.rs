//! Trustpilot service reviews (public and private listings) and their
//! translation into the common model.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::sweep::Row;
use crate::identity::KeySet;
use crate::model::{RecordBody, Review, SourceRecord};
use crate::payload::{present, present_owned};

/// Trustpilot's stars run from 1 to 5.
pub(super) const RATING_SCALE: u32 = 5;

/// One page of a business unit's reviews.
#[derive(Debug, Deserialize)]
pub(super) struct ReviewList {
    #[serde(default)]
    pub(super) reviews: Vec<TpReview>,
    /// Navigation links; `rel: "next-page"` while more pages exist.
    pub(super) links: Option<Vec<Link>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Link {
    pub(super) rel: Option<String>,
}

impl ReviewList {
    /// Whether another page follows: a `next-page` link says so; without
    /// any links, a full page may be followed by another.
    pub(super) fn has_next(&self, per_page: usize) -> bool {
        match &self.links {
            Some(links) => links
                .iter()
                .any(|l| present(l.rel.as_deref()) == Some("next-page")),
            None => self.reviews.len() >= per_page,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TpReview {
    pub(super) id: String,
    pub(super) consumer: Option<Consumer>,
    pub(super) stars: Option<u32>,
    pub(super) title: Option<String>,
    pub(super) text: Option<String>,
    pub(super) created_at: Option<String>,
    /// `null` until the review is revised.
    pub(super) updated_at: Option<String>,
    pub(super) is_verified: Option<bool>,
    /// Private listing only: the invited customer's email.
    pub(super) referral_email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Consumer {
    pub(super) id: Option<String>,
    pub(super) display_name: Option<String>,
    /// Private listing only (see `referral_email`).
    pub(super) email: Option<String>,
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Title and text as one text, the title first when it adds something.
fn review_text(title: Option<&str>, text: Option<&str>) -> Option<String> {
    match (present(title), present(text)) {
        (Some(t), Some(b)) if !b.starts_with(t) => Some(format!("{t}\n\n{b}")),
        (_, Some(b)) => Some(b.to_owned()),
        (Some(t), None) => Some(t.to_owned()),
        (None, None) => None,
    }
}

/// Reads one listed review. Errors name the review and field, never values.
pub(super) fn review_row(review: &TpReview, region: Option<&str>) -> Result<Row, String> {
    let id = present(Some(review.id.as_str()))
        .ok_or_else(|| "a review has an empty id".to_owned())?
        .to_owned();
    let time = |field: &str, value: &Option<String>| -> Result<Option<DateTime<Utc>>, String> {
        match present(value.as_deref()) {
            None => Ok(None),
            Some(raw) => parse_time(raw)
                .map(Some)
                .ok_or_else(|| format!("review {id}: {field} is not a time")),
        }
    };
    let created = time("createdAt", &review.created_at)?
        .ok_or_else(|| format!("review {id}: missing createdAt"))?;
    let version = time("updatedAt", &review.updated_at)?
        .unwrap_or(created)
        .max(created);
    let Some(stars) = review.stars.filter(|s| *s > 0) else {
        return Ok(Row {
            created,
            version,
            record: None,
        });
    };
    if stars > RATING_SCALE {
        return Err(format!("review {id}: stars is above {RATING_SCALE}"));
    }
    let consumer = review.consumer.as_ref();
    let email = present_owned(review.referral_email.as_deref())
        .or_else(|| consumer.and_then(|c| present_owned(c.email.as_deref())));
    let mut keys = KeySet::new(region);
    keys.email(email.as_deref());
    keys.customer_id(consumer.and_then(|c| c.id.as_deref()));
    let rating = Decimal::from(stars);
    let scale = Decimal::from(RATING_SCALE);
    let record = SourceRecord {
        external_id: id,
        version,
        occurred_at: created,
        keys: keys.into_keys(),
        body: RecordBody::Review(Review {
            // Service reviews are about the business, not a product.
            product: None,
            rating,
            rating_scale: scale,
            score: Review::normalised(rating, scale),
            text: review_text(review.title.as_deref(), review.text.as_deref()),
            reviewer_name: consumer.and_then(|c| present_owned(c.display_name.as_deref())),
            reviewer_email: email,
            verified: review.is_verified,
        }),
    };
    Ok(Row {
        created,
        version,
        record: Some(record),
    })
}
