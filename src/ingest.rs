//! Ingest: one IMAP batch becomes records, incidents and queued mail in ONE transaction.
//!
//! parse → classify → thread → store → policy → outbox, per message, each message under its own
//! savepoint: a message whose processing fails is rolled back alone and kept raw as
//! quarantined, and the batch goes on. The IMAP checkpoint moves in the same transaction, so a
//! crash before commit re-reads the batch and a crash after it never repeats anything.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::config::SupportConfig;
use crate::imap::Fetched;
use crate::mail::{self, MailClass, ParsedMail, Quarantine};
use crate::outbox::{self, Draft};
use crate::policy::{self, IncidentFacts};
use crate::secret::Secret;
use crate::store::{self, Checkpoint, ImapOrigin, NewMessage, StoreError};
use crate::templates::Templates;
use crate::thread::{self, Candidate, Decision, Evidence};

pub struct Context<'a> {
    pub support: &'a SupportConfig,
    pub secret: &'a Secret,
    pub templates: &'a Templates,
    pub cadence: Duration,
    /// Whether recorded messages should be marked/moved on the server afterwards.
    pub after_processing: bool,
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
        let outcome = match ingest_one(&savepoint, ctx, origin, &fetched.raw, now) {
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
            Outcome::Quarantined { .. } | Outcome::AlreadyRecorded
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
        Outcome::AlreadyRecorded => tracing::debug!(uid, "already recorded"),
        Outcome::Receipt { confirmed: true } => {
            tracing::info!(uid, "receipt confirms a mail left in doubt")
        }
        Outcome::Receipt { confirmed: false } => tracing::debug!(uid, "receipt of a sent mail"),
    }
}

fn ingest_one(
    conn: &Connection,
    ctx: &Context<'_>,
    origin: ImapOrigin<'_>,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    if store::imap_uid_recorded(conn, origin)? {
        return Ok(Outcome::AlreadyRecorded);
    }
    let sha = store::sha256_hex(raw);
    let parsed = mail::parse(raw, ctx.support);
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
        if previous.sha256 == sha {
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
    match parsed {
        Err(q) => {
            record_quarantine(
                conn,
                origin,
                raw,
                &sha,
                Some(&dedupe_key),
                &q.reason,
                Some(&q),
                now,
            )?;
            Ok(Outcome::Quarantined { reason: q.reason })
        }
        Ok(mail) if mail.class != MailClass::Human => {
            record_automated(conn, ctx, origin, raw, &sha, &dedupe_key, &mail, now)
        }
        Ok(mail) => record_human(conn, ctx, origin, raw, &sha, &dedupe_key, &mail, now),
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

fn message_row<'a>(
    mail: &'a ParsedMail,
    incident: Option<i64>,
    dedupe_key: &'a str,
    references: &'a str,
    sha: &'a str,
    raw: &'a [u8],
) -> NewMessage<'a> {
    NewMessage {
        direction: "in",
        incident,
        message_id: mail.message_id.as_deref(),
        dedupe_key: Some(dedupe_key),
        from_addr: Some(&mail.from.address),
        subject: Some(&mail.subject),
        date_header: mail.date.as_deref(),
        in_reply_to: mail.in_reply_to.as_deref(),
        references: Some(references),
        class: mail.class.as_str(),
        class_reason: (!mail.class_reason.is_empty()).then_some(mail.class_reason.as_str()),
        sha256: sha,
        raw,
        ..NewMessage::default()
    }
}

/// The incidents a message points at, strongest evidence first.
fn candidates(
    conn: &Connection,
    ctx: &Context<'_>,
    mail: &ParsedMail,
) -> Result<Vec<Candidate>, StoreError> {
    let mut found: Vec<(i64, Evidence)> = Vec::new();
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
            if !found.iter().any(|(i, _)| *i == n) {
                found.push((n, Evidence::Reference));
            }
        }
    }
    if let Some(token) = ctx.secret.find_token(&mail.subject) {
        if store::incident_exists(conn, token.incident)? {
            found.push((token.incident, Evidence::SubjectToken));
        }
    }
    found
        .into_iter()
        .map(|(incident, via)| {
            Ok(Candidate {
                incident,
                via,
                sender_is_participant: store::is_participant(conn, incident, &mail.from.address)?,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn record_automated(
    conn: &Connection,
    ctx: &Context<'_>,
    origin: ImapOrigin<'_>,
    raw: &[u8],
    sha: &str,
    dedupe_key: &str,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    // Linked to an incident only through its references, for the record; never answered.
    let incident = candidates(conn, ctx, mail)?
        .into_iter()
        .find(|c| c.via == Evidence::Reference)
        .map(|c| c.incident);
    let references = mail.references.join(" ");
    let row = store::insert_message(
        conn,
        &message_row(mail, incident, dedupe_key, &references, sha, raw),
        Some(origin),
        now,
    )?;
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

#[allow(clippy::too_many_arguments)]
fn record_human(
    conn: &Connection,
    ctx: &Context<'_>,
    origin: ImapOrigin<'_>,
    raw: &[u8],
    sha: &str,
    dedupe_key: &str,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let references = mail.references.join(" ");
    match thread::decide(&candidates(conn, ctx, mail)?) {
        Decision::Join { incident, via } => {
            let row = store::insert_message(
                conn,
                &message_row(mail, Some(incident), dedupe_key, &references, sha, raw),
                Some(origin),
                now,
            )?;
            if let Some(id) = &mail.message_id {
                store::index_message_id(conn, id, incident)?;
            }
            add_cc_participants(conn, ctx, incident, mail)?;
            store::touch_incident(conn, incident, now)?;
            let how = match via {
                Evidence::Reference => "In-Reply-To/References",
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
            Ok(Outcome::Joined { incident })
        }
        Decision::Open { stranger_to } => open_incident(
            conn,
            ctx,
            origin,
            raw,
            sha,
            dedupe_key,
            mail,
            &stranger_to,
            now,
        ),
    }
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

#[allow(clippy::too_many_arguments)]
fn open_incident(
    conn: &Connection,
    ctx: &Context<'_>,
    origin: ImapOrigin<'_>,
    raw: &[u8],
    sha: &str,
    dedupe_key: &str,
    mail: &ParsedMail,
    stranger_to: &[i64],
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let next_update = policy::next_update_at(now, ctx.cadence);
    let incident = store::create_incident(
        conn,
        &store::NewIncident {
            subject: &mail.subject,
            summary: &mail.summary,
            customer_address: &mail.from.address,
            customer_name: mail.from.name.as_deref(),
            cadence: ctx.cadence,
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
    let references = mail.references.join(" ");
    let row = store::insert_message(
        conn,
        &message_row(mail, Some(incident), dedupe_key, &references, sha, raw),
        Some(origin),
        now,
    )?;
    if let Some(id) = &mail.message_id {
        store::index_message_id(conn, id, incident)?;
    }
    store::log_event(
        conn,
        now,
        Some(incident),
        Some(row),
        "incident_opened",
        &format!("opened by {}: {}", mail.from.address, mail.subject),
    )?;
    if !stranger_to.is_empty() {
        let list: Vec<String> = stranger_to.iter().map(|n| format!("#{n}")).collect();
        store::log_event(
            conn,
            now,
            Some(incident),
            Some(row),
            "stranger_reference",
            &format!(
                "{} pointed at incident {} but is not a participant there; opened this incident instead",
                mail.from.address,
                list.join(", ")
            ),
        )?;
    }
    acknowledge(conn, ctx, incident, row, mail, next_update, now)?;
    Ok(Outcome::Opened { incident })
}

fn acknowledge(
    conn: &Connection,
    ctx: &Context<'_>,
    incident: i64,
    row: i64,
    mail: &ParsedMail,
    next_update: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
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
    let token = ctx.secret.incident_token(incident);
    let data = policy::mail_data(
        &IncidentFacts {
            number: incident,
            token: &token,
            subject: &mail.subject,
            summary: &mail.summary,
            opened: now,
            customer: &mail.from,
            cadence: ctx.cadence,
            next_update,
        },
        ctx.support,
    );
    let mut references = mail.references.clone();
    if let Some(id) = &mail.message_id {
        references.retain(|r| r != id);
        references.push(id.clone());
    }
    outbox::enqueue(
        conn,
        &Draft {
            incident,
            kind: "acknowledgement",
            caused_by: Some(row),
            recipient: &recipient.address,
            recipient_name: recipient.name.as_deref(),
            in_reply_to: mail.message_id.as_deref(),
            references,
            data,
        },
        ctx.templates,
        ctx.support,
        ctx.secret,
        now,
    )?;
    Ok(())
}
