//! The sender task: drains due mail as soon as it is queued, and sleeps until the next retry
//! otherwise. When the relay cannot be reached, the relay is retried on its own schedule, not
//! each mail on its own: the first answer drains the whole queue at once.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Shared;
use crate::outbox::send::DbTrouble;
use crate::outbox::{drain, DrainReport};
use crate::smtp::Smtp;
use crate::store::{self, Handle};

/// How often the sender looks at the outbox when nobody woke it: mail queued by a CLI action
/// (another process) is found within this long.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The relay is asked again after 1 s, then 2 s, 4 s, up to this: a relay back from an outage
/// gets the queue within this long (plus the drain).
const RELAY_PROBE_MAX: Duration = Duration::from_secs(5);

/// The longest wait after a database read failed.
const DB_RETRY_MAX: Duration = Duration::from_secs(5);

/// The relay's state, as the sender last saw it.
struct RelayDown {
    since: Instant,
    next_probe: Instant,
    backoff: Duration,
}

pub(super) async fn run(
    shared: &Shared,
    mut db: Handle,
    smtp: &Smtp,
    mut stop: watch::Receiver<bool>,
) {
    let stop_flag = stop.clone();
    let stopping = move || *stop_flag.borrow();
    let health = shared.health.clone();
    let mut trouble = DbTrouble::patient(move || health.beat(super::health::Task::Sender));
    let mut down: Option<RelayDown> = None;
    let mut db_backoff = Duration::from_millis(250);
    while !*stop.borrow() {
        shared.health.beat(super::health::Task::Sender);
        if let Some(relay) = down.as_mut() {
            let now = Instant::now();
            if now < relay.next_probe {
                tokio::select! {
                    () = tokio::time::sleep(relay.next_probe - now) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            match smtp.probe().await {
                Ok(_) => {
                    tracing::info!(
                        down_for = %humantime::format_duration(Duration::from_secs(relay.since.elapsed().as_secs())),
                        "SMTP relay answers again; sending the queue"
                    );
                    down = None;
                    shared.health.smtp(None);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "SMTP relay still unreachable");
                    relay.backoff = (relay.backoff * 2).min(RELAY_PROBE_MAX);
                    relay.next_probe = Instant::now() + relay.backoff;
                    continue;
                }
            }
        }
        let wait = match drain(&mut db, &shared.deps(), smtp, &stopping, &mut trouble).await {
            Ok(report) => {
                db_backoff = Duration::from_millis(250);
                trouble.cleared();
                if let Some(why) = report.unreachable.clone() {
                    shared.health.smtp(Some(why.clone()));
                    tracing::warn!(error = %why, probe_every = %humantime::format_duration(RELAY_PROBE_MAX), "SMTP relay unreachable; mail waits queued and the relay is retried");
                    let backoff = Duration::from_secs(1);
                    down = Some(RelayDown {
                        since: Instant::now(),
                        next_probe: Instant::now() + backoff,
                        backoff,
                    });
                }
                log_drain(&report);
                until_next_due(shared, &mut db, &mut trouble).await
            }
            Err(e) => {
                trouble.failed("sending the outbox", &e);
                let wait = db_backoff;
                db_backoff = (db_backoff * 2).min(DB_RETRY_MAX);
                wait
            }
        };
        if down.is_some() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.queued.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// How long the sender may sleep: until the next retry falls due, at most [`LOOK_EVERY`].
async fn until_next_due(shared: &Shared, db: &mut Handle, trouble: &mut DbTrouble) -> Duration {
    match db.run(|c| store::outbox::next_due(c)).await {
        Ok(Some(at)) => (at - shared.deps().now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(LOOK_EVERY),
        Ok(None) => LOOK_EVERY,
        Err(e) => {
            trouble.failed("reading when mail is due", &e);
            LOOK_EVERY
        }
    }
}

fn log_drain(report: &DrainReport) {
    if report.sent + report.retrying + report.failed > 0 {
        tracing::info!(
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            "outbox drained"
        );
    }
}
