//! Every decision about an incident: one function of (facts, event, configuration, now).
//!
//! The lifecycle (open → waiting → resolved → closed, with reopen), what the scheduler does
//! when time passes (progress updates, late updates, check-backs, closes, escalations), what a
//! customer's reply causes, and what each staff action does. Each returns [`Effects`] or a
//! [`Refusal`] that says why not; nothing is written here.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::effects::{Effect, Effects, Mail, NewEvent};
use super::letters::{self, Conversation, CustomerMail, Recipient};
use super::staff_mail::{Command, StaffMail};
use super::{pace, policy, replies, Actor, EventKind, Incident, IncidentNo, MailKind, MessageRow};
use super::{Note, NoteVisibility, Resolution, State};
use crate::clock::{self, human_duration, stamp};
use crate::config::{Config, Treatment};
use crate::mail::{Person, Trust};
use crate::templates::{AttachmentData, EscalationData, HeldData, MailData, StaffData};

/// How much of a forged staff reply's text its alert shows, in characters.
const FORGED_EXCERPT: usize = 160;

/// What the store knows about an incident, gathered before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub incident: Incident,
    /// The newest staff note (status answers and escalations quote it).
    pub latest_note: Option<Note>,
    /// The newest note written since the customer was last promised an update: news they have
    /// not heard yet.
    pub unheard_note: Option<Note>,
    /// Due times of the promises the customer holds that are neither kept nor breached.
    pub open_promises: Vec<DateTime<Utc>>,
    /// The conversation with the customer, for threading.
    pub conversation: Conversation,
    /// The staff's thread about the incident (the notifications sent so far).
    pub staff_conversation: Conversation,
}

impl Facts {
    /// Facts about an incident with no history yet (just opened).
    pub fn new(incident: Incident, conversation: Conversation) -> Facts {
        Facts {
            incident,
            latest_note: None,
            unheard_note: None,
            open_promises: Vec::new(),
            conversation,
            staff_conversation: Conversation::default(),
        }
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
        /// Staff are mailed about it (false once an incident had its share of alerts: a
        /// forger must not be able to flood the team through us).
        alert: bool,
    },
    /// The customer's address bounced.
    Undeliverable { address: String, reason: String },
    /// A promised update is near and nobody has written the news since the last one.
    PromiseAtRisk,
    /// The promised update is due (the scheduler sends it `lead` before the promise).
    ProgressDue,
    /// The check-back after resolution is due.
    CheckBackDue,
    /// A resolved incident nobody answered after the check-back closes.
    CloseDue,
    /// An open incident has had no staff note for `[escalation] after_no_note`.
    QuietTooLong,
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

/// Why an action was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("incident {number} is {state}; cannot {action} it ({hint})")]
    Transition {
        number: IncidentNo,
        state: State,
        action: &'static str,
        hint: &'static str,
    },
    #[error(
        "a resolution must say what went wrong and what will stop it happening again: \
         give {} (in a staff mail: `Root cause:` and `Prevention:` paragraphs after #resolve)",
        .0.join(" and ")
    )]
    ResolutionIncomplete(Vec<&'static str>),
    #[error("{0}")]
    Invalid(String),
}

/// The values a new incident's row starts with: its first promise one default cadence on.
pub fn opening(config: &Config, now: DateTime<Utc>) -> clock::Promise {
    config.cadence.promise(now, config.cadence.default)
}

/// Decides what `event` means for the incident in `facts`.
pub fn decide(
    facts: &Facts,
    event: &Event,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Effects, Refusal> {
    let mut d = Decision {
        facts,
        config,
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
            d.staff(Actor::Staff(by.clone()), action, None)?
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
                None => d.staff_reply(*message, by, name, mail, *attachments, *pending),
            }
        }
        Event::StaffCorrespondence { message, by, text } => {
            d.staff_correspondence(*message, by, text)
        }
        Event::ForgedStaffReply {
            message,
            claimed,
            why,
            written,
            alert,
        } => d.forged(*message, claimed, why, written, *alert),
        Event::Undeliverable { address, reason } => d.undeliverable(address, reason),
        Event::PromiseAtRisk => d.promise_at_risk(),
        Event::ProgressDue => d.progress_due(),
        Event::CheckBackDue => d.check_back_due(),
        Event::CloseDue => {
            // The scheduler only asks for resolved incidents; anything else changed meanwhile.
            if d.incident.state == State::Resolved {
                d.close(&Actor::Daemon);
            }
        }
        Event::QuietTooLong => {
            if d.incident.state == State::Open && d.incident.escalated_at.is_none() {
                let reason = d.quiet_for();
                d.escalate(&reason);
            }
        }
    }
    Ok(d.fx)
}

/// A decision in progress: `incident` is the incident as the effects so far leave it, so each
/// step sees what the ones before it changed.
struct Decision<'a> {
    facts: &'a Facts,
    config: &'a Config,
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
    fn require(
        &self,
        states: &[State],
        action: &'static str,
        hint: &'static str,
    ) -> Result<(), Refusal> {
        if states.contains(&self.incident.state) {
            Ok(())
        } else {
            Err(Refusal::Transition {
                number: self.incident.number,
                state: self.incident.state,
                action,
                hint,
            })
        }
    }

    fn promise(&self, from: DateTime<Utc>) -> clock::Promise {
        self.config.cadence.promise(from, self.incident.cadence)
    }

    fn set_state(&mut self, state: State) {
        self.incident.state = state;
        self.fx.push(Effect::State(state));
    }

    fn set_next_update(&mut self, at: Option<DateTime<Utc>>) {
        self.incident.next_update_at = at;
        self.fx.push(Effect::NextUpdate(at));
    }

    fn clear_check_back(&mut self) {
        self.incident.check_back_at = None;
        self.incident.close_at = None;
        self.fx.push(Effect::CheckBack {
            check_back_at: None,
            close_at: None,
        });
    }

    /// Settles the open promises as an update goes out now; returns how many were breached.
    fn settle_promises(&mut self) -> usize {
        self.fx.push(Effect::SettlePromises);
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
            self.config,
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
        self.fx.push(Effect::Mail(mail));
    }

    /// The customer mail just decided carries the attachments of `message` (a staff reply's).
    fn attach_to_last_mail(&mut self, message: MessageRow) {
        if let Some(Effect::Mail(mail)) = self.fx.list.last_mut() {
            mail.attachments_from = Some(message);
        }
    }

    /// When the customer sent something we have not written back about since ("Tuesday").
    fn thanks_for(&self) -> String {
        match (
            self.incident.customer_wrote_at,
            self.incident.told_customer_at,
        ) {
            (Some(theirs), ours) if ours.is_none_or(|o| theirs > o) => crate::lang::weekday(
                theirs,
                self.config.cadence.timezone,
                &letters::language(&self.incident, self.config),
            ),
            _ => String::new(),
        }
    }

    /// A notification to staff: to `[staff] notify` (or the members), threaded in the staff's
    /// own thread about this incident. Never counted against a customer's send caps.
    fn notify_staff(
        &mut self,
        kind: MailKind,
        caused_by: Option<MessageRow>,
        shape: impl Fn(&mut MailData),
    ) {
        let recipients = self.config.staff.recipients().to_vec();
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
        let customer_lang = letters::language(&self.incident, self.config);
        let mut seen_by_staff = self.incident.clone();
        seen_by_staff.lang = Some(self.config.language.default.clone());
        let mut data =
            letters::mail_data(&seen_by_staff, self.config, self.incident.next_update_at);
        data.lang = String::new();
        data.note = self
            .facts
            .latest_note
            .as_ref()
            .map(|n| n.text.clone())
            .unwrap_or_default();
        shape(&mut data);
        if customer_lang != self.config.language.default {
            data.staff.language = customer_lang;
        }
        data.staff.recurring_reason = self.incident.recurring_reason.clone().unwrap_or_default();
        let (in_reply_to, references) = self.facts.staff_conversation.threading();
        for to in recipients {
            self.fx.push(Effect::Mail(Box::new(Mail {
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
                attachments_from: None,
                staff_by: None,
            })));
        }
    }

    // --- A new complaint ---------------------------------------------------------------------

    fn opened(&mut self, opening: &Opening) {
        let daemon = Actor::Daemon;
        let from = &opening.from.address;
        self.fx.push(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(opening.message),
            kind: EventKind::IncidentOpened,
            actor: daemon.clone(),
            detail: match opening.other_from.as_slice() {
                [] => format!("opened by {from}: {}", self.incident.subject),
                others => format!(
                    "opened by {from} (From also named {}; answered at {from} only): {}",
                    others.join(", "),
                    self.incident.subject
                ),
            },
        }));
        if !opening.stranger_to.is_empty() {
            self.fx.push(Effect::Event(NewEvent {
                incident: Some(self.incident.number),
                message: Some(opening.message),
                kind: EventKind::StrangerReference,
                actor: daemon.clone(),
                detail: format!(
                    "{from} pointed at incident {} but is not a participant there; opened this \
                     incident instead",
                    incident_list(&opening.stranger_to)
                ),
            }));
        }
        if let (Some(repeat), None) = (&opening.repeats, opening.continues) {
            // The same customer again, soon after: the same problem as far as they are
            // concerned, so the mails own it ("the second time in three days").
            let count = repeat.count.max(1) + 1;
            self.incident.previous_incident = Some(repeat.previous);
            self.incident.previous_opened_at = Some(repeat.opened_at);
            self.incident.repeat_count = count;
            self.incident.recurring = true;
            self.fx.push(Effect::PreviousIncident(repeat.previous));
            self.fx.push(Effect::Repeats {
                count,
                previous_opened_at: repeat.opened_at,
            });
            let reason = format!(
                "{from} wrote again within {} of incident #{} (opened {} earlier): the {} time",
                human_duration(self.config.recurring.link_within),
                repeat.previous,
                letters::since_words(self.now - repeat.opened_at, "en"),
                letters::ordinal(count, "en")
            );
            self.fx.push(Effect::Recurring {
                incident: self.incident.number,
                reason: reason.clone(),
            });
            self.fx.log(EventKind::Recurring, &daemon, reason);
        } else if opening.customer_incidents_in_window >= self.config.recurring.incidents {
            self.incident.recurring = true;
            let reason = format!(
                "{from} has opened {} incidents within {}",
                opening.customer_incidents_in_window,
                human_duration(self.config.recurring.window)
            );
            self.fx.push(Effect::Recurring {
                incident: self.incident.number,
                reason: reason.clone(),
            });
            self.fx.log(EventKind::Recurring, &daemon, reason);
        }
        let promise = opening.promise;
        match opening.continues {
            Some(previous) => {
                self.incident.previous_incident = Some(previous);
                self.fx.push(Effect::PreviousIncident(previous));
                self.fx.push(Effect::Event(NewEvent {
                    incident: Some(self.incident.number),
                    message: Some(opening.message),
                    kind: EventKind::Continues,
                    actor: daemon.clone(),
                    detail: format!(
                        "continues incident #{previous}, resolved too long ago to reopen"
                    ),
                }));
                self.fx.push(Effect::Event(NewEvent {
                    incident: Some(previous),
                    message: Some(opening.message),
                    kind: EventKind::Continued,
                    actor: daemon,
                    detail: format!("a late reply opened incident #{}", self.incident.number),
                }));
                self.mail_customer(
                    MailKind::Reopened,
                    Some(promise.at),
                    Some(opening.message),
                    |d| d.window_moved = promise.moved_by_window,
                );
            }
            None => self.acknowledge(opening),
        }
        let customer = self.incident.customer_display();
        let mut written = opening.written.clone();
        if policy::for_incident(&self.incident, &self.config.trust) != Treatment::Full {
            written.trust.push_str(
                ". They were answered plainly, without a word of what they wrote, and cannot set \
                 the pace; reply to this mail or act on the incident to answer them in full",
            );
        }
        let previous = opening.continues;
        let kind = if previous.is_some() {
            MailKind::StaffReopened
        } else {
            MailKind::StaffNew
        };
        self.notify_staff(kind, Some(opening.message), |d| {
            d.staff = StaffData {
                reason: match previous {
                    Some(p) => format!("a late reply to incident {p} opened it"),
                    None => String::new(),
                },
                from: customer.clone(),
                text: written.text.clone(),
                signature: written.signature.clone(),
                attachments: written.attachments.clone(),
                trust: written.trust.clone(),
                ..StaffData::default()
            };
        });
    }

    /// The acknowledgement: to the incident's reply address (chosen when it opened, see
    /// [`policy::reply_address`]); never to us.
    fn acknowledge(&mut self, opening: &Opening) {
        let to = Recipient::customer_of(&self.incident);
        if self.config.support.is_own_address(&to.address) {
            self.fx.push(Effect::Event(NewEvent {
                incident: Some(self.incident.number),
                message: Some(opening.message),
                kind: EventKind::AcknowledgementSkipped,
                actor: Actor::Daemon,
                detail: format!(
                    "the reply address {} is our own; acknowledging would mail ourselves",
                    to.address
                ),
            }));
            return;
        }
        let promise = opening.promise;
        let facts = crate::mail::facts::find(&opening.written.text, &self.config.wording.facts);
        self.mail_to(
            MailKind::Acknowledgement,
            to,
            Some(promise.at),
            Some(opening.message),
            |d| {
                d.window_moved = promise.moved_by_window;
                d.facts = facts;
            },
        );
    }

    /// The first staff member to act on an incident vouches for its customer: from then on
    /// it is answered in full (see [`policy`]).
    fn vouch(&mut self, by: &str) {
        if self.incident.vouched_by.is_some() {
            return;
        }
        if policy::unproven(&self.incident) {
            self.fx.log(
                EventKind::Vouched,
                &Actor::Staff(by.to_string()),
                "acted on the incident: its customer is answered in full from now on",
            );
        }
        self.incident.vouched_by = Some(by.to_string());
        self.fx.push(Effect::Vouched(by.to_string()));
    }

    // --- The customer replies ----------------------------------------------------------------

    /// After resolution the incident reopens and they are told so. Otherwise: asking for news
    /// or for a pace gets the status at once; asking us to stop ends the automatic updates
    /// (confirmed once); anything else goes to staff and nothing automatic goes back (the next
    /// update thanks them for it). While waiting on them, their reply resumes the updates.
    /// Staff see every reply.
    fn customer_reply(&mut self, message: MessageRow, from: &str, trust: Trust, written: &Written) {
        let who = Actor::Customer(from.to_string());
        self.incident.customer_wrote_at = Some(self.now);
        self.fx.push(Effect::CustomerWrote);
        let is_customer = [
            &self.incident.customer_address,
            &self.incident.reply_address,
        ]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(from));
        if trust == Trust::Verified && is_customer && self.incident.sender_trust != Trust::Verified
        {
            self.incident.sender_trust = Trust::Verified;
            self.fx.push(Effect::SenderTrust(Trust::Verified));
            self.fx.log(
                EventKind::SenderVerified,
                &who,
                "the receiving server verified the customer's mail; they are answered in full",
            );
        }
        if !written.unsure.is_empty() {
            // Reading a pace, a stop or a "yes, fixed" out of words that may be ours would act
            // on what we said, not on what they asked: a person reads it.
            self.fx.log(
                EventKind::ReplyUnclear,
                &who,
                format!(
                    "not acted on: unsure which words of the reply are theirs ({})",
                    written.unsure
                ),
            );
            let reason = format!(
                "The customer replied, but we could not tell with confidence which words are \
                 theirs ({}); nothing was done automatically. Read their mail and act on it",
                written.unsure
            );
            self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
            return;
        }
        let proven = policy::for_sender(trust, &self.config.trust) == Treatment::Full;
        let replies = &self.config.replies;
        let intent = replies::read(&written.text, &replies.news_phrases, &replies.stop_phrases);
        let pace_request = pace::read(&written.text);
        let asked_pace = pace_request.cadence();
        // Anyone can write as the customer: only a proven sender sets the pace (a faster one
        // would send more mail to whoever the address really is). Asking for less is safe.
        let pace = asked_pace.filter(|_| proven);
        let mut reason = match (&pace_request, asked_pace) {
            (_, Some(wanted)) if !proven => format!(
                "The customer asked for updates {}; not applied, the sender could not be \
                 verified ({trust}); set it with `followupd incident cadence` if it was them",
                pace::in_words(wanted, "en")
            ),
            (pace::PaceRequest::Unclear(sentence), _) => format!(
                "The customer wrote about how often we write (\"{sentence}\") but asked for no \
                 pace we can apply; updates stay {}. Set one with `followupd incident cadence \
                 {} DURATION` or reply with `#cadence DURATION`",
                pace::in_words(self.incident.cadence, "en"),
                self.incident.number
            ),
            _ => "The customer replied".to_string(),
        };
        if self.incident.state == State::Resolved
            && self.check_back_answered(&who, message, from, written, proven)
        {
            return;
        }
        if self.incident.state.is_over() {
            self.reopen(&who, Some(message));
            self.notify_reply(
                MailKind::StaffReopened,
                message,
                from,
                written,
                "they replied after the resolution",
            );
            return;
        }
        let resumed = self.incident.state == State::Waiting;
        if resumed {
            self.resume(&who);
            reason = "The customer answered while we waited on them; updates resume".into();
        }
        // "Please don't email me every hour" is about the pace, not a request to stop.
        let stop = intent.stop_updates && pace_request == pace::PaceRequest::Nothing;
        if stop {
            reason = "The customer asked for no more automatic updates".into();
            if !self.incident.updates_stopped {
                self.stop_updates(&who);
                let note = self.latest_note_text();
                self.mail_customer(MailKind::Status, None, Some(message), |d| {
                    d.note = note;
                    d.updates_stopped = true;
                });
            }
        } else if let Some(wanted) = pace {
            self.set_cadence(&who, wanted);
            reason = format!(
                "The customer asked for updates {}",
                pace::in_words(self.incident.cadence, "en")
            );
            self.status_answer(message, |d| d.cadence_changed = true);
        } else if intent.asks_for_news || resumed || asked_pace.is_some() {
            if intent.asks_for_news && asked_pace.is_none() {
                let unclear = std::mem::take(&mut reason);
                reason = "The customer asked for news (answered with the status)".into();
                if matches!(pace_request, pace::PaceRequest::Unclear(_)) {
                    reason = format!("{reason}. {unclear}");
                }
            }
            let thanks = if resumed {
                self.thanks_for()
            } else {
                String::new()
            };
            self.status_answer(message, |d| {
                d.thanks_for = thanks;
                d.resumed = resumed;
            });
        }
        self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
    }

    /// A reply after the fix that answers "is it working now?": a yes closes the incident with
    /// a short thank-you, a rating alone is recorded; a no (or anything else) reopens it, as
    /// any reply after resolution does. True when the reply was handled here.
    fn check_back_answered(
        &mut self,
        who: &Actor,
        message: MessageRow,
        from: &str,
        written: &Written,
        proven: bool,
    ) -> bool {
        let answer = replies::check_back_answer(&written.text);
        if answer.fixed.is_some() || answer.rating.is_some() {
            self.fx.push(Effect::CheckBackAnswer {
                message,
                fixed: answer.fixed,
                rating: answer.rating,
            });
        }
        let rated = answer
            .rating
            .map(|r| format!(" and rated us {r} of 5"))
            .unwrap_or_default();
        match answer.fixed {
            // Anyone can write as the customer: a "yes" from a sender nobody proved closes
            // nothing (a "no" reopens, which is safe); staff decide.
            Some(true) if !proven => {
                let reason = format!(
                    "Someone writing as the customer said it works{rated}, but the sender could \
                     not be verified; the incident stays resolved. Close it with `followupd \
                     incident close` if it was them"
                );
                self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
                true
            }
            Some(true) => {
                self.close(who);
                let rating = i64::from(answer.rating.unwrap_or(0));
                self.mail_customer(MailKind::ThankYou, None, Some(message), |d| {
                    d.rating = rating;
                });
                let reason =
                    format!("The customer confirmed it works{rated}; the incident is closed");
                self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
                true
            }
            // A thank-you for the fix is not news that it broke: it stays resolved.
            None if answer.thanks_only => {
                let reason = "The customer thanked us; the incident stays resolved";
                self.notify_reply(MailKind::StaffReply, message, from, written, reason);
                true
            }
            None if answer.rating.is_some() => {
                self.fx.log(
                    EventKind::CustomerReply,
                    who,
                    format!("rated the handling {} of 5", answer.rating.unwrap_or(0)),
                );
                let reason = format!("The customer{rated}; the incident stays resolved");
                self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
                true
            }
            _ => false,
        }
    }

    fn latest_note_text(&self) -> String {
        self.facts
            .latest_note
            .as_ref()
            .filter(|n| n.visibility == NoteVisibility::Customer)
            .map(|n| n.text.clone())
            .unwrap_or_default()
    }

    /// The status at once: the latest note and the next promised update.
    fn status_answer(&mut self, message: MessageRow, shape: impl FnOnce(&mut MailData)) {
        let note = self.latest_note_text();
        let promise = self
            .incident
            .next_update_at
            .filter(|_| !self.incident.updates_stopped);
        self.mail_customer(MailKind::Status, promise, Some(message), |d| {
            d.note = note;
            d.updates_stopped = false;
            shape(d);
        });
    }

    fn notify_reply(
        &mut self,
        kind: MailKind,
        message: MessageRow,
        from: &str,
        written: &Written,
        reason: &str,
    ) {
        let from = if from.eq_ignore_ascii_case(&self.incident.customer_address) {
            self.incident.customer_display()
        } else {
            from.to_string()
        };
        let written = written.clone();
        let reason = reason.to_string();
        self.notify_staff(kind, Some(message), |d| {
            d.staff = StaffData {
                reason: reason.clone(),
                from: from.clone(),
                text: written.text.clone(),
                signature: written.signature.clone(),
                attachments: written.attachments.clone(),
                trust: written.trust.clone(),
                ..StaffData::default()
            };
        });
    }

    /// A reply `[trust]` kept for staff: nothing changes, nothing goes to the customer; staff
    /// are told on the incident's thread.
    fn held_reply(&mut self, message: MessageRow, from: &str, why: &str, written: &Written) {
        self.fx.push(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::HeldForStaff,
            actor: Actor::Daemon,
            detail: format!("a reply from {from} was held: {why}"),
        }));
        let reason = format!(
            "A reply from {from} was held and nothing was done with it: {why}. If it was \
             really them, answer them yourself"
        );
        self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
    }

    /// No more automatic updates for this incident; the resolution still goes out.
    fn stop_updates(&mut self, who: &Actor) {
        self.incident.updates_stopped = true;
        self.fx.push(Effect::StopUpdates(true));
        self.settle_promises();
        self.set_next_update(None);
        self.fx.log(
            EventKind::UpdatesStopped,
            who,
            "asked for no more automatic updates; the resolution will still be sent",
        );
    }

    // --- Staff actions -----------------------------------------------------------------------

    /// A staff action. `note_by` is the name a note is signed with in the customer's mail.
    /// A staff action; the customer mail it causes carries the member's words, so no send
    /// cap holds it back (see [`Mail::staff_by`]).
    fn staff(
        &mut self,
        who: Actor,
        action: &StaffAction,
        note_by: Option<&str>,
    ) -> Result<(), Refusal> {
        let from = self.fx.list.len();
        let done = self.staff_action(who.clone(), action, note_by);
        if let (Ok(()), Actor::Staff(member)) = (&done, &who) {
            for effect in self.fx.list.iter_mut().skip(from) {
                if let Effect::Mail(mail) = effect {
                    if mail.kind.audience() == super::Audience::Customer {
                        mail.staff_by = Some(member.clone());
                    }
                }
            }
        }
        done
    }

    fn staff_action(
        &mut self,
        who: Actor,
        action: &StaffAction,
        note_by: Option<&str>,
    ) -> Result<(), Refusal> {
        match action {
            StaffAction::Note(text) => self.note(&who, text, note_by.unwrap_or("")),
            StaffAction::Cadence(wanted) => {
                self.require(
                    &[State::Open, State::Waiting],
                    "change the cadence of",
                    "there are no more updates after resolution",
                )?;
                self.set_cadence(&who, *wanted);
                Ok(())
            }
            StaffAction::Wait(what) => {
                self.require(
                    &[State::Open],
                    "wait on",
                    "only an open incident can wait on the customer",
                )?;
                // Waiting in silence would leave the customer waiting on us: they must be told
                // what we need, so a reason is required.
                let what = what.trim();
                if what.is_empty() {
                    return Err(Refusal::Invalid(
                        "waiting on the customer needs what we need from them, like `--reason \
                         \"the serial number on the back of the device\"`: they are told"
                            .into(),
                    ));
                }
                self.set_state(State::Waiting);
                // Waiting on them is no broken promise: what they held is settled as kept if
                // its time has not come, and none is made until we resume.
                self.settle_promises();
                self.set_next_update(None);
                self.fx.log(
                    EventKind::Waiting,
                    &who,
                    format!("waiting on the customer for: {what}; updates paused"),
                );
                let w = what.to_string();
                self.mail_customer(MailKind::Waiting, None, None, |d| d.waiting_for = w);
                Ok(())
            }
            StaffAction::Resume => {
                self.require(
                    &[State::Waiting],
                    "resume",
                    "only a waiting incident can be resumed",
                )?;
                self.resume(&who);
                // The customer is told we carry on, and when they hear from us next: a promise
                // they were given, so it can be kept or breached.
                let next = self.incident.next_update_at;
                let moved = self.resumed_moved;
                let note = self.latest_note_text();
                self.mail_customer(MailKind::Status, next, None, |d| {
                    d.resumed = true;
                    d.note = note;
                    d.window_moved = moved;
                });
                Ok(())
            }
            StaffAction::Resolve(resolution) => self.resolve(&who, resolution),
            StaffAction::Close => {
                self.require(
                    &[State::Open, State::Waiting, State::Resolved],
                    "close",
                    "it is already closed",
                )?;
                self.close(&who);
                Ok(())
            }
            StaffAction::Reopen => {
                self.require(
                    &[State::Resolved, State::Closed],
                    "reopen",
                    "only a resolved or closed incident can be reopened",
                )?;
                self.reopen(&who, None);
                Ok(())
            }
            StaffAction::Tag {
                label,
                tagged_in_window,
            } => self.tag(&who, label, tagged_in_window),
            StaffAction::Lang(code) => {
                let Some(lang) = crate::lang::normalise(code) else {
                    return Err(Refusal::Invalid(format!(
                        "`{code}` is not a language code like `de` or `en`"
                    )));
                };
                self.incident.lang = Some(lang.clone());
                self.fx.push(Effect::Lang(lang.clone()));
                self.fx.log(
                    EventKind::LanguageSet,
                    &who,
                    format!("answered in `{lang}` from now on"),
                );
                Ok(())
            }
            StaffAction::Assign(member) => {
                if self.incident.assigned_to.as_deref() != Some(member.as_str()) {
                    self.incident.assigned_to = Some(member.clone());
                    self.fx.push(Effect::Assign(member.clone()));
                    self.fx
                        .log(EventKind::Assigned, &who, format!("assigned to {member}"));
                }
                Ok(())
            }
        }
    }

    // --- Staff by mail --------------------------------------------------------------------

    /// A staff reply to a notification: its commands, then its words for the customer (or an
    /// internal note). If any command is refused, nothing is done and nothing goes to the
    /// customer: the staff member is told why.
    fn staff_reply(
        &mut self,
        message: MessageRow,
        by: &str,
        name: &str,
        mail: &StaffMail,
        attachments: bool,
        pending: Option<i64>,
    ) {
        let who = Actor::Staff(by.to_string());
        let before = (self.incident.clone(), self.fx.list.len());
        self.staff_greeting = mail.greeting.clone();
        let acted = if mail.send && pending.is_none() {
            Err(vec![format!(
                "#send: no reply of yours about incident {} is waiting to be sent",
                self.incident.number
            )])
        } else {
            self.staff_mail_actions(&who, name, mail, message, attachments)
        };
        self.staff_greeting = None;
        match acted {
            Ok(()) => {
                if let Some(held) = pending {
                    // Sent as shown (`#send`), or replaced by the reply just acted on.
                    self.fx.push(Effect::ReleaseReply(held));
                    if mail.send {
                        self.fx.push(Effect::Event(NewEvent {
                            incident: Some(self.incident.number),
                            message: Some(message),
                            kind: EventKind::StaffReplyReleased,
                            actor: who.clone(),
                            detail: "#send: the held reply was acted on as shown".into(),
                        }));
                    }
                }
            }
            Err(reasons) => {
                // Undo everything this mail would have done; only the refusal remains.
                self.incident = before.0;
                self.fx.list.truncate(before.1);
                let refusal = reasons.join("\n");
                self.fx.push(Effect::Event(NewEvent {
                    incident: Some(self.incident.number),
                    message: Some(message),
                    kind: EventKind::StaffCommandRefused,
                    actor: who.clone(),
                    detail: refusal.replace('\n', "; "),
                }));
                let member = by.to_string();
                self.staff_mail(
                    MailKind::StaffRefused,
                    std::slice::from_ref(&member),
                    Some(message),
                    |d| {
                        d.staff = StaffData {
                            member: member.clone(),
                            refusal: refusal.clone(),
                            ..StaffData::default()
                        };
                    },
                );
            }
        }
    }

    /// A staff reply whose words cannot go to the customer as read: nothing is done, its words
    /// are kept, and its author is told what was found and how to send it.
    fn hold_staff_reply(
        &mut self,
        message: MessageRow,
        by: &str,
        mail: &StaffMail,
        held: &HeldData,
        pending: Option<i64>,
    ) {
        let member = by.to_string();
        let why = if held.all_quote {
            "no words of the writer's own, only quoted text".to_string()
        } else if held.staff_only {
            format!("it carries staff-only text: {}", held.found.join(" / "))
        } else {
            format!("unsure which words are the writer's: {}", held.unsure)
        };
        if let Some(old) = pending {
            self.fx.push(Effect::ReleaseReply(old));
        }
        self.fx.push(Effect::HoldReply {
            message,
            member: member.clone(),
            text: mail.body.clone(),
            greeting: mail.greeting.clone(),
            reason: why.clone(),
        });
        self.fx.push(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::StaffReplyHeld,
            actor: Actor::Daemon,
            detail: format!("the reply from {member} was not sent to the customer: {why}"),
        }));
        let (text, held) = (mail.text.clone(), held.clone());
        self.staff_mail(
            MailKind::StaffHeld,
            std::slice::from_ref(&member),
            Some(message),
            |d| {
                d.staff = StaffData {
                    member: member.clone(),
                    text: text.clone(),
                    held: held.clone(),
                    ..StaffData::default()
                };
            },
        );
    }

    fn staff_mail_actions(
        &mut self,
        who: &Actor,
        name: &str,
        mail: &StaffMail,
        message: MessageRow,
        attachments: bool,
    ) -> Result<(), Vec<String>> {
        let mut refused = Vec::new();
        let mut closing = false;
        let mut waiting_for = None;
        let mut resolving = false;
        for command in &mail.commands {
            let action = match command {
                Command::Resolve(r) => {
                    resolving = true;
                    StaffAction::Resolve(r.clone())
                }
                Command::Wait(w) => {
                    waiting_for = Some(w.clone());
                    continue;
                }
                Command::Resume => StaffAction::Resume,
                Command::Cadence(d) => StaffAction::Cadence(*d),
                Command::Close => {
                    closing = true;
                    continue;
                }
                Command::Reopen => StaffAction::Reopen,
                Command::Tag(label) => StaffAction::Tag {
                    label: label.clone(),
                    tagged_in_window: Vec::new(),
                },
                Command::Assign => StaffAction::Assign(who.name()),
                Command::Unreadable { line, why } => {
                    refused.push(format!("{line}: {why}"));
                    continue;
                }
            };
            if let Err(e) = self.staff(who.clone(), &action, None) {
                refused.push(e.to_string());
            }
        }
        let text = mail.text.trim();
        if mail.internal {
            if !text.is_empty() {
                self.internal_note(who, text, NoteVisibility::Internal, message);
            }
        } else if waiting_for
            .as_ref()
            .is_some_and(|w| w.trim().is_empty() && text.is_empty())
        {
            refused.push(
                "#wait needs what we need from the customer, like `#wait the serial number on \
                 the back of the device`"
                    .into(),
            );
        } else if let Some(w) = waiting_for {
            // What we need goes to the customer in the waiting mail, with the words after it.
            let what = [w.trim(), text]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("\n\n");
            if let Err(e) = self.staff(who.clone(), &StaffAction::Wait(what), None) {
                refused.push(e.to_string());
            }
        } else if !text.is_empty() && !resolving {
            match self.staff(
                who.clone(),
                &StaffAction::Note(text.to_string()),
                Some(name),
            ) {
                Ok(()) if attachments => self.attach_to_last_mail(message),
                Ok(()) => {}
                Err(e) => refused.push(e.to_string()),
            }
        }
        if closing {
            if let Err(e) = self.staff(who.clone(), &StaffAction::Close, None) {
                refused.push(e.to_string());
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(refused)
        }
    }

    /// A note staff keep among themselves, or staff mail the customer already has: on record,
    /// not relayed. Both show staff are on it (escalation re-arms).
    fn internal_note(
        &mut self,
        who: &Actor,
        text: &str,
        visibility: NoteVisibility,
        message: MessageRow,
    ) {
        self.fx.push(Effect::Note {
            author: who.name(),
            text: text.to_string(),
            visibility,
        });
        self.incident.last_note_at = Some(self.now);
        self.fx.push(Effect::Escalated(None));
        self.incident.escalated_at = None;
        self.fx.push(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::NoteAdded,
            actor: who.clone(),
            detail: match visibility {
                NoteVisibility::Internal => format!("internal: {text}"),
                _ => format!("wrote to the customer directly: {text}"),
            },
        }));
    }

    /// Staff wrote to the customer directly: that was news, so the cadence clock restarts.
    fn staff_correspondence(&mut self, message: MessageRow, by: &str, text: &str) {
        let who = Actor::Staff(by.to_string());
        self.internal_note(&who, text, NoteVisibility::Correspondence, message);
        self.fx.push(Effect::UpdatesWithoutNews(0));
        if self.incident.state == State::Open && !self.incident.updates_stopped {
            let next = self.promise(self.now);
            self.settle_promises();
            self.set_next_update(Some(next.at));
        }
    }

    /// Someone wrote as a staff member without the proof a real reply carries: kept for staff
    /// (by intake), and staff are told. Nothing else happens.
    fn forged(
        &mut self,
        message: MessageRow,
        claimed: &str,
        why: &str,
        written: &Written,
        alert: bool,
    ) {
        self.fx.push(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::ForgedStaffReply,
            actor: Actor::Daemon,
            detail: format!(
                "mail from {claimed} not accepted as a staff reply: {why}{}",
                if alert {
                    ""
                } else {
                    " (staff not mailed again: enough alerts today)"
                }
            ),
        }));
        if !alert {
            return;
        }
        // A forger's words reach every member: only a short excerpt, on one line, with the
        // whole mail in quarantine for whoever wants to read it.
        let excerpt = crate::mail::header_safe(&written.text, FORGED_EXCERPT);
        let (claimed, why, written) = (claimed.to_string(), why.to_string(), written.clone());
        self.notify_staff(MailKind::StaffForged, Some(message), |d| {
            d.staff = StaffData {
                reason: why.clone(),
                member: claimed.clone(),
                from: claimed.clone(),
                text: excerpt.clone(),
                attachments: written.attachments.clone(),
                trust: written.trust.clone(),
                ..StaffData::default()
            };
        });
    }

    fn undeliverable(&mut self, address: &str, reason: &str) {
        let reason = reason.to_string();
        let address = address.to_string();
        self.notify_staff(MailKind::StaffUndeliverable, None, |d| {
            d.staff = StaffData {
                reason: reason.clone(),
                from: address.clone(),
                ..StaffData::default()
            };
        });
    }

    /// "Ann was promised an update by 14:00; reply with the news": once per promise, and only
    /// when no staff note came since the last promise.
    fn promise_at_risk(&mut self) {
        let Some(promised) = self.incident.next_update_at else {
            return;
        };
        if self.incident.state != State::Open
            || self.incident.updates_stopped
            || self.incident.at_risk_warned_for == Some(promised)
            || clock::before(promised, self.config.staff.at_risk_before) > self.now
        {
            return;
        }
        self.incident.at_risk_warned_for = Some(promised);
        self.fx.push(Effect::AtRiskWarned(promised));
        if self
            .facts
            .unheard_note
            .as_ref()
            .is_some_and(|n| n.visibility == NoteVisibility::Customer)
        {
            return;
        }
        self.fx.log(
            EventKind::PromiseAtRisk,
            &Actor::Daemon,
            format!(
                "no news written for the update promised by {}",
                stamp(promised)
            ),
        );
        self.notify_staff(MailKind::StaffAtRisk, None, |_| {});
    }

    /// A note goes to the customer now in a progress update (signed `note_by`, when given),
    /// and the cadence clock restarts.
    fn note(&mut self, who: &Actor, text: &str, note_by: &str) -> Result<(), Refusal> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Refusal::Invalid("the note is empty".into()));
        }
        self.require(
            &[State::Open],
            "send a note on",
            "notes go to the customer on open incidents; `resume` or `reopen` it first",
        )?;
        self.fx.push(Effect::Note {
            author: who.name(),
            text: text.to_string(),
            visibility: NoteVisibility::Customer,
        });
        self.incident.last_note_at = Some(self.now);
        self.fx.log(EventKind::NoteAdded, who, text);
        self.fx.push(Effect::UpdatesWithoutNews(0));
        self.fx.push(Effect::Escalated(None));
        let promise = self.promise(self.now);
        self.settle_promises();
        self.set_next_update(Some(promise.at));
        let text = text.to_string();
        let note_by = note_by.to_string();
        let promise_at = Some(promise.at).filter(|_| !self.incident.updates_stopped);
        self.mail_customer(MailKind::Progress, promise_at, None, |d| {
            d.note = text;
            d.note_by = note_by;
            d.window_moved = promise.moved_by_window;
        });
        Ok(())
    }

    /// Clamped to the configured bounds. A shorter cadence brings the next update forward; a
    /// longer one never postpones an update already promised.
    fn set_cadence(&mut self, who: &Actor, wanted: Duration) {
        let bounds = &self.config.cadence;
        let cadence = bounds.clamp(wanted);
        self.incident.cadence = cadence;
        self.fx.push(Effect::Cadence(cadence));
        let sooner = self.promise(self.now).at;
        if self.incident.next_update_at.is_none_or(|c| sooner < c) {
            self.set_next_update(Some(sooner));
        }
        let clamped = if cadence == wanted {
            String::new()
        } else {
            format!(
                " (asked for {}, kept within {}–{})",
                human_duration(wanted),
                human_duration(bounds.min),
                human_duration(bounds.max)
            )
        };
        self.fx.log(
            EventKind::CadenceChanged,
            who,
            format!("updates every {}{clamped}", human_duration(cadence)),
        );
    }

    /// Updates start again, the next one a cadence from now.
    fn resume(&mut self, who: &Actor) {
        let next = self.promise(self.now);
        self.resumed_moved = next.moved_by_window;
        self.set_state(State::Open);
        self.set_next_update(Some(next.at));
        self.fx.log(EventKind::Resumed, who, "updates resume");
    }

    /// Refused without a root cause and a prevention. Sends the resolution mail; the
    /// check-back follows.
    fn resolve(&mut self, who: &Actor, resolution: &Resolution) -> Result<(), Refusal> {
        let mut missing = Vec::new();
        if resolution.root_cause.trim().is_empty() {
            missing.push("--root-cause");
        }
        if resolution.prevention.trim().is_empty() {
            missing.push("--prevention");
        }
        if !missing.is_empty() {
            return Err(Refusal::ResolutionIncomplete(missing));
        }
        self.require(&[State::Open, State::Waiting], "resolve", "reopen it first")?;
        let resolution = Resolution {
            root_cause: resolution.root_cause.trim().to_string(),
            prevention: resolution.prevention.trim().to_string(),
            compensation: resolution
                .compensation
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            question: resolution
                .question
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_string),
        };
        let check_back_at = self
            .config
            .cadence
            .working_time(clock::after(self.now, self.config.cadence.check_back_after));
        // We told them it was fixed before, and it was not: the mail owns that.
        let fixed_before = self.incident.resolved_at.is_some();
        let breached = self.settle_promises();
        self.incident.state = State::Resolved;
        self.incident.resolved_at = Some(self.now);
        self.incident.check_back_at = Some(check_back_at);
        self.incident.close_at = None;
        self.incident.next_update_at = None;
        self.incident.root_cause = Some(resolution.root_cause.clone());
        self.incident.prevention = Some(resolution.prevention.clone());
        self.incident.compensation = resolution.compensation.clone();
        self.incident.check_question = resolution.question.clone();
        self.fx.log(
            EventKind::Resolved,
            who,
            format!(
                "root cause: {}; prevention: {}{}",
                resolution.root_cause,
                resolution.prevention,
                resolution
                    .compensation
                    .as_ref()
                    .map(|c| format!("; compensation: {c}"))
                    .unwrap_or_default()
            ),
        );
        self.fx.push(Effect::Resolve {
            resolution,
            check_back_at,
        });
        self.mail_customer(MailKind::Resolution, None, None, |d| {
            d.overdue = breached > 0;
            d.fixed_before = fixed_before;
        });
        Ok(())
    }

    fn close(&mut self, who: &Actor) {
        self.settle_promises();
        self.set_state(State::Closed);
        self.set_next_update(None);
        self.clear_check_back();
        self.fx.log(EventKind::Closed, who, "incident closed");
    }

    /// Open again, the customer is told so, and updates restart.
    fn reopen(&mut self, who: &Actor, caused_by: Option<MessageRow>) {
        let was = self.incident.state;
        let next = self.promise(self.now);
        self.set_state(State::Open);
        self.set_next_update(Some(next.at));
        self.clear_check_back();
        self.fx
            .log(EventKind::Reopened, who, format!("reopened (was {was})"));
        self.mail_customer(MailKind::Reopened, Some(next.at), caused_by, |d| {
            d.window_moved = next.moved_by_window;
            // `previous_incident` in this mail means "a late reply opened a new incident".
            d.previous_incident = 0;
            d.fixed_before = true;
        });
    }

    /// A one-word label. A label seen on `tag_incidents` incidents within the window marks all
    /// of them recurring.
    fn tag(
        &mut self,
        who: &Actor,
        label: &str,
        tagged_in_window: &[(IncidentNo, bool)],
    ) -> Result<(), Refusal> {
        let label = label.trim().to_lowercase();
        if label.is_empty()
            || label.chars().count() > 64
            || label.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Refusal::Invalid(format!(
                "tag `{label}`: use one word of at most 64 characters, like `shipping`"
            )));
        }
        if self.incident.tags.contains(&label) {
            return Ok(());
        }
        self.incident.tags.push(label.clone());
        self.fx.push(Effect::Tag(label.clone()));
        self.fx.log(EventKind::Tagged, who, label.clone());
        let mut tagged: Vec<(IncidentNo, bool)> = tagged_in_window
            .iter()
            .copied()
            .filter(|(n, _)| *n != self.incident.number)
            .collect();
        tagged.push((self.incident.number, self.incident.recurring));
        if tagged.len() < self.config.recurring.tag_incidents as usize {
            return Ok(());
        }
        let count = tagged.len();
        for (number, already) in tagged {
            if already {
                continue;
            }
            if number == self.incident.number {
                self.incident.recurring = true;
            }
            let reason = format!(
                "tag `{label}` is on {count} incidents within {}",
                human_duration(self.config.recurring.window)
            );
            self.fx.push(Effect::Recurring {
                incident: number,
                reason: reason.clone(),
            });
            self.fx.push(Effect::Event(NewEvent {
                incident: Some(number),
                message: None,
                kind: EventKind::Recurring,
                actor: Actor::Daemon,
                detail: reason,
            }));
        }
        Ok(())
    }

    // --- Time passes -------------------------------------------------------------------------

    /// The promised update: the newest note the customer has not heard, or an honest "still
    /// working on it"; the next promise one cadence on. An update whose time already passed
    /// (the daemon was down) goes out once, says it is late, and the breach is recorded.
    fn progress_due(&mut self) {
        if self.incident.state != State::Open || self.incident.updates_stopped {
            return;
        }
        if let Some(opening) = self.outside_window() {
            // Due while the team is away (the daemon was down over the time, or the window
            // changed): the update goes at the next opening, and says it is late if it is.
            let at = clock::after(opening, self.config.cadence.lead);
            self.set_next_update(Some(at));
            return;
        }
        let promised = self.incident.next_update_at;
        // Late only against a promise the customer was given (the ledger holds exactly those):
        // a time set without a mail (after staff wrote to them directly, say) breaks nothing.
        let overdue = self.facts.open_promises.iter().any(|due| *due < self.now);
        let note = self
            .facts
            .unheard_note
            .as_ref()
            .filter(|n| n.visibility == NoteVisibility::Customer)
            .map(|n| n.text.clone());
        let thanks = self.thanks_for();
        self.settle_promises();
        if overdue {
            let given = self.facts.open_promises.iter().min().copied();
            self.fx.log(
                EventKind::PromiseBreached,
                &Actor::Daemon,
                format!(
                    "the update promised for {} goes out late, at {}",
                    given.map(stamp).unwrap_or_default(),
                    stamp(self.now)
                ),
            );
        }
        // From the promised time when on time, so the cadence does not drift earlier by the
        // lead.
        let base = promised.filter(|p| *p > self.now).unwrap_or(self.now);
        let next = self.promise(base);
        self.set_next_update(Some(next.at));
        let no_news = if note.is_some() {
            0
        } else {
            self.incident.updates_without_news + 1
        };
        self.incident.updates_without_news = no_news;
        self.fx.push(Effect::UpdatesWithoutNews(no_news));
        let with_news = note.is_some();
        self.mail_customer(MailKind::Progress, Some(next.at), None, |d| {
            d.note = note.unwrap_or_default();
            d.overdue = overdue;
            d.window_moved = next.moved_by_window;
            d.thanks_for = thanks;
        });
        self.fx.log(
            EventKind::ProgressDue,
            &Actor::Daemon,
            format!(
                "progress update {}; next by {}",
                if with_news {
                    "with the latest note"
                } else {
                    "with no news"
                },
                stamp(next.at)
            ),
        );
        // Escalate once, when the run of updates without news reaches the limit.
        if no_news == i64::from(self.config.escalation.no_news_updates)
            && self.incident.escalated_at.is_none()
        {
            let mut reason = format!("{no_news} updates in a row went out with no news");
            if self.incident.last_note_at.is_none() {
                reason = format!("{reason}, and {}", self.quiet_for());
            }
            self.escalate(&reason);
        }
    }

    fn check_back_due(&mut self) {
        if self.incident.state != State::Resolved {
            return;
        }
        if let Some(later) = self.outside_window() {
            self.incident.check_back_at = Some(later);
            self.fx.push(Effect::CheckBack {
                check_back_at: Some(later),
                close_at: None,
            });
            return;
        }
        let close_at = self
            .config
            .cadence
            .working_time(clock::after(self.now, self.config.cadence.close_after));
        self.incident.check_back_at = None;
        self.incident.close_at = Some(close_at);
        self.fx.push(Effect::CheckBack {
            check_back_at: None,
            close_at: Some(close_at),
        });
        self.mail_customer(MailKind::CheckBack, None, None, |_| {});
        self.fx.log(
            EventKind::CheckBack,
            &Actor::Daemon,
            format!(
                "asked whether all is well; closes at {} unless the customer replies",
                stamp(close_at)
            ),
        );
    }

    /// The next opening of the sending window when now is outside it (None: mail may go now).
    fn outside_window(&self) -> Option<DateTime<Utc>> {
        let window = self.config.cadence.window.as_ref()?;
        if window.includes(self.now) {
            return None;
        }
        Some(self.config.cadence.working_time(self.now))
    }

    /// How long no staff member has written, as it really is: "no staff note since the
    /// incident opened 8 hours ago", or "no staff note for 9 hours (the last on Monday …)".
    fn quiet_for(&self) -> String {
        let tz = self.config.cadence.timezone;
        match self.incident.last_note_at {
            None => format!(
                "no staff note since the incident opened {} ago",
                elapsed(self.now - self.incident.opened_at)
            ),
            Some(last) => format!(
                "no staff note for {} (the last one {})",
                elapsed(self.now - last),
                clock::human_time(last, tz)
            ),
        }
    }

    /// Tells staff an incident needs them; it is not escalated again until a note is added.
    fn escalate(&mut self, reason: &str) {
        self.incident.escalated_at = Some(self.now);
        self.fx.push(Effect::Escalated(Some(self.now)));
        let recipients = if self.config.escalation.staff.is_empty() {
            self.config.staff.recipients().to_vec()
        } else {
            self.config.escalation.staff.clone()
        };
        if recipients.is_empty() {
            self.fx.log(
                EventKind::EscalationDue,
                &Actor::Daemon,
                format!(
                    "{reason}; no [escalation] staff or [staff] notify configured, so nobody was \
                     mailed"
                ),
            );
            return;
        }
        let quiet_since = self
            .incident
            .last_note_at
            .unwrap_or(self.incident.opened_at);
        let escalation = EscalationData {
            reason: reason.to_string(),
            customer: self.incident.customer_display(),
            updates_without_news: self.incident.updates_without_news,
            hours_without_note: (self.now - quiet_since).num_hours(),
        };
        self.fx.log(EventKind::Escalated, &Actor::Daemon, reason);
        self.staff_mail(MailKind::Escalation, &recipients, None, |d| {
            d.escalation = escalation.clone();
        });
    }
}

/// A time span as staff read it, to the hour once it is an hour or more ("8 hours",
/// "1 day 2 hours", "40 minutes").
fn elapsed(span: chrono::Duration) -> String {
    let secs = u64::try_from(span.num_seconds()).unwrap_or(0);
    let rounded = if secs >= 3600 {
        secs / 3600 * 3600
    } else {
        secs / 60 * 60
    };
    human_duration(Duration::from_secs(rounded))
}

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
            state: State::Open,
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
            next_update_at: Some(at("2026-11-23T13:00:00Z")),
            last_note_at: None,
            updates_without_news: 0,
            resolved_at: None,
            check_back_at: None,
            close_at: None,
            root_cause: None,
            prevention: None,
            compensation: None,
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
            check_question: None,
        }
    }

    pub(crate) fn at(text: &str) -> DateTime<Utc> {
        crate::clock::parse_stamp(text).expect("time")
    }

    pub(crate) const T0: &str = "2026-11-23T09:00:00Z";
}

#[cfg(test)]
mod tests {
    //! Each rule as a scenario a support lead would recognise, with a fixed clock.

    use super::tests_support::{at, T0};
    use super::*;

    fn config() -> Config {
        Config::example()
    }

    /// With a support team to notify.
    fn staffed() -> Config {
        let mut config = Config::example();
        config.staff.members = vec!["lead@example.test".into()];
        config
    }

    fn open_incident() -> Incident {
        super::tests_support::incident()
    }

    fn facts(incident: Incident) -> Facts {
        let mut f = Facts::new(
            incident,
            Conversation {
                ids: vec![
                    "ann-1@client.example.test".into(),
                    "fu.1.a.b@example.test".into(),
                ],
                thread_root: None,
            },
        );
        f.open_promises = vec![at("2026-11-23T13:00:00Z")];
        f
    }

    fn staff(action: StaffAction) -> Event {
        Event::Staff {
            by: "alice".into(),
            action,
        }
    }

    fn only_mail(fx: &Effects) -> &Mail {
        let mails: Vec<&Mail> = fx.mails().collect();
        assert_eq!(mails.len(), 1, "{fx:#?}");
        mails[0]
    }

    fn opening(message: i64) -> Opening {
        let config = config();
        Opening {
            message: MessageRow(message),
            from: Person {
                address: "ann@example.test".into(),
                name: Some("Ann Example".into()),
            },
            other_from: Vec::new(),
            promise: super::opening(&config, at(T0)),
            continues: None,
            stranger_to: Vec::new(),
            customer_incidents_in_window: 1,
            repeats: None,
            written: Written {
                text: "Every payment attempt ends with an error page.".into(),
                ..Written::default()
            },
        }
    }

    #[test]
    fn a_new_complaint_is_acknowledged_once_threaded_to_it_with_the_first_promise() {
        let f = Facts::new(
            open_incident(),
            Conversation {
                ids: vec!["ann-1@client.example.test".into()],
                thread_root: None,
            },
        );
        let fx = decide(&f, &Event::Opened(opening(5)), &config(), at(T0)).expect("decided");
        let ack = only_mail(&fx);
        assert_eq!(ack.kind, MailKind::Acknowledgement);
        assert_eq!(ack.to, "ann@example.test");
        assert_eq!(ack.promise, Some(at("2026-11-23T13:00:00Z")));
        assert_eq!(
            ack.in_reply_to.as_deref(),
            Some("ann-1@client.example.test")
        );
        assert_eq!(ack.caused_by, Some(MessageRow(5)));
        assert_eq!(ack.data.next_update, "Monday 23 November 2026, 13:00 UTC");
        assert!(fx.logs(EventKind::IncidentOpened));
    }

    #[test]
    fn the_acknowledgement_goes_to_the_reply_address_but_never_to_our_own_address() {
        let mut incident = open_incident();
        incident.reply_address = "orders@example.test".into();
        let f = Facts::new(incident.clone(), Conversation::default());
        let fx = decide(&f, &Event::Opened(opening(5)), &config(), at(T0)).expect("decided");
        assert_eq!(only_mail(&fx).to, "orders@example.test");
        incident.reply_address = "support@example.test".into();
        let f = Facts::new(incident, Conversation::default());
        let fx = decide(&f, &Event::Opened(opening(5)), &config(), at(T0)).expect("decided");
        assert_eq!(fx.mails().count(), 0);
        assert!(fx.logs(EventKind::AcknowledgementSkipped));
    }

    #[test]
    fn an_unproven_sender_gets_a_plain_acknowledgement_that_repeats_nothing_they_wrote() {
        let mut incident = open_incident();
        incident.sender_trust = Trust::Unverified;
        let f = Facts::new(incident.clone(), Conversation::default());
        let fx = decide(&f, &Event::Opened(opening(5)), &staffed(), at(T0)).expect("decided");
        let ack = fx
            .mails()
            .find(|m| m.kind == MailKind::Acknowledgement)
            .expect("ack");
        assert!(ack.data.plain && ack.unverified);
        assert_eq!(ack.data.incident.subject, "");
        assert_eq!(ack.data.incident.summary, "");
        assert_eq!(ack.data.customer.name, None);
        assert_eq!(ack.to_name, None, "not even in the To header");
        let staff = fx
            .mails()
            .find(|m| m.kind == MailKind::StaffNew)
            .expect("staff");
        assert_eq!(
            staff.data.incident.subject, incident.subject,
            "staff see everything"
        );
        // With `[trust] unverified = "full"` the same mail is whole again (still counted as
        // unproven by the caps).
        let mut full = staffed();
        full.trust.unverified = crate::config::Treatment::Full;
        let fx = decide(&f, &Event::Opened(opening(5)), &full, at(T0)).expect("decided");
        let ack = fx.mails().next().expect("ack");
        assert!(!ack.data.plain && ack.unverified);
        assert_eq!(ack.data.incident.subject, incident.subject);
    }

    #[test]
    fn an_unproven_reply_cannot_set_the_pace_but_may_stop_the_updates() {
        let mut incident = open_incident();
        incident.sender_trust = Trust::Unverified;
        let f = facts(incident);
        let reply = |text: &str, trust: Trust| Event::CustomerReply {
            message: MessageRow(7),
            from: "ann@example.test".into(),
            trust,
            written: Written {
                text: text.into(),
                ..Written::default()
            },
        };
        let now = at("2026-11-23T09:30:00Z");
        let fx = decide(
            &f,
            &reply("Update me every 30 minutes please", Trust::Unverified),
            &staffed(),
            now,
        )
        .expect("decided");
        assert!(!fx.list.iter().any(|e| matches!(e, Effect::Cadence(_))));
        let status = fx
            .mails()
            .find(|m| m.kind == MailKind::Status)
            .expect("status");
        assert!(!status.data.cadence_changed && status.data.plain);
        let staff = fx
            .mails()
            .find(|m| m.kind == MailKind::StaffReply)
            .expect("staff told");
        assert!(
            staff.data.staff.reason.contains("not applied"),
            "{}",
            staff.data.staff.reason
        );
        let fx = decide(
            &f,
            &reply("Please stop sending me these emails", Trust::Unverified),
            &config(),
            now,
        )
        .expect("decided");
        assert!(fx.list.contains(&Effect::StopUpdates(true)));
        // The customer's own verified mail proves them: answered in full from then on.
        let fx = decide(&f, &reply("Any news?", Trust::Verified), &config(), now).expect("decided");
        assert!(fx.list.contains(&Effect::SenderTrust(Trust::Verified)));
        let status = fx
            .mails()
            .find(|m| m.kind == MailKind::Status)
            .expect("status");
        assert!(!status.data.plain && !status.unverified);
    }

    #[test]
    fn a_staff_member_acting_on_an_unproven_incident_vouches_for_it() {
        let mut incident = open_incident();
        incident.sender_trust = Trust::Unverified;
        let f = facts(incident);
        let fx = decide(
            &f,
            &Event::Staff {
                by: "anna".into(),
                action: StaffAction::Note("Found it.".into()),
            },
            &config(),
            at(T0),
        )
        .expect("decided");
        assert!(fx.list.contains(&Effect::Vouched("anna".into())));
        assert!(fx.logs(EventKind::Vouched));
        let progress = only_mail(&fx);
        assert!(!progress.data.plain && !progress.unverified);
        assert_eq!(progress.data.incident.subject, "Checkout keeps failing");
    }

    #[test]
    fn a_held_reply_tells_staff_and_sends_the_customer_nothing() {
        let f = facts(open_incident());
        let fx = decide(
            &f,
            &Event::HeldReply {
                message: MessageRow(8),
                from: "ann@example.test".into(),
                why: "the sender check failed (dmarc=fail)".into(),
                written: Written::default(),
            },
            &staffed(),
            at(T0),
        )
        .expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::StaffReply);
        assert!(mail.data.staff.reason.contains("dmarc=fail"));
        assert!(fx.logs(EventKind::HeldForStaff));
        assert!(fx.new_state().is_none());
    }

    #[test]
    fn a_late_reply_continues_the_old_incident_with_the_reopened_mail_instead_of_an_ack() {
        let f = Facts::new(open_incident(), Conversation::default());
        let mut o = opening(9);
        o.continues = Some(IncidentNo(3));
        let fx = decide(&f, &Event::Opened(o), &config(), at(T0)).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Reopened);
        assert_eq!(mail.data.previous_incident, 3);
        assert!(fx.list.contains(&Effect::PreviousIncident(IncidentNo(3))));
        assert!(fx.list.iter().any(|e| matches!(e,
            Effect::Event(ev) if ev.kind == EventKind::Continued && ev.incident == Some(IncidentNo(3)))));
    }

    #[test]
    fn a_customers_third_incident_within_the_window_is_recurring() {
        let f = Facts::new(open_incident(), Conversation::default());
        let mut o = opening(5);
        o.customer_incidents_in_window = 3;
        let fx = decide(&f, &Event::Opened(o.clone()), &config(), at(T0)).expect("decided");
        assert!(fx.list.iter().any(|e| matches!(e, Effect::Recurring {
            incident: IncidentNo(1),
            reason,
        } if reason.contains("has opened 3 incidents"))));
        assert!(only_mail(&fx).data.incident.recurring);
        o.customer_incidents_in_window = 2;
        let fx = decide(&f, &Event::Opened(o), &config(), at(T0)).expect("decided");
        assert!(!fx.logs(EventKind::Recurring));
    }

    #[test]
    fn a_complaint_soon_after_the_last_incident_is_linked_and_the_acknowledgement_owns_it() {
        let f = Facts::new(open_incident(), Conversation::default());
        let mut o = opening(5);
        o.written.text = "Hi,\nit broke again, order #48391.\nTom".into();
        o.repeats = Some(Repeat {
            previous: IncidentNo(7),
            opened_at: at("2026-11-02T09:00:00Z"),
            count: 1,
        });
        let fx = decide(&f, &Event::Opened(o), &config(), at(T0)).expect("decided");
        assert!(fx.list.contains(&Effect::PreviousIncident(IncidentNo(7))));
        assert!(fx.list.contains(&Effect::Repeats {
            count: 2,
            previous_opened_at: at("2026-11-02T09:00:00Z"),
        }));
        let reason = fx
            .list
            .iter()
            .find_map(|e| match e {
                Effect::Recurring { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .expect("marked recurring");
        assert!(
            reason.contains("incident #7") && reason.contains("second"),
            "{reason}"
        );
        let ack = only_mail(&fx);
        assert_eq!(ack.kind, MailKind::Acknowledgement);
        assert_eq!(ack.data.recurring.count, 2);
        assert_eq!(ack.data.recurring.count_words, "second");
        assert_eq!(ack.data.recurring.previous, 7);
        assert_eq!(ack.data.recurring.since, "three weeks");
        assert_eq!(ack.data.customer.greeting_name, "Ann");
        assert_eq!(
            ack.data.facts,
            vec![crate::mail::facts::Fact {
                name: "order".into(),
                value: "48391".into()
            }]
        );
    }

    #[test]
    fn the_check_back_yes_closes_with_thanks_no_reopens_and_a_rating_is_recorded() {
        let mut resolved = open_incident();
        resolved.state = State::Resolved;
        resolved.resolved_at = Some(at(T0));
        resolved.next_update_at = None;
        resolved.close_at = Some(at("2026-11-30T09:00:00Z"));
        let mut f = facts(resolved);
        f.open_promises.clear();
        let reply = |text: &str| Event::CustomerReply {
            message: MessageRow(9),
            from: "ann@example.test".into(),
            trust: Trust::Verified,
            written: Written {
                text: text.into(),
                ..Written::default()
            },
        };
        let now = at("2026-11-26T10:00:00Z");
        let fx = decide(&f, &reply("Yes, all good now. 5"), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Closed));
        assert!(fx.list.contains(&Effect::CheckBackAnswer {
            message: MessageRow(9),
            fixed: Some(true),
            rating: Some(5),
        }));
        let thanks: Vec<&Mail> = fx
            .mails()
            .filter(|m| m.kind == MailKind::ThankYou)
            .collect();
        assert_eq!(thanks.len(), 1);
        assert_eq!(thanks[0].data.rating, 5);
        let forged = Event::CustomerReply {
            message: MessageRow(9),
            from: "ann@example.test".into(),
            trust: Trust::Unverified,
            written: Written {
                text: "yes".into(),
                ..Written::default()
            },
        };
        let fx = decide(&f, &forged, &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), None, "an unproven yes closes nothing");
        assert!(fx.mails().all(|m| m.kind == MailKind::StaffReply));
        let fx = decide(&f, &reply("No, it still fails."), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
        assert!(fx.mails().any(|m| m.kind == MailKind::Reopened));
        let fx = decide(&f, &reply("4"), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), None, "a rating alone changes nothing");
        assert!(fx.list.contains(&Effect::CheckBackAnswer {
            message: MessageRow(9),
            fixed: None,
            rating: Some(4),
        }));
        assert!(fx
            .mails()
            .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
        let fx = decide(&f, &reply("Thanks a lot!"), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), None, "a thank-you reopens nothing");
        assert!(fx
            .mails()
            .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
    }

    #[test]
    fn a_second_resolution_owns_that_the_first_did_not_hold() {
        let mut again = open_incident();
        again.resolved_at = Some(at("2026-11-20T09:00:00Z"));
        let fx = decide(
            &facts(again),
            &staff(StaffAction::Resolve(Resolution {
                root_cause: "A full disk.".into(),
                prevention: "An alert at 80%.".into(),
                compensation: None,
                question: None,
            })),
            &config(),
            at(T0),
        )
        .expect("decided");
        assert!(only_mail(&fx).data.fixed_before);
    }

    #[test]
    fn staff_choose_the_language_and_dates_follow_it() {
        let f = facts(open_incident());
        let fx = decide(
            &f,
            &staff(StaffAction::Lang("de-AT".into())),
            &config(),
            at(T0),
        )
        .expect("decided");
        assert!(fx.list.contains(&Effect::Lang("de".into())));
        assert!(decide(&f, &staff(StaffAction::Lang("*".into())), &config(), at(T0)).is_err());
        let mut german = open_incident();
        german.lang = Some("de".into());
        german.customer_utc_offset = Some(-300);
        let fx = decide(
            &facts(german),
            &staff(StaffAction::Note("Wir prüfen es.".into())),
            &config(),
            at("2026-11-23T10:00:00Z"),
        )
        .expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.data.lang, "de");
        assert_eq!(
            mail.data.next_update,
            "Montag, 23. November 2026, 14:00 Uhr UTC"
        );
        assert_eq!(
            mail.data.next_update_theirs,
            "09:00 Uhr bei Ihnen, UTC-05:00"
        );
        assert_eq!(mail.data.pace, "alle 4 Stunden");
    }

    #[test]
    fn staff_read_a_german_customers_incident_in_the_default_language_and_are_told() {
        let mut german = open_incident();
        german.lang = Some("de".into());
        let f = Facts::new(german, Conversation::default());
        let fx = decide(&f, &Event::Opened(opening(5)), &staffed(), at(T0)).expect("decided");
        let ack = fx
            .mails()
            .find(|m| m.kind == MailKind::Acknowledgement)
            .expect("ack");
        assert_eq!(ack.data.lang, "de");
        let note = fx
            .mails()
            .find(|m| m.kind == MailKind::StaffNew)
            .expect("staff told");
        assert_eq!(note.data.lang, "", "staff mail is in the default set");
        assert_eq!(note.data.staff.language, "de");
        assert_eq!(note.data.next_update, "Monday 23 November 2026, 13:00 UTC");
    }

    #[test]
    fn a_progress_update_goes_out_with_no_news_and_promises_one_cadence_after_the_promise() {
        let f = facts(open_incident());
        let now = at("2026-11-23T12:55:00Z");
        let fx = decide(&f, &Event::ProgressDue, &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Progress);
        assert_eq!(mail.promise, Some(at("2026-11-23T17:00:00Z")));
        assert!(!mail.data.overdue);
        assert_eq!(mail.data.note, "");
        assert_eq!(mail.in_reply_to.as_deref(), Some("fu.1.a.b@example.test"));
        assert!(fx.list.contains(&Effect::UpdatesWithoutNews(1)));
        assert!(!fx.logs(EventKind::PromiseBreached));
        let settle = fx.list.iter().position(|e| *e == Effect::SettlePromises);
        let queue = fx.list.iter().position(|e| matches!(e, Effect::Mail(_)));
        assert!(
            settle < queue,
            "the old promise is settled before the new one is made"
        );
    }

    #[test]
    fn an_update_after_downtime_goes_out_once_says_it_is_late_and_records_the_breach() {
        let f = facts(open_incident());
        let now = at("2026-11-23T19:00:00Z");
        let fx = decide(&f, &Event::ProgressDue, &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert!(mail.data.overdue);
        assert_eq!(
            mail.promise,
            Some(at("2026-11-23T23:00:00Z")),
            "from now, not from the missed time"
        );
        assert!(fx.logs(EventKind::PromiseBreached));
    }

    #[test]
    fn an_unheard_note_is_the_news_of_the_next_update() {
        let mut f = facts(open_incident());
        f.unheard_note = Some(Note {
            at: at("2026-11-23T11:00:00Z"),
            author: "alice".into(),
            text: "The gateway is being restarted.".into(),
            visibility: NoteVisibility::Customer,
        });
        let fx = decide(
            &f,
            &Event::ProgressDue,
            &config(),
            at("2026-11-23T12:55:00Z"),
        )
        .expect("decided");
        assert_eq!(only_mail(&fx).data.note, "The gateway is being restarted.");
        assert!(fx.list.contains(&Effect::UpdatesWithoutNews(0)));
    }

    #[test]
    fn the_third_update_without_news_escalates_to_staff_once() {
        let mut config = config();
        config.escalation.staff = vec!["lead@example.test".into()];
        let mut incident = open_incident();
        incident.updates_without_news = 2;
        let fx = decide(
            &facts(incident.clone()),
            &Event::ProgressDue,
            &config,
            at("2026-11-23T12:55:00Z"),
        )
        .expect("decided");
        let kinds: Vec<MailKind> = fx.mails().map(|m| m.kind).collect();
        assert_eq!(kinds, vec![MailKind::Progress, MailKind::Escalation]);
        let escalation = fx.mails().nth(1).expect("escalation");
        assert_eq!(escalation.to, "lead@example.test");
        assert_eq!(
            escalation.in_reply_to, None,
            "staff mail is not in the customer's thread"
        );
        assert_eq!(escalation.data.escalation.updates_without_news, 3);
        incident.escalated_at = Some(at(T0));
        let fx = decide(
            &facts(incident),
            &Event::ProgressDue,
            &config,
            at("2026-11-23T12:55:00Z"),
        )
        .expect("decided");
        assert_eq!(
            fx.mails().count(),
            1,
            "already escalated: no second escalation"
        );
    }

    #[test]
    fn a_quiet_incident_escalates_and_without_staff_configured_it_is_only_logged() {
        let f = facts(open_incident());
        let now = at("2026-11-23T17:01:00Z");
        let fx = decide(&f, &Event::QuietTooLong, &config(), now).expect("decided");
        assert_eq!(fx.mails().count(), 0);
        assert!(fx.logs(EventKind::EscalationDue));
        assert!(fx.list.contains(&Effect::Escalated(Some(now))));
        let mut config = config();
        config.escalation.staff = vec!["lead@example.test".into(), "boss@example.test".into()];
        let fx = decide(&f, &Event::QuietTooLong, &config, now).expect("decided");
        assert_eq!(fx.mails().count(), 2);
        let mail = fx.mails().next().expect("mail");
        assert_eq!(
            mail.data.escalation.reason,
            "no staff note since the incident opened 8 hours ago"
        );
        let mut noted = open_incident();
        noted.last_note_at = Some(at("2026-11-23T10:00:00Z"));
        let fx = decide(&facts(noted), &Event::QuietTooLong, &config, now).expect("decided");
        let reason = &fx.mails().next().expect("mail").data.escalation.reason;
        assert!(
            reason.starts_with("no staff note for 7 hours (the last one Monday 23 November"),
            "{reason}"
        );
        assert_eq!(mail.data.escalation.hours_without_note, 8);
    }

    #[test]
    fn a_staff_note_goes_to_the_customer_at_once_and_restarts_the_cadence_clock() {
        let f = facts(open_incident());
        let now = at("2026-11-23T10:00:00Z");
        let fx = decide(
            &f,
            &staff(StaffAction::Note("  A fix is being deployed. ".into())),
            &config(),
            now,
        )
        .expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Progress);
        assert_eq!(mail.data.note, "A fix is being deployed.");
        assert_eq!(mail.promise, Some(at("2026-11-23T14:00:00Z")));
        assert!(
            fx.list.contains(&Effect::Escalated(None)),
            "a note re-arms escalation"
        );
        assert!(fx
            .list
            .iter()
            .any(|e| matches!(e, Effect::Note { author, .. } if author == "alice")));
    }

    #[test]
    fn an_empty_note_or_a_note_on_a_resolved_incident_is_refused() {
        let f = facts(open_incident());
        let err = decide(
            &f,
            &staff(StaffAction::Note("  ".into())),
            &config(),
            at(T0),
        )
        .unwrap_err();
        assert_eq!(err, Refusal::Invalid("the note is empty".into()));
        let mut resolved = open_incident();
        resolved.state = State::Resolved;
        let err = decide(
            &facts(resolved),
            &staff(StaffAction::Note("x".into())),
            &config(),
            at(T0),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("is resolved; cannot send a note on"),
            "{err}"
        );
    }

    #[test]
    fn a_shorter_cadence_brings_the_update_forward_and_a_longer_one_never_postpones_it() {
        let f = facts(open_incident());
        let now = at("2026-11-23T09:30:00Z");
        let fx = decide(
            &f,
            &staff(StaffAction::Cadence(Duration::from_secs(3600))),
            &config(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.next_update(), Some(Some(at("2026-11-23T10:30:00Z"))));
        let fx = decide(
            &f,
            &staff(StaffAction::Cadence(Duration::from_secs(86_400))),
            &config(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.next_update(), None, "the promise already made stands");
        let fx = decide(
            &f,
            &staff(StaffAction::Cadence(Duration::from_secs(60))),
            &config(),
            now,
        )
        .expect("decided");
        assert!(
            fx.list
                .contains(&Effect::Cadence(Duration::from_secs(30 * 60))),
            "clamped to min"
        );
    }

    #[test]
    fn any_news_gets_a_status_answer_and_a_pace_request_changes_the_cadence() {
        let mut f = facts(open_incident());
        f.latest_note = Some(Note {
            at: at(T0),
            author: "alice".into(),
            text: "Looking at the logs.".into(),
            visibility: NoteVisibility::Customer,
        });
        let reply = |text: &str| Event::CustomerReply {
            message: MessageRow(7),
            from: "ann@example.test".into(),
            trust: Trust::Verified,
            written: Written {
                text: text.into(),
                ..Written::default()
            },
        };
        let now = at("2026-11-23T09:30:00Z");
        let fx = decide(&f, &reply("Any news?"), &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Status);
        assert_eq!(mail.data.note, "Looking at the logs.");
        assert_eq!(
            mail.promise,
            Some(at("2026-11-23T13:00:00Z")),
            "nothing reset"
        );
        assert!(!mail.data.cadence_changed);
        let fx =
            decide(&f, &reply("Please update me every hour."), &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert!(mail.data.cadence_changed);
        assert_eq!(mail.data.cadence, "1 hour");
        assert_eq!(mail.data.pace, "every hour");
        assert_eq!(mail.promise, Some(at("2026-11-23T10:30:00Z")));
        // The last request wins, a rejected pace is not one.
        let fx = decide(
            &f,
            &reply("Sorry, hourly is too much after all - once a day is fine."),
            &config(),
            now,
        )
        .expect("decided");
        assert_eq!(only_mail(&fx).data.pace, "once a day");
        assert!(fx
            .list
            .contains(&Effect::Cadence(Duration::from_secs(86_400))));
    }

    #[test]
    fn a_pace_the_customer_does_not_want_changes_nothing_sends_nothing_and_tells_staff() {
        let f = facts(open_incident());
        let reply = Event::CustomerReply {
            message: MessageRow(7),
            from: "ann@example.test".into(),
            trust: Trust::Verified,
            written: Written {
                text: "I did not ask for updates every 2 hours, please don't email me every \
                       hour or two"
                    .into(),
                ..Written::default()
            },
        };
        let fx = decide(&f, &reply, &staffed(), at("2026-11-23T09:30:00Z")).expect("decided");
        assert!(!fx.list.iter().any(|e| matches!(e, Effect::Cadence(_))));
        let mails: Vec<&Mail> = fx.mails().collect();
        assert_eq!(mails.len(), 1, "staff only: {mails:#?}");
        assert_eq!(mails[0].kind, MailKind::StaffReply);
        assert!(
            mails[0]
                .data
                .staff
                .reason
                .contains("asked for no pace we can apply"),
            "{}",
            mails[0].data.staff.reason
        );
    }

    #[test]
    fn a_reply_while_waiting_resumes_and_a_reply_after_resolution_reopens() {
        let mut waiting = open_incident();
        waiting.state = State::Waiting;
        let reply = Event::CustomerReply {
            message: MessageRow(7),
            from: "ann@example.test".into(),
            trust: Trust::Verified,
            written: Written {
                text: "Here is the screenshot.".into(),
                ..Written::default()
            },
        };
        let now = at("2026-11-23T15:00:00Z");
        let fx = decide(&facts(waiting), &reply, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
        assert_eq!(only_mail(&fx).promise, Some(at("2026-11-23T19:00:00Z")));
        let mut resolved = open_incident();
        resolved.state = State::Resolved;
        let fx = decide(&facts(resolved), &reply, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
        assert_eq!(only_mail(&fx).kind, MailKind::Reopened);
        assert!(fx.logs(EventKind::Reopened));
    }

    #[test]
    fn resolving_needs_every_missing_field_named_and_then_sends_the_resolution() {
        let f = facts(open_incident());
        let err = decide(
            &f,
            &staff(StaffAction::Resolve(Resolution::default())),
            &config(),
            at(T0),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("--root-cause and --prevention"),
            "{err}"
        );
        let fx = decide(
            &f,
            &staff(StaffAction::Resolve(Resolution {
                root_cause: "An expired certificate.".into(),
                prevention: "Automatic renewal.".into(),
                compensation: Some(" ".into()),
                question: Some("Can you pay by card again?".into()),
            })),
            &config(),
            at("2026-11-23T14:00:00Z"),
        )
        .expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Resolution);
        assert_eq!(mail.data.resolution.root_cause, "An expired certificate.");
        assert_eq!(mail.data.resolution.compensation, "");
        assert!(mail.data.overdue, "the 13:00 promise was never kept");
        assert_eq!(mail.promise, None);
        assert!(fx.list.iter().any(
            |e| matches!(e, Effect::Resolve { check_back_at, resolution }
            if *check_back_at == at("2026-11-26T14:00:00Z")
                && resolution.question.as_deref() == Some("Can you pay by card again?"))
        ));
    }

    #[test]
    fn the_check_back_then_the_close() {
        let mut resolved = open_incident();
        resolved.state = State::Resolved;
        resolved.check_question = Some("Can you pay by card again?".into());
        let now = at("2026-11-26T14:00:00Z");
        let fx = decide(
            &facts(resolved.clone()),
            &Event::CheckBackDue,
            &config(),
            now,
        )
        .expect("decided");
        assert_eq!(only_mail(&fx).kind, MailKind::CheckBack);
        assert_eq!(only_mail(&fx).data.close_after, "4 days");
        assert_eq!(
            only_mail(&fx).data.check_question,
            "Can you pay by card again?"
        );
        assert!(fx.list.contains(&Effect::CheckBack {
            check_back_at: None,
            close_at: Some(at("2026-11-30T14:00:00Z"))
        }));
        let fx = decide(&facts(resolved), &Event::CloseDue, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Closed));
        assert_eq!(fx.mails().count(), 0);
    }

    #[test]
    fn waiting_tells_the_customer_what_we_need_and_resuming_promises_a_new_time() {
        let f = facts(open_incident());
        let refused = decide(
            &f,
            &staff(StaffAction::Wait("  ".into())),
            &config(),
            at(T0),
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("needs what we need"),
            "a reason is required"
        );
        let now = at("2026-11-23T10:15:00Z");
        let fx = decide(
            &f,
            &staff(StaffAction::Wait("the order number".into())),
            &config(),
            now,
        )
        .expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Waiting);
        assert_eq!(mail.data.waiting_for, "the order number");
        assert_eq!(mail.promise, None, "no promise while we wait on them");
        assert!(fx.list.contains(&Effect::SettlePromises));
        assert_eq!(fx.next_update(), Some(None));

        let mut waiting = open_incident();
        waiting.state = State::Waiting;
        waiting.next_update_at = None;
        let mut f = facts(waiting);
        f.open_promises.clear();
        let now = at("2026-11-23T12:00:00Z");
        let fx = decide(&f, &staff(StaffAction::Resume), &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Status);
        assert!(mail.data.resumed);
        assert_eq!(
            mail.promise,
            Some(at("2026-11-23T16:00:00Z")),
            "a promise given"
        );
    }

    fn office_hours() -> Config {
        let mut config = config();
        let tz = chrono_tz::Tz::Europe__Berlin;
        config.cadence.timezone = tz;
        config.cadence.window = Some(
            clock::Window::parse("0 0 9 * * Mon-Fri", Duration::from_secs(8 * 3600), tz)
                .expect("window")
                .with_holidays(clock::Holidays::from_dates(["2026-12-25"]).expect("dates")),
        );
        config
    }

    #[test]
    fn a_late_update_at_night_goes_at_the_next_opening_and_says_it_is_late() {
        let config = office_hours();
        let mut incident = open_incident();
        incident.next_update_at = Some(at("2026-11-27T15:50:00Z"));
        let mut f = facts(incident);
        f.open_promises = vec![at("2026-11-27T15:50:00Z")];
        // Friday 23:41 in Berlin: the daemon is back after being down.
        let fx =
            decide(&f, &Event::ProgressDue, &config, at("2026-11-27T22:41:00Z")).expect("decided");
        assert_eq!(fx.mails().count(), 0, "nothing at night");
        assert_eq!(
            fx.next_update(),
            Some(Some(at("2026-11-30T08:10:00Z"))),
            "Monday 09:00 in Berlin, plus the lead"
        );
        f.incident.next_update_at = Some(at("2026-11-30T08:10:00Z"));
        let fx =
            decide(&f, &Event::ProgressDue, &config, at("2026-11-30T08:00:00Z")).expect("decided");
        let mail = only_mail(&fx);
        assert!(mail.data.overdue, "it says it is late");
        assert!(fx.logs(EventKind::PromiseBreached));
        assert_eq!(
            mail.promise,
            Some(at("2026-11-30T12:15:00Z")),
            "13:15 in Berlin"
        );
    }

    #[test]
    fn check_back_and_close_fall_in_working_hours_and_skip_holidays() {
        let config = office_hours();
        let f = facts(open_incident());
        // Tuesday 22 December 2026, 15:00 in Berlin: three days on is Christmas Day.
        let fx = decide(
            &f,
            &staff(StaffAction::Resolve(Resolution {
                root_cause: "A full disk.".into(),
                prevention: "An alert at 80%.".into(),
                compensation: None,
                question: None,
            })),
            &config,
            at("2026-12-22T14:00:00Z"),
        )
        .expect("decided");
        let check_back = fx.list.iter().find_map(|e| match e {
            Effect::Resolve { check_back_at, .. } => Some(*check_back_at),
            _ => None,
        });
        assert_eq!(
            check_back,
            Some(at("2026-12-28T08:00:00Z")),
            "Monday 28 December, 09:00 in Berlin"
        );
    }

    #[test]
    fn only_a_promise_the_customer_was_given_can_be_breached() {
        // Staff wrote to the customer directly: the next update time was set without a mail.
        let mut incident = open_incident();
        incident.next_update_at = Some(at("2026-11-23T14:01:00Z"));
        let mut f = facts(incident);
        f.open_promises.clear();
        let now = at("2026-11-23T15:00:00Z");
        let fx = decide(&f, &Event::ProgressDue, &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert!(!mail.data.overdue, "not late against a promise never given");
        assert!(!fx.logs(EventKind::PromiseBreached));
        // A promise in the ledger that passed is breached.
        f.open_promises = vec![at("2026-11-23T14:01:00Z")];
        let fx = decide(&f, &Event::ProgressDue, &config(), now).expect("decided");
        assert!(only_mail(&fx).data.overdue);
        assert!(fx.logs(EventKind::PromiseBreached));
    }

    #[test]
    fn wait_resume_close_and_reopen_are_refused_in_the_wrong_state() {
        let f = facts(open_incident());
        assert!(decide(&f, &staff(StaffAction::Resume), &config(), at(T0))
            .unwrap_err()
            .to_string()
            .contains("is open; cannot resume"));
        assert!(decide(&f, &staff(StaffAction::Reopen), &config(), at(T0)).is_err());
        let fx = decide(
            &f,
            &staff(StaffAction::Wait("the order number".into())),
            &config(),
            at(T0),
        )
        .expect("decided");
        assert_eq!(fx.new_state(), Some(State::Waiting));
        let mut closed = open_incident();
        closed.state = State::Closed;
        assert!(decide(
            &facts(closed),
            &staff(StaffAction::Close),
            &config(),
            at(T0)
        )
        .is_err());
    }

    #[test]
    fn a_tag_on_enough_incidents_marks_all_of_them_recurring_once() {
        let f = facts(open_incident());
        let tag = |others: Vec<(IncidentNo, bool)>| {
            staff(StaffAction::Tag {
                label: "Payments".into(),
                tagged_in_window: others,
            })
        };
        let fx = decide(&f, &tag(vec![]), &config(), at(T0)).expect("decided");
        assert!(fx.list.contains(&Effect::Tag("payments".into())));
        assert!(!fx.logs(EventKind::Recurring));
        let fx = decide(
            &f,
            &tag(vec![(IncidentNo(2), false), (IncidentNo(3), true)]),
            &config(),
            at(T0),
        )
        .expect("decided");
        let marked: Vec<IncidentNo> = fx
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::Recurring { incident, .. } => Some(*incident),
                _ => None,
            })
            .collect();
        assert_eq!(marked, vec![IncidentNo(2), IncidentNo(1)]);
        let err = decide(
            &f,
            &staff(StaffAction::Tag {
                label: "two words".into(),
                tagged_in_window: vec![],
            }),
            &config(),
            at(T0),
        )
        .unwrap_err();
        assert!(err.to_string().contains("one word"), "{err}");
    }
}
