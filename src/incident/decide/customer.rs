//! What a customer's reply causes: a status answer, a new pace, a stop, a check-back answer,
//! a reopen; staff told of each. Also their address bouncing.

use super::*;
use crate::incident::replies::Reading;

impl Decision<'_> {
    /// After resolution the incident reopens and they are told so. Otherwise: asking for news
    /// or for a pace gets the status at once; asking us to stop ends the automatic updates
    /// (confirmed once); anything else goes to staff and nothing automatic goes back (the next
    /// update thanks them for it). While waiting on them, their reply resumes the updates.
    /// Staff see every reply.
    pub(super) fn customer_reply(
        &mut self,
        message: MessageRow,
        from: &str,
        trust: Trust,
        written: &Written,
    ) {
        let who = Actor::Customer(from.to_string());
        self.emit(Effect::CustomerWrote);
        let is_customer = [
            &self.incident.customer_address,
            &self.incident.reply_address,
        ]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(from));
        if trust == Trust::Verified && is_customer && self.incident.sender_trust != Trust::Verified
        {
            self.emit(Effect::SenderTrust(Trust::Verified));
            self.fx.log(
                EventKind::SenderVerified,
                &who,
                self.say(said!("event.customer.verified")),
            );
        }
        if !written.unsure.is_empty() {
            // Reading a pace, a stop or a "yes, fixed" out of words that may be ours would act
            // on what we said, not on what they asked: a person reads it.
            self.fx.log(
                EventKind::ReplyUnclear,
                &who,
                self.say(said!("event.customer.unclear", why = written.unsure)),
            );
            let reason = self.say(said!("staff.customer.unclear", why = written.unsure));
            self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
            return;
        }
        let proven = policy::for_sender(trust, self.policy.trust) == Treatment::Full;
        let replies = self.policy.replies;
        let intent = replies::read(
            &written.text,
            self.policy.intents,
            &replies.news_phrases,
            &replies.stop_phrases,
        );
        let pace_request = pace::read(&written.text);
        let asked_pace = pace_request.cadence();
        // Anyone can write as the customer: only a proven sender sets the pace (a faster one
        // would send more mail to whoever the address really is). Asking for less is safe.
        let pace = asked_pace.filter(|_| proven);
        let mut reason = match (&pace_request, asked_pace) {
            (_, Some(wanted)) if !proven => self.say(said!(
                "staff.customer.pace_unproven",
                pace = self.words().pace(None, wanted),
                trust = trust,
            )),
            (pace::PaceRequest::Unclear(sentence), _) => self.say(said!(
                "staff.customer.pace_unclear",
                sentence = sentence,
                pace = self.words().pace(None, self.incident.cadence),
                number = self.incident.number,
            )),
            _ => self.say(said!("staff.customer.replied")),
        };
        if self.incident.state() == State::Resolved
            && self.check_back_answered(&who, message, from, written, proven, intent)
        {
            return;
        }
        if self.incident.state().is_over() {
            self.reopen(&who, Some(message));
            self.notify_reply(
                MailKind::StaffReopened,
                message,
                from,
                written,
                &self.say(said!("staff.customer.after_resolution")),
            );
            return;
        }
        let resumed = self.incident.state() == State::Waiting;
        if resumed {
            self.resume(&who);
            reason = self.say(said!("staff.customer.resumed"));
        }
        // "Please don't email me every hour" is about the pace, not a request to stop.
        let stop = intent.stop_updates && pace_request == pace::PaceRequest::Nothing;
        if stop {
            reason = self.say(said!("staff.customer.stop"));
            if !self.incident.updates_stopped {
                self.stop_updates(&who);
                let news = self.news();
                self.mail_customer(MailKind::Status, None, Some(message), |d| {
                    news.put(d);
                    d.updates_stopped = true;
                });
            }
        } else if let Some(wanted) = pace {
            // Asking for a pace is asking for updates: a stop asked for earlier ends.
            if self.incident.updates_stopped {
                self.emit(Effect::StopUpdates(false));
            }
            self.set_cadence(&who, wanted);
            let clamped = self.incident.cadence != wanted;
            reason = self.say(said!(
                "staff.customer.pace",
                pace = self.words().pace(None, self.incident.cadence)
            ));
            self.status_answer(message, |d| {
                d.cadence_changed = true;
                d.pace_clamped = clamped;
            });
        } else if let (true, false, None, Some((sent, within))) = (
            intent.asks_for_news,
            resumed,
            asked_pace,
            self.facts.answers_used_up(),
        ) {
            // A chaser past the answer cap: the cap keeps a forger from using us to flood an
            // address, but a real customer must not be left in silence: a person answers.
            reason = self.say(said!(
                "staff.customer.chasing",
                sent = sent,
                within = self.words().duration(None, within),
            ));
            let said = self.say(said!("event.customer.chasing", sent = sent));
            self.fx.log(EventKind::CustomerReply, &who, said);
        } else if intent.asks_for_news || resumed || asked_pace.is_some() {
            if intent.asks_for_news && asked_pace.is_none() {
                let unclear = std::mem::take(&mut reason);
                reason = self.say(said!("staff.customer.news"));
                if matches!(pace_request, pace::PaceRequest::Unclear(_)) {
                    reason = self.say(said!("staff.customer.news_and", unclear = unclear));
                }
            }
            let (thanks, when) = if resumed {
                self.thanks()
            } else {
                (String::new(), String::new())
            };
            self.status_answer(message, |d| {
                d.thanks_for = thanks;
                d.thanks_when = when;
                d.resumed = resumed;
            });
        }
        self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
    }

    /// A reply after the fix, read as an answer to "is it working now?". Only a clear no
    /// reopens (returns false: the caller reopens); a yes closes with thanks (owning it when
    /// they are unhappy with how long it took); a rating alone, a thank-you, a request to stop
    /// the mails (no check-back then) or anything unclear keeps it resolved and tells staff.
    pub(super) fn check_back_answered(
        &mut self,
        who: &Actor,
        message: MessageRow,
        from: &str,
        written: &Written,
        proven: bool,
        intent: replies::Intent,
    ) -> bool {
        let answer = replies::check_back_answer_in(
            &written.text,
            self.policy.intents,
            self.incident.lang.as_deref(),
        );
        let rating = answer.rating.unwrap_or(0);
        let (reading, reason) = match answer.fixed {
            Some(false) => (Reading::NotFixed, None),
            // Anyone can write as the customer: a "yes" from a sender nobody proved closes
            // nothing (a "no" reopens, which is safe); staff decide.
            Some(true) if !proven => (
                Reading::WorksUnproven,
                Some(if answer.rating.is_some() {
                    said!("staff.check_back.works_unproven_rated", rating = rating)
                } else {
                    said!("staff.check_back.works_unproven")
                }),
            ),
            Some(true) => {
                self.close(who);
                let (rating, unhappy) = (i64::from(rating), answer.unhappy);
                self.mail_customer(MailKind::ThankYou, None, Some(message), |d| {
                    d.rating = rating;
                    d.unhappy = unhappy;
                });
                match (answer.unhappy, answer.rating.is_some()) {
                    (true, _) => (
                        Reading::WorksUnhappy,
                        Some(said!("staff.check_back.works_unhappy")),
                    ),
                    (false, true) => (
                        Reading::Works,
                        Some(said!("staff.check_back.works_rated", rating = rating)),
                    ),
                    (false, false) => (Reading::Works, Some(said!("staff.check_back.works"))),
                }
            }
            // A thank-you for the fix is not news that it broke: it stays resolved.
            None if answer.thanks_only => (Reading::Thanks, Some(said!("staff.check_back.thanks"))),
            // A rating alone says how we did, not whether it works: thanked, left resolved
            // (it closes when its time comes), and staff see it.
            None if answer.rating.is_some() => {
                let said = self.say(said!("event.customer.rated", rating = rating));
                self.fx.log(EventKind::CustomerReply, who, said);
                if proven {
                    let rating = i64::from(rating);
                    self.mail_customer(MailKind::ThankYou, None, Some(message), |d| {
                        d.rating = rating;
                        d.rating_only = true;
                    });
                }
                (
                    Reading::Rated,
                    Some(said!("staff.check_back.rated", rating = rating)),
                )
            }
            // "Please stop emailing me about this": no check-back then; it closes as a quiet
            // resolved incident does.
            None if intent.stop_updates => {
                let close_at = self.close_quietly_later();
                let said = self.say(said!(
                    "event.customer.no_check_back",
                    close = stamp(close_at)
                ));
                self.fx.log(EventKind::UpdatesStopped, who, said);
                (Reading::Stop, Some(said!("staff.check_back.stop")))
            }
            // Neither yes nor no: a person reads it; reopening on a guess would restart the
            // updates of a fixed problem.
            None => {
                let said = self.say(said!("event.customer.check_back_unclear"));
                self.fx.log(EventKind::CustomerReply, who, said);
                (
                    Reading::Unclear,
                    Some(said!(
                        "staff.check_back.unclear",
                        number = self.incident.number
                    )),
                )
            }
        };
        self.emit(Effect::CheckBackAnswer {
            message,
            fixed: answer.fixed,
            rating: answer.rating,
            reading,
        });
        let Some(reason) = reason else {
            return false;
        };
        let reason = self.say(reason);
        self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
        true
    }

    /// The status at once: news they have not heard (or when they last had news) and the next
    /// promised update.
    pub(super) fn status_answer(&mut self, message: MessageRow, shape: impl FnOnce(&mut MailData)) {
        let news = self.news();
        let promise = self
            .incident
            .next_update_at()
            .filter(|_| !self.incident.updates_stopped);
        self.mail_customer(MailKind::Status, promise, Some(message), |d| {
            news.put(d);
            d.updates_stopped = false;
            shape(d);
        });
    }

    pub(super) fn notify_reply(
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
    pub(super) fn held_reply(
        &mut self,
        message: MessageRow,
        from: &str,
        why: &str,
        written: &Written,
    ) {
        self.emit(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::HeldForStaff,
            actor: Actor::Daemon,
            detail: self.say(said!("event.customer.held", from = from, why = why)),
        }));
        let reason = self.say(said!("staff.customer.held", from = from, why = why));
        self.notify_reply(MailKind::StaffReply, message, from, written, &reason);
    }

    /// No more automatic updates for this incident; the resolution still goes out.
    pub(super) fn stop_updates(&mut self, who: &Actor) {
        self.emit(Effect::StopUpdates(true));
        self.settle_promises();
        self.set_next_update(None);
        self.fx.log(
            EventKind::UpdatesStopped,
            who,
            self.say(said!("event.customer.stopped")),
        );
    }

    pub(super) fn undeliverable(&mut self, address: &str, reason: &str) {
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
}

#[cfg(test)]
mod tests {
    //! Each rule as a scenario a support lead would recognise, with a fixed clock.

    use super::super::test_kit::decide;
    use super::super::test_kit::*;
    use super::super::tests_support::{at, T0};
    use super::super::*;
    use crate::incident::replies::Reading;

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
    fn the_check_back_yes_closes_with_thanks_no_reopens_and_a_rating_is_recorded() {
        let f = resolved_facts();
        let reply = |text: &str| ann_writes(9, text);
        let now = at("2026-11-26T10:00:00Z");
        let fx = decide(&f, &reply("Yes, all good now. 5"), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Closed));
        // What the report counts is what was done: one reading per answer.
        let reading = |fx: &Effects| -> Vec<Reading> {
            fx.list
                .iter()
                .filter_map(|e| match e {
                    Effect::CheckBackAnswer { reading, .. } => Some(*reading),
                    _ => None,
                })
                .collect()
        };
        assert!(fx.list.contains(&Effect::CheckBackAnswer {
            message: MessageRow(9),
            fixed: Some(true),
            rating: Some(5),
            reading: Reading::Works,
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
        assert_eq!(reading(&fx), [Reading::WorksUnproven]);
        let fx = decide(&f, &reply("No, it still fails."), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
        assert!(fx.mails().any(|m| m.kind == MailKind::Reopened));
        assert_eq!(reading(&fx), [Reading::NotFixed]);
        // A bare "4/5" is thanked, and stays resolved: it says how we did, not that it works.
        let fx = decide(&f, &reply("4/5"), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), None, "a rating alone closes nothing");
        assert!(fx.list.contains(&Effect::CheckBackAnswer {
            message: MessageRow(9),
            fixed: None,
            rating: Some(4),
            reading: Reading::Rated,
        }));
        let thanks: Vec<&Mail> = fx
            .mails()
            .filter(|m| m.kind == MailKind::ThankYou)
            .collect();
        assert_eq!(thanks.len(), 1, "the rating is thanked");
        assert!(thanks[0].data.rating_only && thanks[0].data.rating == 4);
        let fx = decide(&f, &reply("Thanks a lot!"), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), None, "a thank-you reopens nothing");
        assert!(fx
            .mails()
            .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
        assert_eq!(reading(&fx), [Reading::Thanks]);
        let fx = decide(
            &f,
            &reply("Hmm, I will have a look tomorrow."),
            &staffed(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.new_state(), None);
        assert_eq!(reading(&fx), [Reading::Unclear]);
        let fx = decide(
            &f,
            &reply("It works. But it took you a week. Not impressed."),
            &staffed(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.new_state(), Some(State::Closed));
        assert_eq!(reading(&fx), [Reading::WorksUnhappy]);
    }

    #[test]
    fn a_chaser_past_the_answer_cap_is_no_silence_staff_are_told() {
        let mut f = facts(open_incident());
        let window = crate::config::CapWindow {
            max: 3,
            within: Duration::from_secs(86_400),
        };
        f.answers = vec![(window, 3)];
        let chase = Event::CustomerReply {
            message: MessageRow(12),
            from: "ann@example.test".into(),
            trust: Trust::Verified,
            written: Written {
                text: "Hello?? Is anyone there?".into(),
                ..Written::default()
            },
        };
        let fx = decide(&f, &chase, &staffed(), at("2026-11-23T11:00:00Z")).expect("decided");
        assert!(
            fx.mails().all(|m| m.kind == MailKind::StaffReply),
            "no fourth answer to the customer"
        );
        let staff = fx.mails().next().expect("staff told");
        assert!(
            staff.data.staff.reason.contains("chasing")
                && staff
                    .data
                    .staff
                    .reason
                    .contains("3 automatic answers within 1 day"),
            "{}",
            staff.data.staff.reason
        );
        // Under the cap the chaser is answered at once.
        f.answers = vec![(window, 2)];
        let fx = decide(&f, &chase, &staffed(), at("2026-11-23T11:00:00Z")).expect("decided");
        assert!(fx.mails().any(|m| m.kind == MailKind::Status));
    }

    #[test]
    fn after_the_fix_only_a_clear_no_reopens() {
        let f = resolved_facts();
        let reply = |text: &str| ann_writes(9, text);
        let now = at("2026-11-26T10:00:00Z");
        // A French and a Spanish yes close with thanks.
        for yes in [
            "Oui, j'ai bien reçu la lampe. Merci !",
            "Sí, ya me ha llegado el reembolso",
            "All sorted, cheers!",
        ] {
            let fx = decide(&f, &reply(yes), &staffed(), now).expect("decided");
            assert_eq!(fx.new_state(), Some(State::Closed), "{yes}");
            assert!(fx.mails().any(|m| m.kind == MailKind::ThankYou), "{yes}");
        }
        // It works, but they are not happy: closed, and the thank-you owns it.
        let fx = decide(
            &f,
            &reply("It works. But it took you a week to fix it. Not impressed."),
            &staffed(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.new_state(), Some(State::Closed));
        let thanks = fx
            .mails()
            .find(|m| m.kind == MailKind::ThankYou)
            .expect("thanks");
        assert!(thanks.data.unhappy);
        // Neither yes nor no: resolved still, staff read it; nothing goes to the customer.
        let fx = decide(
            &f,
            &reply("Could you also send me the invoice for the lamp?"),
            &staffed(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.new_state(), None);
        assert!(fx
            .mails()
            .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
        let staff = fx.mails().next().expect("staff told");
        assert!(staff.data.staff.reason.contains("neither a yes nor a no"));
        // "Please stop emailing me about this": no check-back, no reopen; it closes later.
        let mut waiting_for_check_back = f.clone();
        waiting_for_check_back.incident.stage = Stage::Resolved {
            check_back_at: Some(at("2026-11-27T09:00:00Z")),
            close_at: None,
        };
        let fx = decide(
            &waiting_for_check_back,
            &reply("Please stop emailing me about this."),
            &staffed(),
            now,
        )
        .expect("decided");
        assert_eq!(fx.new_state(), None);
        assert!(fx.list.iter().any(|e| matches!(
            e,
            Effect::CheckBack {
                check_back_at: None,
                close_at: Some(_)
            }
        )));
        assert!(fx
            .mails()
            .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
        // A clear no reopens, in French too.
        let fx = decide(&f, &reply("Non, toujours pas reçu."), &staffed(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
    }

    #[test]
    fn any_news_gets_a_status_answer_and_a_pace_request_changes_the_cadence() {
        let mut f = facts(open_incident());
        let note = Note {
            at: at(T0),
            author: "alice".into(),
            text: "Looking at the logs.".into(),
            visibility: NoteVisibility::Customer,
            signed: "Anna".into(),
        };
        f.latest_note = Some(note.clone());
        f.customer_note = Some(note.clone());
        f.unheard_note = Some(note);
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
        assert_eq!(mail.data.note_at, "today at 09:00", "dated");
        assert_eq!(mail.data.note_by, "Anna", "and named");
        assert_eq!(
            mail.promise,
            Some(at("2026-11-23T13:00:00Z")),
            "nothing reset"
        );
        // Heard already: not repeated as if it were new; the answer says since when.
        let mut heard = f.clone();
        heard.unheard_note = None;
        let later = at("2026-11-25T10:00:00Z");
        let fx = decide(&heard, &reply("Any news?"), &config(), later).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.data.note, "");
        assert_eq!(mail.data.last_news_at, "on Monday at 09:00");
        // Written before the fix of a problem that came back: not news at all.
        let mut reopened = f.clone();
        reopened.incident.resolution = Some(crate::incident::decide::tests_support::fixed(at(
            "2026-11-24T09:00:00Z",
        )));
        let fx = decide(&reopened, &reply("Any news?"), &config(), later).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(
            (mail.data.note.as_str(), mail.data.last_news_at.as_str()),
            ("", "")
        );
        assert!(!mail.data.cadence_changed);
        let fx =
            decide(&f, &reply("Please update me every hour."), &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert!(mail.data.cadence_changed);
        assert!(!mail.data.pace_clamped, "an hour is what they asked");
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
        // Faster than the team can promise: the mail says it is the closest we can keep to.
        let fx = decide(
            &f,
            &reply("Please update me every 5 minutes."),
            &config(),
            now,
        )
        .expect("decided");
        let mail = only_mail(&fx);
        assert!(
            mail.data.cadence_changed && mail.data.pace_clamped,
            "{:?}",
            mail.data.pace
        );
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
    fn a_reply_while_waiting_resumes_and_a_no_after_resolution_reopens() {
        let mut waiting = open_incident();
        waiting.stage = Stage::Waiting {
            waiting_for: String::new(),
        };
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
        resolved.stage = Stage::Resolved {
            check_back_at: None,
            close_at: None,
        };
        // New details after the fix are no "it broke again": staff read them.
        let fx = decide(&facts(resolved.clone()), &reply, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), None);
        let broken = Event::CustomerReply {
            message: MessageRow(8),
            from: "ann@example.test".into(),
            trust: Trust::Verified,
            written: Written {
                text: "It is broken again since this morning.".into(),
                ..Written::default()
            },
        };
        let fx = decide(&facts(resolved), &broken, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
        assert_eq!(only_mail(&fx).kind, MailKind::Reopened);
        assert!(fx.logs(EventKind::Reopened));
        // A closed incident reopens on any reply, as before.
        let mut closed = open_incident();
        closed.stage = Stage::Closed;
        let fx = decide(&facts(closed), &reply, &config(), now).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
    }
}
