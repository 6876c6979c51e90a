//! What a decision returns: plain data, applied in order in one transaction by
//! [`crate::apply`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    Actor, EventKind, Incident, IncidentNo, MailKind, MessageRow, Resolution, Resolved, Stage,
    State,
};
use crate::templates::MailData;

/// Everything one decision changes about one incident (and, for a recurring tag, the others it
/// marks), in the order it must be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    pub incident: IncidentNo,
    pub list: Vec<Effect>,
}

impl Effects {
    pub fn new(incident: IncidentNo) -> Effects {
        Effects {
            incident,
            list: Vec::new(),
        }
    }

    pub fn push(&mut self, effect: Effect) {
        self.list.push(effect);
    }

    /// Logs an event on this incident.
    pub fn log(&mut self, kind: EventKind, actor: &Actor, detail: impl Into<String>) {
        self.list.push(Effect::Event(NewEvent {
            incident: Some(self.incident),
            message: None,
            kind,
            actor: actor.clone(),
            detail: detail.into(),
        }));
    }

    /// The mails this decision queues.
    pub fn mails(&self) -> impl Iterator<Item = &Mail> {
        self.list.iter().filter_map(|e| match e {
            Effect::Mail(m) => Some(m.as_ref()),
            _ => None,
        })
    }

    /// Whether an event of this kind is logged.
    pub fn logs(&self, kind: EventKind) -> bool {
        self.list
            .iter()
            .any(|e| matches!(e, Effect::Event(ev) if ev.kind == kind))
    }

    /// The state the incident ends in, if it changes.
    pub fn new_state(&self) -> Option<State> {
        self.list.iter().rev().find_map(|e| match e {
            Effect::Stage(s) => Some(s.state()),
            Effect::Resolve { .. } => Some(State::Resolved),
            _ => None,
        })
    }

    /// The next promised update, if this decision sets or clears it.
    pub fn next_update(&self) -> Option<Option<DateTime<Utc>>> {
        self.list.iter().rev().find_map(|e| match e {
            Effect::NextUpdate(t) => Some(*t),
            _ => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// One change. Incident fields are set on [`Effects::incident`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The incident moves to this stage, with the stage's own fields.
    Stage(Stage),
    /// When the customer was promised the next update; None when nothing more is promised.
    NextUpdate(Option<DateTime<Utc>>),
    Cadence(Duration),
    /// Resolved: the resolution on record, updates stop, the check-back is scheduled.
    Resolve {
        resolution: Resolution,
        check_back_at: DateTime<Utc>,
    },
    /// Check-back and close times of a resolved incident.
    CheckBack {
        check_back_at: Option<DateTime<Utc>>,
        close_at: Option<DateTime<Utc>>,
    },
    /// A staff note, recorded with its author.
    Note {
        author: String,
        text: String,
        visibility: super::NoteVisibility,
        /// The name it is signed with for the customer; "" for the team.
        signed: String,
    },
    /// The customer asked for no more automatic updates (false: they resume).
    StopUpdates(bool),
    /// The incident is this staff member's.
    Assign(String),
    /// On hold until then, for this reason; None: the hold ends.
    Hold(Option<super::Hold>),
    /// The team is to hear of an escalation at this time; None: not (any more).
    TeamAlarm(Option<DateTime<Utc>>),
    /// Staff were warned that the update promised for this time has no news yet.
    AtRiskWarned(DateTime<Utc>),
    /// List `incident` (this one or an earlier one of the same burst) in each recipient's
    /// next digest: a burst is read there as a whole, and a reply with `#all` answers it.
    ListInDigest {
        incident: IncidentNo,
        recipients: Vec<String>,
    },
    /// The customer wrote to us now.
    CustomerWrote,
    /// The receiving server proved the customer (raised, never lowered).
    SenderTrust(crate::mail::Trust),
    /// A staff member vouches for the customer by acting on the incident.
    Vouched(String),
    Tag(String),
    UpdatesWithoutNews(i64),
    /// Escalated now; no second escalation until a note clears it (None).
    Escalated(Option<DateTime<Utc>>),
    /// Marks an incident (this one or another) recurring, and why (`report recurring`).
    Recurring {
        incident: IncidentNo,
        reason: String,
    },
    /// This incident repeats an earlier one of the customer's: which time it is, and when the
    /// earlier one opened (`previous_incident` is set beside it).
    Repeats {
        count: i64,
        previous_opened_at: DateTime<Utc>,
    },
    /// The language the customer is answered in from now on.
    Lang(String),
    /// The customer answered the check-back: fixed or not (None: they did not say), a
    /// rating from 1 to 5 if they gave one, and how the answer was read.
    CheckBackAnswer {
        message: MessageRow,
        fixed: Option<bool>,
        rating: Option<u8>,
        reading: crate::incident::replies::Reading,
    },
    PreviousIncident(IncidentNo),
    /// A staff member's reply is held back from the customer until they `#send` it: their
    /// words as read, and why.
    HoldReply {
        message: MessageRow,
        member: String,
        text: String,
        greeting: Option<String>,
        reason: String,
    },
    /// A held staff reply was sent after all.
    ReleaseReply(i64),
    /// The open promises are settled as an update goes out now: kept if their time has not
    /// passed, breached if it has.
    SettlePromises,
    Event(NewEvent),
    Mail(Box<Mail>),
}

impl Effect {
    /// What this effect does to the incident: the one definition of it. The decision keeps its
    /// view of the incident with it, and [`crate::apply`] writes the incident it gives, so the
    /// two cannot disagree. `now` is when the effect is applied.
    pub fn evolve(&self, incident: &mut Incident, now: DateTime<Utc>) {
        match self {
            Effect::Stage(stage) => {
                // A hold is a pause of an open incident: any other stage ends it.
                if !matches!(stage, Stage::Open { .. }) {
                    incident.on_hold = None;
                    incident.team_alarm_at = None;
                }
                incident.stage = stage.clone();
            }
            Effect::NextUpdate(at) => {
                // Only an open incident promises updates.
                if let Stage::Open { next_update_at } = &mut incident.stage {
                    *next_update_at = *at;
                }
            }
            Effect::Cadence(cadence) => incident.cadence = *cadence,
            Effect::Resolve {
                resolution,
                check_back_at,
            } => {
                incident.stage = Stage::Resolved {
                    check_back_at: Some(*check_back_at),
                    close_at: None,
                };
                incident.resolution = Some(Resolved {
                    at: now,
                    resolution: resolution.clone(),
                });
            }
            Effect::CheckBack {
                check_back_at: at,
                close_at: close,
            } => {
                if let Stage::Resolved {
                    check_back_at,
                    close_at,
                } = &mut incident.stage
                {
                    *check_back_at = *at;
                    *close_at = *close;
                }
            }
            Effect::Note { .. } => incident.last_note_at = Some(now),
            Effect::StopUpdates(stopped) => incident.updates_stopped = *stopped,
            Effect::Assign(member) => incident.assigned_to = Some(member.clone()),
            Effect::Hold(hold) => incident.on_hold = hold.clone(),
            Effect::TeamAlarm(at) => incident.team_alarm_at = *at,
            Effect::AtRiskWarned(at) => incident.at_risk_warned_for = Some(*at),
            Effect::CustomerWrote => incident.customer_wrote_at = Some(now),
            Effect::SenderTrust(trust) => incident.sender_trust = *trust,
            Effect::Vouched(member) => incident.vouched_by = Some(member.clone()),
            Effect::Tag(label) => {
                if !incident.tags.contains(label) {
                    incident.tags.push(label.clone());
                }
            }
            Effect::UpdatesWithoutNews(count) => incident.updates_without_news = *count,
            Effect::Escalated(at) => {
                // Someone wrote (None): the team need not hear of the old escalation.
                if at.is_none() {
                    incident.team_alarm_at = None;
                }
                incident.escalated_at = *at;
            }
            Effect::Recurring {
                incident: which,
                reason,
            } => {
                // Another incident's mark is written to that incident alone.
                if *which == incident.number {
                    incident.recurring = true;
                    // The first reason given stays (`report recurring` shows it).
                    incident
                        .recurring_reason
                        .get_or_insert_with(|| reason.clone());
                }
            }
            Effect::Repeats {
                count,
                previous_opened_at,
            } => {
                incident.repeat_count = *count;
                incident.previous_opened_at = Some(*previous_opened_at);
            }
            Effect::Lang(lang) => incident.lang = Some(lang.clone()),
            Effect::PreviousIncident(previous) => incident.previous_incident = Some(*previous),
            // Recorded beside the incident (answers, held replies, promises, the history), or
            // an outcome only queueing knows (whether a mail went: `told_customer_at`).
            Effect::CheckBackAnswer { .. }
            | Effect::HoldReply { .. }
            | Effect::ReleaseReply(_)
            | Effect::SettlePromises
            | Effect::Event(_)
            | Effect::ListInDigest { .. }
            | Effect::Mail(_) => {}
        }
    }
}

/// An entry for the append-only event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// None for events about no incident (a quarantined message, an address cleared).
    pub incident: Option<IncidentNo>,
    /// The message that caused it, if any.
    pub message: Option<MessageRow>,
    pub kind: EventKind,
    pub actor: Actor,
    pub detail: String,
}

/// A mail to queue. The queue gives it a Message-ID, checks the send caps and renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub kind: MailKind,
    pub to: String,
    pub to_name: Option<String>,
    /// About an incident nobody has proven the customer of (see `policy::unproven`): the
    /// stricter send caps count it.
    pub unverified: bool,
    pub data: MailData,
    /// The next update this mail promises the customer: recorded in the ledger once queued.
    pub promise: Option<DateTime<Utc>>,
    /// The message this mail answers, if any.
    pub caused_by: Option<MessageRow>,
    /// Threading: the message answered, and the conversation so far (oldest first, bounded).
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The Outlook conversation (hex Thread-Index root) this mail continues.
    pub thread_root: Option<String>,
    /// Forward the attachments of this message (a staff reply's) with the mail.
    pub attachments_from: Option<MessageRow>,
    /// The staff member whose words this customer mail carries: no customer send cap holds
    /// it back, and if anything else does (an undeliverable address, the staff-only guard)
    /// they are told at once.
    pub staff_by: Option<String>,
}
