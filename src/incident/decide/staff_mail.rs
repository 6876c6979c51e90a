//! A staff member's mail: its commands as one batch (all or nothing), its words for the
//! customer, a reply held back, an internal note, a forged staff reply.

use super::*;

impl Decision<'_> {
    /// A staff reply to a notification: its commands, then its words for the customer (or an
    /// internal note). If any command is refused, nothing is done and nothing goes to the
    /// customer: the staff member is told why.
    pub(super) fn staff_reply(
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
            Err(vec![self.say(said!(
                "refusal.nothing_to_send",
                number = self.incident.number
            ))])
        } else {
            self.staff_mail_actions(&who, name, mail, message, attachments)
        };
        self.staff_greeting = None;
        match acted {
            Ok(()) => {
                if let Some(held) = pending {
                    // Sent as shown (`#send`), or replaced by the reply just acted on.
                    self.emit(Effect::ReleaseReply(held));
                    if mail.send {
                        self.emit(Effect::Event(NewEvent {
                            incident: Some(self.incident.number),
                            message: Some(message),
                            kind: EventKind::StaffReplyReleased,
                            actor: who.clone(),
                            detail: self.say(said!("event.staff_mail.released")),
                        }));
                    }
                }
            }
            Err(reasons) => {
                // Undo everything this mail would have done; only the refusal remains.
                self.incident = before.0;
                self.fx.list.truncate(before.1);
                let refusal = reasons.join("\n");
                self.emit(Effect::Event(NewEvent {
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
    pub(super) fn hold_staff_reply(
        &mut self,
        message: MessageRow,
        by: &str,
        mail: &StaffMail,
        held: &HeldData,
        pending: Option<i64>,
    ) {
        let member = by.to_string();
        let why = self.say(if held.collision {
            said!(
                "staff_mail.held.collision",
                by = held.other_by,
                at = held.other_at
            )
        } else if held.all_quote {
            said!("staff_mail.held.all_quote")
        } else if held.staff_only {
            said!("staff_mail.held.staff_only", found = held.found.join(" / "))
        } else {
            said!("staff_mail.held.unsure", why = held.unsure)
        });
        if let Some(old) = pending {
            self.emit(Effect::ReleaseReply(old));
        }
        self.emit(Effect::HoldReply {
            message,
            member: member.clone(),
            text: mail.body.clone(),
            greeting: mail.greeting.clone(),
            reason: why.clone(),
        });
        self.emit(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::StaffReplyHeld,
            actor: Actor::Daemon,
            detail: self.say(said!("event.staff_mail.held", member = member, why = why)),
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

    pub(super) fn staff_mail_actions(
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
        let mut holding = None;
        let mut resolving = false;
        let text = mail.text.trim();
        // "#resume" with words for the customer: one mail, the words, not a "we carry on"
        // mail and then the note.
        let words_go_out = !mail.internal
            && !text.is_empty()
            && !mail
                .commands
                .iter()
                .any(|c| matches!(c, Command::Wait(_) | Command::Resolve(_) | Command::Hold(_)));
        // `#all` and `#to-tag` carry words, or a change of course (an outage resolved in one
        // mail); an internal mail carries nothing to anyone.
        let nothing_for_others = mail.internal
            || (text.is_empty() && !mail.commands.iter().any(Command::for_every_incident));
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
                // The hold's mail carries the words after it: one mail, below.
                Command::Hold(spec) => {
                    holding = Some(spec.clone());
                    continue;
                }
                Command::Resume if words_go_out => {
                    match self.require(Transition::Resume) {
                        Ok(()) => self.resume(who),
                        Err(e) => refused.push(e.to_string()),
                    }
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
                Command::Assign(to) => {
                    let to = to.trim();
                    StaffAction::Assign(if to.is_empty() || to.eq_ignore_ascii_case("me") {
                        who.name()
                    } else {
                        to.to_string()
                    })
                }
                Command::ToTag { label, sent_to } => {
                    if sent_to.is_empty() {
                        refused.push(self.say(said!("refusal.to_tag_none", label = label)));
                    } else if nothing_for_others {
                        refused.push(self.say(said!("refusal.to_tag_words", label = label)));
                    } else {
                        let said = self.say(said!(
                            "event.staff_mail.to_tag",
                            label = label,
                            count = sent_to.len(),
                            incidents = incident_list(sent_to)
                        ));
                        self.fx.log(EventKind::NoteAdded, who, said);
                    }
                    continue;
                }
                Command::ToAll { sent_to } => {
                    if sent_to.is_empty() {
                        refused.push(self.say(said!("refusal.to_all_no_digest")));
                    } else if nothing_for_others {
                        refused.push(self.say(said!("refusal.to_all_words")));
                    } else {
                        let said = self.say(said!(
                            "event.staff_mail.to_all",
                            count = sent_to.len(),
                            incidents = incident_list(sent_to)
                        ));
                        self.fx.log(EventKind::NoteAdded, who, said);
                    }
                    continue;
                }
                // Intake puts a canned reply's text in place; one still here names none.
                Command::Reply(name) => {
                    refused.push(self.say(said!("refusal.canned_reply_unread", name = name)));
                    continue;
                }
                Command::Unreadable { line, why } => {
                    let why = self.say(why.clone());
                    refused.push(self.say(said!("refusal.command", line = line, why = why)));
                    continue;
                }
            };
            if let Err(e) = self.staff(who.clone(), &action, None) {
                refused.push(e.to_string());
            }
        }
        if let Some(spec) = holding {
            // An internal mail's words stay with the team; the hold still needs its reason.
            let words = if mail.internal { "" } else { text };
            if mail.internal && !text.is_empty() {
                self.internal_note(who, text, NoteVisibility::Internal, Some(message));
            }
            if let Err(e) = self.hold(who, &spec, words, name) {
                refused.push(e.to_string());
            }
        } else if mail.internal {
            if !text.is_empty() {
                self.internal_note(who, text, NoteVisibility::Internal, Some(message));
            }
        } else if waiting_for
            .as_ref()
            .is_some_and(|w| w.trim().is_empty() && text.is_empty())
        {
            refused.push(self.say(said!("refusal.wait_mail_without_reason")));
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
    pub(super) fn internal_note(
        &mut self,
        who: &Actor,
        text: &str,
        visibility: NoteVisibility,
        message: Option<MessageRow>,
    ) {
        self.emit(Effect::Note {
            author: who.name(),
            text: text.to_string(),
            visibility,
            signed: String::new(),
        });
        self.emit(Effect::Escalated(None));
        self.emit(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message,
            kind: EventKind::NoteAdded,
            actor: who.clone(),
            detail: match visibility {
                NoteVisibility::Internal => {
                    self.say(said!("event.staff_mail.internal", text = text))
                }
                _ => self.say(said!("event.staff_mail.correspondence", text = text)),
            },
        }));
    }

    /// Staff wrote to the customer directly: that was news, so the cadence clock restarts.
    pub(super) fn staff_correspondence(&mut self, message: MessageRow, by: &str, text: &str) {
        let who = Actor::Staff(by.to_string());
        self.internal_note(&who, text, NoteVisibility::Correspondence, Some(message));
        self.emit(Effect::UpdatesWithoutNews(0));
        if self.incident.state() == State::Open && !self.incident.updates_stopped {
            let next = self.promise(self.now);
            self.settle_promises();
            self.set_next_update(Some(next.at));
        }
    }

    /// Someone wrote as a staff member without the proof a real reply carries: kept for staff
    /// (by intake), and staff are told. Nothing else happens.
    pub(super) fn forged(
        &mut self,
        message: MessageRow,
        claimed: &str,
        why: &str,
        written: &Written,
        alert: bool,
    ) {
        self.emit(Effect::Event(NewEvent {
            incident: Some(self.incident.number),
            message: Some(message),
            kind: EventKind::ForgedStaffReply,
            actor: Actor::Daemon,
            detail: if alert {
                self.say(said!(
                    "event.staff_mail.forged",
                    claimed = claimed,
                    why = why
                ))
            } else {
                self.say(said!(
                    "event.staff_mail.forged_quietly",
                    claimed = claimed,
                    why = why
                ))
            },
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
}

#[cfg(test)]
mod tests {
    use super::super::test_kit::decide;
    use super::super::test_kit::*;
    use super::*;
    use crate::incident::decide::tests_support::at;
    use crate::incident::staff_mail::{Command, StaffMail};

    #[test]
    fn a_reply_signed_on_its_last_line_reaches_the_customer_signed_once() {
        let f = facts(open_incident());
        let reply = Event::StaffReply {
            message: MessageRow(21),
            by: "anna@support.example".into(),
            name: "Anna Berg".into(),
            mail: StaffMail {
                text: "The fix is live. Thanks, Anna".into(),
                ..StaffMail::default()
            },
            attachments: false,
            held: None,
            pending: None,
        };
        let fx = decide(&f, &reply, &staffed(), at("2026-11-23T10:00:00Z")).expect("decided");
        let mail = fx
            .mails()
            .find(|m| m.kind == MailKind::Progress)
            .expect("the update");
        assert_eq!(mail.data.note, "The fix is live. Thanks, Anna");
        assert_eq!(mail.data.note_by, "", "not signed a second time");
    }

    #[test]
    fn resume_with_words_for_the_customer_sends_one_mail_with_the_words() {
        let mut waiting = open_incident();
        waiting.stage = Stage::Waiting {
            waiting_for: "the serial number".into(),
        };
        let f = facts(waiting);
        let reply = Event::StaffReply {
            message: MessageRow(20),
            by: "anna@support.example".into(),
            name: "Anna".into(),
            mail: StaffMail {
                commands: vec![Command::Resume],
                text: "Thanks, the serial number helps: the part is on its way.".into(),
                ..StaffMail::default()
            },
            attachments: false,
            held: None,
            pending: None,
        };
        let fx = decide(&f, &reply, &staffed(), at("2026-11-24T10:00:00Z")).expect("decided");
        assert_eq!(fx.new_state(), Some(State::Open));
        let to_customer: Vec<&Mail> = fx
            .mails()
            .filter(|m| m.kind.audience() == crate::incident::Audience::Customer)
            .collect();
        assert_eq!(
            to_customer.len(),
            1,
            "one action, one mail: {to_customer:#?}"
        );
        assert_eq!(
            to_customer[0].data.note,
            "Thanks, the serial number helps: the part is on its way."
        );
    }
}
