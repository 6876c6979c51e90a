//! The outbox: mail decided inside a transaction, sent after it.
//!
//! A queued mail has its Message-ID and template data fixed at queue time, and its rendered
//! bytes fixed at first render, so every retry sends the very same message and a customer's
//! client can recognise a repeat. The sender drains due rows over pooled SMTP connections,
//! records every attempt, and backs off exponentially while the relay is down.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use rusqlite::Connection;
use serde_json::Value;

use crate::config::{OutboxConfig, SupportConfig};
use crate::mail::{header_safe, LOOP_HEADER, MAX_HEADER_TEXT};
use crate::secret::Secret;
use crate::smtp::{SendError, Smtp};
use crate::store::{self, Outgoing, StoreError};
use crate::templates::{MailData, TemplateError, Templates};

/// Rows taken from the outbox per round.
const ROUND: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("template: {0}")]
    Template(#[from] TemplateError),
    #[error("stored template data is not valid JSON: {0}")]
    Data(#[from] serde_json::Error),
    #[error("address `{address}` cannot be used in a header: {reason}")]
    Address { address: String, reason: String },
    #[error("the message could not be built: {0}")]
    Build(String),
}

/// What a queued mail says about itself, enough to compose it.
pub struct Letter<'a> {
    pub kind: &'a str,
    pub message_id: &'a str,
    pub recipient: &'a str,
    pub recipient_name: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    /// Space-separated Message-IDs without angle brackets, oldest first.
    pub references: &'a str,
}

impl<'a> From<&'a Outgoing> for Letter<'a> {
    fn from(o: &'a Outgoing) -> Self {
        Letter {
            kind: &o.kind,
            message_id: &o.message_id,
            recipient: &o.recipient,
            recipient_name: o.recipient_name.as_deref(),
            in_reply_to: o.in_reply_to.as_deref(),
            references: &o.references,
        }
    }
}

/// Renders the templates and builds the complete RFC 5322 message.
pub fn compose(
    letter: &Letter<'_>,
    data: &Value,
    templates: &Templates,
    support: &SupportConfig,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ComposeError> {
    let rendered = templates.render(letter.kind, data)?;
    let from = mailbox(Some(&support.name), &support.address)?;
    let to = mailbox(letter.recipient_name, letter.recipient)?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        // Subjects and names are customer text: one line, bounded; lettre encodes non-ASCII.
        .subject(header_safe(&rendered.subject, 2 * MAX_HEADER_TEXT))
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
    for (name, value) in [
        ("Auto-Submitted", "auto-replied".to_string()),
        ("X-Auto-Response-Suppress", "All".to_string()),
        (LOOP_HEADER, support.address.clone()),
    ] {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ));
    }
    let message = match rendered.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(rendered.text, html)),
        None => builder.singlepart(SinglePart::plain(rendered.text)),
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(message.formatted())
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

/// A mail to queue, decided by policy.
pub struct Draft<'a> {
    pub incident: i64,
    pub kind: &'a str,
    pub caused_by: Option<i64>,
    pub recipient: &'a str,
    pub recipient_name: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: Vec<String>,
    pub data: MailData,
}

/// Queues a mail inside the caller's transaction: fixes its Message-ID, indexes that ID for
/// threading, and renders it now so a template problem shows up at once (a render failure is
/// kept on the row and retried by the sender; it never loses the mail).
pub fn enqueue(
    conn: &Connection,
    draft: &Draft<'_>,
    templates: &Templates,
    support: &SupportConfig,
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let message_id = secret
        .message_id(draft.incident, support.domain())
        .map_err(|e| StoreError::Corrupt {
            what: "random Message-ID",
            value: e.to_string(),
        })?;
    let data = serde_json::to_value(&draft.data).map_err(|e| StoreError::Corrupt {
        what: "template data",
        value: e.to_string(),
    })?;
    let references = draft.references.join(" ");
    let letter = Letter {
        kind: draft.kind,
        message_id: &message_id,
        recipient: draft.recipient,
        recipient_name: draft.recipient_name,
        in_reply_to: draft.in_reply_to,
        references: &references,
    };
    let composed = compose(&letter, &data, templates, support, now);
    let render_error = composed.as_ref().err().map(ToString::to_string);
    let id = store::enqueue(
        conn,
        &store::NewOutgoing {
            incident: draft.incident,
            kind: draft.kind,
            caused_by: draft.caused_by,
            message_id: &message_id,
            recipient: draft.recipient,
            recipient_name: draft.recipient_name,
            in_reply_to: draft.in_reply_to,
            references: &references,
            context: &data.to_string(),
            raw: composed.as_deref().ok(),
            render_error: render_error.as_deref(),
        },
        now,
    )?;
    store::index_message_id(conn, &message_id, draft.incident)?;
    let detail = match &render_error {
        None => format!(
            "{} to {} queued as <{message_id}>",
            draft.kind, draft.recipient
        ),
        Some(e) => format!(
            "{} to {} queued as <{message_id}> but not yet renderable: {e}",
            draft.kind, draft.recipient
        ),
    };
    store::log_event(
        conn,
        now,
        Some(draft.incident),
        draft.caused_by,
        "mail_queued",
        &detail,
    )?;
    if let Some(e) = render_error {
        tracing::error!(incident = draft.incident, kind = draft.kind, error = %e, "mail queued but cannot be rendered yet");
    }
    Ok(id)
}

/// Exponential backoff: initial, 2×, 4×, … capped at max.
pub fn retry_delay(attempts_so_far: i64, cfg: &OutboxConfig) -> Duration {
    let exponent = u32::try_from(attempts_so_far.clamp(0, 30)).unwrap_or(30);
    cfg.retry_initial
        .checked_mul(2u32.saturating_pow(exponent))
        .unwrap_or(cfg.retry_max)
        .min(cfg.retry_max)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

pub struct Sender<'a> {
    pub smtp: &'a Smtp,
    pub templates: &'a Templates,
    pub support: &'a SupportConfig,
    pub retry: &'a OutboxConfig,
    pub concurrency: usize,
    pub now: &'a (dyn Fn() -> DateTime<Utc> + Sync),
}

impl Sender<'_> {
    /// Sends everything due now. Mails are marked 'sending' before the hand-off and each result
    /// is committed as soon as the server has answered, so a crash leaves only the mails in
    /// flight in doubt, and knows which they are (see [`store::hold_in_doubt`]).
    pub async fn drain(
        &self,
        conn: &mut Connection,
        stop: &dyn Fn() -> bool,
    ) -> Result<DrainReport, StoreError> {
        let mut report = DrainReport::default();
        loop {
            if stop() {
                break;
            }
            let due = store::due_outgoing(conn, (self.now)(), ROUND)?;
            if due.is_empty() {
                break;
            }
            let mut ready = Vec::with_capacity(due.len());
            for out in due {
                match self.rendered(conn, &out)? {
                    Some(raw) => ready.push((out, raw)),
                    None => report.retrying += 1,
                }
            }
            // Keep `concurrency` mails in flight, each marked 'sending' just before its hand-off,
            // so a crash leaves at most that many in doubt.
            let mut waiting = ready.into_iter();
            let mut in_flight = FuturesUnordered::new();
            loop {
                while in_flight.len() < self.concurrency.max(1) {
                    let Some((out, raw)) = waiting.next() else {
                        break;
                    };
                    store::mark_sending(conn, &[out.id])?;
                    in_flight.push(self.send_one(out, raw));
                }
                let Some((out, raw, result)) = in_flight.next().await else {
                    break;
                };
                self.record(conn, &out, &raw, result, &mut report)?;
            }
        }
        Ok(report)
    }

    /// Hands one mail to the relay: to the customer, plus the envelope-only receipt copy.
    async fn send_one(
        &self,
        out: Outgoing,
        raw: Vec<u8>,
    ) -> (Outgoing, Vec<u8>, Result<String, SendError>) {
        let mut to = vec![out.recipient.as_str()];
        if self.retry.receipt_copies {
            to.push(self.support.address.as_str());
        }
        let result = self.smtp.send(&self.support.address, &to, &raw).await;
        (out, raw, result)
    }

    /// The bytes to send: stored ones, or rendered now (and stored) if rendering failed at
    /// queue time. None if it still cannot be rendered; the row is rescheduled.
    fn rendered(
        &self,
        conn: &mut Connection,
        out: &Outgoing,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(raw) = &out.raw {
            return Ok(Some(raw.clone()));
        }
        let now = (self.now)();
        let composed = serde_json::from_str::<Value>(&out.context)
            .map_err(ComposeError::from)
            .and_then(|data| compose(&Letter::from(out), &data, self.templates, self.support, now));
        match composed {
            Ok(raw) => {
                store::store_rendered(conn, out.id, &raw)?;
                Ok(Some(raw))
            }
            Err(e) => {
                let retry_at = now
                    + chrono::Duration::from_std(retry_delay(out.attempts, self.retry))
                        .unwrap_or_default();
                tracing::error!(outbox = out.id, incident = out.incident, error = %e, "cannot render queued mail; will retry");
                store::mark_failed(conn, out, &format!("render: {e}"), Some(retry_at), now)?;
                Ok(None)
            }
        }
    }

    fn record(
        &self,
        conn: &mut Connection,
        out: &Outgoing,
        raw: &[u8],
        result: Result<String, SendError>,
        report: &mut DrainReport,
    ) -> Result<(), StoreError> {
        let now = (self.now)();
        match result {
            Ok(reply) => {
                store::mark_sent(conn, out, raw, &self.support.address, &reply, now)?;
                tracing::info!(incident = out.incident, kind = %out.kind, to = %out.recipient, message_id = %out.message_id, "mail sent");
                report.sent += 1;
            }
            Err(SendError::Transient(e)) => {
                let delay = retry_delay(out.attempts, self.retry);
                let retry_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                store::mark_failed(conn, out, &e, Some(retry_at), now)?;
                tracing::warn!(incident = out.incident, kind = %out.kind, to = %out.recipient, error = %e, retry_in = %humantime::format_duration(delay), "send failed; will retry");
                report.retrying += 1;
            }
            Err(SendError::Permanent(e)) => {
                store::mark_failed(conn, out, &e, None, now)?;
                tracing::error!(incident = out.incident, kind = %out.kind, to = %out.recipient, error = %e, "send rejected permanently; kept as failed for staff");
                report.failed += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let cfg = OutboxConfig {
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            receipt_copies: true,
            in_doubt_grace: Duration::from_secs(600),
        };
        assert_eq!(retry_delay(0, &cfg), Duration::from_secs(30));
        assert_eq!(retry_delay(1, &cfg), Duration::from_secs(60));
        assert_eq!(retry_delay(3, &cfg), Duration::from_secs(240));
        assert_eq!(retry_delay(10, &cfg), Duration::from_secs(3600));
        assert_eq!(retry_delay(1_000, &cfg), Duration::from_secs(3600));
    }

    fn support() -> SupportConfig {
        SupportConfig {
            address: "support@example.test".into(),
            name: "Example Support".into(),
            own_addresses: vec![],
        }
    }

    #[test]
    fn a_composed_acknowledgement_threads_and_cannot_be_injected() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = Templates::load(&dir).expect("templates");
        let data = serde_json::json!({
            "incident": {"number": 7, "token": "FU-7-0123456789",
                "subject": "Broken\r\nBcc: victim@example.com", "summary": "{{support.address}}",
                "opened": "x", "opened_iso": "x"},
            "customer": {"name": "Eve\r\nBcc: victim@example.com", "address": "eve@example.test"},
            "support": {"name": "Example Support", "address": "support@example.test"},
            "next_update": "soon", "next_update_iso": "x", "cadence": "4 hours",
        });
        let letter = Letter {
            kind: "acknowledgement",
            message_id: "fu.7.abc.def@example.test",
            recipient: "eve@example.test",
            recipient_name: Some("Eve\r\nBcc: victim@example.com"),
            in_reply_to: Some("c1@mail.example.test"),
            references: "c0@mail.example.test c1@mail.example.test",
        };
        let raw = compose(&letter, &data, &templates, &support(), Utc::now()).expect("composes");
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
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
    }
}
