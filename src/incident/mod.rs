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

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::serde_stamp;
use crate::mail::Trust;

pub use decide::{decide, opening, Event, Facts, Refusal, StaffAction, Written};
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
    /// now?"); None: "Is it working for you now?".
    pub question: Option<String>,
}

/// One incident, as the store keeps it. Times are UTC; the JSON form is what
/// `followupd incidents --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub number: IncidentNo,
    pub token: String,
    pub state: State,
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
    #[serde(with = "serde_stamp")]
    pub opened_at: DateTime<Utc>,
    #[serde(with = "serde_stamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(rename = "cadence_secs", serialize_with = "as_secs")]
    pub cadence: Duration,
    #[serde(with = "serde_stamp::option")]
    pub next_update_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    pub last_note_at: Option<DateTime<Utc>>,
    /// Progress updates sent in a row with no staff note since the previous one.
    pub updates_without_news: i64,
    #[serde(with = "serde_stamp::option")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    pub check_back_at: Option<DateTime<Utc>>,
    #[serde(with = "serde_stamp::option")]
    pub close_at: Option<DateTime<Utc>>,
    pub root_cause: Option<String>,
    pub prevention: Option<String>,
    pub compensation: Option<String>,
    #[serde(skip)]
    pub escalated_at: Option<DateTime<Utc>>,
    pub recurring: bool,
    pub previous_incident: Option<IncidentNo>,
    pub tags: Vec<String>,
    /// The customer asked for no more automatic updates.
    pub updates_stopped: bool,
    /// The staff member the incident is assigned to.
    pub assigned_to: Option<String>,
    /// The promised update staff were last warned about ("promise at risk").
    #[serde(skip)]
    pub at_risk_warned_for: Option<DateTime<Utc>>,
    /// When the customer last wrote to us, and when we last queued mail to them.
    #[serde(skip)]
    pub customer_wrote_at: Option<DateTime<Utc>>,
    #[serde(skip)]
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
    /// What the check-back asks (staff wrote it with the resolution).
    pub check_question: Option<String>,
    /// When the incident this one repeats opened.
    #[serde(with = "serde_stamp::option")]
    pub previous_opened_at: Option<DateTime<Utc>>,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Incident {
    /// The customer as "Ann Example <ann@example.com>", or the bare address.
    pub fn customer_display(&self) -> String {
        match &self.customer_name {
            Some(name) => format!("{name} <{}>", self.customer_address),
            None => self.customer_address.clone(),
        }
    }
}

/// A staff note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub author: String,
    pub text: String,
    pub visibility: NoteVisibility,
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
