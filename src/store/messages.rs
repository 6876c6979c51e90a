//! The message log (every message in and out, with its raw bytes) and the threading index
//! (Message-IDs and Outlook conversations by incident).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{column, ts_at, Result, Ts};
use crate::clock::serde_stamp;
use crate::incident::{IncidentNo, MailKind, MessageRow};
use crate::mail::{Attachment, MessageClass, Trust, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Where an incoming message came from on the IMAP server.
#[derive(Debug, Clone, Copy)]
pub struct ImapOrigin<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// One row of the message log, incoming or outgoing.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub direction: Direction,
    pub incident: Option<IncidentNo>,
    pub message_id: Option<&'a str>,
    pub dedupe_key: Option<&'a str>,
    pub from_addr: Option<&'a str>,
    pub to_addr: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub date_header: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: Option<&'a str>,
    pub class: MessageClass,
    /// For mail we sent: its kind.
    pub kind: Option<MailKind>,
    pub class_reason: Option<&'a str>,
    pub sha256: &'a str,
    pub raw: &'a [u8],
    /// The real size when `raw` holds only the headers of an oversized message.
    pub oversize: Option<u64>,
    /// How far the sender is proven (incoming mail).
    pub trust: Option<&'a Verdict>,
}

impl<'a> NewMessage<'a> {
    /// An incoming message of `class` with nothing else known yet.
    pub fn incoming(class: MessageClass, sha256: &'a str, raw: &'a [u8]) -> NewMessage<'a> {
        NewMessage {
            direction: Direction::In,
            incident: None,
            message_id: None,
            dedupe_key: None,
            from_addr: None,
            to_addr: None,
            subject: None,
            date_header: None,
            in_reply_to: None,
            references: None,
            class,
            kind: None,
            class_reason: None,
            sha256,
            raw,
            oversize: None,
            trust: None,
        }
    }
}

pub fn insert_message(
    conn: &Connection,
    m: &NewMessage<'_>,
    origin: Option<ImapOrigin<'_>>,
    now: DateTime<Utc>,
) -> Result<MessageRow> {
    conn.prepare_cached(
        "INSERT INTO messages (direction, incident_id, message_id, dedupe_key, from_addr, to_addr,
             subject, date_header, in_reply_to, references_, class, class_reason, sha256, size,
             imap_mailbox, imap_uidvalidity, imap_uid, recorded_at, headers_only, kind, trust,
             trust_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        m.direction.as_str(),
        m.incident,
        m.message_id,
        m.dedupe_key,
        m.from_addr,
        m.to_addr,
        m.subject,
        m.date_header,
        m.in_reply_to,
        m.references,
        m.class,
        m.class_reason,
        m.sha256,
        m.oversize
            .map_or(m.raw.len() as i64, |n| i64::try_from(n).unwrap_or(i64::MAX)),
        origin.map(|o| o.mailbox),
        origin.map(|o| o.uidvalidity),
        origin.map(|o| o.uid),
        Ts(now),
        m.oversize.is_some(),
        m.kind,
        m.trust.map(|t| t.level),
        m.trust.map(|t| t.reason.as_str()),
    ])?;
    let row = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO message_raw (message_id, raw) VALUES (?1, ?2)")?
        .execute(params![row, RawBlob(m.raw)])?;
    if m.raw.len() > STREAMED {
        // Written through the page cache a piece at a time: a bound blob would be copied into
        // SQLite's own memory whole first.
        let mut blob = conn.blob_open(rusqlite::MAIN_DB, "message_raw", "raw", row, false)?;
        for (i, piece) in m.raw.chunks(STREAMED).enumerate() {
            blob.write_at(piece, i * STREAMED)?;
        }
    }
    Ok(MessageRow(row))
}

/// Messages larger than this are stored a piece of this size at a time.
const STREAMED: usize = 64 * 1024;

/// The raw bytes as bound: a large message as room for itself (the row's last column, so
/// SQLite writes it without holding it), filled in after the insert.
struct RawBlob<'a>(&'a [u8]);

impl rusqlite::ToSql for RawBlob<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        if self.0.len() > STREAMED {
            let len = i32::try_from(self.0.len())
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            Ok(rusqlite::types::ToSqlOutput::ZeroBlob(len))
        } else {
            self.0.to_sql()
        }
    }
}

/// A message already recorded under a dedupe key (Message-ID, or content hash without one).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: MessageRow,
    pub incident: Option<IncidentNo>,
    pub sha256: String,
}

pub fn find_by_dedupe_key(conn: &Connection, key: &str) -> Result<Option<Recorded>> {
    Ok(conn
        .prepare_cached("SELECT id, incident_id, sha256 FROM messages WHERE dedupe_key = ?1")?
        .query_row([key], |r| {
            Ok(Recorded {
                id: r.get(0)?,
                incident: r.get(1)?,
                sha256: r.get(2)?,
            })
        })
        .optional()?)
}

/// The raw bytes, or None when `[retention] raw_after` (or an erasure) removed them.
/// A quarantined message as `quarantine release` needs it.
#[derive(Debug, Clone)]
pub struct HeldMessage {
    /// Still `quarantined` (it may have been erased or reclassified since).
    pub quarantined: bool,
    /// The message it went through intake again as, once released.
    pub released_as: Option<MessageRow>,
    pub imap: Option<(String, u32, u32)>,
}

pub fn held_message(conn: &Connection, row: MessageRow) -> Result<Option<HeldMessage>> {
    Ok(conn
        .prepare_cached(
            "SELECT class = 'quarantined', released_as, imap_mailbox, imap_uidvalidity, imap_uid
             FROM messages WHERE id = ?1 AND direction = 'in'",
        )?
        .query_row([row], |r| {
            let mailbox: Option<String> = r.get(2)?;
            let uidvalidity: Option<u32> = r.get(3)?;
            let uid: Option<u32> = r.get(4)?;
            Ok(HeldMessage {
                quarantined: r.get(0)?,
                released_as: r.get(1)?,
                imap: mailbox
                    .zip(uidvalidity)
                    .zip(uid)
                    .map(|((m, v), u)| (m, v, u)),
            })
        })
        .optional()?)
}

/// Before a held message goes through intake again: its identity (the dedupe key) and its
/// place in the mailbox move to the message it is recorded as next, so that the same mail is
/// still on record once and the IMAP message is finished with that one.
pub fn hand_over_held(conn: &Connection, row: MessageRow) -> Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET dedupe_key = NULL, imap_mailbox = NULL, imap_uidvalidity = NULL,
                imap_uid = NULL
         WHERE id = ?1",
    )?
    .execute([row])?;
    Ok(())
}

/// The held message `row` went through intake again as `as_row`.
pub fn mark_released(conn: &Connection, row: MessageRow, as_row: MessageRow) -> Result<()> {
    conn.prepare_cached("UPDATE messages SET released_as = ?2 WHERE id = ?1")?
        .execute(params![row, as_row])?;
    Ok(())
}

/// The newest message still held in quarantine that a `staff/held` notice on `incident`
/// sent before `before` was about: what `#release` in a reply to it releases.
pub fn held_for_incident(
    conn: &Connection,
    incident: IncidentNo,
    before: DateTime<Utc>,
) -> Result<Option<MessageRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT m.id FROM events e JOIN messages m ON m.id = e.message_row
             WHERE e.incident_id = ?1 AND e.kind = 'held_for_staff' AND e.at <= ?2
               AND m.class = 'quarantined' AND m.released_as IS NULL
             ORDER BY e.id DESC LIMIT 1",
        )?
        .query_row(params![incident, Ts(before)], |r| r.get(0))
        .optional()?)
}

pub fn raw_if_kept(conn: &Connection, row: MessageRow) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT raw FROM message_raw WHERE message_id = ?1",
            [row],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn message_raw(conn: &Connection, row: MessageRow) -> Result<Vec<u8>> {
    Ok(conn.query_row(
        "SELECT raw FROM message_raw WHERE message_id = ?1",
        [row],
        |r| r.get(0),
    )?)
}

/// The kept raw text of the mail people other than staff wrote into incident `n`, newest
/// first: what the customer has written, which no staff-only mail makes staff-only.
pub fn human_raws_about(conn: &Connection, n: IncidentNo, limit: usize) -> Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.raw FROM messages m JOIN message_raw r ON r.message_id = m.id
         WHERE m.incident_id = ?1 AND m.direction = 'in' AND m.class = 'human'
         ORDER BY m.id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(rusqlite::params![n, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn imap_uid_recorded(conn: &Connection, origin: ImapOrigin<'_>) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM messages
             WHERE imap_mailbox = ?1 AND imap_uidvalidity = ?2 AND imap_uid = ?3",
        )?
        .query_row(
            params![origin.mailbox, origin.uidvalidity, origin.uid],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn add_attachments(conn: &Connection, message: MessageRow, list: &[Attachment]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO attachments (message_row, position, name, content_type, size)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, a) in list.iter().enumerate() {
        stmt.execute(params![
            message,
            i as i64,
            a.name,
            a.content_type,
            i64::try_from(a.size).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}

// --- Threading index ---------------------------------------------------------------------------

pub fn incident_of_message_id(conn: &Connection, message_id: &str) -> Result<Option<IncidentNo>> {
    Ok(conn
        .prepare_cached("SELECT incident_id FROM message_ids WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()?)
}

pub fn index_message_id(conn: &Connection, message_id: &str, incident: IncidentNo) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO message_ids (message_id, incident_id) VALUES (?1, ?2)",
    )?
    .execute(params![message_id, incident])?;
    Ok(())
}

pub fn index_thread_root(conn: &Connection, root: &str, incident: IncidentNo) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO thread_indexes (root, incident_id) VALUES (?1, ?2)",
    )?
    .execute(params![root, incident])?;
    Ok(())
}

pub fn incidents_of_thread_root(conn: &Connection, root: &str) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        "SELECT incident_id FROM thread_indexes WHERE root = ?1 ORDER BY incident_id",
        [root],
    )
}

pub fn thread_root_of(conn: &Connection, incident: IncidentNo) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT root FROM thread_indexes WHERE incident_id = ?1 LIMIT 1")?
        .query_row([incident], |r| r.get(0))
        .optional()?)
}

/// An incident's conversation in order: the Message-IDs of the human mail it received, and of
/// every mail queued for it with that mail's kind (None for incoming). Incoming mail sorts
/// before our answer to it when both were recorded at the same instant. (The unary `+` keeps
/// SQLite on the incident's index rather than the much larger class index.)
pub fn conversation(
    conn: &Connection,
    incident: IncidentNo,
) -> Result<Vec<(String, Option<MailKind>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id, kind FROM (
             SELECT message_id, NULL AS kind, recorded_at AS at, 0 AS side, id FROM messages
              WHERE incident_id = ?1 AND +direction = 'in' AND message_id IS NOT NULL
                AND +class = 'human'
             UNION ALL
             SELECT message_id, kind, created_at AS at, 1 AS side, id FROM outbox
              WHERE incident_id = ?1)
         ORDER BY at, side, id",
    )?;
    let rows = stmt
        .query_map([incident], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// --- The log, for people -----------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct TimelineMessage {
    pub id: MessageRow,
    pub direction: Direction,
    #[serde(with = "serde_stamp")]
    pub at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub class: MessageClass,
    /// For mail we sent: its kind (`acknowledgement`, …).
    pub kind: Option<MailKind>,
    pub class_reason: Option<String>,
    /// How far the receiving server proved the sender (incoming mail).
    pub trust: Option<Trust>,
    pub trust_reason: Option<String>,
    pub size: i64,
    pub incident: Option<IncidentNo>,
    pub headers_only: bool,
    /// When `[retention] raw_after` dropped the raw bytes (the metadata stays).
    #[serde(with = "serde_stamp::option")]
    pub raw_dropped_at: Option<DateTime<Utc>>,
    pub attachments: Vec<AttachmentRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentRow {
    pub name: Option<String>,
    pub content_type: String,
    pub size: i64,
}

const TIMELINE_COLUMNS: &str = "id, direction, recorded_at, message_id, from_addr, to_addr,
    subject, class, kind, class_reason, size, incident_id, headers_only, trust, trust_reason, raw_dropped_at";

fn timeline_message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TimelineMessage> {
    let direction: String = r.get(1)?;
    Ok(TimelineMessage {
        id: r.get(0)?,
        direction: if direction == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        at: ts_at(r, 2)?,
        message_id: r.get(3)?,
        from: r.get(4)?,
        to: r.get(5)?,
        subject: r.get(6)?,
        class: r.get(7)?,
        kind: r.get(8)?,
        class_reason: r.get(9)?,
        size: r.get(10)?,
        incident: r.get(11)?,
        headers_only: r.get(12)?,
        trust: r.get(13)?,
        trust_reason: r.get(14)?,
        raw_dropped_at: r.get::<_, Option<Ts>>(15)?.map(|t| t.0),
        attachments: Vec::new(),
    })
}

/// Fills in each message's attachment list.
fn with_attachments(
    conn: &Connection,
    mut rows: Vec<TimelineMessage>,
) -> Result<Vec<TimelineMessage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, content_type, size FROM attachments WHERE message_row = ?1 ORDER BY position",
    )?;
    for row in &mut rows {
        row.attachments = stmt
            .query_map([row.id], |r| {
                Ok(AttachmentRow {
                    name: r.get(0)?,
                    content_type: r.get(1)?,
                    size: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(rows)
}

/// Which messages `followupd messages` lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageFilter {
    pub class: Option<MessageClass>,
    pub kind: Option<MailKind>,
    /// Only what is still held: a quarantined message released since is left out.
    pub held_only: bool,
}

/// The message log, newest first.
pub fn messages(
    conn: &Connection,
    filter: MessageFilter,
    limit: usize,
) -> Result<Vec<TimelineMessage>> {
    let sql = format!(
        "SELECT {TIMELINE_COLUMNS} FROM messages
         WHERE (?1 IS NULL OR class = ?1) AND (?2 IS NULL OR kind = ?2)
           AND (?4 = 0 OR released_as IS NULL)
         ORDER BY id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(
            params![
                filter.class,
                filter.kind,
                i64::try_from(limit).unwrap_or(i64::MAX),
                filter.held_only
            ],
            timeline_message_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_attachments(conn, rows)
}

/// One message of the log, with its attachments listed.
pub fn message(conn: &Connection, id: MessageRow) -> Result<Option<TimelineMessage>> {
    let sql = format!("SELECT {TIMELINE_COLUMNS} FROM messages WHERE id = ?1");
    let row = conn
        .query_row(&sql, [id], timeline_message_row)
        .optional()?;
    match row {
        Some(row) => Ok(with_attachments(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

pub fn incident_messages(conn: &Connection, incident: IncidentNo) -> Result<Vec<TimelineMessage>> {
    let sql = format!(
        "SELECT {TIMELINE_COLUMNS} FROM messages WHERE incident_id = ?1 ORDER BY recorded_at, id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([incident], timeline_message_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_attachments(conn, rows)
}

/// How many rows record this IMAP UID (the probe: nothing lost, nothing doubled).
pub fn rows_of_uid(conn: &Connection, uid: u32) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE imap_uid = ?1",
        [uid],
        |r| r.get(0),
    )?)
}

pub fn sender_of_uid(conn: &Connection, uid: u32) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT from_addr FROM messages WHERE imap_uid = ?1",
            [uid],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}
