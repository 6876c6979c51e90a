//! The schedule over random lives of an incident: complaints answered, chasers, stop and
//! pace requests, notes, waits, resolutions, reopens and the clock moving over nights,
//! weekends and a holiday. Two properties, checked after every step:
//!
//! - **every tick ends**: a timer that falls due (an update, a check-back, a close, an
//!   escalation) is no longer due once it has been decided at the same time. A timer that
//!   stays due is decided again on every tick for nothing, and `upcoming`, which ticks again
//!   at the same time while work is left, would never return;
//! - **every promise is one the schedule keeps**: a customer mail that promises the next
//!   update by a time promises a time still to come, inside the sending window, and the
//!   incident's schedule holds an update by then; no promise goes to a customer who asked for
//!   quiet;
//! - **no scheduled update repeats the one before it** word for word.

use super::test_kit::decide;
use super::test_kit::*;
use super::tests_support::{at, property_runs, Rng, T0};
use super::*;
use crate::config::Config;

/// What Ann writes: chasers, a stop, a pace, check-back answers, plain news.
const ANN_WRITES: &[&str] = &[
    "Any news?",
    "Hello?? Is anyone there?",
    "Please stop sending me these automatic updates.",
    "Please update me every hour.",
    "Once a day is enough, thanks.",
    "Yes, it works now. 5",
    "No, it still fails.",
    "Here is the screenshot you asked for.",
    "Thanks!",
    "4",
    "Des nouvelles ?",
];

/// The timers the scheduler fires, as its due queries select them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Progress,
    CheckBack,
    Close,
    Quiet,
    TeamAlarm,
}

fn due(f: &Facts, config: &Config, now: DateTime<Utc>) -> Vec<Timer> {
    let i = &f.incident;
    let mut out = Vec::new();
    if i.state() == State::Open
        && !i.updates_stopped
        && i.next_update_at()
            .is_some_and(|t| t <= clock::after(now, config.cadence.lead))
    {
        out.push(Timer::Progress);
    }
    let (check_back_at, close_at) = i.check_back();
    if check_back_at.is_some_and(|t| t <= now) {
        out.push(Timer::CheckBack);
    }
    if close_at.is_some_and(|t| t <= now) {
        out.push(Timer::Close);
    }
    if i.state() == State::Open
        && i.escalated_at.is_none()
        && i.on_hold.is_none()
        && config.staff.window.as_ref().is_none_or(|w| w.includes(now))
        && i.customer_wrote_at
            .is_none_or(|w| w <= clock::before(now, config.staff.grace_after_customer))
        && clock::after_working(
            i.last_note_at.unwrap_or(i.opened_at),
            config.escalation.after_no_note,
            config.staff.window.as_ref(),
        ) <= now
    {
        out.push(Timer::Quiet);
    }
    if i.state() == State::Open && i.team_alarm_at.is_some_and(|t| t <= now) {
        out.push(Timer::TeamAlarm);
    }
    out
}

/// The facts after `fx`, as the store would hold them.
fn apply(f: &mut Facts, fx: &Effects, now: DateTime<Utc>) {
    for effect in &fx.list {
        effect.evolve(&mut f.incident, now);
        match effect {
            Effect::Note {
                author,
                text,
                visibility,
                signed,
            } => {
                let note = Note {
                    at: now,
                    author: author.clone(),
                    text: text.clone(),
                    visibility: *visibility,
                    signed: signed.clone(),
                };
                if *visibility == NoteVisibility::Customer {
                    f.unheard_note = Some(note.clone());
                }
                f.latest_note = Some(note);
            }
            Effect::SettlePromises => f.open_promises.clear(),
            _ => {}
        }
    }
    for mail in fx.mails() {
        if mail.kind.audience() != crate::incident::Audience::Customer {
            continue;
        }
        if let Some(p) = mail.promise {
            f.open_promises.push(p);
        }
        if !mail.data.note.is_empty() {
            f.unheard_note = None;
        }
    }
}

fn check_promises(
    f: &Facts,
    fx: &Effects,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(), String> {
    for mail in fx.mails() {
        let Some(p) = mail.promise else { continue };
        let i = &f.incident;
        if p <= now {
            return Err(format!("{} promises {p}, not after now {now}", mail.kind));
        }
        if config.cadence.working_time(p) != p {
            return Err(format!(
                "{} promises {p}, outside the sending window",
                mail.kind
            ));
        }
        if i.updates_stopped {
            return Err(format!(
                "{} promises {p} to a customer who asked for quiet",
                mail.kind
            ));
        }
        // Kept by an update the schedule holds by then (or the incident is no longer open,
        // and the promise is settled by what closed it).
        if i.state() == State::Open && i.next_update_at().is_none_or(|n| n > p) {
            return Err(format!(
                "{} promises {p}, but the next update is {:?}",
                mail.kind,
                i.next_update_at()
            ));
        }
    }
    Ok(())
}

/// No scheduled update is word for word the one before it: each says how long the team has
/// been on it and which update without news it is.
fn check_not_repeated(last: &mut Option<MailData>, fx: &Effects) -> Result<(), String> {
    for mail in fx.mails().filter(|m| m.kind == MailKind::Progress) {
        if last.as_ref() == Some(&mail.data) {
            return Err(format!(
                "the same progress update twice: {:?}",
                mail.data.note
            ));
        }
        *last = Some(mail.data.clone());
    }
    Ok(())
}

/// One tick at `now`, then ticks at the same time while work is left, as `upcoming` does:
/// each must leave a decided timer no longer due.
fn tick(
    f: &mut Facts,
    config: &Config,
    now: DateTime<Utc>,
    last: &mut Option<MailData>,
) -> Result<(), String> {
    for _ in 0..4 {
        let timers = due(f, config, now);
        if timers.is_empty() {
            return Ok(());
        }
        for timer in timers {
            let event = match timer {
                Timer::Progress => Event::ProgressDue,
                Timer::CheckBack => Event::CheckBackDue,
                Timer::Close => Event::CloseDue,
                Timer::Quiet => Event::QuietTooLong,
                Timer::TeamAlarm => Event::TeamAlarmDue,
            };
            let fx = decide(f, &event, config, now).map_err(|r| format!("{timer:?}: {r}"))?;
            apply(f, &fx, now);
            check_promises(f, &fx, config, now)?;
            check_not_repeated(last, &fx)?;
            if due(f, config, now).contains(&timer) {
                return Err(format!(
                    "{timer:?} at {now} is still due after it was decided: {:?}",
                    f.incident.stage
                ));
            }
        }
    }
    Err(format!(
        "still work at {now} after four ticks: {:?}",
        due(f, config, now)
    ))
}

fn life(seed: u64, config: &Config, steps: usize) -> Result<(), String> {
    let mut rng = Rng::seeded(seed);
    let mut now = at(T0);
    let mut f = facts(open_incident());
    let mut message = 100;
    let mut last = None;
    let resolution = Resolution {
        root_cause: "A certificate expired.".into(),
        prevention: "Certificates renew automatically now.".into(),
        ..Resolution::default()
    };
    for step in 0..steps {
        let event = match rng.below(12) {
            0..=2 => {
                message += 1;
                ann_writes(message, rng.pick(ANN_WRITES))
            }
            3 => staff(StaffAction::Note(
                "We found the cause; a fix is in test.".into(),
            )),
            4 => staff(StaffAction::Wait("the serial number".into())),
            5 => staff(StaffAction::Resume),
            6 => staff(StaffAction::Resolve(resolution.clone())),
            7 => staff(StaffAction::Reopen),
            8 => staff(StaffAction::Cadence(Duration::from_secs(*rng.pick(&[
                &60,
                &600,
                &3600,
                &(4 * 3600),
                &86_400,
            ])))),
            9 => staff(StaffAction::Close),
            _ => {
                // Minutes, hours or days: across nights, a weekend, Christmas.
                let minutes = match rng.below(3) {
                    0 => rng.below(90),
                    1 => rng.below(24 * 60),
                    _ => rng.below(4 * 24 * 60),
                };
                now += chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(0) + 1);
                tick(&mut f, config, now, &mut last).map_err(|e| format!("step {step}: {e}"))?;
                continue;
            }
        };
        if let Ok(fx) = decide(&f, &event, config, now) {
            apply(&mut f, &fx, now);
            check_promises(&f, &fx, config, now)
                .map_err(|e| format!("step {step}, {event:?}: {e}"))?;
        }
        // Whatever was decided, the next tick at the same time must end.
        tick(&mut f, config, now, &mut last)
            .map_err(|e| format!("step {step}, after {event:?}: {e}"))?;
    }
    Ok(())
}

#[test]
fn every_tick_ends_and_every_promise_is_kept_over_ten_thousand_random_lives() {
    let mut window = office_hours();
    window.staff.members = vec!["lead@example.test".into()];
    let configs = [staffed(), window];
    let mut failures = Vec::new();
    let runs = property_runs(10_000).max(10_000);
    for seed in 0..runs {
        let config = &configs[usize::try_from(seed % 2).unwrap_or(0)];
        if let Err(e) = life(seed, config, 24) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} lives failed, the first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
