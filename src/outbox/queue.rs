//! Queue: a decided mail becomes an outbox row, inside the caller's transaction.
//!
//! Here a mail gets its Message-ID (fixed for every retry), passes the send caps (or is kept on
//! record as suppressed with the reason), is rendered once so a template problem shows up at
//! once, and makes its promise in the ledger.

use crate::said;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::caps::{self, customer_refusal, staff_refusal, Refusal};
use super::compose::{check_recipient, compose, thread_index, ComposeError, Letter};
use crate::clock::before;
use crate::deps::Deps;
use crate::incident::{letters, Actor, Audience, EventKind, IncidentNo, Mail, MailKind, NewEvent};
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
    /// In the outbox, waiting for the sender, under this Message-ID.
    Waiting { message_id: String },
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
        Audience::Customer => customer_refusal(conn, incident, mail, &deps.config.send_caps, now)?,
        // Every incident gets its own notification, a burst included (shared out, see
        // `[staff] burst`): it is the thread the team answers in. The cap holds back the rest
        // (replies, alarms) for the digest.
        Audience::Staff if matches!(mail.kind, MailKind::StaffDigest | MailKind::StaffNew) => None,
        Audience::Staff => {
            staff_refusal(conn, &mail.to, &deps.config.staff.notify_cap, now)?.map(|reason| {
                Refusal {
                    reason,
                    global: false,
                }
            })
        }
    };
    if let Some(Refusal { reason, global }) = refused {
        let reason = deps.policy().say(&reason);
        // Staff still hear of a held notification: in the next digest.
        let digest_pending = audience == Audience::Staff;
        let detail = deps.policy().say(&said!(
            "outbox.not_sent",
            kind = mail.kind,
            to = mail.to,
            reason = reason
        ));
        let not_sent = (EventKind::MailSuppressed, detail.as_str());
        suppress(
            conn,
            (incident, mail, &data),
            &reason,
            digest_pending,
            not_sent,
            now,
        )?;
        tracing::warn!(incident = incident.0, kind = %mail.kind, reason, "automatic mail suppressed");
        if global && pass == Pass::Real {
            tell_staff_of_global_cap(conn, deps, incident, &reason, now)?;
        }
        if pass == Pass::Real {
            tell_the_writer(conn, deps, incident, mail, &reason, now)?;
        }
        return Ok(Queued::Suppressed(reason));
    }
    let domain = deps.config.support.domain();
    let message_id = match (pass, audience) {
        // A reply naming a staff notification's Message-ID proves it answers that staff member.
        (Pass::Real, Audience::Staff) => {
            let day = now.timestamp().div_euclid(86_400);
            deps.secret
                .staff_message_id(incident.0, &mail.to, day, domain)?
        }
        (Pass::Real, Audience::Customer) => deps.secret.message_id(incident.0, domain)?,
        // Never sent and rolled back: unique is all it must be.
        (Pass::Preview, _) => format!(
            "preview.{}.{}@{domain}",
            incident,
            PREVIEWED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ),
    };
    // A staff reply's files go to the customer; a customer's (a screenshot, a log) go to
    // staff with the notification, up to `[staff] attach_max` (the rest stay listed).
    let attachments = match (pass, mail.attachments_from) {
        (Pass::Real, Some(row)) => {
            let max = match audience {
                Audience::Customer => MAX_FORWARDED,
                Audience::Staff => {
                    usize::try_from(deps.config.staff.attach_max).unwrap_or(MAX_FORWARDED)
                }
            };
            crate::mail::attachment_parts(&store::messages::message_raw(conn, row)?, max)
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
    // The last guard: nothing written for staff only reaches a customer, whatever path the
    // text took to get here (a quote a reading missed, a note typed twice, a template edited
    // to include a staff partial).
    if pass == Pass::Real && audience == Audience::Customer {
        let mut texts = vec![super::guard::data_text(&data)];
        if let Some(Ok(c)) = &composed {
            texts.push(c.words.clone());
        }
        let found = super::guard::staff_only_text(conn, deps, incident, &texts)?;
        if !found.is_empty() {
            return stopped(conn, deps, incident, mail, &data, &found, now);
        }
    }
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
            mailbox: &caps::mailbox(&mail.to, &deps.config.send_caps.mailbox),
            domain: &caps::domain(&mail.to),
            unverified: mail.unverified,
        },
        now,
    )?;
    if let Some(e) = permanent {
        return never_sendable(conn, deps, (incident, mail, id), &e, pass, now);
    }
    if let Some(due) = mail.promise {
        store::promises::record(conn, incident, mail.kind, due, now)?;
    }
    if pass == Pass::Preview {
        return Ok(Queued::Waiting { message_id });
    }
    store::messages::index_message_id(conn, &message_id, incident)?;
    let detail = deps.policy().say(&match &render_error {
        None => said!(
            "outbox.queued",
            kind = mail.kind,
            to = mail.to,
            id = message_id
        ),
        Some(e) => said!(
            "outbox.queued_unrenderable",
            kind = mail.kind,
            to = mail.to,
            id = message_id,
            error = e
        ),
    });
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
    Ok(Queued::Waiting { message_id })
}

/// A mail that can never go out: its row is marked failed with the reason, and staff are told
/// in the event log (an address that cannot be written as `recipient_invalid`).
fn never_sendable(
    conn: &Connection,
    deps: &Deps,
    (incident, mail, id): (IncidentNo, &Mail, i64),
    error: &ComposeError,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<Queued, QueueError> {
    let (kind, reason) = match error {
        ComposeError::Address { address, reason } => (
            EventKind::RecipientInvalid,
            said!("outbox.invalid_address", address = address, reason = reason),
        ),
        other => (
            EventKind::MailFailed,
            said!("outbox.cannot_build", error = crate::errors::Chain(other)),
        ),
    };
    let reason = deps.policy().say(&reason);
    store::outbox::give_up(conn, id, &reason, now)?;
    if pass == Pass::Real {
        store::events::log(
            conn,
            &NewEvent {
                incident: Some(incident),
                message: mail.caused_by,
                kind,
                actor: Actor::Daemon,
                detail: deps.policy().say(&said!(
                    "outbox.failed",
                    kind = mail.kind,
                    to = mail.to,
                    reason = reason
                )),
            },
            now,
        )?;
        tracing::error!(incident = incident.0, kind = %mail.kind, to = %mail.to, reason, "mail can never be sent; kept as failed");
    }
    Ok(Queued::Failed(reason))
}

/// Keeps a mail that is not sent in `suppressed` with its reason and data, and logs `event`.
fn suppress(
    conn: &Connection,
    (incident, mail, data): (IncidentNo, &Mail, &serde_json::Value),
    reason: &str,
    digest_pending: bool,
    (kind, detail): (EventKind, &str),
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    store::outbox::record_suppressed(
        conn,
        &NewSuppressed {
            incident,
            kind: mail.kind,
            caused_by: mail.caused_by,
            recipient: &mail.to,
            reason,
            context: &data.to_string(),
            digest_pending,
        },
        now,
    )?;
    store::events::log(
        conn,
        &NewEvent {
            incident: Some(incident),
            message: mail.caused_by,
            kind,
            actor: Actor::Daemon,
            detail: detail.to_string(),
        },
        now,
    )?;
    Ok(())
}

/// A customer mail that carries staff-only text: not queued, on record as suppressed with the
/// lines found, and staff are told at once (only logged when no staff are configured).
fn stopped(
    conn: &Connection,
    deps: &Deps,
    incident: IncidentNo,
    mail: &Mail,
    data: &serde_json::Value,
    found: &[String],
    now: DateTime<Utc>,
) -> Result<Queued, QueueError> {
    let quoted = found
        .iter()
        .map(|l| format!("«{}»", crate::mail::header_safe(l, 120)))
        .collect::<Vec<_>>()
        .join(", ");
    let policy = deps.policy();
    let reason = policy.say(&said!("outbox.staff_only", lines = quoted));
    let detail = policy.say(&said!(
        "outbox.stopped",
        kind = mail.kind,
        to = mail.to,
        reason = reason
    ));
    let stopped = (EventKind::MailStopped, detail.as_str());
    suppress(conn, (incident, mail, data), &reason, false, stopped, now)?;
    tracing::error!(incident = incident.0, kind = %mail.kind, to = %mail.to, reason, "customer mail stopped by the staff-only guard");
    if let Some(row) = store::incidents::incident(conn, incident)? {
        // The team, and the member whose words it carried if the team list is not them.
        let mut to = deps.config.staff.recipients().to_vec();
        if let Some(member) = mail.staff_by.as_deref().filter(|m| m.contains('@')) {
            if !to.iter().any(|t| t.eq_ignore_ascii_case(member)) {
                to.push(member.to_string());
            }
        }
        for notice in letters::stopped_notice(&row, mail.kind, found, &to, &deps.policy()) {
            enqueue(conn, deps, incident, &notice, Pass::Real, now)?;
        }
    }
    Ok(Queued::Suppressed(reason))
}

/// A customer mail carrying a staff member's words was not sent: they hear of it at once,
/// with why (a person is waiting on an answer they think went out).
fn tell_the_writer(
    conn: &Connection,
    deps: &Deps,
    incident: IncidentNo,
    mail: &Mail,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    let Some(member) = mail.staff_by.as_deref().filter(|m| m.contains('@')) else {
        return Ok(());
    };
    if let Some(row) = store::incidents::incident(conn, incident)? {
        let notice = letters::not_sent_notice(&row, mail.kind, member, reason, &deps.policy());
        enqueue(conn, deps, incident, &notice, Pass::Real, now)?;
    }
    Ok(())
}

/// The global cap held a customer mail back: staff are told once per window of that cap (the
/// notice is staff mail, so the cap that caused it never holds it).
fn tell_staff_of_global_cap(
    conn: &Connection,
    deps: &Deps,
    incident: IncidentNo,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    let config = &deps.config;
    let Some(longest) = config
        .send_caps
        .global_windows
        .iter()
        .map(|w| w.within)
        .max()
    else {
        return Ok(());
    };
    if store::outbox::kind_queued_since(conn, MailKind::StaffCapped, before(now, longest))? {
        return Ok(());
    }
    let Some(row) = store::incidents::incident(conn, incident)? else {
        return Ok(());
    };
    for mail in letters::global_cap_notice(&row, reason, &deps.policy()) {
        enqueue(conn, deps, incident, &mail, Pass::Real, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CapWindow, Config, SendCaps};
    use crate::incident::MailKind;
    use crate::store::incidents::{create_incident, NewIncident};
    use crate::templates::MailData;
    use std::time::Duration;

    fn deps(caps: SendCaps) -> Deps {
        let mut config = Config::example().expect("example config");
        config.send_caps = caps;
        Deps::for_tests(config)
    }

    fn incident(conn: &Connection, customer: &str) -> IncidentNo {
        create_incident(
            conn,
            &NewIncident {
                subject: "s",
                summary: "",
                customer_address: customer,
                customer_name: None,
                reply_address: customer,
                reply_name: None,
                sender_trust: crate::mail::Trust::Verified,
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
            unverified: false,
            data: MailData::default(),
            promise: None,
            caused_by: None,
            in_reply_to: None,
            references: vec![],
            thread_root: None,
            attachments_from: None,
            staff_by: None,
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
            ..SendCaps::default()
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
        assert!(matches!(outcomes[0], Queued::Waiting { .. }));
        assert!(matches!(outcomes[1], Queued::Waiting { .. }));
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
            Queued::Waiting { .. }
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
            Queued::Waiting { .. }
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
    fn a_customer_mail_carrying_an_internal_note_or_a_staff_only_line_is_stopped() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps::default());
        let n = incident(&conn, "ann@example.test");
        let now = Utc::now();
        store::incidents::add_note(
            &conn,
            n,
            &store::incidents::NewNote {
                author: "anna@example.test",
                text: "Finance must approve refunds over 200 EUR first; do not promise a date.",
                visibility: crate::incident::NoteVisibility::Internal,
                signed: "",
            },
            now,
        )
        .expect("note");
        let with_note = |note: &str| {
            let mut m = mail("ann@example.test");
            m.kind = MailKind::Progress;
            m.data.note = note.into();
            m
        };
        // Re-wrapped, as a mail client quotes it: still the note.
        let leaked = with_note(
            "We are on it.\n\n  Finance must approve refunds over 200 EUR\n  first; do not promise a date.",
        );
        match enqueue(&conn, &deps, n, &leaked, Pass::Real, now).expect("enqueue") {
            Queued::Suppressed(reason) => {
                assert!(reason.contains("meant for staff only"), "{reason}");
                assert!(reason.contains("Finance must approve"), "{reason}");
            }
            other => panic!("must be stopped: {other:?}"),
        }
        // A line of the staff footer, pasted: stopped too.
        let footer = with_note(
            "Start with #internal for a note the customer never sees. Commands, each on its",
        );
        assert!(matches!(
            enqueue(&conn, &deps, n, &footer, Pass::Real, now).expect("enqueue"),
            Queued::Suppressed(_)
        ));
        // The customer's own words and ordinary news go.
        let clean = with_note("The refund was approved today; it reaches your card this week.");
        assert!(matches!(
            enqueue(&conn, &deps, n, &clean, Pass::Real, now).expect("enqueue"),
            Queued::Waiting { .. }
        ));
        let shown = store::events::incident_events(&conn, n).expect("events");
        assert_eq!(
            shown
                .iter()
                .filter(|e| e.kind == EventKind::MailStopped)
                .count(),
            2
        );
    }

    #[test]
    fn a_staff_members_words_pass_every_cap_and_they_hear_at_once_when_anything_holds_them() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps {
            windows: vec![CapWindow {
                max: 1,
                within: Duration::from_secs(600),
            }],
            ..SendCaps::default()
        });
        let now = Utc::now();
        let n = incident(&conn, "ann@example.test");
        // Forged complaints used up the customer's cap...
        assert!(matches!(
            enqueue(&conn, &deps, n, &mail("ann@example.test"), Pass::Real, now).expect("q"),
            Queued::Waiting { .. }
        ));
        assert!(matches!(
            enqueue(&conn, &deps, n, &mail("ann@example.test"), Pass::Real, now).expect("q"),
            Queued::Suppressed(_)
        ));
        // ...but Anna's note goes.
        let mut note = mail("ann@example.test");
        note.kind = MailKind::Progress;
        note.staff_by = Some("anna@example.test".into());
        assert!(matches!(
            enqueue(&conn, &deps, n, &note, Pass::Real, now).expect("q"),
            Queued::Waiting { .. }
        ));
        // An address that bounced holds it: Anna is told at once.
        let bounce = store::messages::insert_message(
            &conn,
            &store::NewMessage::incoming(crate::mail::MessageClass::Bounce, "y", b"y"),
            None,
            now,
        )
        .expect("bounce");
        store::outbox::mark_undeliverable(
            &conn,
            "ann@example.test",
            "550 no such user",
            Some(n),
            bounce,
            now,
        )
        .expect("mark");
        assert!(matches!(
            enqueue(&conn, &deps, n, &note, Pass::Real, now).expect("q"),
            Queued::Suppressed(_)
        ));
        let told = store::outbox::incident_outbox(&conn, n)
            .expect("outbox")
            .into_iter()
            .filter(|o| o.kind == MailKind::StaffRefused && o.recipient == "anna@example.test")
            .count();
        assert_eq!(told, 1);
    }

    #[test]
    fn an_outage_at_one_provider_gets_every_customer_their_acknowledgement() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps::default());
        let t0 = Utc::now();
        let mut queued = 0;
        for i in 0..500 {
            let to = format!("customer{i}@bigmail.example");
            let n = incident(&conn, &to);
            let mut ack = mail(&to);
            ack.unverified = true;
            let at = t0 + chrono::Duration::seconds(i * 7);
            if matches!(
                enqueue(&conn, &deps, n, &ack, Pass::Real, at).expect("enqueue"),
                Queued::Waiting { .. }
            ) {
                queued += 1;
            }
        }
        assert_eq!(
            queued, 500,
            "500 customers of one domain within the hour, unverified"
        );
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
            Queued::Waiting { .. }
        ));
    }

    fn window(max: u32, secs: u64) -> CapWindow {
        CapWindow {
            max,
            within: Duration::from_secs(secs),
        }
    }

    fn queued(outcome: &Queued) -> bool {
        matches!(outcome, Queued::Waiting { .. })
    }

    #[test]
    fn sub_addresses_of_one_mailbox_share_its_cap() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps::default());
        let t0 = Utc::now();
        let outcomes: Vec<Queued> = (1..=20)
            .map(|i| {
                let to = format!("Victim+{i}@Example.test");
                let n = incident(&conn, &to);
                enqueue(&conn, &deps, n, &mail(&to), Pass::Real, t0).expect("enqueue")
            })
            .collect();
        assert_eq!(outcomes.iter().filter(|o| queued(o)).count(), 3);
        match &outcomes[3] {
            Queued::Suppressed(reason) => assert!(
                reason.contains("automatic mails to victim@example.test within 10m"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mail_about_unproven_senders_has_stricter_caps_per_mailbox_and_domain() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps {
            windows: vec![window(100, 86_400)],
            unverified_windows: vec![window(2, 86_400)],
            domain_windows: vec![window(3, 3600)],
            ..SendCaps::default()
        });
        let t0 = Utc::now();
        let unproven = |to: &str| Mail {
            unverified: true,
            ..mail(to)
        };
        let send = |m: Mail| {
            let n = incident(&conn, &m.to);
            enqueue(&conn, &deps, n, &m, Pass::Real, t0).expect("enqueue")
        };
        assert!(queued(&send(unproven("a@corp.test"))));
        assert!(queued(&send(unproven("a@corp.test"))));
        let third = send(unproven("a@corp.test"));
        assert!(
            matches!(&third, Queued::Suppressed(r) if r.contains("from a sender nobody verified")),
            "{third:?}"
        );
        assert!(
            queued(&send(mail("a@corp.test"))),
            "proven mail is not held by them"
        );
        assert!(queued(&send(unproven("b@corp.test"))));
        let domain = send(unproven("c@corp.test"));
        assert!(
            matches!(&domain, Queued::Suppressed(r) if r.contains("mails to corp.test")),
            "{domain:?}"
        );
        assert!(queued(&send(unproven("c@other.test"))));
    }

    #[test]
    fn answers_to_the_customer_are_limited_per_incident() {
        let conn = store::open_in_memory().expect("db");
        let deps = deps(SendCaps {
            windows: vec![],
            answer_windows: vec![window(2, 86_400)],
            ..SendCaps::default()
        });
        let n = incident(&conn, "ann@example.test");
        let answer = Mail {
            kind: MailKind::Status,
            caused_by: Some(crate::incident::MessageRow(1)),
            ..mail("ann@example.test")
        };
        let t0 = Utc::now();
        let row = store::messages::insert_message(
            &conn,
            &store::NewMessage::incoming(crate::mail::MessageClass::Human, "x", b"x"),
            None,
            t0,
        )
        .expect("row");
        let answer = Mail {
            caused_by: Some(row),
            ..answer
        };
        assert!(queued(
            &enqueue(&conn, &deps, n, &answer, Pass::Real, t0).expect("q")
        ));
        assert!(queued(
            &enqueue(&conn, &deps, n, &answer, Pass::Real, t0).expect("q")
        ));
        let third = enqueue(&conn, &deps, n, &answer, Pass::Real, t0).expect("q");
        assert!(
            matches!(&third, Queued::Suppressed(r) if r.contains("answers to the customer's own mail on incident 1")),
            "{third:?}"
        );
        let progress = Mail {
            kind: MailKind::Progress,
            caused_by: None,
            ..mail("ann@example.test")
        };
        assert!(
            queued(&enqueue(&conn, &deps, n, &progress, Pass::Real, t0).expect("q")),
            "scheduled updates are not answers"
        );
    }

    #[test]
    fn the_global_cap_holds_customer_mail_and_tells_staff_once() {
        let conn = store::open_in_memory().expect("db");
        let mut deps = deps(SendCaps {
            windows: vec![],
            global_windows: vec![window(2, 3600)],
            ..SendCaps::default()
        });
        deps.config.staff.members = vec!["lead@example.test".into()];
        let t0 = Utc::now();
        let outcomes: Vec<Queued> = (0..5)
            .map(|i| {
                let to = format!("c{i}@example.test");
                let n = incident(&conn, &to);
                enqueue(&conn, &deps, n, &mail(&to), Pass::Real, t0).expect("enqueue")
            })
            .collect();
        assert_eq!(outcomes.iter().filter(|o| queued(o)).count(), 2);
        assert!(matches!(&outcomes[2], Queued::Suppressed(r) if r.contains("in all")));
        let notices: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'staff/capped' AND recipient = ?1",
                ["lead@example.test"],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(
            notices, 1,
            "staff are told once per window, not per held mail"
        );
    }
}
