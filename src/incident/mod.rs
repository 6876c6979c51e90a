//! The decision core: what an incident needs now.
//!
//! Every decision is a plain function of (facts, event, configuration, now) that returns
//! [`Effects`]: the state change, the events to log, the promises to settle or make, the mails
//! to queue. Nothing here touches SQLite, the network, the clock or the file system; intake,
//! the scheduler and the CLI gather the facts, call [`decide`], and hand the effects to
//! [`crate::apply`], which writes them in one transaction. Every rule is therefore a unit test
//! with a fixed clock (the `tests` module of each room of `decide/`).
//!
//! - [`state`]: the vocabulary (states, kinds of mail, actors, event kinds).
//! - [`decide`]: the lifecycle, the scheduler's due work, customer replies, staff actions.
//! - [`letters`]: what every mail about an incident can say, and how it threads (the one door
//!   every customer mail goes through).
//! - [`pace`]: the customer setting the pace in their own words; [`replies`]: what else a
//!   reply asks for (news, no more updates); [`staff_mail`]: commands in a staff reply.
//! - [`effects`]: the plain data a decision returns.
// Text here is customers' own, in every script: a byte index found in one copy of a string
// (case-folded, normalised) must never cut another. Slice by char or by a found match only.
#![deny(clippy::string_slice)]

pub mod arrival;
pub mod caps;
pub mod decide;
pub mod effects;
pub mod letters;
pub mod pace;
pub mod policy;
pub mod replies;
pub mod staff_mail;
pub mod state;
pub mod understood;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::serde_stamp;
use crate::mail::Trust;

pub use decide::{
    at_risk_line, decide, opening, AtRisk, Event, Facts, Refusal, Share, StaffAction, Written,
};
pub use effects::{Effect, Effects, Mail, NewEvent};
pub use state::{Actor, Audience, EventKind, MailKind, Role, State};

/// An incident's number: what customers and staff see, and its row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IncidentNo(pub i64);

impl fmt::Display for IncidentNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A row of the message log (every message in and out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MessageRow(pub i64);

impl fmt::Display for MessageRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What went wrong, what will stop it happening again, and what we offer for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub root_cause: String,
    pub prevention: String,
    pub compensation: Option<String>,
    /// The one question the check-back asks ("Is your refund showing on your statement
    /// now?"); None: the template's own question ("Is everything sorted for you now?").
    pub question: Option<String>,
}

/// Where an incident is in its life, with what only that stage has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Being worked on: the next update the customer was promised (None once they asked for
    /// no more automatic updates, or while no time is set).
    Open {
        next_update_at: Option<DateTime<Utc>>,
    },
    /// Waiting on the customer for what we need from them ("" for an incident that waited
    /// before followupd kept it).
    Waiting {
        waiting_for: String,
    },
    /// Fixed: the check-back goes out at `check_back_at`; once it has, the incident closes at
    /// `close_at` unless the customer answers.
    Resolved {
        check_back_at: Option<DateTime<Utc>>,
        close_at: Option<DateTime<Utc>>,
    },
    Closed,
}

impl Stage {
    pub fn state(&self) -> State {
        match self {
            Stage::Open { .. } => State::Open,
            Stage::Waiting { .. } => State::Waiting,
            Stage::Resolved { .. } => State::Resolved,
            Stage::Closed => State::Closed,
        }
    }
}

/// The latest resolution, and when it was given: kept when the incident reopens (the next mail
/// owns that we had said it was fixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub at: DateTime<Utc>,
    pub resolution: Resolution,
}

/// One incident, as the store keeps it. Times are UTC; the JSON form is what
/// `followupd incidents --json` prints (see [`IncidentJson`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub number: IncidentNo,
    pub token: String,
    pub stage: Stage,
    pub subject: String,
    pub summary: String,
    pub customer_address: String,
    pub customer_name: Option<String>,
    /// Where every mail of the incident goes, chosen when it opened (see
    /// [`policy::reply_address`]).
    pub reply_address: String,
    pub reply_name: Option<String>,
    /// How far the receiving server proved the customer: the complaint's trust, raised when a
    /// verified mail from them joins.
    pub sender_trust: Trust,
    /// The staff member who first acted on it: a person vouches for the customer.
    pub vouched_by: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cadence: Duration,
    pub last_note_at: Option<DateTime<Utc>>,
    /// Progress updates sent in a row with no staff note since the previous one.
    pub updates_without_news: i64,
    pub resolution: Option<Resolved>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub recurring: bool,
    pub previous_incident: Option<IncidentNo>,
    pub tags: Vec<String>,
    /// The customer asked for no more automatic updates.
    pub updates_stopped: bool,
    /// The staff member the incident is assigned to.
    pub assigned_to: Option<String>,
    /// The promised update staff were last warned about ("promise at risk").
    pub at_risk_warned_for: Option<DateTime<Utc>>,
    /// When the customer last wrote to us, and when we last queued mail to them.
    pub customer_wrote_at: Option<DateTime<Utc>>,
    pub told_customer_at: Option<DateTime<Utc>>,
    /// The language the customer is answered in; None: `[language] default`.
    pub lang: Option<String>,
    /// The customer's own UTC offset in minutes (from their complaint's Date: header).
    pub customer_utc_offset: Option<i32>,
    /// Which time the customer has this problem: 1, or more when it repeats an incident
    /// within `[recurring] link_within` (`previous_incident` names it).
    pub repeat_count: i64,
    /// Why the incident counts as recurring (what `report recurring` says).
    pub recurring_reason: Option<String>,
    /// When the incident this one repeats opened.
    pub previous_opened_at: Option<DateTime<Utc>>,
    /// On hold (`#hold until …`): no update or escalation is due before it ends.
    pub on_hold: Option<Hold>,
    /// An escalation went to the assignee alone: the team is told at this time unless
    /// someone writes first.
    pub team_alarm_at: Option<DateTime<Utc>>,
}

/// An incident on hold: until when, and why (what the customer was told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub until: DateTime<Utc>,
    pub why: String,
}

impl Incident {
    /// The customer as "Ann Example <ann@example.com>", or the bare address.
    pub fn customer_display(&self) -> String {
        match &self.customer_name {
            Some(name) => format!("{name} <{}>", self.customer_address),
            None => self.customer_address.clone(),
        }
    }

    pub fn state(&self) -> State {
        self.stage.state()
    }

    /// The update the customer was promised next, if the incident is open and has one.
    pub fn next_update_at(&self) -> Option<DateTime<Utc>> {
        match self.stage {
            Stage::Open { next_update_at } => next_update_at,
            _ => None,
        }
    }

    /// When the check-back goes out, and when a quiet resolved incident closes.
    pub fn check_back(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        match self.stage {
            Stage::Resolved {
                check_back_at,
                close_at,
            } => (check_back_at, close_at),
            _ => (None, None),
        }
    }

    /// What we wait for from the customer, while we do.
    pub fn waiting_for(&self) -> Option<&str> {
        match &self.stage {
            Stage::Waiting { waiting_for } => Some(waiting_for),
            _ => None,
        }
    }

    /// When it was last resolved.
    pub fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.resolution.as_ref().map(|r| r.at)
    }
}

/// The JSON form of an incident (`incidents --json`, `incident show --json`): flat, as it has
/// always been, whatever the stage.
#[derive(Serialize)]
struct IncidentJson<'a> {
    number: IncidentNo,
    token: &'a str,
    state: State,
    subject: &'a str,
    summary: &'a str,
    customer_address: &'a str,
    customer_name: Option<&'a str>,
    reply_address: &'a str,
    reply_name: Option<&'a str>,
    sender_trust: Trust,
    vouched_by: Option<&'a str>,
    #[serde(with = "serde_stamp")]
    opened_at: DateTime<Utc>,
    #[serde(with = "serde_stamp")]
    updated_at: DateTime<Utc>,
    cadence_secs: u64,
    #[serde(with = "serde_stamp::option")]
    next_update_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    last_note_at: Option<DateTime<Utc>>,
    updates_without_news: i64,
    #[serde(with = "serde_stamp::option")]
    resolved_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    check_back_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    close_at: Option<DateTime<Utc>>,
    waiting_for: Option<&'a str>,
    root_cause: Option<&'a str>,
    prevention: Option<&'a str>,
    compensation: Option<&'a str>,
    recurring: bool,
    previous_incident: Option<IncidentNo>,
    tags: &'a [String],
    updates_stopped: bool,
    assigned_to: Option<&'a str>,
    lang: Option<&'a str>,
    customer_utc_offset: Option<i32>,
    repeat_count: i64,
    recurring_reason: Option<&'a str>,
    check_question: Option<&'a str>,
    #[serde(with = "serde_stamp::option")]
    previous_opened_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    hold_until: Option<DateTime<Utc>>,
    hold_reason: Option<&'a str>,
    #[serde(with = "serde_stamp::option")]
    team_alarm_at: Option<DateTime<Utc>>,
}

impl Serialize for Incident {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let resolution = self.resolution.as_ref().map(|r| &r.resolution);
        let (check_back_at, close_at) = self.check_back();
        IncidentJson {
            number: self.number,
            token: &self.token,
            state: self.state(),
            subject: &self.subject,
            summary: &self.summary,
            customer_address: &self.customer_address,
            customer_name: self.customer_name.as_deref(),
            reply_address: &self.reply_address,
            reply_name: self.reply_name.as_deref(),
            sender_trust: self.sender_trust,
            vouched_by: self.vouched_by.as_deref(),
            opened_at: self.opened_at,
            updated_at: self.updated_at,
            cadence_secs: self.cadence.as_secs(),
            next_update_at: self.next_update_at(),
            last_note_at: self.last_note_at,
            updates_without_news: self.updates_without_news,
            resolved_at: self.resolved_at(),
            check_back_at,
            close_at,
            waiting_for: self.waiting_for(),
            root_cause: resolution.map(|r| r.root_cause.as_str()),
            prevention: resolution.map(|r| r.prevention.as_str()),
            compensation: resolution.and_then(|r| r.compensation.as_deref()),
            recurring: self.recurring,
            previous_incident: self.previous_incident,
            tags: &self.tags,
            updates_stopped: self.updates_stopped,
            assigned_to: self.assigned_to.as_deref(),
            lang: self.lang.as_deref(),
            customer_utc_offset: self.customer_utc_offset,
            repeat_count: self.repeat_count,
            recurring_reason: self.recurring_reason.as_deref(),
            check_question: resolution.and_then(|r| r.question.as_deref()),
            previous_opened_at: self.previous_opened_at,
            hold_until: self.on_hold.as_ref().map(|h| h.until),
            hold_reason: self.on_hold.as_ref().map(|h| h.why.as_str()),
            team_alarm_at: self.team_alarm_at,
        }
        .serialize(s)
    }
}

/// A staff note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub author: String,
    pub text: String,
    pub visibility: NoteVisibility,
    /// The name the customer read under it ("Anna"); "" for the team.
    pub signed: String,
}

/// Who a note is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteVisibility {
    /// Told to the customer (a progress update carries it).
    Customer,
    /// Among staff only (`#internal`).
    Internal,
    /// A staff member's own mail to the customer, on record; the customer already has it.
    Correspondence,
}

impl NoteVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteVisibility::Customer => "customer",
            NoteVisibility::Internal => "internal",
            NoteVisibility::Correspondence => "correspondence",
        }
    }

    pub fn parse(text: &str) -> Option<NoteVisibility> {
        [
            NoteVisibility::Customer,
            NoteVisibility::Internal,
            NoteVisibility::Correspondence,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
    }
}
