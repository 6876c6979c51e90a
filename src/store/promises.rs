//! The promise ledger: every mail that promises an update records when; the next update keeps
//! it, or breaches it when it goes out late.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::{column, Result, Ts};
use crate::incident::{IncidentNo, MailKind};

/// Records a promised update. A mail that repeats a promise already open (a status answer)
/// adds no second row.
pub fn record(
    conn: &Connection,
    id: IncidentNo,
    made_by: MailKind,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO promises (incident_id, made_at, due_at, made_by)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, Ts(now), Ts(due), made_by])?;
    Ok(())
}

/// Settles the incident's open promises as an update goes out now: kept if their time has not
/// passed, breached if it has.
pub fn settle(conn: &Connection, id: IncidentNo, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE promises SET breached_at = ?2
         WHERE incident_id = ?1 AND kept_at IS NULL AND breached_at IS NULL AND due_at < ?2",
    )?
    .execute(params![id, Ts(now)])?;
    conn.prepare_cached(
        "UPDATE promises SET kept_at = ?2
         WHERE incident_id = ?1 AND kept_at IS NULL AND breached_at IS NULL",
    )?
    .execute(params![id, Ts(now)])?;
    Ok(())
}

/// Due times of the open promises (neither kept nor breached).
pub fn open(conn: &Connection, id: IncidentNo) -> Result<Vec<DateTime<Utc>>> {
    let stamps: Vec<Ts> = column(
        conn,
        "SELECT due_at FROM promises
         WHERE incident_id = ?1 AND kept_at IS NULL AND breached_at IS NULL ORDER BY due_at",
        [id],
    )?;
    Ok(stamps.into_iter().map(|t| t.0).collect())
}

/// When the last promise to this customer was made (what notes are "new" against).
pub fn last_made(conn: &Connection, id: IncidentNo) -> Result<Option<DateTime<Utc>>> {
    Ok(conn
        .prepare_cached("SELECT MAX(made_at) FROM promises WHERE incident_id = ?1")?
        .query_row([id], |r| r.get::<_, Option<Ts>>(0))?
        .map(|t| t.0))
}
