//! Mail to send (the outbox and its attempts), mail decided but not sent (suppressed), and
//! addresses a bounce said we cannot reach (undeliverable).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::messages::{insert_message, Direction, NewMessage};
use super::{ts_at, ts_opt, Result, Ts};
use crate::clock::serde_stamp;
use crate::digest::sha256_hex;
use crate::incident::{IncidentNo, MailKind, MessageRow};
use crate::mail::MessageClass;

mod caps;
mod undeliverable;

pub use caps::*;
pub use undeliverable::*;

/// queued → sending (handed to the relay) → sent | failed. A `sending` row whose sender is gone
/// is in doubt: it waits for its receipt before a resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Queued,
    Sending,
    Sent,
    Failed,
}

impl OutboxState {
    pub const ALL: [OutboxState; 4] = [
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct NewOutgoing<'a> {
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub caused_by: Option<MessageRow>,
    pub message_id: &'a str,
    pub recipient: &'a str,
    pub recipient_name: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a str,
    /// Template data (JSON) as of queue time.
    pub context: &'a str,
    pub raw: Option<&'a [u8]>,
    pub subject: Option<&'a str>,
    pub render_error: Option<&'a str>,
    pub thread_index: Option<&'a str>,
    pub attachments_from: Option<MessageRow>,
    /// What the send caps count it under: the recipient's mailbox and domain, folded.
    pub mailbox: &'a str,
    pub domain: &'a str,
    /// About an incident nobody could vouch for (an unverified sender, no staff action yet).
    pub unverified: bool,
}

pub fn enqueue(conn: &Connection, out: &NewOutgoing<'_>, now: DateTime<Utc>) -> Result<i64> {
    conn.prepare_cached(sql!(
        "INSERT INTO outbox (incident_id, kind, caused_by, message_id, recipient, recipient_name,
             in_reply_to, references_, context, raw, last_error, state, attempts,
             next_attempt_at, created_at, thread_index, subject, attachments_from,
             recipient_mailbox, recipient_domain, unverified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, {OutboxState::Queued}, 0, ?12,
                 ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    ))?
    .execute(params![
        out.incident,
        out.kind,
        out.caused_by,
        out.message_id,
        out.recipient,
        out.recipient_name,
        out.in_reply_to,
        out.references,
        out.context,
        out.raw,
        out.render_error,
        Ts(now),
        out.thread_index,
        out.subject,
        out.attachments_from,
        out.mailbox,
        out.domain,
        out.unverified,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The mails composed about an incident, newest first, each with its kind: what a reply into
/// its thread may quote. At most `limit` of them.
pub fn composed_about(
    conn: &Connection,
    incident: IncidentNo,
    limit: usize,
) -> Result<Vec<(MailKind, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, raw FROM outbox WHERE incident_id = ?1 AND raw IS NOT NULL
         ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![incident, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A queued mail, as the sender needs it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub message_id: String,
    pub recipient: String,
    pub recipient_name: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: String,
    pub context: String,
    pub raw: Option<Vec<u8>>,
    pub subject: Option<String>,
    pub attempts: i64,
    pub thread_index: Option<String>,
    pub attachments_from: Option<MessageRow>,
}

/// The columns `outgoing_row` reads, in its order.
const OUTGOING_COLUMNS: &str = "id, incident_id, kind, message_id, recipient, recipient_name,
    in_reply_to, references_, context, raw, attempts, thread_index, subject, attachments_from";

fn outgoing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Outgoing> {
    Ok(Outgoing {
        id: r.get(0)?,
        incident: r.get(1)?,
        kind: r.get(2)?,
        message_id: r.get(3)?,
        recipient: r.get(4)?,
        recipient_name: r.get(5)?,
        in_reply_to: r.get(6)?,
        references: r.get(7)?,
        context: r.get(8)?,
        raw: r.get(9)?,
        attempts: r.get(10)?,
        thread_index: r.get(11)?,
        subject: r.get(12)?,
        attachments_from: r.get(13)?,
    })
}

/// Which mail in doubt may be sent again (see `outbox::send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InDoubtRule {
    /// Mail in doubt since before this had its receipt looked for, and none came.
    pub settled_before: Option<DateTime<Utc>>,
    /// Intake has made no progress for a whole grace: past its grace, mail in doubt is sent
    /// again without waiting for a receipt nobody can read.
    pub intake_stalled: bool,
}

pub fn due_outgoing(
    conn: &Connection,
    now: DateTime<Utc>,
    in_doubt: InDoubtRule,
    limit: usize,
) -> Result<Vec<Outgoing>> {
    let sql = crate::store::with_states(&format!(
        "SELECT {OUTGOING_COLUMNS} FROM outbox
         WHERE state = {{OutboxState::Queued}} AND (
             (in_doubt_since IS NULL AND next_attempt_at <= ?1)
             OR in_doubt_since < ?3
             OR (?4 AND in_doubt_since IS NOT NULL AND next_attempt_at <= ?1))
         ORDER BY next_attempt_at, id LIMIT ?2"
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(
            params![
                Ts(now),
                limit as i64,
                in_doubt.settled_before.map(Ts),
                in_doubt.intake_stalled
            ],
            outgoing_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// When the oldest mail still in doubt went in doubt.
pub fn oldest_in_doubt(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    Ok(conn
        .prepare_cached(sql!(
            "SELECT MIN(in_doubt_since) FROM outbox
             WHERE state = {OutboxState::Queued} AND in_doubt_since IS NOT NULL"
        ))?
        .query_row([], |r| r.get::<_, Option<Ts>>(0))?
        .map(|t| t.0))
}

/// When the next queued mail falls due, so the sender can sleep until then.
pub fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    Ok(conn
        .prepare_cached(sql!(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = {OutboxState::Queued}"
        ))?
        .query_row([], |r| r.get::<_, Option<Ts>>(0))?
        .map(|t| t.0))
}

pub fn queued_count(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            sql!("SELECT COUNT(*) FROM outbox WHERE state = {OutboxState::Queued} AND next_attempt_at >= '0'"),
        )?
        .query_row([], |r| r.get(0))?)
}

/// Stores bytes rendered after queue time (the first render failed).
pub fn store_rendered(conn: &Connection, outbox_id: i64, raw: &[u8], subject: &str) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET raw = ?2, subject = ?3 WHERE id = ?1 AND raw IS NULL",
        params![outbox_id, raw, subject],
    )?;
    Ok(())
}

fn record_attempt(
    conn: &Connection,
    outbox_id: i64,
    outcome: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO send_attempts (outbox_id, at, outcome, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![outbox_id, Ts(now), outcome, detail])?;
    Ok(())
}

/// Marks a mail sent and logs it as an outgoing message, inside the caller's transaction.
/// Idempotent: a mail already confirmed (by the relay's answer or by its receipt copy,
/// whichever came first) is left alone. Returns the message row if this call did the marking.
pub fn record_sent(
    conn: &Connection,
    out: &Outgoing,
    raw: &[u8],
    from: &str,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<Option<MessageRow>> {
    let changed = conn
        .prepare_cached(sql!(
            "UPDATE outbox SET state = {OutboxState::Sent}, sent_at = ?2, attempts = attempts + 1,
                 last_error = NULL
             WHERE id = ?1 AND state IN ({OutboxState::Queued}, {OutboxState::Sending})"
        ))?
        .execute(params![out.id, Ts(now)])?;
    if changed == 0 {
        return Ok(None);
    }
    record_attempt(conn, out.id, "sent", reply, now)?;
    let sha = sha256_hex(raw);
    let row = insert_message(
        conn,
        &NewMessage {
            direction: Direction::Out,
            incident: Some(out.incident),
            message_id: Some(&out.message_id),
            from_addr: Some(from),
            to_addr: Some(&out.recipient),
            subject: out.subject.as_deref(),
            in_reply_to: out.in_reply_to.as_deref(),
            references: Some(&out.references),
            kind: Some(out.kind),
            ..NewMessage::incoming(MessageClass::Outgoing, &sha, raw)
        },
        None,
        now,
    )?;
    Ok(Some(row))
}

/// Records that these mails are being handed to the relay. Committed before the first byte is
/// sent, so a daemon that dies mid-send leaves a trace of exactly which mails were in flight.
pub fn mark_sending(conn: &Connection, ids: &[i64]) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!(
        "UPDATE outbox SET state = {OutboxState::Sending}, in_doubt_since = NULL
         WHERE id = ?1 AND state = {OutboxState::Queued}"
    ))?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

/// A mail left `sending` by a daemon that died.
#[derive(Debug, Clone)]
pub struct InDoubt {
    pub id: i64,
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub recipient: String,
}

pub fn sending(conn: &Connection) -> Result<Vec<InDoubt>> {
    let mut stmt = conn.prepare_cached(
        sql!("SELECT id, incident_id, kind, recipient FROM outbox WHERE state = {OutboxState::Sending} ORDER BY id"),
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(InDoubt {
                id: r.get(0)?,
                incident: r.get(1)?,
                kind: r.get(2)?,
                recipient: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Puts a mail in doubt back in the queue, due only at `resend_at`.
/// A mail left `sending` is in doubt since `since`: queued again, sent only once intake has
/// looked for its receipt, or at `resend_at` at the latest while intake cannot (`since` None:
/// nothing to wait for, due at `resend_at`).
pub fn requeue_in_doubt(
    conn: &Connection,
    id: i64,
    since: Option<DateTime<Utc>>,
    resend_at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        sql!("UPDATE outbox SET state = {OutboxState::Queued}, next_attempt_at = ?2, in_doubt_since = ?3,
             last_error = 'in doubt: in flight when its sender stopped'
         WHERE id = ?1 AND state = {OutboxState::Sending}"),
        params![id, Ts(resend_at), since.map(Ts)],
    )?;
    Ok(())
}

/// The relay could not be reached for this mail: queued again, due at once when the relay is
/// back (the relay is retried, not each mail), with the attempt on record.
pub fn requeue_unreachable(
    conn: &Connection,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        sql!("UPDATE outbox SET state = {OutboxState::Queued}, last_error = ?2 WHERE id = ?1 AND state = {OutboxState::Sending}"),
    )?
    .execute(params![id, error])?;
    record_attempt(conn, id, "retry", error, now)
}

/// A queued or in-flight mail with this Message-ID, if it is one of ours.
pub fn unconfirmed_by_message_id(conn: &Connection, message_id: &str) -> Result<Option<Outgoing>> {
    let sql = crate::store::with_states(&format!(
        "SELECT {OUTGOING_COLUMNS} FROM outbox
         WHERE message_id = ?1 AND state IN ({{OutboxState::Queued}}, {{OutboxState::Sending}})"
    ));
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([message_id], outgoing_row)
        .optional()?)
}

/// The bytes of a mail we queued, as composed (None: not ours, or not rendered yet).
pub fn raw_by_message_id(conn: &Connection, message_id: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT raw FROM outbox WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()?
        .flatten())
}

/// When we queued the mail with this Message-ID (None: not one of ours).
pub fn queued_at(conn: &Connection, message_id: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(conn
        .prepare_cached("SELECT created_at FROM outbox WHERE message_id = ?1")?
        .query_row([message_id], |r| ts_at(r, 0))
        .optional()?)
}

/// A mail we queued, found by its Message-ID (for bounces).
#[derive(Debug, Clone)]
pub struct SentMail {
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub recipient: String,
}

pub fn by_message_id(conn: &Connection, message_id: &str) -> Result<Option<SentMail>> {
    Ok(conn
        .prepare_cached("SELECT incident_id, kind, recipient FROM outbox WHERE message_id = ?1")?
        .query_row([message_id], |r| {
            Ok(SentMail {
                incident: r.get(0)?,
                kind: r.get(1)?,
                recipient: r.get(2)?,
            })
        })
        .optional()?)
}

/// A failed attempt, to be retried at `retry_at`.
pub fn retry_later(
    conn: &Connection,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(sql!(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
             state = {OutboxState::Queued}
         WHERE id = ?1"
    ))?
    .execute(params![id, error, Ts(retry_at)])?;
    record_attempt(conn, id, "retry", error, now)
}

/// A permanent failure: the mail is given up and kept as failed for staff.
pub fn give_up(conn: &Connection, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached(
        sql!("UPDATE outbox SET attempts = attempts + 1, last_error = ?2, state = {OutboxState::Failed} WHERE id = ?1"),
    )?
    .execute(params![id, error])?;
    record_attempt(conn, id, "failed", error, now)
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineOutgoing {
    pub id: i64,
    pub kind: MailKind,
    pub state: OutboxState,
    pub recipient: String,
    pub message_id: String,
    pub attempts: i64,
    #[serde(with = "serde_stamp")]
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    #[serde(with = "serde_stamp::option")]
    pub sent_at: Option<DateTime<Utc>>,
}

pub fn incident_outbox(conn: &Connection, incident: IncidentNo) -> Result<Vec<TimelineOutgoing>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, state, recipient, message_id, attempts, next_attempt_at, last_error,
                sent_at
         FROM outbox WHERE incident_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([incident], |r| {
            Ok(TimelineOutgoing {
                id: r.get(0)?,
                kind: r.get(1)?,
                state: r.get(2)?,
                recipient: r.get(3)?,
                message_id: r.get(4)?,
                attempts: r.get(5)?,
                next_attempt_at: ts_at(r, 6)?,
                last_error: r.get(7)?,
                sent_at: ts_opt(r, 8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A queued mail and when it is due (for `upcoming`).
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub recipient: String,
    pub attempts: i64,
    pub due: DateTime<Utc>,
}

/// Queued mail due by `until`, soonest first.
pub fn queued_until(conn: &Connection, until: DateTime<Utc>) -> Result<Vec<QueuedMail>> {
    let mut stmt = conn.prepare(sql!(
        "SELECT incident_id, kind, recipient, attempts, next_attempt_at
         FROM outbox WHERE state = {OutboxState::Queued} AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id"
    ))?;
    let rows = stmt
        .query_map([Ts(until)], |r| {
            Ok(QueuedMail {
                incident: r.get(0)?,
                kind: r.get(1)?,
                recipient: r.get(2)?,
                attempts: r.get(3)?,
                due: ts_at(r, 4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// --- Suppressed mail -------------------------------------------------------------------------

/// The newest outbox id (0 when empty).
pub fn last_id(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |r| r.get(0))?)
}

/// A mail queued by the probe's last message: kind, recipient, state and last error.
pub type QueuedRow = (MailKind, String, OutboxState, Option<String>);

/// Every mail queued after outbox id `after`, in order.
pub fn queued_after(conn: &Connection, after: i64) -> Result<Vec<QueuedRow>> {
    let mut stmt = conn.prepare(
        "SELECT kind, recipient, state, last_error FROM outbox WHERE id > ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([after], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Customer mails caused by a message no person wrote (staff notifications about such a
/// message are fine: staff should see a forgery).
pub fn answered_non_human(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM outbox o JOIN messages m ON m.id = o.caused_by
             WHERE m.class NOT IN ('human', 'staff') AND o.kind NOT IN ({})",
            staff_kinds()
        ),
        [],
        |r| r.get(0),
    )?)
}

/// Mails queued to any of `addresses`.
pub fn mail_to_any(conn: &Connection, addresses: &[&str]) -> Result<i64> {
    let mut total = 0;
    for address in addresses {
        total += conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE recipient = ?1",
            [address],
            |r| r.get::<_, i64>(0),
        )?;
    }
    Ok(total)
}

/// Incidents with more than one acknowledgement (the schema forbids it; this proves it).
pub fn incidents_acknowledged_twice(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM (SELECT incident_id FROM outbox WHERE kind = 'acknowledgement'
         GROUP BY incident_id HAVING COUNT(*) > 1)",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::incidents::{create_incident, NewIncident};

    fn an_incident(conn: &Connection, at: DateTime<Utc>) -> IncidentNo {
        create_incident(
            conn,
            &NewIncident {
                subject: "s",
                summary: "",
                customer_address: "a@b.c",
                customer_name: None,
                reply_address: "a@b.c",
                reply_name: None,
                sender_trust: crate::mail::Trust::Verified,
                cadence: std::time::Duration::from_secs(60),
                next_update_at: at,
            },
            |n| format!("FU-{n}-x"),
            at,
        )
        .expect("incident")
    }

    fn acknowledgement(incident: IncidentNo, message_id: &str) -> NewOutgoing<'_> {
        NewOutgoing {
            incident,
            kind: MailKind::Acknowledgement,
            caused_by: None,
            message_id,
            recipient: "a@b.c",
            recipient_name: None,
            in_reply_to: None,
            references: "",
            context: "{}",
            raw: None,
            subject: None,
            render_error: None,
            thread_index: None,
            attachments_from: None,
            mailbox: "a@b.c",
            domain: "b.c",
            unverified: false,
        }
    }

    #[test]
    fn an_incident_gets_exactly_one_acknowledgement_row() {
        let conn = crate::store::open_in_memory().expect("db");
        let now = Utc::now();
        let id = an_incident(&conn, now);
        enqueue(&conn, &acknowledgement(id, "m1@x"), now).expect("first");
        assert!(enqueue(&conn, &acknowledgement(id, "m2@x"), now).is_err());
    }

    /// One acknowledgement, marked `sending`, then put in doubt at `since`.
    fn one_in_doubt(since: DateTime<Utc>, grace: chrono::Duration) -> Connection {
        let conn = crate::store::open_in_memory().expect("db");
        let id = an_incident(&conn, since);
        let row = enqueue(&conn, &acknowledgement(id, "m1@x"), since).expect("queued");
        mark_sending(&conn, &[row]).expect("sending");
        requeue_in_doubt(&conn, row, Some(since), since + grace).expect("in doubt");
        conn
    }

    #[test]
    fn mail_in_doubt_is_resent_once_intake_read_past_it_and_not_before() {
        let since = Utc::now();
        let conn = one_in_doubt(since, chrono::Duration::minutes(10));
        let s = chrono::Duration::seconds;
        let due = |now, rule| due_outgoing(&conn, now, rule, 10).expect("due").len();
        let waiting = InDoubtRule {
            settled_before: None,
            intake_stalled: false,
        };
        assert_eq!(due(since + s(30), waiting), 0, "no pass since: wait");
        let read_to = |t| InDoubtRule {
            settled_before: Some(t),
            intake_stalled: false,
        };
        // A pass that began (minus the margin) at the very moment it went in doubt may have
        // missed a receipt delivered just after.
        assert_eq!(due(since + s(30), read_to(since)), 0);
        assert_eq!(
            due(since + s(30), read_to(since + s(1))),
            1,
            "read past it, no receipt"
        );
        let stalled = InDoubtRule {
            settled_before: None,
            intake_stalled: true,
        };
        assert_eq!(due(since + s(599), stalled), 0, "stalled intake: the grace");
        assert_eq!(
            due(since + s(600), stalled),
            1,
            "then resent without a receipt"
        );
    }
}
