//! The scheduler task: a tick every poll interval, whatever IMAP and SMTP are doing.

use tokio::sync::watch;

use super::{pause, Shared};
use crate::errors::Chain;
use crate::scheduler::TickReport;
use crate::store::Handle;

pub(super) async fn run(shared: &Shared, mut db: Handle, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        shared.health.beat(super::health::Task::Scheduler);
        match tick(shared, &mut db).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("scheduler: the database works again");
            }
            Ok(_) => {}
            // Once per episode: a full disk would otherwise log the same line every tick.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %Chain(&e), "scheduler: database error; retrying every tick");
            }
            Err(e) => tracing::debug!(error = %Chain(&e), "scheduler: database error again"),
        }
        if pause(shared.deps().config.imap.poll_interval, &mut stop).await {
            break;
        }
    }
}

/// One tick.
pub(super) async fn tick(
    shared: &Shared,
    db: &mut Handle,
) -> Result<TickReport, crate::store::StoreError> {
    let deps = shared.deps();
    let report = db
        .run(move |c| crate::scheduler::tick(c, &deps, deps.now()))
        .await?;
    if report.queued > 0 {
        shared.queued.notify_one();
    }
    Ok(report)
}
