//! A complaint opens an incident: the acknowledgement, or the reopened mail of the incident
//! it continues; and a staff member vouching for the customer.

use super::*;

impl Decision<'_> {
    pub(super) fn opened(&mut self, opening: &Opening) {
        let daemon = Actor::Daemon;
        let from = &opening.from.address;
        self.emit(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(opening.message),
            kind: EventKind::IncidentOpened,
            actor: daemon.clone(),
            detail: match opening.other_from.as_slice() {
                [] => self.say(said!(
                    "event.opened",
                    from = from,
                    subject = self.incident.subject
                )),
                others => self.say(said!(
                    "event.opened_other_from",
                    from = from,
                    others = others.join(", "),
                    subject = self.incident.subject,
                )),
            },
        }));
        if let Some((lang, source)) = &opening.language {
            let said = match source {
                crate::lang::Source::Header => said!("event.language.header", lang = lang),
                crate::lang::Source::Words { confidence } => said!(
                    "event.language.words",
                    lang = lang,
                    confidence = format!("{confidence:.2}")
                ),
            };
            let mut text = self.say(said);
            if !self.policy.answers_in(lang) {
                // Said as it is: staff must not believe a customer reads their own language.
                text = self.say(said!(
                    "event.language.no_set",
                    found = text,
                    lang = lang,
                    default = self.policy.language.default
                ));
            }
            self.fx.log(EventKind::LanguageSet, &daemon, text);
        }
        if !opening.stranger_to.is_empty() {
            self.emit(Effect::Event(NewEvent {
                incident: Some(self.incident.number),
                message: Some(opening.message),
                kind: EventKind::StrangerReference,
                actor: daemon.clone(),
                detail: self.say(said!(
                    "event.stranger_reference",
                    from = from,
                    incidents = incident_list(&opening.stranger_to),
                )),
            }));
        }
        if let (Some(repeat), None) = (&opening.repeats, opening.continues) {
            // The same customer again, soon after: the same problem as far as they are
            // concerned, so the mails own it ("the second time in three days").
            let count = repeat.count.max(1) + 1;
            self.emit(Effect::PreviousIncident(repeat.previous));
            self.emit(Effect::Repeats {
                count,
                previous_opened_at: repeat.opened_at,
            });
            let words = self.policy.phrases;
            let reason = self.say(said!(
                "event.wrote_again",
                from = from,
                within = words.duration(None, self.policy.recurring.link_within),
                previous = repeat.previous,
                since = words.since(None, self.now - repeat.opened_at),
                nth = words.ordinal(None, count),
            ));
            self.emit(Effect::Recurring {
                incident: self.incident.number,
                reason: reason.clone(),
            });
            self.fx.log(EventKind::Recurring, &daemon, reason);
        } else if opening.customer_incidents_in_window >= self.policy.recurring.incidents {
            let reason = self.say(said!(
                "event.many_incidents",
                from = from,
                count = opening.customer_incidents_in_window,
                within = self.words().duration(None, self.policy.recurring.window),
            ));
            self.emit(Effect::Recurring {
                incident: self.incident.number,
                reason: reason.clone(),
            });
            self.fx.log(EventKind::Recurring, &daemon, reason);
        }
        let promise = opening.promise;
        match opening.continues {
            Some(previous) => {
                self.emit(Effect::PreviousIncident(previous));
                self.emit(Effect::Event(NewEvent {
                    incident: Some(self.incident.number),
                    message: Some(opening.message),
                    kind: EventKind::Continues,
                    actor: daemon.clone(),
                    detail: self.say(said!("event.continues", previous = previous)),
                }));
                self.emit(Effect::Event(NewEvent {
                    incident: Some(previous),
                    message: Some(opening.message),
                    kind: EventKind::Continued,
                    actor: daemon,
                    detail: self.say(said!("event.continued", number = self.incident.number)),
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
        if policy::for_incident(&self.incident, self.policy.trust) != Treatment::Full {
            written.trust = self.say(said!("staff.answered_plainly", trust = written.trust));
        }
        let previous = opening.continues;
        let kind = if previous.is_some() {
            MailKind::StaffReopened
        } else {
            MailKind::StaffNew
        };
        let reason = match previous {
            Some(p) => self.say(said!("staff.reason.late_reply", previous = p)),
            None => String::new(),
        };
        let shape = |d: &mut MailData| {
            d.staff = StaffData {
                reason: reason.clone(),
                from: customer.clone(),
                text: written.text.clone(),
                signature: written.signature.clone(),
                attachments: written.attachments.clone(),
                trust: written.trust.clone(),
                ..StaffData::default()
            };
        };
        match &opening.share {
            Some(share) => self.share_out(share, kind, opening.message, shape),
            None => self.notify_staff(kind, Some(opening.message), shape),
        }
    }

    /// A burst: the incident is assigned to `share.to`, who alone gets its notification (the
    /// thread they answer in). Every recipient's next digest lists it, the assignee's too, with
    /// the burst's earlier incidents: the burst is read there as a whole, and a reply to the
    /// digest with `#all` answers all of it.
    fn share_out(
        &mut self,
        share: &Share,
        kind: MailKind,
        message: MessageRow,
        shape: impl Fn(&mut MailData),
    ) {
        self.emit(Effect::Assign(share.to.clone()));
        let (max, within) = self
            .policy
            .staff
            .burst
            .map(|b| (b.max, self.words().duration(None, b.within)))
            .unwrap_or_default();
        let said = self.say(said!(
            "event.burst_shared",
            member = share.to,
            max = max,
            within = within
        ));
        self.fx.log(EventKind::Assigned, &Actor::Daemon, said);
        self.staff_mail(kind, std::slice::from_ref(&share.to), Some(message), shape);
        let mut recipients = self.policy.staff.recipients().to_vec();
        if !recipients.contains(&share.to) {
            recipients.push(share.to.clone());
        }
        let this = self.incident.number;
        for &incident in share.earlier.iter().chain([&this]) {
            self.emit(Effect::ListInDigest {
                incident,
                recipients: recipients.clone(),
            });
        }
    }

    /// The acknowledgement: to the incident's reply address (chosen when it opened, see
    /// [`policy::reply_address`]); never to us.
    pub(super) fn acknowledge(&mut self, opening: &Opening) {
        let to = Recipient::customer_of(&self.incident);
        if self.policy.support.is_own_address(&to.address) {
            self.emit(Effect::Event(NewEvent {
                incident: Some(self.incident.number),
                message: Some(opening.message),
                kind: EventKind::AcknowledgementSkipped,
                actor: Actor::Daemon,
                detail: self.say(said!("event.own_reply_address", address = to.address)),
            }));
            return;
        }
        let promise = opening.promise;
        let facts = opening.facts.clone();
        self.mail_to(
            MailKind::Acknowledgement,
            to,
            Some(promise.at),
            Some(opening.message),
            |d| {
                d.window_moved = promise.moved_by_window;
                d.facts = facts;
                d.understood = opening.understood.clone();
                d.attachments = opening.written.attachments.clone();
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
                self.say(said!("event.vouched")),
            );
        }
        self.emit(Effect::Vouched(by.to_string()));
    }
}

#[cfg(test)]
mod tests {
    //! Each rule as a scenario a support lead would recognise, with a fixed clock.

    use super::super::test_kit::decide;
    use super::super::test_kit::*;
    use super::super::tests_support::{at, T0};
    use super::super::*;

    #[test]
    fn a_new_complaint_is_acknowledged_once_threaded_to_it_with_the_first_promise() {
        let f = Facts::new(
            open_incident(),
            Conversation {
                ids: vec!["ann-1@client.example.test".into()],
                thread_root: None,
            },
        );
        let fx = decide(&f, &Event::Opened(an_opening(5)), &config(), at(T0)).expect("decided");
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
    fn an_acknowledgement_on_friday_evening_names_the_working_hours_and_mondays_holiday() {
        let mut config = office_hours();
        let tz = chrono_tz::Tz::Europe__Berlin;
        config.cadence.window = Some(
            clock::Window::parse("0 0 9 * * Mon-Fri", Duration::from_secs(8 * 3600), tz)
                .expect("window")
                .with_holidays(clock::Holidays::from_dates(["2026-12-07"]).expect("dates")),
        );
        // Friday 4 December, 17:30 in Berlin: the team has gone home, Monday is a holiday.
        let now = at("2026-12-04T16:30:00Z");
        let mut opening = an_opening(5);
        opening.promise = config.cadence.promise(now, config.cadence.default);
        // She writes from Los Angeles.
        let mut incident = open_incident();
        incident.customer_utc_offset = Some(-8 * 60);
        let f = Facts::new(incident, Conversation::default());
        let fx = decide(&f, &Event::Opened(opening), &config, now).expect("decided");
        let ack = only_mail(&fx);
        assert_eq!(
            ack.data.working_hours_theirs, "00:00–08:00 your time, PST",
            "what those hours mean where she is"
        );
        assert_eq!(
            ack.promise,
            Some(at("2026-12-08T08:15:00Z")),
            "Tuesday 09:15"
        );
        assert_eq!(
            ack.data.working_hours,
            "Monday to Friday, 09:00–17:00 (CET)"
        );
        assert_eq!(ack.data.closed_days, "Monday 7 December");
        assert_eq!(ack.data.team_back, "on Tuesday at 09:00");
    }

    /// A burst shares the new incident out: Ben is assigned and alone gets its thread; every
    /// member's digest lists it with the burst's earlier incident; the customer is answered
    /// as always.
    #[test]
    fn in_a_burst_the_new_incident_goes_to_one_member_and_every_digest_lists_the_burst() {
        let mut config = config();
        config.staff.members = vec!["anna@example.test".into(), "ben@example.test".into()];
        let f = Facts::new(open_incident(), Conversation::default());
        let mut opening = an_opening(5);
        opening.share = Some(Share {
            to: "ben@example.test".into(),
            earlier: vec![IncidentNo(7)],
        });
        let fx = decide(&f, &Event::Opened(opening), &config, at(T0)).expect("decided");
        assert!(fx.list.contains(&Effect::Assign("ben@example.test".into())));
        let new: Vec<&Mail> = fx
            .mails()
            .filter(|m| m.kind == MailKind::StaffNew)
            .collect();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].to, "ben@example.test");
        assert_eq!(new[0].data.incident.assignee, "ben@example.test");
        let listed: Vec<IncidentNo> = fx
            .list
            .iter()
            .filter_map(|e| match e {
                Effect::ListInDigest {
                    incident,
                    recipients,
                } => {
                    assert_eq!(recipients, &config.staff.members);
                    Some(*incident)
                }
                _ => None,
            })
            .collect();
        assert_eq!(listed, vec![IncidentNo(7), f.incident.number]);
        assert_eq!(
            fx.mails()
                .filter(|m| m.kind == MailKind::Acknowledgement)
                .count(),
            1
        );
    }

    #[test]
    fn the_acknowledgement_goes_to_the_reply_address_but_never_to_our_own_address() {
        let mut incident = open_incident();
        incident.reply_address = "orders@example.test".into();
        let f = Facts::new(incident.clone(), Conversation::default());
        let fx = decide(&f, &Event::Opened(an_opening(5)), &config(), at(T0)).expect("decided");
        assert_eq!(only_mail(&fx).to, "orders@example.test");
        incident.reply_address = "support@example.test".into();
        let f = Facts::new(incident, Conversation::default());
        let fx = decide(&f, &Event::Opened(an_opening(5)), &config(), at(T0)).expect("decided");
        assert_eq!(fx.mails().count(), 0);
        assert!(fx.logs(EventKind::AcknowledgementSkipped));
    }

    #[test]
    fn an_unproven_sender_gets_a_plain_acknowledgement_that_repeats_nothing_they_wrote() {
        let mut incident = open_incident();
        incident.sender_trust = Trust::Unverified;
        let f = Facts::new(incident.clone(), Conversation::default());
        let fx = decide(&f, &Event::Opened(an_opening(5)), &staffed(), at(T0)).expect("decided");
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
        let fx = decide(&f, &Event::Opened(an_opening(5)), &full, at(T0)).expect("decided");
        let ack = fx.mails().next().expect("ack");
        assert!(!ack.data.plain && ack.unverified);
        assert_eq!(ack.data.incident.subject, incident.subject);
    }

    #[test]
    fn a_late_reply_continues_the_old_incident_with_the_reopened_mail_instead_of_an_ack() {
        let f = Facts::new(open_incident(), Conversation::default());
        let mut o = an_opening(9);
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
        let mut o = an_opening(5);
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
        let mut o = an_opening(5);
        o.written.text = "Hi,\nit broke again, order #48391.\nTom".into();
        // As intake reads them from the subject and the words.
        o.facts = crate::mail::facts::find(
            &format!("{}\n{}", f.incident.subject, o.written.text),
            &config().wording.facts,
        );
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
}
