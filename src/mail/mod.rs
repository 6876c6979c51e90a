//! Parse and classify: hostile bytes in, plain data out.
//!
//! Nothing here may panic on input or do I/O. A message we cannot use becomes a
//! [`Quarantine`] with a reason a human can act on; everything else becomes a [`ParsedMail`]
//! whose text fields are clean, single-line UTF-8 (its `text` keeps its lines).
//!
//! [`headers`] reads and writes header values, [`charset`] reads text in the charset it really
//! is, [`body`] finds the text a person would read, [`classify`] decides who wrote a message,
//! [`summary`] finds the sender's own words, [`bounce`] reads delivery reports.
// Text here is customers' own, in every script: a byte index found in one copy of a string
// (case-folded, normalised) must never cut another. Slice by char or by a found match only.
#![deny(clippy::string_slice)]

pub mod body;
pub mod bounce;
pub mod charset;
pub mod classify;
pub mod facts;
pub mod headers;
pub mod our_mail;
pub mod own_words;
pub mod reply_marks;
pub mod summary;
pub mod trust;

use mail_parser::{MessageParser, MimeHeaders};

use crate::config::Config;

use bounce::bounce_report;
pub use charset::CharsetNote;
use classify::classify;
pub use headers::{base_subject, content_digest, header_safe, thread_index_root};
use headers::{clean_id, decode_8bit_headers, id_list, thread_order};
pub use own_words::{Context, OurMail, OwnWords};
pub use summary::summarize;
pub use trust::{Trust, Verdict};

/// The header we put on every mail we send, so that our own mail coming back (a customer's
/// auto-forward, a CC to the support address) is recognised and never answered.
pub const LOOP_HEADER: &str = "X-Followupd-Loop";

/// Longest subject / name we keep or put in a header, in characters.
pub const MAX_HEADER_TEXT: usize = 200;
/// Longest complaint summary handed to templates, in characters.
pub const SUMMARY_CHARS: usize = 300;
/// Items of a header list read (Message-IDs in References, addresses in To, Cc or Bcc): more
/// are ignored, a thread or a list that long is not worth a slower lookup. (What we write in
/// References is bounded apart: [`crate::incident::letters::MAX_REFERENCES`].)
pub(crate) const MAX_LIST_ITEMS: usize = 50;
/// Attachments listed per message; the raw message keeps them all.
const MAX_ATTACHMENTS: usize = 100;
/// Message-IDs and recipients taken from one delivery report.
pub(crate) const MAX_REPORT_ITEMS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Lower-cased address, the form every comparison uses.
    pub address: String,
    pub name: Option<String>,
}

/// What a recorded message is: one vocabulary for the `messages.class` column. Only `Human`
/// mail may ever open an incident or be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageClass {
    /// Written by a person: may open an incident and be answered.
    Human,
    /// Out-of-office and other automatic replies (RFC 3834 and friends).
    AutoReply,
    /// Delivery status notifications and mail from MAILER-DAEMON.
    Bounce,
    /// Mailing lists, newsletters, bulk mail.
    Bulk,
    /// Our own mail, come back to us, or mail whose loop header names one of our addresses.
    Loop,
    /// Spam by the receiving server's verdict (`X-Spam-Flag: YES` and friends): recorded for
    /// staff, never answered.
    Junk,
    /// Could not be used (unparseable, no sender, conflicting Message-ID, held stranger): kept
    /// raw for a human.
    Quarantined,
    /// Mail we sent (its kind is recorded beside it).
    Outgoing,
    /// A staff member's reply to one of our notifications: theirs, not the customer's.
    Staff,
}

impl MessageClass {
    pub const ALL: [MessageClass; 9] = [
        MessageClass::Human,
        MessageClass::AutoReply,
        MessageClass::Bounce,
        MessageClass::Bulk,
        MessageClass::Loop,
        MessageClass::Junk,
        MessageClass::Quarantined,
        MessageClass::Outgoing,
        MessageClass::Staff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageClass::Human => "human",
            MessageClass::AutoReply => "auto-reply",
            MessageClass::Bounce => "bounce",
            MessageClass::Bulk => "bulk",
            MessageClass::Loop => "loop",
            MessageClass::Junk => "junk",
            MessageClass::Quarantined => "quarantined",
            MessageClass::Outgoing => "outgoing",
            MessageClass::Staff => "staff",
        }
    }

    pub fn parse(text: &str) -> Option<MessageClass> {
        MessageClass::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for MessageClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ParsedMail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To first, then References newest first: the order threading should try them.
    pub referenced_ids: Vec<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub from: Person,
    /// Further addresses in From (RFC 5322 allows several authors; we answer the first usable
    /// one), lower-cased, for the record.
    pub other_from: Vec<String>,
    pub reply_to: Option<Person>,
    /// The addresses in To, lower-cased.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Where the mail was delivered besides To and Cc, lower-cased: a Bcc the sender's copy
    /// kept, and the delivering server's `Delivered-To`, `X-Original-To` and `Envelope-To`.
    pub delivered_to: Vec<String>,
    pub subject: String,
    pub date: Option<String>,
    /// The language the sender wrote in, from Content-Language ("de"), if they said.
    pub content_language: Option<String>,
    /// The text a person reads, quoted history marked with `>` (also where the mail was HTML):
    /// what [`own_words::read`] reads again once the thread, and so our own mail in it, is known.
    pub body: String,
    /// What the sender wrote themselves, read as a new mail would be (no thread known yet).
    pub own: OwnWords,
    /// [`OwnWords::text`] of `own`: greeting, body and sign-off, lines kept.
    pub text: String,
    /// The start of `text` on one line, cut at a word: what templates show as "what we
    /// understood".
    pub summary: String,
    pub class: MessageClass,
    /// Why it got its class ("Auto-Submitted: auto-replied"); empty for human mail.
    pub class_reason: String,
    /// Outlook's conversation id: the first 22 bytes of Thread-Index, hex.
    pub thread_index_root: Option<String>,
    pub attachments: Vec<Attachment>,
    /// For bounces: what the report says about which mail failed for whom.
    pub bounce: Option<BounceReport>,
    /// How far the sender is proven, by the receiving server.
    pub trust: Verdict,
    /// Every piece whose charset was missing or wrong, and what it was read as instead.
    pub charsets: Vec<CharsetNote>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// What a delivery report (or an old-style bounce) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BounceReport {
    /// Message-IDs of the mail that bounced, from the attached original or its headers.
    pub original_ids: Vec<String>,
    /// Recipients whose delivery failed for good (`Action: failed`), lower-cased.
    pub failed: Vec<String>,
    /// Recipients only delayed (`Action: delayed`): the MTA is still trying.
    pub delayed: Vec<String>,
    /// A machine-readable report (message/delivery-status) was found.
    pub is_dsn: bool,
}

impl ParsedMail {
    /// Where an answer goes: Reply-To if the sender set one, else From.
    pub fn answer_to(&self) -> &Person {
        self.reply_to.as_ref().unwrap_or(&self.from)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub reason: Unreadable,
    /// Whatever could be salvaged, for the record.
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
}

/// Why a message cannot be read as mail (worded for staff by the phrase book, `[arrival]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Parsing it hit a bug (caught).
    ParserFailed,
    /// Not an RFC 5322 message: no header section.
    NotAMessage,
    /// Its From header (shown, made safe) names no usable address.
    FromUnusable(String),
    /// It has no From header: nobody to answer.
    NoFrom,
}

impl std::fmt::Display for Unreadable {
    /// For logs and tests; staff read the phrase.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::ParserFailed => f.write_str("parser failed (internal error, caught)"),
            Unreadable::NotAMessage => f.write_str("not an RFC 5322 message"),
            Unreadable::FromUnusable(from) => write!(f, "From `{from}` holds no usable address"),
            Unreadable::NoFrom => f.write_str("no From header"),
        }
    }
}

/// Parses a raw message and decides its class. Never panics: mail-parser is run under
/// `catch_unwind` as a last line of defence, since one poisoned message must not stop intake.
/// The subject an incident gets when its complaint had none.
pub const NO_SUBJECT: &str = "(no subject)";

pub fn parse(raw: &[u8], config: &Config) -> Result<ParsedMail, Quarantine> {
    match std::panic::catch_unwind(|| {
        let (raw, headers_charset) = decode_8bit_headers(raw);
        let mut parsed = parse_inner(&raw, config)?;
        if let Some(encoding) = headers_charset {
            parsed.charsets.insert(
                0,
                CharsetNote {
                    part: "headers",
                    used: encoding.name().to_string(),
                    declared: None,
                },
            );
        }
        Ok(parsed)
    }) {
        Ok(result) => result,
        Err(_) => Err(Quarantine {
            reason: Unreadable::ParserFailed,
            message_id: None,
            from: None,
            subject: None,
        }),
    }
}

fn parse_inner(raw: &[u8], config: &Config) -> Result<ParsedMail, Quarantine> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Err(Quarantine {
            reason: Unreadable::NotAMessage,
            message_id: None,
            from: None,
            subject: None,
        });
    };
    let message_id = message
        .message_id()
        .map(clean_id)
        .filter(|id| !id.is_empty());
    let mut charsets = Vec::new();
    let subject = message
        .subject()
        .map(|s| repaired_header(&message, "Subject", s, "subject", &mut charsets))
        .map(|s| header_safe(&s, MAX_HEADER_TEXT))
        .unwrap_or_default();
    let (from, other_from) = senders(&message, &mut charsets);
    let Some(from) = from else {
        return Err(Quarantine {
            reason: match message.header_raw("From") {
                Some(raw_from) => Unreadable::FromUnusable(header_safe(raw_from, 80)),
                None => Unreadable::NoFrom,
            },
            message_id,
            from: None,
            subject: Some(subject),
        });
    };
    let reply_to = message
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| person(a.address(), a.name()));
    let addresses = |list: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        list.map(|list| {
            list.iter()
                .filter_map(|a| person(a.address(), None))
                .map(|p| p.address)
                .take(MAX_LIST_ITEMS)
                .collect()
        })
        .unwrap_or_default()
    };
    let to = addresses(message.to());
    let cc = addresses(message.cc());
    let mut delivered_to = addresses(message.bcc());
    for name in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        for (_, value) in message
            .headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .take(MAX_LIST_ITEMS)
        {
            let address = value.trim().trim_start_matches('<').trim_end_matches('>');
            if address.contains('@') && !address.contains(char::is_whitespace) {
                delivered_to.push(address.to_lowercase());
            }
        }
    }
    let in_reply_to = id_list(message.in_reply_to()).into_iter().next();
    let references = id_list(message.references());
    let referenced_ids = thread_order(in_reply_to.as_deref(), &references);
    let (class, class_reason) = classify(&message, &from, &subject, config);
    let (body, body_charsets) = body::readable_text(&message);
    charsets.extend(body_charsets);
    let own = own_words::read(&body, &OurMail::none(), Context::Fresh);
    let text = own.text();
    let summary = summarize(&own, SUMMARY_CHARS);
    let bounce = (class == MessageClass::Bounce).then(|| bounce_report(&message));
    let trust = trust::assess(message.headers_raw(), &from, &config.intake);
    Ok(ParsedMail {
        message_id,
        referenced_ids,
        in_reply_to,
        references,
        from,
        other_from,
        reply_to,
        to,
        cc,
        delivered_to,
        subject,
        date: message.date().map(|d| d.to_rfc3339()),
        content_language: message
            .header_raw("Content-Language")
            .and_then(crate::lang::from_content_language),
        body,
        own,
        text,
        summary,
        class,
        class_reason,
        thread_index_root: message
            .header_raw("Thread-Index")
            .and_then(thread_index_root),
        attachments: attachments(&message),
        bounce,
        trust,
        charsets,
    })
}

/// A decoded header value, or, when mail-parser had to put replacement characters in it (an
/// encoded-word whose label does not fit its bytes), the raw value decoded word by word in the
/// charset each really is.
fn repaired_header(
    message: &mail_parser::Message<'_>,
    name: &str,
    decoded: &str,
    part: &'static str,
    notes: &mut Vec<CharsetNote>,
) -> String {
    if !decoded.contains('\u{fffd}') {
        return decoded.to_string();
    }
    let Some(raw) = message.header_raw(name) else {
        return decoded.to_string();
    };
    let (text, fallback) = charset::decode_encoded_words(raw.trim());
    match fallback {
        Some((encoding, declared)) if !text.contains('\u{fffd}') => {
            notes.push(CharsetNote {
                part,
                used: encoding.name().to_string(),
                declared: Some(declared),
            });
            text
        }
        _ => decoded.to_string(),
    }
}

/// Local parts that name a mail system's own bounce sender even without a domain: Sendmail and
/// Postfix notices from a host without a qualified name say `From: MAILER-DAEMON (Mail Delivery
/// System)`.
const BOUNCE_SENDERS: &[&str] = &["mailer-daemon", "postmaster"];

/// The author to answer — the first usable address in From — and the other addresses From
/// names. A From of `<>, ann@example.com` (seen from broken forwarders) is answered at Ann.
fn senders(
    message: &mail_parser::Message<'_>,
    notes: &mut Vec<CharsetNote>,
) -> (Option<Person>, Vec<String>) {
    let Some(list) = message.from() else {
        return (None, Vec::new());
    };
    let mut chosen: Option<Person> = None;
    let mut others = Vec::new();
    for addr in list.iter().take(MAX_LIST_ITEMS) {
        let candidate = person(addr.address(), addr.name()).or_else(|| bounce_sender(addr));
        match (candidate, &chosen) {
            (Some(p), None) => chosen = Some(p),
            (Some(p), Some(c)) if p.address != c.address => others.push(p.address),
            _ => {}
        }
    }
    if let Some(p) = chosen.as_mut() {
        if let Some(name) = p.name.as_deref().filter(|n| n.contains('\u{fffd}')) {
            p.name = repaired_name(message, name, notes);
        }
    }
    (chosen, others)
}

/// `MAILER-DAEMON` or `postmaster` with no domain — as the address, or as the name beside an
/// empty one (amavisd-new writes `From: MAILER DAEMON <>`): kept as the bare, lower-cased word
/// so the classifier sees a bounce sender instead of the message being quarantined.
fn bounce_sender(addr: &mail_parser::Addr<'_>) -> Option<Person> {
    let address = addr.address().map(str::trim).filter(|a| !a.is_empty());
    let word = address
        .or(addr.name())?
        .trim()
        .trim_matches(['<', '>'])
        .to_lowercase()
        .replace(' ', "-");
    BOUNCE_SENDERS.contains(&word.as_str()).then_some(Person {
        address: word,
        name: None,
    })
}

/// The display name of the first From address, decoded again word by word when its label did
/// not fit its bytes (a Shift_JIS name labelled ISO-2022-JP).
fn repaired_name(
    message: &mail_parser::Message<'_>,
    decoded: &str,
    notes: &mut Vec<CharsetNote>,
) -> Option<String> {
    let keep = || Some(header_safe(decoded, MAX_HEADER_TEXT));
    let Some(raw) = message.header_raw("From") else {
        return keep();
    };
    let (text, fallback) = charset::decode_encoded_words(raw.trim());
    let Some((encoding, declared)) = fallback else {
        return keep();
    };
    // Read the decoded header again as UTF-8, the way mail-parser reads raw UTF-8 headers.
    let again = format!("From: {}\r\n\r\n", text.replace(['\r', '\n'], " "));
    let reparsed = MessageParser::default().parse(again.as_bytes());
    let name = reparsed
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|a| a.first())
        .and_then(|a| a.name())
        .map(|n| header_safe(n, MAX_HEADER_TEXT))
        .filter(|n| !n.is_empty() && !n.contains('\u{fffd}'));
    match name {
        Some(name) => {
            notes.push(CharsetNote {
                part: "name",
                used: encoding.name().to_string(),
                declared: Some(declared),
            });
            Some(name)
        }
        None => keep(),
    }
}

fn attachments(message: &mail_parser::Message<'_>) -> Vec<Attachment> {
    message
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| Attachment {
            name: attachment_name(part),
            content_type: content_type(part),
            size: part_len(part),
        })
        .collect()
}

fn attachment_name(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    part.attachment_name()
        .map(|n| header_safe(n, MAX_HEADER_TEXT))
        .filter(|n| !n.is_empty())
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| {
            let t = match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            };
            header_safe(&t.to_ascii_lowercase(), 100)
        })
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// A recorded message as a person reads it: the main header fields, decoded, and the whole
/// text (every text part in order; the HTML turned into text when there is no text part).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Readable {
    pub headers: Vec<(String, String)>,
    pub text: String,
}

/// Decodes a raw message for reading (the CLI's `message show` and `incident show --full`).
/// Never panics; a message that cannot be parsed shows its raw text.
pub fn readable(raw: &[u8]) -> Readable {
    let parsed = std::panic::catch_unwind(|| {
        // Raw 8-bit header lines read in the charset they are, as intake reads them.
        let (decoded, _) = decode_8bit_headers(raw);
        let message = MessageParser::default().parse(decoded.as_ref())?;
        let mut headers = Vec::new();
        for name in [
            "From",
            "To",
            "Cc",
            "Reply-To",
            "Date",
            "Subject",
            "Message-ID",
            "In-Reply-To",
        ] {
            if let Some(value) = message.header(name) {
                let text = match value {
                    mail_parser::HeaderValue::Address(a) => a
                        .iter()
                        .map(|addr| match (addr.name(), addr.address()) {
                            (Some(n), Some(a)) => format!("{n} <{a}>"),
                            (None, Some(a)) => a.to_string(),
                            (Some(n), None) => n.to_string(),
                            (None, None) => String::new(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    mail_parser::HeaderValue::Text(t) => t.to_string(),
                    mail_parser::HeaderValue::TextList(list) => list.join(" "),
                    mail_parser::HeaderValue::DateTime(d) => d.to_rfc822(),
                    _ => message.header_raw(name).unwrap_or("").trim().to_string(),
                };
                headers.push((name.to_string(), header_safe(&text, 2000)));
            }
        }
        // The same text intake reads: every text part, the HTML when they are empty, each
        // in the charset it really is. Lines end in CRLF on the wire; a reader wants plain
        // line breaks.
        let (text, _) = body::readable_text(&message);
        let text = text.replace("\r\n", "\n");
        Some(Readable { headers, text })
    });
    match parsed {
        Ok(Some(readable)) => readable,
        _ => Readable {
            headers: Vec::new(),
            text: String::from_utf8_lossy(raw).replace("\r\n", "\n"),
        },
    }
}

/// The texts of a mail we sent, as a reply may quote them: each text part, and each HTML part
/// read as text (a client quoting our HTML version quotes those words). Never panics.
pub fn sent_texts(raw: &[u8]) -> Vec<String> {
    std::panic::catch_unwind(|| {
        let Some(message) = MessageParser::default().parse(raw) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for id in message.text_body.iter().chain(&message.html_body) {
            let Some(part) = message.parts.get(*id as usize) else {
                continue;
            };
            match &part.body {
                mail_parser::PartType::Text(text) => out.push(text.to_string()),
                mail_parser::PartType::Html(html) => out.push(body::html_to_marked_text(html)),
                _ => {}
            }
        }
        out.dedup();
        out
    })
    .unwrap_or_default()
}

/// An attachment with its decoded bytes, to send on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPart {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The attachments of a message we received, decoded, to forward (a staff member's reply
/// carries them to the customer, a customer's go to staff). Nested messages are skipped; at
/// most `max_total` bytes: a file that would pass it is left out, a smaller one after it
/// still goes.
pub fn attachment_parts(raw: &[u8], max_total: usize) -> Vec<AttachmentPart> {
    let found = std::panic::catch_unwind(|| {
        let Some(message) = MessageParser::default().parse(raw) else {
            return Vec::new();
        };
        let mut total = 0usize;
        let mut out = Vec::new();
        for part in message.attachments().take(MAX_ATTACHMENTS) {
            if part.message().is_some() {
                continue;
            }
            let size = part.contents().len();
            if total.saturating_add(size) > max_total {
                continue;
            }
            total += size;
            let bytes = part.contents().to_vec();
            out.push(AttachmentPart {
                name: attachment_name(part)
                    .unwrap_or_else(|| format!("attachment-{}", out.len() + 1)),
                content_type: content_type(part),
                bytes,
            });
        }
        out
    });
    found.unwrap_or_default()
}

/// `MessagePart::len`, except that a nested message with no parts (a truncated attachment)
/// counts as empty instead of panicking inside mail-parser (found by fuzzing).
fn part_len(part: &mail_parser::MessagePart<'_>) -> usize {
    match part.message() {
        Some(nested) if nested.parts.is_empty() => 0,
        _ => part.len(),
    }
}

pub(crate) fn person(address: Option<&str>, name: Option<&str>) -> Option<Person> {
    let mut address = address?.trim().to_lowercase();
    // `ann@yahoo.com.` is a fully qualified name as DNS writes it; mail systems and lettre want
    // it without the root's dot.
    while address.ends_with('.') && address.contains('@') {
        address.pop();
    }
    let usable = match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','))
        }
        None => false,
    };
    usable.then(|| Person {
        address,
        name: name
            .map(|n| header_safe(n, MAX_HEADER_TEXT))
            .filter(|n| !n.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(raw: &[u8]) -> Result<ParsedMail, Quarantine> {
        let mut config = Config::example().expect("example config");
        config.support.own_addresses = vec!["help@example.test".into()];
        parse(raw, &config)
    }

    fn parse_str(text: &str) -> Result<ParsedMail, Quarantine> {
        parse_bytes(text.replace('\n', "\r\n").as_bytes())
    }

    const COMPLAINT: &str = "From: \"Ann Customer\" <Ann@Example.TEST>\nTo: support@example.test\nSubject: My order arrived broken\nMessage-ID: <c1@mail.example.test>\nDate: Mon, 23 Nov 2026 09:00:00 +0000\n\nHello,\n\nthe vase I ordered arrived in pieces.\n\n> quoted old text\n-- \nAnn\n";

    #[test]
    fn a_plain_complaint_is_human_mail_with_a_summary() {
        let mail = parse_str(COMPLAINT).expect("parses");
        assert_eq!(mail.class, MessageClass::Human);
        assert_eq!(mail.from.address, "ann@example.test");
        assert_eq!(mail.from.name.as_deref(), Some("Ann Customer"));
        assert_eq!(mail.message_id.as_deref(), Some("c1@mail.example.test"));
        assert_eq!(mail.summary, "The vase I ordered arrived in pieces.");
    }

    #[test]
    fn auto_submitted_no_is_human_any_other_value_is_not() {
        let no = COMPLAINT.replace("Subject:", "Auto-Submitted: no\nSubject:");
        assert_eq!(parse_str(&no).expect("parses").class, MessageClass::Human);
        let replied = COMPLAINT.replace("Subject:", "Auto-Submitted: auto-replied\nSubject:");
        assert_eq!(
            parse_str(&replied).expect("parses").class,
            MessageClass::AutoReply
        );
        let generated = COMPLAINT.replace("Subject:", "Auto-Submitted: Auto-Generated\nSubject:");
        assert_eq!(
            parse_str(&generated).expect("parses").class,
            MessageClass::AutoReply
        );
    }

    #[test]
    fn our_own_mail_is_a_loop() {
        let looped = COMPLAINT.replace(
            "Subject:",
            "X-Followupd-Loop: support@example.test\nSubject:",
        );
        assert_eq!(
            parse_str(&looped).expect("parses").class,
            MessageClass::Loop
        );
        let from_us = COMPLAINT.replace("\"Ann Customer\" <Ann@Example.TEST>", "help@example.test");
        assert_eq!(
            parse_str(&from_us).expect("parses").class,
            MessageClass::Loop
        );
    }

    #[test]
    fn bounces_lists_and_noreply_are_not_human() {
        let daemon = COMPLAINT.replace(
            "\"Ann Customer\" <Ann@Example.TEST>",
            "MAILER-DAEMON@mx.example.test",
        );
        assert_eq!(
            parse_str(&daemon).expect("parses").class,
            MessageClass::Bounce
        );
        let list = COMPLAINT.replace("Subject:", "List-Id: <news.example.test>\nSubject:");
        assert_eq!(parse_str(&list).expect("parses").class, MessageClass::Bulk);
        let bulk = COMPLAINT.replace("Subject:", "Precedence: bulk\nSubject:");
        assert_eq!(parse_str(&bulk).expect("parses").class, MessageClass::Bulk);
        let first_class = COMPLAINT.replace("Subject:", "Precedence: first-class\nSubject:");
        assert_eq!(
            parse_str(&first_class).expect("parses").class,
            MessageClass::Human
        );
        let noreply = COMPLAINT.replace("Ann@Example.TEST", "no-reply@shop.example");
        assert_eq!(
            parse_str(&noreply).expect("parses").class,
            MessageClass::Bulk
        );
    }

    #[test]
    fn mail_without_a_sender_is_quarantined_with_a_reason() {
        let q = parse_str("Subject: hi\nMessage-ID: <x@y>\n\nbody\n").unwrap_err();
        assert_eq!(q.reason, Unreadable::NoFrom);
        assert_eq!(q.message_id.as_deref(), Some("x@y"));
        let q = parse_str("From: nobody\nSubject: hi\n\nbody\n").unwrap_err();
        assert!(
            matches!(q.reason, Unreadable::FromUnusable(_)),
            "{}",
            q.reason
        );
    }

    #[test]
    fn garbage_bytes_never_panic() {
        for raw in [
            &b""[..],
            b"\0\0\0",
            b"\xff\xfe\r\n\r\n",
            b"From:\r\n",
            b"::::\r\n\r\n",
        ] {
            // Kept for a person with a reason, never answered as a person's complaint.
            match parse_bytes(raw) {
                Err(q) => assert!(
                    !q.reason.to_string().is_empty(),
                    "{raw:?}: a quarantine says why"
                ),
                Ok(mail) => panic!(
                    "{raw:?} parsed as mail from {:?} ({}): garbage must be kept for a person",
                    mail.from.address, mail.class
                ),
            }
        }
    }

    #[test]
    fn threading_order_is_in_reply_to_then_newest_reference() {
        let reply = COMPLAINT.replace(
            "Subject:",
            "In-Reply-To: <b@x>\nReferences: <a@x> <b@x> <c@x>\nSubject:",
        );
        let mail = parse_str(&reply).expect("parses");
        assert_eq!(mail.referenced_ids, vec!["b@x", "c@x", "a@x"]);
    }

    #[test]
    fn two_deliveries_of_one_mail_share_a_content_digest() {
        let a = format!("Return-Path: <ann@example.test>\r\nDelivered-To: support@example.test\r\nReceived: from a\r\n\tby b; Mon\r\n{}", COMPLAINT.replace('\n', "\r\n"));
        let b = format!("Return-Path: <ann@example.test>\r\nDelivered-To: help@example.test\r\nReceived: from c\r\n\tby d; Tue\r\n{}", COMPLAINT.replace('\n', "\r\n"));
        assert_eq!(content_digest(a.as_bytes()), content_digest(b.as_bytes()));
        let edited = a.replace("in pieces", "in two pieces");
        assert_ne!(
            content_digest(a.as_bytes()),
            content_digest(edited.as_bytes())
        );
        let resubjected = a.replace("arrived broken", "arrived fine");
        assert_ne!(
            content_digest(a.as_bytes()),
            content_digest(resubjected.as_bytes())
        );
    }

    #[test]
    fn base_subject_strips_any_mix_of_prefixes_and_tokens() {
        assert_eq!(
            base_subject("AW: SV: Re: Fwd: WG: TR: RE: Order broken [FU-12-0a1b2c3d4e]"),
            "Order broken"
        );
        assert_eq!(base_subject("Re[2]: Re^3: FW : vase"), "vase");
        assert_eq!(base_subject("Reply needed: vase"), "Reply needed: vase");
        assert_eq!(base_subject("Area: vase"), "Area: vase");
        assert_eq!(base_subject("[FU-x] odd"), "[FU-x] odd");
    }

    #[test]
    fn outlook_thread_index_root_is_the_first_22_bytes() {
        use base64::Engine;
        let mut bytes: Vec<u8> = (0u8..22).collect();
        let root = crate::digest::to_hex(&bytes);
        bytes.extend([9, 9, 9, 9, 9]);
        let index = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(thread_index_root(&index).as_deref(), Some(root.as_str()));
        assert_eq!(thread_index_root("AQ=="), None, "too short");
        assert_eq!(thread_index_root("not base64!"), None);
    }

    #[test]
    fn a_bounce_whose_attached_original_has_no_parts_is_still_read() {
        // Found by the fuzzer: mail-parser panics on message_id() of an empty nested message.
        let raw =
            include_bytes!("../../tests/fixtures/fuzz-regressions/nested-message-without-parts");
        let mail = parse_bytes(raw).expect("parses");
        assert_eq!(mail.class, MessageClass::Bounce);
    }

    #[test]
    fn mail_that_makes_the_parser_panic_is_quarantined_with_a_reason() {
        // Found by the fuzzer: mail-parser 0.11 panics ("Invalid part ID") on this input.
        let raw =
            include_bytes!("../../tests/fixtures/fuzz-regressions/mail-parser-invalid-part-id");
        let q = parse_bytes(raw).expect_err("quarantined, not parsed");
        assert_eq!(q.reason, Unreadable::ParserFailed);
    }

    #[test]
    fn the_first_usable_author_is_answered_and_the_others_are_recorded() {
        let two = COMPLAINT.replace(
            "\"Ann Customer\" <Ann@Example.TEST>",
            "<>, \"Ann Customer\" <Ann@Example.TEST>, Bob <bob@example.test>",
        );
        let mail = parse_str(&two).expect("parses, not quarantined");
        assert_eq!(mail.class, MessageClass::Human);
        assert_eq!(mail.from.address, "ann@example.test");
        assert_eq!(mail.other_from, vec!["bob@example.test"]);
    }

    #[test]
    fn a_trailing_dot_on_the_domain_is_dropped() {
        let dotted = COMPLAINT.replace("Ann@Example.TEST", "someone@yahoo.example.");
        let mail = parse_str(&dotted).expect("parses");
        assert_eq!(mail.from.address, "someone@yahoo.example");
        assert!(
            person(Some("a@."), None).is_none(),
            "nothing left of the domain"
        );
    }

    #[test]
    fn mailer_daemon_and_postmaster_without_a_domain_are_bounces_not_quarantined() {
        for from in [
            "MAILER-DAEMON (Mail Delivery System)",
            "MAILER-DAEMON",
            "postmaster",
            "<Postmaster>",
            "MAILER DAEMON <>",
        ] {
            let notice = COMPLAINT.replace("\"Ann Customer\" <Ann@Example.TEST>", from);
            let mail = parse_str(&notice).unwrap_or_else(|q| panic!("{from}: {}", q.reason));
            assert_eq!(mail.class, MessageClass::Bounce, "{from}");
        }
        // Any other bare word is still nobody we can answer.
        let nobody = COMPLAINT.replace("\"Ann Customer\" <Ann@Example.TEST>", "ann");
        assert!(parse_str(&nobody).is_err());
    }

    #[test]
    fn a_raw_gb2312_subject_and_name_are_read_as_chinese() {
        let mut raw = b"From: ".to_vec();
        raw.extend_from_slice(&encoding_rs::GBK.encode("王小明").0);
        raw.extend_from_slice(b" <wang@example.test>\r\nTo: support@example.test\r\nSubject: ");
        raw.extend_from_slice(
            &encoding_rs::GBK
                .encode("转发：耳机左耳没有声音，请尽快处理")
                .0,
        );
        raw.extend_from_slice(b"\r\n\r\nhello\r\n");
        let mail = parse_bytes(&raw).expect("parses");
        assert_eq!(mail.subject, "转发：耳机左耳没有声音，请尽快处理");
        assert_eq!(mail.from.name.as_deref(), Some("王小明"));
        assert_eq!(
            mail.charsets[0].to_string(),
            "headers: GBK (undeclared 8-bit, detected)"
        );
    }

    #[test]
    fn a_name_labelled_iso_2022_jp_that_is_shift_jis_is_read_as_shift_jis() {
        // `=?ISO-2022-JP?B?...?=` over the Shift_JIS bytes of ツール 田中.
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("ツール 田中");
        use base64::Engine;
        let word = base64::engine::general_purpose::STANDARD.encode(&sjis);
        let raw = COMPLAINT.replace(
            "\"Ann Customer\" <Ann@Example.TEST>",
            &format!("=?ISO-2022-JP?B?{word}?= <tool@example.test>"),
        );
        let mail = parse_str(&raw).expect("parses");
        assert_eq!(mail.from.name.as_deref(), Some("ツール 田中"));
        assert_eq!(mail.from.address, "tool@example.test");
        assert_eq!(
            mail.charsets[0].to_string(),
            "name: Shift_JIS (declared ISO-2022-JP, which did not decode cleanly)"
        );
        let subject = COMPLAINT.replace(
            "My order arrived broken",
            &format!("=?ISO-2022-JP?B?{word}?="),
        );
        assert_eq!(parse_str(&subject).expect("parses").subject, "ツール 田中");
    }

    #[test]
    fn header_injection_is_inert_text() {
        assert_eq!(
            header_safe("Refund\r\nBcc: victim@example.com", 200),
            "Refund Bcc: victim@example.com"
        );
        assert_eq!(header_safe("a\u{0}b\u{7}c\u{202e}d", 200), "a b cd");
        assert_eq!(header_safe("ééééé", 3), "ééé");
    }
}
