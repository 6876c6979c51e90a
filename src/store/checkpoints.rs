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
