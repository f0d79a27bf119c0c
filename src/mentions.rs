//! What a customer's message mentions: an email address, a phone number or
//! an order number. When it belongs to another known customer, that is
//! evidence the two are one person: a merge suggestion, never a silent merge.

use shophub_connectors::identity::{normalise_email, normalise_phone};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mention {
    Email(String),
    Phone(String),
    Order(String),
}

/// Words after which a number is an order number ("订单号 727", "order #1001").
const ORDER_MARKERS: [&str; 5] = ["订单号", "订单", "单号", "order", "#"];
/// Mentions read from one message, at most: a long paste is not evidence.
const MAX_MENTIONS: usize = 5;

pub fn find(text: &str, default_region: Option<&str>) -> Vec<Mention> {
    let mut found = Vec::new();
    let is_separator =
        |c: char| c.is_whitespace() || "，。；：！？、（）()<>[]{}\"',;:!?「」《》".contains(c);
    for token in text.split(is_separator).filter(|t| t.contains('@')) {
        if let Some(email) = normalise_email(token.trim_end_matches('.')) {
            found.push(Mention::Email(email));
        }
    }
    for run in digit_runs(text) {
        if run.chars().filter(char::is_ascii_digit).count() >= 7 {
            if let Some(phone) = normalise_phone(&run, default_region) {
                found.push(Mention::Phone(phone));
            }
        }
    }
    found.extend(order_numbers(text).into_iter().map(Mention::Order));
    found.sort();
    found.dedup();
    found.truncate(MAX_MENTIONS);
    found
}

/// Runs of characters a written phone number is made of.
fn digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        let part_of_number = c.is_ascii_digit()
            || (!current.is_empty() && matches!(c, ' ' | '-' | '(' | ')'))
            || (current.is_empty() && c == '+');
        if part_of_number {
            current.push(c);
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current).trim().to_string());
        }
    }
    if !current.is_empty() {
        runs.push(current.trim().to_string());
    }
    runs
}

fn order_numbers(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut numbers = Vec::new();
    for marker in ORDER_MARKERS {
        for (at, _) in lower.match_indices(marker) {
            let rest = &lower[at + marker.len()..];
            let rest = rest.trim_start_matches(|c: char| {
                c.is_whitespace() || matches!(c, ':' | '：' | '#' | '号' | '.')
            });
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if (3..=20).contains(&digits.len()) {
                numbers.push(digits);
            }
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_emails_phones_and_order_numbers_in_chinese_and_english() {
        let found = find(
            "你好,我的邮箱是 Wang.Wei@Example.com,电话13812345678,订单号:727 还没到",
            Some("CN"),
        );
        assert_eq!(
            found,
            vec![
                Mention::Email("wang.wei@example.com".into()),
                Mention::Phone("+8613812345678".into()),
                Mention::Order("727".into()),
            ]
        );
        let found = find(
            "Hi, it's about order #1001, call me on +44 20 7946 0018.",
            None,
        );
        assert!(found.contains(&Mention::Order("1001".into())), "{found:?}");
        assert!(
            found.contains(&Mention::Phone("+442079460018".into())),
            "{found:?}"
        );
    }

    #[test]
    fn amounts_and_masked_values_are_not_mentions() {
        assert!(find("I paid 199 yuan, not 138****5678", Some("CN")).is_empty());
    }
}
