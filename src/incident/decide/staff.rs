//! What each staff action does (the CLI's commands and the commands of a staff mail), with
//! the states it is allowed in.

use super::*;

/// The longest hold: past it the customer should hear from us anyway.
const MAX_HOLD_DAYS: i64 = 30;

impl Decision<'_> {
    /// A staff action. `note_by` is the name a note is signed with in the customer's mail.
    /// A staff action; the customer mail it causes carries the member's words, so no send
    /// cap holds it back (see [`Mail::staff_by`]).
    pub(super) fn staff(
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
                    if mail.kind.audience() == crate::incident::Audience::Customer {
                        mail.staff_by = Some(member.clone());
                    }
                }
            }
        }
        done
    }

    pub(super) fn staff_action(
        &mut self,
        who: Actor,
        action: &StaffAction,
        note_by: Option<&str>,
    ) -> Result<(), Refusal> {
        match action {
            StaffAction::Note(text) => self.note(&who, text, note_by.unwrap_or("")),
            StaffAction::Hold(spec) => self.hold(&who, spec, "", note_by.unwrap_or("")),
            StaffAction::InternalNote(text) => {
                let text = text.trim();
                if text.is_empty() {
                    return Err(self.refuse(said!("refusal.empty_note")));
                }
                self.internal_note(&who, text, NoteVisibility::Internal, None);
                Ok(())
            }
            StaffAction::Cadence(wanted) => {
                self.require(Transition::Cadence)?;
                self.set_cadence(&who, *wanted);
                Ok(())
            }
            StaffAction::Wait(what) => {
                self.require(Transition::Wait)?;
                // Waiting in silence would leave the customer waiting on us: they must be told
                // what we need, so a reason is required.
                let what = what.trim();
                if what.is_empty() {
                    return Err(self.refuse(said!("refusal.wait_without_reason")));
                }
                self.set_stage(Stage::Waiting {
                    waiting_for: what.to_string(),
                });
                // Waiting on them is no broken promise: what they held is settled as kept if
                // its time has not come, and none is made until we resume.
                self.settle_promises();
                self.set_next_update(None);
                self.fx.log(
                    EventKind::Waiting,
                    &who,
                    self.say(said!("event.staff.waiting", what = what)),
                );
                let w = what.to_string();
                self.mail_customer(MailKind::Waiting, None, None, |d| d.waiting_for = w);
                Ok(())
            }
            StaffAction::Resume => {
                self.require(Transition::Resume)?;
                self.resume(&who);
                // The customer is told we carry on, and when they hear from us next: a promise
                // they were given, so it can be kept or breached.
                let next = self.incident.next_update_at();
                let moved = self.resumed_moved;
                let news = self.news();
                self.mail_customer(MailKind::Status, next, None, |d| {
                    news.put(d);
                    d.resumed = true;
                    d.window_moved = moved;
                });
                Ok(())
            }
            StaffAction::Resolve(resolution) => self.resolve(&who, resolution),
            StaffAction::Close => {
                self.require(Transition::Close)?;
                self.close(&who);
                Ok(())
            }
            StaffAction::Reopen => {
                self.require(Transition::Reopen)?;
                self.reopen(&who, None);
                Ok(())
            }
            StaffAction::Tag {
                label,
                tagged_in_window,
            } => self.tag(&who, label, tagged_in_window),
            StaffAction::Lang(code) => {
                let Some(lang) = crate::lang::normalise(code) else {
                    return Err(self.refuse(said!("refusal.language", code = code)));
                };
                self.emit(Effect::Lang(lang.clone()));
                self.fx.log(
                    EventKind::LanguageSet,
                    &who,
                    self.say(said!("event.staff.language", lang = lang)),
                );
                Ok(())
            }
            StaffAction::Assign(name) => {
                let member = match self.policy.staff.member_named(name) {
                    Ok(member) => member,
                    Err(could_be) if could_be.is_empty() => {
                        return Err(self.refuse(said!(
                            "refusal.assign_nobody",
                            name = name,
                            members = self.policy.staff.members.join(", ")
                        )))
                    }
                    Err(could_be) => {
                        return Err(self.refuse(said!(
                            "refusal.assign_ambiguous",
                            name = name,
                            members = could_be.join(", ")
                        )))
                    }
                };
                if self.incident.assigned_to.as_deref() != Some(member.as_str()) {
                    self.emit(Effect::Assign(member.clone()));
                    let said = self.say(said!("event.staff.assigned", member = member));
                    self.fx.log(EventKind::Assigned, &who, said);
                }
                Ok(())
            }
        }
    }

    /// A note goes to the customer now in a progress update (signed `note_by`, when given),
    /// and the cadence clock restarts.
    pub(super) fn note(&mut self, who: &Actor, text: &str, note_by: &str) -> Result<(), Refusal> {
        let text = text.trim();
        if text.is_empty() {
            return Err(self.refuse(said!("refusal.empty_note")));
        }
        self.require(Transition::Note)?;
        // "The fix is live. Thanks, Anna": signed already; the mail does not sign it again.
        let note_by = if signed_already(text, note_by) {
            ""
        } else {
            note_by
        };
        self.emit(Effect::Note {
            author: who.name(),
            text: text.to_string(),
            visibility: NoteVisibility::Customer,
            signed: note_by.to_string(),
        });
        self.fx.log(EventKind::NoteAdded, who, text);
        self.emit(Effect::UpdatesWithoutNews(0));
        self.emit(Effect::Escalated(None));
        // News ends a hold: the cadence runs again from now.
        if self.incident.on_hold.is_some() {
            self.emit(Effect::Hold(None));
        }
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

    /// On hold until the time `spec` names, for its reason (and `words`, the rest of a staff
    /// mail): the customer is told when they will hear from us and why, in one mail; that time
    /// is the promise, so nothing is due and nothing breaches before it; no escalation while
    /// it lasts; at that time the promised update goes out and the hold ends.
    pub(super) fn hold(
        &mut self,
        who: &Actor,
        spec: &str,
        words: &str,
        note_by: &str,
    ) -> Result<(), Refusal> {
        if self.incident.state() != State::Open {
            return Err(self.refuse(said!(
                "refusal.hold_not_open",
                state = self.incident.state().as_str()
            )));
        }
        let day_starts = self
            .policy
            .cadence
            .window
            .as_ref()
            .and_then(|w| w.week().first().map(|(_, open, _)| *open))
            .unwrap_or(chrono::NaiveTime::MIN + chrono::Duration::hours(9));
        let tz = self.policy.cadence.timezone;
        let Some((until, why)) = clock::parse_until(spec, self.now, tz, day_starts) else {
            return Err(self.refuse(said!("refusal.hold_when", spec = spec.trim())));
        };
        if until - self.now > chrono::Duration::days(MAX_HOLD_DAYS) {
            return Err(self.refuse(said!(
                "refusal.hold_too_long",
                days = MAX_HOLD_DAYS,
                until = self.words().human_time(None, until, tz)
            )));
        }
        let text = [why.trim(), words.trim()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n\n");
        if text.is_empty() {
            return Err(self.refuse(said!("refusal.hold_why")));
        }
        let note_by = if signed_already(&text, note_by) {
            ""
        } else {
            note_by
        };
        self.emit(Effect::Hold(Some(crate::incident::Hold {
            until,
            why: text.clone(),
        })));
        self.emit(Effect::Note {
            author: who.name(),
            text: text.clone(),
            visibility: NoteVisibility::Customer,
            signed: note_by.to_string(),
        });
        let said = self.say(said!(
            "event.staff.on_hold",
            until = self.words().human_time(None, until, tz),
            why = text
        ));
        self.fx.log(EventKind::OnHold, who, said);
        self.emit(Effect::UpdatesWithoutNews(0));
        self.emit(Effect::Escalated(None));
        self.settle_promises();
        self.set_next_update(Some(until));
        let note_by = note_by.to_string();
        let promise_at = Some(until).filter(|_| !self.incident.updates_stopped);
        self.mail_customer(MailKind::Progress, promise_at, None, |d| {
            d.note = text.clone();
            d.note_by = note_by.clone();
            d.on_hold = true;
        });
        Ok(())
    }

    /// Clamped to the configured bounds. A shorter cadence brings the next update forward; a
    /// longer one never postpones an update already promised.
    pub(super) fn set_cadence(&mut self, who: &Actor, wanted: Duration) {
        let bounds = self.policy.cadence;
        let cadence = bounds.clamp(wanted);
        self.emit(Effect::Cadence(cadence));
        let sooner = self.promise(self.now).at;
        if self.incident.next_update_at().is_none_or(|c| sooner < c) {
            self.set_next_update(Some(sooner));
        }
        let words = self.words();
        let said = if cadence == wanted {
            said!("event.staff.cadence", every = words.duration(None, cadence))
        } else {
            said!(
                "event.staff.cadence_clamped",
                every = words.duration(None, cadence),
                wanted = words.duration(None, wanted),
                min = words.duration(None, bounds.min),
                max = words.duration(None, bounds.max),
            )
        };
        let said = self.say(said);
        self.fx.log(EventKind::CadenceChanged, who, said);
    }

    /// Updates start again, the next one a cadence from now.
    pub(super) fn resume(&mut self, who: &Actor) {
        let next = self.promise(self.now);
        self.resumed_moved = next.moved_by_window;
        self.set_stage(Stage::Open {
            next_update_at: None,
        });
        self.set_next_update(Some(next.at));
        let said = self.say(said!("event.staff.resumed"));
        self.fx.log(EventKind::Resumed, who, said);
    }

    /// Refused without a root cause and a prevention. Sends the resolution mail; the
    /// check-back follows.
    pub(super) fn resolve(&mut self, who: &Actor, resolution: &Resolution) -> Result<(), Refusal> {
        let missing = match (
            resolution.root_cause.trim().is_empty(),
            resolution.prevention.trim().is_empty(),
        ) {
            (true, true) => Some(said!("refusal.resolution.both")),
            (true, false) => Some(said!("refusal.resolution.root_cause")),
            (false, true) => Some(said!("refusal.resolution.prevention")),
            (false, false) => None,
        };
        if let Some(missing) = missing {
            return Err(self.refuse(missing));
        }
        self.require(Transition::Resolve)?;
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
            .policy
            .cadence
            .working_time(clock::after(self.now, self.policy.cadence.check_back_after));
        // We told them it was fixed before, and it was not: the mail owns that.
        let fixed_before = self.incident.resolved_at().is_some();
        let breached = self.settle_promises();
        let said = match &resolution.compensation {
            None => said!(
                "event.staff.resolved",
                root_cause = resolution.root_cause,
                prevention = resolution.prevention,
            ),
            Some(c) => said!(
                "event.staff.resolved_compensated",
                root_cause = resolution.root_cause,
                prevention = resolution.prevention,
                compensation = c,
            ),
        };
        let said = self.say(said);
        self.fx.log(EventKind::Resolved, who, said);
        self.emit(Effect::Resolve {
            resolution,
            check_back_at,
        });
        self.mail_customer(MailKind::Resolution, None, None, |d| {
            d.overdue = breached > 0;
            d.fixed_before = fixed_before;
        });
        Ok(())
    }

    pub(super) fn close(&mut self, who: &Actor) {
        // Closing an open incident drops the update the customer was promised: said out loud
        // (the history, the staff's confirmation), not silently.
        let dropped = self.incident.next_update_at().filter(|_| {
            self.incident.state() == State::Open && !self.facts.open_promises.is_empty()
        });
        self.settle_promises();
        self.set_stage(Stage::Closed);
        self.set_next_update(None);
        self.clear_check_back();
        if let Some(promised) = dropped {
            let said = self.say(said!(
                "event.staff.closed_open",
                promised = self.when(promised)
            ));
            self.fx.log(EventKind::UpdatesStopped, who, said);
        }
        let said = self.say(said!("event.staff.closed"));
        self.fx.log(EventKind::Closed, who, said);
    }

    /// Open again, the customer is told so, and updates restart.
    pub(super) fn reopen(&mut self, who: &Actor, caused_by: Option<MessageRow>) {
        let was = self.incident.state();
        // Broken again is a new situation: a customer who asked for quiet while it was being
        // fixed hears from us again until it is.
        if self.incident.updates_stopped {
            self.emit(Effect::StopUpdates(false));
        }
        let next = self.promise(self.now);
        self.set_stage(Stage::Open {
            next_update_at: None,
        });
        self.set_next_update(Some(next.at));
        self.clear_check_back();
        let said = self.say(said!("event.staff.reopened", was = was));
        self.fx.log(EventKind::Reopened, who, said);
        let by_staff = caused_by.is_none() && matches!(who, Actor::Staff(_));
        self.mail_customer(MailKind::Reopened, Some(next.at), caused_by, |d| {
            d.window_moved = next.moved_by_window;
            // `previous_incident` in this mail means "a late reply opened a new incident".
            d.previous_incident = 0;
            d.fixed_before = true;
            // Nobody wrote back: staff found it broken again.
            d.reopened_by_staff = by_staff;
        });
    }

    /// A one-word label. A label seen on `tag_incidents` incidents within the window marks all
    /// of them recurring.
    pub(super) fn tag(
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
            return Err(self.refuse(said!("refusal.tag", label = label)));
        }
        if self.incident.tags.contains(&label) {
            return Ok(());
        }
        self.emit(Effect::Tag(label.clone()));
        self.fx.log(EventKind::Tagged, who, label.clone());
        let mut tagged: Vec<(IncidentNo, bool)> = tagged_in_window
            .iter()
            .copied()
            .filter(|(n, _)| *n != self.incident.number)
            .collect();
        tagged.push((self.incident.number, self.incident.recurring));
        if tagged.len() < self.policy.recurring.tag_incidents as usize {
            return Ok(());
        }
        let count = tagged.len();
        for (number, already) in tagged {
            if already {
                continue;
            }
            let reason = self.say(said!(
                "event.staff.tag_recurring",
                label = label,
                count = count,
                within = self.words().duration(None, self.policy.recurring.window),
            ));
            self.emit(Effect::Recurring {
                incident: number,
                reason: reason.clone(),
            });
            self.emit(Effect::Event(NewEvent {
                incident: Some(number),
                message: None,
                kind: EventKind::Recurring,
                actor: Actor::Daemon,
                detail: reason,
            }));
        }
        Ok(())
    }
}

/// Whether a note's last line already ends with the writer's name (or first name): "Thanks,
/// Anna" written on the line of their last sentence, which no reading can set apart from it.
fn signed_already(text: &str, name: &str) -> bool {
    let Some(first) = name.split_whitespace().next() else {
        return false;
    };
    let last = text
        .lines()
        .last()
        .unwrap_or("")
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    [name, first].iter().any(|n| {
        let n = n.to_lowercase();
        last.strip_suffix(&n)
            .is_some_and(|before| before.is_empty() || before.ends_with([' ', ',']))
    })
}

#[cfg(test)]
mod tests {
    //! Each rule as a scenario a support lead would recognise, with a fixed clock.

    use super::super::test_kit::decide;
    use super::super::test_kit::*;
    use super::super::tests_support::{at, fixed, T0};
    use super::super::*;

    #[test]
    fn closing_an_open_incident_says_the_promised_update_is_dropped() {
        let f = facts(open_incident());
        let fx = decide(&f, &staff(StaffAction::Close), &config(), at(T0)).expect("decided");
        assert!(fx.logs(EventKind::Closed));
        let said = fx
            .list
            .iter()
            .find_map(|e| match e {
                Effect::Event(e) if e.kind == EventKind::UpdatesStopped => Some(e.detail.clone()),
                _ => None,
            })
            .expect("the dropped update is said");
        assert!(said.contains("today at 13:00 will not be sent"), "{said}");
        let fx = decide(
            &resolved_facts(),
            &staff(StaffAction::Close),
            &config(),
            at(T0),
        )
        .expect("decided");
        assert!(fx.logs(EventKind::Closed));
        assert!(
            !fx.logs(EventKind::UpdatesStopped),
            "a resolved incident promised nothing"
        );
    }

    #[test]
    fn a_note_signed_on_its_own_last_line_is_not_signed_twice() {
        assert!(super::signed_already(
            "The fix is live. Thanks, Anna",
            "Anna Berg"
        ));
        assert!(super::signed_already(
            "The fix is live.\nAnna Berg.",
            "Anna Berg"
        ));
        assert!(!super::signed_already("The fix is live.", "Anna"));
        assert!(!super::signed_already("Ask Joanna", "Anna"));
        assert!(!super::signed_already("The fix is live.", ""));
    }

    #[test]
    fn a_staff_reopen_does_not_thank_the_customer_for_writing_back() {
        let f = resolved_facts();
        let now = at("2026-11-24T10:00:00Z");
        let fx = decide(&f, &staff(StaffAction::Reopen), &config(), now).expect("decided");
        let mail = only_mail(&fx);
        assert_eq!(mail.kind, MailKind::Reopened);
        assert!(mail.data.reopened_by_staff, "nobody wrote back");
        let fx =
            decide(&f, &ann_writes(9, "No, it still fails."), &config(), now).expect("decided");
        let reopened = fx
            .mails()
            .find(|m| m.kind == MailKind::Reopened)
            .expect("reopened");
        assert!(!reopened.data.reopened_by_staff, "she wrote back");
    }

    #[test]
    fn assign_names_a_member_and_refuses_a_name_nobody_or_two_people_have() {
        let mut config = staffed();
        config.staff.members = vec![
            "anna@example.test".into(),
            "ben.carter@example.test".into(),
            "ben.ng@example.test".into(),
        ];
        let f = facts(open_incident());
        let assign = |name: &str| {
            decide(
                &f,
                &staff(StaffAction::Assign(name.into())),
                &config,
                at(T0),
            )
        };
        let fx = assign("Anna").expect("assigned");
        assert!(fx
            .list
            .contains(&Effect::Assign("anna@example.test".into())));
        let nobody = assign("dora").expect_err("refused").to_string();
        assert!(
            nobody.contains("nobody in the team is called `dora`")
                && nobody.contains("anna@example.test"),
            "{nobody}"
        );
        let two = assign("ben").expect_err("refused").to_string();
        assert!(
            two.contains("ben.carter@example.test, ben.ng@example.test"),
            "{two}"
        );
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
    fn a_second_resolution_owns_that_the_first_did_not_hold() {
        let mut again = open_incident();
        again.resolution = Some(fixed(at("2026-11-20T09:00:00Z")));
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
        assert_eq!(mail.data.next_update_theirs, "09:00 Uhr bei Ihnen, EST");
        assert_eq!(mail.data.pace, "alle 4 Stunden");
    }

    #[test]
    fn staff_read_a_german_customers_incident_in_the_default_language_and_are_told() {
        let mut german = open_incident();
        german.lang = Some("de".into());
        let f = Facts::new(german, Conversation::default());
        let fx = decide(&f, &Event::Opened(an_opening(5)), &staffed(), at(T0)).expect("decided");
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
        assert_eq!(err, Refusal("the note is empty".into()));
        let mut resolved = open_incident();
        resolved.stage = Stage::Resolved {
            check_back_at: None,
            close_at: None,
        };
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
        waiting.stage = Stage::Waiting {
            waiting_for: String::new(),
        };
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
        closed.stage = Stage::Closed;
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

    #[test]
    fn every_action_has_its_row_in_the_one_table_and_closed_allows_only_reopen() {
        use super::{allowed, Transition};
        let all = [
            Transition::Cadence,
            Transition::Wait,
            Transition::Resume,
            Transition::Close,
            Transition::Reopen,
            Transition::Note,
            Transition::Resolve,
        ];
        for action in all {
            assert!(
                super::ALLOWED.iter().filter(|(a, ..)| *a == action).count() == 1,
                "{action:?} has one row"
            );
        }
        let in_closed: Vec<Transition> = all
            .into_iter()
            .filter(|a| allowed(State::Closed, *a))
            .collect();
        assert_eq!(in_closed, vec![Transition::Reopen]);
    }
}
