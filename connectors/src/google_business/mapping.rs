//! Google Business Profile v4 `Review` resources and their translation into
//! the common model.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::model::{RecordBody, Review, SourceRecord};
use crate::payload::{present, present_owned};

/// Google's stars run from ONE to FIVE.
pub(super) const RATING_SCALE: u32 = 5;

/// One page of `GET …/reviews`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewList {
    #[serde(default)]
    pub(super) reviews: Vec<GbReview>,
    pub(super) next_page_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GbReview {
    /// `accounts/{a}/locations/{l}/reviews/{reviewId}`.
    pub(super) name: Option<String>,
    pub(super) review_id: Option<String>,
    pub(super) reviewer: Option<Reviewer>,
    pub(super) star_rating: Option<String>,
    pub(super) comment: Option<String>,
    pub(super) create_time: Option<String>,
    pub(super) update_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Reviewer {
    pub(super) display_name: Option<String>,
    pub(super) is_anonymous: Option<bool>,
}

/// A listed review: its modification time (which orders the listing) and
/// the record it yields (a review without stars yields none).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    pub(super) version: DateTime<Utc>,
    pub(super) record: Option<SourceRecord>,
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl GbReview {
    /// The review's id: `reviewId`, else the last segment of `name`.
    pub(super) fn id(&self) -> Option<String> {
        present_owned(self.review_id.as_deref()).or_else(|| {
            let name = present(self.name.as_deref())?;
            present_owned(name.rsplit('/').next())
        })
    }
}

/// Reads one listed review. Errors name the review and field, never values
/// a reviewer wrote.
pub(super) fn review_row(review: &GbReview) -> Result<Row, String> {
    let id = review
        .id()
        .ok_or_else(|| "a review has no reviewId".to_owned())?;
    let time = |field: &str, value: &Option<String>| -> Result<Option<DateTime<Utc>>, String> {
        match present(value.as_deref()) {
            None => Ok(None),
            Some(raw) => parse_time(raw)
                .map(Some)
                .ok_or_else(|| format!("review {id}: {field} is not a time")),
        }
    };
    let created = time("createTime", &review.create_time)?;
    let updated = time("updateTime", &review.update_time)?;
    let version = updated
        .or(created)
        .ok_or_else(|| format!("review {id}: missing updateTime"))?;
    let stars = match present(review.star_rating.as_deref()) {
        None | Some("STAR_RATING_UNSPECIFIED") => None,
        Some("ONE") => Some(1),
        Some("TWO") => Some(2),
        Some("THREE") => Some(3),
        Some("FOUR") => Some(4),
        Some("FIVE") => Some(5),
        Some(_) => return Err(format!("review {id}: starRating is not ONE to FIVE")),
    };
    let Some(stars) = stars else {
        return Ok(Row {
            version,
            record: None,
        });
    };
    let rating = Decimal::from(stars);
    let scale = Decimal::from(RATING_SCALE);
    let anonymous = review
        .reviewer
        .as_ref()
        .and_then(|r| r.is_anonymous)
        .unwrap_or(false);
    let reviewer_name = review
        .reviewer
        .as_ref()
        .filter(|_| !anonymous)
        .and_then(|r| present_owned(r.display_name.as_deref()));
    let record = SourceRecord {
        external_id: id,
        version,
        occurred_at: created.unwrap_or(version),
        // Google shows reviewers by display name only: nothing to join on.
        keys: Vec::new(),
        body: RecordBody::Review(Review {
            product: None,
            rating,
            rating_scale: scale,
            score: Review::normalised(rating, scale),
            text: present_owned(review.comment.as_deref()),
            reviewer_name,
            reviewer_email: None,
            verified: None,
        }),
    };
    Ok(Row {
        version,
        record: Some(record),
    })
}
