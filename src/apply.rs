//! Acting on an incident: gather the facts, [`decide`], and apply the effects in the
//! caller's transaction, in order.
//!
//! This is the one door between the decision core and the database. Intake, the scheduler and
//! the CLI all come through [`act`]; every mail goes through [`crate::outbox::enqueue`] here,
//! so the send caps, the Message-ID, the first render and the promise ledger apply to every
//! customer mail alike, the acknowledgement included.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::deps::Deps;
use crate::incident::arrival::Arrival;
use crate::incident::letters::Conversation;
use crate::incident::{
    decide, Actor, Audience, Effect, Effects, Event, Facts, Incident, IncidentNo, MailKind,
    MessageRow, NewEvent, NoteVisibility, Refusal,
};
use crate::outbox::queue::QueueError;
use crate::outbox::{enqueue, Pass, Queued};
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("there is no incident {0}")]
    NotFound(IncidentNo),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A panic in our own code, caught (see [`crate::contain`]).
    #[error("followupd failed on it (a bug; please report it): {0}")]
    Panic(String),
}

impl From<StoreError> for ActError {
    fn from(e: StoreError) -> Self {
        ActError::Queue(QueueError::Store(e))
    }
}

/// Gathers the facts about `n`, decides what `event` means, and applies it.
pub fn act(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    event: &Event,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<(Effects, Applied), ActError> {
    let mut facts = facts(conn, n)?.ok_or(ActError::NotFound(n))?;
    // Only a customer's reply can chase past the answer cap: the scheduler's and staff's
    // actions need no count.
    let windows = match event {
        Event::CustomerReply { .. } => deps.config.send_caps.answer_windows.as_slice(),
        _ => &[],
    };
    for window in windows {
        let since = crate::clock::before(now, window.within);
        let sent = store::outbox::customer_mail_count(
            conn,
            crate::incident::caps::CapScope::Answers(n),
            since,
        )?;
        facts.answers.push((*window, sent));
    }
    let (effects, applied) = act_on(conn, deps, &facts, event, pass, now)?;
    if pass == Pass::Real
        && matches!(
            event,
            Event::Staff { .. } | Event::StaffReply { .. } | Event::ToOthers { .. }
        )
    {
        // Staff have looked at it: the scheduler tries it again.
        store::incidents::clear_fault(conn, n)?;
    }
    Ok((effects, applied))
}

/// The one door, for facts already gathered (a complaint that just opened its incident knows
/// its conversation before any of it is stored): decides and applies.
pub fn act_on(
    conn: &Connection,
    deps: &Deps,
    facts: &Facts,
    event: &Event,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<(Effects, Applied), ActError> {
    let effects = decide(facts, event, &deps.policy(), now)?;
    let applied = apply(conn, deps, &facts.incident, &effects, pass, now)?;
    Ok((effects, applied))
}

/// Records what arrived without moving an incident along (an auto-reply, a bounce, a second
/// delivery, mail kept for a person) in the history, worded by the phrase book.
pub fn note(
    conn: &Connection,
    deps: &Deps,
    incident: Option<IncidentNo>,
    message: Option<MessageRow>,
    arrival: &Arrival<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (kind, detail) = arrival.noted(&deps.policy());
    store::events::log(
        conn,
        &NewEvent {
            incident,
            message,
            kind,
            actor: Actor::Daemon,
            detail,
        },
        now,
    )
}

/// [`act`], with a panic in our own code caught as [`ActError::Panic`].
pub fn act_contained(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    event: &Event,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<(Effects, Applied), ActError> {
    crate::contain::caught(|| act(conn, deps, n, event, pass, now))
        .unwrap_or_else(|panic| Err(ActError::Panic(panic)))
}

/// What the store knows about an incident that a decision may need.
pub fn facts(conn: &Connection, n: IncidentNo) -> Result<Option<Facts>, StoreError> {
    let Some(incident) = store::incidents::incident(conn, n)? else {
        return Ok(None);
    };
    let last_promise = store::promises::last_made(conn, n)?;
    let latest_note = store::incidents::latest_note(conn, n, None)?;
    // News the customer has not heard: the newest note for them, if it came after the last
    // promise made to them.
    let customer_note = match &latest_note {
        Some(note) if note.visibility == NoteVisibility::Customer => Some(note.clone()),
        Some(_) => store::incidents::latest_note(conn, n, Some(NoteVisibility::Customer))?,
        None => None,
    };
    let unheard_note = customer_note
        .clone()
        .filter(|note| last_promise.is_none_or(|made| note.at > made));
    let (conversation, staff_conversation) = conversations(conn, n)?;
    Ok(Some(Facts {
        latest_note,
        customer_note,
        unheard_note,
        open_promises: store::promises::open(conn, n)?,
        conversation,
        staff_conversation,
        incident,
        answers: Vec::new(),
    }))
}

/// The customer's conversation and the staff's thread. Only mail the customer sent or received
/// threads their mail (an escalation went to staff only and must never appear in the
/// customer's References); staff notifications thread among themselves.
pub fn conversations(
    conn: &Connection,
    n: IncidentNo,
) -> Result<(Conversation, Conversation), StoreError> {
    let mut customer = Vec::new();
    let mut staff = Vec::new();
    for (id, kind) in store::messages::conversation(conn, n)? {
        match kind.map(MailKind::audience) {
            Some(Audience::Staff) => staff.push(id),
            _ => customer.push(id),
        }
    }
    Ok((
        Conversation {
            ids: customer,
            thread_root: store::messages::thread_root_of(conn, n)?,
        },
        Conversation {
            ids: staff,
            thread_root: None,
        },
    ))
}

/// What applying did with the mails, for the caller's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub mails: Vec<AppliedMail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMail {
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub to: String,
    pub outcome: Queued,
}

impl Applied {
    /// How many mails were queued (not suppressed): the sender has work.
    pub fn queued(&self) -> usize {
        self.mails
            .iter()
            .filter(|m| matches!(m.outcome, Queued::Waiting { .. }))
            .count()
    }
}

/// Applies `effects` in order to the incident `before` (as the decision saw it). The incident
/// row is written as the effects leave it ([`Effect::evolve`], the same definition the
/// decision used): changes in a row become one UPDATE, written before anything that follows
/// them.
pub fn apply(
    conn: &Connection,
    deps: &Deps,
    before: &Incident,
    effects: &Effects,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<Applied, QueueError> {
    let n = effects.incident;
    let mut applied = Applied::default();
    let mut current = before.clone();
    let mut written = before.clone();
    // The text of each customer mail queued so far, for the team's copy (read back only when
    // this decision sends the team one: not for every scheduled update).
    let mut told: Vec<String> = Vec::new();
    let copies = pass == Pass::Real
        && effects
            .list
            .iter()
            .any(|e| matches!(e, Effect::Mail(m) if m.kind == MailKind::StaffActivity));
    for effect in &effects.list {
        effect.evolve(&mut current, now);
        // What a change to the incident's own fields left in `current` is written before any
        // effect that is not one.
        macro_rules! fields_first {
            () => {
                write_changes(conn, n, &mut written, &current, now)?
            };
        }
        match effect {
            // The incident's own fields: gathered in `current`.
            Effect::Stage(_)
            | Effect::NextUpdate(_)
            | Effect::Cadence(_)
            | Effect::Resolve { .. }
            | Effect::CheckBack { .. }
            | Effect::UpdatesWithoutNews(_)
            | Effect::Escalated(_)
            | Effect::PreviousIncident(_)
            | Effect::StopUpdates(_)
            | Effect::Assign(_)
            | Effect::Hold(_)
            | Effect::TeamAlarm(_)
            | Effect::AtRiskWarned(_)
            | Effect::CustomerWrote
            | Effect::SenderTrust(_)
            | Effect::Vouched(_)
            | Effect::Lang(_)
            | Effect::Repeats { .. } => {}
            Effect::ListInDigest {
                incident,
                recipients,
            } => {
                fields_first!();
                for to in recipients {
                    store::outbox::list_in_digest(conn, *incident, to, now)?;
                }
            }
            // This incident's mark is one of its fields; another's is written to it alone.
            Effect::Recurring { incident, reason } => {
                fields_first!();
                if *incident != n {
                    store::incidents::mark_recurring(conn, *incident, reason)?;
                }
            }
            Effect::Note {
                author,
                text,
                visibility,
                signed,
            } => {
                fields_first!();
                let note = store::incidents::NewNote {
                    author,
                    text,
                    visibility: *visibility,
                    signed,
                };
                store::incidents::add_note(conn, n, &note, now)?;
            }
            Effect::Tag(label) => {
                fields_first!();
                store::incidents::add_tag(conn, n, label, now)?;
            }
            Effect::CheckBackAnswer {
                message,
                fixed,
                rating,
                reading,
            } => {
                fields_first!();
                let answer = store::satisfaction::Answer {
                    message: *message,
                    fixed: *fixed,
                    rating: *rating,
                    reading: *reading,
                };
                store::satisfaction::record_answer(conn, n, &answer, now)?;
            }
            Effect::SettlePromises => {
                fields_first!();
                store::promises::settle(conn, n, now)?;
            }
            Effect::HoldReply {
                message,
                member,
                text,
                greeting,
                reason,
            } => {
                fields_first!();
                store::incidents::hold_reply(
                    conn,
                    n,
                    *message,
                    member,
                    (text, greeting.as_deref()),
                    reason,
                    now,
                )?;
            }
            Effect::ReleaseReply(held) => {
                fields_first!();
                store::incidents::release_reply(conn, *held, now)?;
            }
            Effect::Event(event) => {
                fields_first!();
                // A preview writes no event log.
                if pass == Pass::Real {
                    store::events::log(conn, event, now)?;
                }
            }
            Effect::Mail(mail) => {
                fields_first!();
                // The team's copy of an action carries the exact text the customer got, as
                // composed just now (known only once queued, so filled in here).
                let copied;
                let mail = if mail.kind == MailKind::StaffActivity && !told.is_empty() {
                    let mut with = mail.as_ref().clone();
                    with.data.staff.copy = told.join("\n\n");
                    copied = with;
                    &copied
                } else {
                    mail.as_ref()
                };
                let outcome = enqueue(conn, deps, n, mail, pass, now)?;
                if mail.kind.audience() == Audience::Customer {
                    if let Queued::Waiting { message_id } = &outcome {
                        // Whether a mail went is an outcome of queueing, not of the decision.
                        current.told_customer_at = Some(now);
                        if copies {
                            told.push(customer_text(conn, deps, message_id)?);
                        }
                    }
                }
                applied.mails.push(AppliedMail {
                    incident: n,
                    kind: mail.kind,
                    to: mail.to.clone(),
                    outcome,
                });
            }
        }
    }
    write_changes(conn, n, &mut written, &current, now)?;
    Ok(applied)
}

/// The text part of a customer mail as queued, as the customer reads it; a sentence saying so
/// when it is not composed yet (a template error: it is retried, and sent as it then renders).
fn customer_text(conn: &Connection, deps: &Deps, message_id: &str) -> Result<String, StoreError> {
    let raw = store::outbox::raw_by_message_id(conn, message_id)?;
    let text = raw.as_deref().and_then(|raw| {
        mail_parser::MessageParser::default()
            .parse(raw)
            .and_then(|m| m.body_text(0).map(|t| t.trim_end().to_string()))
    });
    Ok(text.unwrap_or_else(|| {
        deps.policy()
            .say(&crate::said!("team.copy_not_composed", id = message_id))
    }))
}

/// Writes the incident's fields that changed since `written`, and remembers them written.
fn write_changes(
    conn: &Connection,
    n: IncidentNo,
    written: &mut Incident,
    current: &Incident,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if current != written {
        store::incidents::write_changes(conn, n, written, current, now)?;
        *written = current.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! One source of truth: the row the store keeps is the incident the decision's effects
    //! made, field for field, through a whole lifecycle.

    use super::*;
    use crate::config::Config;
    use crate::incident::{Resolution, StaffAction};
    use crate::store::incidents::{create_incident, NewIncident};
    use std::time::Duration;

    #[test]
    fn the_stored_incident_is_what_the_decisions_effects_make_of_it() {
        let deps = Deps::for_tests(Config::example().expect("example config"));
        let conn = store::open_in_memory().expect("db");
        let t0 = crate::clock::parse_stamp("2026-11-23T09:00:00Z").expect("time");
        let n = create_incident(
            &conn,
            &NewIncident {
                subject: "Checkout fails",
                summary: "",
                customer_address: "ann@example.test",
                customer_name: Some("Ann"),
                reply_address: "ann@example.test",
                reply_name: None,
                sender_trust: crate::mail::Trust::Verified,
                cadence: Duration::from_secs(4 * 3600),
                next_update_at: t0,
            },
            |n| format!("FU-{n}-x"),
            t0,
        )
        .expect("incident");
        let staff = |action| Event::Staff {
            by: "alice".into(),
            action,
        };
        let steps = [
            staff(StaffAction::Note("We found the cause.".into())),
            staff(StaffAction::Cadence(Duration::from_secs(3600))),
            staff(StaffAction::Tag {
                label: "payments".into(),
                tagged_in_window: Vec::new(),
            }),
            staff(StaffAction::Wait("the order number".into())),
            staff(StaffAction::Resume),
            Event::ProgressDue,
            staff(StaffAction::Resolve(Resolution {
                root_cause: "An expired certificate.".into(),
                prevention: "Renewal is automatic now.".into(),
                compensation: Some("A refund of the fee.".into()),
                question: None,
            })),
            staff(StaffAction::Reopen),
            staff(StaffAction::Close),
        ];
        for (i, event) in steps.iter().enumerate() {
            let now = t0 + chrono::Duration::hours(i64::try_from(i).expect("small") + 1);
            let before = facts(&conn, n).expect("facts").expect("incident");
            let (effects, applied) =
                act_on(&conn, &deps, &before, event, Pass::Real, now).expect("acted");
            let mut expected = before.incident.clone();
            for effect in &effects.list {
                effect.evolve(&mut expected, now);
            }
            if applied.queued() > 0
                && effects
                    .mails()
                    .any(|m| m.kind.audience() == Audience::Customer)
            {
                expected.told_customer_at = Some(now);
            }
            let stored = store::incidents::incident(&conn, n)
                .expect("read")
                .expect("row");
            // `updated_at` is the store's own bookkeeping.
            expected.updated_at = stored.updated_at;
            assert_eq!(stored, expected, "after step {i}: {event:?}");
        }
    }
}
