//! What customers said after the fix, and how promises went: the check-back answers and the
//! weekly summary `followupd report satisfaction` prints.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{Result, Ts};
use crate::incident::{IncidentNo, MessageRow};

/// Records an answer to the check-back.
pub fn record_answer(
    conn: &Connection,
    incident: IncidentNo,
    message: MessageRow,
    fixed: Option<bool>,
    rating: Option<u8>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO check_back_answers (incident_id, message_id, answered_at, fixed, rating)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![incident, message, Ts(now), fixed, rating])?;
    Ok(())
}

/// One week: ratings, answers to "is it working now?", and promises kept and breached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Week {
    /// The Monday the week starts on (UTC), `2026-11-23`.
    pub week_of: String,
    pub ratings: i64,
    /// The mean rating, None without one.
    pub average_rating: Option<f64>,
    pub fixed_yes: i64,
    pub fixed_no: i64,
    pub promises_kept: i64,
    pub promises_breached: i64,
}

/// Every week since `since` that has an answer or a settled promise, oldest first. Promises
/// count in the week they were due.
pub fn weekly(conn: &Connection, since: DateTime<Utc>) -> Result<Vec<Week>> {
    let mut stmt = conn.prepare_cached(
        "SELECT week, SUM(rated), AVG(rating), SUM(yes), SUM(no), SUM(kept), SUM(breached)
         FROM (
             SELECT date(answered_at, 'weekday 0', '-6 days') AS week,
                    rating IS NOT NULL AS rated, rating, fixed = 1 AS yes, fixed = 0 AS no,
                    0 AS kept, 0 AS breached
               FROM check_back_answers WHERE answered_at >= ?1
             UNION ALL
             SELECT date(due_at, 'weekday 0', '-6 days'), 0, NULL, 0, 0,
                    kept_at IS NOT NULL, breached_at IS NOT NULL
               FROM promises
              WHERE due_at >= ?1 AND (kept_at IS NOT NULL OR breached_at IS NOT NULL))
         GROUP BY week ORDER BY week",
    )?;
    let rows = stmt
        .query_map([Ts(since)], |r| {
            Ok(Week {
                week_of: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                ratings: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                average_rating: r.get(2)?,
                fixed_yes: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                fixed_no: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                promises_kept: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                promises_breached: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
