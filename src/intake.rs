//! Intake: one IMAP batch becomes records, incidents and queued mail in ONE transaction.
//!
//! Per message: parse and classify ([`crate::mail`]), recognise receipts and duplicates, find
//! its incident ([`crate::thread`]), record it, and let the decision core say what it causes
//! ([`crate::apply::act`]). Each message runs under its own savepoint: one whose processing
//! fails is rolled back alone and kept raw as quarantined, and the batch goes on. The IMAP
//! checkpoint moves in the same transaction, so a crash before commit re-reads the batch and a
//! crash after it never repeats anything.
//!
//! The choices along the way are plain functions ([`route`], [`too_late_to_reopen`],
//! [`undeliverable_marks`]), tested without a database below.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::apply::{act, act_on, ActError};
use crate::clock;
use crate::config::{StrangerPolicy, Treatment};
use crate::deps::Deps;
use crate::digest::sha256_hex;
use crate::imap::Fetched;
use crate::incident::decide::{Opening, Repeat};
use crate::incident::{
    opening, policy, Actor, Event, EventKind, Facts, Incident, IncidentNo, MessageRow, NewEvent,
    Role, Written,
};
use crate::mail::{
    self, BounceReport, Context, MessageClass, OwnWords, ParsedMail, Quarantine, Trust,
};
use crate::outbox::Pass;
use crate::store::checkpoints::{self, AfterProcessing, Checkpoint};
use crate::store::outbox::SentMail;
use crate::store::{self, ImapOrigin, NewMessage, StoreError};
use crate::templates::{AttachmentData, HeldData};
use crate::thread::{self, Candidate, Decision, Evidence};

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Opened {
        incident: IncidentNo,
    },
    Joined {
        incident: IncidentNo,
    },
    /// Automated or our own mail: recorded, never answered.
    Ignored {
        class: MessageClass,
    },
    Duplicate {
        of: MessageRow,
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
    /// Mails queued by this batch (the sender has work when above zero).
    pub queued: usize,
}

/// Where the batch came from on the server.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    /// The UID the checkpoint moves to with this batch.
    pub checkpoint_to: u32,
    /// Whether recorded messages are marked/moved on the server afterwards.
    pub after_processing: bool,
}

pub fn ingest_batch(
    conn: &mut Connection,
    deps: &Deps,
    source: Source<'_>,
    batch: &[Fetched],
    now: DateTime<Utc>,
) -> Result<BatchReport, StoreError> {
    let mut report = BatchReport::default();
    let mut tx = conn.transaction()?;
    for fetched in batch {
        let origin = ImapOrigin {
            mailbox: source.mailbox,
            uidvalidity: source.uidvalidity,
            uid: fetched.uid,
        };
        let savepoint = tx.savepoint()?;
        let mut queued = 0;
        let outcome = match crate::contain::caught(|| {
            ingest_one(&savepoint, deps, origin, fetched, now, &mut queued)
        })
        .unwrap_or_else(|panic| Err(ActError::Panic(panic)))
        {
            Ok(outcome) => {
                savepoint.commit()?;
                report.queued += queued;
                outcome
            }
            Err(e) => {
                // Roll back whatever this message half-did, then keep it for a human.
                drop(savepoint);
                if let ActError::Panic(panic) = &e {
                    tracing::error!(uid = fetched.uid, panic = %panic, "a bug stopped work on this message; it is kept for staff and intake goes on");
                }
                let reason = format!("could not be processed: {}", crate::errors::Chain(&e));
                let sha = sha256_hex(fetched.raw.as_slice());
                record_quarantine(
                    &tx,
                    origin,
                    fetched.raw.as_slice(),
                    &sha,
                    None,
                    &reason,
                    None,
                    now,
                )?;
                Outcome::Quarantined { reason }
            }
        };
        log_outcome(fetched.uid, &outcome);
        let finish = !matches!(
            outcome,
            Outcome::Quarantined { .. } | Outcome::Held { .. } | Outcome::AlreadyRecorded
        );
        if finish && source.after_processing {
            report.finish.push(fetched.uid);
        }
        report.outcomes.push((fetched.uid, outcome));
    }
    // Recorded until the server confirms the mark/move; a failed attempt is retried next pass.
    checkpoints::set_after_processing(
        &tx,
        source.mailbox,
        source.uidvalidity,
        &report.finish,
        AfterProcessing::Pending,
    )?;
    checkpoints::set_checkpoint(
        &tx,
        source.mailbox,
        Checkpoint {
            uidvalidity: source.uidvalidity,
            last_uid: source.checkpoint_to,
        },
        now,
    )?;
    tx.commit()?;
    Ok(report)
}

fn log_outcome(uid: u32, outcome: &Outcome) {
    match outcome {
        Outcome::Opened { incident } => {
            tracing::info!(uid, incident = incident.0, "new incident opened")
        }
        Outcome::Joined { incident } => {
            tracing::info!(uid, incident = incident.0, "message joined incident")
        }
        Outcome::Ignored { class } => {
            tracing::info!(uid, class = %class, "automated mail recorded, not answered")
        }
        Outcome::Duplicate { of } => tracing::info!(uid, of = of.0, "duplicate delivery ignored"),
        Outcome::Quarantined { reason } => tracing::warn!(uid, reason, "message quarantined"),
        Outcome::Held { reason } => tracing::warn!(uid, reason, "message held for staff"),
        Outcome::AlreadyRecorded => tracing::debug!(uid, "already recorded"),
        Outcome::Receipt { confirmed: true } => {
            tracing::info!(uid, "receipt confirms a mail left in doubt")
        }
        Outcome::Receipt { confirmed: false } => tracing::debug!(uid, "receipt of a sent mail"),
    }
}

/// One incoming message as intake sees it.
struct Incoming<'a> {
    origin: ImapOrigin<'a>,
    raw: &'a [u8],
    sha: String,
    dedupe_key: String,
    /// Set when only the headers were fetched: the real size.
    oversize: Option<u64>,
}

/// The identity a message is deduplicated by: its Message-ID, or without one its content (a
/// UIDVALIDITY rescan then still finds it).
pub fn dedupe_key(message_id: Option<&str>, sha: &str) -> String {
    match message_id {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{sha}"),
    }
}

fn ingest_one(
    conn: &Connection,
    deps: &Deps,
    origin: ImapOrigin<'_>,
    fetched: &Fetched,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    if store::messages::imap_uid_recorded(conn, origin)? {
        return Ok(Outcome::AlreadyRecorded);
    }
    let raw = fetched.raw.as_slice();
    let sha = sha256_hex(raw);
    let parsed = mail::parse(raw, &deps.config);
    if let Ok(mail) = &parsed {
        for note in &mail.charsets {
            tracing::info!(uid = origin.uid, charset = %note, "charset missing or wrong; decoded as detected");
        }
    }
    if let Ok(mail) = &parsed {
        if let Some(outcome) = receipt(conn, deps, mail, now)? {
            return Ok(outcome);
        }
    }
    let message_id = match &parsed {
        Ok(m) => m.message_id.clone(),
        Err(q) => q.message_id.clone(),
    };
    let dedupe_key = dedupe_key(message_id.as_deref(), &sha);
    if let Some(previous) = store::messages::find_by_dedupe_key(conn, &dedupe_key)? {
        // The same mail delivered twice (to two of our addresses, or redelivered by an MTA)
        // differs only in the trace headers each delivery adds on top.
        // A message whose raw text retention dropped cannot be compared: it was recorded and
        // answered long ago, so it is taken as the same (never a second acknowledgement).
        let same = previous.sha256 == sha
            || store::messages::raw_if_kept(conn, previous.id)?
                .is_none_or(|kept| mail::content_digest(&kept) == mail::content_digest(raw));
        if same {
            store::events::log(
                conn,
                &NewEvent {
                    incident: previous.incident,
                    message: Some(previous.id),
                    kind: EventKind::DuplicateDelivery,
                    actor: Actor::Daemon,
                    detail: format!(
                        "UID {} is the same message as #{}; nothing done",
                        origin.uid, previous.id
                    ),
                },
                now,
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
        Ok(mail) if mail.class != MessageClass::Human => {
            record_automated(conn, deps, &incoming, &mail, now, queued)
        }
        Ok(mail) => record_human(conn, deps, &incoming, &mail, now, queued),
    }
}

/// Our own mail come back as its receipt copy: confirms the outbox row if it was still in
/// doubt. The copy itself is not stored again; the sent message is already on record.
fn receipt(
    conn: &Connection,
    deps: &Deps,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, StoreError> {
    let Some(id) = mail
        .message_id
        .as_deref()
        .filter(|_| mail.class == MessageClass::Loop)
    else {
        return Ok(None);
    };
    if let Some(out) = store::outbox::unconfirmed_by_message_id(conn, id)? {
        let Some(raw) = out.raw.as_deref() else {
            return Ok(None);
        };
        let confirmed = crate::outbox::send::record_sent(
            conn,
            &out,
            raw,
            &deps.config.support.address,
            "receipt: its copy reached the support mailbox",
            now,
        )?;
        return Ok(Some(Outcome::Receipt { confirmed }));
    }
    if store::outbox::by_message_id(conn, id)?.is_some() {
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
) -> Result<MessageRow, StoreError> {
    let row = store::messages::insert_message(
        conn,
        &NewMessage {
            message_id: salvaged.and_then(|q| q.message_id.as_deref()),
            dedupe_key,
            from_addr: salvaged.and_then(|q| q.from.as_deref()),
            subject: salvaged.and_then(|q| q.subject.as_deref()),
            class_reason: Some(reason),
            ..NewMessage::incoming(MessageClass::Quarantined, sha, raw)
        },
        Some(origin),
        now,
    )?;
    store::events::log(
        conn,
        &NewEvent {
            incident: None,
            message: Some(row),
            kind: EventKind::Quarantined,
            actor: Actor::Daemon,
            detail: format!("UID {}: {reason}", origin.uid),
        },
        now,
    )?;
    Ok(row)
}

/// Records an incoming parsed message (and its attachment list) under `incident`.
fn record_message(
    conn: &Connection,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: Option<IncidentNo>,
    now: DateTime<Utc>,
) -> Result<MessageRow, StoreError> {
    record_message_as(conn, incoming, mail, incident, mail.class, now)
}

/// As [`record_message`], in `class` (a staff reply is the staff's, not the customer's).
fn record_message_as(
    conn: &Connection,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: Option<IncidentNo>,
    class: MessageClass,
    now: DateTime<Utc>,
) -> Result<MessageRow, StoreError> {
    let references = mail.references.join(" ");
    let row = store::messages::insert_message(
        conn,
        &NewMessage {
            incident,
            message_id: mail.message_id.as_deref(),
            dedupe_key: Some(&incoming.dedupe_key),
            from_addr: Some(&mail.from.address),
            subject: Some(&mail.subject),
            date_header: mail.date.as_deref(),
            in_reply_to: mail.in_reply_to.as_deref(),
            references: Some(&references),
            class_reason: (!mail.class_reason.is_empty()).then_some(mail.class_reason.as_str()),
            oversize: incoming.oversize,
            trust: Some(&mail.trust),
            ..NewMessage::incoming(class, &incoming.sha, incoming.raw)
        },
        Some(incoming.origin),
        now,
    )?;
    store::messages::add_attachments(conn, row, &mail.attachments)?;
    if let Some(size) = incoming.oversize {
        store::events::log(
            conn,
            &NewEvent {
                incident,
                message: Some(row),
                kind: EventKind::Oversize,
                actor: Actor::Daemon,
                detail: format!(
                    "UID {}: message of {size} bytes is over [intake] max_message_size; only its \
                     headers were fetched and kept, the full message stays on the server",
                    incoming.origin.uid
                ),
            },
            now,
        )?;
    }
    Ok(row)
}

/// The incidents a message points at, strongest evidence first.
fn candidates(
    conn: &Connection,
    deps: &Deps,
    mail: &ParsedMail,
) -> Result<Vec<Candidate>, StoreError> {
    let mut found: Vec<(IncidentNo, Evidence)> = Vec::new();
    let mut push = |n: IncidentNo, via: Evidence| {
        if !found.iter().any(|(i, v)| *i == n && *v == via) {
            found.push((n, via));
        }
    };
    for id in &mail.referenced_ids {
        let incident = match store::messages::incident_of_message_id(conn, id)? {
            Some(n) => Some(n),
            // One of our Message-IDs whose index row is missing still proves the incident.
            None => match deps.secret.verify_message_id(id).map(IncidentNo) {
                Some(n) if store::incidents::exists(conn, n)? => Some(n),
                _ => None,
            },
        };
        if let Some(n) = incident {
            push(n, Evidence::Reference);
        }
    }
    if let Some(root) = &mail.thread_index_root {
        for n in store::messages::incidents_of_thread_root(conn, root)? {
            push(n, Evidence::ThreadIndex);
        }
    }
    for token in deps.secret.find_tokens(&mail.subject) {
        let n = IncidentNo(token.incident);
        if store::incidents::exists(conn, n)? {
            push(n, Evidence::SubjectToken);
        }
    }
    found
        .into_iter()
        .map(|(incident, via)| {
            // Staff act on an incident through a signed reply to a notification (see
            // `record_staff`), not by pointing at it.
            let sender_is_participant =
                store::incidents::participant_role(conn, incident, &mail.from.address)?.is_some();
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
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    if let Some(report) = &mail.bounce {
        return record_bounce(conn, deps, incoming, mail, report, now, queued);
    }
    // Linked to an incident only through its references, for the record; never answered.
    let incident = candidates(conn, deps, mail)?
        .into_iter()
        .find(|c| c.via == Evidence::Reference)
        .map(|c| c.incident);
    let row = record_message(conn, incoming, mail, incident, now)?;
    store::events::log(
        conn,
        &NewEvent {
            incident,
            message: Some(row),
            kind: EventKind::AutomatedIgnored,
            actor: Actor::Daemon,
            detail: format!(
                "{} mail from {} not answered ({})",
                mail.class, mail.from.address, mail.class_reason
            ),
        },
        now,
    )?;
    Ok(Outcome::Ignored { class: mail.class })
}

/// An address a bounce says failed for good, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliverableMark {
    pub address: String,
    pub incident: IncidentNo,
    pub reason: String,
}

/// Which recipients a bounce marks undeliverable: only those we really sent the bounced mail
/// to, so a forged or misdirected report cannot silence anyone else. A machine-readable report
/// names them (`Action: failed`); an old-style notice names nobody a program can trust, so it
/// is about the recipient of the mail it quotes.
pub fn undeliverable_marks(report: &BounceReport, ours: &[SentMail]) -> Vec<UndeliverableMark> {
    let failed: Vec<&String> = if report.is_dsn {
        report.failed.iter().collect()
    } else {
        ours.iter().map(|s| &s.recipient).collect()
    };
    let mut marks: Vec<UndeliverableMark> = Vec::new();
    for address in failed {
        let Some(sent) = ours.iter().find(|s| &s.recipient == address) else {
            continue;
        };
        if marks.iter().any(|m| &m.address == address) {
            continue;
        }
        marks.push(UndeliverableMark {
            address: address.clone(),
            incident: sent.incident,
            reason: format!(
                "{} bounced ({})",
                sent.kind,
                if report.is_dsn {
                    "delivery status report: failed"
                } else {
                    "mailer-daemon notice"
                }
            ),
        });
    }
    marks
}

/// A bounce: linked to the incident of the mail that bounced, and the recipients it says failed
/// marked undeliverable (see [`undeliverable_marks`]); staff are told.
fn record_bounce(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    report: &BounceReport,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let mut ours: Vec<SentMail> = Vec::new();
    for id in &report.original_ids {
        if let Some(sent) = store::outbox::by_message_id(conn, id)? {
            ours.push(sent);
        }
    }
    let incident = ours.first().map(|s| s.incident).or_else(|| {
        report
            .original_ids
            .iter()
            .find_map(|id| deps.secret.verify_message_id(id).map(IncidentNo))
    });
    let row = record_message(conn, incoming, mail, incident, now)?;
    for mark in undeliverable_marks(report, &ours) {
        if store::outbox::mark_undeliverable(
            conn,
            &mark.address,
            &mark.reason,
            Some(mark.incident),
            row,
            now,
        )? {
            store::events::log(
                conn,
                &NewEvent {
                    incident: Some(mark.incident),
                    message: Some(row),
                    kind: EventKind::RecipientUndeliverable,
                    actor: Actor::Daemon,
                    detail: format!(
                        "{} marked undeliverable: {}; no automatic mail goes there until a \
                         human reply from it arrives or staff clear it",
                        mark.address, mark.reason
                    ),
                },
                now,
            )?;
            let event = Event::Undeliverable {
                address: mark.address.clone(),
                reason: mark.reason.clone(),
            };
            let (_, applied) = act(conn, deps, mark.incident, &event, Pass::Real, now)?;
            *queued += applied.queued();
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
    store::events::log(
        conn,
        &NewEvent {
            incident,
            message: Some(row),
            kind: EventKind::Bounce,
            actor: Actor::Daemon,
            detail,
        },
        now,
    )?;
    Ok(Outcome::Ignored {
        class: MessageClass::Bounce,
    })
}

fn list_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// What to do with a person's mail once its incident candidates are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// It answers this incident.
    Join { incident: IncidentNo, via: Evidence },
    /// A new incident; `continues` when it answers one resolved too long ago to reopen, and
    /// `stranger_to` lists incidents it pointed at without its sender taking part.
    Open {
        continues: Option<IncidentNo>,
        stranger_to: Vec<IncidentNo>,
    },
    /// Kept for staff in quarantine (`[intake] strangers = "hold"`).
    Hold { stranger_to: Vec<IncidentNo> },
}

/// Routes a person's mail: threading's decision, the stranger policy, and whether the incident
/// it answers is too long over to reopen (`too_late` is asked only about a joined incident).
pub fn route(
    decision: Decision,
    strangers: StrangerPolicy,
    too_late: impl FnOnce(IncidentNo) -> bool,
) -> Route {
    match decision {
        Decision::Join { incident, .. } if too_late(incident) => Route::Open {
            continues: Some(incident),
            stranger_to: Vec::new(),
        },
        Decision::Join { incident, via } => Route::Join { incident, via },
        Decision::Open { stranger_to }
            if !stranger_to.is_empty() && strangers == StrangerPolicy::Hold =>
        {
            Route::Hold { stranger_to }
        }
        Decision::Open { stranger_to } => Route::Open {
            continues: None,
            stranger_to,
        },
    }
}

/// Whether a reply to `incident` comes too long after its resolution to reopen it.
pub fn too_late_to_reopen(
    incident: &Incident,
    reopen_within: Duration,
    now: DateTime<Utc>,
) -> bool {
    if !incident.state.is_over() {
        return false;
    }
    let ended = incident.resolved_at.unwrap_or(incident.updated_at);
    clock::after(ended, reopen_within) < now
}

fn record_human(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let treatment = policy::for_sender(mail.trust.level, &deps.config.trust);
    // A person writing from an address that bounced proves it works again, if the receiving
    // server proved it is them (anyone can write any From): cleared before anything is
    // decided, so this very mail can be answered.
    if treatment == Treatment::Full && store::outbox::clear_undeliverable(conn, &mail.from.address)?
    {
        store::events::log(
            conn,
            &NewEvent {
                incident: None,
                message: None,
                kind: EventKind::UndeliverableCleared,
                actor: Actor::Daemon,
                detail: format!(
                    "{} wrote to us, so it is deliverable again",
                    mail.from.address
                ),
            },
            now,
        )?;
    }
    if deps.config.staff.is_member(&mail.from.address) {
        if let Some(outcome) = record_staff(conn, deps, incoming, mail, now, queued)? {
            return Ok(outcome);
        }
    }
    let decision = thread::decide(&candidates(conn, deps, mail)?);
    let mut lookup_failed = None;
    let route = route(
        decision,
        deps.config.intake.strangers,
        |n| match store::incidents::incident(conn, n) {
            Ok(Some(incident)) => {
                too_late_to_reopen(&incident, deps.config.cadence.reopen_within, now)
            }
            Ok(None) => false,
            Err(e) => {
                lookup_failed = Some(e);
                false
            }
        },
    );
    if let Some(e) = lookup_failed {
        return Err(e.into());
    }
    if treatment == Treatment::Hold {
        let answers = match route {
            Route::Join { incident, .. } => Some(incident),
            _ => None,
        };
        return held_by_trust(conn, deps, incoming, mail, answers, now, queued);
    }
    match route {
        Route::Join { incident, via } => {
            join(conn, deps, incoming, mail, incident, via, now, queued)
        }
        Route::Hold { stranger_to } => Ok(hold_for_staff(conn, incoming, mail, &stranger_to, now)?),
        Route::Open {
            continues,
            stranger_to,
        } => open(
            conn,
            deps,
            incoming,
            mail,
            continues,
            stranger_to,
            now,
            queued,
        ),
    }
}

/// `[trust]` says to keep this sender's mail for staff (by default: the receiving server's
/// check failed, or it judged the mail spam). Recorded in quarantine, nothing sent; if it
/// answers an incident, staff on that incident are told.
#[allow(clippy::too_many_arguments)]
fn held_by_trust(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    answers: Option<IncidentNo>,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let why = format!(
        "the sender check {} ({})",
        mail.trust.level, mail.trust.reason
    );
    let reason = format!("held for staff: {} wrote, but {why}", mail.from.address);
    let salvaged = salvage(mail);
    let row = record_quarantine(
        conn,
        incoming.origin,
        incoming.raw,
        &incoming.sha,
        Some(&incoming.dedupe_key),
        &reason,
        Some(&salvaged),
        now,
    )?;
    if let Some(incident) = answers {
        let own = own_in_thread(conn, mail, incident)?;
        let event = Event::HeldReply {
            message: row,
            from: mail.from.address.clone(),
            why,
            written: written(mail, &own),
        };
        let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
        *queued += applied.queued();
    }
    Ok(Outcome::Held { reason })
}

/// A reply's own words, read against everything we sent into incident `n`'s threads: what
/// the client quoted of ours, however it quoted it, is not the writer's.
fn own_in_thread(
    conn: &Connection,
    mail: &ParsedMail,
    n: IncidentNo,
) -> Result<OwnWords, StoreError> {
    let ours = crate::outbox::guard::thread_mail(conn, n)?;
    Ok(mail::own_words::read(&mail.body, &ours, Context::Reply))
}

/// What a person's mail says (`own`: their own words in it), for staff to read.
fn written(mail: &ParsedMail, own: &OwnWords) -> Written {
    Written {
        text: own.text(),
        unsure: own
            .doubt
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        signature: own.signature.clone().unwrap_or_default(),
        attachments: mail
            .attachments
            .iter()
            .map(|a| AttachmentData {
                name: a.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                content_type: a.content_type.clone(),
                size: human_size(a.size),
            })
            .collect(),
        trust: format!("{}: {}", mail.trust.level, mail.trust.reason),
    }
}

/// "980 bytes", "12 KB", "3.4 MB".
fn human_size(bytes: usize) -> String {
    match bytes {
        0..=999 => format!("{bytes} bytes"),
        1_000..=999_999 => format!("{} KB", bytes / 1000),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
}

/// A staff member's mail. A reply that names a notification signed for them (and, with a
/// trusted receiving server, passed its sender check) acts on that incident. Without that
/// proof, a mail that points at an incident is either the staff member's own mail to the
/// customer (the customer is among its recipients: recorded, it counts as news) or not to be
/// believed: held for staff, who are told. A fresh mail that points at nothing is left to the
/// ordinary path (staff may open an incident like anyone). None: not a staff matter.
fn record_staff(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Option<Outcome>, ActError> {
    let staff = &deps.config.staff;
    let sender = mail.from.address.as_str();
    // Signed for this member, or for a team list every member reads; never for another
    // member's own address (a notification forwarded or leaked from them proves nothing).
    let mut signed_for: Vec<&str> = vec![sender];
    signed_for.extend(
        staff
            .notify
            .iter()
            .filter(|a| !staff.is_member(a))
            .map(String::as_str),
    );
    let signed = mail
        .referenced_ids
        .iter()
        .find_map(|id| deps.secret.verify_staff_message_id(id, &signed_for));
    let answered = signed.map(|s| IncidentNo(s.incident));
    let checked = deps.config.intake.trusted_authserv_id.is_none()
        || (mail.trust.level == Trust::Verified && (mail.trust.strict || staff.relaxed_alignment));
    let pointed: Vec<IncidentNo> = {
        let mut list: Vec<IncidentNo> = candidates(conn, deps, mail)?
            .into_iter()
            .map(|c| c.incident)
            .collect();
        list.dedup();
        list
    };
    let (incident, event) = match answered {
        Some(n) if checked && store::incidents::exists(conn, n)? => {
            let row = record_message_as(conn, incoming, mail, Some(n), MessageClass::Staff, now)?;
            index_ids(conn, mail, n)?;
            let ours = crate::outbox::guard::thread_mail(conn, n)?;
            let own = mail::own_words::read(&mail.body, &ours, Context::Reply);
            let mut staff_mail = crate::incident::staff_mail::read(&own);
            let unreadable = not_readable(deps, incoming, signed, now);
            if let Some(why) = unreadable.clone() {
                // Refused as a whole: the member is told why and what to do.
                staff_mail = crate::incident::staff_mail::StaffMail {
                    commands: vec![crate::incident::staff_mail::Command::Unreadable {
                        line: "this reply".into(),
                        why,
                    }],
                    ..Default::default()
                };
            }
            let to_internal = staff.internal_address.as_deref().is_some_and(|internal| {
                mail.to
                    .iter()
                    .chain(&mail.cc)
                    .chain(&mail.delivered_to)
                    .any(|a| a.eq_ignore_ascii_case(internal))
            });
            staff_mail.internal |= to_internal;
            let pending = store::incidents::held_reply(conn, n, sender)?;
            let held = if staff_mail.send {
                if let Some(kept) = &pending {
                    // `#send`: the held words, as they were shown, in place of this mail's.
                    let mut again = crate::incident::staff_mail::read_text(&kept.text);
                    again.greeting = kept.greeting.clone();
                    again.body = kept.text.clone();
                    again.send = true;
                    again.internal |= staff_mail.internal;
                    staff_mail = again;
                }
                None
            } else if unreadable.is_some() {
                None
            } else {
                held_staff_reply(conn, deps, n, (&ours, &own), &staff_mail)?
            };
            let name = mail
                .from
                .name
                .clone()
                .unwrap_or_else(|| sender.split('@').next().unwrap_or(sender).to_string());
            (
                n,
                Event::StaffReply {
                    message: row,
                    by: sender.to_string(),
                    name,
                    mail: staff_mail,
                    attachments: !mail.attachments.is_empty(),
                    held,
                    pending: pending.map(|p| p.id),
                },
            )
        }
        Some(n) if store::incidents::exists(conn, n)? => {
            let why = if mail.trust.level == Trust::Verified {
                format!(
                    "it answers a notification, but its sender is verified only with relaxed \
                     alignment ({}); staff replies need the From domain itself to sign or send \
                     it ([staff] alignment)",
                    mail.trust.reason
                )
            } else {
                format!(
                    "it answers a notification, but the receiving server did not verify its \
                     sender ({}: {})",
                    mail.trust.level, mail.trust.reason
                )
            };
            return forged(conn, deps, incoming, mail, n, why, now, queued).map(Some);
        }
        _ => {
            let Some(&n) = pointed.first() else {
                return Ok(None);
            };
            let customer = store::incidents::incident(conn, n)?
                .map(|i| i.customer_address)
                .unwrap_or_default();
            let to_customer = mail
                .to
                .iter()
                .chain(&mail.cc)
                .any(|a| a.eq_ignore_ascii_case(&customer));
            if !(to_customer && checked) {
                let why = if to_customer {
                    format!(
                        "the receiving server did not verify its sender ({}: {})",
                        mail.trust.level, mail.trust.reason
                    )
                } else {
                    "it names the incident but does not answer a notification sent to that \
                     address"
                        .into()
                };
                return forged(conn, deps, incoming, mail, n, why, now, queued).map(Some);
            }
            let row = record_message(conn, incoming, mail, Some(n), now)?;
            index_ids(conn, mail, n)?;
            let own = own_in_thread(conn, mail, n)?;
            (
                n,
                Event::StaffCorrespondence {
                    message: row,
                    by: sender.to_string(),
                    text: own.text(),
                },
            )
        }
    };
    store::incidents::touch(conn, incident, now)?;
    let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
    *queued += applied.queued();
    Ok(Some(Outcome::Joined { incident }))
}

/// Why a staff reply cannot be acted on at all, to tell its writer: it answers a notification
/// older than `[staff] reply_valid_for`, or it was over the size limit and only its headers
/// were kept.
fn not_readable(
    deps: &Deps,
    incoming: &Incoming<'_>,
    signed: Option<crate::secret::StaffId>,
    now: DateTime<Utc>,
) -> Option<String> {
    if let Some(size) = incoming.oversize {
        return Some(format!(
            "it was {} (over [intake] max_message_size), so only its headers were kept and \
             nothing in it was read or sent; write it again with smaller attachments",
            human_size(usize::try_from(size).unwrap_or(usize::MAX))
        ));
    }
    let valid_days = (deps.config.staff.reply_valid_for.as_secs() / 86_400) as i64;
    let today = now.timestamp().div_euclid(86_400);
    match signed.map(|s| s.day) {
        Some(Some(day)) if today - day <= valid_days => None,
        Some(_) => Some(format!(
            "it answers a notification older than {} ([staff] reply_valid_for); reply to a \
             fresh notification about this incident (the next one, or ask a colleague to \
             note it)",
            crate::clock::human_duration(deps.config.staff.reply_valid_for)
        )),
        None => None,
    }
}

/// Why a staff reply's words may not go to the customer as read: it is all quote, its words
/// carry text of a staff-only mail or note, or which words are the writer's is in doubt.
/// None: they may (an `#internal` note never reaches the customer, so it is never held).
fn held_staff_reply(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    (ours, own): (&mail::OurMail, &OwnWords),
    read: &crate::incident::staff_mail::StaffMail,
) -> Result<Option<HeldData>, StoreError> {
    if read.internal {
        return Ok(None);
    }
    if read.text.trim().is_empty() && read.commands.is_empty() {
        return Ok(Some(HeldData {
            all_quote: true,
            ..HeldData::default()
        }));
    }
    let mut found = ours.staff_only_lines(&own.body);
    for line in
        crate::outbox::guard::staff_only_text(conn, deps, n, std::slice::from_ref(&own.body))?
    {
        if !found.contains(&line) {
            found.push(line);
        }
    }
    if !found.is_empty() {
        return Ok(Some(HeldData {
            staff_only: true,
            found,
            ..HeldData::default()
        }));
    }
    Ok(own.doubt.as_ref().map(|doubt| HeldData {
        unsure: doubt.to_string(),
        ..HeldData::default()
    }))
}

/// Forged staff replies staff are mailed about per incident in 24 hours; more are recorded,
/// quarantined and logged only.
const FORGED_ALERTS_PER_DAY: i64 = 3;

/// Mail claiming a staff sender that we do not believe: kept in quarantine for staff, and
/// staff are told about it on the incident it pointed at.
#[allow(clippy::too_many_arguments)]
fn forged(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: IncidentNo,
    why: String,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let reason = format!(
        "held for staff: {} wrote about incident #{incident} as staff, but {why}",
        mail.from.address
    );
    let salvaged = salvage(mail);
    let row = record_quarantine(
        conn,
        incoming.origin,
        incoming.raw,
        &incoming.sha,
        Some(&incoming.dedupe_key),
        &reason,
        Some(&salvaged),
        now,
    )?;
    let own = own_in_thread(conn, mail, incident)?;
    let alerts = store::events::count_since(
        conn,
        incident,
        EventKind::ForgedStaffReply,
        clock::before(now, Duration::from_secs(86_400)),
    )?;
    let event = Event::ForgedStaffReply {
        message: row,
        claimed: mail.from.address.clone(),
        why,
        written: written(mail, &own),
        alert: alerts < FORGED_ALERTS_PER_DAY,
    };
    let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
    *queued += applied.queued();
    Ok(Outcome::Held { reason })
}

#[allow(clippy::too_many_arguments)]
fn join(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: IncidentNo,
    via: Evidence,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let row = record_message(conn, incoming, mail, Some(incident), now)?;
    index_ids(conn, mail, incident)?;
    let role = store::incidents::participant_role(conn, incident, &mail.from.address)?;
    // Only someone we know is who they say may bring others in.
    let proven = policy::for_sender(mail.trust.level, &deps.config.trust) == Treatment::Full;
    if proven && role.is_some_and(Role::may_add_participants) {
        add_cc_participants(conn, deps, incident, mail)?;
    }
    store::incidents::touch(conn, incident, now)?;
    let how = match via {
        Evidence::Reference => "In-Reply-To/References",
        Evidence::ThreadIndex => "Outlook's Thread-Index",
        Evidence::SubjectToken => "the subject token",
    };
    store::events::log(
        conn,
        &NewEvent {
            incident: Some(incident),
            message: Some(row),
            kind: EventKind::CustomerReply,
            actor: Actor::Daemon,
            detail: format!("{} replied; joined via {how}", mail.from.address),
        },
        now,
    )?;
    {
        let own = own_in_thread(conn, mail, incident)?;
        let event = Event::CustomerReply {
            message: row,
            from: mail.from.address.clone(),
            trust: mail.trust.level,
            written: written(mail, &own),
        };
        let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
        *queued += applied.queued();
    }
    Ok(Outcome::Joined { incident })
}

fn index_ids(conn: &Connection, mail: &ParsedMail, incident: IncidentNo) -> Result<(), StoreError> {
    if let Some(id) = &mail.message_id {
        store::messages::index_message_id(conn, id, incident)?;
    }
    if let Some(root) = &mail.thread_index_root {
        store::messages::index_thread_root(conn, root, incident)?;
    }
    Ok(())
}

/// `strangers = "hold"`: the message is kept, unanswered, in quarantine for staff to look at.
fn hold_for_staff(
    conn: &Connection,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    stranger_to: &[IncidentNo],
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let reason = format!(
        "held for staff: {} pointed at incident {} but is not a participant there",
        mail.from.address,
        stranger_to
            .iter()
            .map(|n| format!("#{n}"))
            .collect::<Vec<_>>()
            .join(", ")
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

fn add_cc_participants(
    conn: &Connection,
    deps: &Deps,
    incident: IncidentNo,
    mail: &ParsedMail,
) -> Result<(), StoreError> {
    for cc in &mail.cc {
        if !deps.config.support.is_own_address(cc) {
            store::incidents::add_participant(conn, incident, cc, Role::Cc)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn open(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    continues: Option<IncidentNo>,
    stranger_to: Vec<IncidentNo>,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let config = &deps.config;
    let promise = opening(config, now);
    let treatment = policy::for_sender(mail.trust.level, &config.trust);
    let answer_to = policy::reply_address(&mail.from, mail.reply_to.as_ref(), treatment, |a| {
        config.support.is_own_address(a)
    });
    // "Fwd: AW: Order broken [FU-3-…]" is about "Order broken": prefixes and copied tokens go.
    let mut subject = mail::base_subject(&mail.subject);
    if subject.is_empty() {
        subject = "(no subject)".into();
    }
    let incident = store::incidents::create_incident(
        conn,
        &store::NewIncident {
            subject: &subject,
            summary: &mail.summary,
            customer_address: &mail.from.address,
            customer_name: mail.from.name.as_deref(),
            reply_address: &answer_to.address,
            reply_name: answer_to.name.as_deref(),
            sender_trust: mail.trust.level,
            cadence: config.cadence.default,
            next_update_at: promise.at,
        },
        |n| deps.secret.incident_token(n.0),
        now,
    )?;
    store::incidents::set_origin(
        conn,
        incident,
        mail.content_language.as_deref(),
        mail.date.as_deref().and_then(crate::lang::offset_of_date),
    )?;
    store::incidents::add_participant(conn, incident, &mail.from.address, Role::Customer)?;
    if answer_to.address != mail.from.address {
        store::incidents::add_participant(conn, incident, &answer_to.address, Role::ReplyTo)?;
    }
    if treatment == Treatment::Full {
        add_cc_participants(conn, deps, incident, mail)?;
    }
    let row = record_message(conn, incoming, mail, Some(incident), now)?;
    index_ids(conn, mail, incident)?;
    // Outlook files our replies by Thread-Index: continue the customer's conversation if they
    // started one, else start ours.
    let thread_root = mail
        .thread_index_root
        .clone()
        .unwrap_or_else(|| deps.secret.thread_root(incident.0));
    store::messages::index_thread_root(conn, &thread_root, incident)?;
    let since = clock::before(now, config.recurring.window);
    let opening = Opening {
        message: row,
        from: mail.from.clone(),
        other_from: mail.other_from.clone(),
        promise,
        continues,
        stranger_to,
        customer_incidents_in_window: store::incidents::customer_incidents_since(
            conn,
            &mail.from.address,
            since,
        )?,
        repeats: store::incidents::previous_of_customer(
            conn,
            &mail.from.address,
            incident,
            clock::before(now, config.recurring.link_within),
        )?
        .map(|(previous, opened_at, count)| Repeat {
            previous,
            opened_at,
            count,
        }),
        written: written(mail, &mail.own),
    };
    // The acknowledgement answers the complaint itself: its references, then it.
    let mut ids: Vec<String> = mail
        .references
        .iter()
        .filter(|r| Some(*r) != mail.message_id.as_ref())
        .cloned()
        .collect();
    ids.extend(mail.message_id.clone());
    let incident_row =
        store::incidents::incident(conn, incident)?.ok_or(ActError::NotFound(incident))?;
    let facts = Facts::new(
        incident_row,
        crate::incident::letters::Conversation {
            ids,
            thread_root: Some(thread_root),
        },
    );
    let (_, applied) = act_on(conn, deps, &facts, &Event::Opened(opening), Pass::Real, now)?;
    *queued += applied.queued();
    Ok(Outcome::Opened { incident })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::decide::tests_support::at;
    use crate::incident::State;

    #[test]
    fn a_reply_to_an_incident_joins_it() {
        let decision = Decision::Join {
            incident: IncidentNo(4),
            via: Evidence::Reference,
        };
        assert_eq!(
            route(decision, StrangerPolicy::NewIncident, |_| false),
            Route::Join {
                incident: IncidentNo(4),
                via: Evidence::Reference
            }
        );
    }

    #[test]
    fn a_reply_long_after_the_resolution_opens_an_incident_that_continues_it() {
        let decision = Decision::Join {
            incident: IncidentNo(4),
            via: Evidence::SubjectToken,
        };
        assert_eq!(
            route(decision, StrangerPolicy::Hold, |n| n == IncidentNo(4)),
            Route::Open {
                continues: Some(IncidentNo(4)),
                stranger_to: vec![]
            }
        );
    }

    #[test]
    fn a_stranger_gets_a_new_incident_or_is_held_for_staff() {
        let decision = || Decision::Open {
            stranger_to: vec![IncidentNo(9)],
        };
        assert_eq!(
            route(decision(), StrangerPolicy::NewIncident, |_| false),
            Route::Open {
                continues: None,
                stranger_to: vec![IncidentNo(9)]
            }
        );
        assert_eq!(
            route(decision(), StrangerPolicy::Hold, |_| false),
            Route::Hold {
                stranger_to: vec![IncidentNo(9)]
            }
        );
        // A fresh complaint is never held.
        assert!(matches!(
            route(
                Decision::Open {
                    stranger_to: vec![]
                },
                StrangerPolicy::Hold,
                |_| false
            ),
            Route::Open { .. }
        ));
    }

    #[test]
    fn only_an_incident_over_for_longer_than_reopen_within_is_too_late() {
        let mut incident = crate::incident::decide::tests_support::incident();
        let within = Duration::from_secs(14 * 86_400);
        incident.state = State::Resolved;
        incident.resolved_at = Some(at("2026-11-01T00:00:00Z"));
        assert!(!too_late_to_reopen(
            &incident,
            within,
            at("2026-11-10T00:00:00Z")
        ));
        assert!(too_late_to_reopen(
            &incident,
            within,
            at("2026-11-20T00:00:00Z")
        ));
        incident.state = State::Open;
        assert!(!too_late_to_reopen(
            &incident,
            within,
            at("2026-12-20T00:00:00Z")
        ));
    }

    #[test]
    fn a_bounce_marks_only_recipients_we_really_sent_the_bounced_mail_to() {
        let ours = vec![SentMail {
            incident: IncidentNo(1),
            kind: crate::incident::MailKind::Acknowledgement,
            recipient: "ann@example.test".into(),
        }];
        let dsn = BounceReport {
            original_ids: vec!["fu.1@x".into()],
            failed: vec!["ann@example.test".into(), "victim@example.test".into()],
            delayed: vec![],
            is_dsn: true,
        };
        let marks = undeliverable_marks(&dsn, &ours);
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].address, "ann@example.test");
        assert!(marks[0].reason.contains("delivery status report"));
        let delayed = BounceReport {
            failed: vec![],
            delayed: vec!["ann@example.test".into()],
            ..dsn.clone()
        };
        assert!(
            undeliverable_marks(&delayed, &ours).is_empty(),
            "delayed marks nothing"
        );
        let notice = BounceReport {
            is_dsn: false,
            failed: vec![],
            ..dsn
        };
        let marks = undeliverable_marks(&notice, &ours);
        assert_eq!(
            marks[0].reason,
            "acknowledgement bounced (mailer-daemon notice)"
        );
        assert!(
            undeliverable_marks(&notice, &[]).is_empty(),
            "not our mail: nobody"
        );
    }

    #[test]
    fn mail_without_a_message_id_is_known_by_its_content() {
        assert_eq!(dedupe_key(Some("a@b"), "ff"), "mid:a@b");
        assert_eq!(dedupe_key(None, "ff"), "sha256:ff");
    }
}
