//! The incident lifecycle: open → (waiting) → resolved → closed, with reopen, and the mails
//! each step sends. Staff act through the CLI (`followupd incident …`); the customer acts by
//! replying; the scheduler acts when time passes. Every transition is written to the event log
//! with who caused it, in the same transaction as the mail it causes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::config::{CadenceConfig, EscalationConfig, RecurringConfig};
use crate::outbox::{self, Draft, Queue, Queued};
use crate::policy;
use crate::store::{self, Incident, StoreError};
use crate::templates::MailData;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("there is no incident {0}")]
    NotFound(i64),
    #[error("incident {number} is {state}; cannot {action} it ({hint})")]
    Transition {
        number: i64,
        state: String,
        action: &'static str,
        hint: &'static str,
    },
    #[error(
        "a resolution must say what went wrong and what will stop it happening again: \
         give --root-cause and --prevention (missing: {0})"
    )]
    ResolutionIncomplete(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who or what caused a change: a staff member (`--by`), the customer, or the daemon.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Staff(&'a str),
    Customer(&'a str),
    Daemon,
}

impl Actor<'_> {
    pub fn name(&self) -> String {
        match self {
            Actor::Staff(who) => (*who).to_string(),
            Actor::Customer(address) => format!("customer {address}"),
            Actor::Daemon => "followupd".into(),
        }
    }
}

/// A mail to an incident's customer: its kind (template), the next update it promises (none
/// for resolution and check-back), and the message that caused it.
pub struct CustomerMail<'k> {
    pub kind: &'k str,
    pub promise: Option<DateTime<Utc>>,
    pub caused_by: Option<i64>,
}

/// What lifecycle work needs besides the connection.
#[derive(Clone, Copy)]
pub struct Lifecycle<'a> {
    pub queue: Queue<'a>,
    pub cadence: &'a CadenceConfig,
    pub escalation: &'a EscalationConfig,
    pub recurring: &'a RecurringConfig,
}

pub fn load(conn: &Connection, number: i64) -> Result<Incident, LifecycleError> {
    store::incident(conn, number)?.ok_or(LifecycleError::NotFound(number))
}

fn event(
    conn: &Connection,
    actor: Actor<'_>,
    incident: i64,
    kind: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store::log_event_by(conn, now, Some(incident), None, kind, &actor.name(), detail)
}

/// Loads an incident that must be in one of `states` for `action`, or says why not.
fn load_in(
    conn: &Connection,
    number: i64,
    states: &[&str],
    action: &'static str,
    hint: &'static str,
) -> Result<Incident, LifecycleError> {
    let incident = load(conn, number)?;
    if states.contains(&incident.state.as_str()) {
        Ok(incident)
    } else {
        Err(LifecycleError::Transition {
            number,
            state: incident.state,
            action,
            hint,
        })
    }
}

impl Lifecycle<'_> {
    /// Queues a mail about `incident` to its customer, threaded after everything before it.
    /// `promise` is the next update time the mail promises, recorded in the ledger.
    pub fn mail_customer(
        &self,
        conn: &Connection,
        incident: &Incident,
        mail: CustomerMail<'_>,
        shape: impl FnOnce(&mut MailData),
        now: DateTime<Utc>,
    ) -> Result<Queued, StoreError> {
        let CustomerMail {
            kind,
            promise,
            caused_by,
        } = mail;
        let mut data = policy::incident_mail_data(
            incident,
            self.queue.support,
            promise,
            self.cadence.timezone,
        );
        shape(&mut data);
        let (in_reply_to, references) = store::thread_of(conn, incident.number)?;
        let queued = outbox::enqueue(
            conn,
            &Draft {
                incident: incident.number,
                kind,
                caused_by,
                recipient: &incident.customer_address,
                recipient_name: incident.customer_name.as_deref(),
                in_reply_to: in_reply_to.as_deref(),
                references,
                data,
                thread_root: store::thread_root_of(conn, incident.number)?,
            },
            &self.queue,
            now,
        )?;
        if let Some(due) = promise {
            store::record_promise(conn, incident.number, kind, due, now)?;
        }
        Ok(queued)
    }

    /// `incident note N "text"`: the note goes to the customer now in a progress update, and
    /// the cadence clock restarts from now.
    pub fn note(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Queued, LifecycleError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LifecycleError::Invalid("the note is empty".into()));
        }
        let incident = load_in(
            conn,
            number,
            &["open"],
            "send a note on",
            "notes go to the customer on open incidents; `resume` or `reopen` it first",
        )?;
        store::add_note(conn, number, &actor.name(), text, now)?;
        event(conn, actor, number, "note_added", text, now)?;
        let (next, moved) = self.cadence.promise(now, incident.cadence());
        store::settle_promises(conn, number, now)?;
        store::set_next_update(conn, number, Some(next))?;
        let queued = self.mail_customer(
            conn,
            &incident,
            CustomerMail {
                kind: "progress",
                promise: Some(next),
                caused_by: None,
            },
            |d| {
                d.note = text.to_string();
                d.window_moved = moved;
            },
            now,
        )?;
        Ok(queued)
    }

    /// `incident cadence N 2h` (staff) or a customer's "update me every hour": clamped to the
    /// configured bounds. A shorter cadence brings the next update forward; a longer one never
    /// postpones an update already promised. Returns the cadence set.
    pub fn set_cadence(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        wanted: Duration,
        now: DateTime<Utc>,
    ) -> Result<Duration, LifecycleError> {
        let incident = load_in(
            conn,
            number,
            &["open", "waiting"],
            "change the cadence of",
            "there are no more updates after resolution",
        )?;
        let cadence = self.cadence.clamp(wanted);
        store::set_cadence(conn, number, cadence)?;
        let (sooner, _) = self.cadence.promise(now, cadence);
        let current = incident
            .next_update_at
            .as_deref()
            .and_then(|t| store::parse_ts(t).ok());
        if current.is_none_or(|c| sooner < c) {
            store::set_next_update(conn, number, Some(sooner))?;
        }
        let clamped = if cadence == wanted {
            String::new()
        } else {
            format!(
                " (asked for {}, kept within {}–{})",
                crate::templates::human_duration(wanted),
                crate::templates::human_duration(self.cadence.min),
                crate::templates::human_duration(self.cadence.max)
            )
        };
        event(
            conn,
            actor,
            number,
            "cadence_changed",
            &format!(
                "updates every {}{clamped}",
                crate::templates::human_duration(cadence)
            ),
            now,
        )?;
        Ok(cadence)
    }

    /// `incident wait N`: waiting on the customer; scheduled updates pause.
    pub fn wait(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        load_in(
            conn,
            number,
            &["open"],
            "wait on",
            "only an open incident can wait on the customer",
        )?;
        store::set_state(conn, number, "waiting", now)?;
        event(
            conn,
            actor,
            number,
            "waiting",
            "waiting on the customer; updates paused",
            now,
        )?;
        Ok(())
    }

    /// `incident resume N`, or the customer's reply while waiting: updates start again, the
    /// next one a cadence from now.
    pub fn resume(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, LifecycleError> {
        let incident = load_in(
            conn,
            number,
            &["waiting"],
            "resume",
            "only a waiting incident can be resumed",
        )?;
        let (next, _) = self.cadence.promise(now, incident.cadence());
        store::set_state(conn, number, "open", now)?;
        store::set_next_update(conn, number, Some(next))?;
        event(conn, actor, number, "resumed", "updates resume", now)?;
        Ok(next)
    }

    /// `incident resolve N --root-cause … --prevention … [--compensation …]`: refused without
    /// a root cause and a prevention. Sends the resolution mail; the check-back follows.
    pub fn resolve(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        resolution: &store::Resolution<'_>,
        now: DateTime<Utc>,
    ) -> Result<Queued, LifecycleError> {
        if resolution.root_cause.trim().is_empty() {
            return Err(LifecycleError::ResolutionIncomplete("--root-cause"));
        }
        if resolution.prevention.trim().is_empty() {
            return Err(LifecycleError::ResolutionIncomplete("--prevention"));
        }
        load_in(
            conn,
            number,
            &["open", "waiting"],
            "resolve",
            "reopen it first",
        )?;
        let check_back = policy::next_update_at(now, self.cadence.check_back_after);
        let breached = store::settle_promises(conn, number, now)?;
        store::set_resolved(conn, number, resolution, check_back, now)?;
        event(
            conn,
            actor,
            number,
            "resolved",
            &format!(
                "root cause: {}; prevention: {}{}",
                resolution.root_cause.trim(),
                resolution.prevention.trim(),
                resolution
                    .compensation
                    .map(|c| format!("; compensation: {}", c.trim()))
                    .unwrap_or_default()
            ),
            now,
        )?;
        let incident = load(conn, number)?;
        Ok(self.mail_customer(
            conn,
            &incident,
            CustomerMail {
                kind: "resolution",
                promise: None,
                caused_by: None,
            },
            |d| d.overdue = breached > 0,
            now,
        )?)
    }

    /// `incident close N`.
    pub fn close(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        load_in(
            conn,
            number,
            &["open", "waiting", "resolved"],
            "close",
            "it is already closed",
        )?;
        store::settle_promises(conn, number, now)?;
        store::set_state(conn, number, "closed", now)?;
        store::set_next_update(conn, number, None)?;
        store::set_check_back(conn, number, None, None)?;
        event(conn, actor, number, "closed", "incident closed", now)?;
        Ok(())
    }

    /// `incident reopen N`, or the customer's reply after resolution: open again, the customer
    /// is told so, and updates restart.
    pub fn reopen(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        caused_by: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Queued, LifecycleError> {
        let incident = load_in(
            conn,
            number,
            &["resolved", "closed"],
            "reopen",
            "only a resolved or closed incident can be reopened",
        )?;
        let (next, moved) = self.cadence.promise(now, incident.cadence());
        store::set_state(conn, number, "open", now)?;
        store::set_next_update(conn, number, Some(next))?;
        store::set_check_back(conn, number, None, None)?;
        event(
            conn,
            actor,
            number,
            "reopened",
            &format!("reopened (was {})", incident.state),
            now,
        )?;
        let incident = load(conn, number)?;
        Ok(self.mail_customer(
            conn,
            &incident,
            CustomerMail {
                kind: "reopened",
                promise: Some(next),
                caused_by,
            },
            |d| d.window_moved = moved,
            now,
        )?)
    }

    /// `incident tag N LABEL`.
    pub fn tag(
        &self,
        conn: &Connection,
        actor: Actor<'_>,
        number: i64,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LifecycleError> {
        let label = label.trim().to_lowercase();
        if label.is_empty()
            || label.len() > 64
            || label.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(LifecycleError::Invalid(format!(
                "tag `{label}`: use one word of at most 64 characters, like `shipping`"
            )));
        }
        load(conn, number)?;
        let added = store::add_tag(conn, number, &label, now)?;
        if added {
            event(conn, actor, number, "tagged", &label, now)?;
            self.recurring_tag(conn, &label, now)?;
        }
        Ok(added)
    }

    /// A tag seen on `tag_incidents` incidents within the window marks all of them recurring.
    fn recurring_tag(
        &self,
        conn: &Connection,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let since = now - chrono::Duration::from_std(self.recurring.window).unwrap_or_default();
        let tagged = store::incidents_tagged_since(conn, tag, since)?;
        if tagged.len() < self.recurring.tag_incidents as usize {
            return Ok(());
        }
        for n in &tagged {
            if store::mark_recurring(conn, *n)? {
                store::log_event(
                    conn,
                    now,
                    Some(*n),
                    None,
                    "recurring",
                    &format!(
                        "tag `{tag}` is on {} incidents within {}",
                        tagged.len(),
                        crate::templates::human_duration(self.recurring.window)
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// A customer's `incidents`-th incident within the window marks it recurring.
    pub fn recurring_customer(
        &self,
        conn: &Connection,
        incident: i64,
        customer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let since = now - chrono::Duration::from_std(self.recurring.window).unwrap_or_default();
        let count = store::customer_incidents_since(conn, customer, since)?;
        if count < i64::from(self.recurring.incidents) || !store::mark_recurring(conn, incident)? {
            return Ok(false);
        }
        store::log_event(
            conn,
            now,
            Some(incident),
            None,
            "recurring",
            &format!(
                "{customer} has opened {count} incidents within {}",
                crate::templates::human_duration(self.recurring.window)
            ),
        )?;
        Ok(true)
    }

    /// Tells staff an incident needs them; it is not escalated again until a note is added.
    pub fn escalate(
        &self,
        conn: &Connection,
        incident: &Incident,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        store::set_escalated(conn, incident.number, now)?;
        if self.escalation.staff.is_empty() {
            store::log_event(
                conn,
                now,
                Some(incident.number),
                None,
                "escalation_due",
                &format!("{reason}; no [escalation] staff configured, so nobody was mailed"),
            )?;
            return Ok(0);
        }
        let quiet_since = incident
            .last_note_at
            .as_deref()
            .unwrap_or(&incident.opened_at);
        let hours = store::parse_ts(quiet_since)
            .map(|t| (now - t).num_hours())
            .unwrap_or(0);
        let promise = incident
            .next_update_at
            .as_deref()
            .and_then(|t| store::parse_ts(t).ok());
        let mut data = policy::incident_mail_data(
            incident,
            self.queue.support,
            promise,
            self.cadence.timezone,
        );
        data.note = store::latest_note(conn, incident.number)?.unwrap_or_default();
        data.escalation = crate::templates::EscalationData {
            reason: reason.to_string(),
            customer: match &incident.customer_name {
                Some(name) => format!("{name} <{}>", incident.customer_address),
                None => incident.customer_address.clone(),
            },
            updates_without_news: incident.updates_without_news,
            hours_without_note: hours,
        };
        for staff in &self.escalation.staff {
            outbox::enqueue(
                conn,
                &Draft {
                    incident: incident.number,
                    kind: "escalation",
                    caused_by: None,
                    recipient: staff,
                    recipient_name: None,
                    in_reply_to: None,
                    references: Vec::new(),
                    data: data.clone(),
                    thread_root: None,
                },
                &self.queue,
                now,
            )?;
        }
        store::log_event(
            conn,
            now,
            Some(incident.number),
            None,
            "escalated",
            &format!("{reason}; mailed {}", self.escalation.staff.join(", ")),
        )?;
        Ok(self.escalation.staff.len())
    }
}
