//! What the CLI prints: tables for people, JSON for programs.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

use crate::clock::human_duration;
use crate::config::Config;
use crate::incident::{IncidentNo, MessageRow};
use crate::scheduler::Upcoming;
use crate::store::messages::Direction;
use crate::store::{self, IncidentListing, TimelineMessage, Undeliverable};

pub fn json<T: serde::Serialize>(value: &T) -> Result<()> {
    // serde_json escapes every control character: JSON is safe as it is.
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Standard output with everything mail could smuggle into a terminal made visible: control
/// characters (escape sequences first of all) and bidirectional overrides. Line breaks and
/// tabs stay.
pub struct SafeOut<W: Write>(W);

pub fn out() -> SafeOut<std::io::StdoutLock<'static>> {
    SafeOut(std::io::stdout().lock())
}

/// `text` with control characters shown as `^[` style escapes and bidi overrides removed.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !bad(c) => out.push(c),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    std::borrow::Cow::Owned(out)
}

impl<W: Write> Write for SafeOut<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Our own output arrives as whole str pieces (write_fmt); anything else is read lossily.
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(neutralised(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// "2026-11-23 09:12".
/// The team's time zone (`[cadence] timezone`), set once as the CLI starts: every time the
/// CLI prints is in it, with its label, as the mails are.
static TEAM_ZONE: std::sync::OnceLock<chrono_tz::Tz> = std::sync::OnceLock::new();

pub fn set_team_zone(tz: chrono_tz::Tz) {
    let _ = TEAM_ZONE.set(tz);
}

/// "2026-11-23 14:00 CET".
pub fn team_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

fn short_time(t: DateTime<Utc>) -> String {
    team_time(t, TEAM_ZONE.get().copied().unwrap_or(chrono_tz::Tz::UTC))
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

pub fn incidents(list: &[IncidentListing]) -> Result<()> {
    let mut out = out();
    if list.is_empty() {
        writeln!(out, "no incidents")?;
        return Ok(());
    }
    let width = list
        .iter()
        .map(|i| i.incident.number.to_string().len())
        .max()
        .unwrap_or(1)
        .max(1);
    writeln!(
        out,
        "{:>width$}  {:<8}  {:<16}  {:<16}  {:<24}  {:<16}  {:<14}  {:>4}  SUBJECT",
        "#", "STATE", "OPENED", "DUE", "CUSTOMER", "ASSIGNED", "TAGS", "MSGS"
    )?;
    for l in list {
        let i = &l.incident;
        let assigned = i
            .assigned_to
            .as_deref()
            .map(|a| a.split('@').next().unwrap_or(a))
            .unwrap_or("-");
        writeln!(
            out,
            "{:>width$}  {:<8}  {:<16}  {:<16}  {:<24}  {:<16}  {:<14}  {:>4}  {}",
            i.number,
            i.state(),
            short_time(i.opened_at),
            i.next_update_at()
                .map(short_time)
                .unwrap_or_else(|| "-".into()),
            clip(&i.customer_address, 24),
            clip(assigned, 16),
            clip(
                &if i.tags.is_empty() {
                    "-".into()
                } else {
                    i.tags.join(",")
                },
                14
            ),
            l.messages,
            clip(&i.subject, 60)
        )?;
    }
    Ok(())
}

pub fn recurring(list: &[IncidentListing]) -> Result<()> {
    let mut out = out();
    if list.is_empty() {
        writeln!(out, "no recurring incidents")?;
        return Ok(());
    }
    let mut customers: Vec<&str> = list
        .iter()
        .map(|l| l.incident.customer_address.as_str())
        .collect();
    customers.sort_unstable();
    customers.dedup();
    for customer in customers {
        writeln!(out, "{customer}")?;
        for i in list
            .iter()
            .map(|l| &l.incident)
            .filter(|i| i.customer_address == customer)
        {
            writeln!(
                out,
                "  #{:<6} {}  {:<8}  {}{}",
                i.number,
                short_time(i.opened_at),
                i.state(),
                clip(&i.subject, 50),
                if i.tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", i.tags.join(", "))
                }
            )?;
            if let Some(why) = &i.recurring_reason {
                writeln!(out, "          why: {}", neutralised(why))?;
            }
        }
    }
    Ok(())
}

pub fn undeliverable(list: &[Undeliverable]) -> Result<()> {
    let mut out = out();
    if list.is_empty() {
        writeln!(out, "no address is marked undeliverable")?;
        return Ok(());
    }
    for u in list {
        writeln!(
            out,
            "{:<40}  since {}  incident {}  {}",
            u.address,
            short_time(u.since),
            u.incident.map_or("-".into(), |n| format!("#{n}")),
            u.reason
        )?;
    }
    Ok(())
}

pub fn quarantine(list: &[TimelineMessage]) -> Result<()> {
    let mut out = out();
    if list.is_empty() {
        writeln!(out, "nothing in quarantine")?;
        return Ok(());
    }
    for m in list {
        writeln!(
            out,
            "#{:<6} {}  {:<30}  {}",
            m.id,
            short_time(m.at),
            clip(m.from.as_deref().unwrap_or("(no sender)"), 30),
            m.class_reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// The class a person reads: what a message is, or for our own mail, its kind.
fn class_of(m: &TimelineMessage) -> String {
    match m.kind {
        Some(kind) => kind.to_string(),
        None => m.class.to_string(),
    }
}

pub fn messages(list: &[TimelineMessage]) -> Result<()> {
    let mut out = out();
    if list.is_empty() {
        writeln!(out, "no messages")?;
        return Ok(());
    }
    for m in list {
        let who = match m.direction {
            Direction::In => m.from.clone().unwrap_or_else(|| "(no sender)".into()),
            Direction::Out => format!("-> {}", m.to.clone().unwrap_or_default()),
        };
        writeln!(
            out,
            "#{:<6} {}  {:<3}  {:<15}  {:>9}  {:<30}  {}",
            m.id,
            short_time(m.at),
            direction(m.direction),
            class_of(m),
            m.incident.map_or("-".into(), |n| format!("incident {n}")),
            clip(&who, 30),
            clip(m.subject.as_deref().unwrap_or(""), 50)
        )?;
        message_extras(&mut out, m)?;
    }
    Ok(())
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

/// The lines under a message: why it got its class, size limit, attachments.
fn message_extras(out: &mut impl Write, m: &TimelineMessage) -> Result<()> {
    if let Some(reason) = m
        .class_reason
        .as_deref()
        .filter(|_| m.direction == Direction::In)
    {
        writeln!(out, "         {reason}")?;
    }
    if let Some(at) = m.raw_dropped_at {
        writeln!(
            out,
            "         raw text dropped by retention on {} ([retention] raw_after); headers and events kept",
            crate::clock::stamp(at)
        )?;
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

pub fn satisfaction(weeks: &[crate::store::satisfaction::Week]) -> Result<()> {
    use crate::incident::replies::Reading;
    let mut out = out();
    if weeks.is_empty() {
        writeln!(out, "no check-back answers or settled promises yet")?;
        return Ok(());
    }
    // One column per reading: what the answer was taken to mean is what was done with it.
    let columns = [
        (Reading::Works, "works"),
        (Reading::WorksUnhappy, "unhappy"),
        (Reading::WorksUnproven, "unproven"),
        (Reading::NotFixed, "not fixed"),
        (Reading::Unclear, "unclear"),
        (Reading::Rated, "rated"),
        (Reading::Thanks, "thanks"),
        (Reading::Stop, "stop"),
    ];
    write!(out, "{:<12}", "week of")?;
    for (_, heading) in &columns {
        write!(out, " {heading:>9}")?;
    }
    writeln!(
        out,
        "  {:>7}  {:>7}  {:>5}  {:>8}",
        "ratings", "average", "kept", "breached"
    )?;
    for w in weeks {
        write!(out, "{:<12}", w.week_of)?;
        for (reading, _) in &columns {
            write!(out, " {:>9}", w.read_as(*reading))?;
        }
        writeln!(
            out,
            "  {:>7}  {:>7}  {:>5}  {:>8}",
            w.ratings,
            w.average_rating
                .map(|a| format!("{a:.1}"))
                .unwrap_or_else(|| "-".into()),
            w.promises_kept,
            w.promises_breached
        )?;
    }
    Ok(())
}

pub fn upcoming(list: &[Upcoming], within: std::time::Duration) -> Result<()> {
    let mut out = out();
    if list.is_empty() {
        writeln!(
            out,
            "nothing due within {}",
            crate::clock::human_duration(within)
        )?;
        return Ok(());
    }
    for u in list {
        writeln!(
            out,
            "{}  incident {:<6}  {:<15}  {:<30}  {}",
            short_time(u.at),
            u.incident,
            u.what,
            clip(u.recipient.as_deref().unwrap_or("-"), 30),
            u.detail
        )?;
    }
    Ok(())
}

pub fn incident(
    config: &Config,
    number: IncidentNo,
    as_json: bool,
    full: bool,
) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let Some(incident) = store::incidents::incident(&conn, number)? else {
        bail!("there is no incident {number}");
    };
    let messages = store::messages::incident_messages(&conn, number)?;
    let outbox = store::outbox::incident_outbox(&conn, number)?;
    let suppressed = store::outbox::incident_suppressed(&conn, number)?;
    let events = store::events::incident_events(&conn, number)?;
    let notes = store::incidents::notes(&conn, number)?;
    let fault = store::incidents::fault(&conn, number)?;
    let texts = if full {
        let mut texts = Vec::with_capacity(messages.len());
        for m in &messages {
            if m.raw_dropped_at.is_some() {
                texts.push("(raw text dropped by retention)".to_string());
            } else {
                texts.push(crate::mail::readable(&store::messages::message_raw(&conn, m.id)?).text);
            }
        }
        texts
    } else {
        Vec::new()
    };
    if as_json {
        let notes: Vec<serde_json::Value> = notes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "at": crate::clock::stamp(n.at), "author": n.author,
                    "text": n.text, "visibility": n.visibility,
                })
            })
            .collect();
        let mut shown = serde_json::json!({
            "incident": incident,
            "messages": messages,
            "outbox": outbox,
            "suppressed": suppressed,
            "events": events,
            "notes": notes,
            "fault": fault,
        });
        if full {
            if let Some(list) = shown["messages"].as_array_mut() {
                for (m, text) in list.iter_mut().zip(&texts) {
                    m["text"] = serde_json::Value::String(text.clone());
                }
            }
        }
        json(&shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = out();
    writeln!(
        out,
        "Incident {}  [{}]  {}",
        incident.number,
        incident.token,
        incident.state()
    )?;
    writeln!(out, "  Subject      {}", incident.subject)?;
    writeln!(out, "  Customer     {}", incident.customer_display())?;
    writeln!(out, "  Opened       {}", short_time(incident.opened_at))?;
    if let Some(next) = incident.next_update_at() {
        writeln!(out, "  Next update  {}", short_time(next))?;
    }
    writeln!(out, "  Cadence      {}", human_duration(incident.cadence))?;
    if incident.updates_stopped {
        writeln!(out, "  Updates      stopped at the customer's request")?;
    }
    if let Some(fault) = &fault {
        writeln!(
            out,
            "  STOPPED      by a bug, no updates until staff act on it: {fault}"
        )?;
    }
    if let Some(member) = &incident.assigned_to {
        writeln!(out, "  Assigned to  {member}")?;
    }
    if let Some(hold) = &incident.on_hold {
        writeln!(
            out,
            "  On hold      until {}: {}",
            short_time(hold.until),
            hold.why.replace('\n', " / ")
        )?;
    }
    if !incident.tags.is_empty() {
        writeln!(out, "  Tags         {}", incident.tags.join(", "))?;
    }
    if !incident.summary.is_empty() {
        writeln!(out, "  Summary      {}", incident.summary)?;
    }
    // Concise by default: the latest of each list, with how many more `--full` shows.
    let recent = |len: usize, keep: usize| if full { 0 } else { len.saturating_sub(keep) };
    let earlier = |out: &mut dyn std::io::Write, skipped: usize| -> std::io::Result<()> {
        if skipped > 0 {
            writeln!(out, "  … {skipped} earlier (--full shows all)")?;
        }
        Ok(())
    };
    writeln!(out, "\nMessages")?;
    let skip = recent(messages.len(), 8);
    earlier(&mut out, skip)?;
    for (i, m) in messages.iter().enumerate().skip(skip) {
        let who = match m.direction {
            Direction::In => m.from.clone().unwrap_or_default(),
            Direction::Out => format!("-> {}", m.to.clone().unwrap_or_default()),
        };
        writeln!(
            out,
            "  {}  {:<3}  {:<15}  {:<30}  {}",
            short_time(m.at),
            direction(m.direction),
            class_of(m),
            clip(&who, 30),
            clip(m.subject.as_deref().unwrap_or(""), 60)
        )?;
        message_extras(&mut out, m)?;
        if let Some(text) = texts.get(i) {
            writeln!(out)?;
            for line in text.lines() {
                writeln!(out, "      | {line}")?;
            }
            writeln!(out)?;
        }
    }
    if !notes.is_empty() {
        writeln!(out, "\nNotes")?;
        let skip = recent(notes.len(), 5);
        earlier(&mut out, skip)?;
        for n in notes.iter().skip(skip) {
            writeln!(
                out,
                "  {}  {:<14}  {:<10}  {}",
                short_time(n.at),
                n.visibility.as_str(),
                n.author,
                n.text.replace('\n', " / ")
            )?;
        }
    }
    writeln!(out, "\nOutbox")?;
    // Without --full: what is still to happen, and a count of what went.
    let sent = outbox.iter().filter(|o| o.sent_at.is_some()).count();
    if !full && sent > 0 {
        writeln!(out, "  {sent} sent (--full lists them)")?;
    }
    for o in outbox.iter().filter(|o| full || o.sent_at.is_none()) {
        let when = o.sent_at.map_or_else(
            || format!("next try {}", short_time(o.next_attempt_at)),
            |s| format!("sent {}", short_time(s)),
        );
        writeln!(
            out,
            "  {:<15}  {:<6}  attempts {:<2}  {}  {}",
            o.kind.as_str(),
            o.state.as_str(),
            o.attempts,
            when,
            o.last_error.as_deref().unwrap_or("")
        )?;
    }
    for s in &suppressed {
        writeln!(
            out,
            "  {:<15}  suppressed  {}  {}",
            s.kind.as_str(),
            short_time(s.at),
            s.reason
        )?;
    }
    writeln!(out, "\nEvents")?;
    let skip = recent(events.len(), 12);
    earlier(&mut out, skip)?;
    for e in events.iter().skip(skip) {
        writeln!(
            out,
            "  {}  {:<20}  {:<10}  {}",
            short_time(e.at),
            e.kind.as_str(),
            e.actor.name(),
            e.detail
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `followupd message show ID`: one message as a person reads it (or its exact bytes).
pub fn message(config: &Config, id: MessageRow, raw: bool, as_json: bool) -> Result<ExitCode> {
    let conn = store::open(&config.database)?;
    let Some(m) = store::messages::message(&conn, id)? else {
        bail!("there is no message {id}");
    };
    if let Some(at) = m.raw_dropped_at {
        bail!(
            "message {id}: its raw text was dropped by retention on {} ([retention] raw_after); \
             `followupd incident show` still has its headers and events",
            crate::clock::stamp(at)
        );
    }
    let bytes = store::messages::message_raw(&conn, id)?;
    if raw {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            // A terminal would run the escape sequences a mail may carry.
            write!(out(), "{}", String::from_utf8_lossy(&bytes))?;
        } else {
            std::io::stdout().lock().write_all(&bytes)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let readable = crate::mail::readable(&bytes);
    if as_json {
        json(
            &serde_json::json!({ "message": m, "headers": readable.headers, "text": readable.text }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = out();
    writeln!(
        out,
        "Message {}  {}  {}  {}",
        m.id,
        direction(m.direction),
        class_of(&m),
        m.incident
            .map_or("no incident".into(), |n| format!("incident {n}"))
    )?;
    for (name, value) in &readable.headers {
        writeln!(out, "{name}: {value}")?;
    }
    message_extras(&mut out, &m)?;
    if let Some(trust) = m.trust {
        let why = m.trust_reason.as_deref().unwrap_or("");
        writeln!(
            out,
            "Sender check: {trust}{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        )?;
    }
    writeln!(out, "\n{}", readable.text.trim_end())?;
    Ok(ExitCode::SUCCESS)
}
