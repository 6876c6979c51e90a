//! The sender task: drains due mail as soon as it is queued, and sleeps until the next retry
//! otherwise.

use std::time::Duration;

use tokio::sync::watch;

use super::Shared;
use crate::errors::Chain;
use crate::outbox::{drain, DrainReport};
use crate::smtp::Smtp;
use crate::store::{self, Handle, StoreError};

/// How often the sender looks at the outbox when nobody woke it: mail queued by a CLI action
/// (another process) is found within this long.
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(
    shared: &Shared,
    mut db: Handle,
    smtp: &Smtp,
    mut stop: watch::Receiver<bool>,
) {
    let stop_flag = stop.clone();
    let stopping = move || *stop_flag.borrow();
    while !*stop.borrow() {
        let wait = match drain(&mut db, &shared.deps, smtp, &stopping).await {
            Ok(report) => {
                log_drain(report);
                until_next_due(shared, &mut db).await
            }
            Err(e) => {
                tracing::error!(error = %Chain(&e), "outbox: database error; will retry");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.queued.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// How long the sender may sleep: until the next retry falls due, at most [`LOOK_EVERY`].
async fn until_next_due(shared: &Shared, db: &mut Handle) -> Duration {
    match db.run(|c| store::outbox::next_due(c)).await {
        Ok(Some(at)) => (at - shared.deps.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(LOOK_EVERY),
        Ok(None) => LOOK_EVERY,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "outbox: cannot read the next due time");
            LOOK_EVERY
        }
    }
}

/// Mails a dead predecessor left in flight wait for their receipts (or, without receipt
/// copies, are simply resent: at-least-once with the same Message-ID).
pub(super) async fn hold_in_doubt(shared: &Shared, db: &mut Handle) -> Result<(), StoreError> {
    let outbox = &shared.deps.config.outbox;
    let grace = if outbox.receipt_copies {
        outbox.in_doubt_grace
    } else {
        Duration::ZERO
    };
    let now = shared.deps.now();
    let resend_at = crate::clock::after(now, grace);
    let held = db
        .run(move |c| crate::outbox::send::hold_in_doubt(c, resend_at, now))
        .await?;
    if held > 0 {
        tracing::warn!(
            mails = held,
            resend_in = %humantime::format_duration(grace),
            "mails were in flight when followupd last stopped; holding them for their receipts"
        );
    }
    Ok(())
}

fn log_drain(report: DrainReport) {
    if report != DrainReport::default() {
        tracing::info!(
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            "outbox drained"
        );
    }
}
