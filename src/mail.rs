//! Parse and classify: hostile bytes in, plain data out.
//!
//! Nothing here may panic on input or do I/O. A message we cannot use becomes a
//! [`Quarantine`] with a reason a human can act on; everything else becomes a [`ParsedMail`]
//! whose text fields are clean, single-line UTF-8.

use mail_parser::{HeaderValue, MessageParser};

use crate::config::SupportConfig;

/// The header we put on every mail we send, so that our own mail coming back (a customer's
/// auto-forward, a CC to the support address) is recognised and never answered.
pub const LOOP_HEADER: &str = "X-Followupd-Loop";

/// Longest subject / name we keep or put in a header, in characters.
pub const MAX_HEADER_TEXT: usize = 200;
/// Longest complaint summary handed to templates, in characters.
pub const SUMMARY_CHARS: usize = 300;
/// References beyond this many are ignored: a thread that long is not worth a slower lookup.
const MAX_REFERENCES: usize = 50;

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
pub fn parse(raw: &[u8], support: &SupportConfig) -> Result<ParsedMail, Quarantine> {
    match std::panic::catch_unwind(|| parse_inner(raw, support)) {
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

fn parse_inner(raw: &[u8], support: &SupportConfig) -> Result<ParsedMail, Quarantine> {
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
    let (class, class_reason) = classify(&message, &from, support);
    let summary = message
        .body_text(0)
        .map(|body| summarize(&body, SUMMARY_CHARS))
        .unwrap_or_default();
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
    })
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
fn classify(
    message: &mail_parser::Message<'_>,
    from: &Person,
    support: &SupportConfig,
) -> (MailClass, String) {
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
    if raw("Return-Path").is_some_and(|rp| rp == "<>" || rp.is_empty()) {
        return (MailClass::Bounce, "empty Return-Path (<>)".into());
    }
    if let Some(ct) = raw("Content-Type") {
        if ct.starts_with("multipart/report") && ct.contains("delivery-status") {
            return (MailClass::Bounce, "multipart/report delivery-status".into());
        }
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
    for header in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if message.header_raw(header).is_some() {
            return (MailClass::AutoReply, format!("{header} header"));
        }
    }
    if let Some(value) = raw("Precedence") {
        match value.as_str() {
            "auto_reply" => return (MailClass::AutoReply, "Precedence: auto_reply".into()),
            "bulk" | "junk" | "list" => {
                return (MailClass::Bulk, format!("Precedence: {value}"));
            }
            _ => {}
        }
    }
    if message.header_raw("List-Id").is_some() || message.header_raw("List-Unsubscribe").is_some() {
        return (
            MailClass::Bulk,
            "mailing list headers (List-Id / List-Unsubscribe)".into(),
        );
    }
    if local.starts_with("noreply")
        || local.starts_with("no-reply")
        || local.starts_with("donotreply")
        || local.starts_with("do-not-reply")
    {
        return (MailClass::Bulk, format!("no-reply sender {}", from.address));
    }
    (MailClass::Human, String::new())
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
        }
    }

    fn parse_str(text: &str) -> Result<ParsedMail, Quarantine> {
        parse(text.replace('\n', "\r\n").as_bytes(), &support())
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
            let _ = parse(raw, &support());
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
