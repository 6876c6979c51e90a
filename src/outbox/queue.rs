//! Queue: a decided mail becomes an outbox row, inside the caller's transaction.
//!
//! Here a mail gets its Message-ID (fixed for every retry), passes the send caps (or is kept on
//! record as suppressed with the reason), is rendered once so a template problem shows up at
//! once, and makes its promise in the ledger.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::compose::{check_recipient, compose, thread_index, ComposeError, Letter};
use crate::clock::before;
use crate::config::{CapWindow, SendCaps};
use crate::deps::Deps;
use crate::incident::{Actor, Audience, EventKind, IncidentNo, Mail, MailKind, NewEvent};
use crate::secret::SecretError;
use crate::store::outbox::{NewOutgoing, NewSuppressed};
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot make a Message-ID")]
    MessageId(#[from] SecretError),
    #[error("cannot store the template data")]
    Data(#[from] serde_json::Error),
}

/// Most bytes of attachments forwarded with one mail (a staff reply's).
pub(crate) const MAX_FORWARDED: usize = 20 * 1000 * 1000;

/// Mails previewed so far in this process, for their throw-away Message-IDs.
static PREVIEWED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What became of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    Queued {
        message_id: String,
    },
    /// Not sent, on record in `suppressed` with this reason.
    Suppressed(String),
    /// Can never be sent (the recipient address cannot be written, or the mail cannot be
    /// built): on record in the outbox as `failed` with this reason.
    Failed(String),
}

/// Whether a decision is carried out for real or previewed by `upcoming`, whose transaction
/// is rolled back. A preview renders nothing and writes nothing that no later decision in the
/// same transaction reads back: no event log, no threading index, no template data. What it
/// does write (incident fields, promises, the outbox rows the send caps count) is exactly what
/// the real pass writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Real,
    Preview,
}

/// Queues `mail` about `incident`.
pub fn enqueue(
    conn: &Connection,
    deps: &Deps,
    incident: IncidentNo,
    mail: &Mail,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<Queued, QueueError> {
    let data = match pass {
        Pass::Real => serde_json::to_value(&mail.data)?,
        Pass::Preview => serde_json::Value::Null,
    };
    let audience = mail.kind.audience();
    let refused = match audience {
        Audience::Customer => refusal(conn, &mail.to, &deps.config.send_caps, now)?,
        Audience::Staff if mail.kind == MailKind::StaffDigest => None,
        Audience::Staff => staff_refusal(conn, &mail.to, &deps.config.staff.notify_cap, now)?,
    };
    if let Some(reason) = refused {
        store::outbox::record_suppressed(
            conn,
            &NewSuppressed {
                incident,
                kind: mail.kind,
                caused_by: mail.caused_by,
                recipient: &mail.to,
                reason: &reason,
                context: &data.to_string(),
                // Staff still hear of it: in the next digest.
                digest_pending: audience == Audience::Staff,
            },
            now,
        )?;
        store::events::log(
            conn,
            &NewEvent {
                incident: Some(incident),
                message: mail.caused_by,
                kind: EventKind::MailSuppressed,
                actor: Actor::Daemon,
                detail: format!("{} to {} not sent: {reason}", mail.kind, mail.to),
            },
            now,
        )?;
        tracing::warn!(incident = incident.0, kind = %mail.kind, reason, "automatic mail suppressed");
        return Ok(Queued::Suppressed(reason));
    }
    let domain = deps.config.support.domain();
    let message_id = match (pass, audience) {
        // A reply naming a staff notification's Message-ID proves it answers that staff member.
        (Pass::Real, Audience::Staff) => {
            deps.secret.staff_message_id(incident.0, &mail.to, domain)?
        }
        (Pass::Real, Audience::Customer) => deps.secret.message_id(incident.0, domain)?,
        // Never sent and rolled back: unique is all it must be.
        (Pass::Preview, _) => format!(
            "preview.{}.{}@{domain}",
            incident,
            PREVIEWED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ),
    };
    let attachments = match (pass, mail.attachments_from) {
        (Pass::Real, Some(row)) => {
            crate::mail::attachment_parts(&store::messages::message_raw(conn, row)?, MAX_FORWARDED)
        }
        _ => Vec::new(),
    };
    let references = mail.references.join(" ");
    let thread_index = mail
        .thread_root
        .as_deref()
        .and_then(|root| thread_index(root, &message_id));
    let letter = Letter {
        kind: mail.kind,
        message_id: &message_id,
        recipient: &mail.to,
        recipient_name: mail.to_name.as_deref(),
        in_reply_to: mail.in_reply_to.as_deref(),
        references: &references,
        thread_index: thread_index.as_deref(),
    };
    let composed = match pass {
        Pass::Real => Some(compose(
            &letter,
            &data,
            &deps.templates,
            &deps.config.support,
            &attachments,
            now,
        )),
        Pass::Preview => None,
    };
    // A mail that can never be built (an address lettre refuses) is kept as failed at once:
    // queued, it would be retried forever and nobody would be told. A template error is not
    // permanent (staff can fix the template), so that mail is queued and retried with backoff.
    let permanent: Option<ComposeError> = match &composed {
        Some(Err(e)) if e.is_permanent() => check_recipient(&mail.to)
            .err()
            .or_else(|| Some(ComposeError::Build(crate::errors::Chain(e).to_string()))),
        Some(_) => None,
        None => check_recipient(&mail.to).err(),
    };
    let render_error = match &composed {
        Some(Err(e)) => Some(crate::errors::Chain(e).to_string()),
        _ => None,
    };
    let rendered = composed.and_then(Result::ok);
    let id = store::outbox::enqueue(
        conn,
        &NewOutgoing {
            incident,
            kind: mail.kind,
            caused_by: mail.caused_by,
            message_id: &message_id,
            recipient: &mail.to,
            recipient_name: mail.to_name.as_deref(),
            in_reply_to: mail.in_reply_to.as_deref(),
            references: &references,
            context: &data.to_string(),
            raw: rendered.as_ref().map(|c| c.raw.as_slice()),
            subject: rendered.as_ref().map(|c| c.subject.as_str()),
            render_error: render_error.as_deref(),
            thread_index: thread_index.as_deref(),
            attachments_from: mail.attachments_from,
        },
        now,
    )?;
    if let Some(e) = permanent {
        return never_sendable(conn, incident, mail, id, &e, pass, now);
    }
    if let Some(due) = mail.promise {
        store::promises::record(conn, incident, mail.kind, due, now)?;
    }
    if pass == Pass::Preview {
        return Ok(Queued::Queued { message_id });
    }
    store::messages::index_message_id(conn, &message_id, incident)?;
    let detail = match &render_error {
        None => format!("{} to {} queued as <{message_id}>", mail.kind, mail.to),
        Some(e) => format!(
            "{} to {} queued as <{message_id}> but not yet renderable: {e}",
            mail.kind, mail.to
        ),
    };
    store::events::log(
        conn,
        &NewEvent {
            incident: Some(incident),
            message: mail.caused_by,
            kind: EventKind::MailQueued,
            actor: Actor::Daemon,
            detail,
        },
        now,
    )?;
    if let Some(e) = render_error {
        tracing::error!(incident = incident.0, kind = %mail.kind, error = %e, "mail queued but cannot be rendered yet");
    }
    Ok(Queued::Queued { message_id })
}

/// A mail that can never go out: its row is marked failed with the reason, and staff are told
/// in the event log (an address that cannot be written as `recipient_invalid`).
fn never_sendable(
    conn: &Connection,
    incident: IncidentNo,
    mail: &Mail,
    id: i64,
    error: &ComposeError,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<Queued, QueueError> {
    let (kind, reason) = match error {
        ComposeError::Address { address, reason } => (
            EventKind::RecipientInvalid,
            format!("undeliverable by syntax: `{address}` can never be written to ({reason})"),
        ),
        other => (
            EventKind::MailFailed,
            format!("cannot be built: {}", crate::errors::Chain(other)),
        ),
    };
    store::outbox::give_up(conn, id, &reason, now)?;
    if pass == Pass::Real {
        store::events::log(
            conn,
            &NewEvent {
                incident: Some(incident),
                message: mail.caused_by,
                kind,
                actor: Actor::Daemon,
                detail: format!(
                    "{} to {} not sent, kept as failed: {reason}",
                    mail.kind, mail.to
                ),
            },
            now,
        )?;
        tracing::error!(incident = incident.0, kind = %mail.kind, to = %mail.to, reason, "mail can never be sent; kept as failed");
    }
    Ok(Queued::Failed(reason))
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
    if let Some(u) = store::outbox::undeliverable(conn, recipient)? {
        return Ok(Some(format!(
            "{recipient} is marked undeliverable since {} ({})",
            crate::clock::stamp(u.since),
            u.reason
        )));
    }
    // One look back over the longest window; each window counts its part of it.
    let Some(longest) = caps.windows.iter().map(|w| w.within).max() else {
        return Ok(None);
    };
    let times: Vec<DateTime<Utc>> =
        store::outbox::automatic_mail_since(conn, recipient, before(now, longest))?
            .into_iter()
            .filter(|(_, kind)| kind.audience() == Audience::Customer)
            .map(|(at, _)| at)
            .collect();
    let counts: Vec<u32> = caps
        .windows
        .iter()
        .map(|w| {
            let since = before(now, w.within);
            u32::try_from(times.iter().filter(|t| **t > since).count()).unwrap_or(u32::MAX)
        })
        .collect();
    Ok(cap_reached(recipient, caps, &counts))
}

/// Whether a staff member's notifications are over `[staff] notify_cap`: counted apart from
/// any customer's caps, so escalations are never silenced by what a customer received.
pub(crate) fn staff_refusal(
    conn: &Connection,
    recipient: &str,
    cap: &CapWindow,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let sent = store::outbox::automatic_mail_since(conn, recipient, before(now, cap.within))?
        .into_iter()
        .filter(|(_, kind)| kind.audience() == Audience::Staff)
        .count();
    Ok((sent >= cap.max as usize).then(|| {
        format!(
            "staff cap: {sent} notifications to {recipient} within {} already (limit {}); \
             held for the next digest",
            humantime::format_duration(cap.within),
            cap.max
        )
    }))
}

/// The first cap that `counts` (mail already queued within each window, in order) reaches.
pub fn cap_reached(recipient: &str, caps: &SendCaps, counts: &[u32]) -> Option<String> {
    caps.windows
        .iter()
        .zip(counts)
        .find(|(window, sent)| **sent >= window.max)
        .map(|(window, sent)| {
            format!(
                "send cap: {sent} automatic mails to {recipient} within {} already (limit {})",
                humantime::format_duration(window.within),
                window.max
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CapWindow, Config};
    use crate::incident::MailKind;
    use crate::store::incidents::{create_incident, NewIncident};
    use crate::templates::MailData;
    use std::time::Duration;

    fn deps(caps: SendCaps) -> Deps {
        let mut config = Config::example();
        config.send_caps = caps;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        Deps {
            templates: crate::templates::Templates::load(&dir, &MailKind::template_names())
                .expect("templates"),
            config,
            secret: crate::secret::Secret::from_bytes(b"k"),
            clock: crate::clock::Clock::system(),
        }
    }

    fn incident(conn: &Connection, customer: &str) -> IncidentNo {
        create_incident(
            conn,
            &NewIncident {
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

    fn mail(to: &str) -> Mail {
        Mail {
            kind: MailKind::Acknowledgement,
            to: to.into(),
            to_name: None,
            data: MailData::default(),
            promise: None,
            caused_by: None,
            in_reply_to: None,
            references: vec![],
            thread_root: None,
            attachments_from: None,
        }
    }

    #[test]
    fn send_caps_suppress_with_a_reason_and_count_per_recipient_over_sliding_windows() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps {
            windows: vec![
                CapWindow {
                    max: 2,
                    within: Duration::from_secs(600),
                },
                CapWindow {
                    max: 3,
                    within: Duration::from_secs(86_400),
                },
            ],
        });
        let t0 = Utc::now();
        let mut outcomes = Vec::new();
        for minute in 0..3 {
            let n = incident(&conn, "ann@example.test");
            let at = t0 + chrono::Duration::minutes(minute);
            outcomes.push(
                enqueue(&conn, &deps, n, &mail("ann@example.test"), Pass::Real, at)
                    .expect("enqueue"),
            );
        }
        assert!(matches!(outcomes[0], Queued::Queued { .. }));
        assert!(matches!(outcomes[1], Queued::Queued { .. }));
        match &outcomes[2] {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("within 10m already (limit 2)"), "{reason}")
            }
            other => panic!("third mail in 10 minutes must be capped: {other:?}"),
        }
        // Another recipient is not affected.
        let other = incident(&conn, "bob@example.test");
        assert!(matches!(
            enqueue(
                &conn,
                &deps,
                other,
                &mail("bob@example.test"),
                Pass::Real,
                t0
            )
            .expect("enqueue"),
            Queued::Queued { .. }
        ));
        // Twelve minutes later the 10-minute window has room again; the daily one then fills.
        let later = t0 + chrono::Duration::minutes(12);
        let n = incident(&conn, "ann@example.test");
        assert!(matches!(
            enqueue(
                &conn,
                &deps,
                n,
                &mail("ann@example.test"),
                Pass::Real,
                later
            )
            .expect("enqueue"),
            Queued::Queued { .. }
        ));
        let n = incident(&conn, "ann@example.test");
        match enqueue(
            &conn,
            &deps,
            n,
            &mail("ann@example.test"),
            Pass::Real,
            later + chrono::Duration::minutes(15),
        )
        .expect("enqueue")
        {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("within 1day already (limit 3)"), "{reason}")
            }
            other => panic!("daily cap: {other:?}"),
        }
        let suppressed: usize = (1..=n.0)
            .map(|i| {
                store::outbox::incident_suppressed(&conn, IncidentNo(i))
                    .expect("suppressed")
                    .iter()
                    .filter(|s| s.recipient == "ann@example.test")
                    .count()
            })
            .sum();
        assert_eq!(suppressed, 2, "every capped mail is on record");
    }

    #[test]
    fn an_undeliverable_recipient_gets_nothing_until_cleared() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps::default());
        let n = incident(&conn, "gone@example.test");
        let bounce = store::messages::insert_message(
            &conn,
            &store::NewMessage::incoming(crate::mail::MessageClass::Bounce, "x", b"x"),
            None,
            Utc::now(),
        )
        .expect("row");
        store::outbox::mark_undeliverable(
            &conn,
            "gone@example.test",
            "bounced",
            Some(n),
            bounce,
            Utc::now(),
        )
        .expect("mark");
        match enqueue(
            &conn,
            &deps,
            n,
            &mail("gone@example.test"),
            Pass::Real,
            Utc::now(),
        )
        .expect("enqueue")
        {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("marked undeliverable"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(store::outbox::clear_undeliverable(&conn, "gone@example.test").expect("clear"));
        assert!(matches!(
            enqueue(
                &conn,
                &deps,
                n,
                &mail("gone@example.test"),
                Pass::Real,
                Utc::now()
            )
            .expect("enqueue"),
            Queued::Queued { .. }
        ));
    }

    #[test]
    fn the_first_cap_reached_is_named() {
        let caps = SendCaps::default();
        assert_eq!(cap_reached("a@b", &caps, &[2, 9, 39]), None);
        let reason = cap_reached("a@b", &caps, &[1, 10, 12]).expect("capped");
        assert!(reason.contains("within 1h already (limit 10)"), "{reason}");
    }
}
