//! Ingest: one IMAP batch becomes records, incidents and queued mail in ONE transaction.
//!
//! parse → classify → thread → store → policy → outbox, per message, each message under its own
//! savepoint: a message whose processing fails is rolled back alone and kept raw as
//! quarantined, and the batch goes on. The IMAP checkpoint moves in the same transaction, so a
//! crash before commit re-reads the batch and a crash after it never repeats anything.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::config::{
    CadenceConfig, EscalationConfig, IntakeConfig, RecurringConfig, SendCaps, StrangerPolicy,
    SupportConfig,
};
use crate::imap::Fetched;
use crate::lifecycle::{Actor, CustomerMail, Lifecycle, LifecycleError};
use crate::mail::{self, BounceReport, MailClass, ParsedMail, Quarantine, Rules};
use crate::outbox::{self, Draft, Queue, Queued};
use crate::policy::{self, IncidentFacts};
use crate::secret::Secret;
use crate::store::{self, Checkpoint, ImapOrigin, NewMessage, StoreError};
use crate::templates::Templates;
use crate::thread::{self, Candidate, Decision, Evidence};

pub struct Context<'a> {
    pub support: &'a SupportConfig,
    pub intake: &'a IntakeConfig,
    pub caps: &'a SendCaps,
    pub secret: &'a Secret,
    pub templates: &'a Templates,
    pub cadence: &'a CadenceConfig,
    pub escalation: &'a EscalationConfig,
    pub recurring: &'a RecurringConfig,
    /// Whether recorded messages should be marked/moved on the server afterwards.
    pub after_processing: bool,
}

impl Context<'_> {
    fn rules(&self) -> Rules<'_> {
        Rules {
            support: self.support,
            intake: self.intake,
        }
    }

    fn lifecycle(&self) -> Lifecycle<'_> {
        Lifecycle {
            queue: self.queue(),
            cadence: self.cadence,
            escalation: self.escalation,
            recurring: self.recurring,
        }
    }

    fn queue(&self) -> Queue<'_> {
        Queue {
            templates: self.templates,
            support: self.support,
            secret: self.secret,
            caps: self.caps,
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Opened {
        incident: i64,
    },
    Joined {
        incident: i64,
    },
    /// Automated or our own mail: recorded, never answered.
    Ignored {
        class: MailClass,
    },
    Duplicate {
        of: i64,
    },
    Quarantined {
        reason: String,
    },
    /// Human mail pointing at someone else's incident, kept for staff (`strangers = "hold"`).
    Held {
        reason: String,
    },
    /// This UID was recorded by an earlier run (its checkpoint was lost or rewound).
    AlreadyRecorded,
    /// The support copy of a mail we sent: proof the relay accepted it.
    Receipt {
        confirmed: bool,
    },
}

#[derive(Debug, Default)]
pub struct BatchReport {
    pub outcomes: Vec<(u32, Outcome)>,
    /// UIDs to mark seen / move now that the transaction has committed.
    pub finish: Vec<u32>,
    pub queued: usize,
}

pub fn ingest_batch(
    conn: &mut Connection,
    ctx: &Context<'_>,
    mailbox: &str,
    uidvalidity: u32,
    batch: &[Fetched],
    checkpoint_to: u32,
    now: DateTime<Utc>,
) -> Result<BatchReport, StoreError> {
    let mut report = BatchReport::default();
    let mut tx = conn.transaction()?;
    for fetched in batch {
        let origin = ImapOrigin {
            mailbox,
            uidvalidity,
            uid: fetched.uid,
        };
        let savepoint = tx.savepoint()?;
        let outcome = match ingest_one(&savepoint, ctx, origin, fetched, now) {
            Ok(outcome) => {
                savepoint.commit()?;
                outcome
            }
            Err(e) => {
                // Roll back whatever this message half-did, then keep it for a human.
                drop(savepoint);
                let reason = format!("could not be processed: {e}");
                let sha = store::sha256_hex(&fetched.raw);
                record_quarantine(&tx, origin, &fetched.raw, &sha, None, &reason, None, now)?;
                Outcome::Quarantined { reason }
            }
        };
        log_outcome(fetched.uid, &outcome);
        if matches!(outcome, Outcome::Opened { .. }) {
            report.queued += 1;
        }
        let finish = !matches!(
            outcome,
            Outcome::Quarantined { .. } | Outcome::Held { .. } | Outcome::AlreadyRecorded
        );
        if finish && ctx.after_processing {
            report.finish.push(fetched.uid);
        }
        report.outcomes.push((fetched.uid, outcome));
    }
    // Recorded until the server confirms the mark/move; a failed attempt is retried next pass.
    store::set_after_processing(&tx, mailbox, uidvalidity, &report.finish, "pending")?;
    store::set_checkpoint(
        &tx,
        mailbox,
        Checkpoint {
            uidvalidity,
            last_uid: checkpoint_to,
        },
        now,
    )?;
    tx.commit()?;
    Ok(report)
}

fn log_outcome(uid: u32, outcome: &Outcome) {
    match outcome {
        Outcome::Opened { incident } => tracing::info!(uid, incident, "new incident opened"),
        Outcome::Joined { incident } => tracing::info!(uid, incident, "message joined incident"),
        Outcome::Ignored { class } => {
            tracing::info!(
                uid,
                class = class.as_str(),
                "automated mail recorded, not answered"
            )
        }
        Outcome::Duplicate { of } => tracing::info!(uid, of, "duplicate delivery ignored"),
        Outcome::Quarantined { reason } => tracing::warn!(uid, reason, "message quarantined"),
        Outcome::Held { reason } => tracing::warn!(uid, reason, "message held for staff"),
        Outcome::AlreadyRecorded => tracing::debug!(uid, "already recorded"),
        Outcome::Receipt { confirmed: true } => {
            tracing::info!(uid, "receipt confirms a mail left in doubt")
        }
        Outcome::Receipt { confirmed: false } => tracing::debug!(uid, "receipt of a sent mail"),
    }
}

/// One incoming message as ingest sees it.
struct Incoming<'a> {
    origin: ImapOrigin<'a>,
    raw: &'a [u8],
    sha: String,
    dedupe_key: String,
    /// Set when only the headers were fetched: the real size.
    oversize: Option<u64>,
}

fn ingest_one(
    conn: &Connection,
    ctx: &Context<'_>,
    origin: ImapOrigin<'_>,
    fetched: &Fetched,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    if store::imap_uid_recorded(conn, origin)? {
        return Ok(Outcome::AlreadyRecorded);
    }
    let raw = fetched.raw.as_slice();
    let sha = store::sha256_hex(raw);
    let parsed = mail::parse(raw, &ctx.rules());
    if let Ok(mail) = &parsed {
        if let Some(outcome) = receipt(conn, ctx, mail, now)? {
            return Ok(outcome);
        }
    }
    let message_id = match &parsed {
        Ok(m) => m.message_id.clone(),
        Err(q) => q.message_id.clone(),
    };
    // Without a Message-ID the content itself is the identity (a UIDVALIDITY rescan finds it).
    let dedupe_key = match &message_id {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{sha}"),
    };
    if let Some(previous) = store::find_by_dedupe_key(conn, &dedupe_key)? {
        // The same mail delivered twice (to two of our addresses, or redelivered by an MTA)
        // differs only in the trace headers each delivery adds on top.
        let same = previous.sha256 == sha
            || mail::content_digest(&store::message_raw(conn, previous.id)?)
                == mail::content_digest(raw);
        if same {
            store::log_event(
                conn,
                now,
                previous.incident,
                Some(previous.id),
                "duplicate_delivery",
                &format!(
                    "UID {} is the same message as #{}; nothing done",
                    origin.uid, previous.id
                ),
            )?;
            return Ok(Outcome::Duplicate { of: previous.id });
        }
        // Same Message-ID, different bytes: a forgery or a broken client. Neither message
        // may be dropped, and the second must not act on the first one's incident.
        let reason = format!(
            "Message-ID <{}> was already recorded as message #{} with different content",
            message_id.as_deref().unwrap_or_default(),
            previous.id
        );
        let salvaged = parsed.as_ref().ok().map(salvage);
        record_quarantine(
            conn,
            origin,
            raw,
            &sha,
            None,
            &reason,
            salvaged.as_ref(),
            now,
        )?;
        return Ok(Outcome::Quarantined { reason });
    }
    let incoming = Incoming {
        origin,
        raw,
        sha,
        dedupe_key,
        oversize: fetched.headers_only.then_some(fetched.size),
    };
    match parsed {
        Err(q) => {
            record_quarantine(
                conn,
                origin,
                raw,
                &incoming.sha,
                Some(&incoming.dedupe_key),
                &q.reason,
                Some(&q),
                now,
            )?;
            Ok(Outcome::Quarantined { reason: q.reason })
        }
        Ok(mail) if mail.class != MailClass::Human => {
            record_automated(conn, ctx, &incoming, &mail, now)
        }
        Ok(mail) => record_human(conn, ctx, &incoming, &mail, now),
    }
}

/// Our own mail come back as its receipt copy: confirms the outbox row if it was still in
/// doubt. The copy itself is not stored again; the sent message is already on record.
fn receipt(
    conn: &Connection,
    ctx: &Context<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, StoreError> {
    let Some(id) = mail
        .message_id
        .as_deref()
        .filter(|_| mail.class == MailClass::Loop)
    else {
        return Ok(None);
    };
    if let Some(out) = store::unconfirmed_by_message_id(conn, id)? {
        let Some(raw) = out.raw.as_deref() else {
            return Ok(None);
        };
        let confirmed = store::record_sent(
            conn,
            &out,
            raw,
            &ctx.support.address,
            "receipt: its copy reached the support mailbox",
            now,
        )?;
        return Ok(Some(Outcome::Receipt { confirmed }));
    }
    if store::is_outbox_message_id(conn, id)? {
        return Ok(Some(Outcome::Receipt { confirmed: false }));
    }
    Ok(None)
}

fn salvage(mail: &ParsedMail) -> Quarantine {
    Quarantine {
        reason: String::new(),
        message_id: mail.message_id.clone(),
        from: Some(mail.from.address.clone()),
        subject: Some(mail.subject.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn record_quarantine(
    conn: &Connection,
    origin: ImapOrigin<'_>,
    raw: &[u8],
    sha: &str,
    dedupe_key: Option<&str>,
    reason: &str,
    salvaged: Option<&Quarantine>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = store::insert_message(
        conn,
        &NewMessage {
            direction: "in",
            message_id: salvaged.and_then(|q| q.message_id.as_deref()),
            dedupe_key,
            from_addr: salvaged.and_then(|q| q.from.as_deref()),
            subject: salvaged.and_then(|q| q.subject.as_deref()),
            class: "quarantined",
            class_reason: Some(reason),
            sha256: sha,
            raw,
            ..NewMessage::default()
        },
        Some(origin),
        now,
    )?;
    store::log_event(
        conn,
        now,
        None,
        Some(row),
        "quarantined",
        &format!("UID {}: {reason}", origin.uid),
    )
}

/// Records an incoming parsed message (and its attachment list) under `incident`.
fn record_message(
    conn: &Connection,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let references = mail.references.join(" ");
    let row = store::insert_message(
        conn,
        &NewMessage {
            direction: "in",
            incident,
            message_id: mail.message_id.as_deref(),
            dedupe_key: Some(&incoming.dedupe_key),
            from_addr: Some(&mail.from.address),
            subject: Some(&mail.subject),
            date_header: mail.date.as_deref(),
            in_reply_to: mail.in_reply_to.as_deref(),
            references: Some(&references),
            class: mail.class.as_str(),
            class_reason: (!mail.class_reason.is_empty()).then_some(mail.class_reason.as_str()),
            sha256: &incoming.sha,
            raw: incoming.raw,
            oversize: incoming.oversize,
            ..NewMessage::default()
        },
        Some(incoming.origin),
        now,
    )?;
    store::add_attachments(conn, row, &mail.attachments)?;
    if let Some(size) = incoming.oversize {
        store::log_event(
            conn,
            now,
            incident,
            Some(row),
            "oversize",
            &format!(
                "UID {}: message of {size} bytes is over [intake] max_message_size; only its \
                 headers were fetched and kept, the full message stays on the server",
                incoming.origin.uid
            ),
        )?;
    }
    Ok(row)
}

/// The incidents a message points at, strongest evidence first.
fn candidates(
    conn: &Connection,
    ctx: &Context<'_>,
    mail: &ParsedMail,
) -> Result<Vec<Candidate>, StoreError> {
    let mut found: Vec<(i64, Evidence)> = Vec::new();
    let mut push = |n: i64, via: Evidence| {
        if !found.iter().any(|(i, v)| *i == n && *v == via) {
            found.push((n, via));
        }
    };
    for id in &mail.referenced_ids {
        let incident = match store::incident_of_message_id(conn, id)? {
            Some(n) => Some(n),
            // One of our Message-IDs whose index row is missing still proves the incident.
            None => match ctx.secret.verify_message_id(id) {
                Some(n) if store::incident_exists(conn, n)? => Some(n),
                _ => None,
            },
        };
        if let Some(n) = incident {
            push(n, Evidence::Reference);
        }
    }
    if let Some(root) = &mail.thread_index_root {
        for n in store::incidents_of_thread_root(conn, root)? {
            push(n, Evidence::ThreadIndex);
        }
    }
    for token in ctx.secret.find_tokens(&mail.subject) {
        if store::incident_exists(conn, token.incident)? {
            push(token.incident, Evidence::SubjectToken);
        }
    }
    found
        .into_iter()
        .map(|(incident, via)| {
            let sender_is_participant = ctx.support.is_staff(&mail.from.address)
                || store::participant_role(conn, incident, &mail.from.address)?.is_some();
            Ok(Candidate {
                incident,
                via,
                sender_is_participant,
            })
        })
        .collect()
}

fn record_automated(
    conn: &Connection,
    ctx: &Context<'_>,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    if let Some(report) = &mail.bounce {
        return record_bounce(conn, ctx, incoming, mail, report, now);
    }
    // Linked to an incident only through its references, for the record; never answered.
    let incident = candidates(conn, ctx, mail)?
        .into_iter()
        .find(|c| c.via == Evidence::Reference)
        .map(|c| c.incident);
    let row = record_message(conn, incoming, mail, incident, now)?;
    store::log_event(
        conn,
        now,
        incident,
        Some(row),
        "automated_ignored",
        &format!(
            "{} mail from {} not answered ({})",
            mail.class.as_str(),
            mail.from.address,
            mail.class_reason
        ),
    )?;
    Ok(Outcome::Ignored { class: mail.class })
}

/// A bounce: linked to the incident of the mail that bounced, and every recipient the report
/// says failed for good is marked undeliverable, but only if we really sent that mail to that
/// address, so a forged or misdirected report cannot silence anyone else.
fn record_bounce(
    conn: &Connection,
    ctx: &Context<'_>,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    report: &BounceReport,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let mut ours: Vec<store::SentMail> = Vec::new();
    for id in &report.original_ids {
        if let Some(sent) = store::sent_mail_by_message_id(conn, id)? {
            ours.push(sent);
        }
    }
    let incident = ours.first().map(|s| s.incident).or_else(|| {
        report
            .original_ids
            .iter()
            .find_map(|id| ctx.secret.verify_message_id(id))
    });
    let row = record_message(conn, incoming, mail, incident, now)?;
    let failed: Vec<&String> = if report.is_dsn {
        report.failed.iter().collect()
    } else {
        // An old-style bounce names no recipient in a form a program can trust; it is about
        // the mail it quotes, so that mail's recipient is the one that failed.
        ours.iter().map(|s| &s.recipient).collect()
    };
    let mut marked = Vec::new();
    for address in failed {
        let Some(sent) = ours.iter().find(|s| &s.recipient == address) else {
            continue;
        };
        let reason = format!(
            "{} bounced ({})",
            sent.kind,
            if report.is_dsn {
                "delivery status report: failed"
            } else {
                "mailer-daemon notice"
            }
        );
        if store::mark_undeliverable(conn, address, &reason, Some(sent.incident), row, now)? {
            marked.push(address.clone());
            store::log_event(
                conn,
                now,
                Some(sent.incident),
                Some(row),
                "recipient_undeliverable",
                &format!(
                    "{address} marked undeliverable: {reason}; no automatic mail goes there \
                     until a human reply from it arrives or staff clear it"
                ),
            )?;
        }
    }
    let detail = match (&incident, ours.is_empty()) {
        (Some(n), false) => format!(
            "bounce from {} about our mail to incident #{n}; failed: {}; delayed: {}",
            mail.from.address,
            list_or_none(&report.failed),
            list_or_none(&report.delayed)
        ),
        (Some(n), true) => format!(
            "bounce from {} names a mail of incident #{n} we have no record of sending",
            mail.from.address
        ),
        (None, _) => format!(
            "bounce from {} about mail we did not send ({}); not answered",
            mail.from.address,
            if report.original_ids.is_empty() {
                "no Message-ID found in it".to_string()
            } else {
                format!("original <{}>", report.original_ids.join(">, <"))
            }
        ),
    };
    store::log_event(conn, now, incident, Some(row), "bounce", &detail)?;
    Ok(Outcome::Ignored {
        class: MailClass::Bounce,
    })
}

fn list_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn record_human(
    conn: &Connection,
    ctx: &Context<'_>,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    // A person writing from an address that bounced proves it works again: cleared before
    // anything is decided, so this very mail can be answered.
    if store::clear_undeliverable(conn, &mail.from.address)? {
        store::log_event(
            conn,
            now,
            None,
            None,
            "undeliverable_cleared",
            &format!(
                "{} wrote to us, so it is deliverable again",
                mail.from.address
            ),
        )?;
    }
    let outcome = match thread::decide(&candidates(conn, ctx, mail)?) {
        Decision::Join { incident, .. } if too_late_to_reopen(conn, ctx, incident, now)? => {
            open_incident(conn, ctx, incoming, mail, &Origin::Continues(incident), now)?
        }
        Decision::Join { incident, via } => {
            join_incident(conn, ctx, incoming, mail, incident, via, now)?
        }
        Decision::Open { stranger_to }
            if !stranger_to.is_empty() && ctx.intake.strangers == StrangerPolicy::Hold =>
        {
            hold_for_staff(conn, incoming, mail, &stranger_to, now)?
        }
        Decision::Open { stranger_to } => open_incident(
            conn,
            ctx,
            incoming,
            mail,
            &Origin::Strangers(stranger_to),
            now,
        )?,
    };
    Ok(outcome)
}

fn join_incident(
    conn: &Connection,
    ctx: &Context<'_>,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: i64,
    via: Evidence,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let row = record_message(conn, incoming, mail, Some(incident), now)?;
    index_ids(conn, mail, incident)?;
    // Only the customer widens the circle: someone they copied in cannot copy in others.
    let role = store::participant_role(conn, incident, &mail.from.address)?;
    if matches!(role.as_deref(), Some("customer" | "reply-to")) {
        add_cc_participants(conn, ctx, incident, mail)?;
    }
    store::touch_incident(conn, incident, now)?;
    let how = match via {
        Evidence::Reference => "In-Reply-To/References",
        Evidence::ThreadIndex => "Outlook's Thread-Index",
        Evidence::SubjectToken => "the subject token",
    };
    store::log_event(
        conn,
        now,
        Some(incident),
        Some(row),
        "customer_reply",
        &format!("{} replied; joined via {how}", mail.from.address),
    )?;
    answer_reply(conn, ctx, incident, row, mail, now)?;
    Ok(Outcome::Joined { incident })
}

/// What a reply from the incident's people causes: on an open incident an immediate status
/// answer (and a new cadence if they asked for one); while waiting on them, updates resume;
/// after resolution the incident reopens and they are told. Staff replies cause no mail.
fn answer_reply(
    conn: &Connection,
    ctx: &Context<'_>,
    incident: i64,
    row: i64,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ctx.support.is_staff(&mail.from.address) {
        return Ok(());
    }
    let life = ctx.lifecycle();
    let who = Actor::Customer(&mail.from.address);
    let Some(current) = store::incident(conn, incident)? else {
        return Ok(());
    };
    let result = match current.state.as_str() {
        "resolved" | "closed" => life.reopen(conn, who, incident, Some(row), now).map(|_| ()),
        _ => status_answer(conn, &life, who, &current, row, mail, now),
    };
    match result {
        Ok(()) => Ok(()),
        Err(LifecycleError::Store(e)) => Err(e),
        // A refused transition is recorded, never fatal to intake.
        Err(e) => store::log_event(
            conn,
            now,
            Some(incident),
            Some(row),
            "reply_not_acted_on",
            &e.to_string(),
        ),
    }
}

fn status_answer(
    conn: &Connection,
    life: &Lifecycle<'_>,
    who: Actor<'_>,
    current: &store::Incident,
    row: i64,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let incident = current.number;
    if current.state == "waiting" {
        life.resume(conn, who, incident, now)?;
    }
    let changed = match crate::pace::requested_cadence(&mail.summary) {
        Some(wanted) => Some(life.set_cadence(conn, who, incident, wanted, now)?),
        None => None,
    };
    let current = crate::lifecycle::load(conn, incident)?;
    let promise = current
        .next_update_at
        .as_deref()
        .and_then(|t| store::parse_ts(t).ok());
    let note = store::latest_note(conn, incident)?.unwrap_or_default();
    life.mail_customer(
        conn,
        &current,
        CustomerMail {
            kind: "status",
            promise,
            caused_by: Some(row),
        },
        |d| {
            d.note = note;
            d.cadence_changed = changed.is_some();
        },
        now,
    )?;
    Ok(())
}

fn index_ids(conn: &Connection, mail: &ParsedMail, incident: i64) -> Result<(), StoreError> {
    if let Some(id) = &mail.message_id {
        store::index_message_id(conn, id, incident)?;
    }
    if let Some(root) = &mail.thread_index_root {
        store::index_thread_root(conn, root, incident)?;
    }
    Ok(())
}

/// `strangers = "hold"`: the message is kept, unanswered, in quarantine for staff to look at.
fn hold_for_staff(
    conn: &Connection,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    stranger_to: &[i64],
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let reason = format!(
        "held for staff: {} pointed at incident {} but is not a participant there",
        mail.from.address,
        incident_list(stranger_to)
    );
    let salvaged = salvage(mail);
    record_quarantine(
        conn,
        incoming.origin,
        incoming.raw,
        &incoming.sha,
        Some(&incoming.dedupe_key),
        &reason,
        Some(&salvaged),
        now,
    )?;
    Ok(Outcome::Held { reason })
}

fn incident_list(list: &[i64]) -> String {
    list.iter()
        .map(|n| format!("#{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn add_cc_participants(
    conn: &Connection,
    ctx: &Context<'_>,
    incident: i64,
    mail: &ParsedMail,
) -> Result<(), StoreError> {
    for cc in &mail.cc {
        if !ctx.support.is_own_address(cc) {
            store::add_participant(conn, incident, cc, "cc")?;
        }
    }
    Ok(())
}

/// Why a new incident is opened besides a fresh complaint.
enum Origin {
    /// The sender pointed at these incidents without taking part in them.
    Strangers(Vec<i64>),
    /// A reply to an incident resolved longer ago than `reopen_within`: a new incident that
    /// continues it.
    Continues(i64),
}

/// Whether a reply to `incident` comes too long after its resolution to reopen it.
fn too_late_to_reopen(
    conn: &Connection,
    ctx: &Context<'_>,
    incident: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(current) = store::incident(conn, incident)? else {
        return Ok(false);
    };
    if !matches!(current.state.as_str(), "resolved" | "closed") {
        return Ok(false);
    }
    let ended = current
        .resolved_at
        .as_deref()
        .unwrap_or(&current.updated_at);
    let window = chrono::Duration::from_std(ctx.cadence.reopen_within).unwrap_or_default();
    Ok(store::parse_ts(ended).is_ok_and(|t| t + window < now))
}

fn open_incident(
    conn: &Connection,
    ctx: &Context<'_>,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let no_strangers = Vec::new();
    let stranger_to = match origin {
        Origin::Strangers(list) => list,
        Origin::Continues(_) => &no_strangers,
    };
    let (next_update, _) = ctx.cadence.promise(now, ctx.cadence.default);
    // "Fwd: AW: Order broken [FU-3-…]" is about "Order broken": prefixes and copied tokens go.
    let mut subject = mail::base_subject(&mail.subject);
    if subject.is_empty() {
        subject = "(no subject)".into();
    }
    let incident = store::create_incident(
        conn,
        &store::NewIncident {
            subject: &subject,
            summary: &mail.summary,
            customer_address: &mail.from.address,
            customer_name: mail.from.name.as_deref(),
            cadence: ctx.cadence.default,
            next_update_at: next_update,
        },
        |n| ctx.secret.incident_token(n),
        now,
    )?;
    store::add_participant(conn, incident, &mail.from.address, "customer")?;
    if let Some(reply_to) = &mail.reply_to {
        if !ctx.support.is_own_address(&reply_to.address) {
            store::add_participant(conn, incident, &reply_to.address, "reply-to")?;
        }
    }
    add_cc_participants(conn, ctx, incident, mail)?;
    let row = record_message(conn, incoming, mail, Some(incident), now)?;
    index_ids(conn, mail, incident)?;
    // Outlook files our replies by Thread-Index: continue the customer's conversation if they
    // started one, else start ours.
    let thread_root = mail
        .thread_index_root
        .clone()
        .unwrap_or_else(|| ctx.secret.thread_root(incident));
    store::index_thread_root(conn, &thread_root, incident)?;
    store::log_event(
        conn,
        now,
        Some(incident),
        Some(row),
        "incident_opened",
        &format!("opened by {}: {}", mail.from.address, subject),
    )?;
    if !stranger_to.is_empty() {
        store::log_event(
            conn,
            now,
            Some(incident),
            Some(row),
            "stranger_reference",
            &format!(
                "{} pointed at incident {} but is not a participant there; opened this incident instead",
                mail.from.address,
                incident_list(stranger_to)
            ),
        )?;
    }
    let facts = IncidentFacts {
        number: incident,
        token: &ctx.secret.incident_token(incident),
        subject: &subject,
        summary: &mail.summary,
        opened: now,
        customer: &mail.from,
        cadence: ctx.cadence.default,
        next_update,
        tz: ctx.cadence.timezone,
    };
    ctx.lifecycle()
        .recurring_customer(conn, incident, &mail.from.address, now)?;
    if let Origin::Continues(previous) = origin {
        continue_incident(conn, ctx, incident, *previous, row, next_update, now)?;
    } else {
        acknowledge(conn, ctx, &facts, row, mail, thread_root, now)?;
    }
    Ok(Outcome::Opened { incident })
}

/// The new incident continues an old one: linked both ways in the event log, and instead of an
/// acknowledgement the customer gets the `reopened` mail naming the old incident.
fn continue_incident(
    conn: &Connection,
    ctx: &Context<'_>,
    incident: i64,
    previous: i64,
    row: i64,
    next_update: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store::set_previous_incident(conn, incident, previous)?;
    let detail = format!("continues incident #{previous}, resolved too long ago to reopen");
    store::log_event(conn, now, Some(incident), Some(row), "continues", &detail)?;
    store::log_event(
        conn,
        now,
        Some(previous),
        Some(row),
        "continued",
        &format!("a late reply opened incident #{incident}"),
    )?;
    let Some(current) = store::incident(conn, incident)? else {
        return Ok(());
    };
    ctx.lifecycle().mail_customer(
        conn,
        &current,
        CustomerMail {
            kind: "reopened",
            promise: Some(next_update),
            caused_by: Some(row),
        },
        |_| {},
        now,
    )?;
    Ok(())
}

fn acknowledge(
    conn: &Connection,
    ctx: &Context<'_>,
    facts: &IncidentFacts<'_>,
    row: i64,
    mail: &ParsedMail,
    thread_root: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let incident = facts.number;
    let recipient = match policy::acknowledgement_recipient(mail, ctx.support) {
        Ok(to) => to,
        Err(why) => {
            return store::log_event(
                conn,
                now,
                Some(incident),
                Some(row),
                "acknowledgement_skipped",
                &why,
            );
        }
    };
    let mut references = mail.references.clone();
    if let Some(id) = &mail.message_id {
        references.retain(|r| r != id);
        references.push(id.clone());
    }
    let queued = outbox::enqueue(
        conn,
        &Draft {
            incident,
            kind: "acknowledgement",
            caused_by: Some(row),
            recipient: &recipient.address,
            recipient_name: recipient.name.as_deref(),
            in_reply_to: mail.message_id.as_deref(),
            references,
            data: policy::mail_data(facts, ctx.support),
            thread_root: Some(thread_root),
        },
        &ctx.queue(),
        now,
    )?;
    store::record_promise(conn, incident, "acknowledgement", facts.next_update, now)?;
    if let Queued::Suppressed(reason) = queued {
        tracing::info!(incident, reason, "acknowledgement suppressed");
    }
    Ok(())
}
