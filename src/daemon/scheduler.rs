//! The scheduler task: a tick every poll interval, whatever IMAP and SMTP are doing.

use tokio::sync::watch;

use super::{pause, Shared};
use crate::errors::Chain;
use crate::scheduler::TickReport;
use crate::store::Handle;

pub(super) async fn run(shared: &Shared, mut db: Handle, mut stop: watch::Receiver<bool>) {
    loop {
        tick(shared, &mut db).await;
        if pause(shared.deps.config.imap.poll_interval, &mut stop).await {
            break;
        }
    }
}

/// One tick; errors are logged, never fatal (the next tick retries).
pub(super) async fn tick(shared: &Shared, db: &mut Handle) -> TickReport {
    let deps = shared.deps.clone();
    match db
        .run(move |c| crate::scheduler::tick(c, &deps, deps.now()))
        .await
    {
        Ok(report) => {
            if report.queued > 0 {
                shared.queued.notify_one();
            }
            report
        }
        Err(e) => {
            tracing::error!(error = %Chain(&e), "scheduler: database error; will retry");
            TickReport::default()
        }
    }
}
