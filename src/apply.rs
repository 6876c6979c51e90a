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
    decide, Actor, Audience, Effect, Effects, Event, Facts, IncidentNo, MailKind, MessageRow,
    NewEvent, NoteVisibility, Refusal,
};
use crate::outbox::queue::QueueError;
use crate::outbox::{enqueue, Pass, Queued};
use crate::store::incidents::{CheckBack, IncidentPatch};
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
    let facts = facts(conn, n)?.ok_or(ActError::NotFound(n))?;
    let (effects, applied) = act_on(conn, deps, &facts, event, pass, now)?;
    if pass == Pass::Real && matches!(event, Event::Staff { .. } | Event::StaffReply { .. }) {
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
    let applied = apply(conn, deps, &effects, pass, now)?;
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
    let unheard_note = match &latest_note {
        Some(note) if note.visibility == NoteVisibility::Customer => Some(note.clone()),
        Some(_) => store::incidents::latest_note(conn, n, Some(NoteVisibility::Customer))?,
        None => None,
    }
    .filter(|note| last_promise.is_none_or(|made| note.at > made));
    let (conversation, staff_conversation) = conversations(conn, n)?;
    Ok(Some(Facts {
        latest_note,
        unheard_note,
        open_promises: store::promises::open(conn, n)?,
        conversation,
        staff_conversation,
        incident,
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

pub fn apply(
    conn: &Connection,
    deps: &Deps,
    effects: &Effects,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<Applied, QueueError> {
    let n = effects.incident;
    let mut applied = Applied::default();
    // Field changes in a row become one UPDATE, written before anything that follows them.
    let mut patch = IncidentPatch::default();
    for effect in &effects.list {
        match effect {
            Effect::State(state) => patch.state = Some(*state),
            Effect::NextUpdate(at) => patch.next_update_at = Some(*at),
            Effect::Cadence(cadence) => patch.cadence = Some(*cadence),
            Effect::CheckBack {
                check_back_at,
                close_at,
            } => {
                patch.check_back = Some(CheckBack {
                    at: *check_back_at,
                    close_at: *close_at,
                })
            }
            Effect::UpdatesWithoutNews(count) => patch.updates_without_news = Some(*count),
            Effect::Escalated(at) => patch.escalated_at = Some(*at),
            Effect::PreviousIncident(previous) => patch.previous_incident = Some(*previous),
            Effect::StopUpdates(stopped) => patch.updates_stopped = Some(*stopped),
            Effect::Assign(member) => patch.assigned_to = Some(member.clone()),
            Effect::AtRiskWarned(at) => patch.at_risk_warned_for = Some(*at),
            Effect::CustomerWrote => patch.customer_wrote_at = Some(now),
            Effect::SenderTrust(trust) => patch.sender_trust = Some(*trust),
            Effect::Vouched(member) => patch.vouched_by = Some(member.clone()),
            Effect::Lang(lang) => patch.lang = Some(lang.clone()),
            Effect::Repeats {
                count,
                previous_opened_at,
            } => {
                patch.repeat_count = Some(*count);
                patch.previous_opened_at = Some(*previous_opened_at);
            }
            other => {
                if !patch.is_empty() {
                    store::incidents::update(conn, n, &std::mem::take(&mut patch), now)?;
                }
                match other {
                    Effect::Resolve {
                        resolution,
                        check_back_at,
                    } => store::incidents::set_resolved(conn, n, resolution, *check_back_at, now)?,
                    Effect::Note {
                        author,
                        text,
                        visibility,
                    } => store::incidents::add_note(conn, n, author, text, *visibility, now)?,
                    Effect::Tag(label) => store::incidents::add_tag(conn, n, label, now)?,
                    Effect::Recurring { incident, reason } => {
                        store::incidents::mark_recurring(conn, *incident, reason)?
                    }
                    Effect::CheckBackAnswer {
                        message,
                        fixed,
                        rating,
                    } => {
                        store::satisfaction::record_answer(conn, n, *message, *fixed, *rating, now)?
                    }
                    Effect::SettlePromises => store::promises::settle(conn, n, now)?,
                    Effect::HoldReply {
                        message,
                        member,
                        text,
                        greeting,
                        reason,
                    } => store::incidents::hold_reply(
                        conn,
                        n,
                        *message,
                        member,
                        (text, greeting.as_deref()),
                        reason,
                        now,
                    )?,
                    Effect::ReleaseReply(held) => {
                        store::incidents::release_reply(conn, *held, now)?
                    }
                    Effect::Event(event) if pass == Pass::Real => {
                        store::events::log(conn, event, now)?
                    }
                    Effect::Mail(mail) => {
                        let outcome = enqueue(conn, deps, n, mail, pass, now)?;
                        if mail.kind.audience() == Audience::Customer
                            && matches!(outcome, Queued::Waiting { .. })
                        {
                            patch.told_customer_at = Some(now);
                        }
                        applied.mails.push(AppliedMail {
                            incident: n,
                            kind: mail.kind,
                            to: mail.to.clone(),
                            outcome,
                        });
                    }
                    // A preview writes no event log.
                    Effect::Event(_) => {}
                    // The field changes, gathered into the patch above.
                    Effect::State(_)
                    | Effect::NextUpdate(_)
                    | Effect::Cadence(_)
                    | Effect::CheckBack { .. }
                    | Effect::UpdatesWithoutNews(_)
                    | Effect::Escalated(_)
                    | Effect::PreviousIncident(_)
                    | Effect::StopUpdates(_)
                    | Effect::Assign(_)
                    | Effect::AtRiskWarned(_)
                    | Effect::CustomerWrote
                    | Effect::SenderTrust(_)
                    | Effect::Vouched(_)
                    | Effect::Lang(_)
                    | Effect::Repeats { .. } => {}
                }
            }
        }
    }
    if !patch.is_empty() {
        store::incidents::update(conn, n, &patch, now)?;
    }
    Ok(applied)
}
