//! Counts for `/metrics`, `followupd status` and the daemon's `STATUS=` line, read from the
//! database at the moment they are asked for: the record is the truth, so a restart resets
//! nothing and the CLI and the daemon cannot disagree. Every query reads an index or a small
//! table; `scripts`' figures are in docs/development.md.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{Result, Ts};

/// Everything `/metrics` and `status` show that the database knows.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// Incidents by state (open, waiting, resolved, closed).
    pub incidents: BTreeMap<String, i64>,
    /// Incoming messages by class (human, auto-reply, bounce, bulk, loop, junk, quarantined).
    pub messages: BTreeMap<String, i64>,
    /// Outgoing mail by outbox state (queued, sending, sent, failed).
    pub outbox: BTreeMap<String, i64>,
    /// When the oldest queued mail was queued.
    #[serde(with = "crate::clock::serde_stamp::option")]
    pub oldest_queued: Option<DateTime<Utc>>,
    /// Attempts to hand mail to the relay, by outcome (sent, retry, failed).
    pub sends: BTreeMap<String, i64>,
    /// Promises by outcome (kept, breached, pending).
    pub promises: BTreeMap<String, i64>,
    /// Incidents escalated to staff.
    pub escalations: i64,
    /// Mail decided and not sent, by reason (the reason's words before its first colon).
    pub suppressed: BTreeMap<String, i64>,
    /// The start of intake's last complete pass: everything delivered before it has been read.
    #[serde(with = "crate::clock::serde_stamp::option")]
    pub read_through: Option<DateTime<Utc>>,
}

impl Snapshot {
    pub fn open_incidents(&self) -> i64 {
        self.incidents.get("open").copied().unwrap_or(0)
            + self.incidents.get("waiting").copied().unwrap_or(0)
    }

    pub fn queued(&self) -> i64 {
        self.outbox.get("queued").copied().unwrap_or(0)
    }
}

fn grouped(conn: &Connection, sql: &str) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (key, n) = row?;
        *out.entry(key).or_insert(0) += n;
    }
    Ok(out)
}

pub fn snapshot(conn: &Connection) -> Result<Snapshot> {
    let oldest_queued: Option<Ts> = conn.query_row(
        sql!("SELECT min(created_at) FROM outbox WHERE state = {OutboxState::Queued}"),
        [],
        |r| r.get(0),
    )?;
    let read_through: Option<Ts> =
        conn.query_row("SELECT min(read_through) FROM imap_checkpoint", [], |r| {
            r.get(0)
        })?;
    Ok(Snapshot {
        incidents: grouped(conn, "SELECT state, count(*) FROM incidents GROUP BY state")?,
        messages: grouped(
            conn,
            "SELECT class, count(*) FROM messages WHERE direction = 'in' GROUP BY class",
        )?,
        outbox: grouped(conn, "SELECT state, count(*) FROM outbox GROUP BY state")?,
        oldest_queued: oldest_queued.map(|t| t.0),
        sends: grouped(
            conn,
            "SELECT outcome, count(*) FROM send_attempts GROUP BY outcome",
        )?,
        promises: grouped(
            conn,
            "SELECT CASE WHEN kept_at IS NOT NULL THEN 'kept'
                         WHEN breached_at IS NOT NULL THEN 'breached'
                         ELSE 'pending' END, count(*)
             FROM promises GROUP BY 1",
        )?,
        escalations: conn.query_row(
            "SELECT count(*) FROM incidents WHERE escalated_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?,
        suppressed: grouped(
            conn,
            "SELECT CASE WHEN instr(reason, ':') > 0
                         THEN substr(reason, 1, min(instr(reason, ':') - 1, 40))
                         ELSE substr(reason, 1, 40) END, count(*)
             FROM suppressed WHERE listed_only = 0 GROUP BY 1",
        )?,
        read_through: read_through.map(|t| t.0),
    })
}
