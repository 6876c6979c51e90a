//! IMAP progress: the last UID read per mailbox, and which recorded messages still have to be
//! marked or moved on the server.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{column, Result, Ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

pub fn checkpoint(conn: &Connection, mailbox: &str) -> Result<Option<Checkpoint>> {
    Ok(conn
        .query_row(
            "SELECT uidvalidity, last_uid FROM imap_checkpoint WHERE mailbox = ?1",
            [mailbox],
            |r| {
                Ok(Checkpoint {
                    uidvalidity: r.get(0)?,
                    last_uid: r.get(1)?,
                })
            },
        )
        .optional()?)
}

pub fn set_checkpoint(
    conn: &Connection,
    mailbox: &str,
    cp: Checkpoint,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO imap_checkpoint (mailbox, uidvalidity, last_uid, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = ?2, last_uid = ?3, updated_at = ?4",
        params![mailbox, cp.uidvalidity, cp.last_uid, Ts(now)],
    )?;
    Ok(())
}

/// A complete pass over `mailbox`, started at `started`: every message delivered before then
/// has been read (receipts included). Also marks intake as making progress now.
pub fn record_pass(
    conn: &Connection,
    mailbox: &str,
    uidvalidity: u32,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO imap_checkpoint (mailbox, uidvalidity, last_uid, updated_at, read_through)
         VALUES (?1, ?2, 0, ?3, ?4)
         ON CONFLICT (mailbox) DO UPDATE SET updated_at = ?3, read_through = ?4",
    )?
    .execute(params![mailbox, uidvalidity, Ts(now), Ts(started)])?;
    Ok(())
}

/// How far intake has read `mailbox`, and when it last made progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeStatus {
    /// Every message delivered before this has been read.
    pub read_through: Option<DateTime<Utc>>,
    /// The last batch committed or pass completed.
    pub progress_at: DateTime<Utc>,
}

pub fn intake_status(conn: &Connection, mailbox: &str) -> Result<Option<IntakeStatus>> {
    Ok(conn
        .prepare_cached(
            "SELECT read_through, updated_at FROM imap_checkpoint WHERE mailbox = ?1",
        )?
        .query_row([mailbox], |r| {
            Ok(IntakeStatus {
                read_through: r.get::<_, Option<Ts>>(0)?.map(|t| t.0),
                progress_at: r.get::<_, Ts>(1)?.0,
            })
        })
        .optional()?)
}

/// Where a recorded message stands with its server copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterProcessing {
    /// To be marked seen / moved once the server answers.
    Pending,
    Done,
}

/// UIDs recorded but whose after-processing (mark seen / move) has not been confirmed yet.
pub fn pending_after_processing(
    conn: &Connection,
    mailbox: &str,
    uidvalidity: u32,
) -> Result<Vec<u32>> {
    column(
        conn,
        "SELECT imap_uid FROM messages
         WHERE imap_mailbox = ?1 AND imap_uidvalidity = ?2 AND after_processing = 'pending'
         ORDER BY imap_uid LIMIT 1000",
        params![mailbox, uidvalidity],
    )
}

pub fn set_after_processing(
    conn: &Connection,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
    state: AfterProcessing,
) -> Result<()> {
    let state = match state {
        AfterProcessing::Pending => "pending",
        AfterProcessing::Done => "done",
    };
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET after_processing = ?4
         WHERE imap_mailbox = ?1 AND imap_uidvalidity = ?2 AND imap_uid = ?3",
    )?;
    for uid in uids {
        stmt.execute(params![mailbox, uidvalidity, uid, state])?;
    }
    Ok(())
}
