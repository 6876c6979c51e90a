//! The command line: the edge where errors become messages and exit codes.

mod connect;
mod service;
mod show;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::apply::{act, Applied};
use crate::clock::{self, human_duration, Clock};
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

#[derive(Parser)]
#[command(
    name = "followupd",
    version,
    about = "Keeps promises to customers when something has gone wrong."
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
    /// For testing only: act as if it were this time (RFC 3339, e.g. 2026-11-23T18:00:00Z).
    /// Time then stands still for the whole command.
    #[arg(long, global = true, hide = true, value_name = "TIME", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
    #[command(subcommand)]
    command: Command,
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-11-23T18:00:00Z: {e}"))
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: read the support inbox, acknowledge, send (stops cleanly on SIGTERM).
    Run {
        /// One intake pass and one outbox drain, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate the configuration and render every template with sample data.
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
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Work with one incident.
    Incident {
        #[command(subcommand)]
        action: IncidentAction,
    },
    /// List messages that could not be processed and are kept for a human.
    Quarantine {
        #[arg(long)]
        json: bool,
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
    /// What the daemon has done and has waiting, as /metrics shows it: incidents by state,
    /// the outbox, sends, promises kept and breached, escalations, suppressed mail, intake.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Erase everything about one person (right to erasure): their messages, names and
    /// addresses. Leaves a tombstone event saying what was erased, when and by whom.
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
        /// Also the decoded text of every message in and out.
        #[arg(long)]
        full: bool,
        #[arg(long)]
        json: bool,
    },
    /// Send the customer a progress update carrying this note now; restarts the cadence clock.
    Note {
        #[arg(value_parser = parse_incident)]
        number: IncidentNo,
        text: String,
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
        /// statement now?" (default: "Is it working for you now?").
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
            eprintln!("followupd: {}", crate::errors::Chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
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
        if let Ok(journal) = tracing_journald::layer() {
            let journal = journal
                .with_syslog_identifier("followupd".into())
                .with_field_prefix(Some("FOLLOWUPD".into()));
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

fn dispatch(cli: Cli) -> Result<ExitCode> {
    // Commands that need no configuration.
    match &cli.command {
        Command::Completions { shell } => return service::completions(*shell),
        Command::Generate { dir } => return service::generate(dir),
        _ => {}
    }
    let config = load_config(&cli)?;
    show::set_team_zone(config.cadence.timezone);
    let clock = cli.now.map_or_else(Clock::system, Clock::fixed);
    match cli.command {
        Command::Check { connect } => check(&config, connect),
        Command::Oauth2 {
            action: OAuth2Action::Login { server, browser },
        } => connect::login(&config, &server, browser),
        Command::Run { once } => run(config, once, clock),
        Command::Status { json } => service::status(&config, json, clock.now()),
        Command::Erase { address, by, imap } => erase(&config, &address, by, imap, clock),
        Command::Completions { .. } | Command::Generate { .. } => Ok(ExitCode::SUCCESS), // above
        Command::Incidents { state, json } => {
            let conn = store::open(&config.database)?;
            let list = store::incidents::incidents(&conn, state)?;
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
            println!("{address} cleared: automatic mail may go there again");
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine { json } => {
            let conn = store::open(&config.database)?;
            let filter = MessageFilter {
                class: Some(MessageClass::Quarantined),
                kind: None,
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

/// Staff actions: one transaction each, with the mail they cause; the running daemon sends it.
fn incident_action(config: Config, action: IncidentAction, clock: Clock) -> Result<ExitCode> {
    if let IncidentAction::Show { number, json, full } = action {
        return show::incident(&config, number, json, full);
    }
    let deps = Deps::load(config, clock)?;
    let mut conn = store::open(&deps.config.database)?;
    let tx = conn.transaction()?;
    let now = deps.now();
    let staff = |by: By| by.by.unwrap_or_else(unix_user);
    let (number, by, action) = match action {
        IncidentAction::Show { .. } => return Ok(ExitCode::SUCCESS), // answered above
        IncidentAction::Note { number, text, by } => (number, staff(by), StaffAction::Note(text)),
        IncidentAction::Cadence { number, every, by } => {
            (number, staff(by), StaffAction::Cadence(every))
        }
        IncidentAction::Wait { number, reason, by } => {
            (number, staff(by), StaffAction::Wait(reason))
        }
        IncidentAction::Assign { number, to, by } => {
            let who = staff(by);
            let to = to.unwrap_or_else(|| who.clone());
            (number, who, StaffAction::Assign(to))
        }
        IncidentAction::Resume { number, by } => (number, staff(by), StaffAction::Resume),
        IncidentAction::Lang { number, lang, by } => (number, staff(by), StaffAction::Lang(lang)),
        IncidentAction::Resolve {
            number,
            root_cause,
            prevention,
            compensation,
            question,
            by,
        } => (
            number,
            staff(by),
            StaffAction::Resolve(Resolution {
                root_cause: root_cause.unwrap_or_default(),
                prevention: prevention.unwrap_or_default(),
                compensation,
                question,
            }),
        ),
        IncidentAction::Close { number, by } => (number, staff(by), StaffAction::Close),
        IncidentAction::Reopen { number, by } => (number, staff(by), StaffAction::Reopen),
        IncidentAction::Tag { number, label, by } => {
            let since = clock::before(now, deps.config.recurring.window);
            let tagged_in_window =
                store::incidents::tagged_since(&tx, &label.trim().to_lowercase(), since)?;
            (
                number,
                staff(by),
                StaffAction::Tag {
                    label,
                    tagged_in_window,
                },
            )
        }
    };
    let event = Event::Staff {
        by,
        action: action.clone(),
    };
    let (effects, applied) = act(&tx, &deps, number, &event, Pass::Real, now)?;
    tx.commit()?;
    println!(
        "incident {number}: {}",
        said(&action, &effects, &applied, &deps)
    );
    Ok(ExitCode::SUCCESS)
}

/// What a staff action did, in one line.
fn said(action: &StaffAction, effects: &Effects, applied: &Applied, deps: &Deps) -> String {
    let tz = deps.config.cadence.timezone;
    let mail = |what: &str| match applied.mails.first().map(|m| &m.outcome) {
        Some(Queued::Waiting { .. }) => format!("{what} queued"),
        Some(Queued::Suppressed(reason)) => format!("{what} NOT sent: {reason}"),
        Some(Queued::Failed(reason)) => format!("{what} NOT sent, kept as failed: {reason}"),
        None => format!("no {what}"),
    };
    match action {
        StaffAction::Note(_) => format!("note recorded; {}", mail("progress update")),
        StaffAction::Cadence(_) => {
            let set = effects.list.iter().find_map(|e| match e {
                Effect::Cadence(d) => Some(*d),
                _ => None,
            });
            format!(
                "updates every {}",
                set.map(human_duration).unwrap_or_default()
            )
        }
        StaffAction::Wait(_) => format!(
            "waiting on the customer; updates paused; {}",
            mail("mail saying what we need")
        ),
        StaffAction::Assign(member) => format!("assigned to {member}"),
        StaffAction::Resume => format!(
            "open again; {}; next update by {}",
            mail("mail saying so"),
            effects
                .next_update()
                .flatten()
                .map(|t| show::team_time(t, tz))
                .unwrap_or_default()
        ),
        StaffAction::Lang(_) => {
            let lang = effects
                .list
                .iter()
                .find_map(|e| match e {
                    Effect::Lang(l) => Some(l.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            if lang == deps.config.language.default || deps.templates.languages().contains(&lang) {
                format!("answered in `{lang}` from now on")
            } else {
                format!(
                    "answered in `{lang}` from now on; there is no {}/{lang}/ template set, so \
                     mails stay in the default set until one is added",
                    deps.templates.dir().display()
                )
            }
        }
        StaffAction::Resolve(_) => format!("resolved; {}", mail("resolution mail")),
        StaffAction::Close => "closed".into(),
        StaffAction::Reopen => format!("reopened; {}", mail("mail telling the customer")),
        StaffAction::Tag { label, .. } => {
            let label = label.trim().to_lowercase();
            if effects.is_empty() {
                format!("already tagged {label}")
            } else {
                format!("tagged {label}")
            }
        }
    }
}

fn upcoming(
    config: Config,
    within: std::time::Duration,
    json: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let deps = Deps::load(config, clock)?;
    let mut conn = store::open_for_preview(&deps.config.database)?;
    let now = deps.now();
    let until = now + chrono::Duration::from_std(within).context("--within is too large")?;
    let list = crate::scheduler::upcoming(&mut conn, &deps, now, until)?;
    if json {
        show::json(&list)?;
    } else {
        show::upcoming(&list, within)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders a template for a real incident with the data it would get now (the latest note,
/// the promised time), without queueing anything.
fn render_template(
    config: Config,
    name: &str,
    number: IncidentNo,
    clock: Clock,
) -> Result<ExitCode> {
    let Some(kind) = MailKind::parse(name) else {
        bail!(
            "no template `{name}`; the templates are {}",
            MailKind::template_names().join(", ")
        );
    };
    let deps = Deps::load(config, clock)?;
    let conn = store::open(&deps.config.database)?;
    let Some(facts) = crate::apply::facts(&conn, number)? else {
        bail!("there is no incident {number}");
    };
    let mut data = letters::mail_data(&facts.incident, &deps.config, facts.incident.next_update_at);
    data.note = facts.latest_note.map(|n| n.text).unwrap_or_default();
    let value = serde_json::to_value(&data)?;
    let rendered = deps.templates.render(kind.as_str(), &value)?;
    let mut out = show::out();
    writeln!(
        out,
        "Subject: {}",
        crate::mail::header_safe(&rendered.subject, 400)
    )?;
    writeln!(out, "\n{}", rendered.text)?;
    if let Some(html) = rendered.html {
        writeln!(out, "--- HTML ---\n{html}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list_messages(
    config: &Config,
    class: Option<String>,
    limit: usize,
    json: bool,
) -> Result<ExitCode> {
    let filter = match class.as_deref() {
        None => MessageFilter::default(),
        Some(c) => match (MessageClass::parse(c), MailKind::parse(c)) {
            (Some(class), _) => MessageFilter {
                class: Some(class),
                kind: None,
            },
            (None, Some(kind)) => MessageFilter {
                class: None,
                kind: Some(kind),
            },
            (None, None) => bail!(
                "unknown class `{c}`; use one of {}, or a kind of mail we send ({})",
                MessageClass::ALL.map(MessageClass::as_str).join(", "),
                MailKind::template_names().join(", ")
            ),
        },
    };
    let conn = store::open(&config.database)?;
    let list = store::messages::messages(&conn, filter, limit)?;
    if json {
        show::json(&list)?;
    } else {
        show::messages(&list)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `followupd erase ADDRESS`: the person's messages, names and addresses go; a tombstone
/// event stays. The file is vacuumed and its WAL emptied afterwards, with `secure_delete` on
/// during the erasure, so the address survives nowhere in the database's files.
fn erase(
    config: &Config,
    address: &str,
    by: Option<String>,
    imap: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let address = address.trim().to_lowercase();
    let plausible = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>');
    if !plausible {
        bail!("`{address}` is not an email address like ann@example.com: erase takes one whole address");
    }
    let mut conn = store::open(&config.database)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let actor = crate::incident::Actor::Staff(by.unwrap_or_else(unix_user));
    let tx = conn.transaction()?;
    let erased = store::erasure::erase(&tx, &address, &actor, clock.now())?;
    tx.commit()?;
    let clean = store::erasure::vacuum(&conn)?;
    let incidents: Vec<String> = erased.incidents.iter().map(|n| format!("#{n}")).collect();
    println!(
        "erased {address}: {} incident(s){}, {} message(s), {} mail(s), {} event detail(s); a tombstone event records it",
        erased.incidents.len(),
        if incidents.is_empty() {
            String::new()
        } else {
            format!(" ({})", incidents.join(", "))
        },
        erased.messages,
        erased.mails,
        erased.events
    );
    if !clean {
        eprintln!(
            "followupd: the database's write-ahead log is in use by another process (the daemon?) \
             and could not be emptied; its old pages are overwritten by the next writes. For \
             certainty now, stop the daemon and run `followupd erase {address}` again."
        );
    }
    if imap {
        let removed = connect::erase_from_mailbox(config, &erased.message_ids)?;
        println!(
            "imap: deleted {removed} message(s) of {} from the support mailbox on {}",
            erased.message_ids.len(),
            config.imap.endpoint.server()
        );
    } else if !erased.message_ids.is_empty() {
        println!(
            "their {} message(s) are still in the support mailbox on the server: run with \
             --imap to delete them there too",
            erased.message_ids.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The acting user for the event log when `--by` is not given.
fn unix_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn check(config: &Config, connect: bool) -> Result<ExitCode> {
    println!("config     {}: ok", config.path.display());
    let templates = crate::deps::load_templates(config)?;
    let rendered = templates.check(&config.support.name, &config.support.address)?;
    println!(
        "templates  {}: ok ({rendered} renderings with complete, plain and sparse sample data)",
        config.templates.display()
    );
    // `check --connect` reports the CA files in its own lines, with the rest.
    if !connect {
        crate::tls::client_config(config.imap.endpoint.ca_file.as_deref())
            .context("[imap] ca_file")?;
        crate::tls::client_config(config.smtp.endpoint.ca_file.as_deref())
            .context("[smtp] ca_file")?;
    }
    // The passwords are read here (only the daemon and this check ever read them): a file
    // others may read is refused with its line, as `run` would refuse it.
    for (section, endpoint) in [
        ("imap", &config.imap.endpoint),
        ("smtp", &config.smtp.endpoint),
    ] {
        endpoint.password(section)?;
    }
    // The same for OAuth2 client secrets and keys; and whether someone signed in yet (not an
    // error: the daemon runs and says so until someone does).
    for (server, account) in oauth2_accounts(config) {
        match &account.client_auth {
            config::ClientAuth::None => {}
            config::ClientAuth::Secret(file) => {
                file.read_line(&account.section)?;
            }
            config::ClientAuth::Certificate(cert) => {
                cert.key.read_rsa_key(&account.section)?;
            }
        }
        let state = match account.grant {
            config::Grant::ClientCredentials => "the app signs in as itself".to_string(),
            config::Grant::RefreshToken => match crate::oauth::saved::read(&account.token_file) {
                Ok(Some(saved)) => format!(
                    "signed in at {} ({})",
                    saved.signed_in_at,
                    account.token_file.display()
                ),
                Ok(None) => format!(
                    "not signed in yet: run `followupd oauth2 login {server}`"
                ),
                Err(e) => bail!(
                    "[{}] sign-in file {}: {e}; sign in again with `followupd oauth2 login {server}`",
                    account.section,
                    account.token_file.display()
                ),
            },
        };
        println!(
            "oauth2     [{}] {}: {state}",
            account.section, account.token_url
        );
    }
    let key = if config.secret_file.exists() {
        crate::secret::Secret::load_or_create(&config.secret_file)?;
        "ok"
    } else {
        "created on first run"
    };
    println!("secret     {}: {key}", config.secret_file.display());
    println!(
        "imap       {}:{} ({:?}), mailbox {}, {}, {}",
        config.imap.endpoint.host,
        config.imap.endpoint.port,
        config.imap.endpoint.tls,
        config.imap.mailbox,
        login_said(&config.imap.endpoint),
        if config.imap.idle {
            "IDLE when offered"
        } else {
            "polling"
        }
    );
    println!(
        "smtp       {}:{} ({:?}), {}",
        config.smtp.endpoint.host,
        config.smtp.endpoint.port,
        config.smtp.endpoint.tls,
        login_said(&config.smtp.endpoint)
    );
    println!("database   {}", config.database.display());
    for warning in check_warnings(config) {
        println!("warning    {warning}");
    }
    if connect {
        return connect::check(config);
    }
    Ok(ExitCode::SUCCESS)
}

/// What works but is likely not what the admin wants: said by `check`, never a failure.
fn check_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.intake.trusted_authserv_id.is_none() {
        out.push(
            "[intake] trusted_authserv_id is not set: no sender can be verified, so every \
             customer gets the cut-down mail that ends \"We could not confirm that this address \
             wrote to us\" (at most 5 per person in 24 hours) and staff replies cannot be \
             checked. Set it to \"microsoft365\", \"google\", or the first word of your \
             server's Authentication-Results (`check --connect` lists the ones it sees)"
                .to_string(),
        );
    }
    if config.staff.members.is_empty() {
        out.push(
            "[staff] members is empty: nobody can answer a customer or give a command by mail, \
             and escalations only reach [escalation] staff or the log"
                .to_string(),
        );
    }
    if let Some(listen) = config.metrics.listen {
        if !listen.ip().is_loopback() {
            out.push(format!(
                "[metrics] listen = \"{listen}\" is reachable from other machines: /metrics \
                 shows queue sizes and error counts to anyone who can connect. Use \
                 127.0.0.1 and a reverse proxy, or a firewall"
            ));
        }
    }
    out
}

/// Each distinct sign-in, with the server that uses it first (for `oauth2 login SERVER`).
fn oauth2_accounts(config: &Config) -> Vec<(&'static str, &config::OAuth2Config)> {
    let mut out: Vec<(&'static str, &std::sync::Arc<config::OAuth2Config>)> = Vec::new();
    for (server, endpoint) in [
        ("imap", &config.imap.endpoint),
        ("smtp", &config.smtp.endpoint),
    ] {
        if let config::Auth::OAuth2 { account, .. } = &endpoint.auth {
            if !out.iter().any(|(_, a)| std::sync::Arc::ptr_eq(a, account)) {
                out.push((server, account));
            }
        }
    }
    out.into_iter().map(|(s, a)| (s, a.as_ref())).collect()
}

/// How `check` describes a server's login: `password`, or `oauth2 XOAUTH2 via [oauth2]
/// (microsoft365, refresh_token)`.
fn login_said(endpoint: &config::Endpoint) -> String {
    match (&endpoint.auth, &endpoint.username) {
        (_, None) => "no login".into(),
        (config::Auth::Password, Some(_)) => "password login".into(),
        (config::Auth::OAuth2 { mechanism, account }, Some(_)) => format!(
            "oauth2 {} via [{}] ({}, {})",
            mechanism.as_str(),
            account.section,
            account.provider.as_str(),
            account.grant.as_str()
        ),
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
