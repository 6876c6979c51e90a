//! Keeping promises against real Dovecot and Postfix, with the clock moved instead of waited
//! for (`run --once` with `FOLLOWUPD_TEST_NOW`): progress before the promised time, staff notes, a late update
//! after downtime, the customer setting the pace, resolution, check-back, close and reopen.

use chrono::{DateTime, Duration as Span, Utc};

use crate::harness::*;

const ANN: &str = "ann@example.test";

fn at(stamp: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(stamp)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// A complaint from Ann acknowledged at `t0`; returns the promised next update time.
fn opened(stack: &MailStack, fu: &Followupd, t0: DateTime<Utc>) -> DateTime<Utc> {
    stack.deliver(
        SUPPORT,
        complaint(
            ANN,
            "ann-1@client.example.test",
            "Checkout keeps failing",
            "Every payment attempt ends with an error page.",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(ANN, 1);
    promised(fu)
}

fn promised(fu: &Followupd) -> DateTime<Utc> {
    let shown = fu.incident(1);
    at(shown["incident"]["next_update_at"]
        .as_str()
        .expect("a promised time"))
}

fn reply(stack: &MailStack, id: &str, body: &str) {
    let raw = format!(
        "From: {ANN}\r\nTo: {SUPPORT}\r\nSubject: Re: Checkout keeps failing\r\n\
         Message-ID: <{id}>\r\nIn-Reply-To: <ann-1@client.example.test>\r\n\
         References: <ann-1@client.example.test>\r\n\r\n{body}\r\n"
    );
    stack.deliver(SUPPORT, raw.as_bytes());
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_progress_update_arrives_before_the_promised_time_and_promises_the_next() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let promise = opened(&stack, &fu, t0);
    assert_eq!(
        promise,
        t0 + Span::hours(4),
        "the acknowledgement promised T"
    );

    // An hour before T nothing is due.
    fu.once_at(promise - Span::hours(1));
    assert_eq!(stack.mailbox(ANN).len(), 1);
    // Within the lead (10 minutes) the update goes out, before T.
    fu.once_at(promise - Span::minutes(5));
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(mail.len(), 2);
    let update = parse(&mail[1]);
    let text = update.body_text(0).expect("text");
    assert!(text.contains("working on incident 1"), "{text}");
    assert!(
        text.contains("Monday 23 November 2026, 17:00 UTC"),
        "the next promise, one cadence after T: {text}"
    );
    assert_eq!(promised(&fu), promise + Span::hours(4));
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM promises WHERE kept_at IS NOT NULL"),
        1,
        "the acknowledgement's promise was kept"
    );
    // Running again at the same time sends nothing more.
    fu.once_at(promise - Span::minutes(4));
    assert_eq!(stack.wait_for_mail(ANN, 2).len(), 2, "no second update");
}

#[test]
fn a_staff_note_goes_out_at_once_and_restarts_the_cadence_clock() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    let t1 = t0 + Span::hours(1);
    let said = ok(fu.run_at(
        t1,
        &[
            "incident",
            "note",
            "1",
            "The payment provider confirmed an outage; a fix is being deployed.",
            "--by",
            "alice",
        ],
    ));
    assert!(said.contains("progress update queued"), "{said}");
    fu.once_at(t1);
    let mail = stack.wait_for_mail(ANN, 2);
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("The payment provider confirmed an outage"),
        "{text}"
    );
    assert_eq!(promised(&fu), t1 + Span::hours(4), "the clock restarted");
    let shown = fu.incident(1);
    let note = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "note_added")
        .expect("note event");
    assert_eq!(note["actor"], "alice");
}

#[test]
fn a_daemon_stopped_over_a_due_time_sends_one_late_update_and_records_the_breach() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let promise = opened(&stack, &fu, t0);
    // Down for ten hours: two and a half cadences missed.
    let back = promise + Span::hours(6);
    fu.once_at(back);
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(
        mail.len(),
        2,
        "one update, never a burst of the missed ones"
    );
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(text.contains("later than we promised"), "{text}");
    assert!(has_event(&fu.incident(1), "promise_breached"));
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM promises WHERE breached_at IS NOT NULL"),
        1
    );
    assert_eq!(promised(&fu), back + Span::hours(4));
}

#[test]
fn any_news_is_answered_at_once_and_the_customer_sets_the_pace() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let promise = opened(&stack, &fu, t0);
    reply(&stack, "ann-2@client.example.test", "Any news?");
    fu.once_at(t0 + Span::minutes(30));
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(mail.len(), 2, "one status answer");
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("Monday 23 November 2026, 13:00 UTC"),
        "{text}"
    );
    assert_eq!(promised(&fu), promise, "asking for news resets nothing");

    reply(
        &stack,
        "ann-3@client.example.test",
        "Please update me every hour until this works.",
    );
    let t2 = t0 + Span::minutes(40);
    fu.once_at(t2);
    let mail = stack.wait_for_mail(ANN, 3);
    let text = parse(&mail[2]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("we will now write every hour.") && !text.contains("every 1 "),
        "the new cadence is confirmed in natural words: {text}"
    );
    let shown = fu.incident(1);
    assert_eq!(shown["incident"]["cadence_secs"], 3600);
    assert_eq!(
        promised(&fu),
        at("2026-11-23T10:45:00Z"),
        "the next update comes sooner: an hour on, rounded up to a quarter hour"
    );
}

#[test]
fn resolution_needs_a_root_cause_then_check_back_close_and_a_late_reply_reopens() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    let t1 = t0 + Span::hours(2);
    let refused = fu.run_at(
        t1,
        &["incident", "resolve", "1", "--prevention", "More tests."],
    );
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("--root-cause"), "{why}");
    assert_eq!(fu.incident(1)["incident"]["state"], "open");

    ok(fu.run_at(
        t1,
        &[
            "incident",
            "resolve",
            "1",
            "--root-cause",
            "A certificate on our payment gateway expired.",
            "--prevention",
            "Certificates now renew automatically and we alert 30 days ahead.",
            "--compensation",
            "We refunded this month's fee.",
            "--by",
            "bob",
        ],
    ));
    fu.once_at(t1);
    let mail = stack.wait_for_mail(ANN, 2);
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    for part in [
        "A certificate on our payment gateway expired.",
        "Certificates now renew automatically",
        "We refunded this month's fee.",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert_eq!(fu.incident(1)["incident"]["state"], "resolved");
    // No more progress updates after resolution.
    fu.once_at(t1 + Span::hours(5));
    assert_eq!(stack.wait_for_mail(ANN, 2).len(), 2);

    // Three days on: the check-back; four days after that, closed.
    fu.once_at(t1 + Span::days(3) + Span::minutes(1));
    let mail = stack.wait_for_mail(ANN, 3);
    let text = parse(&mail[2]).body_text(0).expect("text").to_string();
    assert!(text.contains("4 days"), "{text}");
    fu.once_at(t1 + Span::days(7) + Span::minutes(2));
    assert_eq!(fu.incident(1)["incident"]["state"], "closed");
    assert_eq!(stack.mailbox(ANN).len(), 3, "closing sends nothing");

    // A reply within the reopen window reopens it and says so.
    reply(&stack, "ann-9@client.example.test", "It is failing again.");
    let t3 = t1 + Span::days(8);
    fu.once_at(t3);
    let mail = stack.wait_for_mail(ANN, 4);
    let text = parse(&mail[3]).body_text(0).expect("text").to_string();
    assert!(text.contains("Incident 1 is open again"), "{text}");
    assert_eq!(fu.incident(1)["incident"]["state"], "open");
    assert_eq!(promised(&fu), t3 + Span::hours(4));
}

#[test]
fn waiting_on_the_customer_pauses_updates_until_they_reply() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let promise = opened(&stack, &fu, t0);
    let refused = fu.run_at(t0 + Span::hours(1), &["incident", "wait", "1"]);
    assert!(!refused.status.success(), "waiting needs a reason");
    ok(fu.run_at(
        t0 + Span::hours(1),
        &[
            "incident",
            "wait",
            "1",
            "--reason",
            "the order number",
            "--by",
            "carol",
        ],
    ));
    fu.once_at(promise + Span::hours(8));
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(
        mail.len(),
        2,
        "the waiting mail, then no updates while waiting"
    );
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(text.contains("the order number"), "{text}");
    reply(
        &stack,
        "ann-5@client.example.test",
        "Here is the screenshot you asked for.",
    );
    let t2 = promise + Span::hours(9);
    fu.once_at(t2);
    let mail = stack.wait_for_mail(ANN, 3);
    assert_eq!(mail.len(), 3, "their reply is answered");
    let text = parse(&mail[2]).body_text(0).expect("text").to_string();
    assert!(text.contains("working on incident 1 again"), "{text}");
    assert_eq!(fu.incident(1)["incident"]["state"], "open");
    assert_eq!(promised(&fu), t2 + Span::hours(4));
    let refused = fu.run_at(t2, &["incident", "resume", "1"]);
    assert!(
        !refused.status.success(),
        "resume of an open incident is refused"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is open; cannot resume"));
}

#[test]
fn escalation_reaches_staff_and_recurring_customers_and_tags_are_reported() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[escalation]\nstaff = [\"lead@example.test\"]\nafter_no_note = \"6h\"\n\
         no_news_updates = 5\n\n[recurring]\nincidents = 2\ntag_incidents = 2\n",
    );
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    // Six hours without a staff note: staff hear about it, once.
    fu.once_at(t0 + Span::hours(6) + Span::minutes(1));
    fu.once_at(t0 + Span::hours(6) + Span::minutes(2));
    let lead = stack.wait_for_mail("lead@example.test", 1);
    assert_eq!(lead.len(), 1, "escalated once");
    let escalation = parse(&lead[0]);
    // Staff mail says what happened first, then the incident's stable subject.
    let subject = escalation.subject().expect("subject");
    assert!(
        subject.starts_with("[Escalation] Incident 1: Checkout keeps failing [FU-1-"),
        "{subject}"
    );
    let text = escalation.body_text(0).expect("text").to_string();
    assert!(
        text.contains(
            "needs someone to look at it: no staff note since the incident opened 6 hours ago"
        ),
        "{text}"
    );
    assert!(has_event(&fu.incident(1), "escalated"));
    // A note clears it.
    ok(fu.run_at(
        t0 + Span::hours(7),
        &["incident", "note", "1", "Investigating the gateway logs."],
    ));
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM incidents WHERE escalated_at IS NULL"),
        1
    );

    // Ann's second incident within the window is a recurring one.
    stack.append(
        SUPPORT,
        complaint(
            ANN,
            "ann-20@client.example.test",
            "Invoice is wrong",
            "I was billed twice.",
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::hours(8));
    let second = fu.incident(2);
    assert_eq!(second["incident"]["recurring"], true);
    assert!(has_event(&second, "recurring"));
    assert_eq!(fu.incident(1)["incident"]["recurring"], false);
    // A tag seen on two incidents marks both.
    for n in ["1", "2"] {
        ok(fu.run_at(t0 + Span::hours(8), &["incident", "tag", n, "Payments"]));
    }
    let report = fu.json(&["report", "recurring", "--json"]);
    let numbers: Vec<i64> = report
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["number"].as_i64())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    assert_eq!(report[0]["tags"], serde_json::json!(["payments"]));
}

#[test]
fn upcoming_shows_what_will_be_sent_and_template_render_shows_the_words() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let promise = opened(&stack, &fu, t0);
    let now = t0 + Span::minutes(1);
    let plan = fu.run_at(now, &["upcoming", "--within", "24h", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&ok_bytes(plan)).expect("JSON");
    assert_eq!(plan.as_array().map(Vec::len), Some(1), "{plan}");
    assert_eq!(plan[0]["what"], "progress");
    assert_eq!(plan[0]["incident"], 1);
    assert_eq!(
        plan[0]["at"],
        (promise - Span::minutes(10))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        "sent the lead time before the promise"
    );
    let none = ok(fu.run_at(now, &["upcoming", "--within", "1h"]));
    assert!(none.starts_with("nothing due within 1 hour"), "{none}");
    let listed = ok(fu.run_at(now, &["upcoming", "--within", "24h"]));
    assert!(
        listed.starts_with("2026-11-23 12:50 UTC  incident 1"),
        "times in the team's zone, labelled: {listed}"
    );

    let shown = ok(fu.run_at(now, &["template", "render", "progress", "--incident", "1"]));
    assert!(
        shown.starts_with("Subject: Re: Checkout keeps failing [FU-1-"),
        "{shown}"
    );
    assert!(shown.contains("working on incident 1"), "{shown}");
    let unknown = fu.run(&["template", "render", "apology", "--incident", "1"]);
    assert!(!unknown.status.success());

    // Resolved: the check-back is what comes next; long after, a reply opens a new incident
    // that continues this one.
    ok(fu.run_at(
        now,
        &[
            "incident",
            "resolve",
            "1",
            "--root-cause",
            "An expired certificate.",
            "--prevention",
            "Automatic renewal.",
        ],
    ));
    let plan = fu.run_at(now, &["upcoming", "--within", "4d", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&ok_bytes(plan)).expect("JSON");
    let whats: Vec<&str> = plan
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["what"].as_str())
        .collect();
    assert_eq!(whats, vec!["resolution", "check_back"], "{plan}");
    fu.once_at(now);
    fu.once_at(now + Span::days(3) + Span::minutes(1));
    fu.once_at(now + Span::days(8));
    assert_eq!(fu.incident(1)["incident"]["state"], "closed");
    reply(&stack, "ann-30@client.example.test", "It broke again.");
    fu.once_at(now + Span::days(30));
    let list = fu.incidents();
    assert_eq!(list.len(), 2, "a new incident");
    let second = fu.incident(2);
    assert_eq!(second["incident"]["previous_incident"], 1);
    assert_eq!(
        fu.incident(1)["incident"]["state"],
        "closed",
        "the old one stays closed"
    );
    let mail = stack.wait_for_mail(ANN, 4);
    let text = parse(mail.last().expect("mail"))
        .body_text(0)
        .expect("text")
        .to_string();
    assert!(text.contains("continues incident 1"), "{text}");
}

fn ok_bytes(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn an_update_due_at_night_waits_for_the_sending_window_and_the_promise_says_so() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[cadence]\nwindow = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"8h\"\n\
         timezone = \"Europe/Berlin\"\n",
    );
    // Monday 16:00 in Berlin: four hours on is 20:00, after the team has gone home.
    let t0 = at("2026-11-23T15:00:00Z");
    let promise = opened(&stack, &fu, t0);
    assert_eq!(
        promise,
        at("2026-11-24T08:15:00Z"),
        "Tuesday 09:15 in Berlin: the opening plus the lead, rounded up to a quarter hour"
    );
    let ack = parse(&stack.mailbox(ANN)[0])
        .body_text(0)
        .expect("text")
        .to_string();
    assert!(
        ack.contains("Tuesday 24 November 2026, 09:15 CET"),
        "the acknowledgement tells the real time: {ack}"
    );
    // Nothing at night.
    fu.once_at(at("2026-11-23T23:00:00Z"));
    assert_eq!(stack.mailbox(ANN).len(), 1);
    // The update goes out when the window opens, before the promised time.
    fu.once_at(at("2026-11-24T08:05:30Z"));
    let mail = stack.wait_for_mail(ANN, 2);
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("Tuesday 24 November 2026, 13:15 CET"),
        "the next promise, in the window: {text}"
    );
}

#[test]
fn one_escalation_until_a_staff_note_and_customer_mail_never_threads_onto_it() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[escalation]\nstaff = [\"lead@example.test\"]\nafter_no_note = \"6h\"\n\
         no_news_updates = 3\n",
    );
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    // Updates without news, and six quiet hours: both triggers, one escalation.
    fu.once_at(t0 + Span::hours(3) + Span::minutes(51));
    fu.once_at(t0 + Span::hours(6) + Span::minutes(1));
    fu.once_at(t0 + Span::hours(7) + Span::minutes(51));
    fu.once_at(t0 + Span::hours(11) + Span::minutes(51));
    stack.wait_for_mail(ANN, 4);
    let lead = stack.wait_for_mail("lead@example.test", 1);
    assert_eq!(lead.len(), 1, "one escalation until a note");
    let escalation = parse(&lead[0]);
    let text = escalation.body_text(0).expect("text").to_string();
    assert!(
        text.contains("no staff note since the incident opened 6 hours ago"),
        "{text}"
    );
    let escalation_id = escalation.message_id().expect("Message-ID").to_string();

    // The customer asks for news: the answer threads on their mail, never on the escalation.
    reply(&stack, "ann-2@client.example.test", "Any news?");
    fu.once_at(t0 + Span::hours(12));
    let mail = stack.wait_for_mail(ANN, 5);
    let status = parse(&mail[4]);
    assert_eq!(
        status.in_reply_to().as_text(),
        Some("ann-2@client.example.test")
    );
    let references = header(&status, "References")
        .expect("References")
        .to_string();
    assert!(!references.contains(&escalation_id), "{references}");
    let ids: Vec<&str> = references.split_whitespace().collect();
    assert_eq!(
        ids.first(),
        Some(&"<ann-1@client.example.test>"),
        "{references}"
    );
    assert_eq!(
        ids.last(),
        Some(&"<ann-2@client.example.test>"),
        "{references}"
    );

    // A note re-arms it: six quiet hours later staff hear again.
    ok(fu.run_at(
        t0 + Span::hours(12),
        &[
            "incident",
            "note",
            "1",
            "The gateway vendor is looking at it.",
        ],
    ));
    fu.once_at(t0 + Span::hours(12));
    fu.once_at(t0 + Span::hours(18) + Span::minutes(1));
    let lead = stack.wait_for_mail("lead@example.test", 2);
    assert_eq!(lead.len(), 2);
    let text = parse(&lead[1]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("no staff note for 6 hours (the last one"),
        "{text}"
    );
}

#[test]
fn waiting_tells_the_customer_and_resuming_promises_a_new_time_without_a_breach() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    let wait = at("2026-11-23T10:15:00Z");
    ok(fu.run_at(
        wait,
        &[
            "incident",
            "wait",
            "1",
            "--reason",
            "a photo of the error page",
        ],
    ));
    fu.once_at(wait);
    let mail = stack.wait_for_mail(ANN, 2);
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("we need something from you") && text.contains("a photo of the error page"),
        "{text}"
    );
    // Past the time the acknowledgement promised: no update while we wait, and no breach.
    let resume = at("2026-11-23T14:00:00Z");
    fu.once_at(resume);
    let said = ok(fu.run_at(resume, &["incident", "resume", "1"]));
    assert!(said.contains("next update by"), "{said}");
    fu.once_at(resume);
    let mail = stack.wait_for_mail(ANN, 3);
    assert_eq!(mail.len(), 3);
    let text = parse(&mail[2]).body_text(0).expect("text").to_string();
    assert!(text.contains("working on incident 1 again"), "{text}");
    assert!(
        text.contains("Monday 23 November 2026, 18:00 UTC"),
        "the new promise: {text}"
    );
    assert!(!text.contains("later than we promised"), "{text}");
    // The new promise is kept on time.
    fu.once_at(at("2026-11-23T17:51:00Z"));
    let mail = stack.wait_for_mail(ANN, 4);
    let text = parse(&mail[3]).body_text(0).expect("text").to_string();
    assert!(!text.contains("later than we promised"), "{text}");
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM promises WHERE breached_at IS NOT NULL"),
        0,
        "no breach of a promise the customer was never given"
    );
    assert!(!has_event(&fu.incident(1), "promise_breached"));
}

#[test]
fn a_promise_on_christmas_day_moves_to_monday_and_a_late_update_at_night_waits_for_the_opening() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[cadence]\nwindow = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"8h\"\n\
         timezone = \"Europe/Berlin\"\nholidays = [\"2026-12-25\"]\n",
    );
    // Thursday 24 December, 16:07 in Berlin: four hours on is after hours, then Christmas Day.
    let promise = opened(&stack, &fu, at("2026-12-24T15:07:00Z"));
    assert_eq!(
        promise,
        at("2026-12-28T08:15:00Z"),
        "Monday 09:15 in Berlin"
    );
    let ack = parse(&stack.mailbox(ANN)[0])
        .body_text(0)
        .expect("text")
        .to_string();
    assert!(
        ack.contains("Monday 28 December 2026, 09:15 CET"),
        "a whole quarter hour on the next working day: {ack}"
    );
    let flat = ack.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Our support team works Monday to Friday, 09:00–17:00 (CET)")
            && flat.contains("Our office is closed on Friday 25 December."),
        "the hours and the holiday said out loud: {ack}"
    );
    assert!(
        !flat.contains("working again"),
        "the team is at work at 16:07 on a Thursday: {ack}"
    );
    // Monday's update goes out on time and promises 13:15.
    fu.once_at(at("2026-12-28T08:05:30Z"));
    let mail = stack.wait_for_mail(ANN, 2);
    let text = parse(&mail[1]).body_text(0).expect("text").to_string();
    assert!(
        text.contains("Monday 28 December 2026, 13:15 CET"),
        "{text}"
    );
    assert!(
        !text.contains("when our support team is working"),
        "not moved by the window, so no explanation: {text}"
    );
    // Down until Friday night: nothing goes out at 23:41.
    fu.once_at(at("2027-01-01T22:41:00Z"));
    assert_eq!(stack.mailbox(ANN).len(), 2, "nothing at night");
    // Monday at the opening: one late update that says so.
    fu.once_at(at("2027-01-04T08:00:30Z"));
    let mail = stack.wait_for_mail(ANN, 3);
    assert_eq!(mail.len(), 3);
    let late = parse(&mail[2]);
    let text = late.body_text(0).expect("text").to_string();
    assert!(text.contains("later than we promised"), "{text}");
    let date = header(&late, "Date").expect("Date").to_string();
    assert!(date.contains("4 Jan 2027"), "sent on Monday: {date}");
    assert!(has_event(&fu.incident(1), "promise_breached"));
}

#[test]
fn a_german_complaint_from_new_york_is_answered_in_german_with_both_times() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[cadence]\ntimezone = \"Europe/Berlin\"\n",
    );
    let maria = "maria@example.test";
    let raw = format!(
        "From: Maria Schneider <{maria}>\r\nTo: {SUPPORT}\r\nSubject: Lieferung fehlt\r\n\
         Message-ID: <maria-1@client.example.test>\r\n\
         Date: Mon, 23 Nov 2026 04:00:00 -0500\r\nContent-Language: de-DE\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Guten Tag,\r\n\r\nmeine Bestellung 48391 ist nicht angekommen. Wo bleibt sie?\r\n\r\n\
         Viele Grüße\r\nMaria Schneider\r\n"
    );
    stack.deliver(SUPPORT, raw.as_bytes());
    fu.once_at(at("2026-11-23T09:00:00Z"));
    let mail = stack.wait_for_mail(maria, 1);
    let ack = parse(&mail[0]);
    assert_eq!(header(&ack, "Content-Language"), Some("de"));
    let text = ack.body_text(0).expect("text").to_string();
    for part in [
        "Hallo Maria,",
        "So haben wir Ihr Anliegen verstanden",
        "\"Meine Bestellung 48391 ist nicht angekommen. Wo bleibt sie?\"",
        "Bestellung: 48391",
        "Montag, 23. November 2026, 14:00 Uhr MEZ",
        "08:00 Uhr bei Ihnen, EST",
        "mindestens alle 4 Stunden",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(!text.contains("Viele Grüße\nMaria"), "{text}");
    assert!(
        !text.contains("eine Bestellnummer"),
        "not asked again: {text}"
    );
    // Staff switch an English customer to German; an Italian one stays in the default set
    // (no Italian templates are shipped), and staff are told so.
    let said = ok(fu.run_at(at("2026-11-23T09:05:00Z"), &["incident", "lang", "1", "it"]));
    assert!(
        said.contains("no ") && said.contains("/it/ template set"),
        "{said}"
    );
}

#[test]
fn a_complaint_two_days_after_the_last_one_closed_is_linked_and_owned_as_the_customer_counts() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    reply(
        &stack,
        "ann-5@client.example.test",
        "Please update me every hour.",
    );
    fu.once_at(t0 + Span::minutes(20));
    stack.wait_for_mail(ANN, 2);
    // Fixed, broken again (reopened), closed: the customer has written about it twice.
    ok(fu.run_at(
        t0 + Span::hours(1),
        &[
            "incident",
            "resolve",
            "1",
            "--root-cause",
            "A certificate expired.",
            "--prevention",
            "Certificates renew automatically now.",
        ],
    ));
    ok(fu.run_at(t0 + Span::hours(1), &["incident", "reopen", "1"]));
    ok(fu.run_at(t0 + Span::hours(2), &["incident", "close", "1"]));
    fu.once_at(t0 + Span::hours(2));
    fu.nothing_left_to_send(&stack);
    let before = stack.mailbox(ANN).len();
    stack.deliver(
        SUPPORT,
        complaint(
            ANN,
            "ann-40@client.example.test",
            "Checkout failing again",
            "Hi,\n\nthe checkout fails again with the same error.\n\nThanks, Ann",
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::days(2));
    let mail = stack.wait_for_mail(ANN, before + 1);
    let text = parse(&mail[before]).body_text(0).expect("text").to_string();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "I'm sorry: this is the third time you have had to write to us about this in two \
             days, and it should not have happened again."
        ) && flat.contains("(the earlier one was incident 1)"),
        "{text}"
    );
    assert!(
        text.contains("\"The checkout fails again with the same error.\""),
        "{text}"
    );
    assert!(
        flat.contains("every hour"),
        "the repeat keeps the pace she asked for: {text}"
    );
    assert!(
        flat.contains("every hour"),
        "the repeat keeps the pace she asked for: {text}"
    );
    let second = fu.incident(2);
    assert_eq!(second["incident"]["previous_incident"], 1);
    assert_eq!(second["incident"]["repeat_count"], 3);
    let report = ok(fu.run(&["report", "recurring"]));
    assert!(
        report.contains("why: ann@example.test wrote again within 30 days of incident #1"),
        "{report}"
    );
}

#[test]
fn the_check_back_yes_closes_with_thanks_no_reopens_and_ratings_are_reported() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    let bob = "bob@example.test";
    stack.deliver(
        SUPPORT,
        complaint(
            bob,
            "bob-1@client.example.test",
            "Refund missing",
            "My refund is missing.",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(bob, 1);
    for (n, question) in [
        ("1", "Can you pay by card again?"),
        ("2", "Is your refund showing on your statement now?"),
    ] {
        ok(fu.run_at(
            t0 + Span::hours(1),
            &[
                "incident",
                "resolve",
                n,
                "--root-cause",
                "A timeout at the payment provider.",
                "--prevention",
                "Retries with a longer timeout.",
                "--question",
                question,
            ],
        ));
    }
    fu.once_at(t0 + Span::hours(1));
    fu.once_at(t0 + Span::days(3) + Span::hours(1) + Span::minutes(1));
    let mail = stack.wait_for_mail(ANN, 3);
    let check_back = parse(&mail[2]).body_text(0).expect("text").to_string();
    assert!(
        check_back.contains("(\"Checkout keeps failing\")")
            && check_back.contains("Can you pay by card again? Just reply yes or no."),
        "the check-back names the problem and asks one question: {check_back}"
    );
    stack.wait_for_mail(bob, 3);
    reply(&stack, "ann-50@client.example.test", "Yes, all good now. 5");
    let raw = format!(
        "From: {bob}\r\nTo: {SUPPORT}\r\nSubject: Re: Refund missing\r\n\
         Message-ID: <bob-2@client.example.test>\r\nIn-Reply-To: <bob-1@client.example.test>\r\n\
         References: <bob-1@client.example.test>\r\n\r\nNo, it is still not on my statement.\r\n"
    );
    stack.deliver(SUPPORT, raw.as_bytes());
    let t1 = t0 + Span::days(3) + Span::hours(2);
    fu.once_at(t1);
    let mail = stack.wait_for_mail(ANN, 4);
    let thanks = parse(&mail[3]).body_text(0).expect("text").to_string();
    assert!(
        thanks.contains("Thank you for letting us know that all is well now")
            && thanks.contains("Thank you for your rating too"),
        "{thanks}"
    );
    assert_eq!(fu.incident(1)["incident"]["state"], "closed");
    let mail = stack.wait_for_mail(bob, 4);
    let reopened = parse(&mail[3]).body_text(0).expect("text").to_string();
    let flat = reopened.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "I'm sorry: we told you this was fixed, and it is not. Incident 2 is open again"
        ),
        "the reopen apologises: {reopened}"
    );
    assert_eq!(fu.incident(2)["incident"]["state"], "open");
    let report = fu.run_at(t1, &["report", "satisfaction", "--json"]);
    let weeks: serde_json::Value = serde_json::from_slice(&ok_bytes(report)).expect("JSON");
    let week = weeks
        .as_array()
        .and_then(|w| w.iter().find(|w| w["ratings"] == 1))
        .unwrap_or_else(|| panic!("a week with the rating: {weeks}"));
    assert_eq!(week["average_rating"], 5.0);
    assert_eq!(week["answers"]["works"], 1, "{week}");
    assert_eq!(week["answers"]["not_fixed"], 1, "{week}");
    let text = ok(fu.run_at(t1, &["report", "satisfaction"]));
    assert!(text.contains("5.0"), "{text}");
}

#[test]
fn upcoming_after_a_stop_request_and_a_staff_note_returns_at_once_while_the_daemon_works_on() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    reply(
        &stack,
        "ann-2@client.example.test",
        "Please stop sending me these automatic updates.",
    );
    fu.once_at(t0 + Span::minutes(10));
    stack.wait_for_mail(ANN, 2);
    ok(fu.run_at(
        t0 + Span::hours(1),
        &[
            "incident",
            "note",
            "1",
            "We found the cause; a fix is in test.",
        ],
    ));
    fu.once_at(t0 + Span::hours(1));
    stack.wait_for_mail(ANN, 3);
    assert_eq!(
        fu.incident(1)["incident"]["next_update_at"],
        serde_json::Value::Null,
        "a note promises nothing to a customer who asked for quiet"
    );

    // Long after the time that note would have promised: the preview of a week ahead.
    let later = t0 + Span::hours(6);
    let mut preview = fu
        .command_at(later)
        .args(["upcoming", "--within", "7d", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("upcoming");
    // Meanwhile the daemon takes a new complaint and answers it: the preview holds no lock.
    let bob = "bob@example.test";
    stack.deliver(
        SUPPORT,
        complaint(
            bob,
            "bob-1@client.example.test",
            "Refund missing",
            "Where is my refund?",
        )
        .as_bytes(),
    );
    fu.once_at(later);
    stack.wait_for_mail(bob, 1);
    eventually(
        "upcoming returns",
        std::time::Duration::from_secs(20),
        || preview.try_wait().expect("wait").is_some(),
    );
    ok_bytes(preview.wait_with_output().expect("output"));
    // And alone, it answers at once.
    let started = std::time::Instant::now();
    let out = fu.run_at(later, &["upcoming", "--within", "7d", "--json"]);
    let took = started.elapsed();
    eprintln!("upcoming --within 7d took {took:?}");
    let list: serde_json::Value = serde_json::from_slice(&ok_bytes(out)).expect("JSON");
    assert!(
        took < std::time::Duration::from_secs(2),
        "upcoming took {took:?}"
    );
    let listed = |n: i64, what: &str| {
        list.as_array()
            .expect("a list")
            .iter()
            .filter(|u| u["incident"] == n && u["what"] == what)
            .count()
    };
    assert_eq!(listed(1, "progress"), 0, "no updates after a stop: {list}");
    assert!(
        listed(2, "progress") > 0,
        "the other customer's updates are listed: {list}"
    );
}

#[test]
fn three_weeks_without_a_note_slow_the_pace_never_repeat_a_mail_and_ask_staff_for_news() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[escalation]\nstaff = [\"lead@example.test\"]\nafter_no_note = \"30d\"\n",
    );
    let t0 = at("2026-11-23T09:00:00Z");
    opened(&stack, &fu, t0);
    // Three weeks, each promised update sent when it falls due, and no staff note at all.
    let end = t0 + Span::days(21);
    let mut sent = 1;
    loop {
        let due = promised(&fu);
        if due > end {
            break;
        }
        fu.once_at(due - Span::minutes(5));
        sent += 1;
        stack.wait_for_mail(ANN, sent);
    }
    fu.nothing_left_to_send(&stack);
    let bodies: Vec<String> = stack
        .mailbox(ANN)
        .iter()
        .map(|raw| {
            let text = parse(raw).body_text(0).expect("text").to_string();
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect();
    assert_eq!(bodies.len(), sent);
    for pair in bodies.windows(2) {
        assert_ne!(pair[0], pair[1], "the same mail twice in a row");
    }
    // The pace slows a step after every three updates without news, and each slowing is
    // said once: never more than three updates with nothing new at one pace (the third says
    // the next will come later), and far fewer than the 126 updates every four hours would
    // have been, yet never a silence longer than the pace the customer was told.
    let notice = "Rather than write with nothing new";
    let updates = &bodies[1..];
    let mut run = 0;
    for body in updates {
        run += 1;
        assert!(
            run <= 3,
            "a fourth update with nothing new at one pace: {updates:#?}"
        );
        if body.contains(notice) {
            run = 0;
        }
    }
    let slowed: Vec<&String> = updates.iter().filter(|b| b.contains(notice)).collect();
    let paces = [
        "every 8 hours",
        "once a day",
        "every 2 days",
        "every 4 days",
    ];
    assert_eq!(slowed.len(), paces.len(), "{updates:#?}");
    for (body, pace) in slowed.iter().zip(paces) {
        assert!(
            body.contains(&format!("we will now write {pace}")),
            "{body}"
        );
    }
    assert!(sent < 20, "{sent} mails in three weeks: {bodies:#?}");
    // Staff were asked for news at every step.
    let lead = stack.wait_for_mail("lead@example.test", paces.len());
    let asked = parse(&lead[0]).body_text(0).expect("text").to_string();
    assert!(asked.contains("in a row went out with no news"), "{asked}");
}
