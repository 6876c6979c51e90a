//! The daemon: three tasks, each with its own SQLite connection, woken by one [`Notify`].
//!
//! - [`intake`] reads the support mailbox and records what arrives;
//! - [`scheduler`] acts when time passes (promised updates, check-backs, closes, escalations);
//! - [`sender`] hands queued mail to the relay.
//!
//! Keeping them apart means a dead IMAP server never delays a tick or a send, and a dead SMTP
//! relay never stops complaints from being recorded. Whoever queues mail (intake, the
//! scheduler) notifies the sender at once; mail queued by a CLI action is found by the sender's
//! one-second look at the outbox. SQLite work runs off the reactor thread
//! ([`crate::store::Handle`]). SIGTERM lets the current step finish (a batch commit, a send
//! being recorded) and then stops all three.

mod intake;
mod scheduler;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_rustls::rustls::ClientConfig;

use crate::clock::Clock;
use crate::config::Config;
use crate::deps::{Deps, DepsError};
use crate::imap::{ImapError, Inbox};
use crate::oauth::Logins;
use crate::outbox::DrainReport;
use crate::scheduler::TickReport;
use crate::smtp::{Smtp, SmtpSetupError};
use crate::store::{self, Handle, StoreError};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Deps(#[from] DepsError),
    #[error(transparent)]
    Templates(#[from] crate::templates::TemplateError),
    #[error("[imap] ca_file")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Smtp(#[from] SmtpSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error("cannot install the signal handler")]
    Signal(#[source] std::io::Error),
    #[error("{path}: another followupd is already running on this database (stop it first: two senders could send the same mail twice)")]
    AlreadyRunning { path: String },
    #[error("{path}: cannot open the lock file")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything validated and loaded before the first connection is made.
pub struct Daemon {
    deps: Arc<Deps>,
    imap_tls: Arc<ClientConfig>,
    logins: Arc<Logins>,
    /// Held (flock) for the daemon's lifetime: one intake and one sender per database.
    _lock: std::fs::File,
}

/// What the three tasks share.
struct Shared {
    deps: Arc<Deps>,
    imap_tls: Arc<ClientConfig>,
    logins: Arc<Logins>,
    /// Fired whenever mail is queued: wakes the sender.
    queued: Notify,
}

impl Daemon {
    /// Loads templates (and renders them with sample data), the secret key and TLS roots, and
    /// opens the database once so a broken setup fails here, before any mail is touched.
    pub fn prepare(config: Config, clock: Clock) -> Result<Daemon, DaemonError> {
        let deps = Deps::load(config, clock)?;
        deps.templates
            .check(&deps.config.support.name, &deps.config.support.address)?;
        let imap_tls = tls::client_config(deps.config.imap.endpoint.ca_file.as_deref())?;
        // Token endpoints are public HTTPS sites: the system's roots.
        let logins = Logins::new(&deps.config, &tls::client_config(None)?);
        drop(store::open(&deps.config.database)?);
        let lock = lock(&deps.config.database)?;
        Ok(Daemon {
            deps: Arc::new(deps),
            imap_tls,
            logins: Arc::new(logins),
            _lock: lock,
        })
    }

    fn smtp(&self) -> Result<Smtp, SmtpSetupError> {
        let config = &self.deps.config;
        Smtp::new(
            &config.smtp.endpoint,
            self.logins.smtp.clone(),
            config.smtp.connections,
            config.support.domain(),
        )
    }

    /// One intake pass, one scheduler tick and one outbox drain, then return. An IMAP failure
    /// is returned after the tick and the drain have still run.
    pub async fn run_once(&self) -> Result<OnceSummary, DaemonError> {
        let shared = self.shared();
        let mut db = Handle::new(&self.deps.config.database, false)?;
        let ingested = async {
            let (mut inbox, _) = Inbox::connect(
                &self.deps.config.imap,
                self.imap_tls.clone(),
                &self.logins.imap,
            )
            .await?;
            let result = intake::pass(&shared, &mut inbox, &mut db).await;
            inbox.logout().await;
            result
        }
        .await;
        // Time-driven mail is decided whether or not IMAP answered.
        let ticked = scheduler::tick(&shared, &mut db)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %crate::errors::Chain(&e), "scheduler: database error");
                TickReport::default()
            });
        let smtp = self.smtp()?;
        let mut outbox = Handle::new(&self.deps.config.database, true)?;
        crate::outbox::send::hold_in_doubt(&mut outbox, &self.deps, "in flight when followupd last stopped").await?;
        let mut trouble = crate::outbox::send::DbTrouble::default();
        let drained =
            crate::outbox::drain(&mut outbox, &self.deps, &smtp, &|| false, &mut trouble).await?;
        let still_queued = outbox.run(|c| store::outbox::queued_count(c)).await?;
        Ok(OnceSummary {
            ingested: ingested?,
            ticked,
            drained,
            still_queued,
        })
    }

    fn shared(&self) -> Shared {
        Shared {
            deps: self.deps.clone(),
            imap_tls: self.imap_tls.clone(),
            logins: self.logins.clone(),
            queued: Notify::new(),
        }
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
        let config = &self.deps.config;
        let smtp = self.smtp()?;
        let intake_db = Handle::new(&config.database, false)?;
        let scheduler_db = Handle::new(&config.database, false)?;
        let mut outbox_db = Handle::new(&config.database, true)?;
        let shared = self.shared();
        crate::outbox::send::hold_in_doubt(
            &mut outbox_db,
            &self.deps,
            "in flight when followupd last stopped",
        )
        .await?;
        tracing::info!(
            imap = %format!("{}:{}", config.imap.endpoint.host, config.imap.endpoint.port),
            mailbox = %config.imap.mailbox,
            smtp = %format!("{}:{}", config.smtp.endpoint.host, config.smtp.endpoint.port),
            database = %config.database.display(),
            "followupd running"
        );
        let work = async {
            tokio::join!(
                intake::run(&shared, intake_db, stop_rx.clone()),
                scheduler::run(&shared, scheduler_db, stop_rx.clone()),
                sender::run(&shared, outbox_db, &smtp, stop_rx.clone()),
            );
        };
        tokio::select! {
            () = work => {}
            () = async { signals.await; std::future::pending::<()>().await } => {}
        }
        tracing::info!("followupd stopped");
        Ok(())
    }
}

/// Sleeps for `wait`, or until the stop signal; returns whether to stop.
async fn pause(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
    *stop.borrow()
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

#[derive(Debug)]
pub struct OnceSummary {
    pub ingested: usize,
    pub ticked: TickReport,
    pub drained: DrainReport,
    pub still_queued: i64,
}
