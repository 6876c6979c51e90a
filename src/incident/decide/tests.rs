//! Each rule as a scenario a support lead would recognise, with a fixed clock.

use super::tests_support::{at, T0};
use super::*;

fn config() -> Config {
    Config::example()
}

/// With a support team to notify.
fn staffed() -> Config {
    let mut config = Config::example();
    config.staff.members = vec!["lead@example.test".into()];
    config
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
        other_from: Vec::new(),
        promise: super::opening(&config, at(T0)),
        continues: None,
        stranger_to: Vec::new(),
        customer_incidents_in_window: 1,
        repeats: None,
        written: Written {
            text: "Every payment attempt ends with an error page.".into(),
            ..Written::default()
        },
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
fn the_acknowledgement_goes_to_the_reply_address_but_never_to_our_own_address() {
    let mut incident = open_incident();
    incident.reply_address = "orders@example.test".into();
    let f = Facts::new(incident.clone(), Conversation::default());
    let fx = decide(&f, &Event::Opened(opening(5)), &config(), at(T0)).expect("decided");
    assert_eq!(only_mail(&fx).to, "orders@example.test");
    incident.reply_address = "support@example.test".into();
    let f = Facts::new(incident, Conversation::default());
    let fx = decide(&f, &Event::Opened(opening(5)), &config(), at(T0)).expect("decided");
    assert_eq!(fx.mails().count(), 0);
    assert!(fx.logs(EventKind::AcknowledgementSkipped));
}

#[test]
fn an_unproven_sender_gets_a_plain_acknowledgement_that_repeats_nothing_they_wrote() {
    let mut incident = open_incident();
    incident.sender_trust = Trust::Unverified;
    let f = Facts::new(incident.clone(), Conversation::default());
    let fx = decide(&f, &Event::Opened(opening(5)), &staffed(), at(T0)).expect("decided");
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
    let fx = decide(&f, &Event::Opened(opening(5)), &full, at(T0)).expect("decided");
    let ack = fx.mails().next().expect("ack");
    assert!(!ack.data.plain && ack.unverified);
    assert_eq!(ack.data.incident.subject, incident.subject);
}

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
    let mut o = opening(5);
    o.written.text = "Hi,\nit broke again, order #48391.\nTom".into();
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

#[test]
fn the_check_back_yes_closes_with_thanks_no_reopens_and_a_rating_is_recorded() {
    let mut resolved = open_incident();
    resolved.state = State::Resolved;
    resolved.resolved_at = Some(at(T0));
    resolved.next_update_at = None;
    resolved.close_at = Some(at("2026-11-30T09:00:00Z"));
    let mut f = facts(resolved);
    f.open_promises.clear();
    let reply = |text: &str| Event::CustomerReply {
        message: MessageRow(9),
        from: "ann@example.test".into(),
        trust: Trust::Verified,
        written: Written {
            text: text.into(),
            ..Written::default()
        },
    };
    let now = at("2026-11-26T10:00:00Z");
    let fx = decide(&f, &reply("Yes, all good now. 5"), &staffed(), now).expect("decided");
    assert_eq!(fx.new_state(), Some(State::Closed));
    assert!(fx.list.contains(&Effect::CheckBackAnswer {
        message: MessageRow(9),
        fixed: Some(true),
        rating: Some(5),
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
    let fx = decide(&f, &reply("No, it still fails."), &staffed(), now).expect("decided");
    assert_eq!(fx.new_state(), Some(State::Open));
    assert!(fx.mails().any(|m| m.kind == MailKind::Reopened));
    let fx = decide(&f, &reply("4"), &staffed(), now).expect("decided");
    assert_eq!(fx.new_state(), None, "a rating alone changes nothing");
    assert!(fx.list.contains(&Effect::CheckBackAnswer {
        message: MessageRow(9),
        fixed: None,
        rating: Some(4),
    }));
    assert!(fx
        .mails()
        .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
    let fx = decide(&f, &reply("Thanks a lot!"), &staffed(), now).expect("decided");
    assert_eq!(fx.new_state(), None, "a thank-you reopens nothing");
    assert!(fx
        .mails()
        .all(|m| m.kind.audience() == crate::incident::Audience::Staff));
}

#[test]
fn a_second_resolution_owns_that_the_first_did_not_hold() {
    let mut again = open_incident();
    again.resolved_at = Some(at("2026-11-20T09:00:00Z"));
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
    assert_eq!(
        mail.data.next_update_theirs,
        "09:00 Uhr bei Ihnen, UTC-05:00"
    );
    assert_eq!(mail.data.pace, "alle 4 Stunden");
}

#[test]
fn staff_read_a_german_customers_incident_in_the_default_language_and_are_told() {
    let mut german = open_incident();
    german.lang = Some("de".into());
    let f = Facts::new(german, Conversation::default());
    let fx = decide(&f, &Event::Opened(opening(5)), &staffed(), at(T0)).expect("decided");
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
        visibility: NoteVisibility::Customer,
    });
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
    assert_eq!(
        mail.promise,
        Some(at("2026-11-23T13:00:00Z")),
        "nothing reset"
    );
    assert!(!mail.data.cadence_changed);
    let fx = decide(&f, &reply("Please update me every hour."), &config(), now).expect("decided");
    let mail = only_mail(&fx);
    assert!(mail.data.cadence_changed);
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
fn a_reply_while_waiting_resumes_and_a_reply_after_resolution_reopens() {
    let mut waiting = open_incident();
    waiting.state = State::Waiting;
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
fn the_check_back_then_the_close() {
    let mut resolved = open_incident();
    resolved.state = State::Resolved;
    resolved.check_question = Some("Can you pay by card again?".into());
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
    waiting.state = State::Waiting;
    waiting.next_update_at = None;
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

fn office_hours() -> Config {
    let mut config = config();
    let tz = chrono_tz::Tz::Europe__Berlin;
    config.cadence.timezone = tz;
    config.cadence.window = Some(
        clock::Window::parse("0 0 9 * * Mon-Fri", Duration::from_secs(8 * 3600), tz)
            .expect("window")
            .with_holidays(clock::Holidays::from_dates(["2026-12-25"]).expect("dates")),
    );
    config
}

#[test]
fn a_late_update_at_night_goes_at_the_next_opening_and_says_it_is_late() {
    let config = office_hours();
    let mut incident = open_incident();
    incident.next_update_at = Some(at("2026-11-27T15:50:00Z"));
    let mut f = facts(incident);
    f.open_promises = vec![at("2026-11-27T15:50:00Z")];
    // Friday 23:41 in Berlin: the daemon is back after being down.
    let fx = decide(&f, &Event::ProgressDue, &config, at("2026-11-27T22:41:00Z")).expect("decided");
    assert_eq!(fx.mails().count(), 0, "nothing at night");
    assert_eq!(
        fx.next_update(),
        Some(Some(at("2026-11-30T08:10:00Z"))),
        "Monday 09:00 in Berlin, plus the lead"
    );
    f.incident.next_update_at = Some(at("2026-11-30T08:10:00Z"));
    let fx = decide(&f, &Event::ProgressDue, &config, at("2026-11-30T08:00:00Z")).expect("decided");
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
    incident.next_update_at = Some(at("2026-11-23T14:01:00Z"));
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
