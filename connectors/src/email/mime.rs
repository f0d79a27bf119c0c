//! Mail and form bodies into one platform-neutral [`Email`].
//!
//! `mail-parser` does the RFC 5322/MIME work: transfer encodings
//! (quoted-printable, base64), charsets, RFC 2047 encoded words, nested
//! multiparts. Platforms that post parsed fields instead of the raw mail
//! hand their header block to the same parser, so ids, dates and the
//! auto-reply signals are read one way everywhere.
//!
//! `multipart/form-data` bodies are read with the same parser by prefixing
//! the request's `Content-Type` as a header line; each part's bytes are taken
//! verbatim from its offsets, so binary and non-UTF-8 fields survive.

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::{Address, HeaderValue, Message as Mail, MessageParser, MimeHeaders};

use crate::model::Attachment;
use crate::signature::sha256_hex;

/// One address of a `From`, `To` or `Cc` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// What one mail says, whichever platform delivered it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Email {
    /// `Message-ID` without the angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The `Date` header.
    pub date: Option<DateTime<Utc>>,
    /// The newest (topmost) `Received` header's time: when the receiving
    /// platform took the mail.
    pub received: Option<DateTime<Utc>>,
    /// An auto-reply, bounce or other machine-sent report.
    pub automatic: bool,
    /// The id to use when the mail has no `Message-ID`.
    pub fallback_id: String,
}

/// A whole RFC 5322 message: headers, body text and attachment metadata.
pub(crate) fn parse_mime(raw: &[u8]) -> Option<Email> {
    let mail = MessageParser::default().parse(raw)?;
    let mut email = headers_of(&mail);
    email.text = body_text(&mail);
    email.attachments = attachments_of(&mail);
    email.fallback_id = sha256_hex(raw);
    Some(email)
}

/// A header block alone (`Name: value` lines), as platforms that parse the
/// mail themselves post it. Body, attachments and fallback id stay empty.
pub(super) fn parse_header_block(block: &[u8]) -> Email {
    let mut raw = block.to_vec();
    if !raw.ends_with(b"\n") {
        raw.extend_from_slice(b"\r\n");
    }
    // The blank line that ends the headers; the body is empty.
    raw.extend_from_slice(b"\r\n");
    match MessageParser::default().parse(&raw[..]) {
        Some(mail) => headers_of(&mail),
        None => Email::default(),
    }
}

/// The `Message-ID` of a raw mail, read from its header section only.
pub(super) fn message_id_of(raw: &[u8]) -> Option<String> {
    parse_header_block(header_section(raw)).message_id
}

/// The bytes before the first blank line.
fn header_section(raw: &[u8]) -> &[u8] {
    let crlf = find(raw, b"\r\n\r\n").map(|i| i + 2);
    let lf = find(raw, b"\n\n").map(|i| i + 1);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => raw.len(),
    };
    &raw[..end]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `Name: value` lines from pairs; line breaks inside values are folded
/// into spaces and pairs whose name is not a header name are dropped.
pub(super) fn header_block<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in pairs {
        let name = name.trim();
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid {
            continue;
        }
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(b": ");
        for ch in value.trim().chars() {
            let ch = if ch == '\r' || ch == '\n' { ' ' } else { ch };
            let mut buf = [0u8; 4];
            block.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        block.extend_from_slice(b"\r\n");
    }
    block
}

/// Addresses of a header value such as `Ada <ada@example.com>, b@example.com`,
/// RFC 2047 names decoded.
pub(super) fn address_list(value: &str) -> Vec<Mailbox> {
    let block = header_block([("To", value)]);
    parse_header_block(&block).to
}

/// A header text with RFC 2047 encoded words decoded.
pub(super) fn decode_words(value: &str) -> Option<String> {
    let block = header_block([("Subject", value)]);
    parse_header_block(&block).subject
}

/// An RFC 5322 date (`Wed, 1 Jan 2025 12:00:00 +0000`) in UTC.
pub(super) fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    to_utc(&mail_parser::DateTime::parse_rfc822(value.trim())?)
}

fn to_utc(date: &mail_parser::DateTime) -> Option<DateTime<Utc>> {
    if !date.is_valid() {
        return None;
    }
    Utc.timestamp_opt(date.to_timestamp(), 0).single()
}

fn headers_of(mail: &Mail<'_>) -> Email {
    Email {
        message_id: mail.message_id().and_then(clean_id),
        in_reply_to: ids(mail.in_reply_to()),
        references: ids(mail.references()),
        from: mail.from().and_then(|a| mailboxes(a).into_iter().next()),
        to: mail.all_to().flat_map(mailboxes).collect(),
        cc: mail.all_cc().flat_map(mailboxes).collect(),
        subject: mail
            .subject()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        text: None,
        attachments: Vec::new(),
        date: mail.date().and_then(to_utc),
        received: mail
            .received()
            .and_then(|r| r.date())
            .and_then(|d| to_utc(&d)),
        automatic: is_automatic(mail),
        fallback_id: String::new(),
    }
}

fn clean_id(raw: &str) -> Option<String> {
    let id = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
}

fn mailboxes(address: &Address<'_>) -> Vec<Mailbox> {
    address
        .iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim();
            if address.is_empty() {
                return None;
            }
            Some(Mailbox {
                name: addr
                    .name()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
                address: address.to_owned(),
            })
        })
        .collect()
}

/// Auto-replies (RFC 3834 and the common vendor headers), bounces and other
/// reports. The sender's address is checked separately ([`system_sender`]).
fn is_automatic(mail: &Mail<'_>) -> bool {
    let raw = mail.raw_message();
    let flagged = mail.headers().iter().any(|header| {
        let name = header.name().to_ascii_lowercase();
        let start = header.offset_start() as usize;
        let end = (header.offset_end() as usize).min(raw.len());
        let value = String::from_utf8_lossy(raw.get(start..end).unwrap_or_default())
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "auto-submitted" => {
                let token = value.split(';').next().unwrap_or_default().trim();
                !token.is_empty() && token != "no"
            }
            "x-autoreply" => !matches!(value.as_str(), "no" | "false"),
            "x-autorespond" | "x-failed-recipients" => true,
            "precedence" => matches!(
                value.as_str(),
                "bulk" | "junk" | "auto_reply" | "auto-reply"
            ),
            // A null return path: only delivery reports and auto-replies
            // are sent without one.
            "return-path" => value == "<>",
            _ => false,
        }
    });
    let report = mail.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let daemon = mail
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .is_some_and(system_sender);
    flagged || report || daemon
}

/// Mail system senders (`MAILER-DAEMON@…`, `postmaster@…`): bounces.
pub(super) fn system_sender(address: &str) -> bool {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

/// An SMTP envelope sender that marks a bounce: empty (the null
/// reverse-path) or a mail system address.
pub(super) fn bounce_envelope_sender(sender: &str) -> bool {
    let sender = sender.trim();
    sender.is_empty() || sender == "<>" || system_sender(sender)
}

/// The text/plain parts, or the HTML converted when there is none.
fn body_text(mail: &Mail<'_>) -> Option<String> {
    let parts: Vec<String> = (0..mail.text_body_count())
        .filter_map(|i| mail.body_text(i))
        .filter_map(|t| normalise_text(&t))
        .collect();
    normalise_text(&parts.join("\n"))
}

fn attachments_of(mail: &Mail<'_>) -> Vec<Attachment> {
    mail.attachments()
        .map(|part| Attachment {
            name: part
                .attachment_name()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            content_type: part.content_type().map(|ct| {
                let ctype = ct.ctype().to_ascii_lowercase();
                match ct.subtype() {
                    Some(sub) => format!("{ctype}/{}", sub.to_ascii_lowercase()),
                    None => ctype,
                }
            }),
            size: Some(part.len() as u64),
        })
        .collect()
}

/// Line ends as `\n`, trimmed; `None` when nothing is left.
pub(super) fn normalise_text(text: &str) -> Option<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// HTML as plain text, normalised like [`normalise_text`].
pub(super) fn html_text(html: &str) -> Option<String> {
    normalise_text(&html_to_text(html))
}

/// Bytes in a named charset (`GB2312`, `ISO-8859-1`…); UTF-8 when the
/// charset is absent or unknown.
pub(super) fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    let charset = charset.map(str::trim).filter(|c| !c.is_empty());
    match charset {
        Some(c) if c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8") => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        Some(c) => match charset_decoder(c.as_bytes()) {
            Some(decode) => decode(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// One field of a form body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FormField {
    pub name: String,
    /// Present on file parts.
    pub filename: Option<String>,
    /// The part's own `Content-Type` (`type/subtype`), lower-cased.
    pub content_type: Option<String>,
    /// The exact bytes, undecoded.
    pub value: Vec<u8>,
}

/// A posted form, fields in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Form {
    pub fields: Vec<FormField>,
}

impl Form {
    /// Reads `multipart/form-data` or `application/x-www-form-urlencoded`
    /// (also assumed when there is no `Content-Type`). The error names
    /// what was wrong, never a value.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Form, &'static str> {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match media.as_deref() {
            Some("multipart/form-data") => Self::multipart(content_type.unwrap_or_default(), body),
            None | Some("application/x-www-form-urlencoded") => Ok(Self::urlencoded(body)),
            Some(_) => Err("the body is neither multipart/form-data nor urlencoded"),
        }
    }

    fn multipart(content_type: &str, body: &[u8]) -> Result<Form, &'static str> {
        if content_type.contains(['\r', '\n']) {
            return Err("the Content-Type header is not one line");
        }
        let mut raw = Vec::with_capacity(body.len() + content_type.len() + 20);
        raw.extend_from_slice(b"Content-Type: ");
        raw.extend_from_slice(content_type.as_bytes());
        raw.extend_from_slice(b"\r\n\r\n");
        raw.extend_from_slice(body);
        let mail = MessageParser::default()
            .parse(&raw[..])
            .ok_or("the form body cannot be read")?;
        let children = mail
            .root_part()
            .sub_parts()
            .filter(|parts| !parts.is_empty())
            .ok_or("the form body has no parts (wrong or missing boundary)")?;
        let mut fields = Vec::with_capacity(children.len());
        for &id in children {
            let Some(part) = mail.part(id) else { continue };
            let Some(name) = part
                .content_disposition()
                .and_then(|cd| cd.attribute("name"))
            else {
                continue;
            };
            let start = part.raw_body_offset() as usize;
            let end = part.raw_end_offset() as usize;
            let value = raw.get(start..end.max(start)).unwrap_or_default().to_vec();
            fields.push(FormField {
                name: name.to_owned(),
                filename: part
                    .content_disposition()
                    .and_then(|cd| cd.attribute("filename"))
                    .map(str::to_owned),
                content_type: part.content_type().map(|ct| {
                    let ctype = ct.ctype().to_ascii_lowercase();
                    match ct.subtype() {
                        Some(sub) => format!("{ctype}/{}", sub.to_ascii_lowercase()),
                        None => ctype,
                    }
                }),
                value,
            });
        }
        Ok(Form { fields })
    }

    fn urlencoded(body: &[u8]) -> Form {
        let fields = body
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                FormField {
                    name: String::from_utf8_lossy(&percent_decode(name)).into_owned(),
                    filename: None,
                    content_type: None,
                    value: percent_decode(value),
                }
            })
            .collect();
        Form { fields }
    }

    /// The first field of exactly this name.
    pub fn get(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The first field of this name in any ASCII case (Mailgun posts each
    /// mail header as a field named like the header).
    pub fn get_ignore_case(&self, name: &str) -> Option<&FormField> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// A field as UTF-8 text (invalid sequences replaced).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|f| String::from_utf8_lossy(&f.value).into_owned())
    }

    /// The file parts.
    pub fn files(&self) -> impl Iterator<Item = &FormField> {
        self.fields.iter().filter(|f| f.filename.is_some())
    }
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space,
/// `%XX` a byte; a stray `%` stays as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (input.get(i + 1), input.get(i + 2)) {
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex_value(h) << 4 | hex_value(l));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}
