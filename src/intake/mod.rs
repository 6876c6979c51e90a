//! Intake: one IMAP batch becomes records, incidents and queued mail in ONE transaction.
//!
//! Per message: parse and classify ([`crate::mail`]), recognise receipts and duplicates, find
//! its incident ([`crate::thread`]), record it, and let the decision core say what it causes
//! ([`crate::apply::act`]). Each message runs under its own savepoint: one whose processing
//! fails is rolled back alone and kept raw as quarantined, and the batch goes on. The IMAP
//! checkpoint moves in the same transaction, so a crash before commit re-reads the batch and a
//! crash after it never repeats anything.
//!
//! The choices along the way are plain functions (where a mail goes, [`crate::thread::route`];
//! [`undeliverable_marks`]), tested without a database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::apply::{act, act_on, note, ActError};
use crate::clock;
use crate::config::Treatment;
use crate::deps::Deps;
use crate::digest::sha256_hex;
use crate::imap::Fetched;
use crate::incident::arrival::{self, Arrival, Held, JoinedVia};
use crate::incident::decide::{Opening, Repeat};
use crate::incident::{policy, Event, EventKind, Facts, IncidentNo, MessageRow, Role, Written};
use crate::mail::{
    self, BounceReport, Context, MessageClass, OwnWords, ParsedMail, Quarantine, Trust,
};
use crate::outbox::Pass;
use crate::store::checkpoints::{self, AfterProcessing, Checkpoint};
use crate::store::outbox::SentMail;
use crate::store::{self, ImapOrigin, NewMessage, StoreError};
use crate::templates::{AttachmentData, HeldData, Phrases, Said};
use crate::thread::{self, route, too_late_to_reopen, Candidate, Evidence, Route};

mod automated;
mod human;
mod release;
mod staff;

use automated::*;
use human::*;
pub use release::{release, ReleaseError};
use staff::*;

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
                let reason = deps.policy().say(
                    &Held::Failed {
                        error: crate::errors::Chain(&e).to_string(),
                    }
                    .reason(),
                );
                let sha = sha256_hex(fetched.raw.as_slice());
                record_quarantine(
                    &tx,
                    deps,
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
    /// Released from quarantine by a person: the sender check and the stranger rule that
    /// held it are theirs to overrule (see `release`).
    vouched: bool,
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
            let arrival = Arrival::Duplicate {
                uid: origin.uid,
                of: previous.id,
            };
            note(
                conn,
                deps,
                previous.incident,
                Some(previous.id),
                &arrival,
                now,
            )?;
            return Ok(Outcome::Duplicate { of: previous.id });
        }
        // Same Message-ID, different bytes: a forgery or a broken client. Neither message
        // may be dropped, and the second must not act on the first one's incident.
        let reason = deps.policy().say(
            &Held::SameIdOtherContent {
                id: message_id.as_deref().unwrap_or_default(),
                of: previous.id,
            }
            .reason(),
        );
        let salvaged = parsed.as_ref().ok().map(salvage);
        record_quarantine(
            conn,
            deps,
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
        vouched: false,
    };
    match parsed {
        Err(q) => {
            let reason = deps.policy().say(&arrival::unreadable(&q.reason));
            record_quarantine(
                conn,
                deps,
                origin,
                raw,
                &incoming.sha,
                Some(&incoming.dedupe_key),
                &reason,
                Some(&salvage_unreadable(&q)),
                now,
            )?;
            Ok(Outcome::Quarantined { reason })
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
        let words = deps.templates.phrases();
        let confirmed = crate::outbox::send::record_sent(
            conn,
            words,
            &out,
            raw,
            &deps.config.support.address,
            &words.say(None, &crate::said!("outbox.receipt")),
            now,
        )?;
        return Ok(Some(Outcome::Receipt { confirmed }));
    }
    if store::outbox::by_message_id(conn, id)?.is_some() {
        return Ok(Some(Outcome::Receipt { confirmed: false }));
    }
    Ok(None)
}

/// What a kept message's row shows of it: whatever could be read.
#[derive(Debug, Clone, Default)]
struct Salvaged {
    message_id: Option<String>,
    from: Option<String>,
    subject: Option<String>,
}

fn salvage(mail: &ParsedMail) -> Salvaged {
    Salvaged {
        message_id: mail.message_id.clone(),
        from: Some(mail.from.address.clone()),
        subject: Some(mail.subject.clone()),
    }
}

fn salvage_unreadable(q: &Quarantine) -> Salvaged {
    Salvaged {
        message_id: q.message_id.clone(),
        from: q.from.clone(),
        subject: q.subject.clone(),
    }
}

/// Keeps a mail that parsed for a person (a stranger's, one whose sender check failed, a
/// forged staff reply), with what could be read of it and why.
fn hold_parsed(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<MessageRow, StoreError> {
    record_quarantine(
        conn,
        deps,
        incoming.origin,
        incoming.raw,
        &incoming.sha,
        Some(&incoming.dedupe_key),
        reason,
        Some(&salvage(mail)),
        now,
    )
}

#[allow(clippy::too_many_arguments)]
fn record_quarantine(
    conn: &Connection,
    deps: &Deps,
    origin: ImapOrigin<'_>,
    raw: &[u8],
    sha: &str,
    dedupe_key: Option<&str>,
    reason: &str,
    salvaged: Option<&Salvaged>,
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
    let arrival = Arrival::Quarantined {
        uid: origin.uid,
        reason,
    };
    note(conn, deps, None, Some(row), &arrival, now)?;
    Ok(row)
}

/// Records an incoming parsed message (and its attachment list) under `incident`.
fn record_message(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: Option<IncidentNo>,
    now: DateTime<Utc>,
) -> Result<MessageRow, StoreError> {
    record_message_as(conn, deps, incoming, mail, incident, mail.class, now)
}

/// As [`record_message`], in `class` (a staff reply is the staff's, not the customer's).
fn record_message_as(
    conn: &Connection,
    deps: &Deps,
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
        let arrival = Arrival::Oversize {
            uid: incoming.origin.uid,
            size,
        };
        note(conn, deps, incident, Some(row), &arrival, now)?;
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

fn index_ids(conn: &Connection, mail: &ParsedMail, incident: IncidentNo) -> Result<(), StoreError> {
    if let Some(id) = &mail.message_id {
        store::messages::index_message_id(conn, id, incident)?;
    }
    if let Some(root) = &mail.thread_index_root {
        store::messages::index_thread_root(conn, root, incident)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(marks[0].reason.key, "arrival.bounced.report");
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
            crate::templates::Phrases::default().say(None, &marks[0].reason),
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
