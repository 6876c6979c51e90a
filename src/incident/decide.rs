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
use super::{pace, Actor, EventKind, Incident, IncidentNo, MailKind, MessageRow, Note};
use super::{Resolution, State};
use crate::clock::{self, human_duration, stamp};
use crate::config::Config;
use crate::mail::Person;
use crate::templates::{EscalationData, MailData};

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
        }
    }
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
        /// Their own words in this mail (quotes and signature removed), whole.
        text: String,
    },
    /// A staff member acted.
    Staff { by: String, action: StaffAction },
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
    pub reply_to: Option<Person>,
    /// The first promise, as [`opening`] computed it for the new row.
    pub promise: clock::Promise,
    /// A late reply to this (long resolved) incident opened this one.
    pub continues: Option<IncidentNo>,
    /// Incidents the complaint pointed at without its sender taking part in them.
    pub stranger_to: Vec<IncidentNo>,
    /// How many incidents this customer opened within `[recurring] window`, this one included.
    pub customer_incidents_in_window: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StaffAction {
    /// A note: goes to the customer at once in a progress update.
    Note(String),
    Cadence(Duration),
    Wait,
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
         give {}", .0.join(" and ")
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
    };
    match event {
        Event::Opened(opening) => d.opened(opening),
        Event::CustomerReply {
            message,
            from,
            text,
        } => d.customer_reply(*message, from, text),
        Event::Staff { by, action } => d.staff(Actor::Staff(by.clone()), action)?,
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
                let reason = format!(
                    "no staff note for {}",
                    human_duration(config.escalation.after_no_note)
                );
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
        self.fx.push(Effect::Mail(Box::new(mail)));
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
            detail: format!("opened by {from}: {}", self.incident.subject),
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
        if opening.customer_incidents_in_window >= self.config.recurring.incidents {
            self.incident.recurring = true;
            self.fx.push(Effect::Recurring {
                incident: self.incident.number,
            });
            self.fx.log(
                EventKind::Recurring,
                &daemon,
                format!(
                    "{from} has opened {} incidents within {}",
                    opening.customer_incidents_in_window,
                    human_duration(self.config.recurring.window)
                ),
            );
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
    }

    /// The acknowledgement: to Reply-To if the sender set one, else to From; never to us.
    fn acknowledge(&mut self, opening: &Opening) {
        let answer_to = opening.reply_to.as_ref().unwrap_or(&opening.from);
        if self.config.support.is_own_address(&answer_to.address) {
            self.fx.push(Effect::Event(NewEvent {
                incident: Some(self.incident.number),
                message: Some(opening.message),
                kind: EventKind::AcknowledgementSkipped,
                actor: Actor::Daemon,
                detail: format!(
                    "the reply address {} is our own; acknowledging would mail ourselves",
                    answer_to.address
                ),
            }));
            return;
        }
        let to = Recipient {
            address: answer_to.address.clone(),
            name: answer_to.name.clone(),
        };
        let promise = opening.promise;
        self.mail_to(
            MailKind::Acknowledgement,
            to,
            Some(promise.at),
            Some(opening.message),
            |d| d.window_moved = promise.moved_by_window,
        );
    }

    // --- The customer replies ----------------------------------------------------------------

    /// On an open incident an immediate status answer (and a new cadence if they asked for
    /// one); while waiting on them, updates resume; after resolution the incident reopens and
    /// they are told so.
    fn customer_reply(&mut self, message: MessageRow, from: &str, text: &str) {
        let who = Actor::Customer(from.to_string());
        if self.incident.state.is_over() {
            self.reopen(&who, Some(message));
            return;
        }
        if self.incident.state == State::Waiting {
            self.resume(&who);
        }
        let changed = match pace::requested_cadence(text) {
            Some(wanted) => {
                self.set_cadence(&who, wanted);
                true
            }
            None => false,
        };
        let note = self.facts.latest_note.as_ref().map(|n| n.text.clone());
        let promise = self.incident.next_update_at;
        self.mail_customer(MailKind::Status, promise, Some(message), |d| {
            d.note = note.unwrap_or_default();
            d.cadence_changed = changed;
        });
    }

    // --- Staff actions -----------------------------------------------------------------------

    fn staff(&mut self, who: Actor, action: &StaffAction) -> Result<(), Refusal> {
        match action {
            StaffAction::Note(text) => self.note(&who, text),
            StaffAction::Cadence(wanted) => {
                self.require(
                    &[State::Open, State::Waiting],
                    "change the cadence of",
                    "there are no more updates after resolution",
                )?;
                self.set_cadence(&who, *wanted);
                Ok(())
            }
            StaffAction::Wait => {
                self.require(
                    &[State::Open],
                    "wait on",
                    "only an open incident can wait on the customer",
                )?;
                self.set_state(State::Waiting);
                self.fx.log(
                    EventKind::Waiting,
                    &who,
                    "waiting on the customer; updates paused",
                );
                Ok(())
            }
            StaffAction::Resume => {
                self.require(
                    &[State::Waiting],
                    "resume",
                    "only a waiting incident can be resumed",
                )?;
                self.resume(&who);
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
        }
    }

    /// A note goes to the customer now in a progress update, and the cadence clock restarts.
    fn note(&mut self, who: &Actor, text: &str) -> Result<(), Refusal> {
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
        });
        self.incident.last_note_at = Some(self.now);
        self.fx.log(EventKind::NoteAdded, who, text);
        self.fx.push(Effect::UpdatesWithoutNews(0));
        self.fx.push(Effect::Escalated(None));
        let promise = self.promise(self.now);
        self.settle_promises();
        self.set_next_update(Some(promise.at));
        let text = text.to_string();
        self.mail_customer(MailKind::Progress, Some(promise.at), None, |d| {
            d.note = text;
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
        };
        let check_back_at = clock::after(self.now, self.config.cadence.check_back_after);
        let breached = self.settle_promises();
        self.incident.state = State::Resolved;
        self.incident.resolved_at = Some(self.now);
        self.incident.check_back_at = Some(check_back_at);
        self.incident.close_at = None;
        self.incident.next_update_at = None;
        self.incident.root_cause = Some(resolution.root_cause.clone());
        self.incident.prevention = Some(resolution.prevention.clone());
        self.incident.compensation = resolution.compensation.clone();
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
            self.fx.push(Effect::Recurring { incident: number });
            self.fx.push(Effect::Event(NewEvent {
                incident: Some(number),
                message: None,
                kind: EventKind::Recurring,
                actor: Actor::Daemon,
                detail: format!(
                    "tag `{label}` is on {count} incidents within {}",
                    human_duration(self.config.recurring.window)
                ),
            }));
        }
        Ok(())
    }

    // --- Time passes -------------------------------------------------------------------------

    /// The promised update: the newest note the customer has not heard, or an honest "still
    /// working on it"; the next promise one cadence on. An update whose time already passed
    /// (the daemon was down) goes out once, says it is late, and the breach is recorded.
    fn progress_due(&mut self) {
        if self.incident.state != State::Open {
            return;
        }
        let promised = self.incident.next_update_at;
        let overdue = promised.is_some_and(|p| p < self.now);
        let note = self.facts.unheard_note.as_ref().map(|n| n.text.clone());
        let breached = self.settle_promises();
        if overdue {
            self.fx.log(
                EventKind::PromiseBreached,
                &Actor::Daemon,
                format!(
                    "the update promised for {} goes out late, at {}",
                    promised.map(stamp).unwrap_or_default(),
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
            d.overdue = overdue || breached > 0;
            d.window_moved = next.moved_by_window;
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
            let reason = format!("{no_news} updates in a row went out with no news");
            self.escalate(&reason);
        }
    }

    fn check_back_due(&mut self) {
        if self.incident.state != State::Resolved {
            return;
        }
        let close_at = clock::after(self.now, self.config.cadence.close_after);
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

    /// Tells staff an incident needs them; it is not escalated again until a note is added.
    fn escalate(&mut self, reason: &str) {
        self.incident.escalated_at = Some(self.now);
        self.fx.push(Effect::Escalated(Some(self.now)));
        let staff = &self.config.escalation.staff;
        if staff.is_empty() {
            self.fx.log(
                EventKind::EscalationDue,
                &Actor::Daemon,
                format!("{reason}; no [escalation] staff configured, so nobody was mailed"),
            );
            return;
        }
        let quiet_since = self
            .incident
            .last_note_at
            .unwrap_or(self.incident.opened_at);
        let mut data =
            letters::mail_data(&self.incident, self.config, self.incident.next_update_at);
        data.note = self
            .facts
            .latest_note
            .as_ref()
            .map(|n| n.text.clone())
            .unwrap_or_default();
        data.escalation = EscalationData {
            reason: reason.to_string(),
            customer: self.incident.customer_display(),
            updates_without_news: self.incident.updates_without_news,
            hours_without_note: (self.now - quiet_since).num_hours(),
        };
        for address in staff {
            self.fx.push(Effect::Mail(Box::new(Mail {
                kind: MailKind::Escalation,
                to: address.clone(),
                to_name: None,
                data: data.clone(),
                promise: None,
                caused_by: None,
                in_reply_to: None,
                references: Vec::new(),
                thread_root: None,
            })));
        }
        self.fx.log(
            EventKind::Escalated,
            &Actor::Daemon,
            format!("{reason}; mailed {}", staff.join(", ")),
        );
    }
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
            reply_to: None,
            promise: super::opening(&config, at(T0)),
            continues: None,
            stranger_to: Vec::new(),
            customer_incidents_in_window: 1,
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
    fn the_acknowledgement_goes_to_reply_to_but_never_to_our_own_address() {
        let f = Facts::new(open_incident(), Conversation::default());
        let mut o = opening(5);
        o.reply_to = Some(Person {
            address: "orders@example.test".into(),
            name: None,
        });
        let fx = decide(&f, &Event::Opened(o.clone()), &config(), at(T0)).expect("decided");
        assert_eq!(only_mail(&fx).to, "orders@example.test");
        o.reply_to = Some(Person {
            address: "support@example.test".into(),
            name: None,
        });
        let fx = decide(&f, &Event::Opened(o), &config(), at(T0)).expect("decided");
        assert_eq!(fx.mails().count(), 0);
        assert!(fx.logs(EventKind::AcknowledgementSkipped));
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
        assert!(fx.list.contains(&Effect::Recurring {
            incident: IncidentNo(1)
        }));
        assert!(only_mail(&fx).data.incident.recurring);
        o.customer_incidents_in_window = 2;
        let fx = decide(&f, &Event::Opened(o), &config(), at(T0)).expect("decided");
        assert!(!fx.logs(EventKind::Recurring));
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
        assert_eq!(mail.data.escalation.reason, "no staff note for 8 hours");
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
        });
        let reply = |text: &str| Event::CustomerReply {
            message: MessageRow(7),
            from: "ann@example.test".into(),
            text: text.into(),
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
        assert_eq!(mail.promise, Some(at("2026-11-23T10:30:00Z")));
    }

    #[test]
    fn a_reply_while_waiting_resumes_and_a_reply_after_resolution_reopens() {
        let mut waiting = open_incident();
        waiting.state = State::Waiting;
        let reply = Event::CustomerReply {
            message: MessageRow(7),
            from: "ann@example.test".into(),
            text: "Here is the screenshot.".into(),
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
        assert!(fx
            .list
            .iter()
            .any(|e| matches!(e, Effect::Resolve { check_back_at, .. }
            if *check_back_at == at("2026-11-26T14:00:00Z"))));
    }

    #[test]
    fn the_check_back_then_the_close() {
        let mut resolved = open_incident();
        resolved.state = State::Resolved;
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
        assert!(fx.list.contains(&Effect::CheckBack {
            check_back_at: None,
            close_at: Some(at("2026-11-30T14:00:00Z"))
        }));
        let fx = decide(&facts(resolved), &Event::CloseDue, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Closed));
        assert_eq!(fx.mails().count(), 0);
    }

    #[test]
    fn wait_resume_close_and_reopen_are_refused_in_the_wrong_state() {
        let f = facts(open_incident());
        assert!(decide(&f, &staff(StaffAction::Resume), &config(), at(T0))
            .unwrap_err()
            .to_string()
            .contains("is open; cannot resume"));
        assert!(decide(&f, &staff(StaffAction::Reopen), &config(), at(T0)).is_err());
        let fx = decide(&f, &staff(StaffAction::Wait), &config(), at(T0)).expect("decided");
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
                Effect::Recurring { incident } => Some(*incident),
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
