//! Parse and classify: hostile bytes in, plain data out.
//!
//! Nothing here may panic on input or do I/O. A message we cannot use becomes a
//! [`Quarantine`] with a reason a human can act on; everything else becomes a [`ParsedMail`]
//! whose text fields are clean, single-line UTF-8.

use std::borrow::Cow;

use base64::Engine;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

use crate::config::{IntakeConfig, SupportConfig};

/// The header we put on every mail we send, so that our own mail coming back (a customer's
/// auto-forward, a CC to the support address) is recognised and never answered.
pub const LOOP_HEADER: &str = "X-Followupd-Loop";

/// Longest subject / name we keep or put in a header, in characters.
pub const MAX_HEADER_TEXT: usize = 200;
/// Longest complaint summary handed to templates, in characters.
pub const SUMMARY_CHARS: usize = 300;
/// References beyond this many are ignored: a thread that long is not worth a slower lookup.
const MAX_REFERENCES: usize = 50;
/// Attachments listed per message; the raw message keeps them all.
const MAX_ATTACHMENTS: usize = 100;
/// Message-IDs and recipients taken from one delivery report.
const MAX_REPORT_ITEMS: usize = 20;

/// What the screening rules need from the configuration.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    pub support: &'a SupportConfig,
    pub intake: &'a IntakeConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Lower-cased address, the form every comparison uses.
    pub address: String,
    pub name: Option<String>,
}

/// What kind of mail this is, which decides whether anything may ever be sent because of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailClass {
    /// Written by a person: may open an incident and be answered.
    Human,
    /// Out-of-office and other automatic replies (RFC 3834 and friends).
    AutoReply,
    /// Delivery status notifications and mail from MAILER-DAEMON.
    Bounce,
    /// Mailing lists, newsletters, bulk mail.
    Bulk,
    /// Our own mail, come back to us.
    Loop,
}

impl MailClass {
    pub fn as_str(self) -> &'static str {
        match self {
            MailClass::Human => "human",
            MailClass::AutoReply => "auto-reply",
            MailClass::Bounce => "bounce",
            MailClass::Bulk => "bulk",
            MailClass::Loop => "loop",
        }
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
    pub reply_to: Option<Person>,
    pub cc: Vec<String>,
    pub subject: String,
    pub date: Option<String>,
    pub summary: String,
    pub class: MailClass,
    /// Why it got its class ("Auto-Submitted: auto-replied"); empty for human mail.
    pub class_reason: String,
    /// Outlook's conversation id: the first 22 bytes of Thread-Index, hex.
    pub thread_index_root: Option<String>,
    pub attachments: Vec<Attachment>,
    /// For bounces: what the report says about which mail failed for whom.
    pub bounce: Option<BounceReport>,
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
    pub reason: String,
    /// Whatever could be salvaged, for the record.
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
}

/// Parses a raw message and decides its class. Never panics: mail-parser is run under
/// `catch_unwind` as a last line of defence, since one poisoned message must not stop intake.
pub fn parse(raw: &[u8], rules: &Rules<'_>) -> Result<ParsedMail, Quarantine> {
    match std::panic::catch_unwind(|| parse_inner(&decode_8bit_headers(raw), rules)) {
        Ok(result) => result,
        Err(_) => Err(Quarantine {
            reason: "parsing this message hit an internal error (caught; the message is kept)"
                .into(),
            message_id: None,
            from: None,
            subject: None,
        }),
    }
}

fn parse_inner(raw: &[u8], rules: &Rules<'_>) -> Result<ParsedMail, Quarantine> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Err(Quarantine {
            reason: "not an RFC 5322 message: no header section could be parsed".into(),
            message_id: None,
            from: None,
            subject: None,
        });
    };
    let message_id = message
        .message_id()
        .map(clean_id)
        .filter(|id| !id.is_empty());
    let subject = message
        .subject()
        .map(|s| header_safe(s, MAX_HEADER_TEXT))
        .unwrap_or_default();
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| person(a.address(), a.name()));
    let Some(from) = from else {
        return Err(Quarantine {
            reason: match message.header_raw("From") {
                Some(raw_from) => format!(
                    "the From header `{}` holds no usable address",
                    header_safe(raw_from, 80)
                ),
                None => "the message has no From header, so there is nobody to answer".into(),
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
    let cc = message
        .cc()
        .map(|list| {
            list.iter()
                .filter_map(|a| person(a.address(), None))
                .map(|p| p.address)
                .take(MAX_REFERENCES)
                .collect()
        })
        .unwrap_or_default();
    let in_reply_to = id_list(message.in_reply_to()).into_iter().next();
    let references = id_list(message.references());
    let referenced_ids = thread_order(in_reply_to.as_deref(), &references);
    let (class, class_reason) = classify(&message, &from, &subject, rules);
    let summary = undeclared_8bit_body(&message, raw)
        .or_else(|| message.body_text(0))
        .map(|body| summarize(&body, SUMMARY_CHARS))
        .unwrap_or_default();
    let bounce = (class == MailClass::Bounce).then(|| bounce_report(&message));
    Ok(ParsedMail {
        message_id,
        referenced_ids,
        in_reply_to,
        references,
        from,
        reply_to,
        cc,
        subject,
        date: message.date().map(|d| d.to_rfc3339()),
        summary,
        class,
        class_reason,
        thread_index_root: message
            .header_raw("Thread-Index")
            .and_then(thread_index_root),
        attachments: attachments(&message),
        bounce,
    })
}

/// Header lines that are not UTF-8 were written by a client that never declared a charset;
/// nearly always that is Latin-1 / windows-1252, so each such line is read as windows-1252
/// rather than rejected or turned into replacement characters. The body is left alone: MIME
/// declares its charsets.
fn decode_8bit_headers(raw: &[u8]) -> Cow<'_, [u8]> {
    let end = header_end(raw);
    let head = &raw[..end];
    if std::str::from_utf8(head).is_ok() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8);
    for line in head.split_inclusive(|b| *b == b'\n') {
        match std::str::from_utf8(line) {
            Ok(_) => out.extend_from_slice(line),
            Err(_) => {
                let (text, _, _) = encoding_rs::WINDOWS_1252.decode(line);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out.extend_from_slice(&raw[end..]);
    Cow::Owned(out)
}

/// A single-part text message with no declared charset and raw 8-bit bytes that are not UTF-8
/// (old mailers write Latin-1 like that): decoded as windows-1252 instead of as replacement
/// characters. Anything with a charset or a transfer encoding is left to mail-parser.
fn undeclared_8bit_body<'m>(
    message: &mail_parser::Message<'_>,
    raw: &'m [u8],
) -> Option<Cow<'m, str>> {
    let root = message.root_part();
    if !root.is_text() || root.is_text_html() {
        return None;
    }
    let declared = root
        .content_type()
        .is_some_and(|ct| ct.attribute("charset").is_some());
    let encoded = root.content_transfer_encoding().is_some_and(|cte| {
        !matches!(
            cte.to_ascii_lowercase().as_str(),
            "7bit" | "8bit" | "binary"
        )
    });
    let body = raw.get(header_end(raw)..)?;
    if declared || encoded || std::str::from_utf8(body).is_ok() {
        return None;
    }
    Some(encoding_rs::WINDOWS_1252.decode(body).0)
}

/// Offset just past the blank line that ends the header section (or the whole input).
fn header_end(raw: &[u8]) -> usize {
    let mut at_line_start = true;
    for (i, b) in raw.iter().enumerate() {
        match b {
            b'\n' if at_line_start => return i + 1,
            b'\n' => at_line_start = true,
            b'\r' => {}
            _ => at_line_start = false,
        }
    }
    raw.len()
}

/// Header fields each delivery adds or rewrites on its way in: they differ between two copies
/// of the same mail and say nothing about what the sender wrote.
const TRACE_HEADERS: &[&str] = &[
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "x-delivered-to",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "x-spam-status",
    "x-spam-score",
    "x-spam-level",
    "x-spam-flag",
    "x-virus-scanned",
    "x-rspamd-queue-id",
    "x-rspamd-server",
    "x-ms-exchange-organization-authas",
];

/// A hash of the message as its sender wrote it: every header field except the trace fields
/// above (unfolded, in order), then the body. Two deliveries of one mail share it.
pub fn content_digest(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let end = header_end(raw);
    let mut hasher = Sha256::new();
    let mut skipping = false;
    for line in raw[..end].split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line
                .split(|b| *b == b':')
                .next()
                .map(|n| String::from_utf8_lossy(n).trim().to_ascii_lowercase())
                .unwrap_or_default();
            skipping = TRACE_HEADERS.contains(&name.as_str());
        }
        if !skipping {
            hasher.update(line);
        }
    }
    hasher.update(&raw[end..]);
    crate::secret::to_hex(&hasher.finalize())
}

/// Outlook's Thread-Index is base64 of a 22-byte conversation header (time + GUID) followed by
/// one 5-byte block per reply, so every message of a conversation starts with the same 22 bytes.
pub fn thread_index_root(value: &str) -> Option<String> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    bytes.get(..THREAD_INDEX_ROOT).map(crate::secret::to_hex)
}

/// Length of the conversation header at the start of a Thread-Index.
pub const THREAD_INDEX_ROOT: usize = 22;

fn attachments(message: &mail_parser::Message<'_>) -> Vec<Attachment> {
    message
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| Attachment {
            name: part
                .attachment_name()
                .map(|n| header_safe(n, MAX_HEADER_TEXT))
                .filter(|n| !n.is_empty()),
            content_type: part
                .content_type()
                .map(|ct| {
                    let t = match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_string(),
                    };
                    header_safe(&t.to_ascii_lowercase(), 100)
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: part_len(part),
        })
        .collect()
}

/// `MessagePart::len`, except that a nested message with no parts (a truncated attachment)
/// counts as empty instead of panicking inside mail-parser (found by fuzzing).
fn part_len(part: &mail_parser::MessagePart<'_>) -> usize {
    match part.message() {
        Some(nested) if nested.parts.is_empty() => 0,
        _ => part.len(),
    }
}

/// Reads a bounce: the machine-readable report (RFC 3464) when there is one, and the Message-ID
/// of the bounced mail from the attached original or its headers. An old-style bounce without
/// a report only yields the Message-IDs quoted in its text.
fn bounce_report(message: &mail_parser::Message<'_>) -> BounceReport {
    let mut report = BounceReport::default();
    for part in &message.parts {
        let (ctype, subtype) = match part.content_type() {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype()
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_default(),
            ),
            None => continue,
        };
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                report.is_dsn = true;
                read_delivery_status(&String::from_utf8_lossy(part.contents()), &mut report);
            }
            ("message", "rfc822" | "global") => {
                // mail-parser's accessors index `parts[0]`, and a truncated attachment can
                // leave a nested message with no parts at all (found by fuzzing).
                let nested = part.message().filter(|m| !m.parts.is_empty());
                if let Some(id) = nested.and_then(|m| m.message_id()) {
                    push_unique(&mut report.original_ids, clean_id(id));
                }
            }
            ("text", "rfc822-headers" | "global-headers") => {
                quoted_message_ids(&String::from_utf8_lossy(part.contents()), &mut report);
            }
            _ => {}
        }
    }
    if report.original_ids.is_empty() {
        // Old-style bounces quote the original in their text.
        for i in 0..message.text_body_count().min(3) {
            if let Some(text) = message.body_text(i) {
                quoted_message_ids(&text, &mut report);
            }
        }
    }
    report.original_ids.retain(|id| !id.is_empty());
    report
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if list.len() < MAX_REPORT_ITEMS && !item.is_empty() && !list.contains(&item) {
        list.push(item);
    }
}

/// `Message-ID: <…>` lines in quoted headers.
fn quoted_message_ids(text: &str, report: &mut BounceReport) {
    for line in text.lines() {
        let line = line.trim_start_matches(['>', ' ', '\t']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("message-id") {
            push_unique(&mut report.original_ids, clean_id(value));
        }
    }
}

/// The per-recipient blocks of a message/delivery-status body: `Final-Recipient` (or
/// `Original-Recipient`) with its `Action`.
fn read_delivery_status(text: &str, report: &mut BounceReport) {
    let mut recipient: Option<String> = None;
    let mut action: Option<String> = None;
    let mut finish = |recipient: &mut Option<String>, action: &mut Option<String>| {
        if let (Some(r), Some(a)) = (recipient.take(), action.take()) {
            match a.as_str() {
                "failed" => push_unique(&mut report.failed, r),
                "delayed" => push_unique(&mut report.delayed, r),
                _ => {} // delivered, relayed, expanded: nothing went wrong
            }
        }
    };
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            finish(&mut recipient, &mut action);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "final-recipient" | "original-recipient" => {
                // `rfc822; ann@example.com`: the address type comes first.
                let address = value.rsplit(';').next().unwrap_or(value);
                if let Some(p) = person(Some(address.trim_matches(['<', '>', ' '])), None) {
                    if name == "final-recipient" || recipient.is_none() {
                        recipient = Some(p.address);
                    }
                }
            }
            "action" => action = Some(value.to_ascii_lowercase()),
            _ => {}
        }
    }
}

fn person(address: Option<&str>, name: Option<&str>) -> Option<Person> {
    let address = address?.trim().to_lowercase();
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

fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(250)
        .collect()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().filter(|id| !id.is_empty()).collect()
}

/// In-Reply-To names the message being answered, and References lists the thread oldest first,
/// so the most specific evidence comes first in this order.
fn thread_order(in_reply_to: Option<&str>, references: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = in_reply_to.map(str::to_string).into_iter().collect();
    for id in references.iter().rev() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids.truncate(MAX_REFERENCES);
    ids
}

/// Decides whether a message is from a person. Loops are checked first (our own mail must never
/// be answered, whatever else it says), then bounces, then automatic replies, then bulk.
/// Precedence, lists and the null sender come after the auto-reply markers: a vacation reply
/// sent from `<>` with `Precedence: bulk` is still an auto-reply.
fn classify(
    message: &mail_parser::Message<'_>,
    from: &Person,
    subject: &str,
    rules: &Rules<'_>,
) -> (MailClass, String) {
    let support = rules.support;
    let raw = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };

    if message.header_raw(LOOP_HEADER).is_some() {
        return (MailClass::Loop, format!("carries our {LOOP_HEADER} header"));
    }
    if support.is_own_address(&from.address) {
        return (
            MailClass::Loop,
            format!("sent from our own address {}", from.address),
        );
    }

    let local = from.address.split('@').next().unwrap_or_default();
    if local == "mailer-daemon" || local == "postmaster" {
        return (MailClass::Bounce, format!("sent by {}", from.address));
    }
    let content_type = raw("Content-Type").unwrap_or_default();
    if content_type.starts_with("multipart/report") && content_type.contains("delivery-status") {
        return (MailClass::Bounce, "multipart/report delivery-status".into());
    }
    if content_type.starts_with("multipart/report")
        && content_type.contains("disposition-notification")
    {
        return (
            MailClass::AutoReply,
            "read receipt (disposition-notification)".into(),
        );
    }

    // RFC 3834 section 5: any value other than "no" marks automatic mail.
    if let Some(value) = raw("Auto-Submitted") {
        let keyword = value.split(';').next().unwrap_or_default().trim();
        if keyword != "no" {
            return (MailClass::AutoReply, format!("Auto-Submitted: {keyword}"));
        }
    }
    if let Some(value) = raw("X-Auto-Response-Suppress") {
        if value
            .split([',', ' '])
            .any(|v| matches!(v.trim(), "all" | "autoreply" | "oof"))
        {
            return (
                MailClass::AutoReply,
                format!("X-Auto-Response-Suppress: {value}"),
            );
        }
    }
    for header in AUTO_REPLY_HEADERS {
        if message.header_raw(*header).is_some() {
            return (MailClass::AutoReply, format!("{header} header"));
        }
    }
    let lowered = subject.to_lowercase();
    if let Some(prefix) = AUTO_REPLY_SUBJECTS
        .iter()
        .find(|p| lowered.starts_with(**p))
    {
        return (
            MailClass::AutoReply,
            format!("out-of-office subject `{}`", prefix.trim_end()),
        );
    }
    for header in ["Precedence", "X-Precedence"] {
        if let Some(value) = raw(header) {
            match value.as_str() {
                // vacation(1) and its descendants mark their replies `junk`.
                "auto_reply" | "junk" => {
                    return (MailClass::AutoReply, format!("{header}: {value}"));
                }
                "bulk" | "list" => {
                    return (MailClass::Bulk, format!("{header}: {value}"));
                }
                _ => {}
            }
        }
    }
    if message.header_raw("List-Id").is_some() || message.header_raw("List-Unsubscribe").is_some() {
        return (
            MailClass::Bulk,
            "mailing list headers (List-Id / List-Unsubscribe)".into(),
        );
    }
    // RFC 3834 asks auto-responders to use the null sender too, so an empty Return-Path only
    // means a bounce once no auto-reply marker matched above.
    if raw("Return-Path").is_some_and(|rp| rp == "<>" || rp.is_empty()) {
        return (MailClass::Bounce, "empty Return-Path (<>)".into());
    }
    if let Some(pattern) = rules
        .intake
        .noreply_patterns
        .iter()
        .find(|p| p.matches(&from.address))
    {
        return (
            MailClass::Bulk,
            format!(
                "no-reply sender {} (pattern {})",
                from.address,
                pattern.as_str()
            ),
        );
    }
    (MailClass::Human, String::new())
}

/// Headers only automatic responders set. (Exchange marks rule-generated mail, out-of-office
/// replies included, with X-MS-Exchange-Inbox-Rules-Loop even when it sets no Auto-Submitted.)
const AUTO_REPLY_HEADERS: &[&str] = &[
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Autogenerated",
    "X-AutoReply-From",
    "X-Mail-Autoreply",
    "X-MS-Exchange-Inbox-Rules-Loop",
];

/// Subject prefixes of out-of-office replies from Outlook/Exchange (in the languages its
/// installations most often use), Lotus Notes and Sieve vacation, lower-cased. Only whole
/// prefixes ending in a colon count, so "Automatic replies are broken" stays human.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "auto-reply:",
    "auto:",
    "out of office:",
    "out of office autoreply:",
    "out of office reply:",
    "automatische antwort:",
    "abwesenheitsnotiz:",
    "réponse automatique :",
    "réponse automatique:",
    "risposta automatica:",
    "respuesta automática:",
    "resposta automática:",
    "automatisch antwoord:",
    "autosvar:",
    "automaattinen vastaus:",
    "automatyczna odpowiedź:",
];

/// Reply and forward prefixes as mail clients write them (English, German, Nordic, French,
/// Dutch, Spanish/Portuguese, Polish, Turkish), with optional counters like `Re[2]:`.
const SUBJECT_PREFIXES: &[&str] = &[
    "re", "aw", "sv", "vs", "fw", "fwd", "wg", "tr", "antw", "rv", "enc", "res", "odp", "ynt",
];

/// The subject with every reply/forward prefix and every incident token removed: what the
/// conversation is about. Used for new incidents and for matching a thread by topic.
pub fn base_subject(subject: &str) -> String {
    let mut rest = strip_tokens(subject);
    loop {
        let trimmed = rest.trim_start();
        match strip_one_prefix(trimmed) {
            Some(after) => rest = after.to_string(),
            None => {
                rest = trimmed.to_string();
                break;
            }
        }
    }
    header_safe(&rest, MAX_HEADER_TEXT)
}

fn strip_one_prefix(text: &str) -> Option<&str> {
    let word_end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (word, after) = text.split_at(word_end);
    if !SUBJECT_PREFIXES.contains(&word.to_ascii_lowercase().as_str()) {
        return None;
    }
    // An optional counter: `Re[2]:`, `Re(2):`, `Re^2:`.
    let after = match after.chars().next() {
        Some('[') => after.split_once(']').map(|(_, a)| a)?,
        Some('(') => after.split_once(')').map(|(_, a)| a)?,
        Some('^') => after[1..].trim_start_matches(|c: char| c.is_ascii_digit()),
        _ => after,
    };
    let after = after.trim_start_matches(' ');
    after.strip_prefix(':').or_else(|| after.strip_prefix('：'))
}

/// Removes `[FU-<n>-<hex>]` tokens, ours or copied from someone else's incident.
fn strip_tokens(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut rest = subject;
    while let Some(start) = rest.find("[FU-") {
        let candidate = &rest[start..];
        let end = candidate.find(']');
        let is_token = end.is_some_and(|e| {
            let inner = &candidate[4..e];
            inner.split_once('-').is_some_and(|(n, mac)| {
                !n.is_empty()
                    && n.chars().all(|c| c.is_ascii_digit())
                    && !mac.is_empty()
                    && mac.chars().all(|c| c.is_ascii_hexdigit())
            })
        });
        match (is_token, end) {
            (true, Some(e)) => {
                out.push_str(&rest[..start]);
                rest = &candidate[e + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 4]);
                rest = &rest[start + 4..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Makes untrusted text safe for one header line: CR, LF, tabs and other control characters
/// become spaces, runs of whitespace collapse, and the result is cut to `max` characters.
/// (Encoding non-ASCII per RFC 2047 is left to the message builder.)
pub fn header_safe(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)));
    let mut pending_space = false;
    let mut count: usize = 0;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        // Bidi overrides can make a subject read differently from what it says.
        if matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        if count.saturating_add(usize::from(pending_space) + 1) > max {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// A short, readable summary of what the customer wrote: quoted text and signatures dropped,
/// whitespace collapsed, cut at a word boundary.
pub fn summarize(body: &str, max: usize) -> String {
    let mut kept = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed == "--" || line == "-- " {
            break; // RFC 3676 signature separator
        }
        if trimmed.starts_with('>') || (trimmed.starts_with("On ") && trimmed.ends_with("wrote:")) {
            continue;
        }
        kept.push(trimmed);
    }
    let flat = header_safe(&kept.join(" "), usize::MAX);
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    let at_word = cut
        .rfind(' ')
        .filter(|i| *i > max / 2)
        .map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end_matches([',', '.', ';', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support() -> SupportConfig {
        SupportConfig {
            address: "support@example.test".into(),
            name: "Example Support".into(),
            own_addresses: vec!["help@example.test".into()],
            staff: vec![],
        }
    }

    fn parse_bytes(raw: &[u8]) -> Result<ParsedMail, Quarantine> {
        let support = support();
        let intake = IntakeConfig::default();
        parse(
            raw,
            &Rules {
                support: &support,
                intake: &intake,
            },
        )
    }

    fn parse_str(text: &str) -> Result<ParsedMail, Quarantine> {
        parse_bytes(text.replace('\n', "\r\n").as_bytes())
    }

    const COMPLAINT: &str = "From: \"Ann Customer\" <Ann@Example.TEST>\nTo: support@example.test\nSubject: My order arrived broken\nMessage-ID: <c1@mail.example.test>\nDate: Mon, 23 Nov 2026 09:00:00 +0000\n\nHello,\n\nthe vase I ordered arrived in pieces.\n\n> quoted old text\n-- \nAnn\n";

    #[test]
    fn a_plain_complaint_is_human_mail_with_a_summary() {
        let mail = parse_str(COMPLAINT).expect("parses");
        assert_eq!(mail.class, MailClass::Human);
        assert_eq!(mail.from.address, "ann@example.test");
        assert_eq!(mail.from.name.as_deref(), Some("Ann Customer"));
        assert_eq!(mail.message_id.as_deref(), Some("c1@mail.example.test"));
        assert_eq!(mail.summary, "Hello, the vase I ordered arrived in pieces.");
    }

    #[test]
    fn auto_submitted_no_is_human_any_other_value_is_not() {
        let no = COMPLAINT.replace("Subject:", "Auto-Submitted: no\nSubject:");
        assert_eq!(parse_str(&no).expect("parses").class, MailClass::Human);
        let replied = COMPLAINT.replace("Subject:", "Auto-Submitted: auto-replied\nSubject:");
        assert_eq!(
            parse_str(&replied).expect("parses").class,
            MailClass::AutoReply
        );
        let generated = COMPLAINT.replace("Subject:", "Auto-Submitted: Auto-Generated\nSubject:");
        assert_eq!(
            parse_str(&generated).expect("parses").class,
            MailClass::AutoReply
        );
    }

    #[test]
    fn our_own_mail_is_a_loop() {
        let looped = COMPLAINT.replace(
            "Subject:",
            "X-Followupd-Loop: support@example.test\nSubject:",
        );
        assert_eq!(parse_str(&looped).expect("parses").class, MailClass::Loop);
        let from_us = COMPLAINT.replace("\"Ann Customer\" <Ann@Example.TEST>", "help@example.test");
        assert_eq!(parse_str(&from_us).expect("parses").class, MailClass::Loop);
    }

    #[test]
    fn bounces_lists_and_noreply_are_not_human() {
        let daemon = COMPLAINT.replace(
            "\"Ann Customer\" <Ann@Example.TEST>",
            "MAILER-DAEMON@mx.example.test",
        );
        assert_eq!(parse_str(&daemon).expect("parses").class, MailClass::Bounce);
        let list = COMPLAINT.replace("Subject:", "List-Id: <news.example.test>\nSubject:");
        assert_eq!(parse_str(&list).expect("parses").class, MailClass::Bulk);
        let bulk = COMPLAINT.replace("Subject:", "Precedence: bulk\nSubject:");
        assert_eq!(parse_str(&bulk).expect("parses").class, MailClass::Bulk);
        let first_class = COMPLAINT.replace("Subject:", "Precedence: first-class\nSubject:");
        assert_eq!(
            parse_str(&first_class).expect("parses").class,
            MailClass::Human
        );
        let noreply = COMPLAINT.replace("Ann@Example.TEST", "no-reply@shop.example");
        assert_eq!(parse_str(&noreply).expect("parses").class, MailClass::Bulk);
    }

    #[test]
    fn mail_without_a_sender_is_quarantined_with_a_reason() {
        let q = parse_str("Subject: hi\nMessage-ID: <x@y>\n\nbody\n").unwrap_err();
        assert!(q.reason.contains("no From header"), "{}", q.reason);
        assert_eq!(q.message_id.as_deref(), Some("x@y"));
        let q = parse_str("From: nobody\nSubject: hi\n\nbody\n").unwrap_err();
        assert!(q.reason.contains("no usable address"), "{}", q.reason);
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
            let _ = parse_bytes(raw);
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
        let root = crate::secret::to_hex(&bytes);
        bytes.extend([9, 9, 9, 9, 9]);
        let index = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(thread_index_root(&index).as_deref(), Some(root.as_str()));
        assert_eq!(thread_index_root("AQ=="), None, "too short");
        assert_eq!(thread_index_root("not base64!"), None);
    }

    #[test]
    fn a_bounce_whose_attached_original_has_no_parts_is_still_read() {
        // Found by the fuzzer: mail-parser panics on message_id() of an empty nested message.
        let raw = include_bytes!("../tests/fixtures/fuzz-regressions/nested-message-without-parts");
        let mail = parse_bytes(raw).expect("parses");
        assert_eq!(mail.class, MailClass::Bounce);
    }

    #[test]
    fn mail_that_makes_the_parser_panic_is_quarantined_with_a_reason() {
        // Found by the fuzzer: mail-parser 0.11 panics ("Invalid part ID") on this input.
        let raw = include_bytes!("../tests/fixtures/fuzz-regressions/mail-parser-invalid-part-id");
        let q = parse_bytes(raw).expect_err("quarantined, not parsed");
        assert!(q.reason.contains("internal error"), "{}", q.reason);
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

    #[test]
    fn long_summaries_are_cut_at_a_word() {
        let body = "word ".repeat(200);
        let s = summarize(&body, 50);
        assert!(s.ends_with('…'));
        assert!(s.chars().count() <= 51);
        assert!(!s.contains("wor…"));
    }
}
