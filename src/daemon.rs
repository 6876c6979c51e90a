//! The daemon: intake and outbox as two loops over their own SQLite connections.
//!
//! Keeping them apart means a dead IMAP server never delays an acknowledgement already queued,
//! and a dead SMTP relay never stops complaints from being recorded. SIGTERM lets the current
//! step finish (a batch commit, a send being recorded) and then stops both loops.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::{watch, Notify};
use tokio_rustls::rustls::ClientConfig;

use crate::config::{AfterProcessing, Config};
use crate::imap::{ImapError, Inbox};
use crate::ingest::{self, Context};
use crate::lifecycle::Lifecycle;
use crate::outbox::{DrainReport, Queue, Sender};
use crate::schedule::{self, Clock, TickReport};
use crate::secret::{Secret, SecretError};
use crate::smtp::{Smtp, SmtpSetupError};
use crate::store::{self, Checkpoint, StoreError};
use crate::templates::{TemplateError, Templates};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("[imap] {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
    #[error("{path}: another followupd is already running on this database (stop it first: two senders could send the same mail twice)")]
    AlreadyRunning { path: String },
    #[error("{path}: cannot open the lock file: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

/// Everything validated and loaded before the first connection is made.
pub struct Daemon {
    pub config: Config,
    pub templates: Templates,
    pub secret: Secret,
    imap_tls: Arc<ClientConfig>,
    clock: Clock,
    now: Box<dyn Fn() -> DateTime<Utc> + Sync + Send>,
    /// Held (flock) for the daemon's lifetime: one intake and one sender per database.
    _lock: std::fs::File,
}

impl Daemon {
    /// Loads templates (and renders them with sample data), the secret key and TLS roots, and
    /// opens the database once so a broken setup fails here, before any mail is touched.
    pub fn prepare(config: Config, clock: Clock) -> Result<Daemon, DaemonError> {
        let templates = Templates::load(&config.templates)?;
        templates.check(&config.support.name, &config.support.address)?;
        let secret = Secret::load_or_create(&config.secret_file)?;
        let imap_tls = tls::client_config(config.imap.endpoint.ca_file.as_deref())?;
        drop(store::open(&config.database)?);
        let lock = lock(&config.database)?;
        Ok(Daemon {
            config,
            templates,
            secret,
            imap_tls,
            clock,
            now: Box::new(move || clock.now()),
            _lock: lock,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn lifecycle(&self) -> Lifecycle<'_> {
        Lifecycle {
            queue: Queue {
                templates: &self.templates,
                support: &self.config.support,
                secret: &self.secret,
                caps: &self.config.send_caps,
            },
            cadence: &self.config.cadence,
            escalation: &self.config.escalation,
            recurring: &self.config.recurring,
        }
    }

    /// One scheduler pass; errors are logged, never fatal (the next tick retries).
    fn tick(&self, conn: &mut Connection) -> TickReport {
        match schedule::tick(conn, &self.lifecycle(), self.now()) {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(error = %e, "scheduler: database error; will retry");
                TickReport::default()
            }
        }
    }

    /// Mails a dead predecessor left in flight wait for their receipt (or, without receipt
    /// copies, are simply resent: at-least-once with the same Message-ID).
    fn hold_in_doubt(&self, conn: &mut Connection) -> Result<(), StoreError> {
        let grace = if self.config.outbox.receipt_copies {
            self.config.outbox.in_doubt_grace
        } else {
            Duration::ZERO
        };
        let resend_at = self.now() + chrono::Duration::from_std(grace).unwrap_or_default();
        let held = store::hold_in_doubt(conn, resend_at, self.now())?;
        if held > 0 {
            tracing::warn!(
                mails = held,
                resend_in = %humantime::format_duration(grace),
                "mails were in flight when followupd last stopped; holding them for their receipts"
            );
        }
        Ok(())
    }

    fn context(&self) -> Context<'_> {
        Context {
            support: &self.config.support,
            intake: &self.config.intake,
            caps: &self.config.send_caps,
            secret: &self.secret,
            templates: &self.templates,
            cadence: &self.config.cadence,
            escalation: &self.config.escalation,
            recurring: &self.config.recurring,
            after_processing: self.config.imap.after_processing != AfterProcessing::Leave,
        }
    }

    fn smtp(&self) -> Result<Smtp, SmtpSetupError> {
        Smtp::new(
            &self.config.smtp.endpoint,
            self.config.smtp.connections,
            self.config.support.domain(),
        )
    }

    fn sender<'a>(&'a self, smtp: &'a Smtp) -> Sender<'a> {
        Sender {
            smtp,
            templates: &self.templates,
            support: &self.config.support,
            retry: &self.config.outbox,
            concurrency: self.config.smtp.connections as usize,
            now: &*self.now,
        }
    }

    /// One intake pass and one outbox drain, then return. An IMAP failure is returned after
    /// the outbox has still been drained.
    pub async fn run_once(&self) -> Result<OnceSummary, DaemonError> {
        let mut conn = store::open(&self.config.database)?;
        let intake = async {
            let (mut inbox, _) = Inbox::connect(&self.config.imap, self.imap_tls.clone()).await?;
            let result = self.intake_pass(&mut inbox, &mut conn, None).await;
            inbox.logout().await;
            result
        }
        .await;
        // Time-driven mail is decided whether or not IMAP answered.
        let ticked = self.tick(&mut conn);
        let smtp = self.smtp()?;
        let mut conn = store::open_for_sending(&self.config.database)?;
        self.hold_in_doubt(&mut conn)?;
        let drained = self.sender(&smtp).drain(&mut conn, &|| false).await?;
        let queued = store::queued_count(&conn)?;
        Ok(OnceSummary {
            ingested: intake?,
            ticked,
            drained,
            still_queued: queued,
        })
    }

    /// Runs until SIGTERM or SIGINT.
    pub async fn run(&self) -> Result<(), DaemonError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(DaemonError::Signal)?;
        let signals = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: finishing the current step, then stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing the current step, then stopping"),
            }
            let _ = stop_tx.send(true);
        };
        let smtp = self.smtp()?;
        let intake_conn = store::open(&self.config.database)?;
        let mut outbox_conn = store::open_for_sending(&self.config.database)?;
        self.hold_in_doubt(&mut outbox_conn)?;
        let queued = Notify::new();
        tracing::info!(
            imap = %format!("{}:{}", self.config.imap.endpoint.host, self.config.imap.endpoint.port),
            mailbox = %self.config.imap.mailbox,
            smtp = %format!("{}:{}", self.config.smtp.endpoint.host, self.config.smtp.endpoint.port),
            database = %self.config.database.display(),
            "followupd running"
        );
        let work = async {
            tokio::join!(
                self.intake_loop(intake_conn, &queued, stop_rx.clone()),
                self.outbox_loop(outbox_conn, &smtp, &queued, stop_rx.clone()),
            );
        };
        tokio::select! {
            () = work => {}
            () = async { signals.await; std::future::pending::<()>().await } => {}
        }
        tracing::info!("followupd stopped");
        Ok(())
    }

    async fn intake_loop(
        &self,
        mut conn: Connection,
        queued: &Notify,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut inbox: Option<Inbox> = None;
        let first_backoff = Duration::from_secs(1);
        let mut backoff = first_backoff;
        while !*stop.borrow() {
            let result = match inbox.as_mut() {
                Some(open) => self
                    .intake_pass(open, &mut conn, Some(queued))
                    .await
                    .map(|_| ()),
                None => match Inbox::connect(&self.config.imap, self.imap_tls.clone()).await {
                    Ok((mut open, _)) => {
                        tracing::info!(mailbox = %self.config.imap.mailbox, "IMAP connected");
                        let pass = self.intake_pass(&mut open, &mut conn, Some(queued)).await;
                        inbox = Some(open);
                        pass.map(|_| ())
                    }
                    Err(e) => Err(e.into()),
                },
            };
            // The scheduler runs on every pass, also while IMAP is down: promises do not wait
            // for the inbox.
            let ticked = self.tick(&mut conn);
            if ticked.updates + ticked.check_backs > 0 {
                queued.notify_one();
            }
            let wait = match result {
                Ok(()) => {
                    backoff = first_backoff;
                    self.config.imap.poll_interval
                }
                Err(e) => {
                    // Drop the connection: after any error its state is unknown.
                    inbox = None;
                    tracing::error!(error = %e, retry_in = %humantime::format_duration(backoff), "intake failed; will reconnect");
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.config.imap.reconnect_max);
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        if let Some(open) = inbox {
            open.logout().await;
        }
    }

    async fn outbox_loop(
        &self,
        mut conn: Connection,
        smtp: &Smtp,
        queued: &Notify,
        mut stop: watch::Receiver<bool>,
    ) {
        let sender = self.sender(smtp);
        let stop_flag = stop.clone();
        let stopping = move || *stop_flag.borrow();
        while !*stop.borrow() {
            let wait = match sender.drain(&mut conn, &stopping).await {
                Ok(report) => {
                    log_drain(report);
                    self.until_next_due(&conn)
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox: database error; will retry");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = queued.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// How long the sender may sleep: until the next retry falls due, at most one poll interval.
    fn until_next_due(&self, conn: &Connection) -> Duration {
        let cap = self.config.imap.poll_interval;
        match store::next_due(conn) {
            Ok(Some(at)) => (at - self.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(cap),
            Ok(None) => cap,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read the next due time");
                cap
            }
        }
    }

    /// Reads everything new in the mailbox, batch by batch, each batch one transaction.
    async fn intake_pass(
        &self,
        inbox: &mut Inbox,
        conn: &mut Connection,
        queued: Option<&Notify>,
    ) -> Result<usize, DaemonError> {
        let mailbox = self.config.imap.mailbox.as_str();
        let selected = inbox.refresh().await?;
        let last_uid = self.checkpoint_for(conn, mailbox, selected.uidvalidity)?;
        self.finish_pending(inbox, conn, mailbox, selected.uidvalidity)
            .await?;
        let uids = inbox.uids_after(last_uid).await?;
        let ctx = self.context();
        let mut ingested = 0;
        for chunk in uids.chunks(self.config.imap.batch_size as usize) {
            let fetched = inbox
                .fetch(chunk, self.config.intake.max_message_size)
                .await?;
            let Some(&last) = chunk.last() else { continue };
            let report = ingest::ingest_batch(
                conn,
                &ctx,
                mailbox,
                selected.uidvalidity,
                &fetched,
                last,
                self.now(),
            )?;
            ingested += fetched.len();
            if report.queued > 0 {
                if let Some(notify) = queued {
                    notify.notify_one();
                }
            }
            // Only now, with the batch committed, may the server copy be marked or moved.
            inbox.after_processing(&report.finish).await?;
            store::set_after_processing(
                conn,
                mailbox,
                selected.uidvalidity,
                &report.finish,
                "done",
            )?;
        }
        Ok(ingested)
    }

    /// The UID to continue after. A new UIDVALIDITY means the server renumbered the mailbox:
    /// start again from the top; Message-ID / content dedupe makes the rescan harmless.
    fn checkpoint_for(
        &self,
        conn: &Connection,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<u32, StoreError> {
        match store::checkpoint(conn, mailbox)? {
            Some(cp) if cp.uidvalidity == uidvalidity => Ok(cp.last_uid),
            previous => {
                if let Some(old) = previous {
                    tracing::warn!(
                        mailbox,
                        old = old.uidvalidity,
                        new = uidvalidity,
                        "UIDVALIDITY changed: rescanning the mailbox"
                    );
                    store::log_event(conn, self.now(), None, None, "uidvalidity_changed", &format!(
                        "{mailbox}: UIDVALIDITY {} -> {uidvalidity}; rescanning, duplicates are skipped",
                        old.uidvalidity
                    ))?;
                }
                store::set_checkpoint(
                    conn,
                    mailbox,
                    Checkpoint {
                        uidvalidity,
                        last_uid: 0,
                    },
                    self.now(),
                )?;
                Ok(0)
            }
        }
    }

    /// Retries marking/moving messages whose earlier attempt failed after their commit.
    async fn finish_pending(
        &self,
        inbox: &mut Inbox,
        conn: &Connection,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<(), DaemonError> {
        let pending = store::pending_after_processing(conn, mailbox, uidvalidity)?;
        if pending.is_empty() {
            return Ok(());
        }
        inbox.after_processing(&pending).await?;
        store::set_after_processing(conn, mailbox, uidvalidity, &pending, "done")?;
        Ok(())
    }
}

/// Takes the exclusive lock beside the database; released by the kernel when the process ends,
/// however it ends.
fn lock(database: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    let path = database.with_extension("lock");
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DaemonError::Lock {
            path: shown.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DaemonError::AlreadyRunning { path: shown }),
        Err(std::fs::TryLockError::Error(source)) => Err(DaemonError::Lock {
            path: shown,
            source,
        }),
    }
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

#[derive(Debug)]
pub struct OnceSummary {
    pub ingested: usize,
    pub ticked: TickReport,
    pub drained: DrainReport,
    pub still_queued: i64,
}
