//! Complaint detection: a review at or below a score, or an inbound message
//! in complaint terms, is a complaint with a severity, for staff to follow up.
//!
//! Terms are matched case-insensitively as substrings, which suits Chinese
//! (no word boundaries) and short English phrases alike.

use serde::{Deserialize, Serialize};
use shophub_connectors::model::{Direction, RecordBody, SourceRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// `[complaints]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplaintRules {
    /// Reviews with a normalised score (0..=1) at or below this are complaints;
    /// at or below a fifth of the scale they are high, at or below two
    /// fifths medium, else low.
    pub review_score_at_most: f64,
    pub terms_high: Vec<String>,
    pub terms_medium: Vec<String>,
    pub terms_low: Vec<String>,
}

impl Default for ComplaintRules {
    fn default() -> Self {
        let list = |terms: &[&str]| terms.iter().map(|t| t.to_string()).collect();
        ComplaintRules {
            review_score_at_most: 0.4,
            terms_high: list(&[
                "投诉",
                "12315",
                "骗子",
                "欺诈",
                "假货",
                "律师",
                "曝光",
                "scam",
                "fraud",
                "lawyer",
                "chargeback",
                "counterfeit",
            ]),
            terms_medium: list(&[
                "退款",
                "退货",
                "破损",
                "坏了",
                "质量问题",
                "差评",
                "refund",
                "broken",
                "damaged",
                "defective",
                "complaint",
                "wrong item",
            ]),
            terms_low: list(&[
                "太慢",
                "没收到",
                "还没到",
                "不满意",
                "late",
                "too slow",
                "not received",
                "disappointed",
            ]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub severity: Severity,
    /// Why, for people: the score or the matched term (never the text).
    pub reason: String,
}

impl ComplaintRules {
    pub fn classify(&self, record: &SourceRecord) -> Option<Complaint> {
        match &record.body {
            RecordBody::Review(review) if review.score <= self.review_score_at_most => {
                let severity = match review.score {
                    s if s <= 0.2 => Severity::High,
                    s if s <= 0.4 => Severity::Medium,
                    _ => Severity::Low,
                };
                Some(Complaint {
                    severity,
                    reason: format!("review rated {} of {}", review.rating, review.rating_scale),
                })
            }
            RecordBody::Message(message) if message.direction == Direction::Inbound => {
                let text = [message.subject.as_deref(), message.text.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                [
                    (Severity::High, &self.terms_high),
                    (Severity::Medium, &self.terms_medium),
                    (Severity::Low, &self.terms_low),
                ]
                .into_iter()
                .find_map(|(severity, terms)| {
                    let term = terms
                        .iter()
                        .find(|t| !t.is_empty() && text.contains(&t.to_lowercase()))?;
                    Some(Complaint {
                        severity,
                        reason: format!("message mentions \"{term}\""),
                    })
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rust_decimal::Decimal;
    use shophub_connectors::model::{Message, Review};

    fn record(body: RecordBody) -> SourceRecord {
        SourceRecord {
            external_id: "1".into(),
            version: Utc::now(),
            occurred_at: Utc::now(),
            keys: vec![],
            body,
        }
    }

    fn review(stars: i64) -> SourceRecord {
        let (rating, scale) = (Decimal::from(stars), Decimal::from(5));
        record(RecordBody::Review(Review {
            product: None,
            rating,
            rating_scale: scale,
            score: Review::normalised(rating, scale),
            text: None,
            reviewer_name: None,
            reviewer_email: None,
            verified: None,
        }))
    }

    fn message(text: &str, direction: Direction) -> SourceRecord {
        record(RecordBody::Message(Message {
            conversation_id: "c".into(),
            channel: "wechat".into(),
            direction,
            sender_name: None,
            sender_handle: None,
            text: Some(text.into()),
            subject: None,
            attachments: vec![],
        }))
    }

    #[test]
    fn low_reviews_are_complaints_by_score() {
        let rules = ComplaintRules::default();
        assert_eq!(rules.classify(&review(1)).unwrap().severity, Severity::High);
        assert_eq!(
            rules.classify(&review(2)).unwrap().severity,
            Severity::Medium
        );
        assert_eq!(rules.classify(&review(3)), None);
        let strict = ComplaintRules {
            review_score_at_most: 0.6,
            ..ComplaintRules::default()
        };
        assert_eq!(strict.classify(&review(3)).unwrap().severity, Severity::Low);
    }

    #[test]
    fn inbound_messages_match_terms_in_chinese_and_english() {
        let rules = ComplaintRules::default();
        assert_eq!(
            rules
                .classify(&message("我要投诉你们!", Direction::Inbound))
                .unwrap()
                .severity,
            Severity::High
        );
        assert_eq!(
            rules
                .classify(&message("收到的杯子破损了", Direction::Inbound))
                .unwrap()
                .severity,
            Severity::Medium
        );
        assert_eq!(
            rules
                .classify(&message("The parcel is LATE again", Direction::Inbound))
                .unwrap()
                .severity,
            Severity::Low
        );
        assert_eq!(
            rules.classify(&message("谢谢,很好用", Direction::Inbound)),
            None
        );
        assert_eq!(
            rules.classify(&message("我们会为您退款", Direction::Outbound)),
            None,
            "the shop's own words are not complaints"
        );
    }
}
