//! Commands for running followupd as a service: `status`, `completions`, and the hidden
//! `generate` that writes the man page and completion files for the Debian package.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::CommandFactory;

use crate::clock::human_duration;
use crate::config::Config;
use crate::store::{self, stats::Snapshot};

/// `followupd completions SHELL`: the completion script on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = super::Cli::command();
    clap_complete::generate(shell, &mut command, "followupd", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `followupd generate DIR`: `DIR/man/man1/followupd.1` (and one page per subcommand: a
/// `MANPATH` entry as it is) and
/// `DIR/completions/{followupd.bash,_followupd,followupd.fish}`, as the package installs them.
pub fn generate(dir: &Path) -> Result<ExitCode> {
    let man = dir.join("man").join("man1");
    std::fs::create_dir_all(&man).with_context(|| format!("{}: cannot create", man.display()))?;
    let command = super::Cli::command();
    clap_mangen::generate_to(command.clone(), &man)
        .with_context(|| format!("{}: cannot write the man pages", man.display()))?;
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("{}: cannot create", completions.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut command = command.clone();
        clap_complete::generate_to(shell, &mut command, "followupd", &completions)
            .with_context(|| format!("{}: cannot write completions", completions.display()))?;
    }
    writeln!(
        std::io::stdout(),
        "man pages in {}, completions in {}",
        man.display(),
        completions.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `followupd status`: what `/metrics` shows, as a person reads it (the same numbers: both come
/// from [`store::stats::snapshot`]), and whether the daemon runs. Exits 3 when it does not (as
/// LSB init scripts' `status` does), so a monitoring check can tell "down" from "up".
pub fn status(config: &Config, json: bool, now: DateTime<Utc>) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let snapshot = store::stats::snapshot(&conn)?;
    let running = crate::daemon::is_running(&config.database);
    if json {
        let mut value = serde_json::to_value(&snapshot)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("running".into(), running.into());
        }
        super::show::json(&value)?;
    } else {
        let mut out = std::io::stdout().lock();
        write_status(&mut out, &snapshot, now)?;
        if !running {
            writeln!(
                out,
                "daemon      not running (nothing holds {})",
                config.database.with_extension("lock").display()
            )?;
        } else if let Some(addr) = config.metrics.listen {
            // What only the running daemon knows (IMAP up or down, a stuck loop), from its
            // /healthz when the listener is on.
            let said = match healthz(addr) {
                Ok(body) => body.lines().collect::<Vec<_>>().join("; "),
                Err(e) => format!("no answer at http://{addr}/healthz ({e})"),
            };
            writeln!(out, "daemon      {said}")?;
        } else {
            writeln!(out, "daemon      running")?;
        }
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `followupd reload`: the configuration parsed already (a broken one never gets here: it
/// exits 78 with its file and line); the templates are checked as the daemon will check them;
/// then SIGHUP, and the daemon's own answer, which it records beside the database.
pub fn reload(config: &Config, pid: Option<i32>, wait: std::time::Duration) -> Result<ExitCode> {
    crate::deps::load_checked(config).map_err(|e| {
        anyhow::anyhow!(
            "reload refused: the templates in {} are broken; the daemon keeps the old ones: {}",
            config.templates.display(),
            e.to_string().replace('\n', "; ")
        )
    })?;
    let lock = config.database.with_extension("lock");
    let deadline = std::time::Instant::now() + wait;
    let pid = match pid {
        Some(pid) => pid,
        None => loop {
            if !crate::daemon::is_running(&config.database) {
                anyhow::bail!(
                    "no daemon runs (nothing holds {}): nothing to reload; the configuration \
                     and the templates are good and the next start uses them",
                    lock.display()
                );
            }
            // Held by a daemon still starting (or a `run --once`): it marks itself once a
            // reload can reach it.
            if let Some(pid) = crate::daemon::running_pid(&config.database) {
                break pid;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "{} is held by a process that takes no reload (a `run --once`, or a daemon \
                     that did not finish starting within {})",
                    lock.display(),
                    humantime::format_duration(wait)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        },
    };
    let before = crate::daemon::reload_outcome(&config.database).map(|(seq, _)| seq);
    // SAFETY: kill(2) with a signal number from libc; the result is checked.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        anyhow::bail!(
            "cannot signal the daemon (pid {pid}): {}",
            std::io::Error::last_os_error()
        );
    }
    loop {
        // A file mid-rename reads as nothing: looked at again.
        let now = crate::daemon::reload_outcome(&config.database);
        if let Some((_, said)) = now.filter(|(seq, _)| Some(*seq) != before) {
            if said.starts_with("ok") {
                writeln!(std::io::stdout(), "reloaded: {said}")?;
                return Ok(ExitCode::SUCCESS);
            }
            anyhow::bail!("reload {said}");
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the daemon (pid {pid}) did not answer the reload within {}; its log says why",
                humantime::format_duration(wait)
            );
        }
        // The daemon writes its answer to a file: looked at every 50 ms until it changes.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The daemon's `/healthz` body (200 or 503 alike: both say what is going on).
fn healthz(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use std::io::Read;
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    Ok(text
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.trim().to_string()))
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    human_duration((now - t).to_std().unwrap_or_default())
}

fn listed(map: &std::collections::BTreeMap<String, i64>, order: &[&str]) -> String {
    let mut parts: Vec<String> = order
        .iter()
        .map(|k| format!("{} {k}", map.get(*k).copied().unwrap_or(0)))
        .collect();
    parts.extend(
        map.iter()
            .filter(|(k, _)| !order.contains(&k.as_str()))
            .map(|(k, n)| format!("{n} {k}")),
    );
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

pub fn write_status(out: &mut impl Write, s: &Snapshot, now: DateTime<Utc>) -> Result<()> {
    writeln!(
        out,
        "incidents   {}",
        listed(&s.incidents, &["open", "waiting", "resolved", "closed"])
    )?;
    writeln!(
        out,
        "outbox      {} queued{}, {} sent, {} failed",
        s.queued(),
        s.oldest_queued
            .map(|t| format!(" (oldest queued {} ago)", ago(now, t)))
            .unwrap_or_default(),
        s.outbox.get("sent").copied().unwrap_or(0),
        s.outbox.get("failed").copied().unwrap_or(0),
    )?;
    writeln!(
        out,
        "sends       {}",
        listed(&s.sends, &["sent", "retry", "failed"])
    )?;
    writeln!(
        out,
        "promises    {}",
        listed(&s.promises, &["kept", "breached", "pending"])
    )?;
    writeln!(out, "escalations {}", s.escalations)?;
    writeln!(out, "suppressed  {}", listed(&s.suppressed, &[]))?;
    writeln!(out, "messages    {}", listed(&s.messages, &["human"]))?;
    writeln!(
        out,
        "intake      {}",
        s.read_through
            .map(|t| format!("read everything delivered until {} ago", ago(now, t)))
            .unwrap_or_else(|| "has not completed a pass yet".into())
    )?;
    Ok(())
}
