//! Policy: what an incident needs now. Pure functions over plain data.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::SupportConfig;
use crate::mail::{ParsedMail, Person};
use crate::store;
use crate::templates::{
    human_duration, human_time, CustomerData, IncidentData, MailData, ResolutionData, SupportData,
};

/// When the customer will next hear from us: the cadence after now.
pub fn next_update_at(now: DateTime<Utc>, cadence: Duration) -> DateTime<Utc> {
    let step = chrono::Duration::from_std(cadence).unwrap_or(chrono::Duration::hours(4));
    now.checked_add_signed(step).unwrap_or(now)
}

/// Who gets the acknowledgement of a new incident, or why nobody does.
pub fn acknowledgement_recipient<'m>(
    mail: &'m ParsedMail,
    support: &SupportConfig,
) -> Result<&'m Person, String> {
    let to = mail.answer_to();
    if support.is_own_address(&to.address) {
        return Err(format!(
            "the reply address {} is our own; acknowledging would mail ourselves",
            to.address
        ));
    }
    Ok(to)
}

/// The facts an incident's mails are written from.
pub struct IncidentFacts<'a> {
    pub number: i64,
    pub token: &'a str,
    pub subject: &'a str,
    pub summary: &'a str,
    pub opened: DateTime<Utc>,
    pub customer: &'a Person,
    pub cadence: Duration,
    pub next_update: DateTime<Utc>,
    /// The time zone customers read times in.
    pub tz: chrono_tz::Tz,
}

pub fn mail_data(facts: &IncidentFacts<'_>, support: &SupportConfig) -> MailData {
    MailData {
        incident: IncidentData {
            number: facts.number,
            token: facts.token.to_string(),
            subject: facts.subject.to_string(),
            summary: facts.summary.to_string(),
            opened: human_time(facts.opened, facts.tz),
            opened_iso: store::ts(facts.opened),
            state: "open".into(),
            ..IncidentData::default()
        },
        customer: CustomerData {
            name: facts.customer.name.clone(),
            address: facts.customer.address.clone(),
        },
        support: SupportData {
            name: support.name.clone(),
            address: support.address.clone(),
        },
        next_update: human_time(facts.next_update, facts.tz),
        next_update_iso: store::ts(facts.next_update),
        cadence: human_duration(facts.cadence),
        ..MailData::default()
    }
}

/// Template data for a mail about an existing incident. `promise` is the next update the mail
/// promises (none for resolution, check-back and escalation).
pub fn incident_mail_data(
    incident: &store::Incident,
    support: &SupportConfig,
    promise: Option<DateTime<Utc>>,
    tz: chrono_tz::Tz,
) -> MailData {
    let opened = store::parse_ts(&incident.opened_at).unwrap_or_default();
    MailData {
        incident: IncidentData {
            number: incident.number,
            token: incident.token.clone(),
            subject: incident.subject.clone(),
            summary: incident.summary.clone(),
            opened: human_time(opened, tz),
            opened_iso: incident.opened_at.clone(),
            state: incident.state.clone(),
            tags: incident.tags.clone(),
            recurring: incident.recurring,
        },
        customer: CustomerData {
            name: incident.customer_name.clone(),
            address: incident.customer_address.clone(),
        },
        support: SupportData {
            name: support.name.clone(),
            address: support.address.clone(),
        },
        next_update: promise.map(|t| human_time(t, tz)).unwrap_or_default(),
        next_update_iso: promise.map(store::ts).unwrap_or_default(),
        cadence: human_duration(incident.cadence()),
        resolution: ResolutionData {
            root_cause: incident.root_cause.clone().unwrap_or_default(),
            prevention: incident.prevention.clone().unwrap_or_default(),
            compensation: incident.compensation.clone().unwrap_or_default(),
        },
        previous_incident: incident.previous_incident.unwrap_or(0),
        ..MailData::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_update_is_one_cadence_away() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T09:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let next = next_update_at(now, Duration::from_secs(4 * 3600));
        assert_eq!(store::ts(next), "2026-11-23T13:00:00.000Z");
    }
}
