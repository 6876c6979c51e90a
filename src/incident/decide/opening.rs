//! A complaint opens an incident: the acknowledgement, or the reopened mail of the incident
//! it continues; and a staff member vouching for the customer.

use super::*;

impl Decision<'_> {
    pub(super) fn opened(&mut self, opening: &Opening) {
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
    pub(super) fn acknowledge(&mut self, opening: &Opening) {
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
    pub(super) fn vouch(&mut self, by: &str) {
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
}
