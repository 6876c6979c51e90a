//! The intake task: read the support mailbox, batch by batch, each batch one transaction.

use std::time::Duration;

use tokio::sync::watch;

use super::{pause, DaemonError, Shared};
use crate::errors::Chain;
use crate::imap::Inbox;
use crate::incident::{Actor, EventKind, NewEvent};
use crate::intake::{ingest_batch, Source};
use crate::store::checkpoints::{self, AfterProcessing, Checkpoint};
use crate::store::{self, Handle};

/// Polls until stopped, reconnecting with exponential backoff after any IMAP error.
pub(super) async fn run(shared: &Shared, mut db: Handle, mut stop: watch::Receiver<bool>) {
    let config = &shared.deps.config.imap;
    let mut inbox: Option<Inbox> = None;
    let first_backoff = Duration::from_secs(1);
    let mut backoff = first_backoff;
    loop {
        let result = match inbox.as_mut() {
            Some(open) => pass(shared, open, &mut db).await.map(|_| ()),
            None => match Inbox::connect(config, shared.imap_tls.clone()).await {
                Ok((mut open, _)) => {
                    tracing::info!(mailbox = %config.mailbox, "IMAP connected");
                    let result = pass(shared, &mut open, &mut db).await.map(|_| ());
                    inbox = Some(open);
                    result
                }
                Err(e) => Err(e.into()),
            },
        };
        let wait = match result {
            Ok(()) => {
                backoff = first_backoff;
                config.poll_interval
            }
            Err(e) => {
                // Drop the connection: after any error its state is unknown.
                inbox = None;
                tracing::error!(error = %Chain(&e), retry_in = %humantime::format_duration(backoff), "intake failed; will reconnect");
                let wait = backoff;
                backoff = (backoff * 2).min(config.reconnect_max);
                wait
            }
        };
        if pause(wait, &mut stop).await {
            break;
        }
    }
    if let Some(open) = inbox {
        open.logout().await;
    }
}

/// Reads everything new in the mailbox, batch by batch, each batch one transaction.
pub(super) async fn pass(
    shared: &Shared,
    inbox: &mut Inbox,
    db: &mut Handle,
) -> Result<usize, DaemonError> {
    let deps = &shared.deps;
    let mailbox = deps.config.imap.mailbox.clone();
    let selected = inbox.refresh().await?;
    let uidvalidity = selected.uidvalidity;
    let now = deps.now();
    let last_uid = {
        let mailbox = mailbox.clone();
        db.run(move |c| checkpoint_for(c, &mailbox, uidvalidity, now))
            .await?
    };
    finish_pending(inbox, db, &mailbox, uidvalidity).await?;
    let uids = inbox.uids_after(last_uid).await?;
    let after_processing =
        deps.config.imap.after_processing != crate::config::AfterProcessing::Leave;
    let mut ingested = 0;
    let max_size = deps.config.intake.max_message_size;
    for chunk in uids.chunks(deps.config.imap.batch_size as usize) {
        let sizes = inbox.sizes(chunk).await?;
        for batch in crate::imap::batches(&sizes, crate::imap::BATCH_BYTES, max_size) {
            ingested += ingest(shared, inbox, db, &batch, uidvalidity, after_processing).await?;
        }
    }
    Ok(ingested)
}

/// Fetches one batch and commits it in one transaction, then marks or moves it on the server.
/// The batch's bytes are gone once its transaction is: the next batch starts from nothing.
async fn ingest(
    shared: &Shared,
    inbox: &mut Inbox,
    db: &mut Handle,
    batch: &[(u32, u64)],
    uidvalidity: u32,
    after_processing: bool,
) -> Result<usize, DaemonError> {
    let deps = &shared.deps;
    let Some(&(last, _)) = batch.last() else {
        return Ok(0);
    };
    let fetched = inbox
        .fetch(batch, deps.config.intake.max_message_size)
        .await?;
    let ingested = fetched.len();
    let report = {
        let deps = deps.clone();
        let mailbox = deps.config.imap.mailbox.clone();
        db.run(move |c| {
            let source = Source {
                mailbox: &mailbox,
                uidvalidity,
                checkpoint_to: last,
                after_processing,
            };
            ingest_batch(c, &deps, source, &fetched, deps.now())
        })
        .await?
    };
    if report.queued > 0 {
        shared.queued.notify_one();
    }
    // Only now, with the batch committed, may the server copy be marked or moved.
    inbox.after_processing(&report.finish).await?;
    let mailbox = deps.config.imap.mailbox.clone();
    db.run(move |c| {
        checkpoints::set_after_processing(
            c,
            &mailbox,
            uidvalidity,
            &report.finish,
            AfterProcessing::Done,
        )
    })
    .await?;
    Ok(ingested)
}

/// The UID to continue after. A new UIDVALIDITY means the server renumbered the mailbox: start
/// again from the top; Message-ID / content dedupe makes the rescan harmless.
fn checkpoint_for(
    conn: &mut rusqlite::Connection,
    mailbox: &str,
    uidvalidity: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u32, store::StoreError> {
    match checkpoints::checkpoint(conn, mailbox)? {
        Some(cp) if cp.uidvalidity == uidvalidity => Ok(cp.last_uid),
        previous => {
            let tx = conn.transaction()?;
            if let Some(old) = previous {
                tracing::warn!(
                    mailbox,
                    old = old.uidvalidity,
                    new = uidvalidity,
                    "UIDVALIDITY changed: rescanning the mailbox"
                );
                store::events::log(
                    &tx,
                    &NewEvent {
                        incident: None,
                        message: None,
                        kind: EventKind::UidvalidityChanged,
                        actor: Actor::Daemon,
                        detail: format!(
                            "{mailbox}: UIDVALIDITY {} -> {uidvalidity}; rescanning, duplicates \
                             are skipped",
                            old.uidvalidity
                        ),
                    },
                    now,
                )?;
            }
            checkpoints::set_checkpoint(
                &tx,
                mailbox,
                Checkpoint {
                    uidvalidity,
                    last_uid: 0,
                },
                now,
            )?;
            tx.commit()?;
            Ok(0)
        }
    }
}

/// Retries marking/moving messages whose earlier attempt failed after their commit.
async fn finish_pending(
    inbox: &mut Inbox,
    db: &mut Handle,
    mailbox: &str,
    uidvalidity: u32,
) -> Result<(), DaemonError> {
    let pending = {
        let mailbox = mailbox.to_string();
        db.run(move |c| checkpoints::pending_after_processing(c, &mailbox, uidvalidity))
            .await?
    };
    if pending.is_empty() {
        return Ok(());
    }
    inbox.after_processing(&pending).await?;
    let mailbox = mailbox.to_string();
    db.run(move |c| {
        checkpoints::set_after_processing(c, &mailbox, uidvalidity, &pending, AfterProcessing::Done)
    })
    .await?;
    Ok(())
}
