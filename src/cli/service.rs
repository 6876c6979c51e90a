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
    println!(
        "man pages in {}, completions in {}",
        man.display(),
        completions.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `followupd status`: what `/metrics` shows, as a person reads it. The same numbers: both
/// come from [`store::stats::snapshot`].
pub fn status(config: &Config, json: bool, now: DateTime<Utc>) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let snapshot = store::stats::snapshot(&conn)?;
    if json {
        super::show::json(&snapshot)?;
    } else {
        let mut out = std::io::stdout().lock();
        write_status(&mut out, &snapshot, now)?;
    }
    Ok(ExitCode::SUCCESS)
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
