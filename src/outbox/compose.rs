//! Compose: template data in, the complete RFC 5322 message out.

use std::time::SystemTime;

use base64::Engine;
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::Value;

use crate::config::SupportConfig;
use crate::digest::{from_hex, sha256_hex};
use crate::incident::MailKind;
use crate::mail::{header_safe, AttachmentPart, LOOP_HEADER, MAX_HEADER_TEXT};
use crate::secret::THREAD_INDEX_ROOT;
use crate::templates::{Render, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot render the templates")]
    Template(#[from] TemplateError),
    #[error("the stored template data is not valid JSON")]
    Data(#[from] serde_json::Error),
    #[error("address `{address}` cannot be used in a header: {reason}")]
    Address { address: String, reason: String },
    #[error("the message could not be built: {0}")]
    Build(String),
    /// A panic in our own code while composing, caught: a fixed template may not meet it again.
    #[error("rendering failed on a bug (please report it): {0}")]
    Panic(String),
}

impl ComposeError {
    /// Whether trying again can help: a template can be fixed (and reloaded), bad data or an
    /// impossible address cannot.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ComposeError::Template(_) | ComposeError::Panic(_))
    }
}

/// Whether mail can ever be written to `address`: what lettre refuses (`ann..smith@x.test`,
/// `ann@-shop-.test`), no retry will accept.
pub fn check_recipient(address: &str) -> Result<(), ComposeError> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| ComposeError::Address {
            address: address.to_string(),
            reason: e.to_string(),
        })
}

/// What a queued mail says about itself, enough to compose it.
pub struct Letter<'a> {
    pub kind: MailKind,
    pub message_id: &'a str,
    pub recipient: &'a str,
    pub recipient_name: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    /// Space-separated Message-IDs without angle brackets, oldest first.
    pub references: &'a str,
    /// Outlook Thread-Index (base64), so Outlook files the mail in the customer's conversation.
    pub thread_index: Option<&'a str>,
}

/// A composed mail: its bytes, the subject they carry (for the record), and its words as the
/// reader sees them (the text part, then the HTML part as text), for the last guard.
#[derive(Debug, Clone)]
pub struct Composed {
    pub raw: Vec<u8>,
    pub subject: String,
    pub words: String,
}

/// A staff subject without its leading "[What happened]" label; None when it has none.
fn stable_topic(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix('[')?;
    let (_, after) = rest.split_once(']')?;
    let topic = after.trim_start();
    (!topic.is_empty()).then_some(topic)
}

/// Renders the templates and builds the complete message, with `attachments` after the text.
pub fn compose(
    letter: &Letter<'_>,
    data: &Value,
    templates: &impl Render,
    support: &SupportConfig,
    attachments: &[AttachmentPart],
    now: DateTime<Utc>,
) -> Result<Composed, ComposeError> {
    let rendered = templates.render(letter.kind.as_str(), data)?;
    let words = match &rendered.html {
        Some(html) => format!(
            "{}\n{}",
            rendered.text,
            crate::mail::body::html_to_marked_text(html)
        ),
        None => rendered.text.clone(),
    };
    let from = mailbox(Some(&support.name), &support.address)?;
    let to = mailbox(letter.recipient_name, letter.recipient)?;
    // Subjects and names are customer text: one line, bounded; lettre encodes non-ASCII.
    let subject = header_safe(&rendered.subject, 2 * MAX_HEADER_TEXT);
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject.clone())
        .date(SystemTime::from(now))
        .message_id(Some(format!("<{}>", letter.message_id)));
    if let Some(parent) = letter.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let references: Vec<String> = letter
        .references
        .split_whitespace()
        .map(|id| format!("<{id}>"))
        .collect();
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    // RFC 3834: mark our mail automatic so other robots do not answer it, and tell Exchange
    // not to send out-of-office replies back; the loop header lets us spot our own mail.
    let mut extra = vec![
        ("Auto-Submitted", "auto-replied".to_string()),
        ("X-Auto-Response-Suppress", "All".to_string()),
        (LOOP_HEADER, support.address.clone()),
    ];
    if let Some(index) = letter.thread_index {
        extra.push(("Thread-Index", index.to_string()));
    }
    // Staff subjects open with what happened ("[Reply] Incident 4: …"); Outlook and Exchange
    // group a conversation by Thread-Topic when it is given, so the stable part after the
    // label keeps every staff mail about one incident in one conversation.
    if letter.kind.audience() == crate::incident::Audience::Staff {
        if let Some(topic) = stable_topic(&subject) {
            extra.push(("Thread-Topic", topic.to_string()));
        }
    }
    // RFC 3282: the language of a mail from a language set of its own.
    if let Some(lang) = &rendered.lang {
        extra.push(("Content-Language", lang.clone()));
    }
    for (name, value) in extra {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ));
    }
    let message = if attachments.is_empty() {
        match rendered.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(rendered.text, html)),
            None => builder.singlepart(SinglePart::plain(rendered.text)),
        }
    } else {
        let mut mixed = match rendered.html {
            Some(html) => {
                MultiPart::mixed().multipart(MultiPart::alternative_plain_html(rendered.text, html))
            }
            None => MultiPart::mixed().singlepart(SinglePart::plain(rendered.text)),
        };
        for a in attachments {
            // A type the sender wrote that lettre cannot take is sent as plain bytes.
            let content_type = ContentType::parse(&a.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .map_err(|e| ComposeError::Build(e.to_string()))?;
            mixed = mixed.singlepart(
                Attachment::new(header_safe(&a.name, MAX_HEADER_TEXT))
                    .body(a.bytes.clone(), content_type),
            );
        }
        builder.multipart(mixed)
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(Composed {
        raw: message.formatted(),
        subject,
        words,
    })
}

fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, ComposeError> {
    let parsed = address
        .parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Address {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    let name = name
        .map(|n| header_safe(n, MAX_HEADER_TEXT))
        .filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, parsed))
}

/// A Thread-Index continuing the conversation `root` (hex): the root bytes plus one 5-byte
/// child block. Outlook only compares the root; the block is derived from the Message-ID so a
/// resend carries the same value.
pub fn thread_index(root: &str, message_id: &str) -> Option<String> {
    let mut bytes = from_hex(root)?;
    if bytes.len() != THREAD_INDEX_ROOT {
        return None;
    }
    let digest = sha256_hex(message_id.as_bytes());
    bytes.extend(from_hex(digest.get(..10)?)?);
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_composed_acknowledgement_threads_and_cannot_be_injected() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = crate::templates::Templates::load(&dir, &MailKind::template_names())
            .expect("templates");
        let data = serde_json::json!({
            "incident": {"number": 7, "token": "FU-7-0123456789",
                "subject": "Broken\r\nBcc: victim@example.com", "summary": "{{support.address}}",
                "opened": "x", "opened_iso": "x"},
            "customer": {"name": "Eve\r\nBcc: victim@example.com", "address": "eve@example.test"},
            "support": {"name": "Example Support", "address": "support@example.test"},
            "next_update": "soon", "next_update_iso": "x", "cadence": "4 hours",
        });
        let index = thread_index(&"ab".repeat(22), "fu.7.abc.def@example.test");
        let letter = Letter {
            kind: MailKind::Acknowledgement,
            message_id: "fu.7.abc.def@example.test",
            recipient: "eve@example.test",
            recipient_name: Some("Eve\r\nBcc: victim@example.com"),
            in_reply_to: Some("c1@mail.example.test"),
            references: "c0@mail.example.test c1@mail.example.test",
            thread_index: index.as_deref(),
        };
        let config = Config::example().expect("example config");
        let composed = compose(&letter, &data, &templates, &config.support, &[], Utc::now())
            .expect("composes");
        let parsed = mail_parser::MessageParser::default()
            .parse(&composed.raw)
            .expect("parses");
        assert!(
            parsed.header_raw("Bcc").is_none(),
            "no Bcc header may appear"
        );
        assert_eq!(parsed.message_id(), Some("fu.7.abc.def@example.test"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("c1@mail.example.test"));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert!(parsed.header_raw(LOOP_HEADER).is_some());
        let subject = parsed.subject().expect("subject");
        assert_eq!(subject, composed.subject);
        assert!(
            subject.contains("Broken Bcc: victim@example.com"),
            "{subject}"
        );
        assert!(subject.contains("[FU-7-0123456789]"), "{subject}");
        let text = parsed.body_text(0).expect("text");
        assert!(
            text.contains("{{support.address}}"),
            "customer text stays literal: {text}"
        );
        assert!(parsed.body_html(0).is_some(), "html alternative present");
        let index = parsed
            .header_raw("Thread-Index")
            .expect("Thread-Index")
            .trim();
        assert_eq!(
            crate::mail::thread_index_root(index).as_deref(),
            Some("ab".repeat(22).as_str()),
            "Outlook sees the conversation it started"
        );
    }
}
