//! What one record tells about its person beyond its keys, in normal form,
//! ready to compare.

use chrono::{Datelike, NaiveDate};
use shophub_connectors::model::{
    Address, Direction, IdentityKey, KeyKind, RecordBody, SourceRecord,
};

use super::normalise::{alnum_upper, email_canonical, folded, name_key, phone_digits, MaskedPhone};

/// Normalised evidence of one record. Built by [`super::subject_of`];
/// strings are boxed to keep a million subjects small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Evidence {
    /// Sorted romanised name tokens, space-separated.
    pub name: Option<Box<str>>,
    /// `YYYYMMDD` as a number.
    pub birth: Option<u32>,
    pub document: Option<Box<str>>,
    /// Emails as keyed (trimmed, lower-cased).
    pub emails: Vec<Box<str>>,
    /// The same emails in canonical form (see `normalise::email_canonical`).
    pub email_canonical: Vec<Box<str>>,
    /// Phone numbers as digits: E.164 keys without `+`, and unkeyed local numbers.
    pub phones: Vec<Box<str>>,
    pub masked_phones: Vec<MaskedPhone>,
    pub address: Option<Box<str>>,
    pub city: Option<Box<str>>,
    pub postcode: Option<Box<str>>,
    pub region: Option<Box<str>>,
}

fn boxed(s: Option<String>) -> Option<Box<str>> {
    s.map(String::into_boxed_str)
}

impl Evidence {
    pub fn of(record: &SourceRecord) -> Evidence {
        let mut e = Evidence::default();
        let mut raw_phones: Vec<&str> = Vec::new();
        let mut address: Option<&Address> = None;
        match &record.body {
            RecordBody::Customer(c) => {
                e.name = boxed(name_key(&[c.first_name.as_deref(), c.last_name.as_deref()]));
                e.birth = c.birth_date.map(date_number);
                e.document = boxed(c.document_id.as_deref().and_then(alnum_upper));
                raw_phones.extend(c.phones.iter().map(String::as_str));
                address = c.address.as_ref();
            }
            RecordBody::Order(o) => {
                e.name = boxed(name_key(&[
                    o.buyer_first_name.as_deref(),
                    o.buyer_last_name.as_deref(),
                ]));
                raw_phones.extend(o.phone.as_deref());
                address = o.shipping_address.as_ref();
            }
            RecordBody::Review(r) => e.name = boxed(name_key(&[r.reviewer_name.as_deref()])),
            // An outbound message's sender is the shop, not the customer.
            RecordBody::Message(m) if m.direction == Direction::Inbound => {
                e.name = boxed(name_key(&[m.sender_name.as_deref()]))
            }
            RecordBody::Message(_) => {}
        }
        e.add_keys(&record.keys);
        for raw in raw_phones {
            e.add_raw_phone(raw);
        }
        if let Some(a) = address {
            e.address = boxed(folded(a.line1.as_deref()));
            e.city = boxed(folded(a.city.as_deref()));
            e.postcode = boxed(a.postcode.as_deref().and_then(alnum_upper));
            e.region = boxed(folded(a.region.as_deref()));
        }
        e
    }

    fn add_keys(&mut self, keys: &[IdentityKey]) {
        for key in keys {
            match key.kind {
                KeyKind::Email => {
                    self.emails.push(key.value.as_str().into());
                    if let Some(c) = email_canonical(&key.value) {
                        if !self.email_canonical.iter().any(|x| **x == *c) {
                            self.email_canonical.push(c.into());
                        }
                    }
                }
                KeyKind::Phone => self.phones.push(key.value.trim_start_matches('+').into()),
                KeyKind::CustomerId | KeyKind::WechatUnionid => {}
            }
        }
    }

    /// A masked phone, or a local number that did not become a key (no
    /// default region); a number already keyed adds nothing.
    fn add_raw_phone(&mut self, raw: &str) {
        if let Some(masked) = MaskedPhone::parse(raw) {
            if !self.masked_phones.contains(&masked) {
                self.masked_phones.push(masked);
            }
        } else if let Some(digits) = phone_digits(raw) {
            if !self.phones.iter().any(|p| p.ends_with(&digits)) {
                self.phones.push(digits.into());
            }
        }
    }

    /// The same evidence without the given emails and phones (key values
    /// that identify nobody: placeholders, values shared by many people).
    pub fn without(&self, emails: &[&str], phones: &[&str]) -> Evidence {
        let mut e = self.clone();
        e.emails.retain(|x| !emails.contains(&&**x));
        e.email_canonical = e
            .emails
            .iter()
            .filter_map(|x| email_canonical(x).map(String::into_boxed_str))
            .collect();
        e.email_canonical.dedup();
        e.phones
            .retain(|x| !phones.iter().any(|p| p.trim_start_matches('+') == &**x));
        e
    }

    /// Drops spare vector capacity: a million subjects are held at once.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.emails.shrink_to_fit();
        self.email_canonical.shrink_to_fit();
        self.phones.shrink_to_fit();
        self.masked_phones.shrink_to_fit();
    }

    /// The name's tokens.
    pub fn name_tokens(&self) -> impl Iterator<Item = &str> {
        self.name
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|t| !t.is_empty())
    }
}

fn date_number(d: NaiveDate) -> u32 {
    d.year().clamp(0, 9999) as u32 * 10000 + d.month() * 100 + d.day()
}
