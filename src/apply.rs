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
use crate::incident::letters::Conversation;
use crate::incident::{
    decide, Audience, Effect, Effects, Event, Facts, IncidentNo, MailKind, Refusal,
};
use crate::outbox::queue::QueueError;
use crate::outbox::{enqueue, Queued, Render};
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("there is no incident {0}")]
    NotFound(IncidentNo),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Queue(#[from] QueueError),
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
    render: Render,
    now: DateTime<Utc>,
) -> Result<(Effects, Applied), ActError> {
    let facts = facts(conn, n)?.ok_or(ActError::NotFound(n))?;
    let effects = decide(&facts, event, &deps.config, now)?;
    let applied = apply(conn, deps, &effects, render, now)?;
    Ok((effects, applied))
}

/// What the store knows about an incident that a decision may need.
pub fn facts(conn: &Connection, n: IncidentNo) -> Result<Option<Facts>, StoreError> {
    let Some(incident) = store::incidents::incident(conn, n)? else {
        return Ok(None);
    };
    let last_promise = store::promises::last_made(conn, n)?;
    Ok(Some(Facts {
        latest_note: store::incidents::note_since(conn, n, None)?,
        unheard_note: store::incidents::note_since(conn, n, last_promise)?,
        open_promises: store::promises::open(conn, n)?,
        conversation: conversation(conn, n)?,
        incident,
    }))
}

/// The customer's conversation: only mail they sent or received threads their mail (an
/// escalation went to staff only and must never appear in the customer's References).
pub fn conversation(conn: &Connection, n: IncidentNo) -> Result<Conversation, StoreError> {
    let ids = store::messages::conversation(conn, n)?
        .into_iter()
        .filter(|(_, kind)| kind.is_none_or(|k| k.audience() == Audience::Customer))
        .map(|(id, _)| id)
        .collect();
    Ok(Conversation {
        ids,
        thread_root: store::messages::thread_root_of(conn, n)?,
    })
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
            .filter(|m| matches!(m.outcome, Queued::Queued { .. }))
            .count()
    }

    pub fn extend(&mut self, other: Applied) {
        self.mails.extend(other.mails);
    }
}

pub fn apply(
    conn: &Connection,
    deps: &Deps,
    effects: &Effects,
    render: Render,
    now: DateTime<Utc>,
) -> Result<Applied, QueueError> {
    let n = effects.incident;
    let mut applied = Applied::default();
    for effect in &effects.list {
        match effect {
            Effect::State(state) => store::incidents::set_state(conn, n, *state, now)?,
            Effect::NextUpdate(at) => store::incidents::set_next_update(conn, n, *at)?,
            Effect::Cadence(cadence) => store::incidents::set_cadence(conn, n, *cadence)?,
            Effect::Resolve {
                resolution,
                check_back_at,
            } => store::incidents::set_resolved(conn, n, resolution, *check_back_at, now)?,
            Effect::CheckBack {
                check_back_at,
                close_at,
            } => store::incidents::set_check_back(conn, n, *check_back_at, *close_at)?,
            Effect::Note { author, text } => {
                store::incidents::add_note(conn, n, author, text, now)?
            }
            Effect::Tag(label) => store::incidents::add_tag(conn, n, label, now)?,
            Effect::UpdatesWithoutNews(count) => {
                store::incidents::set_updates_without_news(conn, n, *count)?
            }
            Effect::Escalated(at) => store::incidents::set_escalated(conn, n, *at)?,
            Effect::Recurring { incident } => store::incidents::mark_recurring(conn, *incident)?,
            Effect::PreviousIncident(previous) => {
                store::incidents::set_previous_incident(conn, n, *previous)?
            }
            Effect::SettlePromises => store::promises::settle(conn, n, now)?,
            Effect::Event(event) => store::events::log(conn, event, now)?,
            Effect::Mail(mail) => {
                let outcome = enqueue(conn, deps, n, mail, render, now)?;
                applied.mails.push(AppliedMail {
                    incident: n,
                    kind: mail.kind,
                    to: mail.to.clone(),
                    outcome,
                });
            }
        }
    }
    Ok(applied)
}
