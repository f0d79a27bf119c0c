//! Normal forms for comparing what people type: Unicode folding, names in
//! any script as sorted Latin tokens, canonical emails, masked phones.

use pinyin::ToPinyin;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// NFKC-compatible folding for comparison: compatibility forms unified
/// (full-width letters, ligatures), accents dropped, lower-cased, every run
/// of punctuation or space turned into one space.
pub fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = true;
    for c in raw.nfkd().filter(|c| !is_combining_mark(*c)).nfc() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// `fold`, or `None` when nothing is left.
pub fn folded(raw: Option<&str>) -> Option<String> {
    raw.map(fold).filter(|s| !s.is_empty())
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// A person's name as sorted tokens joined by one space, so that 王伟,
/// `Wang Wei`, `WANG Wei` and `wei wang` all read `wang wei`.
///
/// A run of Han characters is read as surname (first character) plus given
/// name (the rest, joined), the way the name is romanised: 王小明 is
/// `wang xiaoming`.
pub fn name_key(parts: &[Option<&str>]) -> Option<String> {
    let mut tokens: Vec<String> = Vec::new();
    for part in parts.iter().flatten() {
        for token in fold(part).split(' ').filter(|t| !t.is_empty()) {
            push_romanised(token, &mut tokens);
        }
    }
    tokens.sort_unstable();
    let name = tokens.join(" ");
    (!name.is_empty()).then_some(name)
}

fn push_romanised(token: &str, tokens: &mut Vec<String>) {
    if !token.chars().any(is_han) {
        tokens.push(token.to_owned());
        return;
    }
    let mut surname = String::new();
    let mut given = String::new();
    for c in token.chars() {
        let syllable = c.to_pinyin().map(|p| p.plain());
        let target = if surname.is_empty() {
            &mut surname
        } else {
            &mut given
        };
        match syllable {
            Some(s) => target.push_str(s),
            None => target.push(c),
        }
    }
    tokens.push(surname);
    if !given.is_empty() {
        tokens.push(given);
    }
}

/// Well-known misspellings of the big mail domains. A typo'd address is a
/// different mailbox, so this only ever feeds evidence, never a key.
const DOMAIN_TYPOS: &[(&str, &str)] = &[
    ("gmial.com", "gmail.com"),
    ("gmai.com", "gmail.com"),
    ("gamil.com", "gmail.com"),
    ("gmaill.com", "gmail.com"),
    ("gmail.co", "gmail.com"),
    ("gmail.con", "gmail.com"),
    ("gmail.cm", "gmail.com"),
    ("googlemail.com", "gmail.com"),
    ("hotmial.com", "hotmail.com"),
    ("hotmal.com", "hotmail.com"),
    ("hotmai.com", "hotmail.com"),
    ("hotmail.con", "hotmail.com"),
    ("hotmail.co", "hotmail.com"),
    ("yahooo.com", "yahoo.com"),
    ("yaho.com", "yahoo.com"),
    ("yahoo.con", "yahoo.com"),
    ("outlok.com", "outlook.com"),
    ("outlook.con", "outlook.com"),
    ("iclod.com", "icloud.com"),
    ("icloud.con", "icloud.com"),
    ("qq.con", "qq.com"),
    ("qq.cm", "qq.com"),
    ("qq.co", "qq.com"),
    ("163.con", "163.com"),
    ("163.cm", "163.com"),
    ("163.co", "163.com"),
    ("126.con", "126.com"),
    ("126.cm", "126.com"),
    ("foxmail.con", "foxmail.com"),
    ("sina.cm", "sina.com"),
];

/// The mailbox an address most likely reaches: domain typos corrected,
/// `+tags` removed, and Gmail's ignored dots dropped.
pub fn email_canonical(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let domain = DOMAIN_TYPOS
        .iter()
        .find(|(typo, _)| *typo == domain)
        .map_or(domain, |(_, real)| real);
    let local = local.split('+').next().unwrap_or(local);
    let local = if domain == "gmail.com" {
        local.replace('.', "")
    } else {
        local.to_owned()
    };
    (!local.is_empty() && !domain.is_empty()).then(|| format!("{local}@{domain}"))
}

/// A phone shown with its middle hidden (`138****5678`): the digits around
/// the mask and how many are hidden.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaskedPhone {
    pub prefix: Box<str>,
    pub hidden: u8,
    pub suffix: Box<str>,
}

impl MaskedPhone {
    /// Reads `138****5678`, `+86 138****5678`; `None` unless it is masked
    /// and keeps at least four trailing digits.
    pub fn parse(raw: &str) -> Option<MaskedPhone> {
        let first = raw.find('*')?;
        let last = raw.rfind('*')?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let hidden = raw[first..=last].chars().filter(|c| *c == '*').count();
        let prefix = digits(&raw[..first]);
        let suffix = digits(&raw[last + 1..]);
        (suffix.len() >= 4 && hidden <= 12).then(|| MaskedPhone {
            prefix: prefix.into(),
            hidden: hidden as u8,
            suffix: suffix.into(),
        })
    }

    /// Whether a full number (digits only, with or without its country
    /// code) could be this one.
    pub fn fits(&self, full: &str) -> bool {
        let length = self.prefix.len() + self.hidden as usize + self.suffix.len();
        if !full.ends_with(&*self.suffix) || full.len() < length {
            return false;
        }
        // The mask may or may not include the country code: skip up to 3 digits of it.
        let start = full.len() - length;
        start <= 3 && full[start..].starts_with(&*self.prefix)
    }

    /// Whether two masked forms show the same digits in the same places.
    pub fn same_as(&self, other: &MaskedPhone) -> bool {
        let tail = |p: &str, n: usize| p[p.len().saturating_sub(n)..].to_owned();
        let n = self.prefix.len().min(other.prefix.len());
        self.suffix == other.suffix
            && self.hidden == other.hidden
            && tail(&self.prefix, n) == tail(&other.prefix, n)
    }

    pub fn shown(&self) -> String {
        format!(
            "{}{}{}",
            self.prefix,
            "*".repeat(self.hidden as usize),
            self.suffix
        )
    }
}

/// The digits of a phone as written, when there are enough to mean a number.
pub fn phone_digits(raw: &str) -> Option<String> {
    if raw.contains('*') {
        return None;
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7).then_some(digits)
}

/// Letters and digits only, upper-cased: document ids and postcodes.
pub fn alnum_upper(raw: &str) -> Option<String> {
    let s: String = fold(raw)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_latin_names_compare_equal() {
        let wang_wei = Some("wang wei".to_owned());
        assert_eq!(name_key(&[Some("王伟")]), wang_wei);
        assert_eq!(name_key(&[Some("Wang"), Some("Wei")]), wang_wei);
        assert_eq!(name_key(&[Some("WANG Wei")]), wang_wei);
        assert_eq!(name_key(&[Some("wei"), Some("wang")]), wang_wei);
        assert_eq!(name_key(&[Some("伟"), Some("王")]), wang_wei);
        assert_eq!(
            name_key(&[Some("王小明")]),
            name_key(&[Some("Xiaoming"), Some("Wang")])
        );
        assert_eq!(name_key(&[None, Some("  ")]), None);
    }

    #[test]
    fn folding_unifies_width_case_and_accents() {
        assert_eq!(fold("ＪＯＳÉ  Müller-Smith"), "jose muller smith");
    }

    #[test]
    fn email_canonical_drops_tags_dots_and_typos() {
        assert_eq!(
            email_canonical("J.Doe+shop@googlemail.com").as_deref(),
            Some("jdoe@gmail.com")
        );
        assert_eq!(
            email_canonical("jdoe@gmial.com").as_deref(),
            Some("jdoe@gmail.com")
        );
        assert_eq!(
            email_canonical("li.lei+x@qq.con").as_deref(),
            Some("li.lei@qq.com")
        );
        assert_eq!(email_canonical("a@163.cm"), email_canonical("a@163.com"));
        assert_eq!(email_canonical("no-at-sign"), None);
    }

    #[test]
    fn masked_phone_fits_the_full_number() {
        let masked = MaskedPhone::parse("138****5678").unwrap();
        assert!(masked.fits("8613812345678"));
        assert!(masked.fits("13812345678"));
        assert!(!masked.fits("8613912345678"));
        assert!(!masked.fits("8613812345679"));
        let with_code = MaskedPhone::parse("+86 138****5678").unwrap();
        assert!(with_code.fits("8613812345678"));
        assert!(with_code.same_as(&masked));
        assert_eq!(MaskedPhone::parse("13812345678"), None);
        assert_eq!(MaskedPhone::parse("138****56"), None);
    }
}
