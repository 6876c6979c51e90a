//! What happens when time passes: progress updates, a promise at risk, the check-back, the
//! escalation of a quiet incident.

use super::*;

impl Decision<'_> {
    /// "Ann was promised an update by 14:00; reply with the news": once per promise, and only
    /// when no staff note came since the last promise. A member with several promises at risk
    /// at once gets one mail, in the thread of the first, listing the rest ([`AtRisk`]).
    pub(super) fn promise_at_risk(&mut self, at: &AtRisk) {
        let Some(promised) = self.incident.next_update_at() else {
            return;
        };
        if self.incident.state() != State::Open
            || self.incident.updates_stopped
            || self.incident.at_risk_warned_for == Some(promised)
            || promised > at.until
        {
            return;
        }
        self.emit(Effect::AtRiskWarned(promised));
        if self
            .facts
            .unheard_note
            .as_ref()
            .is_some_and(|n| n.visibility == NoteVisibility::Customer)
        {
            return;
        }
        if let Some(why) = self.no_alarm_now() {
            let said = self.say(said!(
                "event.timers.at_risk_quiet",
                promised = stamp(promised),
                why = why
            ));
            self.fx.log(EventKind::PromiseAtRisk, &Actor::Daemon, said);
            return;
        }
        let recipients = self.alarm_recipients(false);
        let own: Vec<&String> = recipients
            .iter()
            .filter(|r| !at.told_with.contains_key(*r))
            .collect();
        let with = recipients.iter().find_map(|r| at.told_with.get(r));
        let said = match with {
            Some(first) => said!(
                "event.timers.at_risk_together",
                promised = stamp(promised),
                first = first
            ),
            None => said!("event.timers.at_risk", promised = stamp(promised)),
        };
        self.fx
            .log(EventKind::PromiseAtRisk, &Actor::Daemon, self.say(said));
        for to in own {
            let also = at.also.get(to).cloned().unwrap_or_default();
            self.staff_mail(MailKind::StaffAtRisk, std::slice::from_ref(to), None, |d| {
                d.staff.also_at_risk = also.clone();
            });
        }
    }

    /// The promised update: the newest note the customer has not heard, or an honest "still
    /// working on it"; the next promise one cadence on. An update whose time already passed
    /// (the daemon was down) goes out once, says it is late, and the breach is recorded.
    pub(super) fn progress_due(&mut self) {
        if self.incident.state() != State::Open || self.incident.updates_stopped {
            return;
        }
        if let Some(opening) = self.outside_window() {
            // Due while the team is away (the daemon was down over the time, or the window
            // changed): the update goes at the next opening, and says it is late if it is.
            let at = clock::after(opening, self.policy.cadence.lead);
            self.set_next_update(Some(at));
            return;
        }
        // The hold's time has come: this is the update it promised, and the hold is over.
        if self.incident.on_hold.is_some() {
            self.emit(Effect::Hold(None));
        }
        let promised = self.incident.next_update_at();
        // Late only against a promise the customer was given (the ledger holds exactly those):
        // a time set without a mail (after staff wrote to them directly, say) breaks nothing.
        let overdue = self.facts.open_promises.iter().any(|due| *due < self.now);
        let news = self.news();
        let note = Some(news.note.clone()).filter(|n| !n.is_empty());
        let (thanks, thanks_when) = self.thanks();
        self.settle_promises();
        if overdue {
            let given = self.facts.open_promises.iter().min().copied();
            self.fx.log(
                EventKind::PromiseBreached,
                &Actor::Daemon,
                self.say(said!(
                    "event.timers.late",
                    promised = given.map(stamp).unwrap_or_default(),
                    now = stamp(self.now),
                )),
            );
        }
        // From the promised time when on time, so the cadence does not drift earlier by the
        // lead.
        let base = promised.filter(|p| *p > self.now).unwrap_or(self.now);
        let no_news = if note.is_some() {
            0
        } else {
            self.incident.updates_without_news + 1
        };
        // After `quiet_after` updates in a row with nothing new, more of the same helps
        // nobody: the pace slows a step, said once in this update (the next promise is kept
        // at the slower pace). Staff are asked for news by the escalation below.
        let quiet_after = i64::from(self.policy.cadence.quiet_after);
        // The pace of the run of updates that ends here (slowing changes the incident's).
        let pace = self.incident.cadence;
        let slower = self.policy.cadence.slower(pace);
        let slowed = quiet_after > 0
            && no_news > 0
            && no_news % quiet_after == 0
            && slower > self.incident.cadence;
        if slowed {
            self.emit(Effect::Cadence(slower));
            let said = self.say(said!(
                "event.timers.slowed",
                count = no_news,
                every = self.words().duration(None, slower)
            ));
            self.fx.log(EventKind::CadenceChanged, &Actor::Daemon, said);
        }
        let next = self.promise(base);
        self.set_next_update(Some(next.at));
        self.emit(Effect::UpdatesWithoutNews(no_news));
        let with_news = note.is_some();
        let nth = if no_news >= 2 {
            let lang = letters::language(&self.incident, self.policy);
            self.words().ordinal(self.policy.lang_set(&lang), no_news)
        } else {
            String::new()
        };
        self.mail_customer(MailKind::Progress, Some(next.at), None, |d| {
            news.put(d);
            d.no_news_nth = nth;
            d.pace_slowed = slowed;
            d.overdue = overdue;
            d.window_moved = next.moved_by_window;
            d.thanks_for = thanks;
            d.thanks_when = thanks_when;
        });
        self.fx.log(
            EventKind::ProgressDue,
            &Actor::Daemon,
            if with_news {
                self.say(said!("event.timers.progress_news", next = stamp(next.at)))
            } else {
                self.say(said!(
                    "event.timers.progress_no_news",
                    next = stamp(next.at)
                ))
            },
        );
        // Escalate once when the run of updates without news reaches the limit, and again at
        // every step the pace slows: the update the customer no longer gets at the old pace is
        // a request for news to staff instead. Not when staff were asked during this run
        // already (a quiet-too-long escalation a few hours ago): one request per run. The
        // first run began with the last news; a later one with the step before it, whose
        // own request came before this run's second update.
        let limit = no_news >= i64::from(self.policy.escalation.no_news_updates)
            && self.incident.escalated_at.is_none();
        let asked_this_run = self.incident.escalated_at.is_some_and(|at| {
            if no_news == quiet_after {
                at > self
                    .incident
                    .last_note_at
                    .unwrap_or(self.incident.opened_at)
            } else {
                let runs = self.policy.cadence.quiet_after.saturating_sub(1);
                at > clock::before(self.now, pace * runs + pace / 2)
            }
        });
        if (limit || (slowed && !asked_this_run)) && self.no_alarm_now().is_none() {
            let reason = if self.incident.last_note_at.is_none() {
                self.say(said!(
                    "staff.timers.no_news_and_quiet",
                    count = no_news,
                    quiet = self.quiet_for()
                ))
            } else {
                self.say(said!("staff.timers.no_news", count = no_news))
            };
            self.escalate(&reason);
        }
    }

    pub(super) fn check_back_due(&mut self) {
        if self.incident.state() != State::Resolved {
            return;
        }
        if let Some(later) = self.outside_window() {
            self.emit(Effect::CheckBack {
                check_back_at: Some(later),
                close_at: None,
            });
            return;
        }
        let close_at = self.close_quietly_later();
        self.mail_customer(MailKind::CheckBack, None, None, |_| {});
        self.fx.log(
            EventKind::CheckBack,
            &Actor::Daemon,
            self.say(said!("event.timers.check_back", close = stamp(close_at))),
        );
    }

    /// The next opening of the sending window when now is outside it (None: mail may go now).
    pub(super) fn outside_window(&self) -> Option<DateTime<Utc>> {
        let window = self.policy.cadence.window.as_ref()?;
        if window.includes(self.now) {
            return None;
        }
        Some(self.policy.cadence.working_time(self.now))
    }

    /// How long no staff member has written, as it really is: "no staff note since the
    /// incident opened 8 hours ago", or "no staff note for 9 hours (the last on Monday …)".
    pub(super) fn quiet_for(&self) -> String {
        let tz = self.policy.cadence.timezone;
        match self.incident.last_note_at {
            None => self.say(said!(
                "staff.timers.quiet_since_opened",
                span = self.elapsed(self.now - self.incident.opened_at)
            )),
            Some(last) => self.say(said!(
                "staff.timers.quiet",
                span = self.elapsed(self.now - last),
                last = self.words().human_time(None, last, tz),
            )),
        }
    }

    /// Why no alarm may go to staff now, if so: outside staff hours, the incident on hold, or
    /// the customer wrote moments ago (staff have that mail in hand).
    pub(super) fn no_alarm_now(&self) -> Option<String> {
        if let Some(window) = &self.policy.staff.window {
            if !window.includes(self.now) {
                return Some(self.say(said!("event.timers.no_alarm.hours")));
            }
        }
        if self.incident.on_hold.is_some() {
            return Some(self.say(said!("event.timers.no_alarm.hold")));
        }
        let grace = self.policy.staff.grace_after_customer;
        if self
            .incident
            .customer_wrote_at
            .is_some_and(|wrote| wrote > clock::before(self.now, grace))
        {
            return Some(self.say(said!("event.timers.no_alarm.customer")));
        }
        None
    }

    /// The member the incident is assigned to, when they are one of the team.
    fn assignee(&self) -> Option<String> {
        self.incident
            .assigned_to
            .clone()
            .filter(|a| self.policy.staff.is_member(a))
    }

    /// Who an alarm goes to: the assignee alone when there is one, else the team (for an
    /// escalation, `[escalation] staff` when set).
    fn alarm_recipients(&self, escalation: bool) -> Vec<String> {
        if let Some(assignee) = self.assignee() {
            return vec![assignee];
        }
        self.team_for(escalation)
    }

    fn team_for(&self, escalation: bool) -> Vec<String> {
        if escalation && !self.policy.escalation.staff.is_empty() {
            self.policy.escalation.staff.clone()
        } else {
            self.policy.staff.recipients().to_vec()
        }
    }

    /// The assignee was told `[staff] team_after` ago and nobody has written since: now the
    /// team is (outside staff hours, when they are back).
    pub(super) fn team_alarm_due(&mut self) {
        let Some(due) = self.incident.team_alarm_at else {
            return;
        };
        if due > self.now {
            return;
        }
        if self.incident.state() != State::Open || self.incident.escalated_at.is_none() {
            self.emit(Effect::TeamAlarm(None));
            return;
        }
        if let Some(window) = &self.policy.staff.window {
            if !window.includes(self.now) {
                let back = clock::working_time(self.now, Some(window));
                self.emit(Effect::TeamAlarm(Some(back)));
                return;
            }
        }
        self.emit(Effect::TeamAlarm(None));
        let assignee = self.assignee().unwrap_or_default();
        let since = self
            .incident
            .escalated_at
            .map(|t| {
                self.words()
                    .human_time(None, t, self.policy.cadence.timezone)
            })
            .unwrap_or_default();
        let reason = self.say(said!(
            "staff.timers.assignee_silent",
            member = assignee,
            since = since
        ));
        let recipients: Vec<String> = self
            .team_for(true)
            .into_iter()
            .filter(|r| !r.eq_ignore_ascii_case(&assignee))
            .collect();
        self.fx
            .log(EventKind::Escalated, &Actor::Daemon, reason.clone());
        let customer = self.incident.customer_display();
        self.staff_mail(MailKind::Escalation, &recipients, None, |d| {
            d.escalation.reason = reason.clone();
            d.escalation.customer = customer.clone();
        });
    }

    /// Tells staff an incident needs them; it is not escalated again until a note is added.
    pub(super) fn escalate(&mut self, reason: &str) {
        self.emit(Effect::Escalated(Some(self.now)));
        let recipients = self.alarm_recipients(true);
        // The assignee alone first; the team hears after `[staff] team_after` if nobody
        // has written by then.
        if self.assignee().is_some() {
            // A team alarm already pending keeps its time: asking the assignee again must
            // not put off the team's turn.
            let later = clock::after(self.now, self.policy.staff.team_after);
            let at = self.incident.team_alarm_at.map_or(later, |t| t.min(later));
            self.emit(Effect::TeamAlarm(Some(at)));
        }
        if recipients.is_empty() {
            self.fx.log(
                EventKind::EscalationDue,
                &Actor::Daemon,
                self.say(said!("event.timers.nobody_to_escalate_to", reason = reason)),
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

/// One line about `incident`'s promise at risk, as another incident's alarm lists it: "#7 Ben
/// Carter <ben@…>: Parcel lost, update promised by 14:40".
pub fn at_risk_line(incident: &Incident, policy: &Policy, now: DateTime<Utc>) -> String {
    let promised = incident
        .next_update_at()
        .map(|t| {
            policy
                .phrases
                .short_time(None, t, now, policy.cadence.timezone)
        })
        .unwrap_or_default();
    let subject = if incident.subject.is_empty() {
        policy.say(&said!("digest.no_subject"))
    } else {
        incident.subject.clone()
    };
    policy.say(&said!(
        "event.timers.at_risk_line",
        number = incident.number,
        customer = incident.customer_display(),
        subject = subject,
        promised = promised
    ))
}

#[cfg(test)]
mod tests {
    //! Each rule as a scenario a support lead would recognise, with a fixed clock.

    use super::super::test_kit::decide;
    use super::super::test_kit::*;
    use super::super::tests_support::{at, T0};
    use super::super::*;

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
            signed: String::new(),
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
    fn the_third_update_without_news_escalates_to_staff_and_again_at_each_slower_step() {
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
        let kinds_after = |without_news: i64, asked: &str| {
            let mut incident = incident.clone();
            incident.updates_without_news = without_news;
            incident.escalated_at = Some(at(asked));
            let fx = decide(
                &facts(incident),
                &Event::ProgressDue,
                &config,
                at("2026-11-23T12:55:00Z"),
            )
            .expect("decided");
            fx.mails().map(|m| m.kind).collect::<Vec<_>>()
        };
        // Already asked: the fourth and fifth updates do not ask again...
        let day_before = "2026-11-22T12:00:00Z";
        assert_eq!(kinds_after(3, day_before), vec![MailKind::Progress]);
        assert_eq!(kinds_after(4, day_before), vec![MailKind::Progress]);
        // ...the sixth, where the pace slows again, does...
        assert_eq!(
            kinds_after(5, day_before),
            vec![MailKind::Progress, MailKind::Escalation]
        );
        // ...unless staff were asked during this run already (quiet for too long).
        assert_eq!(
            kinds_after(5, "2026-11-23T09:00:00Z"),
            vec![MailKind::Progress]
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
    fn the_check_back_then_the_close() {
        let mut resolved = open_incident();
        resolved.stage = Stage::Resolved {
            check_back_at: None,
            close_at: None,
        };
        resolved.resolution = Some(crate::incident::Resolved {
            at: at(T0),
            resolution: Resolution {
                question: Some("Can you pay by card again?".into()),
                ..Resolution::default()
            },
        });
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
    fn a_late_update_at_night_goes_at_the_next_opening_and_says_it_is_late() {
        let config = office_hours();
        let mut incident = open_incident();
        incident.stage = Stage::Open {
            next_update_at: Some(at("2026-11-27T15:50:00Z")),
        };
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
        f.incident.stage = Stage::Open {
            next_update_at: Some(at("2026-11-30T08:10:00Z")),
        };
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
        incident.stage = Stage::Open {
            next_update_at: Some(at("2026-11-23T14:01:00Z")),
        };
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
}
