//! The command line: the edge where errors become messages and exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::daemon::Daemon;
use crate::lifecycle::{Actor, Lifecycle};
use crate::outbox::{Queue, Queued};
use crate::schedule::Clock;
use crate::secret::Secret;
use crate::store::{self, Incident, TimelineMessage};
use crate::templates::Templates;

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
    Check,
    /// List incidents.
    Incidents {
        /// Only incidents in this state (open, ...).
        #[arg(long)]
        state: Option<String>,
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
    /// List recorded messages, newest first, optionally of one class.
    Messages {
        /// human, auto-reply, bounce, bulk, loop or quarantined (incoming); acknowledgement
        /// for mail we sent.
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
    /// Addresses that bounced: no automatic mail goes to them until they write again.
    Undeliverable {
        #[command(subcommand)]
        action: Option<UndeliverableAction>,
        #[arg(long)]
        json: bool,
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
}

#[derive(Subcommand)]
enum TemplateAction {
    /// Show exactly what a template would send for a real incident now.
    Render {
        /// acknowledgement, progress, status, resolution, check_back, reopened or escalation.
        name: String,
        #[arg(long)]
        incident: i64,
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

/// Classes an incoming message can have, as `messages --class` accepts them.
const INCOMING_CLASSES: &[&str] = &[
    "human",
    "auto-reply",
    "bounce",
    "bulk",
    "loop",
    "quarantined",
];

#[derive(Subcommand)]
enum IncidentAction {
    /// Show an incident and its timeline of messages, mails and events.
    Show {
        number: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send the customer a progress update carrying this note now; restarts the cadence clock.
    Note {
        number: i64,
        text: String,
        #[command(flatten)]
        by: By,
    },
    /// Set how often the customer hears from us (e.g. 2h, 30m, 1d; kept within [cadence] bounds).
    Cadence {
        number: i64,
        #[arg(value_parser = parse_duration)]
        every: std::time::Duration,
        #[command(flatten)]
        by: By,
    },
    /// Waiting on the customer: scheduled updates pause.
    Wait {
        number: i64,
        #[command(flatten)]
        by: By,
    },
    /// Updates start again, the next one a cadence from now.
    Resume {
        number: i64,
        #[command(flatten)]
        by: By,
    },
    /// Resolve: sends the resolution mail. A root cause and a prevention are required.
    Resolve {
        number: i64,
        /// What went wrong, in words the customer will read.
        #[arg(long)]
        root_cause: Option<String>,
        /// What changes so it does not happen again.
        #[arg(long)]
        prevention: Option<String>,
        /// What we offer to make up for it (optional).
        #[arg(long)]
        compensation: Option<String>,
        #[command(flatten)]
        by: By,
    },
    /// Close without further mail.
    Close {
        number: i64,
        #[command(flatten)]
        by: By,
    },
    /// Open a resolved or closed incident again; the customer is told.
    Reopen {
        number: i64,
        #[command(flatten)]
        by: By,
    },
    /// Add a label (one word).
    Tag {
        number: i64,
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

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}; write it like 2h or 30m"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain: "cannot open …: permission denied".
            eprintln!("followupd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOLLOWUPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn load_config(cli: &Cli) -> Result<Config> {
    let path = config::resolve_path(cli.config.as_deref());
    Ok(config::load(&path)?)
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli)?;
    let clock = cli.now.map_or_else(Clock::system, Clock::fixed);
    match cli.command {
        Command::Check => check(&config),
        Command::Run { once } => run(config, once, clock),
        Command::Incidents { state, json } => {
            let conn = store::open(&config.database)?;
            let list = store::incidents(&conn, state.as_deref())?;
            if json {
                print_json(&list)?;
            } else {
                print_incidents(&list)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Incident { action } => incident_action(&config, action, clock),
        Command::Messages { class, limit, json } => list_messages(&config, class, limit, json),
        Command::Upcoming { within, json } => upcoming(&config, within, json, clock),
        Command::Report {
            what: Report::Recurring { json },
        } => report_recurring(&config, json),
        Command::Template {
            action: TemplateAction::Render { name, incident },
        } => render_template(&config, &name, incident),
        Command::Undeliverable { action: None, json } => {
            let conn = store::open(&config.database)?;
            let list = store::all_undeliverable(&conn)?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("no address is marked undeliverable");
            } else {
                for u in &list {
                    println!(
                        "{:<40}  since {}  incident {}  {}",
                        u.address,
                        short_time(&u.since),
                        u.incident.map_or("-".into(), |n| format!("#{n}")),
                        u.reason
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Undeliverable {
            action: Some(UndeliverableAction::Clear { address, by }),
            ..
        } => {
            let conn = store::open(&config.database)?;
            let address = address.trim().to_lowercase();
            if !store::clear_undeliverable(&conn, &address)? {
                bail!("{address} is not marked undeliverable (see `followupd undeliverable`)");
            }
            let actor = by.unwrap_or_else(unix_user);
            store::log_event_by(
                &conn,
                chrono::Utc::now(),
                None,
                None,
                "undeliverable_cleared",
                &actor,
                &format!("{address} cleared by {actor}; automatic mail may go there again"),
            )?;
            println!("{address} cleared: automatic mail may go there again");
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine { json } => {
            let conn = store::open(&config.database)?;
            let list = store::messages_by_class(&conn, Some("quarantined"), usize::MAX)?;
            if json {
                print_json(&list)?;
            } else {
                print_quarantine(&list)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Staff actions: one transaction each, with the mail they cause; the running daemon sends it.
fn incident_action(config: &Config, action: IncidentAction, clock: Clock) -> Result<ExitCode> {
    if let IncidentAction::Show { number, json } = action {
        return show_incident(config, number, json);
    }
    let templates = Templates::load(&config.templates)?;
    let secret = Secret::load_or_create(&config.secret_file)?;
    let life = Lifecycle {
        queue: Queue {
            templates: &templates,
            support: &config.support,
            secret: &secret,
            caps: &config.send_caps,
        },
        cadence: &config.cadence,
        escalation: &config.escalation,
        recurring: &config.recurring,
    };
    let mut conn = store::open(&config.database)?;
    let tx = conn.transaction()?;
    let now = clock.now();
    let staff = |by: By| by.by.unwrap_or_else(unix_user);
    let said = match action {
        IncidentAction::Show { .. } => String::new(), // answered above
        IncidentAction::Note { number, text, by } => {
            let who = staff(by);
            let queued = life.note(&tx, Actor::Staff(&who), number, &text, now)?;
            format!(
                "incident {number}: note recorded; {}",
                queued_words(&queued, "progress update")
            )
        }
        IncidentAction::Cadence { number, every, by } => {
            let who = staff(by);
            let set = life.set_cadence(&tx, Actor::Staff(&who), number, every, now)?;
            format!(
                "incident {number}: updates every {}",
                crate::templates::human_duration(set)
            )
        }
        IncidentAction::Wait { number, by } => {
            let who = staff(by);
            life.wait(&tx, Actor::Staff(&who), number, now)?;
            format!("incident {number}: waiting on the customer; updates paused")
        }
        IncidentAction::Resume { number, by } => {
            let who = staff(by);
            let next = life.resume(&tx, Actor::Staff(&who), number, now)?;
            format!(
                "incident {number}: open again; next update by {}",
                store::ts(next)
            )
        }
        IncidentAction::Resolve {
            number,
            root_cause,
            prevention,
            compensation,
            by,
        } => {
            let who = staff(by);
            let queued = life.resolve(
                &tx,
                Actor::Staff(&who),
                number,
                &store::Resolution {
                    root_cause: root_cause.as_deref().unwrap_or(""),
                    prevention: prevention.as_deref().unwrap_or(""),
                    compensation: compensation.as_deref().filter(|c| !c.trim().is_empty()),
                },
                now,
            )?;
            format!(
                "incident {number}: resolved; {}",
                queued_words(&queued, "resolution mail")
            )
        }
        IncidentAction::Close { number, by } => {
            let who = staff(by);
            life.close(&tx, Actor::Staff(&who), number, now)?;
            format!("incident {number}: closed")
        }
        IncidentAction::Reopen { number, by } => {
            let who = staff(by);
            let queued = life.reopen(&tx, Actor::Staff(&who), number, None, now)?;
            format!(
                "incident {number}: reopened; {}",
                queued_words(&queued, "the customer is told")
            )
        }
        IncidentAction::Tag { number, label, by } => {
            let who = staff(by);
            if life.tag(&tx, Actor::Staff(&who), number, &label, now)? {
                format!("incident {number}: tagged {}", label.trim().to_lowercase())
            } else {
                format!(
                    "incident {number}: already tagged {}",
                    label.trim().to_lowercase()
                )
            }
        }
    };
    tx.commit()?;
    println!("{said}");
    Ok(ExitCode::SUCCESS)
}

fn upcoming(
    config: &Config,
    within: std::time::Duration,
    json: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let now = clock.now();
    let until = now + chrono::Duration::from_std(within).context("--within is too large")?;
    let lead = chrono::Duration::from_std(config.cadence.lead).unwrap_or_default();
    let list = store::upcoming(&conn, now, until, lead)?;
    if json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(
            out,
            "nothing due within {}",
            humantime::format_duration(within)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for u in &list {
        writeln!(
            out,
            "{}  incident {:<6}  {:<15}  {:<30}  {}",
            short_time(&u.at),
            u.incident,
            u.what,
            clip(u.recipient.as_deref().unwrap_or("-"), 30),
            u.detail
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders a template for a real incident with the data it would get now (the latest note,
/// the promised time), without queueing anything.
fn render_template(config: &Config, name: &str, number: i64) -> Result<ExitCode> {
    if !crate::templates::KINDS.contains(&name) {
        bail!(
            "no template `{name}`; the templates are {}",
            crate::templates::KINDS.join(", ")
        );
    }
    let templates = Templates::load(&config.templates)?;
    let conn = store::open(&config.database)?;
    let Some(incident) = store::incident(&conn, number)? else {
        bail!("there is no incident {number}");
    };
    let promise = incident
        .next_update_at
        .as_deref()
        .and_then(|t| store::parse_ts(t).ok());
    let mut data = crate::policy::incident_mail_data(
        &incident,
        &config.support,
        promise,
        config.cadence.timezone,
    );
    data.note = store::latest_note(&conn, number)?.unwrap_or_default();
    data.close_after = crate::templates::human_duration(config.cadence.close_after);
    let value = serde_json::to_value(&data)?;
    let rendered = templates.render(name, &value)?;
    let mut out = std::io::stdout().lock();
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

fn report_recurring(config: &Config, json: bool) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let list = store::recurring_incidents(&conn)?;
    if json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no recurring incidents")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut customers: Vec<&str> = list.iter().map(|i| i.customer_address.as_str()).collect();
    customers.sort_unstable();
    customers.dedup();
    for customer in customers {
        writeln!(out, "{customer}")?;
        for i in list.iter().filter(|i| i.customer_address == customer) {
            writeln!(
                out,
                "  #{:<6} {}  {:<8}  {}{}",
                i.number,
                short_time(&i.opened_at),
                i.state,
                clip(&i.subject, 50),
                if i.tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", i.tags.join(", "))
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn queued_words(queued: &Queued, what: &str) -> String {
    match queued {
        Queued::Queued(_) => format!("{what} queued"),
        Queued::Suppressed(reason) => format!("{what} NOT sent: {reason}"),
    }
}

fn list_messages(
    config: &Config,
    class: Option<String>,
    limit: usize,
    json: bool,
) -> Result<ExitCode> {
    if let Some(c) = &class {
        if !INCOMING_CLASSES.contains(&c.as_str()) && !crate::templates::KINDS.contains(&c.as_str())
        {
            bail!(
                "unknown class `{c}`; use one of {}, or a kind of mail we send ({})",
                INCOMING_CLASSES.join(", "),
                crate::templates::KINDS.join(", ")
            );
        }
    }
    let conn = store::open(&config.database)?;
    let list = store::messages_by_class(&conn, class.as_deref(), limit)?;
    if json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no messages")?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &list {
        let who = if m.direction == "in" {
            m.from.clone().unwrap_or_else(|| "(no sender)".into())
        } else {
            format!("-> {}", m.to.clone().unwrap_or_default())
        };
        writeln!(
            out,
            "#{:<6} {}  {:<3}  {:<15}  {:>9}  {:<30}  {}",
            m.id,
            short_time(&m.at),
            m.direction,
            m.class,
            m.incident.map_or("-".into(), |n| format!("incident {n}")),
            clip(&who, 30),
            clip(m.subject.as_deref().unwrap_or(""), 50)
        )?;
        print_message_extras(&mut out, m)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines under a message: why it got its class, size limit, attachments.
fn print_message_extras(out: &mut impl Write, m: &TimelineMessage) -> Result<()> {
    if let Some(reason) = m.class_reason.as_deref().filter(|_| m.direction == "in") {
        writeln!(out, "         {reason}")?;
    }
    if m.headers_only {
        writeln!(
            out,
            "         over the size limit ({} bytes): only the headers were kept",
            m.size
        )?;
    }
    for a in &m.attachments {
        writeln!(
            out,
            "         attachment {} ({}, {} bytes)",
            a.name.as_deref().unwrap_or("(unnamed)"),
            a.content_type,
            a.size
        )?;
    }
    Ok(())
}

/// The acting user for the event log when `--by` is not given.
fn unix_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn check(config: &Config) -> Result<ExitCode> {
    println!("config     {}: ok", config.path.display());
    let templates = Templates::load(&config.templates)?;
    let rendered = templates.check(&config.support.name, &config.support.address)?;
    println!(
        "templates  {}: ok ({rendered} renderings with complete and sparse sample data)",
        config.templates.display()
    );
    crate::tls::client_config(config.imap.endpoint.ca_file.as_deref()).context("[imap] ca_file")?;
    println!(
        "imap       {}:{} ({:?}), mailbox {}",
        config.imap.endpoint.host,
        config.imap.endpoint.port,
        config.imap.endpoint.tls,
        config.imap.mailbox
    );
    println!(
        "smtp       {}:{} ({:?})",
        config.smtp.endpoint.host, config.smtp.endpoint.port, config.smtp.endpoint.tls
    );
    println!("database   {}", config.database.display());
    Ok(ExitCode::SUCCESS)
}

fn run(config: Config, once: bool, clock: Clock) -> Result<ExitCode> {
    let daemon = Daemon::prepare(config, clock)?;
    // One thread is plenty: the work is I/O, and SQLite writes are serialised anyway.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
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

fn show_incident(config: &Config, number: i64, json: bool) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let Some(incident) = store::incident(&conn, number)? else {
        bail!("there is no incident {number}");
    };
    let messages = store::incident_messages(&conn, number)?;
    let outbox = store::incident_outbox(&conn, number)?;
    let suppressed = store::incident_suppressed(&conn, number)?;
    let events = store::incident_events(&conn, number)?;
    if json {
        print_json(&serde_json::json!({
            "incident": incident,
            "messages": messages,
            "outbox": outbox,
            "suppressed": suppressed,
            "events": events,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let customer = match &incident.customer_name {
        Some(name) => format!("{name} <{}>", incident.customer_address),
        None => incident.customer_address.clone(),
    };
    writeln!(
        out,
        "Incident {}  [{}]  {}",
        incident.number, incident.token, incident.state
    )?;
    writeln!(out, "  Subject      {}", incident.subject)?;
    writeln!(out, "  Customer     {customer}")?;
    writeln!(out, "  Opened       {}", short_time(&incident.opened_at))?;
    if let Some(next) = &incident.next_update_at {
        writeln!(out, "  Next update  {}", short_time(next))?;
    }
    writeln!(
        out,
        "  Cadence      {}",
        crate::templates::human_duration(incident.cadence())
    )?;
    if !incident.summary.is_empty() {
        writeln!(out, "  Summary      {}", incident.summary)?;
    }
    writeln!(out, "\nMessages")?;
    for m in &messages {
        let who = if m.direction == "in" {
            m.from.clone().unwrap_or_default()
        } else {
            format!("-> {}", m.to.clone().unwrap_or_default())
        };
        writeln!(
            out,
            "  {}  {:<3}  {:<15}  {:<30}  {}",
            short_time(&m.at),
            m.direction,
            m.class,
            clip(&who, 30),
            clip(m.subject.as_deref().unwrap_or(""), 60)
        )?;
        print_message_extras(&mut out, m)?;
    }
    writeln!(out, "\nOutbox")?;
    for o in &outbox {
        let when = o.sent_at.as_deref().map_or_else(
            || format!("next try {}", short_time(&o.next_attempt_at)),
            |s| format!("sent {}", short_time(s)),
        );
        writeln!(
            out,
            "  {:<15}  {:<6}  attempts {:<2}  {}  {}",
            o.kind,
            o.state,
            o.attempts,
            when,
            o.last_error.as_deref().unwrap_or("")
        )?;
    }
    for s in &suppressed {
        writeln!(
            out,
            "  {:<15}  suppressed  {}  {}",
            s.kind,
            short_time(&s.at),
            s.reason
        )?;
    }
    writeln!(out, "\nEvents")?;
    for e in &events {
        writeln!(
            out,
            "  {}  {:<20}  {:<10}  {}",
            short_time(&e.at),
            e.kind,
            e.actor,
            e.detail
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_incidents(list: &[Incident]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no incidents")?;
        return Ok(());
    }
    let width = list
        .iter()
        .map(|i| i.number.to_string().len())
        .max()
        .unwrap_or(1)
        .max(1);
    writeln!(
        out,
        "{:>width$}  {:<8}  {:<16}  {:<30}  {:>4}  SUBJECT",
        "#", "STATE", "OPENED", "CUSTOMER", "MSGS"
    )?;
    for i in list {
        writeln!(
            out,
            "{:>width$}  {:<8}  {:<16}  {:<30}  {:>4}  {}",
            i.number,
            i.state,
            short_time(&i.opened_at),
            clip(&i.customer_address, 30),
            i.messages,
            clip(&i.subject, 60)
        )?;
    }
    Ok(())
}

fn print_quarantine(list: &[TimelineMessage]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "nothing in quarantine")?;
        return Ok(());
    }
    for m in list {
        writeln!(
            out,
            "#{:<6} {}  {:<30}  {}",
            m.id,
            short_time(&m.at),
            clip(m.from.as_deref().unwrap_or("(no sender)"), 30),
            m.class_reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// "2026-11-23T09:12:01.123Z" -> "2026-11-23 09:12".
fn short_time(stamp: &str) -> String {
    stamp.get(..16).unwrap_or(stamp).replacen('T', " ", 1)
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
