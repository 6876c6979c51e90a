//! The support team's commands: acting on an incident, what will be sent, a template as it
//! renders, the messages on record.

use super::*;
use crate::said;
use crate::templates::Said;
use std::io::Write as _;

/// Staff actions: one transaction each, with the mail they cause; the running daemon sends it.
pub(super) fn incident_action(
    config: Config,
    action: IncidentAction,
    clock: Clock,
) -> Result<ExitCode> {
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
        IncidentAction::Note {
            number,
            text,
            internal,
            by,
        } => (
            number,
            staff(by),
            if internal {
                StaffAction::InternalNote(text)
            } else {
                StaffAction::Note(text)
            },
        ),
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
        IncidentAction::Hold { number, words, by } => {
            (number, staff(by), StaffAction::Hold(words.join(" ")))
        }
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
    let done = said(&action, &effects, &applied, &deps);
    writeln!(
        std::io::stdout(),
        "{}",
        deps.templates
            .phrases()
            .say(None, &said!("cli.done.line", number = number, done = done))
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `followupd quarantine release ID`: the held message goes through intake again, vouched
/// for by `by`, in one transaction with the mail it causes.
pub(super) fn release(
    config: Config,
    id: MessageRow,
    by: String,
    clock: Clock,
) -> Result<ExitCode> {
    let deps = Deps::load(config, clock)?;
    let mut conn = store::open(&deps.config.database)?;
    let tx = conn.transaction()?;
    let (outcome, queued) = crate::intake::release(&tx, &deps, id, &by, deps.now())?;
    tx.commit()?;
    let said = match outcome {
        crate::intake::Outcome::Opened { incident } => {
            said!(
                "cli.released.opened",
                row = id,
                number = incident,
                queued = queued
            )
        }
        crate::intake::Outcome::Joined { incident } => {
            said!(
                "cli.released.joined",
                row = id,
                number = incident,
                queued = queued
            )
        }
        crate::intake::Outcome::Ignored { class } => {
            said!("cli.released.other", row = id, what = class.as_str())
        }
        _ => said!("cli.released.recorded", row = id),
    };
    writeln!(
        std::io::stdout(),
        "{}",
        deps.templates.phrases().say(None, &said)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What a staff action did, in one line (the `[cli]` phrases).
pub(super) fn said(
    action: &StaffAction,
    effects: &Effects,
    applied: &Applied,
    deps: &Deps,
) -> String {
    let tz = deps.config.cadence.timezone;
    let words = deps.templates.phrases();
    let say = |said: Said| words.say(None, &said);
    let mail = |what: Said| {
        let what = say(what);
        say(match applied.mails.first().map(|m| &m.outcome) {
            Some(Queued::Waiting { .. }) => said!("cli.mail.queued", what = what),
            Some(Queued::Suppressed(reason)) => {
                said!("cli.mail.suppressed", what = what, reason = reason)
            }
            Some(Queued::Failed(reason)) => said!("cli.mail.failed", what = what, reason = reason),
            None => said!("cli.mail.none", what = what),
        })
    };
    say(match action {
        StaffAction::Note(_) => said!("cli.done.note", mail = mail(said!("cli.what.progress"))),
        StaffAction::InternalNote(_) => said!("cli.done.internal_note"),
        StaffAction::Hold(_) => said!(
            "cli.done.hold",
            mail = mail(said!("cli.what.hold")),
            until = effects
                .next_update()
                .flatten()
                .map(|t| show::team_time(t, tz))
                .unwrap_or_default()
        ),
        StaffAction::Cadence(_) => {
            let set = effects.list.iter().find_map(|e| match e {
                Effect::Cadence(d) => Some(*d),
                _ => None,
            });
            said!(
                "cli.done.cadence",
                every = set.map(|d| words.duration(None, d)).unwrap_or_default()
            )
        }
        StaffAction::Wait(_) => said!("cli.done.wait", mail = mail(said!("cli.what.waiting"))),
        StaffAction::Assign(named) => said!(
            "cli.done.assign",
            member = effects
                .list
                .iter()
                .find_map(|e| match e {
                    Effect::Assign(m) => Some(m.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| named.clone())
        ),
        StaffAction::Resume => said!(
            "cli.done.resume",
            mail = mail(said!("cli.what.resumed")),
            next = effects
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
                said!("cli.done.lang", lang = lang)
            } else {
                said!(
                    "cli.done.lang_without_set",
                    lang = lang,
                    dir = deps.templates.dir().display()
                )
            }
        }
        StaffAction::Resolve(_) => {
            said!(
                "cli.done.resolve",
                mail = mail(said!("cli.what.resolution"))
            )
        }
        StaffAction::Close => {
            // An open incident's dropped promise is said where the member sees it.
            let dropped = effects.list.iter().find_map(|e| match e {
                Effect::Event(event)
                    if event.kind == crate::incident::EventKind::UpdatesStopped =>
                {
                    Some(event.detail.clone())
                }
                _ => None,
            });
            match dropped {
                Some(detail) => said!("cli.done.close_open", detail = detail),
                None => said!("cli.done.close"),
            }
        }
        StaffAction::Reopen => said!("cli.done.reopen", mail = mail(said!("cli.what.reopened"))),
        StaffAction::Tag { label, .. } => {
            let label = label.trim().to_lowercase();
            if effects.is_empty() {
                said!("cli.done.tagged_already", label = label)
            } else {
                said!("cli.done.tagged", label = label)
            }
        }
    })
}

pub(super) fn upcoming(
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
pub(super) fn render_template(
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
    let mut data = letters::mail_data(
        &facts.incident,
        &deps.policy(),
        facts.incident.next_update_at(),
    );
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

pub(super) fn list_messages(
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
                ..MessageFilter::default()
            },
            (None, Some(kind)) => MessageFilter {
                kind: Some(kind),
                ..MessageFilter::default()
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

/// `followupd template list`: every kind of mail, the language sets, and the canned replies
/// with the languages that have their own.
pub(super) fn template_list(config: &Config) -> Result<ExitCode> {
    let templates = crate::deps::load_templates(config)?;
    let dir = templates.dir().display().to_string();
    writeln!(
        std::io::stdout(),
        "mail ({dir}/NAME.subject.hbs, .text.hbs, .html.hbs):"
    )?;
    for name in MailKind::template_names() {
        writeln!(std::io::stdout(), "  {name}")?;
    }
    let langs = templates.languages();
    if !langs.is_empty() {
        writeln!(std::io::stdout(), "language sets: {}", langs.join(", "))?;
    }
    writeln!(
        std::io::stdout(),
        "canned replies ({dir}/staff/replies/NAME.hbs; use with #reply NAME):"
    )?;
    if templates.reply_names().is_empty() {
        writeln!(std::io::stdout(), "  none yet")?;
    }
    for name in templates.reply_names() {
        let own: Vec<&str> = langs
            .iter()
            .filter(|l| {
                templates
                    .dir()
                    .join(l)
                    .join("staff/replies")
                    .join(format!("{name}.hbs"))
                    .is_file()
            })
            .map(String::as_str)
            .collect();
        if own.is_empty() {
            writeln!(std::io::stdout(), "  {name}")?;
        } else {
            writeln!(std::io::stdout(), "  {name} (also in {})", own.join(", "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
