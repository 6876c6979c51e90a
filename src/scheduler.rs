//! The scheduler: the one place that acts when time passes.
//!
//! Each tick reads only due work from SQLite through partial indexes (open incidents by next
//! update, quiet ones by their last note, resolved ones by check-back and close time), so
//! 100 000 open incidents cost no more per tick than the few that are due, and hands each to the
//! decision core. Every step and the mail it causes commit together.
//!
//! [`upcoming`] is the same tick, run at each future time something falls due, inside a
//! transaction that is rolled back: it cannot disagree with what the daemon will do.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::apply::{act_contained, ActError};
use crate::clock::{self, serde_stamp, stamp};
use crate::deps::Deps;
use crate::errors::Chain;
use crate::incident::{
    at_risk_line, Actor, AtRisk, Effects, Event, EventKind, IncidentNo, MailKind, NewEvent, State,
};
use crate::outbox::queue::QueueError;
use crate::outbox::{Pass, Queued};
use crate::store::{self, StoreError};

/// Incidents handled per kind of due work per tick; the rest wait for the next tick.
const BATCH: usize = 500;

/// A digest waits until no line was added to it for this long (a burst arriving over several
/// polls comes in one digest)…
const DIGEST_SETTLE: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// …or until its oldest line has waited this long.
const DIGEST_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The shortest step between two ticks of the preview: `upcoming` lists times to the minute.
const STEP: chrono::Duration = chrono::Duration::minutes(1);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub updates: usize,
    pub overdue: usize,
    pub check_backs: usize,
    pub closed: usize,
    pub escalations: usize,
    /// Mails queued (not suppressed): the sender has work.
    pub queued: usize,
    /// What was done, for `upcoming`.
    pub actions: Vec<Upcoming>,
}

impl TickReport {
    fn did_anything(&self) -> bool {
        self.updates + self.check_backs + self.closed + self.escalations > 0
    }
}

/// One thing the daemon does, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upcoming {
    #[serde(with = "serde_stamp")]
    pub at: DateTime<Utc>,
    /// A kind of mail (`progress`, `check_back`, `escalation`, …) or `close`.
    pub what: String,
    pub incident: IncidentNo,
    pub recipient: Option<String>,
    pub detail: String,
}

/// One pass over due work, in one transaction.
pub fn tick(
    conn: &mut Connection,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<TickReport, StoreError> {
    let tx = conn.transaction()?;
    let report = tick_in(&tx, deps, now, Pass::Real)?;
    tx.commit()?;
    if report.did_anything() {
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

/// What falls due, in the order the tick handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Progress,
    AtRisk,
    Quiet,
    TeamAlarm,
    CheckBack,
    Close,
}

/// When an incident quiet since `since` has been quiet too long: `[escalation] after_no_note`
/// of staff working time.
fn quiet_until(config: &crate::config::Config, since: DateTime<Utc>) -> DateTime<Utc> {
    clock::after_working(
        since,
        config.escalation.after_no_note,
        config.staff.window.as_ref(),
    )
}

/// Whether anyone would be mailed an escalation.
fn escalations_go_somewhere(deps: &Deps) -> bool {
    let config = &deps.config;
    !config.escalation.staff.is_empty() || !config.staff.recipients().is_empty()
}

/// One pass inside the caller's transaction.
pub fn tick_in(
    conn: &Connection,
    deps: &Deps,
    now: DateTime<Utc>,
    pass: Pass,
) -> Result<TickReport, StoreError> {
    let config = &deps.config;
    // A preview without staff to escalate to has nothing to show for a quiet incident.
    // Outside staff hours nobody is escalated to (they are when the hours begin).
    let staff_away = config
        .staff
        .window
        .as_ref()
        .is_some_and(|w| !w.includes(now));
    let quiet = if staff_away || (pass == Pass::Preview && !escalations_go_somewhere(deps)) {
        Vec::new()
    } else {
        // Quiet for `after_no_note` of the team's working time: a night or a weekend without
        // a note is no neglect. The clock's time is the least it can be.
        store::incidents::quiet_incidents(
            conn,
            clock::before(now, config.escalation.after_no_note),
            clock::before(now, config.staff.grace_after_customer),
            BATCH,
        )?
        .into_iter()
        .filter(|(_, since)| quiet_until(config, *since) <= now)
        .map(|(n, _)| n)
        .collect()
    };
    let mut report = TickReport::default();
    let lists = [
        (
            Due::Progress,
            store::incidents::due_updates(conn, clock::after(now, config.cadence.lead), BATCH)?,
        ),
        // Worked out when its turn comes, after this tick's updates moved their promises.
        (Due::AtRisk, Vec::new()),
        (Due::Quiet, quiet),
        (
            Due::TeamAlarm,
            store::incidents::team_alarms(conn, now, BATCH)?,
        ),
        (
            Due::CheckBack,
            store::incidents::due_check_backs(conn, now, BATCH)?,
        ),
        (Due::Close, store::incidents::due_closes(conn, now, BATCH)?),
    ];
    for (due, numbers) in lists {
        if due == Due::AtRisk {
            at_risk_alarms(conn, deps, pass, now, &mut report)?;
            continue;
        }
        for n in numbers {
            let event = match due {
                Due::Progress => Event::ProgressDue,
                Due::AtRisk => continue,
                Due::Quiet => Event::QuietTooLong,
                Due::TeamAlarm => Event::TeamAlarmDue,
                Due::CheckBack => Event::CheckBackDue,
                Due::Close => Event::CloseDue,
            };
            let Some((effects, _)) = step(conn, deps, n, &event, pass, now, &mut report)? else {
                continue;
            };
            // Nothing decided is no work done: counted as work, a preview would tick again at
            // the same time for ever.
            if effects.is_empty() {
                continue;
            }
            match due {
                Due::Progress => {
                    report.updates += 1;
                    report.overdue += usize::from(effects.logs(EventKind::PromiseBreached));
                    if effects
                        .mails()
                        .any(|m| m.kind == crate::incident::MailKind::Escalation)
                        || effects.logs(EventKind::EscalationDue)
                    {
                        report.escalations += 1;
                    }
                }
                Due::AtRisk => {}
                Due::Quiet => report.escalations += 1,
                Due::TeamAlarm => {
                    if effects
                        .mails()
                        .any(|m| m.kind == crate::incident::MailKind::Escalation)
                    {
                        report.escalations += 1;
                    }
                }
                Due::CheckBack => report.check_backs += 1,
                Due::Close => {
                    if effects.new_state() == Some(State::Closed) {
                        report.closed += 1;
                        report.actions.push(Upcoming {
                            at: now,
                            what: "close".into(),
                            incident: n,
                            recipient: None,
                            detail: "no mail; closes unless the customer replies".into(),
                        });
                    }
                }
            }
        }
    }
    digests(conn, deps, pass, now, &mut report)?;
    Ok(report)
}

/// The promises at risk, in due order: each member's first alarm is stepped before the ones it
/// lists, and a later one counts as told only when that first mail to the member was queued
/// (not held back by a cap, not failed): otherwise it goes in a mail of its own.
fn at_risk_alarms(
    conn: &Connection,
    deps: &Deps,
    pass: Pass,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let mut told: HashSet<(IncidentNo, String)> = HashSet::new();
    for (n, mut at) in at_risk_together(conn, deps, now)? {
        at.told_with
            .retain(|to, first| told.contains(&(*first, to.clone())));
        let Some((_, applied)) = step(conn, deps, n, &Event::PromiseAtRisk(at), pass, now, report)?
        else {
            continue;
        };
        for mail in applied.mails {
            if mail.kind == MailKind::StaffAtRisk && matches!(mail.outcome, Queued::Waiting { .. })
            {
                told.insert((n, mail.to));
            }
        }
    }
    Ok(())
}

/// The promises at risk this tick, each with what its alarm tells whom. When one promise is
/// `at_risk_before` away, every promise due within `at_risk_batch` more is warned with it, and
/// each member gets one mail: the first of their incidents (in due order) lists the others.
/// Who would be told of each is asked of the decision itself, so the shares follow its rules
/// (the assignee first, nobody while the customer is awaited).
fn at_risk_together(
    conn: &Connection,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<Vec<(IncidentNo, AtRisk)>, StoreError> {
    let staff = &deps.config.staff;
    if staff.recipients().is_empty() {
        return Ok(Vec::new());
    }
    let until = clock::after(now, staff.at_risk_before);
    if store::incidents::at_risk(conn, until, 1)?.is_empty() {
        return Ok(Vec::new());
    }
    let until = clock::after(until, staff.at_risk_batch);
    let numbers = store::incidents::at_risk(conn, until, BATCH)?;
    let policy = deps.policy();
    let plain = AtRisk {
        until,
        ..AtRisk::default()
    };
    let mut out: BTreeMap<IncidentNo, AtRisk> = BTreeMap::new();
    let order = numbers.clone();
    // Per recipient, their incidents in due order.
    let mut shares: BTreeMap<String, Vec<IncidentNo>> = BTreeMap::new();
    let mut lines: BTreeMap<IncidentNo, String> = BTreeMap::new();
    for n in numbers {
        out.insert(n, plain.clone());
        let Some(facts) = crate::apply::facts(conn, n)? else {
            continue;
        };
        let event = Event::PromiseAtRisk(plain.clone());
        // A decision that fails here fails again in its own step, which reports it.
        let Ok(Ok(effects)) =
            crate::contain::caught(|| crate::incident::decide(&facts, &event, &policy, now))
        else {
            continue;
        };
        for mail in effects.mails().filter(|m| m.kind == MailKind::StaffAtRisk) {
            shares.entry(mail.to.clone()).or_default().push(n);
        }
        lines.insert(n, at_risk_line(&facts.incident, &policy, now));
    }
    for (to, incidents) in shares {
        let Some((first, rest)) = incidents.split_first() else {
            continue;
        };
        let listed = rest.iter().filter_map(|n| lines.get(n).cloned()).collect();
        if let Some(at) = out.get_mut(first) {
            at.also.insert(to.clone(), listed);
        }
        for n in rest {
            if let Some(at) = out.get_mut(n) {
                at.told_with.insert(to.clone(), *first);
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|n| out.remove(&n).map(|at| (n, at)))
        .collect())
}

/// Staff notifications held back by `[staff] notify_cap`, and the new incidents of a burst, go
/// out as one digest per recipient once no line was added for a few minutes.
fn digests(
    conn: &Connection,
    deps: &Deps,
    pass: Pass,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    for recipient in store::outbox::digest_recipients(conn)? {
        let held = store::outbox::held_for(conn, &recipient)?;
        // A burst comes over several polls: its digest waits until it has been quiet a few
        // minutes (or the oldest line has waited long enough), so it comes in one mail.
        let settled = |h: Option<&store::outbox::Held>, wait| {
            h.is_some_and(|h| clock::after(h.at, wait) <= now)
        };
        if !settled(held.last(), DIGEST_SETTLE) && !settled(held.first(), DIGEST_WAIT_MAX) {
            continue;
        }
        // The digest is what relieves a full cap, so the cap does not hold it back; but a
        // member whose cap is full gets at most one digest per `DIGEST_WAIT_MAX`.
        let capped = crate::outbox::caps::staff_refusal(
            conn,
            &recipient,
            &deps.config.staff.notify_cap,
            now,
        )?
        .is_some();
        if capped
            && store::outbox::automatic_mail_since(
                conn,
                &recipient,
                clock::before(now, DIGEST_WAIT_MAX),
            )?
            .iter()
            .any(|(_, kind)| *kind == MailKind::StaffDigest)
        {
            continue;
        }
        let mut lines = Vec::with_capacity(held.len());
        for h in &held {
            let incident = store::incidents::incident(conn, h.incident)?;
            lines.push(crate::incident::letters::DigestLine {
                incident: h.incident,
                kind: h.kind,
                at: h.at,
                subject: incident
                    .as_ref()
                    .map(|i| i.subject.clone())
                    .unwrap_or_default(),
                assignee: incident.and_then(|i| i.assigned_to),
            });
        }
        let Some(mail) = crate::incident::letters::digest(&lines, &recipient, &deps.policy())
        else {
            continue;
        };
        let newest = held.last().map(|h| h.incident);
        let Some(incident) = newest else { continue };
        match crate::outbox::enqueue(conn, deps, incident, &mail, pass, now) {
            Ok(outcome) => {
                let message_id = match &outcome {
                    Queued::Waiting { message_id } => Some(message_id.as_str()),
                    _ => None,
                };
                let ids: Vec<i64> = held.iter().map(|h| h.id).collect();
                store::outbox::digested(conn, &ids, message_id)?;
                if matches!(outcome, Queued::Waiting { .. }) {
                    report.queued += 1;
                    report.actions.push(Upcoming {
                        at: now,
                        what: mail.kind.to_string(),
                        incident,
                        recipient: Some(recipient.clone()),
                        detail: format!("{} held-back notifications", held.len()),
                    });
                }
            }
            Err(QueueError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::error!(recipient, error = %Chain(&e), "scheduler: cannot queue a digest; will retry");
            }
        }
    }
    Ok(())
}

/// Acts on one due incident under its own savepoint: an incident whose mail cannot be queued
/// is logged and skipped (and retried next tick) instead of stopping everyone else's updates.
/// A database failure stops the tick.
fn step(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    event: &Event,
    pass: Pass,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<Option<(Effects, crate::apply::Applied)>, StoreError> {
    match store::in_savepoint(conn, || act_contained(conn, deps, n, event, pass, now)) {
        Ok((effects, applied)) => {
            report.queued += applied.queued();
            for mail in &applied.mails {
                let detail = match &mail.outcome {
                    Queued::Waiting { .. } => describe(&effects, mail.kind),
                    Queued::Suppressed(reason) => format!("suppressed: {reason}"),
                    Queued::Failed(reason) => format!("failed: {reason}"),
                };
                report.actions.push(Upcoming {
                    at: now,
                    what: mail.kind.to_string(),
                    incident: n,
                    recipient: Some(mail.to.clone()),
                    detail,
                });
            }
            Ok(Some((effects, applied)))
        }
        Err(ActError::Queue(QueueError::Store(e))) => Err(e),
        Err(ActError::NotFound(_)) => Ok(None),
        Err(ActError::Panic(panic)) => {
            // Rolled back; trying again next tick would fail the same way, every minute.
            tracing::error!(incident = n.0, panic = %panic, "scheduler: a bug stopped work on this incident; it is marked for staff and passed over until they act on it");
            if pass == Pass::Real {
                store::incidents::set_fault(conn, n, &panic, now)?;
                store::events::log(
                    conn,
                    &NewEvent {
                        incident: Some(n),
                        message: None,
                        kind: EventKind::InternalError,
                        actor: Actor::Daemon,
                        detail: format!(
                            "the scheduler stopped on this incident, a bug: {panic}; no \
                             updates until a staff member acts on it"
                        ),
                    },
                    now,
                )?;
            }
            Ok(None)
        }
        Err(other) => {
            tracing::error!(incident = n.0, error = %Chain(&other), "scheduler: cannot act on this incident; will retry");
            Ok(None)
        }
    }
}

/// A line for `upcoming` about a queued mail.
fn describe(effects: &Effects, kind: MailKind) -> String {
    let mail = effects.mails().find(|m| m.kind == kind);
    match mail.and_then(|m| m.promise) {
        Some(next) if mail.is_some_and(|m| m.data.overdue) => {
            format!("late; promises the next update by {}", stamp(next))
        }
        Some(next) => format!("promises the next update by {}", stamp(next)),
        None => String::new(),
    }
}

/// Every mail the daemon will send and every incident it will close by `until`, and when: the
/// queued mail as it stands, then the scheduler's real tick at each time something falls due,
/// in a transaction that is rolled back. Each incident shows the next time each kind of thing
/// happens to it (a progress update repeats every cadence; the first is listed).
pub fn upcoming(
    conn: &mut Connection,
    deps: &Deps,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Upcoming>, StoreError> {
    let tx = conn.transaction()?;
    let mut list: Vec<Upcoming> = store::outbox::queued_until(&tx, until)?
        .into_iter()
        .map(|q| Upcoming {
            at: q.due.max(now),
            what: q.kind.to_string(),
            incident: q.incident,
            recipient: Some(q.recipient),
            detail: format!("queued, attempt {}", q.attempts + 1),
        })
        .collect();
    let mut t = now;
    let mut ticks = 0usize;
    let mut listed: HashSet<(IncidentNo, String)> = HashSet::new();
    // What was done at the current time: a second tick at the same time must do something
    // new (the rest of a full batch), or the preview moves on.
    let mut done_now: HashSet<(IncidentNo, String)> = HashSet::new();
    while t <= until {
        ticks += 1;
        let report = tick_in(&tx, deps, t, Pass::Preview)?;
        let busy = report.did_anything();
        let mut progressed = false;
        for action in &report.actions {
            listed.insert((action.incident, action.what.clone()));
            progressed |= done_now.insert((action.incident, action.what.clone()));
        }
        stop_following(&tx, deps, &report.actions, &listed, t)?;
        list.extend(report.actions);
        let next = next_due(&tx, deps, Pass::Preview)?;
        let at = match next {
            // Left over from a full batch: tick again at the same time.
            Some(next) if next <= t && busy && progressed => t,
            // The next tick at the next due time, at most one a minute: the daemon ticks
            // every poll interval anyway, and a week ahead stays a few thousand ticks.
            Some(next) => next.max(t + STEP),
            None => break,
        };
        if at != t {
            done_now.clear();
        }
        t = at;
    }
    drop(tx); // rolled back: nothing the simulation did is kept
    tracing::debug!(
        ticks,
        actions = list.len(),
        "upcoming: simulated the scheduler"
    );
    list.sort_by(|a, b| a.at.cmp(&b.at).then(a.incident.cmp(&b.incident)));
    let mut seen = HashSet::new();
    list.retain(|u| seen.insert((u.incident, u.what.clone(), u.recipient.clone())));
    Ok(list)
}

/// An open incident whose progress update is listed has nothing new to show once its
/// escalation is listed too, or cannot come (no staff to mail, or escalated already): from
/// then on its updates only repeat every cadence. The preview stops following it (in the
/// rolled-back transaction), so a week ahead costs a few steps per incident, not one per
/// cadence.
fn stop_following(
    conn: &Connection,
    deps: &Deps,
    actions: &[Upcoming],
    listed: &HashSet<(IncidentNo, String)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let progress = MailKind::Progress.to_string();
    let escalation = MailKind::Escalation.to_string();
    for action in actions.iter().filter(|a| a.what == progress) {
        let n = action.incident;
        let escalation_listed = listed.contains(&(n, escalation.clone()));
        let cannot_escalate = !escalations_go_somewhere(deps)
            || store::incidents::incident(conn, n)?.is_some_and(|i| i.escalated_at.is_some());
        if escalation_listed || cannot_escalate {
            store::incidents::set_due_off(conn, n, now)?;
        }
    }
    Ok(())
}

/// When the next tick has work: the earliest of every kind of due work (in a preview without
/// staff to escalate to, quiet incidents are not work).
fn next_due(
    conn: &Connection,
    deps: &Deps,
    pass: Pass,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let config = &deps.config;
    let quiet_is_work = pass == Pass::Real || escalations_go_somewhere(deps);
    let e = store::incidents::earliest_due(conn, quiet_is_work)?;
    Ok([
        e.update.map(|t| clock::before(t, config.cadence.lead)),
        e.check_back,
        e.close,
        e.quiet_since.map(|t| quiet_until(config, t)),
    ]
    .into_iter()
    .flatten()
    .min())
}

/// `upcoming` against the daemon: random incidents in random states, previewed a day ahead,
/// then the real ticks of a daemon polling every ten minutes over that day. Every first
/// occurrence of each kind of thing the preview lists for an incident, the ticks do within one
/// poll of the listed time, and the ticks do nothing the preview did not list.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::config::Config;
    use crate::incident::decide::tests_support::{property_runs, Rng};
    use crate::incident::decide::{StaffAction, Written};
    use crate::incident::{Event, Resolution};
    use crate::mail::Trust;
    use crate::store::NewIncident;

    fn at(s: &str) -> DateTime<Utc> {
        crate::clock::parse_stamp(s).expect("time")
    }

    fn customer(n: usize, text: &str) -> Event {
        Event::CustomerReply {
            message: crate::incident::MessageRow(0),
            from: format!("c{n}@example.test"),
            trust: Trust::Verified,
            written: Written {
                text: text.into(),
                ..Written::default()
            },
        }
    }

    fn staff(action: StaffAction) -> Event {
        Event::Staff {
            by: "alice".into(),
            action,
        }
    }

    /// (incident, what) → the first time it happens.
    type Firsts = BTreeMap<(IncidentNo, String), DateTime<Utc>>;

    fn firsts(actions: impl IntoIterator<Item = Upcoming>) -> Firsts {
        let mut out = Firsts::new();
        for u in actions {
            out.entry((u.incident, u.what)).or_insert(u.at);
        }
        out
    }

    /// Anna and Ben share every alarm (no window); one incident per time, each promised an
    /// update then on Monday 23 November 2026.
    fn anna_and_ben_with_promises_at(dues: &[&str]) -> (Deps, Connection) {
        let mut config = Config::example().expect("example config");
        config.staff.members = vec!["anna@example.test".into(), "ben@example.test".into()];
        config.staff.notify.clear();
        config.staff.window = None;
        config.cadence.window = None;
        let deps = Deps::for_tests(config);
        let conn = crate::store::open_in_memory().expect("db");
        let t0 = at("2026-11-23T09:00:00Z");
        for (i, due) in dues.iter().enumerate() {
            crate::store::incidents::create_incident(
                &conn,
                &NewIncident {
                    subject: &format!("Problem {i}"),
                    summary: "",
                    customer_address: &format!("c{i}@example.test"),
                    customer_name: None,
                    reply_address: &format!("c{i}@example.test"),
                    reply_name: None,
                    sender_trust: Trust::Verified,
                    cadence: Duration::from_secs(4 * 3600),
                    next_update_at: at(&format!("2026-11-23T{due}:00Z")),
                },
                |n| format!("FU-{n}-x"),
                t0,
            )
            .expect("incident");
        }
        (deps, conn)
    }

    /// Anna and Ben share the team's alarms. Promises at 14:00 and 14:40 are at risk together
    /// at 13:00: one mail each, about the first, listing the second; the 16:30 one waits for
    /// its own time and comes alone.
    #[test]
    fn promises_at_risk_together_reach_each_member_in_one_mail() {
        let (deps, mut conn) = anna_and_ben_with_promises_at(&["14:00", "14:40", "16:30"]);
        let alarms = |conn: &mut Connection, t: &str| -> Vec<(IncidentNo, String)> {
            tick(conn, &deps, at(t))
                .expect("tick")
                .actions
                .into_iter()
                .filter(|a| a.what == MailKind::StaffAtRisk.to_string())
                .map(|a| (a.incident, a.recipient.unwrap_or_default()))
                .collect()
        };
        assert!(alarms(&mut conn, "2026-11-23T12:59:00Z").is_empty());
        let first = alarms(&mut conn, "2026-11-23T13:00:00Z");
        assert_eq!(
            first,
            vec![
                (IncidentNo(1), "anna@example.test".to_string()),
                (IncidentNo(1), "ben@example.test".to_string()),
            ]
        );
        let shown = crate::store::events::incident_events(&conn, IncidentNo(2)).expect("events");
        assert!(
            shown.iter().any(|e| e
                .detail
                .contains("in one mail with the alarm of incident 1")),
            "{shown:?}"
        );
        assert!(
            alarms(&mut conn, "2026-11-23T13:40:00Z").is_empty(),
            "told once"
        );
        assert_eq!(
            alarms(&mut conn, "2026-11-23T15:30:00Z").len(),
            2,
            "the 16:30 promise alone, an hour ahead"
        );
    }

    /// The daemon was down from 12:00 to 13:55: at 13:55 the 14:00 promise's update goes out
    /// (its next promise is 18:00, nothing at risk), so the 14:30 promise, which would have
    /// been listed in its alarm, gets an alarm of its own rather than none.
    #[test]
    fn an_alarm_whose_first_went_with_an_update_is_still_sent() {
        let (deps, mut conn) = anna_and_ben_with_promises_at(&["14:00", "14:30"]);
        let actions = tick(&mut conn, &deps, at("2026-11-23T13:55:00Z"))
            .expect("tick")
            .actions;
        let alarms: Vec<(IncidentNo, String)> = actions
            .iter()
            .filter(|a| a.what == MailKind::StaffAtRisk.to_string())
            .map(|a| (a.incident, a.recipient.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            alarms,
            vec![
                (IncidentNo(2), "anna@example.test".to_string()),
                (IncidentNo(2), "ben@example.test".to_string()),
            ],
            "{actions:#?}"
        );
    }

    #[test]
    fn upcoming_lists_what_the_next_ticks_do() {
        let mut config = Config::example().expect("example config");
        config.escalation.staff = vec!["lead@example.test".into()];
        let mut office = config.clone();
        let tz = chrono_tz::Tz::Europe__Berlin;
        office.cadence.timezone = tz;
        office.cadence.window = Some(
            crate::clock::Window::parse("0 0 9 * * Mon-Fri", Duration::from_secs(8 * 3600), tz)
                .expect("window")
                .with_holidays(
                    crate::clock::Holidays::from_dates(["2026-11-24"]).expect("holiday"),
                ),
        );
        let both = [Deps::for_tests(config), Deps::for_tests(office)];
        // 10,000 sequences in the suite, on two threads (one per configuration): about 90 s
        // on the 2-core CI machine; FOLLOWUPD_PROPERTY_RUNS for a longer hunt.
        let runs = property_runs(10_000);
        std::thread::scope(|scope| {
            for (k, deps) in both.iter().enumerate() {
                let k = u64::try_from(k).unwrap_or(0);
                scope.spawn(move || {
                    // Every store starts as a copy of one migrated store: running the
                    // migrations for each of them would be most of the work.
                    let template = crate::store::open_in_memory().expect("db");
                    for seed in (k..runs).step_by(2) {
                        one_life(&template, deps, seed);
                    }
                });
            }
        });
    }

    /// One random store: three incidents, a few events each, then `upcoming` over the next
    /// day against what that day's ticks really do.
    fn one_life(template: &Connection, deps: &Deps, seed: u64) {
        let poll = chrono::Duration::minutes(10);
        let mut rng = Rng::seeded(seed);
        let mut conn = crate::store::open_in_memory_like(template).expect("db");
        let t0 = at("2026-11-23T09:00:00Z");
        let mut now = t0;
        for i in 0..3 {
            let cadence = Duration::from_secs([3600, 4 * 3600, 86_400][i]);
            let n = crate::store::incidents::create_incident(
                &conn,
                &NewIncident {
                    subject: "s",
                    summary: "",
                    customer_address: &format!("c{i}@example.test"),
                    customer_name: None,
                    reply_address: &format!("c{i}@example.test"),
                    reply_name: None,
                    sender_trust: Trust::Verified,
                    cadence,
                    next_update_at: crate::clock::after(t0, cadence),
                },
                |n| format!("FU-{n}-x"),
                t0,
            )
            .expect("incident");
            crate::store::incidents::add_participant(
                &conn,
                n,
                &format!("c{i}@example.test"),
                crate::incident::Role::Customer,
            )
            .expect("participant");
            for _ in 0..rng.below(4) {
                now += chrono::Duration::minutes(i64::try_from(rng.below(120)).unwrap_or(0));
                let event = match rng.below(7) {
                    0 => customer(i, "Please stop sending me these updates."),
                    1 => customer(i, "Any news?"),
                    2 => customer(i, "Please update me every 2 hours."),
                    3 => staff(StaffAction::Note("We found the cause.".into())),
                    4 => staff(StaffAction::Wait("the serial number".into())),
                    5 => staff(StaffAction::Resolve(Resolution {
                        root_cause: "A certificate expired.".into(),
                        prevention: "They renew automatically now.".into(),
                        ..Resolution::default()
                    })),
                    _ => staff(StaffAction::Close),
                };
                let _ = crate::apply::act(&conn, deps, n, &event, Pass::Real, now);
            }
        }
        let until = now + chrono::Duration::days(1);
        let all = upcoming(&mut conn, deps, now, until).expect("upcoming");
        // Mail queued already is the sender's, not a tick's; the list shows each kind once
        // per incident, so a kind queued already hides the tick's next one of it.
        let queued: Vec<(IncidentNo, String)> = all
            .iter()
            .filter(|u| u.detail.starts_with("queued"))
            .map(|u| (u.incident, u.what.clone()))
            .collect();
        let listed = firsts(all.into_iter().filter(|u| !u.detail.starts_with("queued")));
        let mut done = Vec::new();
        let mut t = now;
        while t <= until {
            done.extend(tick(&mut conn, deps, t).expect("tick").actions);
            t += poll;
        }
        let done = firsts(
            done.into_iter()
                .filter(|u| !queued.contains(&(u.incident, u.what.clone()))),
        );
        for (key, at) in &listed {
            let happened = done.get(key);
            assert!(
                happened.is_some_and(|h| *h >= *at - poll && *h < *at + poll),
                "seed {seed}: {key:?} listed for {at}, done at {happened:?}"
            );
        }
        for (key, at) in &done {
            assert!(
                listed.contains_key(key),
                "seed {seed}: {key:?} done at {at} but not listed"
            );
        }
    }
}
