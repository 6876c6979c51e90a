//! The command line: the edge where errors become messages and exit codes.

mod admin;
mod connect;
mod service;
mod show;
mod staff;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::apply::{act, Applied};
use crate::clock::{self, Clock};
use crate::config::{self, Config};
use crate::daemon::Daemon;
use crate::deps::Deps;
use crate::incident::{
    letters, Effect, Effects, Event, EventKind, IncidentNo, MailKind, MessageRow, NewEvent,
    Resolution, StaffAction, State,
};
use crate::mail::MessageClass;
use crate::outbox::{Pass, Queued};
use crate::store::{self, messages::MessageFilter};

use admin::*;
use staff::*;

#[derive(Parser)]
#[command(
    name = "followupd",
    version,
    about = "Keeps promises to customers when something has gone wrong.",
    long_about = "Keeps promises to customers when something has gone wrong: watches a support \
                  inbox over IMAP, turns every complaint into an incident, acknowledges it at \
                  once with the time of the next update, keeps that promise until the problem \
                  is fixed, and keeps a record of every message in SQLite. Staff work from \
                  their own mail client; every word it sends is in editable templates.",
    after_long_help = MAN_EXTRA
)]
pub struct Cli {
    /// Configuration file [default: /etc/followupd/followupd.toml]
    #[arg(
        long,
        short,
        global = true,
        env = "FOLLOWUPD_CONFIG",
        value_name = "PATH"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The testing clock: `FOLLOWUPD_TEST_NOW=2026-11-23T18:00:00Z` makes a command act as if it
/// were that time, and time stands still for the whole command. An environment variable, not
/// an option: no completion offers it, the unit never sets it, and a staff member cannot
/// backdate what they record by typing a flag.
fn testing_clock() -> Result<Clock> {
    let Ok(text) = std::env::var(TEST_NOW) else {
        return Ok(Clock::system());
    };
    let at = DateTime::parse_from_rfc3339(&text).map_err(|e| {
        anyhow::anyhow!(
            "{TEST_NOW} `{text}` is not an RFC 3339 time like 2026-11-23T18:00:00Z: {e}"
        )
    })?;
    Ok(Clock::fixed(at.with_timezone(&Utc)))
}

/// The man page's closing section: examples, files, exit status, where to read on.
const MAN_EXTRA: &str = "\
Examples:
  followupd check --connect
      the configuration and templates checked, both servers logged in to
  systemctl enable --now followupd
      the daemon (followupd run) under systemd
  systemctl reload followupd
      configuration and templates read again (followupd reload)
  followupd status
      what the daemon has done and has waiting; exit 3 when it is not running
  followupd incidents --mine
      the incidents assigned to you
  followupd incident note 12 --internal \"Asked the carrier\"
      a note only staff see
  followupd oauth2 login imap
      a sign-in to Microsoft 365 or Google
  followupd upcoming --within 24h
      every mail the daemon will send in the next day

Files:
  /etc/followupd/followupd.toml
      the configuration (every key in /usr/share/doc/followupd/followupd.toml.example)
  /etc/followupd/templates/
      every word a customer or a staff member reads
  /etc/followupd/imap-password, /etc/followupd/smtp-password
      root's, handed to the unit as credentials
  /var/lib/followupd/
      the database, the secret key, the OAuth2 sign-ins

Exit status: 0 done; 1 failed (the reason on stderr, at err in the journal); 3 (status) no
daemon runs; 78 the configuration is broken (the unit does not restart on it).

Environment: FOLLOWUPD_CONFIG (the configuration file), FOLLOWUPD_LOG (info, debug, ...).

Read on: /usr/share/doc/followupd/docs/ (admin-guide.md, staff-guide.md, templates.md,
how-it-works.md).";

/// The testing clock's variable (see [`testing_clock`]).
const TEST_NOW: &str = "FOLLOWUPD_TEST_NOW";

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: read the support inbox, acknowledge, send (stops cleanly on SIGTERM).
    Run {
        /// One intake pass and one outbox drain, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate the configuration and render every template with sample data.
    #[command(
        after_long_help = "Examples:\n  followupd check\n  followupd check --connect\n\n\
        Warnings (a missing trusted_authserv_id, a port with the other TLS mode, a file in the \
        state directory the service cannot use) never fail the check; errors name the file \
        and line."
    )]
    Check {
        /// Also log in to IMAP (and select the mailbox) and to SMTP (EHLO, TLS, AUTH), and
        /// report each failure in one line.
        #[arg(long)]
        connect: bool,
    },
    /// OAuth2 sign-in for servers with auth = "oauth2".
    Oauth2 {
        #[command(subcommand)]
        action: OAuth2Action,
    },
    /// List incidents.
    Incidents {
        /// Only incidents in this state: open, waiting, resolved or closed.
        #[arg(long, value_parser = parse_state)]
        state: Option<State>,
        /// Only those assigned to this member (a name as `#assign` takes it, or an address).
        #[arg(long, value_name = "MEMBER")]
        assignee: Option<String>,
        /// Only those assigned to you: `--by`, else the Unix user, read as a member's name.
        #[arg(long, conflicts_with = "assignee")]
        mine: bool,
        /// Only those whose next promised update is due within this long ("2h").
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        due_within: Option<std::time::Duration>,
        /// Only those with this tag.
        #[arg(long, value_name = "LABEL")]
        tag: Option<String>,
        /// Only those whose subject, summary, customer or staff notes contain this text.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        #[command(flatten)]
        by: By,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Work with one incident.
    Incident {
        #[command(subcommand)]
        action: IncidentAction,
    },
    /// List messages that could not be processed and are kept for a human; `release ID`
    /// takes one in.
    Quarantine {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<QuarantineAction>,
    },
    /// One recorded message: its headers, text and attachments.
    Message {
        #[command(subcommand)]
        action: MessageAction,
    },
    /// List recorded messages, newest first, optionally of one class.
    Messages {
        /// human, auto-reply, bounce, bulk, loop, junk or quarantined (incoming); outgoing, or a
        /// kind of mail we send (acknowledgement, progress, ...).
        #[arg(long, value_name = "CLASS")]
        class: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Every mail the daemon will send (and every incident it will close) and when: a dry run
    /// of the scheduler.
    Upcoming {
        /// How far ahead to look.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        within: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
    /// Reports over the incident history.
    Report {
        #[command(subcommand)]
        what: Report,
    },
    /// Work with templates.
    Template {
        #[command(subcommand)]
        action: TemplateAction,
    },
    /// Re-read the configuration and the templates in the running daemon (the unit's
    /// `ExecReload=`): checks them first, then signals the daemon and waits for its answer.
    /// Exits non-zero with the reason when they are refused (78 for a broken configuration);
    /// the daemon keeps the old ones.
    Reload {
        /// The daemon's process id (`$MAINPID` in the unit); default: the one holding the
        /// database's lock.
        #[arg(long, value_name = "PID")]
        pid: Option<i32>,
        /// How long to wait for the daemon's answer.
        #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
        wait: std::time::Duration,
    },
    /// What the daemon has done and has waiting, as /metrics shows it: incidents by state,
    /// the outbox, sends, promises kept and breached, escalations, suppressed mail, intake.
    #[command(
        after_long_help = "Exit status: 0 while a daemon runs (it holds the database's \
        lock), 3 when none does.\n\nExamples:\n  followupd status\n  followupd status --json"
    )]
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Erase everything about one person (right to erasure): their messages, names and
    /// addresses. Leaves a tombstone event saying what was erased, when and by whom.
    #[command(
        after_long_help = "Examples:\n  followupd erase ann@example.com --by dpo\n  \
        followupd erase ann@example.com --by dpo --imap\n\nRun it again with the daemon \
        stopped to be certain nothing of the person stays in the database's journal."
    )]
    Erase {
        /// The person's email address.
        address: String,
        /// Who is doing this, for the event log [default: the Unix user].
        #[arg(long)]
        by: Option<String>,
        /// Also delete their mail, and the copies of ours to them, from the support mailbox
        /// (and the folder processed mail is moved to) on the IMAP server.
        #[arg(long)]
        imap: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// For packaging: write the man pages and completion files into DIR.
    #[command(hide = true)]
    Generate { dir: PathBuf },
    /// Addresses that bounced: no automatic mail goes to them until they write again.
    Undeliverable {
        #[command(subcommand)]
        action: Option<UndeliverableAction>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum QuarantineAction {
    /// Take a held message in after all: it goes through intake again as if the check that
    /// held it had passed (you vouch for its sender; a stranger's mail opens their own
    /// incident). Mail claiming to be from staff is never released.
    Release {
        #[arg(value_parser = parse_message)]
        id: MessageRow,
        #[command(flatten)]
        by: By,
    },
}

#[derive(Subcommand)]
enum MessageAction {
    /// Show a message as a person reads it (control characters neutralised).
    Show {
        #[arg(value_parser = parse_message)]
        id: MessageRow,
        /// The exact bytes as received or sent.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OAuth2Action {
    /// Sign in once as the mailbox (device code: open a URL anywhere, enter a code); the
    /// refresh token is kept in the state directory (mode 0600) and the daemon uses it from
    /// its next connection on.
    Login {
        /// The server whose sign-in this is: imap or smtp (one sign-in when they share
        /// [oauth2]).
        #[arg(value_parser = ["imap", "smtp"])]
        server: String,
        /// Sign in through a browser and paste back the address it ends on (authorization
        /// code with PKCE), instead of the device code. Google needs this for Gmail.
        #[arg(long)]
        browser: bool,
    },
}

#[derive(Subcommand)]
enum Report {
    /// The fire drills: incidents marked recurring (a customer's repeated incidents, or a tag
    /// that keeps coming back), grouped by customer.
    Recurring {
        #[arg(long)]
        json: bool,
    },
    /// Per week: the customers' answers to the check-back (is it fixed? their 1–5 rating)
    /// and the promises kept and breached.
    Satisfaction {
        /// How far back to look.
        #[arg(long, default_value = "12w", value_parser = parse_duration)]
        since: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TemplateAction {
    /// The templates of every kind of mail, and the canned replies staff use with `#reply NAME`.
    List,
    /// Show exactly what a template would send for a real incident now.
    Render {
        /// acknowledgement, progress, status, waiting, resolution, check_back, reopened,
        /// thank_you, or a staff kind like staff/escalation.
        name: String,
        #[arg(long, value_parser = parse_incident)]
        incident: IncidentNo,
    },
}

#[derive(Subcommand)]
enum UndeliverableAction {
    /// Allow automatic mail to an address again.
    Clear {
        address: String,
        /// Who is doing this, for the event log [default: the Unix user].
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum IncidentAction {
    /// Show an incident and its timeline of messages, mails and events.
    Show {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        /// Everything: every message (with its decoded text), note, mail sent and event.
        /// Without it, the latest of each and what is still to happen.
        #[arg(long)]
        full: bool,
        #[arg(long)]
        json: bool,
    },
    /// Send the customer a progress update carrying this note now; restarts the cadence clock.
    /// With --internal: a note for the team only, never sent to the customer.
    Note {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        text: String,
        /// Keep the note from the customer: it is recorded for the team and sent to nobody.
        #[arg(long)]
        internal: bool,
        #[command(flatten)]
        by: By,
    },
    /// Put an open incident on hold until a time, for a reason the customer is told:
    /// `incident hold 3 until Thursday 10:00 waiting for the carrier` (also `until tomorrow
    /// …`, `until 2026-12-21 14:00 …`, `for 2d …`). No update or escalation before then; the
    /// promised update goes out at that time.
    Hold {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        /// When it ends, then why.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
        words: Vec<String>,
        #[command(flatten)]
        by: By,
    },
    /// Set how often the customer hears from us (e.g. 2h, 30m, 1d; kept within [cadence] bounds).
    Cadence {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        #[arg(value_parser = parse_duration)]
        every: std::time::Duration,
        #[command(flatten)]
        by: By,
    },
    /// Waiting on the customer: scheduled updates pause (no promise is broken by it).
    Wait {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        /// What we need from the customer (required): they are told, in the `waiting` mail.
        #[arg(long, value_name = "WHAT")]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// Answer the customer in this language from now on (`de`: templates/de/, falling back to
    /// the default set file by file).
    Lang {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        /// A language code: en, de, …
        lang: String,
        #[command(flatten)]
        by: By,
    },
    /// Make the incident someone's (default: whoever runs this).
    Assign {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        /// The staff member [default: --by, else the Unix user].
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        by: By,
    },
    /// Updates start again, the next one a cadence from now.
    Resume {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        #[command(flatten)]
        by: By,
    },
    /// Resolve: sends the resolution mail. A root cause and a prevention are required.
    Resolve {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        /// What went wrong, in words the customer will read.
        #[arg(long)]
        root_cause: Option<String>,
        /// What changes so it does not happen again.
        #[arg(long)]
        prevention: Option<String>,
        /// What we offer to make up for it (optional).
        #[arg(long)]
        compensation: Option<String>,
        /// The one question the check-back asks, e.g. "Is your refund showing on your
        /// statement now?" (default: "Is everything sorted for you now?").
        #[arg(long)]
        question: Option<String>,
        #[command(flatten)]
        by: By,
    },
    /// Close without further mail.
    Close {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        #[command(flatten)]
        by: By,
    },
    /// Open a resolved or closed incident again; the customer is told.
    Reopen {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        #[command(flatten)]
        by: By,
    },
    /// Add a label (one word).
    Tag {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        label: String,
        #[command(flatten)]
        by: By,
    },
}

#[derive(clap::Args)]
struct By {
    /// Who is acting, for the event log [default: the Unix user].
    #[arg(long)]
    by: Option<String>,
}

fn parse_state(text: &str) -> Result<State, String> {
    State::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a state; use one of {}",
            State::ALL.map(State::as_str).join(", ")
        )
    })
}

fn parse_message(text: &str) -> Result<MessageRow, String> {
    text.trim_start_matches('#')
        .parse()
        .map(MessageRow)
        .map_err(|_| format!("`{text}` is not a message number (see `followupd messages`)"))
}

fn parse_incident(text: &str) -> Result<IncidentNo, String> {
    text.trim_start_matches('#')
        .parse()
        .map(IncidentNo)
        .map_err(|_| format!("`{text}` is not an incident number"))
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}; write it like 2h or 30m"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(code) => code,
        // `followupd incidents | head`: the reader has all it wanted; not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain, each cause once: "database …: cannot open: permission denied".
            let said = crate::errors::Chain(e.as_ref());
            if stderr_is_the_journal() {
                // At err, so `journalctl -p err` shows why the unit failed.
                tracing::error!("{said}");
            } else {
                eprintln!("followupd: {said}");
            }
            if is_config_error(&e) {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The exit status of a broken configuration (sysexits' `EX_CONFIG`): the unit does not
/// restart on it (`RestartPreventExitStatus=78`), since it would fail the same way every ten
/// seconds until someone mends the file.
const EXIT_CONFIG: u8 = 78;

fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| cause.downcast_ref::<config::ConfigError>().is_some())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Plain lines on stderr; straight to the journal when systemd connected stderr to it
/// (`$JOURNAL_STREAM` names stderr), so levels become priorities (`journalctl -p warning`)
/// and fields become journal fields: `journalctl FOLLOWUPD_INCIDENT=12`,
/// `FOLLOWUPD_MESSAGE_ID=…`, `FOLLOWUPD_UID=…`.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("FOLLOWUPD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    if stderr_is_the_journal() {
        if let Ok(journal) = crate::journal::JournalLayer::connect() {
            tracing_subscriber::registry()
                .with(filter())
                .with(journal)
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Whether `$JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd) is our stderr: a child process
/// that inherited the variable but writes elsewhere keeps plain lines.
fn stderr_is_the_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    meta.dev() == dev && meta.ino() == ino
}

fn load_config(cli: &Cli) -> Result<Config> {
    let path = config::resolve_path(cli.config.as_deref());
    Ok(config::load(&path)?)
}

/// Root runs a command as the owner of the state directory (the service's user), so that what
/// it writes there (the database's journal files, a refreshed OAuth2 sign-in, the secret key)
/// stays the service's: a root `check --connect` that refreshed the token once left a file the
/// service could not read. Secrets only root may read are read first. A state directory root
/// owns, or none yet, leaves root as it is.
fn work_as_state_owner(config: &mut Config) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Some(state) = config.database.parent().map(std::path::Path::to_path_buf) else {
        return Ok(());
    };
    let Ok(meta) = std::fs::metadata(&state) else {
        return Ok(());
    };
    let uid = meta.uid();
    if uid == 0 {
        return Ok(());
    }
    // The owner's own group and supplementary groups, as a login of theirs would have (not
    // the directory's group, which could be root's).
    // SAFETY: getpwuid returns null or a pointer to static storage, read at once.
    let account = unsafe {
        let pw = libc::getpwuid(uid);
        (!pw.is_null()).then(|| {
            (
                (*pw).pw_gid,
                std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
            )
        })
    };
    let Some((gid, name)) = account else {
        anyhow::bail!(
            "{} belongs to uid {uid}, which has no account: root will not write there as \
             nobody; give the directory to the service's user",
            state.display()
        );
    };
    config.read_secrets_now();
    // The groups first: once the user is changed there is no right left to change them.
    // SAFETY: plain system calls on values we own; each result is checked.
    let failed = unsafe {
        libc::initgroups(name.as_ptr(), gid) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
    };
    if failed {
        anyhow::bail!(
            "cannot work as the owner of {} (uid {uid}, gid {gid}), as root must so that the \
             service can use what this command writes: {}",
            state.display(),
            std::io::Error::last_os_error()
        );
    }
    tracing::debug!(uid, gid, state = %state.display(), "root works as the state directory's owner");
    Ok(())
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    // Commands that need no configuration.
    match &cli.command {
        Command::Completions { shell } => return service::completions(*shell),
        Command::Generate { dir } => return service::generate(dir),
        _ => {}
    }
    let mut config = load_config(&cli)?;
    work_as_state_owner(&mut config)?;
    show::set_team_zone(config.cadence.timezone);
    let clock = testing_clock()?;
    match cli.command {
        Command::Check { connect } => check(&config, connect),
        Command::Oauth2 {
            action: OAuth2Action::Login { server, browser },
        } => connect::login(&config, &server, browser),
        Command::Run { once } => run(config, once, clock),
        Command::Status { json } => service::status(&config, json, clock.now()),
        Command::Reload { pid, wait } => service::reload(&config, pid, wait),
        Command::Erase { address, by, imap } => erase(&config, &address, by, imap, clock),
        Command::Completions { .. } | Command::Generate { .. } => Ok(ExitCode::SUCCESS), // above
        Command::Incidents {
            state,
            assignee,
            mine,
            due_within,
            tag,
            search,
            by,
            json,
        } => {
            let assignee = match (mine, assignee) {
                (true, _) => Some(by.by.unwrap_or_else(admin::unix_user)),
                (false, named) => named,
            };
            let assignee = match assignee {
                Some(name) => Some(config.staff.member_named(&name).map_err(|could_be| {
                    if could_be.is_empty() {
                        anyhow::anyhow!(
                            "no team member is called `{name}` ([staff] members: {})",
                            config.staff.members.join(", ")
                        )
                    } else {
                        anyhow::anyhow!(
                            "`{name}` could be {}; give the address",
                            could_be.join(", ")
                        )
                    }
                })?),
                None => None,
            };
            let conn = store::open(&config.database)?;
            let due_before = due_within.map(|within| clock::after(clock.now(), within));
            let list = store::incidents::incidents_where(
                &conn,
                &store::incidents::Filter {
                    state,
                    assignee,
                    tag,
                    due_before,
                    search,
                },
            )?;
            if json {
                show::json(&list)?;
            } else {
                show::incidents(&list)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Incident { action } => incident_action(config, action, clock),
        Command::Messages { class, limit, json } => list_messages(&config, class, limit, json),
        Command::Message {
            action: MessageAction::Show { id, raw, json },
        } => show::message(&config, id, raw, json),
        Command::Upcoming { within, json } => upcoming(config, within, json, clock),
        Command::Report {
            what: Report::Recurring { json },
        } => {
            let conn = store::open(&config.database)?;
            let list = store::incidents::recurring_incidents(&conn)?;
            if json {
                show::json(&list)?;
            } else {
                show::recurring(&list)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            what: Report::Satisfaction { since, json },
        } => {
            let conn = store::open(&config.database)?;
            let weeks = store::satisfaction::weekly(&conn, clock::before(clock.now(), since))?;
            if json {
                show::json(&weeks)?;
            } else {
                show::satisfaction(&weeks)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Template {
            action: TemplateAction::Render { name, incident },
        } => render_template(config, &name, incident, clock),
        Command::Template {
            action: TemplateAction::List,
        } => template_list(&config),
        Command::Undeliverable { action: None, json } => {
            let conn = store::open(&config.database)?;
            let list = store::outbox::all_undeliverable(&conn)?;
            if json {
                show::json(&list)?;
            } else {
                show::undeliverable(&list)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Undeliverable {
            action: Some(UndeliverableAction::Clear { address, by }),
            ..
        } => {
            let conn = store::open(&config.database)?;
            let address = address.trim().to_lowercase();
            if !store::outbox::clear_undeliverable(&conn, &address)? {
                bail!("{address} is not marked undeliverable (see `followupd undeliverable`)");
            }
            let actor = crate::incident::Actor::Staff(by.unwrap_or_else(unix_user));
            store::events::log(
                &conn,
                &NewEvent {
                    incident: None,
                    message: None,
                    kind: EventKind::UndeliverableCleared,
                    detail: format!(
                        "{address} cleared by {actor}; automatic mail may go there again"
                    ),
                    actor,
                },
                clock.now(),
            )?;
            writeln!(
                std::io::stdout(),
                "{address} cleared: automatic mail may go there again"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine {
            action: Some(QuarantineAction::Release { id, by }),
            ..
        } => staff::release(config, id, by.by.unwrap_or_else(unix_user), clock),
        Command::Quarantine { json, action: None } => {
            let conn = store::open(&config.database)?;
            let filter = MessageFilter {
                class: Some(MessageClass::Quarantined),
                held_only: true,
                ..MessageFilter::default()
            };
            let list = store::messages::messages(&conn, filter, usize::MAX)?;
            if json {
                show::json(&list)?;
            } else {
                show::quarantine(&list)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run(config: Config, once: bool, clock: Clock) -> Result<ExitCode> {
    let daemon = Daemon::prepare(config, clock)?;
    one_malloc_arena();
    // One thread drives the network; SQLite work runs on tokio's blocking pool (one thread per
    // task at most: intake, scheduler and sender never wait for each other's queries), and so
    // do OAuth2 token exchanges (one at a time per sign-in, at most two sign-ins): a slow token
    // endpoint never holds up a query.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(5)
        .build()
        .context("cannot start the async runtime")?;
    if once {
        let summary = runtime.block_on(daemon.run_once())?;
        tracing::info!(
            ingested = summary.ingested,
            updates = summary.ticked.updates,
            check_backs = summary.ticked.check_backs,
            closed = summary.ticked.closed,
            sent = summary.drained.sent,
            retrying = summary.drained.retrying,
            failed = summary.drained.failed,
            still_queued = summary.still_queued,
            "run --once finished"
        );
    } else {
        runtime.block_on(daemon.run())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// glibc gives every thread that allocates its own malloc arena, and the daemon's database
/// threads each keep theirs mostly empty: measured with `scripts/bench`, peak RSS 27.6 MiB with
/// one arena per thread and 19 MiB with one shared arena, at the same throughput (SQLite
/// allocations are short and the threads rarely allocate at the same instant).
///
/// glibc also raises its mmap threshold to the size of every large block freed (up to 32 MiB),
/// so after one 20 MB message the next ones are carved from the heap and their memory is kept:
/// eight 20 MB messages took 145 MiB (`scripts/bench-memory`). A fixed threshold gives every
/// large message its own mapping, returned to the system when the message is done.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before the runtime starts
    // any thread, and both values are positive and within glibc's accepted ranges.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
