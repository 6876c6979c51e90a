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

use base64::Engine;

use crate::config::{OutboxConfig, SendCaps, SupportConfig};
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
    /// Outlook Thread-Index (base64), so Outlook files the mail in the customer's conversation.
    pub thread_index: Option<&'a str>,
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
            thread_index: o.thread_index.as_deref(),
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
    let mut extra = vec![
        ("Auto-Submitted", "auto-replied".to_string()),
        ("X-Auto-Response-Suppress", "All".to_string()),
        (LOOP_HEADER, support.address.clone()),
    ];
    if let Some(index) = letter.thread_index {
        extra.push(("Thread-Index", index.to_string()));
    }
    for (name, value) in extra {
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
    /// The Outlook conversation (hex Thread-Index root) this mail continues.
    pub thread_root: Option<String>,
}

/// What became of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    Queued(i64),
    /// Not sent, on record in `suppressed` with this reason.
    Suppressed(String),
}

/// Everything queueing needs besides the draft.
#[derive(Clone, Copy)]
pub struct Queue<'a> {
    pub templates: &'a Templates,
    pub support: &'a SupportConfig,
    pub secret: &'a Secret,
    pub caps: &'a SendCaps,
}

/// Queues a mail inside the caller's transaction: fixes its Message-ID, indexes that ID for
/// threading, and renders it now so a template problem shows up at once (a render failure is
/// kept on the row and retried by the sender; it never loses the mail).
pub fn enqueue(
    conn: &Connection,
    draft: &Draft<'_>,
    queue: &Queue<'_>,
    now: DateTime<Utc>,
) -> Result<Queued, StoreError> {
    let Queue {
        templates,
        support,
        secret,
        caps,
    } = *queue;
    if let Some(reason) = refusal(conn, draft.recipient, caps, now)? {
        suppress(conn, draft, &reason, now)?;
        return Ok(Queued::Suppressed(reason));
    }
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
    let thread_index = draft
        .thread_root
        .as_deref()
        .and_then(|root| thread_index(root, &message_id));
    let letter = Letter {
        kind: draft.kind,
        message_id: &message_id,
        recipient: draft.recipient,
        recipient_name: draft.recipient_name,
        in_reply_to: draft.in_reply_to,
        references: &references,
        thread_index: thread_index.as_deref(),
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
            thread_index: thread_index.as_deref(),
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
    Ok(Queued::Queued(id))
}

/// Why automatic mail to `recipient` may not go out now, if it may not: the address bounced,
/// or a send cap is reached. Caps count what was queued in each sliding window, so they hold
/// across restarts and across every kind of automatic mail.
fn refusal(
    conn: &Connection,
    recipient: &str,
    caps: &SendCaps,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if let Some(u) = store::undeliverable(conn, recipient)? {
        return Ok(Some(format!(
            "{recipient} is marked undeliverable since {} ({})",
            u.since, u.reason
        )));
    }
    for window in &caps.windows {
        let since =
            now - chrono::Duration::from_std(window.within).unwrap_or(chrono::Duration::MAX);
        let sent = store::automatic_mail_since(conn, recipient, since)?;
        if sent >= window.max {
            return Ok(Some(format!(
                "send cap: {sent} automatic mails to {recipient} within {} already (limit {})",
                humantime::format_duration(window.within),
                window.max
            )));
        }
    }
    Ok(None)
}

fn suppress(
    conn: &Connection,
    draft: &Draft<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let context = serde_json::to_string(&draft.data).unwrap_or_default();
    store::record_suppressed(
        conn,
        &store::NewSuppressed {
            incident: draft.incident,
            kind: draft.kind,
            caused_by: draft.caused_by,
            recipient: draft.recipient,
            reason,
            context: &context,
        },
        now,
    )?;
    store::log_event(
        conn,
        now,
        Some(draft.incident),
        draft.caused_by,
        "mail_suppressed",
        &format!("{} to {} not sent: {reason}", draft.kind, draft.recipient),
    )?;
    tracing::warn!(
        incident = draft.incident,
        kind = draft.kind,
        reason,
        "automatic mail suppressed"
    );
    Ok(())
}

/// A Thread-Index continuing the conversation `root` (hex): the root bytes plus one 5-byte
/// child block. Outlook only compares the root; the block is derived from the Message-ID so a
/// resend carries the same value.
fn thread_index(root: &str, message_id: &str) -> Option<String> {
    let mut bytes = from_hex(root)?;
    if bytes.len() != crate::mail::THREAD_INDEX_ROOT {
        return None;
    }
    let digest = store::sha256_hex(message_id.as_bytes());
    bytes.extend(from_hex(digest.get(..10)?)?);
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
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
            staff: vec![],
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
        let index = thread_index(&"ab".repeat(22), "fu.7.abc.def@example.test");
        let letter = Letter {
            kind: "acknowledgement",
            message_id: "fu.7.abc.def@example.test",
            recipient: "eve@example.test",
            recipient_name: Some("Eve\r\nBcc: victim@example.com"),
            in_reply_to: Some("c1@mail.example.test"),
            references: "c0@mail.example.test c1@mail.example.test",
            thread_index: index.as_deref(),
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

    fn incident(conn: &Connection, customer: &str) -> i64 {
        store::create_incident(
            conn,
            &store::NewIncident {
                subject: "s",
                summary: "",
                customer_address: customer,
                customer_name: None,
                cadence: Duration::from_secs(3600),
                next_update_at: Utc::now(),
            },
            |n| format!("FU-{n}-x"),
            Utc::now(),
        )
        .expect("incident")
    }

    fn draft(incident: i64, to: &str) -> Draft<'_> {
        Draft {
            incident,
            kind: "acknowledgement",
            caused_by: None,
            recipient: to,
            recipient_name: None,
            in_reply_to: None,
            references: vec![],
            data: MailData::default(),
            thread_root: None,
        }
    }

    /// A database, the shipped templates and a key: what `enqueue` needs.
    struct QueueEnv {
        _dir: tempfile::TempDir,
        conn: Connection,
        templates: Templates,
        support: SupportConfig,
        secret: Secret,
    }

    impl QueueEnv {
        fn new() -> QueueEnv {
            let dir = tempfile::tempdir().expect("tempdir");
            let conn = store::open(&dir.path().join("f.db")).expect("db");
            let templates = Templates::load(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            )
            .expect("templates");
            QueueEnv {
                _dir: dir,
                conn,
                templates,
                support: support(),
                secret: Secret::from_bytes(b"k"),
            }
        }

        fn queue<'a>(&'a self, caps: &'a SendCaps) -> Queue<'a> {
            Queue {
                templates: &self.templates,
                support: &self.support,
                secret: &self.secret,
                caps,
            }
        }
    }

    #[test]
    fn send_caps_suppress_with_a_reason_and_count_per_recipient_over_sliding_windows() {
        let env = QueueEnv::new();
        let conn = &env.conn;
        let caps = SendCaps {
            windows: vec![
                crate::config::CapWindow {
                    max: 2,
                    within: Duration::from_secs(600),
                },
                crate::config::CapWindow {
                    max: 3,
                    within: Duration::from_secs(86_400),
                },
            ],
        };
        let queue = env.queue(&caps);
        let t0 = Utc::now();
        let mut outcomes = Vec::new();
        for minute in 0..3 {
            let n = incident(conn, "ann@example.test");
            let at = t0 + chrono::Duration::minutes(minute);
            outcomes
                .push(enqueue(conn, &draft(n, "ann@example.test"), &queue, at).expect("enqueue"));
        }
        assert!(matches!(outcomes[0], Queued::Queued(_)));
        assert!(matches!(outcomes[1], Queued::Queued(_)));
        match &outcomes[2] {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("within 10m already (limit 2)"), "{reason}")
            }
            other => panic!("third mail in 10 minutes must be capped: {other:?}"),
        }
        // Another recipient is not affected.
        let other = incident(conn, "bob@example.test");
        assert!(matches!(
            enqueue(conn, &draft(other, "bob@example.test"), &queue, t0).expect("enqueue"),
            Queued::Queued(_)
        ));
        // Eleven minutes later the 10-minute window has room again; the daily one then fills.
        let later = t0 + chrono::Duration::minutes(12);
        let n = incident(conn, "ann@example.test");
        assert!(matches!(
            enqueue(conn, &draft(n, "ann@example.test"), &queue, later).expect("enqueue"),
            Queued::Queued(_)
        ));
        let n = incident(conn, "ann@example.test");
        match enqueue(
            conn,
            &draft(n, "ann@example.test"),
            &queue,
            later + chrono::Duration::minutes(15),
        )
        .expect("enqueue")
        {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("within 1day already (limit 3)"), "{reason}")
            }
            other => panic!("daily cap: {other:?}"),
        }
        let suppressed: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM suppressed WHERE recipient = 'ann@example.test'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(suppressed, 2, "every capped mail is on record");
    }

    #[test]
    fn an_undeliverable_recipient_gets_nothing_until_cleared() {
        let env = QueueEnv::new();
        let conn = &env.conn;
        let caps = SendCaps::default();
        let queue = env.queue(&caps);
        let n = incident(conn, "gone@example.test");
        let bounce = store::insert_message(
            conn,
            &store::NewMessage {
                direction: "in",
                class: "bounce",
                sha256: "x",
                raw: b"x",
                ..Default::default()
            },
            None,
            Utc::now(),
        )
        .expect("row");
        store::mark_undeliverable(
            conn,
            "gone@example.test",
            "bounced",
            Some(n),
            bounce,
            Utc::now(),
        )
        .expect("mark");
        match enqueue(conn, &draft(n, "gone@example.test"), &queue, Utc::now()).expect("enqueue") {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("marked undeliverable"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(store::clear_undeliverable(conn, "gone@example.test").expect("clear"));
        assert!(matches!(
            enqueue(conn, &draft(n, "gone@example.test"), &queue, Utc::now()).expect("enqueue"),
            Queued::Queued(_)
        ));
    }
}
