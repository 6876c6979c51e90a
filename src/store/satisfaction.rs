//! What customers said after the fix, and how promises went: the check-back answers and the
//! weekly summary `followupd report satisfaction` prints.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{Result, Ts};
use crate::incident::replies::Reading;
use crate::incident::{IncidentNo, MessageRow};

/// One answer to the check-back, as the decision read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub message: MessageRow,
    pub fixed: Option<bool>,
    pub rating: Option<u8>,
    pub reading: Reading,
}

/// Records an answer to the check-back.
pub fn record_answer(
    conn: &Connection,
    incident: IncidentNo,
    answer: &Answer,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO check_back_answers
             (incident_id, message_id, answered_at, fixed, rating, reading)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        incident,
        answer.message,
        Ts(now),
        answer.fixed,
        answer.rating,
        answer.reading
    ])?;
    Ok(())
}

/// One week: the check-back answers by how they were read (what was done with each), the
/// ratings, and promises kept and breached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Week {
    /// The Monday the week starts on (UTC), `2026-11-23`.
    pub week_of: String,
    /// Answers by reading (`works`, `not_fixed`, …: [`Reading::as_str`]), every reading
    /// present.
    pub answers: BTreeMap<String, i64>,
    pub ratings: i64,
    /// The mean rating, None without one.
    pub average_rating: Option<f64>,
    pub promises_kept: i64,
    pub promises_breached: i64,
}

impl Week {
    /// How many answers were read as `reading`.
    pub fn read_as(&self, reading: Reading) -> i64 {
        self.answers.get(reading.as_str()).copied().unwrap_or(0)
    }
}

/// Every week since `since` that has an answer or a settled promise, oldest first. Promises
/// count in the week they were due. Answers recorded before readings were kept are read from
/// what was stored: fixed yes, fixed no, or a rating alone.
pub fn weekly(conn: &Connection, since: DateTime<Utc>) -> Result<Vec<Week>> {
    let mut weeks: BTreeMap<String, Week> = BTreeMap::new();
    fn week(weeks: &mut BTreeMap<String, Week>, week_of: String) -> &mut Week {
        weeks.entry(week_of.clone()).or_insert_with(|| Week {
            week_of,
            answers: Reading::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), 0))
                .collect(),
            ratings: 0,
            average_rating: None,
            promises_kept: 0,
            promises_breached: 0,
        })
    }
    let mut answers = conn.prepare_cached(
        "SELECT date(answered_at, 'weekday 0', '-6 days'),
                coalesce(reading, CASE fixed WHEN 1 THEN 'works' WHEN 0 THEN 'not_fixed'
                                             ELSE 'rated' END),
                COUNT(*)
           FROM check_back_answers WHERE answered_at >= ?1
          GROUP BY 1, 2",
    )?;
    let rows = answers
        .query_map([Ts(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Reading>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (w, reading, n) in rows {
        *week(&mut weeks, w)
            .answers
            .entry(reading.as_str().to_string())
            .or_insert(0) += n;
    }
    let mut ratings = conn.prepare_cached(
        "SELECT date(answered_at, 'weekday 0', '-6 days'), COUNT(rating), AVG(rating)
           FROM check_back_answers WHERE answered_at >= ?1 AND rating IS NOT NULL
          GROUP BY 1",
    )?;
    let rows = ratings
        .query_map([Ts(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (w, count, average) in rows {
        let week = week(&mut weeks, w);
        week.ratings = count;
        week.average_rating = Some(average);
    }
    let mut promises = conn.prepare_cached(
        "SELECT date(due_at, 'weekday 0', '-6 days'),
                SUM(kept_at IS NOT NULL), SUM(breached_at IS NOT NULL)
           FROM promises
          WHERE due_at >= ?1 AND (kept_at IS NOT NULL OR breached_at IS NOT NULL)
          GROUP BY 1",
    )?;
    let rows = promises
        .query_map([Ts(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (w, kept, breached) in rows {
        let week = week(&mut weeks, w);
        week.promises_kept = kept;
        week.promises_breached = breached;
    }
    Ok(weeks.into_values().collect())
}
