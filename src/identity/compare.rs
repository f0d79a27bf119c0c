//! Field-by-field comparison of two subjects' evidence into agreement
//! levels, the input of the Fellegi–Sunter model.

use strsim::{damerau_levenshtein, jaro_winkler};

use super::evidence::Evidence;

/// How well one field agrees. `Missing` carries no information either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Exact = 0,
    Close = 1,
    /// A masked value compatible with the other side.
    Masked = 2,
    Different = 3,
    Missing = 4,
}

/// The levels that carry a weight, in the order of `Params` arrays.
pub const SCORED_LEVELS: usize = 4;

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::Close => "close",
            Level::Masked => "masked",
            Level::Different => "different",
            Level::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    BirthDate,
    DocumentId,
    Email,
    Phone,
    Address,
    City,
    Postcode,
    Region,
}

pub const FIELDS: [Field; 9] = [
    Field::Name,
    Field::BirthDate,
    Field::DocumentId,
    Field::Email,
    Field::Phone,
    Field::Address,
    Field::City,
    Field::Postcode,
    Field::Region,
];

/// One level per field, in `FIELDS` order.
pub type Pattern = [Level; FIELDS.len()];

const CLOSE_TEXT: f64 = 0.9;
const CLOSE_NAME_TOKEN: f64 = 0.88;

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::BirthDate => "birth_date",
            Field::DocumentId => "document_id",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::Address => "address",
            Field::City => "city",
            Field::Postcode => "postcode",
            Field::Region => "region",
        }
    }

    /// Address, city, postcode and region: one place, told four ways.
    pub fn is_location(self) -> bool {
        matches!(
            self,
            Field::Address | Field::City | Field::Postcode | Field::Region
        )
    }

    pub fn compare(self, a: &Evidence, b: &Evidence) -> Level {
        match self {
            Field::Name => both(&a.name, &b.name, |x, y| name(x, y)),
            Field::BirthDate => both(&a.birth, &b.birth, |x, y| birth(*x, *y)),
            Field::DocumentId => both(&a.document, &b.document, |x, y| {
                code(x, y, |x, y| damerau_levenshtein(x, y) <= 1)
            }),
            Field::Email => email(a, b),
            Field::Phone => phone(a, b),
            Field::Address | Field::City => {
                let (x, y) = if self == Field::Address {
                    (&a.address, &b.address)
                } else {
                    (&a.city, &b.city)
                };
                both(x, y, |x, y| text(x, y))
            }
            Field::Postcode => both(&a.postcode, &b.postcode, |x, y| {
                code(x, y, hamming_at_most_one)
            }),
            Field::Region => both(&a.region, &b.region, |x, y| {
                if x == y {
                    Level::Exact
                } else {
                    Level::Different
                }
            }),
        }
    }

    /// The subject's value of this field as shown in evidence.
    pub fn shown(self, e: &Evidence) -> Option<String> {
        let first = |v: &[Box<str>]| v.first().map(|s| s.to_string());
        match self {
            Field::Name => e.name.as_deref().map(str::to_owned),
            Field::BirthDate => e
                .birth
                .map(|d| format!("{:04}-{:02}-{:02}", d / 10000, d / 100 % 100, d % 100)),
            Field::DocumentId => e.document.as_deref().map(str::to_owned),
            Field::Email => first(&e.emails).or_else(|| first(&e.email_canonical)),
            Field::Phone => first(&e.phones).or_else(|| e.masked_phones.first().map(|m| m.shown())),
            Field::Address => e.address.as_deref().map(str::to_owned),
            Field::City => e.city.as_deref().map(str::to_owned),
            Field::Postcode => e.postcode.as_deref().map(str::to_owned),
            Field::Region => e.region.as_deref().map(str::to_owned),
        }
    }
}

pub fn compare(a: &Evidence, b: &Evidence) -> Pattern {
    FIELDS.map(|f| f.compare(a, b))
}

fn both<T>(a: &Option<T>, b: &Option<T>, f: impl Fn(&T, &T) -> Level) -> Level {
    match (a, b) {
        (Some(a), Some(b)) => f(a, b),
        _ => Level::Missing,
    }
}

fn text(a: &str, b: &str) -> Level {
    if a == b {
        Level::Exact
    } else if jaro_winkler(a, b) >= CLOSE_TEXT {
        Level::Close
    } else {
        Level::Different
    }
}

fn code(a: &str, b: &str, close: impl Fn(&str, &str) -> bool) -> Level {
    if a == b {
        Level::Exact
    } else if a.len() >= 4 && close(a, b) {
        Level::Close
    } else {
        Level::Different
    }
}

fn hamming_at_most_one(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count() <= 1
}

/// Names agree closely when the whole reads alike, or every token of the
/// shorter name has a near twin in the longer one (a dropped middle name,
/// a typo in one part).
fn name(a: &str, b: &str) -> Level {
    if a == b {
        return Level::Exact;
    }
    if jaro_winkler(a, b) >= 0.94 {
        return Level::Close;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let all_close = short.split(' ').all(|t| {
        long.split(' ')
            .any(|u| t == u || (t.len() > 2 && jaro_winkler(t, u) >= CLOSE_NAME_TOKEN))
    });
    if all_close {
        Level::Close
    } else {
        Level::Different
    }
}

/// Dates agree closely after one typo: a digit changed or two swapped
/// (day and month swapped included).
fn birth(a: u32, b: u32) -> Level {
    if a == b {
        return Level::Exact;
    }
    let (x, y) = (format!("{a:08}"), format!("{b:08}"));
    let swapped = a / 10000 == b / 10000 && a % 100 == b / 100 % 100 && a / 100 % 100 == b % 100;
    if swapped || damerau_levenshtein(&x, &y) <= 1 {
        Level::Close
    } else {
        Level::Different
    }
}

fn email(a: &Evidence, b: &Evidence) -> Level {
    if a.email_canonical.is_empty() || b.email_canonical.is_empty() {
        return Level::Missing;
    }
    if a.emails.iter().any(|x| b.emails.contains(x)) {
        Level::Exact
    } else if a
        .email_canonical
        .iter()
        .any(|x| b.email_canonical.contains(x))
    {
        Level::Close
    } else {
        Level::Different
    }
}

fn phone(a: &Evidence, b: &Evidence) -> Level {
    let none = |e: &Evidence| e.phones.is_empty() && e.masked_phones.is_empty();
    if none(a) || none(b) {
        return Level::Missing;
    }
    if a.phones.iter().any(|x| b.phones.contains(x)) {
        return Level::Exact;
    }
    let fits = |m: &Evidence, f: &Evidence| {
        m.masked_phones.iter().any(|mp| {
            f.phones.iter().any(|p| mp.fits(p)) || f.masked_phones.iter().any(|o| mp.same_as(o))
        })
    };
    if fits(a, b) || fits(b, a) {
        return Level::Masked;
    }
    // A local number against its international form, or one typo.
    let close = a.phones.iter().any(|x| {
        b.phones.iter().any(|y| {
            let (s, l) = if x.len() <= y.len() { (x, y) } else { (y, x) };
            (s.len() >= 8 && l.ends_with(&**s)) || (x.len() >= 8 && hamming_at_most_one(x, y))
        })
    });
    if close {
        Level::Close
    } else {
        Level::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str) -> Evidence {
        Evidence {
            name: Some(name.into()),
            ..Evidence::default()
        }
    }

    #[test]
    fn name_levels() {
        assert_eq!(
            Field::Name.compare(&ev("smith john"), &ev("smith john")),
            Level::Exact
        );
        assert_eq!(
            Field::Name.compare(&ev("smith jon"), &ev("smith john")),
            Level::Close
        );
        assert_eq!(
            Field::Name.compare(&ev("smith"), &ev("smith john")),
            Level::Close
        );
        assert_eq!(
            Field::Name.compare(&ev("li na"), &ev("wang wei")),
            Level::Different
        );
        assert_eq!(
            Field::Name.compare(&ev("li na"), &Evidence::default()),
            Level::Missing
        );
    }

    #[test]
    fn masked_phone_level() {
        let full = Evidence {
            phones: vec!["8613812345678".into()],
            ..Evidence::default()
        };
        let masked = Evidence {
            masked_phones: vec![super::super::normalise::MaskedPhone::parse("138****5678").unwrap()],
            ..Evidence::default()
        };
        let other = Evidence {
            phones: vec!["8613812349999".into()],
            ..Evidence::default()
        };
        assert_eq!(Field::Phone.compare(&full, &masked), Level::Masked);
        assert_eq!(Field::Phone.compare(&masked, &other), Level::Different);
    }

    #[test]
    fn birth_date_typos_are_close() {
        assert_eq!(birth(19900517, 19900517), Level::Exact);
        assert_eq!(birth(19900517, 19900518), Level::Close);
        assert_eq!(birth(19900507, 19900705), Level::Close);
        assert_eq!(birth(19900517, 19721103), Level::Different);
    }
}
