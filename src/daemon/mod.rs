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

pub mod health;
mod intake;
pub mod metrics;
pub mod notify;
mod scheduler;
mod sender;
mod service;

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
    #[error("[metrics] listen {addr}: cannot listen there")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
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
    /// The metrics listener, bound before anything runs so a taken port fails the start.
    metrics: Option<std::net::TcpListener>,
    /// Started with the last good templates because the configured ones are broken.
    templates_fallback: bool,
}

/// What the three tasks share.
struct Shared {
    /// Swapped whole by a reload: take one snapshot per step with [`Shared::deps`].
    deps: crate::deps::Current,
    imap_tls: Arc<ClientConfig>,
    logins: Arc<Logins>,
    /// Fired whenever mail is queued: wakes the sender.
    queued: Notify,
    /// Fired when a reload took: wakes what a setting may have switched on (retention).
    reloaded: Notify,
    health: Arc<health::Health>,
}

impl Shared {
    /// The dependencies in force now; a step keeps this snapshot to its end.
    fn deps(&self) -> Arc<Deps> {
        self.deps.get()
    }
}

impl Daemon {
    /// Loads templates (and renders them with sample data), the secret key and TLS roots, and
    /// opens the database once so a broken setup fails here, before any mail is touched.
    ///
    /// Broken templates do not stop the daemon when an earlier set passed: it starts with the
    /// last good set kept in the state directory and says so loudly, so a typo in a template
    /// is never an outage (the customer gets yesterday's wording, not silence).
    pub fn prepare(config: Config, clock: Clock) -> Result<Daemon, DaemonError> {
        let mut templates_fallback = false;
        let templates = match crate::deps::load_checked(&config) {
            Ok(templates) => {
                if let Err(e) = crate::deps::save_last_good(&config, &templates) {
                    tracing::warn!(error = %e, dir = %crate::deps::last_good_dir(&config).display(), "cannot keep a copy of the templates as the last good set");
                }
                templates
            }
            Err(broken) => {
                let fallback = crate::deps::last_good_dir(&config);
                let kinds = crate::incident::MailKind::template_names();
                match crate::templates::Templates::load(&fallback, &kinds).and_then(|t| {
                    t.check(&config.support.name, &config.support.address)?;
                    Ok(t)
                }) {
                    Ok(last_good) => {
                        for line in broken.to_string().lines() {
                            tracing::error!("template broken: {line}");
                        }
                        tracing::error!(
                            using = %fallback.display(),
                            "THE CONFIGURED TEMPLATES ARE BROKEN: running with the last good set until they are fixed (fix them, then `systemctl reload followupd`)"
                        );
                        templates_fallback = true;
                        last_good
                    }
                    Err(_) => return Err(DaemonError::Templates(broken)),
                }
            }
        };
        let deps = Deps::with_templates(config, clock, templates)?;
        let imap_tls = tls::client_config(deps.config.imap.endpoint.ca_file.as_deref())?;
        // Token endpoints are public HTTPS sites: the system's roots.
        let logins = Logins::new(&deps.config, &tls::client_config(None)?);
        drop(store::open(&deps.config.database)?);
        let lock = lock(&deps.config.database)?;
        let metrics = match deps.config.metrics.listen {
            Some(addr) => Some(
                std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|source| DaemonError::Listen { addr, source })?,
            ),
            None => None,
        };
        Ok(Daemon {
            deps: Arc::new(deps),
            imap_tls,
            logins: Arc::new(logins),
            _lock: lock,
            metrics,
            templates_fallback,
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
        let ticked = scheduler::tick(&shared, &mut db).await.unwrap_or_else(|e| {
            tracing::error!(error = %crate::errors::Chain(&e), "scheduler: database error");
            TickReport::default()
        });
        retention(&self.deps, &mut db).await;
        let smtp = self.smtp()?;
        let mut outbox = Handle::new(&self.deps.config.database, true)?;
        crate::outbox::send::hold_in_doubt(
            &mut outbox,
            &self.deps,
            "in flight when followupd last stopped",
        )
        .await?;
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
            deps: crate::deps::Current::new(self.deps.clone()),
            imap_tls: self.imap_tls.clone(),
            logins: self.logins.clone(),
            queued: Notify::new(),
            reloaded: Notify::new(),
            health: Arc::new({
                let health = health::Health::new();
                health.templates_fallback.store(
                    self.templates_fallback,
                    std::sync::atomic::Ordering::Relaxed,
                );
                health
            }),
        }
    }

    /// Writes `PID daemon` in the lock file: the process `followupd reload` may signal.
    fn mark_reloadable(&self) {
        use std::io::Write as _;
        let mut file = &self._lock;
        let _ = self._lock.set_len(0);
        let _ = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{} daemon", std::process::id());
    }

    /// Runs until SIGTERM or SIGINT; SIGHUP reloads the configuration and the templates.
    pub async fn run(&self) -> Result<(), DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
        // From here SIGHUP reloads: only now may `followupd reload` find this process (a
        // `run --once`, or a daemon still starting, would be ended by the signal).
        self.mark_reloadable();
        let notifier = notify::Notifier::from_env();
        let shared = self.shared();
        let signals = async {
            loop {
                tokio::select! {
                    _ = term.recv() => {
                        tracing::info!("SIGTERM: finishing the current step, then stopping");
                        break;
                    }
                    _ = tokio::signal::ctrl_c() => {
                        tracing::info!("interrupted: finishing the current step, then stopping");
                        break;
                    }
                    _ = hup.recv() => {
                        // Before READY=1 systemd has no reload to wait for: a READY=1 here
                        // would report a start that has not happened yet.
                        let ready = shared.health.is_ready();
                        if ready {
                            notifier.send("RELOADING=1");
                        }
                        self.reload(&shared);
                        if ready {
                            notifier.send("READY=1");
                        }
                    }
                }
            }
            let _ = stop_tx.send(true);
        };
        let config = &self.deps.config;
        let smtp = self.smtp()?;
        let intake_db = Handle::new(&config.database, false)?;
        let scheduler_db = Handle::new(&config.database, false)?;
        let mut outbox_db = Handle::new(&config.database, true)?;
        let service_db = Handle::new(&config.database, false)?;
        let retention_db = Handle::new(&config.database, false)?;
        let metrics = match &self.metrics {
            Some(listener) => Some((
                async_listener(listener)?,
                Handle::new(&config.database, false)?,
            )),
            None => None,
        };
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
            metrics = %config.metrics.listen.map_or_else(|| "off".to_string(), |a| format!("http://{a}/metrics")),
            "followupd running"
        );
        let work = async {
            tokio::join!(
                intake::run(&shared, intake_db, stop_rx.clone()),
                scheduler::run(&shared, scheduler_db, stop_rx.clone()),
                sender::run(&shared, outbox_db, &smtp, stop_rx.clone()),
                service::run(&shared, service_db, &notifier, stop_rx.clone()),
                retention_loop(&shared, retention_db, stop_rx.clone()),
                async {
                    if let Some((listener, db)) = metrics {
                        metrics::serve(&shared, listener, db, stop_rx.clone()).await;
                    }
                },
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

impl Daemon {
    /// `systemctl reload followupd` (SIGHUP): reads the configuration and the templates again
    /// and validates them completely, then swaps them in whole: every step that starts after
    /// this uses the new settings and wording. Anything wrong, and the old ones stay in force,
    /// the error logged with its file and line, as nginx does. Settings the running connections
    /// and listeners were built with ([imap], [smtp], [support], [database], [service],
    /// [metrics]) keep their old values and are named: they take effect at the next restart.
    fn reload(&self, shared: &Shared) {
        use std::sync::atomic::Ordering;
        let health = &shared.health;
        let old = shared.deps();
        let path = &old.config.path;
        tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration and the templates");
        let database = &old.config.database;
        let mut config = match crate::config::load(path) {
            Ok(config) => config,
            Err(e) => {
                health.reloads_failed.fetch_add(1, Ordering::Relaxed);
                let why = crate::errors::Chain(&e).to_string();
                tracing::error!(error = %why, "reload refused: the configuration is broken; the old configuration and templates stay in force");
                record_reload(database, &format!("refused: {why}"));
                return;
            }
        };
        let templates = match crate::deps::load_checked(&config) {
            Ok(t) => t,
            Err(e) => {
                health.reloads_failed.fetch_add(1, Ordering::Relaxed);
                for line in e.to_string().lines() {
                    tracing::error!("template broken: {line}");
                }
                tracing::error!(
                    templates = %config.templates.display(),
                    "reload refused: the templates are broken; the old configuration and templates stay in force"
                );
                record_reload(
                    database,
                    &format!(
                        "refused: the templates are broken: {}",
                        e.to_string().replace('\n', "; ")
                    ),
                );
                return;
            }
        };
        if let Err(e) = crate::deps::save_last_good(&config, &templates) {
            tracing::warn!(error = %e, "cannot keep a copy of the templates as the last good set");
        }
        let changed = changed_sections(&old.config, &config);
        let restart = keep_restart_only(&old.config, &mut config);
        let templates_dir = config.templates.clone();
        shared.deps.swap(old.reloaded(config, templates));
        health.reloads_ok.fetch_add(1, Ordering::Relaxed);
        health.reloaded_now();
        shared.reloaded.notify_one();
        let live: Vec<&str> = changed
            .iter()
            .copied()
            .filter(|s| !restart.contains(s))
            .collect();
        tracing::info!(
            templates = %templates_dir.display(),
            changed = %if live.is_empty() { "templates only".to_string() } else { live.join(", ") },
            "reloaded: the next step uses the new settings and the next mail the new templates"
        );
        if !restart.is_empty() {
            tracing::warn!(
                needs_restart = %restart.join(", "),
                "changed settings that take effect only at the next restart (`systemctl restart followupd`); their old values stay in force"
            );
        }
        let said = if restart.is_empty() {
            "ok".to_string()
        } else {
            format!(
                "ok; these take effect only at the next restart: {}",
                restart.join(", ")
            )
        };
        record_reload(database, &said);
    }
}

/// Sections whose two versions differ. Compared through their `Debug` text, which shows every
/// setting but never a password.
fn differs(a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

/// The sections of the configuration that differ, except the templates (whose files are
/// compared by loading them).
fn changed_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    let sections: [(&'static str, &dyn std::fmt::Debug, &dyn std::fmt::Debug); 18] = [
        ("[imap]", &old.imap, &new.imap),
        ("[smtp]", &old.smtp, &new.smtp),
        ("[support]", &old.support, &new.support),
        (
            "[database]",
            &(&old.database, &old.secret_file),
            &(&new.database, &new.secret_file),
        ),
        ("[cadence]", &old.cadence, &new.cadence),
        ("[outbox]", &old.outbox, &new.outbox),
        ("[intake]", &old.intake, &new.intake),
        ("[send_caps]", &old.send_caps, &new.send_caps),
        ("[escalation]", &old.escalation, &new.escalation),
        ("[recurring]", &old.recurring, &new.recurring),
        ("[staff]", &old.staff, &new.staff),
        ("[replies]", &old.replies, &new.replies),
        ("[trust]", &old.trust, &new.trust),
        ("[service]", &old.service, &new.service),
        ("[metrics]", &old.metrics, &new.metrics),
        ("[retention]", &old.retention, &new.retention),
        ("[wording]", &old.wording, &new.wording),
        ("[language]", &old.language, &new.language),
    ];
    sections
        .into_iter()
        .filter(|(_, a, b)| differs(*a, *b))
        .map(|(name, _, _)| name)
        .collect()
}

/// Puts back the old values of the sections the running connections, listeners and files were
/// built with, and names those that had changed.
fn keep_restart_only(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut kept = Vec::new();
    if differs(&old.imap, &new.imap) {
        new.imap = old.imap.clone();
        kept.push("[imap]");
    }
    if differs(&old.smtp, &new.smtp) {
        new.smtp = old.smtp.clone();
        kept.push("[smtp]");
    }
    if differs(&old.support, &new.support) {
        new.support = old.support.clone();
        kept.push("[support]");
    }
    if differs(
        &(&old.database, &old.secret_file),
        &(&new.database, &new.secret_file),
    ) {
        new.database = old.database.clone();
        new.secret_file = old.secret_file.clone();
        kept.push("[database]");
    }
    if differs(&old.service, &new.service) {
        new.service = old.service.clone();
        kept.push("[service]");
    }
    if differs(&old.metrics, &new.metrics) {
        new.metrics = old.metrics.clone();
        kept.push("[metrics]");
    }
    kept
}

/// The listener bound in [`Daemon::prepare`], handed to tokio (which needs its runtime).
fn async_listener(
    listener: &std::net::TcpListener,
) -> Result<tokio::net::TcpListener, DaemonError> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into());
    listener
        .try_clone()
        .and_then(tokio::net::TcpListener::from_std)
        .map_err(|source| DaemonError::Listen { addr, source })
}

/// How often `[retention] raw_after` is applied.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Applies retention at start, hourly and after every reload that took, on a connection of its
/// own: a long first run over a big database holds up neither the watchdog pings nor any other
/// task.
async fn retention_loop(shared: &Shared, mut db: Handle, mut stop: watch::Receiver<bool>) {
    loop {
        // Off, it costs nothing; a reload that switches it on (or shortens it) runs it at once.
        retention(&shared.deps(), &mut db).await;
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(RETENTION_EVERY) => {}
            () = shared.reloaded.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// `[retention] raw_after`: drops the raw bytes of messages of incidents closed longer ago.
/// Run at start, then hourly ([`retention_loop`]), and by `run --once`. A failure is logged and
/// tried again next time: nothing is lost by keeping mail a little longer.
async fn retention(deps: &Arc<Deps>, db: &mut Handle) {
    let Some(after) = deps.config.retention.raw_after else {
        return;
    };
    let now = deps.now();
    let Ok(after) = chrono::Duration::from_std(after) else {
        return;
    };
    let cutoff = now - after;
    let done = db
        .run(move |c| {
            let tx = c.transaction()?;
            let dropped = store::erasure::drop_raw(&tx, cutoff, now)?;
            tx.commit()?;
            Ok(dropped)
        })
        .await;
    match done {
        Ok(dropped) => {
            for (incident, messages) in dropped {
                tracing::info!(incident = %incident, messages, "retention: raw text dropped");
            }
        }
        Err(e) => {
            tracing::error!(error = %crate::errors::Chain(&e), "retention: cannot drop old raw text; will try again in an hour")
        }
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

/// The process holding the lock beside `database`, as it wrote itself there; None when no
/// daemon runs.
pub fn running_pid(database: &std::path::Path) -> Option<i32> {
    if !is_running(database) {
        return None;
    }
    let text = std::fs::read_to_string(database.with_extension("lock")).ok()?;
    // Only a daemon that handles SIGHUP marks itself; `run --once` writes its number alone.
    let (pid, role) = text.trim().split_once(' ')?;
    (role == "daemon").then(|| pid.parse().ok()).flatten()
}

/// The last reload's outcome, as the daemon records it beside the database for `followupd
/// reload` to read: a number counting the reloads, then `ok …` or `refused: …`.
pub fn reload_outcome(database: &std::path::Path) -> Option<(u64, String)> {
    let text = match std::fs::read_to_string(database.with_extension("reload")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some((0, String::new())),
        Err(_) => return None,
    };
    let (seq, said) = text.trim().split_once(' ')?;
    Some((seq.parse().ok()?, said.to_string()))
}

/// Records a reload's outcome under the next number (counting on from the file's, so that a
/// restarted daemon never repeats the number a waiting `followupd reload` already saw).
fn record_reload(database: &std::path::Path, said: &str) {
    let seq = reload_outcome(database).map_or(0, |(seq, _)| seq) + 1;
    let path = database.with_extension("reload");
    // Written aside and renamed over: a reader never sees it half written.
    let aside = database.with_extension("reload.new");
    let written = std::fs::write(&aside, format!("{seq} {said}\n"))
        .and_then(|()| std::fs::rename(&aside, &path));
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "cannot record the reload's outcome for `followupd reload`");
    }
}

/// Whether a daemon (or a `run --once`) holds the lock beside `database`: no lock file, or one
/// nobody holds, is no daemon. Only looks: the lock is released at once.
pub fn is_running(database: &std::path::Path) -> bool {
    let Ok(file) = std::fs::File::open(database.with_extension("lock")) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// Takes the exclusive lock beside the database; released by the kernel when the process ends,
/// however it ends.
fn lock(database: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    let path = database.with_extension("lock");
    let shown = path.display().to_string();
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(crate::files::new_file_mode(
            path.parent().unwrap_or(std::path::Path::new(".")),
            0o060,
        ))
        .open(&path)
        .map_err(|source| DaemonError::Lock {
            path: shown.clone(),
            source,
        })?;
    if let Ok(Some(old)) = crate::files::make_private(&path) {
        tracing::warn!(file = %shown, "the lock file was readable by everyone (mode {old:04o}); made private");
    }
    // `followupd status` looks at the lock for an instant: a start at that instant waits for
    // it rather than failing as if a daemon ran.
    let mut tries = 0;
    let taken = loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other,
        }
    };
    match taken {
        Ok(()) => {
            // The holder's process id, for `followupd reload` (a stale one is harmless: the
            // lock, not the number, says whether a daemon runs).
            use std::io::Write as _;
            let mut held = &file;
            let _ = file.set_len(0);
            let _ = writeln!(held, "{}", std::process::id());
            Ok(file)
        }
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
