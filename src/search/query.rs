//! What a query string may mean, as index lookups: an email, a phone in any
//! format, its last four digits, a platform id, an order number, or a name
//! (Han or pinyin, any order, one typo per token, the last token possibly
//! unfinished). Each reading is weighted; a query is split into parts, and
//! a profile scores the best weight it reaches in each part.

use shophub_connectors::identity::{normalise_email, normalise_phone};

use super::terms::{self, Name};
use crate::identity::normalise::{alnum_upper, email_canonical, fold};
use crate::store::TermLookup;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Name tokens read from one query.
const MAX_NAME_TOKENS: usize = 6;
/// An unfinished last token is looked up as a prefix from this length.
const PREFIX_MIN_CHARS: usize = 2;

/// Which field of the profile a lookup matches, as reported per result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Email,
    Phone,
    PhoneLast4,
    CustomerId,
    OrderNumber,
    Name,
    NamePrefix,
    NameFuzzy,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Phone => "phone",
            Field::PhoneLast4 => "phone_last4",
            Field::CustomerId => "customer_id",
            Field::OrderNumber => "order_number",
            Field::Name => "name",
            Field::NamePrefix => "name_prefix",
            Field::NameFuzzy => "name_fuzzy",
        }
    }
}

/// Weights: an exact identifier outranks the last four digits of a phone,
/// which outrank any name match; among names, exact beats prefix beats one
/// typo, and every further matching part adds to the score.
const IDENTIFIER: u32 = 100;
const LAST4: u32 = 50;
const WHOLE_NAME: u32 = 20;
const WHOLE_NAME_FUZZY: u32 = 8;
const HAN_AS_WRITTEN: u32 = 5;
const TOKEN: u32 = 10;
const TOKEN_PREFIX: u32 = 6;
const TOKEN_FUZZY: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Probes of one part are alternatives: a profile scores the best one.
    pub part: usize,
    pub field: Field,
    pub weight: u32,
    pub lookup: TermLookup,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub probes: Vec<Probe>,
    part: usize,
}

impl Plan {
    fn exact(&mut self, field: Field, weight: u32, namespace: &str, value: &str) {
        let lookup = TermLookup::Exact(format!("{namespace}{value}"));
        if !value.is_empty() && !self.has(&lookup) {
            self.probes.push(Probe {
                part: self.part,
                field,
                weight,
                lookup,
            });
        }
    }

    fn prefix(&mut self, field: Field, weight: u32, namespace: &str, value: &str) {
        let from = format!("{namespace}{value}");
        let lookup = TermLookup::Range {
            to: successor(&from),
            from,
        };
        if !self.has(&lookup) {
            self.probes.push(Probe {
                part: self.part,
                field,
                weight,
                lookup,
            });
        }
    }

    fn has(&self, lookup: &TermLookup) -> bool {
        self.probes
            .iter()
            .any(|p| p.part == self.part && p.lookup == *lookup)
    }

    fn next_part(&mut self) {
        if self.probes.last().is_some_and(|p| p.part == self.part) {
            self.part += 1;
        }
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (byte order, which is code point order in UTF-8).
fn successor(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return chars.into_iter().collect();
        }
    }
    // Only U+10FFFF characters: nothing sorts after them.
    char::MAX.to_string().repeat(prefix.chars().count() + 1)
}

/// Reads a query. `regions` are the regions a phone written without a
/// country code is tried in (the workspace's connections' default regions).
pub fn plan(raw: &str, regions: &[String]) -> Plan {
    let mut plan = Plan::default();
    let q = raw.trim();
    if q.contains('@') {
        if let Some(email) = normalise_email(q) {
            plan.exact(Field::Email, IDENTIFIER, terms::EMAIL, &email);
        }
        if let Some(canonical) = email_canonical(q) {
            plan.exact(Field::Email, IDENTIFIER, terms::EMAIL, &canonical);
        }
        return plan;
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone_like = q
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | '/' | ' '));
    if phone_like && !digits.is_empty() {
        identifier(&mut plan, q, &digits, regions);
        return plan;
    }
    if !q.chars().any(char::is_whitespace) {
        identifier(&mut plan, q, &digits, regions);
    }
    plan.next_part();
    name(&mut plan, q);
    plan
}

/// One value that may be a phone, its last four digits, a platform id or
/// an order number: alternatives of one part.
fn identifier(plan: &mut Plan, q: &str, digits: &str, regions: &[String]) {
    if digits.len() == 4 && q.chars().all(|c| c.is_ascii_digit()) {
        plan.exact(Field::PhoneLast4, LAST4, terms::PHONE_LAST4, digits);
    }
    if digits.len() >= 7 {
        let tries = std::iter::once(None).chain(regions.iter().map(|r| Some(r.as_str())));
        for region in tries {
            if let Some(phone) = normalise_phone(q, region) {
                plan.exact(Field::Phone, IDENTIFIER, terms::PHONE, &phone);
            }
        }
    }
    plan.exact(
        Field::CustomerId,
        IDENTIFIER,
        terms::CUSTOMER_ID,
        &terms::customer_id_form(q),
    );
    if let Some(number) = alnum_upper(q) {
        plan.exact(Field::OrderNumber, IDENTIFIER, terms::ORDER, &number);
    }
}

/// A name: one part per token (exact, one typo, or the unfinished last
/// token as a prefix), one for the whole name, one for Han as written.
fn name(plan: &mut Plan, q: &str) {
    let Some(name) = Name::read(q) else {
        return;
    };
    let tokens: Vec<String> = name.tokens.into_iter().take(MAX_NAME_TOKENS).collect();
    // The token being typed is the last one written, wherever it sorts.
    let typing = fold(q)
        .rsplit(' ')
        .next()
        .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
        .filter(|t| t.len() >= PREFIX_MIN_CHARS)
        .map(str::to_owned);
    for token in &tokens {
        plan.exact(Field::Name, TOKEN, terms::NAME_TOKEN, token);
        for variant in terms::token_variants(token) {
            plan.exact(
                Field::NameFuzzy,
                TOKEN_FUZZY,
                terms::TOKEN_VARIANT,
                &variant,
            );
        }
        if typing.as_ref() == Some(token) {
            plan.prefix(Field::NamePrefix, TOKEN_PREFIX, terms::NAME_TOKEN, token);
        }
        plan.next_part();
    }
    for syllable in &name.syllables {
        plan.exact(Field::Name, TOKEN, terms::NAME_TOKEN, syllable);
        plan.next_part();
    }
    if tokens.len() >= 2 {
        plan.exact(Field::Name, WHOLE_NAME, terms::NAME_KEY, &tokens.join(" "));
        for variant in terms::key_variants(&tokens) {
            plan.exact(
                Field::NameFuzzy,
                WHOLE_NAME_FUZZY,
                terms::KEY_VARIANT,
                &variant,
            );
        }
        plan.next_part();
    }
    if let Some(han) = &name.han {
        plan.exact(Field::Name, HAN_AS_WRITTEN, terms::HAN, han);
        plan.next_part();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms_of(plan: &Plan) -> Vec<String> {
        plan.probes
            .iter()
            .map(|p| match &p.lookup {
                TermLookup::Exact(t) => t.clone(),
                TermLookup::Range { from, to } => format!("{from}..{to}"),
            })
            .collect()
    }

    #[test]
    fn phones_in_any_format_read_as_e164() {
        let cn = ["CN".to_owned()];
        for q in ["138 1234 5678", "+86 138-1234-5678", "(138) 1234.5678"] {
            let plan = plan(q, &cn);
            assert!(
                terms_of(&plan).contains(&"p:+8613812345678".to_owned()),
                "{q}"
            );
        }
        let plan = plan("5678", &cn);
        assert_eq!(plan.probes[0].field, Field::PhoneLast4);
        assert!(plan.probes.iter().all(|p| p.part == 0));
    }

    #[test]
    fn emails_read_as_written_and_canonical() {
        let plan = plan(" J.Doe+x@GoogleMail.com ", &[]);
        let terms = terms_of(&plan);
        assert!(terms.contains(&"e:j.doe+x@googlemail.com".to_owned()));
        assert!(terms.contains(&"e:jdoe@gmail.com".to_owned()));
    }

    #[test]
    fn names_get_a_part_per_token_and_a_prefix_for_the_last() {
        let plan = plan("wang we", &[]);
        let terms = terms_of(&plan);
        assert!(terms.contains(&"n:wang".to_owned()));
        assert!(terms.contains(&"n:we..n:wf".to_owned()), "{terms:?}");
        assert!(terms.contains(&"nk:wang we".to_owned()));
    }

    #[test]
    fn wildcards_are_plain_characters() {
        let plan = plan("%_%", &[]);
        assert!(terms_of(&plan)
            .iter()
            .all(|t| !t.contains('%') || t.starts_with("c:")));
        assert_eq!(successor("n:a\u{10FFFF}"), "n:b");
    }
}
