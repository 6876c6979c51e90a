//! The intake task: read the support mailbox, batch by batch, each batch one transaction; in
//! between, wait in IDLE for the server to announce mail (or poll when it cannot).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{pause, DaemonError, Shared};
use crate::errors::Chain;
use crate::imap::{Inbox, Woken};
use crate::incident::{Actor, EventKind, NewEvent};
use crate::intake::{ingest_batch, Source};
use crate::store::checkpoints::{self, AfterProcessing, Checkpoint};
use crate::store::{self, Handle};

/// The longest IDLE wait without news. Shorter than the keepalive interval of common servers
/// (Dovecot sends one every 2 minutes) and than the idle timeout of most NAT gateways, so a
/// link that died without a word is found by the NOOP that follows a quiet wait. Also far
/// below RFC 2177's 29 minutes, after which a server may end an IDLE.
const IDLE_CHECK: Duration = Duration::from_secs(90);

const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Reads the mailbox until stopped: a pass, then a wait in IDLE (or a sleep) until the server
/// announces mail or `poll_interval` has passed; reconnects with exponential backoff after any
/// IMAP error, at once when a server that could not be reached answers again.
pub(super) async fn run(shared: &Shared, mut db: Handle, mut stop: watch::Receiver<bool>) {
    let deps = shared.deps();
    let config = &deps.config.imap;
    let mut backoff = FIRST_BACKOFF;
    let mut db_failing = false;
    loop {
        shared.health.beat(super::health::Task::Intake);
        let mut connected = false;
        let mut state = State {
            backoff: &mut backoff,
            connected: &mut connected,
            db_failing: &mut db_failing,
        };
        match keep_up(shared, &mut db, &mut stop, &mut state).await {
            Ok(inbox) => {
                if let Some(inbox) = inbox {
                    inbox.logout().await;
                }
                break;
            }
            Err(DaemonError::Store(e)) => {
                // A full disk or a read-only directory: logged once, retried often (the mail
                // stays on the server meanwhile; nothing is lost), cleared after a pass.
                if db_failing {
                    tracing::debug!(error = %Chain(&e), "intake: database write failed again");
                } else {
                    db_failing = true;
                    tracing::error!(error = %Chain(&e), "intake: database write failed; the mail stays on the server and is read again until it works");
                }
                if pause(backoff.min(DB_RETRY_MAX), &mut stop).await {
                    break;
                }
                backoff = (backoff * 2).min(config.reconnect_max);
            }
            Err(e) => {
                // The connection is gone with the error: after any error its state is unknown.
                let unreachable = matches!(&e, DaemonError::Imap(e) if e.is_unreachable());
                shared.health.imap_down(Chain(&e).to_string());
                if let Some(refused) = sign_in_refused(&e) {
                    shared.health.sign_in(Some(refused));
                }
                if connected && unreachable {
                    // Servers end idle sessions, restart, kick clients: routine, if it heals.
                    tracing::warn!(error = %Chain(&e), retry_in = %humantime::format_duration(backoff), "IMAP connection lost; reconnecting");
                } else {
                    tracing::error!(error = %Chain(&e), retry_in = %humantime::format_duration(backoff), "intake failed; will reconnect");
                }
                if wait_to_retry(shared, backoff, unreachable, &mut stop).await {
                    break;
                }
                backoff = (backoff * 2).min(config.reconnect_max);
            }
        }
    }
}

/// Connects, passes and waits, over and over; returns the open connection when stopped, or
/// the first error.
/// What the reconnect loop and the passes share.
struct State<'a> {
    backoff: &'a mut Duration,
    connected: &'a mut bool,
    db_failing: &'a mut bool,
}

/// The longest wait before intake retries after a database error.
const DB_RETRY_MAX: Duration = Duration::from_secs(5);

async fn keep_up(
    shared: &Shared,
    db: &mut Handle,
    stop: &mut watch::Receiver<bool>,
    state: &mut State<'_>,
) -> Result<Option<Inbox>, DaemonError> {
    let deps = shared.deps();
    let config = &deps.config.imap;
    let mut current: Option<Inbox> = None;
    loop {
        if *stop.borrow() {
            return Ok(current);
        }
        let mut inbox = match current.take() {
            Some(open) if open.usable_until().is_none_or(|t| Instant::now() < t) => open,
            old => {
                if let Some(old) = old {
                    tracing::info!(
                        "IMAP session renewed: the access token it logged in with expires"
                    );
                    old.logout().await;
                }
                let (open, _) =
                    Inbox::connect(config, shared.imap_tls.clone(), &shared.logins.imap).await?;
                let waiting = if open.can_idle() {
                    "IDLE".to_string()
                } else {
                    if config.idle {
                        tracing::info!(poll_interval = %humantime::format_duration(config.poll_interval), "the IMAP server does not offer IDLE; polling");
                    }
                    format!(
                        "polling every {}",
                        humantime::format_duration(config.poll_interval)
                    )
                };
                tracing::info!(mailbox = %config.mailbox, login = open.logged_in_with, waiting = %waiting, "IMAP connected");
                *state.connected = true;
                shared.health.imap_connected();
                open
            }
        };
        let pass_started = Instant::now();
        pass(shared, &mut inbox, db).await?;
        shared.health.passed();
        *state.backoff = FIRST_BACKOFF;
        if std::mem::take(state.db_failing) {
            tracing::info!("intake: database writes work again");
        }
        let mut next_pass = Instant::now() + config.poll_interval;
        // Mail in doubt waits for its receipt: look again as soon as it would be there.
        if let Some(due) = receipts_due(shared, db).await {
            if due > pass_started {
                next_pass = next_pass.min(due);
            }
        }
        // Wait for news, the safety-net pass, or the session's renewal.
        loop {
            shared.health.beat(super::health::Task::Intake);
            if *stop.borrow() {
                return Ok(Some(inbox));
            }
            let now = Instant::now();
            let renew_at = inbox.usable_until();
            if now >= next_pass || renew_at.is_some_and(|t| now >= t) {
                break;
            }
            // Mail announced while the pass ran (unsolicited EXISTS): another pass at once.
            if inbox.take_changes() {
                break;
            }
            let mut limit = next_pass - now;
            if let Some(t) = renew_at {
                limit = limit.min(t - now);
            }
            if inbox.can_idle() {
                let (back, woken) = inbox.idle(limit.min(IDLE_CHECK), stop).await?;
                inbox = back;
                match woken {
                    Woken::Changed => break,
                    Woken::Stopped => return Ok(Some(inbox)),
                    // A quiet wait: prove the link alive before waiting again (a dead one
                    // times out here and is reconnected).
                    Woken::Quiet if Instant::now() < next_pass => {
                        if inbox.noop().await? {
                            break;
                        }
                    }
                    Woken::Quiet => {}
                }
            } else if pause(limit, stop).await {
                return Ok(Some(inbox));
            }
        }
        current = Some(inbox);
    }
}

/// Waits out the backoff before reconnecting; returns whether to stop. When the server could
/// not be reached at all, a TCP connect each second watches for it, and the wait ends as soon
/// as it accepts connections again after having refused them: mail that came in during an
/// outage is read seconds after the server is back, not a backoff later.
async fn wait_to_retry(
    shared: &Shared,
    backoff: Duration,
    unreachable: bool,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if !unreachable {
        return pause(backoff, stop).await;
    }
    let deps = shared.deps();
    let endpoint = &deps.config.imap.endpoint;
    let deadline = Instant::now() + backoff;
    let mut seen_down = false;
    loop {
        let step = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        if step.is_zero() {
            return false;
        }
        if pause(step, stop).await {
            return true;
        }
        let probe = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await;
        match probe {
            Ok(Ok(_)) if seen_down => {
                tracing::info!(server = %endpoint.server(), "IMAP server answers again; reconnecting now");
                return false;
            }
            Ok(Ok(_)) => {}
            _ => seen_down = true,
        }
    }
}

/// Reads everything new in the mailbox, batch by batch, each batch one transaction.
pub(super) async fn pass(
    shared: &Shared,
    inbox: &mut Inbox,
    db: &mut Handle,
) -> Result<usize, DaemonError> {
    let deps = &shared.deps();
    let mailbox = deps.config.imap.mailbox.clone();
    // Everything delivered before this moment is read by the end of the pass.
    let started = deps.now();
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
    // Mail in doubt whose receipt would have been delivered by now is settled: the sender may
    // send it again (see `outbox::send::hold_in_doubt`).
    let finished = deps.now();
    db.run(move |c| checkpoints::record_pass(c, &mailbox, uidvalidity, started, finished))
        .await?;
    shared.queued.notify_one();
    Ok(ingested)
}

/// When intake should look at the mailbox again for receipts: the oldest mail in doubt's
/// receipt is due by `in_doubt_since + receipt_margin`; a pass starting after that settles it.
async fn receipts_due(shared: &Shared, db: &mut Handle) -> Option<Instant> {
    let oldest = db
        .run(|c| crate::store::outbox::oldest_in_doubt(c))
        .await
        .ok()
        .flatten()?;
    let due = crate::clock::after(oldest, shared.deps().config.outbox.receipt_margin);
    let wait = (due - shared.deps().now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + wait + Duration::from_millis(100))
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
    let deps = &shared.deps();
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

/// The OAuth2 refusal behind an intake error, if that is what it is (no saved sign-in, or the
/// provider refused it): a person must sign in again; waiting will not mend it.
fn sign_in_refused(e: &DaemonError) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(token) = c.downcast_ref::<crate::oauth::TokenError>() {
            return matches!(
                token,
                crate::oauth::TokenError::Refused(_) | crate::oauth::TokenError::NotSignedIn { .. }
            )
            .then(|| token.to_string());
        }
        cause = c.source();
    }
    None
}
