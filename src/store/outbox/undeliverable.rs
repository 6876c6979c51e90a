//! Addresses a bounce marked undeliverable: no mail goes there until the person writes again
//! or staff clear the mark.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Undeliverable {
    pub address: String,
    #[serde(with = "serde_stamp")]
    pub since: DateTime<Utc>,
    pub reason: String,
    pub incident: Option<IncidentNo>,
    pub bounce_message: Option<MessageRow>,
}

/// Returns whether the address was newly marked.
pub fn mark_undeliverable(
    conn: &Connection,
    address: &str,
    reason: &str,
    incident: Option<IncidentNo>,
    bounce: MessageRow,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = conn.execute(
        "INSERT OR IGNORE INTO undeliverable (address, since, reason, incident_id, bounce_row)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![address, Ts(now), reason, incident, bounce],
    )?;
    Ok(changed > 0)
}

pub(super) const UNDELIVERABLE_COLUMNS: &str = "address, since, reason, incident_id, bounce_row";

pub(super) fn undeliverable_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Undeliverable> {
    Ok(Undeliverable {
        address: r.get(0)?,
        since: ts_at(r, 1)?,
        reason: r.get(2)?,
        incident: r.get(3)?,
        bounce_message: r.get(4)?,
    })
}

pub fn undeliverable(conn: &Connection, address: &str) -> Result<Option<Undeliverable>> {
    let sql = format!("SELECT {UNDELIVERABLE_COLUMNS} FROM undeliverable WHERE address = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([address], undeliverable_row)
        .optional()?)
}

pub fn all_undeliverable(conn: &Connection) -> Result<Vec<Undeliverable>> {
    let sql = format!("SELECT {UNDELIVERABLE_COLUMNS} FROM undeliverable ORDER BY since");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], undeliverable_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Returns whether the address was marked.
pub fn clear_undeliverable(conn: &Connection, address: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM undeliverable WHERE address = ?1", [address])? > 0)
}

// --- Invariants the probe checks after every message ------------------------------------------
