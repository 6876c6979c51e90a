//! The service task: tells systemd how the daemon is doing. `READY=1` once IMAP has been
//! reached (or after `[service] ready_grace`, so a mail server down at boot does not fail the
//! start), a `STATUS=` line a human reads in `systemctl status`, and `WATCHDOG=1` only while
//! intake, the scheduler and the sender all keep coming round their loops: a stuck loop stops
//! the pings, and systemd restarts the daemon after `WatchdogSec=`.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::health::{stalled, status_line};
use super::notify::{watchdog_interval, Notifier};
use super::Shared;
use crate::errors::Chain;
use crate::store::{self, Handle};

/// How often the STATUS= line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn run(
    shared: &Shared,
    mut db: Handle,
    notifier: &Notifier,
    mut stop: watch::Receiver<bool>,
) {
    let deps = shared.deps();
    let service = &deps.config.service;
    let ready_by = Instant::now() + service.ready_grace;
    let watchdog = watchdog_interval();
    // systemd's advice (sd_watchdog_enabled(3)): ping at half the interval.
    let step = watchdog
        .map(|w| (w / 2).min(Duration::from_secs(1)))
        .unwrap_or(Duration::from_secs(1));
    let mut ready = false;
    let mut next_status = Instant::now();
    let mut reported_stall = false;
    let mut db_failing = false;
    loop {
        if !ready && (shared.health.ever_connected() || Instant::now() >= ready_by) {
            ready = true;
            if shared.health.ever_connected() {
                tracing::info!("ready: IMAP reached");
            } else {
                tracing::warn!(grace = %humantime::format_duration(service.ready_grace), "ready without IMAP: the server was not reached within [service] ready_grace; intake keeps retrying");
            }
            notifier.send("READY=1");
            shared.health.set_ready();
            next_status = Instant::now();
        }
        if watchdog.is_some() {
            let stuck = stalled(&shared.health.since_beats(), service.stall_after);
            if stuck.is_empty() {
                notifier.send("WATCHDOG=1");
                if std::mem::take(&mut reported_stall) {
                    tracing::info!("all tasks are moving again; watchdog pings resume");
                }
            } else if !reported_stall {
                reported_stall = true;
                let names: Vec<String> = stuck
                    .iter()
                    .map(|(t, d)| format!("{} ({} s)", t.as_str(), d.as_secs()))
                    .collect();
                tracing::error!(stuck = %names.join(", "), stall_after = %humantime::format_duration(service.stall_after), "a task has not come round its loop; watchdog pings stop, systemd will restart followupd");
            }
        }
        if Instant::now() >= next_status {
            next_status = Instant::now() + STATUS_EVERY;
            match db.run(|c| store::stats::snapshot(c)).await {
                Ok(snapshot) => {
                    db_failing = false;
                    let line = status_line(
                        snapshot.open_incidents(),
                        snapshot.queued(),
                        shared.health.since_last_pass(),
                        &shared.health.imap(),
                        shared.health.smtp_down().as_deref(),
                    );
                    notifier.send(&format!("STATUS={line}"));
                }
                Err(e) => {
                    if !db_failing {
                        tracing::warn!(error = %Chain(&e), "status: cannot read the database");
                    }
                    db_failing = true;
                    notifier.send("STATUS=database unreadable; see the log");
                }
            }
        }
        if super::pause(step, &mut stop).await {
            break;
        }
    }
    notifier.send("STOPPING=1");
}
