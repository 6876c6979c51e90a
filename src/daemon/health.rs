//! What the running daemon knows about itself that the database does not: whether IMAP is
//! connected (and why not), when each task last came round its loop, what a reload did. Read
//! by the service task (READY, STATUS, WATCHDOG) and by `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The loops that must be alive for the daemon to be doing its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Intake,
    Scheduler,
    Sender,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Intake, Task::Scheduler, Task::Sender];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::Intake => "intake",
            Task::Scheduler => "scheduler",
            Task::Sender => "sender",
        }
    }
}

/// The IMAP connection as intake last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapState {
    Connecting,
    Connected,
    /// Down, with the error in one line (an OAuth2 refusal names its reason and the fix).
    Down(String),
}

pub struct Health {
    started: Instant,
    /// Milliseconds since `started` at each task's last turn of its loop.
    beats: [AtomicU64; 3],
    imap: Mutex<ImapState>,
    /// Whether IMAP has been connected at least once (READY=1 waits for it, or the grace).
    ever_connected: std::sync::atomic::AtomicBool,
    /// Whether READY=1 has been sent.
    ready: std::sync::atomic::AtomicBool,
    /// When the last intake pass ended.
    last_pass: Mutex<Option<Instant>>,
    /// Why the SMTP relay cannot be reached, while it cannot.
    smtp_down: Mutex<Option<String>>,
    /// Why the OAuth2 sign-in is refused (revoked, expired, never made), while it is: someone
    /// must sign in again, so `/healthz` is unhealthy until they do.
    sign_in_refused: Mutex<Option<String>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Unix time of the start or of the last reload that took (what Prometheus calls
    /// `…_last_reload_success_timestamp_seconds`).
    last_reload_ok: AtomicU64,
    /// Running with the last good templates: the configured ones are broken.
    pub templates_fallback: std::sync::atomic::AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    pub fn new() -> Health {
        Health {
            started: Instant::now(),
            beats: Default::default(),
            imap: Mutex::new(ImapState::Connecting),
            ever_connected: false.into(),
            ready: false.into(),
            last_pass: Mutex::new(None),
            smtp_down: Mutex::new(None),
            sign_in_refused: Mutex::new(None),
            reloads_ok: 0.into(),
            reloads_failed: 0.into(),
            last_reload_ok: unix_now().into(),
            templates_fallback: false.into(),
        }
    }

    /// A reload took: the configured templates are in force, and now is its time.
    pub fn reloaded_now(&self) {
        self.last_reload_ok.store(unix_now(), Ordering::Relaxed);
        self.templates_fallback.store(false, Ordering::Relaxed);
    }

    pub fn last_reload_ok(&self) -> u64 {
        self.last_reload_ok.load(Ordering::Relaxed)
    }

    fn slot(task: Task) -> usize {
        match task {
            Task::Intake => 0,
            Task::Scheduler => 1,
            Task::Sender => 2,
        }
    }

    /// The task came round its loop: it is not stuck.
    pub fn beat(&self, task: Task) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.beats[Self::slot(task)].store(ms, Ordering::Relaxed);
    }

    /// How long ago each task last came round its loop.
    pub fn since_beats(&self) -> [(Task, Duration); 3] {
        let now = self.started.elapsed();
        Task::ALL.map(|t| {
            let at = Duration::from_millis(self.beats[Self::slot(t)].load(Ordering::Relaxed));
            (t, now.saturating_sub(at))
        })
    }

    pub fn imap_connected(&self) {
        self.ever_connected.store(true, Ordering::Relaxed);
        self.set_imap(ImapState::Connected);
        self.sign_in(None);
    }

    /// The sign-in was refused for this reason (None: it works again).
    pub fn sign_in(&self, refused: Option<String>) {
        if let Ok(mut s) = self.sign_in_refused.lock() {
            *s = refused;
        }
    }

    pub fn sign_in_refused(&self) -> Option<String> {
        self.sign_in_refused.lock().ok().and_then(|s| s.clone())
    }

    pub fn imap_down(&self, why: String) {
        self.set_imap(ImapState::Down(why));
    }

    fn set_imap(&self, state: ImapState) {
        if let Ok(mut s) = self.imap.lock() {
            *s = state;
        }
    }

    pub fn imap(&self) -> ImapState {
        self.imap
            .lock()
            .map(|s| s.clone())
            .unwrap_or(ImapState::Connecting)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn ever_connected(&self) -> bool {
        self.ever_connected.load(Ordering::Relaxed)
    }

    /// The relay cannot be reached (`Some(why)`), or answers again (`None`).
    pub fn smtp(&self, down: Option<String>) {
        if let Ok(mut s) = self.smtp_down.lock() {
            *s = down;
        }
    }

    pub fn smtp_down(&self) -> Option<String> {
        self.smtp_down.lock().ok().and_then(|s| s.clone())
    }

    pub fn passed(&self) {
        self.beat(Task::Intake);
        if let Ok(mut p) = self.last_pass.lock() {
            *p = Some(Instant::now());
        }
    }

    pub fn since_last_pass(&self) -> Option<Duration> {
        self.last_pass
            .lock()
            .ok()
            .and_then(|p| p.map(|at| at.elapsed()))
    }
}

/// The tasks that have not come round their loop within `limit`: while this is not empty the
/// watchdog is not fed, and systemd restarts the daemon after `WatchdogSec=`.
pub fn stalled(since_beats: &[(Task, Duration)], limit: Duration) -> Vec<(Task, Duration)> {
    since_beats
        .iter()
        .filter(|(_, since)| *since > limit)
        .copied()
        .collect()
}

/// The one line `systemctl status` shows: "12 open incidents, 0 queued, last poll 3 s ago".
pub fn status_line(
    open_incidents: i64,
    queued: i64,
    since_last_pass: Option<Duration>,
    imap: &ImapState,
    smtp_down: Option<&str>,
) -> String {
    let incidents = match open_incidents {
        1 => "1 open incident".to_string(),
        n => format!("{n} open incidents"),
    };
    let poll = match since_last_pass {
        Some(d) => format!("last poll {} s ago", d.as_secs()),
        None => "no poll yet".to_string(),
    };
    let mut line = format!("{incidents}, {queued} queued, {poll}");
    match imap {
        ImapState::Connected => {}
        ImapState::Connecting => line.push_str("; IMAP connecting"),
        ImapState::Down(why) => {
            line.push_str("; IMAP down: ");
            // systemd shows STATUS= on one line; keep it readable.
            line.extend(why.chars().filter(|c| !c.is_control()).take(300));
        }
    }
    if let Some(why) = smtp_down {
        line.push_str("; SMTP relay unreachable: ");
        line.extend(why.chars().filter(|c| !c.is_control()).take(200));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_reads_as_a_sentence() {
        assert_eq!(
            status_line(
                12,
                0,
                Some(Duration::from_millis(3400)),
                &ImapState::Connected,
                None
            ),
            "12 open incidents, 0 queued, last poll 3 s ago"
        );
        assert_eq!(
            status_line(
                1,
                2,
                None,
                &ImapState::Down("login refused\nby server".into()),
                Some("localhost:25: connection refused")
            ),
            "1 open incident, 2 queued, no poll yet; IMAP down: login refusedby server; \
             SMTP relay unreachable: localhost:25: connection refused"
        );
    }

    #[test]
    fn a_task_quiet_past_the_limit_is_stalled_and_the_others_are_not() {
        let beats = [
            (Task::Intake, Duration::from_secs(400)),
            (Task::Scheduler, Duration::from_secs(1)),
            (Task::Sender, Duration::from_secs(299)),
        ];
        let stuck = stalled(&beats, Duration::from_secs(300));
        assert_eq!(stuck, vec![(Task::Intake, Duration::from_secs(400))]);
    }
}
