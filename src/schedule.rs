//! The scheduler: the one place that owns time.
//!
//! Each tick reads only due work from SQLite through partial indexes (open incidents by next
//! update, resolved ones by check-back and close time), so 100 000 open incidents cost no more
//! per tick than the few that are due. Every step and the mail it causes commit together.
//! The clock is injectable: `run --once --now TIME` moves time instead of sleeping.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::lifecycle::{self, Actor, CustomerMail, Lifecycle};
use crate::outbox::Queued;
use crate::policy;
use crate::store::{self, StoreError};
use crate::templates::human_duration;

/// Incidents handled per step per tick; the rest wait for the next tick.
const BATCH: usize = 500;

/// When mail may promise to arrive: windows that open at each time a cron expression names
/// (six fields, seconds first, in the support team's time zone) and stay open for a length.
/// `0 0 9 * * Mon-Fri` with 8h is 09:00–17:00 on weekdays.
#[derive(Debug, Clone)]
pub struct Window {
    opens: cron::Schedule,
    length: chrono::Duration,
    tz: chrono_tz::Tz,
}

impl Window {
    pub fn parse(
        expr: &str,
        length: std::time::Duration,
        tz: chrono_tz::Tz,
    ) -> Result<Window, String> {
        let fields = expr.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!(
                "`{expr}` has {fields} fields; a window needs 6 (seconds first), like \
                 \"0 0 9 * * Mon-Fri\" for 09:00 on weekdays"
            ));
        }
        let opens: cron::Schedule = expr
            .parse()
            .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
        let length = chrono::Duration::from_std(length).map_err(|e| e.to_string())?;
        if length <= chrono::Duration::zero() {
            return Err("window_length must be above zero".into());
        }
        Ok(Window { opens, length, tz })
    }

    /// The first opening after `t`.
    fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.opens
            .after(&t.with_timezone(&self.tz))
            .next()
            .map(|o| o.with_timezone(&Utc))
    }

    /// Whether `t` falls inside a window: some opening in (t - length, t].
    pub fn includes(&self, t: DateTime<Utc>) -> bool {
        self.next_open(t - self.length).is_some_and(|o| o <= t)
    }

    /// A promise for `t` whose update goes out at `t - lead`: kept if both are inside a window,
    /// else moved to the next opening plus the lead. Returns the time and whether it moved.
    pub fn place(&self, t: DateTime<Utc>, lead: chrono::Duration) -> (DateTime<Utc>, bool) {
        if self.includes(t) && self.includes(t - lead) {
            return (t, false);
        }
        match self.next_open(t - lead) {
            Some(open) => (open + lead, true),
            None => (t, false),
        }
    }
}

/// Where "now" comes from: the system clock, or a fixed time for testing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// Time stands still at `at` (the hidden `--now` testing flag).
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock { fixed: Some(at) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub updates: usize,
    pub overdue: usize,
    pub check_backs: usize,
    pub closed: usize,
    pub escalations: usize,
}

/// One pass over due work, in one transaction.
pub fn tick(
    conn: &mut Connection,
    life: &Lifecycle<'_>,
    now: DateTime<Utc>,
) -> Result<TickReport, StoreError> {
    let tx = conn.transaction()?;
    let mut report = TickReport::default();
    let lead = chrono::Duration::from_std(life.cadence.lead).unwrap_or_default();
    for number in store::due_updates(&tx, now + lead, BATCH)? {
        if progress_update(&tx, life, number, now)? {
            report.overdue += 1;
        }
        report.updates += 1;
    }
    let quiet = chrono::Duration::from_std(life.escalation.after_no_note).unwrap_or_default();
    for number in store::quiet_incidents(&tx, now - quiet, BATCH)? {
        if let Some(incident) = store::incident(&tx, number)? {
            let reason = format!(
                "no staff note for {}",
                human_duration(life.escalation.after_no_note)
            );
            life.escalate(&tx, &incident, &reason, now)?;
            report.escalations += 1;
        }
    }
    for number in store::due_check_backs(&tx, now, BATCH)? {
        check_back(&tx, life, number, now)?;
        report.check_backs += 1;
    }
    for number in store::due_closes(&tx, now, BATCH)? {
        match life.close(&tx, Actor::Daemon, number, now) {
            Ok(()) => report.closed += 1,
            Err(lifecycle::LifecycleError::Store(e)) => return Err(e),
            Err(e) => tracing::warn!(incident = number, error = %e, "scheduled close skipped"),
        }
    }
    tx.commit()?;
    if report != TickReport::default() {
        tracing::info!(
            updates = report.updates,
            overdue = report.overdue,
            check_backs = report.check_backs,
            closed = report.closed,
            escalations = report.escalations,
            "scheduler tick"
        );
    }
    Ok(report)
}

/// The promised update: the newest note the customer has not heard, or an honest "still
/// working on it"; the next promise one cadence on. An update whose time already passed (the
/// daemon was down) goes out once, says it is late, and the breach is recorded. Returns
/// whether it was overdue.
fn progress_update(
    conn: &Connection,
    life: &Lifecycle<'_>,
    number: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(incident) = store::incident(conn, number)? else {
        return Ok(false);
    };
    let promised = incident
        .next_update_at
        .as_deref()
        .and_then(|t| store::parse_ts(t).ok());
    let overdue = promised.is_some_and(|p| p < now);
    let since = store::last_promise_made(conn, number)?;
    let note = store::note_since(conn, number, since.as_deref())?;
    let breached = store::settle_promises(conn, number, now)?;
    if overdue {
        store::log_event(
            conn,
            now,
            Some(number),
            None,
            "promise_breached",
            &format!(
                "the update promised for {} goes out late, at {}",
                incident.next_update_at.as_deref().unwrap_or("?"),
                store::ts(now)
            ),
        )?;
    }
    let cadence = incident.cadence();
    // From the promised time when on time, so the cadence does not drift earlier by the lead.
    let base = promised.filter(|p| *p > now).unwrap_or(now);
    let (next, moved) = life.cadence.promise(base, cadence);
    store::set_next_update(conn, number, Some(next))?;
    let no_news = if note.is_some() {
        0
    } else {
        incident.updates_without_news + 1
    };
    store::set_updates_without_news(conn, number, no_news)?;
    let queued = life.mail_customer(
        conn,
        &incident,
        CustomerMail {
            kind: "progress",
            promise: Some(next),
            caused_by: None,
        },
        |d| {
            d.note = note.clone().unwrap_or_default();
            d.overdue = overdue || breached > 0;
            d.window_moved = moved;
        },
        now,
    )?;
    // Escalate once, when the run of updates without news reaches the limit.
    if no_news == i64::from(life.escalation.no_news_updates) {
        if let Some(current) = store::incident(conn, number)? {
            let reason = format!("{no_news} updates in a row went out with no news");
            life.escalate(conn, &current, &reason, now)?;
        }
    }
    let detail = match &queued {
        Queued::Queued(_) => format!(
            "progress update {}; next by {}",
            if note.is_some() {
                "with the latest note"
            } else {
                "with no news"
            },
            store::ts(next)
        ),
        Queued::Suppressed(reason) => format!("progress update suppressed: {reason}"),
    };
    store::log_event(conn, now, Some(number), None, "progress_due", &detail)?;
    Ok(overdue)
}

fn check_back(
    conn: &Connection,
    life: &Lifecycle<'_>,
    number: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(incident) = store::incident(conn, number)? else {
        return Ok(());
    };
    let close_at = policy::next_update_at(now, life.cadence.close_after);
    store::set_check_back(conn, number, None, Some(close_at))?;
    let close_after = human_duration(life.cadence.close_after);
    life.mail_customer(
        conn,
        &incident,
        CustomerMail {
            kind: "check_back",
            promise: None,
            caused_by: None,
        },
        |d| d.close_after = close_after,
        now,
    )?;
    store::log_event(
        conn,
        now,
        Some(number),
        None,
        "check_back",
        &format!(
            "asked whether all is well; closes at {} unless the customer replies",
            store::ts(close_at)
        ),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(stamp: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(stamp)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn office_hours() -> Window {
        Window::parse(
            "0 0 9 * * Mon-Fri",
            std::time::Duration::from_secs(8 * 3600),
            chrono_tz::Tz::Europe__Berlin,
        )
        .expect("valid window")
    }

    #[test]
    fn promises_inside_the_window_stay_and_others_move_to_the_next_opening_plus_lead() {
        let w = office_hours();
        let lead = chrono::Duration::minutes(10);
        // Monday 13:00 in Berlin: inside.
        assert_eq!(
            w.place(utc("2026-11-23T12:00:00Z"), lead),
            (utc("2026-11-23T12:00:00Z"), false)
        );
        // Monday 20:00 in Berlin: Tuesday 09:10.
        assert_eq!(
            w.place(utc("2026-11-23T19:00:00Z"), lead),
            (utc("2026-11-24T08:10:00Z"), true)
        );
        // Friday evening: Monday morning.
        assert_eq!(
            w.place(utc("2026-11-27T17:00:00Z"), lead),
            (utc("2026-11-30T08:10:00Z"), true)
        );
        // 09:05: the update itself would go out at 08:55, before the window opens.
        assert_eq!(
            w.place(utc("2026-11-23T08:05:00Z"), lead),
            (utc("2026-11-23T08:10:00Z"), true)
        );
    }

    #[test]
    fn a_five_field_expression_gets_an_explanation() {
        let err = Window::parse(
            "0 9 * * 1-5",
            std::time::Duration::from_secs(3600),
            chrono_tz::Tz::UTC,
        )
        .unwrap_err();
        assert!(
            err.contains("has 5 fields") && err.contains("seconds first"),
            "{err}"
        );
    }
}
