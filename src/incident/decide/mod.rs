//! Every decision about an incident: one function of (facts, event, configuration, now).
//!
//! The lifecycle (open → waiting → resolved → closed, with reopen), what the scheduler does
//! when time passes (progress updates, late updates, check-backs, closes, escalations), what a
//! customer's reply causes, and what each staff action does. Each returns [`Effects`] or a
//! [`Refusal`] that says why not; nothing is written here.
//!
//! One room per kind of event, each adding its methods to [`Decision`]: `opening` (a complaint
//! opens an incident), `customer` (what a reply causes), `staff` (each staff action and the
//! states it is allowed in), `staff_mail` (a staff member's mail as one batch), `timers` (what
//! happens when time passes). This file holds the events, the facts, the dispatcher and what
//! every room shares (the one door to a customer's mail and to staff notifications).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::effects::{Effect, Effects, Mail, NewEvent};
use super::letters::{self, Conversation, CustomerMail, Recipient};
use super::policy::Policy;
use super::staff_mail::{Command, StaffMail};
use super::{pace, policy, replies, Actor, EventKind, Incident, IncidentNo, MailKind, MessageRow};
use super::{Note, NoteVisibility, Resolution, Stage, State};
use crate::clock::{self, stamp};
use crate::config::Treatment;
use crate::mail::{Person, Trust};
use crate::said;
use crate::templates::{
    AttachmentData, EscalationData, HeldData, MailData, Phrases, Said, StaffData,
};

mod customer;
mod opening;
mod staff;
mod staff_mail;
mod team;
mod timers;

pub use timers::at_risk_line;

/// Forged staff replies staff are mailed about per incident in 24 hours; more are recorded,
/// quarantined and logged only.
pub const FORGED_ALERTS_PER_DAY: i64 = 3;

/// How much of a forged staff reply's text its alert shows, in characters.
const FORGED_EXCERPT: usize = 160;

/// What the store knows about an incident, gathered before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub incident: Incident,
    /// The newest staff note (status answers and escalations quote it).
    pub latest_note: Option<Note>,
    /// The newest note for the customer, told to them or not.
    pub customer_note: Option<Note>,
    /// The newest note written since the customer was last promised an update: news they have
    /// not heard yet.
    pub unheard_note: Option<Note>,
    /// Due times of the promises the customer holds that are neither kept nor breached.
    pub open_promises: Vec<DateTime<Utc>>,
    /// The conversation with the customer, for threading.
    pub conversation: Conversation,
    /// The staff's thread about the incident (the notifications sent so far).
    pub staff_conversation: Conversation,
    /// Each `[send_caps] answer_windows` window with the answers to the customer's own mail
    /// it already holds: a chaser past it gets no automatic answer, and staff are told.
    pub answers: Vec<(crate::config::CapWindow, u32)>,
}

impl Facts {
    /// Facts about an incident with no history yet (just opened).
    pub fn new(incident: Incident, conversation: Conversation) -> Facts {
        Facts {
            incident,
            latest_note: None,
            customer_note: None,
            unheard_note: None,
            open_promises: Vec::new(),
            conversation,
            staff_conversation: Conversation::default(),
            answers: Vec::new(),
        }
    }

    /// How many answers the customer's mail already had in a full answer window, if one is
    /// full, and how long that window is.
    pub fn answers_used_up(&self) -> Option<(u32, Duration)> {
        self.answers
            .iter()
            .find(|(window, sent)| *sent >= window.max)
            .map(|(window, sent)| (*sent, window.within))
    }
}

/// What the customer sent with a mail, for staff to see.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Written {
    /// Their own words, whole.
    pub text: String,
    pub attachments: Vec<AttachmentData>,
    /// How far the sender is proven ("verified: dkim=pass aligned …").
    pub trust: String,
    /// Why it could not be told with confidence which words are theirs; "" when it could.
    pub unsure: String,
    /// The signature under their words (phone, company), for staff; "" when none.
    pub signature: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A complaint just opened this incident.
    Opened(Opening),
    /// The customer (or someone they copied in) replied.
    CustomerReply {
        message: MessageRow,
        from: String,
        /// How far the receiving server proved this mail's sender.
        trust: Trust,
        /// Their own words in this mail (quotes and signature removed), whole.
        written: Written,
    },
    /// A reply to this incident that `[trust]` keeps for staff (the sender check failed).
    HeldReply {
        message: MessageRow,
        from: String,
        why: String,
        written: Written,
    },
    /// A staff member acted (the CLI).
    Staff { by: String, action: StaffAction },
    /// A staff member answered a notification by mail (its signature checked by intake).
    StaffReply {
        message: MessageRow,
        /// Their address, and the name the customer reads.
        by: String,
        name: String,
        mail: StaffMail,
        /// The reply carries attachments: they go to the customer with the note.
        attachments: bool,
        /// Why its words may not go to the customer as read (all quote, staff-only text in
        /// them, unsure which words are theirs): held, and the member is told. None: clear.
        held: Option<HeldData>,
        /// The member's reply held back earlier and not yet sent: `#send` sends it (intake
        /// put its words in `mail`), a new reply that goes through replaces it.
        pending: Option<i64>,
    },
    /// A member's `#all` or `#to-tag` reply, carried out on another incident it names (see
    /// [`StaffMail::for_the_others`]): as their reply there, except that the team hears of it
    /// once, on the incident it was written in.
    ToOthers {
        message: MessageRow,
        by: String,
        name: String,
        mail: StaffMail,
    },
    /// A staff member wrote to the customer directly (support in copy): the customer has it;
    /// it counts as news.
    StaffCorrespondence {
        message: MessageRow,
        by: String,
        text: String,
    },
    /// Mail claiming a staff sender answered this incident without a signed reply (held).
    ForgedStaffReply {
        message: MessageRow,
        claimed: String,
        why: String,
        written: Written,
        /// How many forged replies on this incident staff were told of in the last 24 hours:
        /// past [`FORGED_ALERTS_PER_DAY`] they are recorded only (a forger must not be able
        /// to flood the team through us).
        alerts_today: i64,
    },
    /// The customer's address bounced.
    Undeliverable { address: String, reason: String },
    /// A promised update is near and nobody has written the news since the last one.
    PromiseAtRisk(AtRisk),
    /// The assignee was alarmed alone `[staff] team_after` ago.
    TeamAlarmDue,
    /// The promised update is due (the scheduler sends it `lead` before the promise).
    ProgressDue,
    /// The check-back after resolution is due.
    CheckBackDue,
    /// A resolved incident nobody answered after the check-back closes.
    CloseDue,
    /// An open incident has had no staff note for `[escalation] after_no_note`.
    QuietTooLong,
}

/// The at-risk alarms of one tick, shared out so that each member gets one mail for all of
/// them: the first incident's alarm to a member lists the others that member would be told of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AtRisk {
    /// Promises due by this time are at risk now: `at_risk_before` ahead, and
    /// `at_risk_batch` further when any promise is (see the scheduler).
    pub until: DateTime<Utc>,
    /// Per recipient, the other incidents this incident's alarm lists for them, worded by
    /// [`at_risk_line`].
    pub also: std::collections::BTreeMap<String, Vec<String>>,
    /// Recipients whose alarm for this incident goes in another incident's mail.
    pub told_with: std::collections::BTreeMap<String, IncidentNo>,
}

/// What is known when a complaint opens an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// The complaint.
    pub message: MessageRow,
    pub from: Person,
    /// Further authors the complaint's From named; only `from` is answered.
    pub other_from: Vec<String>,
    /// The first promise, as [`opening`] computed it for the new row.
    pub promise: clock::Promise,
    /// A late reply to this (long resolved) incident opened this one.
    pub continues: Option<IncidentNo>,
    /// Incidents the complaint pointed at without its sender taking part in them.
    pub stranger_to: Vec<IncidentNo>,
    /// How many incidents this customer opened within `[recurring] window`, this one included.
    pub customer_incidents_in_window: u32,
    /// The customer's incident this one repeats (within `[recurring] link_within`), if any.
    pub repeats: Option<Repeat>,
    /// What the complaint said, for staff.
    pub written: Written,
    /// The language the customer writes in, and how it was told (None: the default).
    pub language: Option<(String, crate::lang::Source)>,
    /// What we understood from the complaint, for the acknowledgement.
    pub understood: crate::incident::understood::Understood,
    /// The order, invoice and tracking numbers it names, in its subject or its words: kept
    /// with the incident, and not asked for again.
    pub facts: Vec<crate::mail::facts::Fact>,
    /// In a burst (`[staff] burst`), the member this incident goes to in turn.
    pub share: Option<Share>,
}

/// A new incident in a burst, assigned in turn to one member: they alone get its
/// notification; the rest of the team reads of it in their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub to: String,
    /// The incidents of the burst opened before it that no digest lists yet (they went to
    /// every member, before it was a burst): listed with it.
    pub earlier: Vec<IncidentNo>,
}

/// An earlier incident of the same customer that a new complaint repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub previous: IncidentNo,
    pub opened_at: DateTime<Utc>,
    /// Which time of the problem the earlier one was (1 for a first incident).
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StaffAction {
    /// A note: goes to the customer at once in a progress update.
    Note(String),
    /// A note for staff only: recorded, never sent to the customer.
    InternalNote(String),
    /// On hold: "until Thursday 10:00 waiting for the carrier" (see `clock::parse_until`).
    Hold(String),
    Cadence(Duration),
    /// Waiting on the customer for what we need from them (required: they are told).
    Wait(String),
    Resume,
    Resolve(Resolution),
    Close,
    Reopen,
    /// A label; `tagged_in_window` lists the incidents within `[recurring] window` that carry
    /// it already (with whether each is marked recurring), this one excluded.
    Tag {
        label: String,
        tagged_in_window: Vec<(IncidentNo, bool)>,
    },
    /// The incident is this staff member's.
    Assign(String),
    /// Answer the customer in this language from now on ("de").
    Lang(String),
}

/// What a mail says of the news (see `Decision::news`).
#[derive(Debug, Clone, Default)]
struct News {
    note: String,
    note_by: String,
    note_at: String,
    last_news_at: String,
    working_for: String,
}

impl News {
    fn put(self, d: &mut MailData) {
        d.note = self.note;
        d.note_by = self.note_by;
        d.note_at = self.note_at;
        d.last_news_at = self.last_news_at;
        d.working_for = self.working_for;
    }
}

/// Why an action was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The values a new incident's row starts with: its first promise one default cadence on.
pub fn opening(policy: &Policy, now: DateTime<Utc>) -> clock::Promise {
    policy.cadence.promise(now, policy.cadence.default)
}

/// Decides what `event` means for the incident in `facts`.
pub fn decide(
    facts: &Facts,
    event: &Event,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Effects, Refusal> {
    let mut d = Decision {
        facts,
        policy,
        now,
        incident: facts.incident.clone(),
        fx: Effects::new(facts.incident.number),
        resumed_moved: false,
        staff_greeting: None,
    };
    match event {
        Event::Opened(opening) => d.opened(opening),
        Event::CustomerReply {
            message,
            from,
            trust,
            written,
        } => d.customer_reply(*message, from, *trust, written),
        Event::HeldReply {
            message,
            from,
            why,
            written,
        } => d.held_reply(*message, from, why, written),
        Event::Staff { by, action } => {
            d.vouch(by);
            let start = d.fx.list.len();
            d.staff(Actor::Staff(by.clone()), action, None)?;
            d.tell_team(by, "", start, None);
        }
        Event::StaffReply {
            message,
            by,
            name,
            mail,
            attachments,
            held,
            pending,
        } => {
            d.vouch(by);
            match held {
                Some(held) => d.hold_staff_reply(*message, by, mail, held, *pending),
                None => {
                    let start = d.fx.list.len();
                    d.staff_reply(*message, by, name, mail, *attachments, *pending);
                    d.tell_team(by, name, start, Some(*message));
                }
            }
        }
        Event::ToOthers {
            message,
            by,
            name,
            mail,
        } => {
            d.vouch(by);
            d.staff_reply(*message, by, name, mail, false, None);
        }
        Event::StaffCorrespondence { message, by, text } => {
            let start = d.fx.list.len();
            d.staff_correspondence(*message, by, text);
            d.tell_team(by, "", start, Some(*message));
        }
        Event::ForgedStaffReply {
            message,
            claimed,
            why,
            written,
            alerts_today,
        } => d.forged(
            *message,
            claimed,
            why,
            written,
            *alerts_today < FORGED_ALERTS_PER_DAY,
        ),
        Event::Undeliverable { address, reason } => d.undeliverable(address, reason),
        Event::PromiseAtRisk(at) => d.promise_at_risk(at),
        Event::ProgressDue => d.progress_due(),
        Event::CheckBackDue => d.check_back_due(),
        Event::CloseDue => {
            // The scheduler only asks for resolved incidents; anything else changed meanwhile.
            if d.incident.state() == State::Resolved {
                d.close(&Actor::Daemon);
            }
        }
        Event::TeamAlarmDue => d.team_alarm_due(),
        Event::QuietTooLong => {
            if d.incident.state() == State::Open
                && d.incident.escalated_at.is_none()
                && d.incident.on_hold.is_none()
                && d.no_alarm_now().is_none()
            {
                let reason = d.quiet_for();
                d.escalate(&reason);
            }
        }
    }
    Ok(d.fx)
}

/// The staff actions only some states allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Cadence,
    Wait,
    Resume,
    Close,
    Reopen,
    Note,
    Resolve,
}

/// The one table of which state allows which action, with what a refusal says: the action as
/// "cannot … incident N" and a hint.
/// Which states each action is allowed in, and the phrase that says why not.
const ALLOWED: &[(Transition, &[State], &str)] = &[
    (
        Transition::Cadence,
        &[State::Open, State::Waiting],
        "refusal.transition.cadence",
    ),
    (Transition::Wait, &[State::Open], "refusal.transition.wait"),
    (
        Transition::Resume,
        &[State::Waiting],
        "refusal.transition.resume",
    ),
    (
        Transition::Close,
        &[State::Open, State::Waiting, State::Resolved],
        "refusal.transition.close",
    ),
    (
        Transition::Reopen,
        &[State::Resolved, State::Closed],
        "refusal.transition.reopen",
    ),
    (Transition::Note, &[State::Open], "refusal.transition.note"),
    (
        Transition::Resolve,
        &[State::Open, State::Waiting],
        "refusal.transition.resolve",
    ),
];

pub(crate) fn allowed(state: State, action: Transition) -> bool {
    ALLOWED
        .iter()
        .any(|(a, states, ..)| *a == action && states.contains(&state))
}

/// A decision in progress: `incident` is the incident as the effects so far leave it, so each
/// step sees what the ones before it changed.
struct Decision<'a> {
    facts: &'a Facts,
    policy: &'a Policy<'a>,
    now: DateTime<Utc>,
    incident: Incident,
    fx: Effects,
    /// The promise made on resuming was moved by the sending window.
    resumed_moved: bool,
    /// The greeting a staff member wrote above their words: the customer mail it causes opens
    /// with it instead of the template's.
    staff_greeting: Option<String>,
}

impl Decision<'_> {
    /// A sentence in the staff's words (events, reasons, refusals).
    fn say(&self, said: Said) -> String {
        self.policy.say(&said)
    }

    /// A span rounded as staff want to read it: whole hours past an hour ("9 hours"), whole
    /// minutes below.
    fn elapsed(&self, span: chrono::Duration) -> String {
        let secs = u64::try_from(span.num_seconds()).unwrap_or(0);
        let rounded = if secs >= 3600 {
            secs / 3600 * 3600
        } else {
            secs / 60 * 60
        };
        self.words().duration(None, Duration::from_secs(rounded))
    }

    /// Dates, durations and counts in words.
    fn words(&self) -> &Phrases {
        self.policy.phrases
    }

    /// Refuses `action` unless the incident's state allows it (see [`ALLOWED`]).
    fn require(&self, action: Transition) -> Result<(), Refusal> {
        if allowed(self.incident.state(), action) {
            return Ok(());
        }
        let key = ALLOWED
            .iter()
            .find(|(a, ..)| *a == action)
            .map_or("refusal.transition.other", |(_, _, key)| *key);
        Err(self.refuse(Said::new(
            key,
            vec![
                ("number", self.incident.number.to_string()),
                ("state", self.incident.state().to_string()),
            ],
        )))
    }

    fn refuse(&self, said: Said) -> Refusal {
        Refusal(self.say(said))
    }

    /// Records an effect, and the incident as it leaves it ([`Effect::evolve`]): the decision
    /// reads the incident only as its own effects have made it.
    fn emit(&mut self, effect: Effect) {
        effect.evolve(&mut self.incident, self.now);
        self.fx.push(effect);
    }

    fn promise(&self, from: DateTime<Utc>) -> clock::Promise {
        self.policy.cadence.promise(from, self.incident.cadence)
    }

    fn set_stage(&mut self, stage: Stage) {
        self.emit(Effect::Stage(stage));
    }

    /// The one way a decision sets the next update. An incident whose customer asked us to
    /// stop has none: a time left on it would fall due on every tick and send nothing, and
    /// a preview that simulates the ticks would never get past it.
    fn set_next_update(&mut self, at: Option<DateTime<Utc>>) {
        let at = at.filter(|_| !self.incident.updates_stopped);
        self.emit(Effect::NextUpdate(at));
    }

    fn clear_check_back(&mut self) {
        self.emit(Effect::CheckBack {
            check_back_at: None,
            close_at: None,
        });
    }

    /// A resolved incident that hears nothing more closes `close_after` from now (inside the
    /// sending window); returns when.
    fn close_quietly_later(&mut self) -> DateTime<Utc> {
        let cadence = self.policy.cadence;
        let close_at = cadence.working_time(clock::after(self.now, cadence.close_after));
        self.emit(Effect::CheckBack {
            check_back_at: None,
            close_at: Some(close_at),
        });
        close_at
    }

    /// Settles the open promises as an update goes out now; returns how many were breached.
    fn settle_promises(&mut self) -> usize {
        self.emit(Effect::SettlePromises);
        self.facts
            .open_promises
            .iter()
            .filter(|due| **due < self.now)
            .count()
    }

    /// A mail to the incident's customer through the one door.
    fn mail_customer(
        &mut self,
        kind: MailKind,
        promise: Option<DateTime<Utc>>,
        caused_by: Option<MessageRow>,
        shape: impl FnOnce(&mut MailData),
    ) {
        let to = Recipient::customer_of(&self.incident);
        self.mail_to(kind, to, promise, caused_by, shape);
    }

    fn mail_to(
        &mut self,
        kind: MailKind,
        to: Recipient,
        promise: Option<DateTime<Utc>>,
        caused_by: Option<MessageRow>,
        shape: impl FnOnce(&mut MailData),
    ) {
        let mail = letters::to_customer(
            &self.incident,
            &self.facts.conversation,
            self.policy,
            CustomerMail {
                kind,
                to,
                promise,
                caused_by,
            },
            shape,
        );
        let mut mail = Box::new(mail);
        if let Some(greeting) = &self.staff_greeting {
            mail.data.greeting = greeting.clone();
        }
        self.hours(&mut mail.data, promise);
        self.emit(Effect::Mail(mail));
    }

    /// Working hours said out loud: the team's hours, the holidays before the promised update,
    /// and when the team is back if it is away now.
    fn hours(&self, d: &mut MailData, promise: Option<DateTime<Utc>>) {
        let Some(window) = self.policy.cadence.window.as_ref() else {
            return;
        };
        let lang = letters::language(&self.incident, self.policy);
        let set = self.policy.lang_set(&lang);
        let words = self.words();
        d.working_hours = words.working_hours(set, window, self.now);
        d.working_hours_theirs =
            words.hours_theirs(set, window, self.now, self.incident.customer_utc_offset);
        if let Some(promise) = promise {
            d.closed_days = words.days(set, &window.closed_between(self.now, promise));
        }
        if let Some(back) = window.reopens(self.now) {
            d.team_back = self.when(back);
        }
    }

    /// The customer mail just decided carries the attachments of `message` (a staff reply's).
    fn attach_to_last_mail(&mut self, message: MessageRow) {
        if let Some(Effect::Mail(mail)) = self.fx.list.last_mut() {
            mail.attachments_from = Some(message);
        }
    }

    /// When `t` was, in the words of the customer's mail ("on Tuesday at 14:30").
    fn when(&self, t: DateTime<Utc>) -> String {
        let lang = letters::language(&self.incident, self.policy);
        self.words().when(
            self.policy.lang_set(&lang),
            t,
            self.now,
            self.policy.cadence.timezone,
        )
    }

    /// What a status answer says of the news: the newest note for the customer that they have
    /// not heard yet, with when it was written; else when they last had news. Only notes since
    /// the last resolution count: what was true before the fix is not news about a problem
    /// that came back, and Monday's news is not repeated on Wednesday as if it were new.
    fn news(&self) -> News {
        let current = |n: &&Note| {
            n.visibility == NoteVisibility::Customer
                && self.incident.resolved_at().is_none_or(|fixed| n.at > fixed)
        };
        let mut news = News {
            working_for: self.words().since(
                self.policy
                    .lang_set(&letters::language(&self.incident, self.policy)),
                self.now - self.incident.opened_at,
            ),
            ..News::default()
        };
        if let Some(note) = self.facts.unheard_note.as_ref().filter(current) {
            news.note = note.text.clone();
            news.note_by = note.signed.clone();
            news.note_at = self.when(note.at);
        } else if let Some(told) = self.facts.customer_note.as_ref().filter(current) {
            news.last_news_at = self.when(told.at);
        }
        news
    }

    /// When the customer sent something we have not written back about since, for the mail
    /// that thanks them for it: the weekday (`thanks_for`, "Tuesday") and as the mail says it
    /// (`thanks_when`: "earlier today" the same day, else "on Tuesday"); both "" when nothing.
    fn thanks(&self) -> (String, String) {
        let theirs = match (
            self.incident.customer_wrote_at,
            self.incident.told_customer_at,
        ) {
            (Some(theirs), ours) if ours.is_none_or(|o| theirs > o) => theirs,
            _ => return (String::new(), String::new()),
        };
        let lang = letters::language(&self.incident, self.policy);
        let set = self.policy.lang_set(&lang);
        let tz = self.policy.cadence.timezone;
        let words = self.words();
        let weekday = words.weekday(set, theirs, tz);
        let when =
            if theirs.with_timezone(&tz).date_naive() == self.now.with_timezone(&tz).date_naive() {
                words.say(set, &said!("time.sent_today"))
            } else {
                words.say(set, &said!("time.sent_day", weekday = weekday.clone()))
            };
        (weekday, when)
    }

    /// A notification to staff: to `[staff] notify` (or the members), threaded in the staff's
    /// own thread about this incident. Never counted against a customer's send caps.
    fn notify_staff(
        &mut self,
        kind: MailKind,
        caused_by: Option<MessageRow>,
        shape: impl Fn(&mut MailData),
    ) {
        let recipients = self.policy.staff.recipients().to_vec();
        self.staff_mail(kind, &recipients, caused_by, shape);
    }

    fn staff_mail(
        &mut self,
        kind: MailKind,
        recipients: &[String],
        caused_by: Option<MessageRow>,
        shape: impl Fn(&mut MailData),
    ) {
        // Staff read the default set, dates in the default language; they are told which
        // language the customer gets when it is another.
        let customer_lang = letters::language(&self.incident, self.policy);
        let mut seen_by_staff = self.incident.clone();
        seen_by_staff.lang = Some(self.policy.language.default.clone());
        let mut data =
            letters::mail_data(&seen_by_staff, self.policy, self.incident.next_update_at());
        data.lang = String::new();
        data.next_update_short = self
            .incident
            .next_update_at()
            .map(|t| {
                self.words()
                    .short_time(None, t, self.now, self.policy.cadence.timezone)
            })
            .unwrap_or_default();
        data.note = self
            .facts
            .latest_note
            .as_ref()
            .map(|n| n.text.clone())
            .unwrap_or_default();
        shape(&mut data);
        if customer_lang != self.policy.language.default {
            data.staff.language = customer_lang;
        }
        // As the incident was before this event: the notice about the mail that makes an
        // incident recurring has always said "several incidents recently", not the reason
        // just found (kept so; the team-ticket work decides what staff mail says).
        data.staff.recurring_reason = self
            .facts
            .incident
            .recurring_reason
            .clone()
            .unwrap_or_default();
        let (in_reply_to, references) = self.facts.staff_conversation.threading();
        // The customer's files (a screenshot, a log) travel with the mail that carries their
        // words; `[staff] attach_max` bounds them.
        let attachments_from = match kind {
            MailKind::StaffNew | MailKind::StaffReply | MailKind::StaffReopened
                if !data.staff.attachments.is_empty() =>
            {
                caused_by
            }
            _ => None,
        };
        for to in recipients {
            self.emit(Effect::Mail(Box::new(Mail {
                kind,
                to: to.clone(),
                to_name: None,
                unverified: false,
                data: data.clone(),
                promise: None,
                caused_by,
                in_reply_to: in_reply_to.clone(),
                references: references.clone(),
                thread_root: None,
                attachments_from,
                staff_by: None,
            })));
        }
    }
}

/// "#3, #7": incidents as staff write them.
fn incident_list(list: &[IncidentNo]) -> String {
    list.iter()
        .map(|n| format!("#{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An incident for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// Ann's open incident #1, opened Monday 23 November 2026 09:00 UTC, promised 13:00.
    pub(crate) fn incident() -> Incident {
        Incident {
            number: IncidentNo(1),
            token: "FU-1-0123456789".into(),
            stage: Stage::Open {
                next_update_at: Some(at("2026-11-23T13:00:00Z")),
            },
            subject: "Checkout keeps failing".into(),
            summary: "Every payment attempt ends with an error page.".into(),
            customer_address: "ann@example.test".into(),
            customer_name: Some("Ann Example".into()),
            reply_address: "ann@example.test".into(),
            reply_name: Some("Ann Example".into()),
            sender_trust: crate::mail::Trust::Verified,
            vouched_by: None,
            opened_at: at(T0),
            updated_at: at(T0),
            cadence: Duration::from_secs(4 * 3600),
            last_note_at: None,
            updates_without_news: 0,
            resolution: None,
            escalated_at: None,
            recurring: false,
            previous_incident: None,
            tags: Vec::new(),
            updates_stopped: false,
            assigned_to: None,
            at_risk_warned_for: None,
            customer_wrote_at: None,
            told_customer_at: None,
            lang: None,
            customer_utc_offset: None,
            repeat_count: 1,
            recurring_reason: None,
            previous_opened_at: None,
            on_hold: None,
            team_alarm_at: None,
        }
    }

    /// A resolution given at `at` (its words do not matter to the scenario).
    pub(crate) fn fixed(at: DateTime<Utc>) -> crate::incident::Resolved {
        crate::incident::Resolved {
            at,
            resolution: Resolution::default(),
        }
    }

    pub(crate) fn at(text: &str) -> DateTime<Utc> {
        crate::clock::parse_stamp(text).expect("time")
    }

    pub(crate) const T0: &str = "2026-11-23T09:00:00Z";

    /// How many random sequences a property test runs: `default`, or
    /// `FOLLOWUPD_PROPERTY_RUNS` for a longer hunt than the suite can afford.
    pub(crate) fn property_runs(default: u64) -> u64 {
        std::env::var("FOLLOWUPD_PROPERTY_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    }

    /// A small seeded generator (xorshift64*) for random-sequence tests: the same seed, the
    /// same sequence, so a failure is reproduced from the seed it prints.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn seeded(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }

        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A number below `n` (which must be above zero).
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        pub(crate) fn pick<'a, T: ?Sized>(&mut self, items: &'a [&'a T]) -> &'a T {
            items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
        }
    }
}

#[cfg(test)]
mod test_kit;

#[cfg(test)]
mod schedule_props;
