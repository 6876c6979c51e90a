//! The event log: append-only (triggers refuse UPDATE and DELETE, see migration 001).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{ts_at, Result, Ts};
use crate::clock::serde_stamp;
use crate::incident::{Actor, EventKind, IncidentNo, NewEvent};

pub fn log(conn: &Connection, event: &NewEvent, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (at, incident_id, message_row, kind, actor, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        Ts(now),
        event.incident,
        event.message,
        event.kind,
        event.actor,
        event.detail
    ])?;
    Ok(())
}

/// How many events of `kind` incident `incident` had since `since`.
pub fn count_since(
    conn: &Connection,
    incident: IncidentNo,
    kind: EventKind,
    since: DateTime<Utc>,
) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM events WHERE incident_id = ?1 AND kind = ?2 AND at >= ?3",
        )?
        .query_row(params![incident, kind, Ts(since)], |r| r.get(0))?)
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEvent {
    #[serde(with = "serde_stamp")]
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub actor: Actor,
    pub detail: String,
}

pub fn incident_events(conn: &Connection, incident: IncidentNo) -> Result<Vec<TimelineEvent>> {
    let mut stmt = conn.prepare(
        "SELECT at, kind, actor, COALESCE(detail, '') FROM events
         WHERE incident_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([incident], |r| {
            Ok(TimelineEvent {
                at: ts_at(r, 0)?,
                kind: r.get(1)?,
                actor: r.get(2)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_log_is_append_only() {
        let conn = super::super::open_in_memory().expect("db");
        let event = NewEvent {
            incident: None,
            message: None,
            kind: EventKind::UidvalidityChanged,
            actor: Actor::Daemon,
            detail: "x".into(),
        };
        log(&conn, &event, Utc::now()).expect("insert");
        assert!(conn.execute("UPDATE events SET detail = 'y'", []).is_err());
        assert!(conn.execute("DELETE FROM events", []).is_err());
    }
}
