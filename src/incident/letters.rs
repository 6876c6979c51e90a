//! What every mail about an incident can say, and how it threads.
//!
//! [`to_customer`] is the one door every customer mail goes through, the acknowledgement
//! included: it fills in the template data, threads the mail into the customer's
//! conversation, and carries the promise it makes.

use chrono::{DateTime, Utc};

use super::effects::Mail;
use super::{Incident, IncidentNo, MailKind, MessageRow};
use crate::clock::{human_duration, human_time, stamp};
use crate::config::Config;
use crate::templates::{
    CustomerData, IncidentData, MailData, ResolutionData, StaffData, SupportData,
};

/// References kept on a mail: the conversation's first message and the most recent ones. A
/// thread of any length costs a few hundred bytes (RFC 5322 3.6.4 allows trimming the middle).
pub const MAX_REFERENCES: usize = 10;

/// The conversation with the customer, oldest first: every Message-ID they sent or received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    pub ids: Vec<String>,
    /// The Outlook conversation our mail continues (hex Thread-Index root).
    pub thread_root: Option<String>,
}

impl Conversation {
    /// In-Reply-To (the newest message) and References (the first, then the newest, at most
    /// [`MAX_REFERENCES`], in the conversation's order).
    pub fn threading(&self) -> (Option<String>, Vec<String>) {
        let mut refs: Vec<String> = Vec::new();
        if let Some(first) = self.ids.first() {
            refs.push(first.clone());
        }
        let tail = self.ids.len().saturating_sub(MAX_REFERENCES - 1);
        for id in self.ids.iter().skip(tail.max(1)) {
            if !refs.contains(id) {
                refs.push(id.clone());
            }
        }
        (self.ids.last().cloned(), refs)
    }
}

/// Template data for a mail about `incident`. `promise` is the next update the mail promises
/// (none for resolution, check-back and escalation).
pub fn mail_data(incident: &Incident, config: &Config, promise: Option<DateTime<Utc>>) -> MailData {
    let tz = config.cadence.timezone;
    MailData {
        incident: IncidentData {
            number: incident.number.0,
            token: incident.token.clone(),
            subject: incident.subject.clone(),
            summary: incident.summary.clone(),
            opened: human_time(incident.opened_at, tz),
            opened_iso: stamp(incident.opened_at),
            state: incident.state.as_str().to_string(),
            tags: incident.tags.clone(),
            recurring: incident.recurring,
        },
        customer: CustomerData {
            name: incident.customer_name.clone(),
            address: incident.customer_address.clone(),
        },
        support: SupportData {
            name: config.support.name.clone(),
            address: config.support.address.clone(),
        },
        next_update: promise.map(|t| human_time(t, tz)).unwrap_or_default(),
        next_update_iso: promise.map(stamp).unwrap_or_default(),
        cadence: human_duration(incident.cadence),
        resolution: ResolutionData {
            root_cause: incident.root_cause.clone().unwrap_or_default(),
            prevention: incident.prevention.clone().unwrap_or_default(),
            compensation: incident.compensation.clone().unwrap_or_default(),
        },
        close_after: human_duration(config.cadence.close_after),
        previous_incident: incident.previous_incident.map_or(0, |n| n.0),
        ..MailData::default()
    }
}

/// Who a customer mail goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub name: Option<String>,
}

impl Recipient {
    pub fn customer_of(incident: &Incident) -> Recipient {
        Recipient {
            address: incident.customer_address.clone(),
            name: incident.customer_name.clone(),
        }
    }
}

/// What a customer mail is: its kind, who gets it, the next update it promises, and the message
/// it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMail {
    pub kind: MailKind,
    pub to: Recipient,
    pub promise: Option<DateTime<Utc>>,
    pub caused_by: Option<MessageRow>,
}

/// A customer mail: the one door. `shape` sets what only this mail says (a note, a flag).
pub fn to_customer(
    incident: &Incident,
    conversation: &Conversation,
    config: &Config,
    mail: CustomerMail,
    shape: impl FnOnce(&mut MailData),
) -> Mail {
    let CustomerMail {
        kind,
        to,
        promise,
        caused_by,
    } = mail;
    let mut data = mail_data(incident, config, promise);
    shape(&mut data);
    let (in_reply_to, references) = conversation.threading();
    Mail {
        kind,
        to: to.address,
        to_name: to.name,
        data,
        promise,
        caused_by,
        in_reply_to,
        references,
        thread_root: conversation.thread_root.clone(),
        attachments_from: None,
    }
}

/// One mail to a staff member for the notifications the staff cap held back: a line for each
/// (incident, what, when, subject), in the team's time zone. None when there is nothing held.
pub fn digest(
    held: &[(IncidentNo, MailKind, DateTime<Utc>, String)],
    recipient: &str,
    config: &Config,
) -> Option<Mail> {
    let (newest, _, _, _) = held.last()?;
    let tz = config.cadence.timezone;
    let lines = held
        .iter()
        .map(|(n, kind, at, subject)| {
            format!(
                "#{n} {}: {} ({})",
                kind_in_words(*kind),
                if subject.is_empty() {
                    "(no subject)"
                } else {
                    subject
                },
                at.with_timezone(&tz).format("%a %H:%M %Z")
            )
        })
        .collect::<Vec<_>>();
    let mut data = MailData {
        support: SupportData {
            name: config.support.name.clone(),
            address: config.support.address.clone(),
        },
        ..MailData::default()
    };
    data.incident.number = newest.0;
    data.staff = StaffData {
        reason: format!(
            "{} notifications since your limit of {} per {} was reached",
            held.len(),
            config.staff.notify_cap.max,
            human_duration(config.staff.notify_cap.within)
        ),
        digest: lines,
        ..StaffData::default()
    };
    Some(Mail {
        kind: MailKind::StaffDigest,
        to: recipient.to_string(),
        to_name: None,
        data,
        promise: None,
        caused_by: None,
        in_reply_to: None,
        references: Vec::new(),
        thread_root: None,
        attachments_from: None,
    })
}

/// A staff notification's kind, as a digest line says it.
fn kind_in_words(kind: MailKind) -> &'static str {
    match kind {
        MailKind::StaffNew => "new incident",
        MailKind::StaffReply => "the customer wrote",
        MailKind::StaffReopened => "reopened",
        MailKind::Escalation => "needs attention",
        MailKind::StaffAtRisk => "a promised update has no news",
        MailKind::StaffUndeliverable => "the customer's address bounced",
        MailKind::StaffForged => "a mail claimed to come from staff",
        MailKind::StaffRefused => "a command was refused",
        _ => "notification",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(n: usize) -> Conversation {
        Conversation {
            ids: (1..=n).map(|i| format!("m{i}@x")).collect(),
            thread_root: None,
        }
    }

    #[test]
    fn a_short_conversation_threads_to_its_newest_message_with_every_reference() {
        let (reply_to, refs) = conv(3).threading();
        assert_eq!(reply_to.as_deref(), Some("m3@x"));
        assert_eq!(refs, vec!["m1@x", "m2@x", "m3@x"]);
        assert_eq!(conv(0).threading(), (None, vec![]));
    }

    #[test]
    fn a_long_conversation_keeps_its_first_and_newest_references_only() {
        let (reply_to, refs) = conv(3000).threading();
        assert_eq!(reply_to.as_deref(), Some("m3000@x"));
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "m1@x");
        assert_eq!(refs[1], "m2992@x");
        assert_eq!(refs.last().map(String::as_str), Some("m3000@x"));
    }
}
