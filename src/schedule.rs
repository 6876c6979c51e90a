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
    let cadence = std::time::Duration::from_secs(u64::try_from(incident.cadence_secs).unwrap_or(0));
    // From the promised time when on time, so the cadence does not drift earlier by the lead.
    let base = promised.filter(|p| *p > now).unwrap_or(now);
    let next = policy::next_update_at(base, cadence);
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
