//! The support team in the loop, by mail, against real Dovecot and Postfix: staff are told of
//! every incident in one thread per incident, answer the customer by replying to a
//! notification from their own mailbox, give commands, keep notes internal, and nobody can pass
//! for them.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use mail_parser::MimeHeaders;

use crate::harness::*;

const ANN: &str = "ann@example.test";
pub(crate) const ANNA: &str = "anna@example.test";
pub(crate) const TEAM: &str = "team@example.test";

pub(crate) fn at(stamp: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(stamp)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// A followupd whose staff are Anna and Bob, told at the team list.
pub(crate) fn with_staff(stack: &MailStack, extra: &str) -> Followupd {
    Followupd::with_extra(
        stack,
        Tls::ImapsAndSmtpStarttls,
        &format!(
            "\n[staff]\nmembers = [\"{ANNA}\", \"bob@example.test\"]\nnotify = [\"{TEAM}\"]\n{extra}"
        ),
    )
}

pub(crate) fn text_of(raw: &[u8]) -> String {
    parse(raw).body_text(0).expect("text").to_string()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Ann complains at `t0`; returns the team's notification.
fn complaint_at(stack: &MailStack, fu: &Followupd, t0: DateTime<Utc>) -> Vec<u8> {
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Checkout keeps failing",
            "Hello,\r\n\r\nevery payment attempt ends with an error page.\r\nOrder #48391.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    let team = stack.wait_for_mail(TEAM, 1);
    team[0].clone()
}

/// A reply from a staff member's mail client to a notification: new text on top, the
/// notification quoted below, optionally a PNG attached.
pub(crate) fn staff_reply(from: &str, notification: &[u8], new_text: &str, attach: bool) -> String {
    let n = parse(notification);
    let id = n.message_id().expect("notification Message-ID").to_string();
    let subject = n.subject().expect("subject").to_string();
    let quoted: String = text_of(notification)
        .lines()
        .map(|l| format!("> {l}\r\n"))
        .collect();
    let body = format!(
        "{}\r\n\r\nOn Mon, 23 Nov 2026, Example Support wrote:\r\n{quoted}",
        new_text.replace('\n', "\r\n")
    );
    let head = format!(
        "From: Anna Berg <{from}>\r\nTo: {SUPPORT}\r\nSubject: Re: {subject}\r\n\
         Message-ID: <staff-{}@example.test>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n",
        new_text.len()
    );
    if attach {
        format!(
            "{head}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b1\r\n\
             Content-Type: image/png; name=\"label.png\"\r\n\
             Content-Disposition: attachment; filename=\"label.png\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n\
             iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
             --b1--\r\n"
        )
    } else {
        format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
    }
}

#[test]
fn staff_hear_of_a_complaint_and_of_replies_while_the_customer_gets_only_what_answers_them() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    assert_eq!(stack.wait_for_mail(ANN, 1).len(), 1, "one acknowledgement");
    let n = parse(&notification);
    let subject = n.subject().expect("subject");
    assert!(
        subject.starts_with("[New] Incident 1: Checkout keeps failing [FU-1-"),
        "what happened first, then the incident: {subject}"
    );
    let text = text_of(&notification);
    // On a phone the preview is the customer's words, not a table of facts.
    let words_at = text.find("every payment attempt").expect("her words");
    let facts_at = text.find("Incident:").expect("the facts");
    assert!(words_at < facts_at, "{text}");
    for part in [
        "New incident from Ann Example",
        "Assigned:     nobody yet (#assign me takes it)",
        "every payment attempt ends with an error page.",
        "Order #48391.",
        "Promised:     the next update by Monday 23 November 2026, 13:00 UTC",
        "#resolve",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }

    // New details: staff are told, the customer gets nothing automatic.
    stack.deliver(
        SUPPORT,
        format!(
            "From: {ANN}\r\nTo: {SUPPORT}\r\nSubject: Re: Checkout keeps failing\r\n\
             Message-ID: <ann-2@client.example.test>\r\nIn-Reply-To: <ann-1@client.example.test>\r\n\r\n\
             It broke again, order #48391.\r\n\r\n> quoted old text\r\n"
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::minutes(20));
    let team = stack.wait_for_mail(TEAM, 2);
    assert_eq!(team.len(), 2);
    let reply_note = parse(&team[1]);
    let stable = subject.strip_prefix("[New] ").expect("label");
    assert_eq!(
        reply_note.subject(),
        Some(format!("[Reply] {stable}").as_str()),
        "what happened, then the same incident"
    );
    for mail in [&n, &reply_note] {
        assert_eq!(
            header(mail, "Thread-Topic"),
            Some(stable),
            "one conversation in Outlook"
        );
    }
    assert_eq!(
        reply_note
            .references()
            .as_text_list()
            .map(|l| l[0].to_string()),
        n.message_id()
            .map(|m| vec![m.to_string()])
            .map(|l| l[0].clone()),
        "threaded under the first notification"
    );
    let text = text_of(&team[1]);
    assert!(text.contains("It broke again, order #48391."), "{text}");
    assert!(
        !text.contains("quoted old text"),
        "quoted history cut: {text}"
    );
    assert_eq!(
        stack.mailbox(ANN).len(),
        1,
        "no automatic mail for new details"
    );

    // Asking for news is answered at once.
    stack.deliver(
        SUPPORT,
        format!(
            "From: {ANN}\r\nTo: {SUPPORT}\r\nSubject: Re: Checkout keeps failing\r\n\
             Message-ID: <ann-3@client.example.test>\r\nIn-Reply-To: <ann-1@client.example.test>\r\n\r\n\
             Any news?\r\n"
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::minutes(30));
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(mail.len(), 2, "the status answer");
    assert!(text_of(&mail[1]).contains("13:00 UTC"));
}

#[test]
fn a_staff_reply_with_an_attachment_reaches_the_customer_as_an_update_in_their_thread() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    let ack = stack.wait_for_mail(ANN, 1);
    let ack_id = parse(&ack[0]).message_id().expect("ack id").to_string();

    let reply = staff_reply(
        ANNA,
        &notification,
        "We found it: our payment provider had an outage.\nA fix is live now; please try again.",
        true,
    );
    stack.send(ANNA, SUPPORT, &reply);
    eventually(
        "the reply reaches the support inbox",
        Duration::from_secs(15),
        || stack.mailbox(SUPPORT).len() >= 2,
    );
    let t1 = t0 + Span::hours(1);
    fu.once_at(t1);
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(mail.len(), 2, "one progress mail");
    let update = parse(&mail[1]);
    let text = update.body_text(0).expect("text").to_string();
    assert!(
        text.contains("We found it: our payment provider had an outage."),
        "{text}"
    );
    assert!(
        text.contains("A fix is live now; please try again."),
        "{text}"
    );
    assert!(
        text.contains("Anna Berg"),
        "signed with the staff member's name: {text}"
    );
    assert!(
        !text.contains("New incident from"),
        "nothing of the quoted notification: {text}"
    );
    assert!(!text.contains("#resolve"), "{text}");
    assert_eq!(
        update.in_reply_to().as_text(),
        Some(ack_id.as_str()),
        "in the customer's thread"
    );
    let attachment = update.attachments().next().unwrap_or_else(|| {
        panic!(
            "the attachment is forwarded: {}",
            String::from_utf8_lossy(&mail[1])
        )
    });
    assert_eq!(attachment.attachment_name(), Some("label.png"));
    assert!(
        attachment.contents().starts_with(b"\x89PNG"),
        "the very bytes"
    );

    let shown = fu.incident(1);
    let notes = shown["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{shown}");
    assert_eq!(notes[0]["author"], ANNA);
    assert_eq!(notes[0]["visibility"], "customer");
    assert_eq!(
        at(shown["incident"]["next_update_at"]
            .as_str()
            .expect("promise")),
        t1 + Span::hours(4),
        "the promise clock restarted"
    );
}

#[test]
fn internal_notes_stay_internal_and_resolve_by_mail_needs_a_root_cause() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);

    stack.deliver(
        SUPPORT,
        staff_reply(
            ANNA,
            &notification,
            "#internal\nShe sounds upset; call her.",
            false,
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::minutes(10));
    // A refused command: staff are told why, the customer gets nothing.
    stack.deliver(
        SUPPORT,
        staff_reply(
            ANNA,
            &notification,
            "#resolve\nPrevention: better monitoring.",
            false,
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::minutes(20));
    let anna = stack.wait_for_mail(ANNA, 1);
    let refusal = text_of(&anna[0]);
    assert!(refusal.contains("was not carried out"), "{refusal}");
    assert!(refusal.contains("Root cause:"), "{refusal}");
    assert_eq!(fu.incident(1)["incident"]["state"], "open");
    assert_eq!(stack.mailbox(ANN).len(), 1, "nothing to the customer");

    stack.deliver(
        SUPPORT,
        staff_reply(
            ANNA,
            &notification,
            "#resolve\nRoot cause: a certificate on the payment gateway expired.\n\n\
             Prevention: certificates renew automatically now.",
            false,
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::minutes(30));
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(mail.len(), 2, "the resolution");
    let text = text_of(&mail[1]);
    assert!(
        text.contains("a certificate on the payment gateway expired"),
        "{text}"
    );
    assert!(
        text.contains("certificates renew automatically now"),
        "{text}"
    );
    for m in &mail {
        assert!(
            !text_of(m).contains("upset"),
            "the internal note never reaches the customer"
        );
    }
    let shown = fu.incident(1);
    assert_eq!(shown["incident"]["state"], "resolved");
    let notes = shown["notes"].as_array().expect("notes");
    assert_eq!(notes[0]["visibility"], "internal");
}

#[test]
fn a_staff_address_without_the_signed_reply_or_without_a_verified_sender_acts_on_nothing() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);

    let inbox = stack.mailbox(SUPPORT).len();
    // 1. Forged, from a server that is not example.test's: the staff address, the customer's
    // Message-ID, no signed notification, and a made-up verdict in our server's name (the
    // receiving server removes it and writes its own: dmarc=fail).
    stack.send_from(
        "127.0.0.2",
        "attacker@evil.example",
        SUPPORT,
        &format!(
            "Authentication-Results: {}; dkim=pass header.d=example.test\r\n\
             From: {ANNA}\r\nTo: {SUPPORT}\r\nSubject: Re: Checkout keeps failing\r\n\
             Message-ID: <forged-1@evil.example>\r\nIn-Reply-To: <ann-1@client.example.test>\r\n\r\n\
             #close\r\nPlease send your card number to card@evil.example.\r\n",
            stack.var("AUTHSERV_ID")
        ),
    );
    // 2. The signed reply, copied by someone who cannot send as example.test.
    stack.send_from(
        "127.0.0.2",
        ANNA,
        SUPPORT,
        &staff_reply(ANNA, &notification, "#close\nClosing this.", false),
    );
    stack.wait_for_mail(SUPPORT, inbox + 2);
    fu.once_at(t0 + Span::minutes(10));
    assert_eq!(stack.mailbox(ANN).len(), 1, "nothing relayed");
    let shown = fu.incident(1);
    assert_eq!(shown["incident"]["state"], "open", "no command ran");
    assert!(
        shown["notes"].as_array().is_none_or(|n| n.is_empty()),
        "{shown}"
    );
    let held = fu.json(&["quarantine", "--json"]);
    assert_eq!(held.as_array().map(Vec::len), Some(2), "{held}");
    assert!(
        held.to_string().contains("dmarc=fail"),
        "the receiving server's verdict, not the forged one: {held}"
    );
    let team = stack.wait_for_mail(TEAM, 3);
    let warnings: Vec<String> = team[1..].iter().map(|m| text_of(m)).collect();
    assert!(
        warnings
            .iter()
            .all(|t| t.contains("looks like a staff reply")),
        "{warnings:?}"
    );

    // 3. The same signed reply from Anna's own server: verified, it acts.
    let inbox = stack.mailbox(SUPPORT).len();
    stack.send(
        ANNA,
        SUPPORT,
        &staff_reply(
            ANNA,
            &notification,
            "We are on it and will write soon.",
            false,
        ),
    );
    stack.wait_for_mail(SUPPORT, inbox + 1);
    fu.once_at(t0 + Span::minutes(20));
    let mail = stack.wait_for_mail(ANN, 2);
    assert!(text_of(&mail[1]).contains("We are on it and will write soon."));

    // 4. Anna herself, verified, but answering the customer's mail instead of a notification
    // (a forward into the incident): a mistake, not a forgery. Nothing is done, the team is
    // not alarmed, and she alone is told how to do it.
    let team_before = stack.mailbox(TEAM).len();
    let anna_before = stack.mailbox(ANNA).len();
    let inbox = stack.mailbox(SUPPORT).len();
    stack.send(
        ANNA,
        SUPPORT,
        &format!(
            "From: Anna Berg <{ANNA}>\r\nTo: {SUPPORT}\r\nSubject: Fwd: Checkout keeps failing\r\n\
             Message-ID: <anna-fwd@example.test>\r\nReferences: <ann-1@client.example.test>\r\n\r\n\
             #close\r\nThis one is fixed.\r\n"
        ),
    );
    stack.wait_for_mail(SUPPORT, inbox + 1);
    fu.once_at(t0 + Span::minutes(30));
    let anna = stack.wait_for_mail(ANNA, anna_before + 1);
    let told = text_of(&anna[anna_before]);
    assert!(
        told.contains("does not answer a notification sent to you"),
        "{told}"
    );
    stack.settle();
    assert!(
        stack.mailbox(TEAM)[team_before..]
            .iter()
            .all(|m| !text_of(m).contains("looks like a staff reply")),
        "no forgery alarm to the team"
    );
    assert_eq!(stack.mailbox(ANN).len(), 2, "nothing relayed");
    assert_eq!(
        fu.incident(1)["incident"]["state"],
        "open",
        "no command ran"
    );
}

#[test]
fn a_request_to_stop_the_automatic_updates_stops_them_and_is_confirmed_once() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);
    for (i, minutes) in [(2, 10), (3, 20)] {
        stack.deliver(
            SUPPORT,
            format!(
                "From: {ANN}\r\nTo: {SUPPORT}\r\nSubject: Re: Checkout keeps failing\r\n\
                 Message-ID: <ann-{i}@client.example.test>\r\n\
                 In-Reply-To: <ann-1@client.example.test>\r\n\r\n\
                 Please stop sending me these automatic updates.\r\n"
            )
            .as_bytes(),
        );
        fu.once_at(t0 + Span::minutes(minutes));
    }
    let mail = stack.wait_for_mail(ANN, 2);
    assert_eq!(mail.len(), 2, "confirmed once");
    assert!(text_of(&mail[1]).contains("we will stop sending automatic updates"));
    // The promised 13:00 update and the ones after it do not come.
    fu.once_at(t0 + Span::hours(4) - Span::minutes(5));
    fu.once_at(t0 + Span::hours(12));
    assert_eq!(stack.wait_for_mail(ANN, 2).len(), 2, "no progress updates");
    let team = stack.mailbox(TEAM);
    assert!(
        team.iter()
            .any(|m| text_of(m).contains("asked for no more automatic updates")),
        "staff are told"
    );
    // The resolution still goes out.
    ok(fu.run_at(
        t0 + Span::hours(13),
        &[
            "incident",
            "resolve",
            "1",
            "--root-cause",
            "An outage.",
            "--prevention",
            "Monitoring.",
        ],
    ));
    fu.once_at(t0 + Span::hours(13));
    assert_eq!(stack.wait_for_mail(ANN, 3).len(), 3);
}

/// Customers c0@… to c(n-1)@… each complain of "Problem i", straight into the support mailbox.
fn customers_complain(stack: &MailStack, n: usize) {
    for i in 0..n {
        stack.deliver(
            SUPPORT,
            complaint(
                &format!("c{i}@example.test"),
                &format!("c{i}@client.example.test"),
                &format!("Problem {i}"),
                "It does not work.",
            )
            .as_bytes(),
        );
    }
}

#[test]
fn six_escalations_in_a_row_all_reach_staff_and_six_promises_at_risk_come_in_one_mail() {
    let stack = MailStack::start();
    let fu = with_staff(
        &stack,
        "at_risk_before = \"30m\"\n\n[escalation]\nafter_no_note = \"2h\"\n",
    );
    let t0 = at("2026-11-23T09:00:00Z");
    customers_complain(&stack, 6);
    fu.once_at(t0);
    assert_eq!(
        stack.wait_for_mail(TEAM, 6).len(),
        6,
        "six new-incident notifications"
    );
    fu.once_at(t0 + Span::hours(2) + Span::minutes(1));
    let team = stack.wait_for_mail(TEAM, 12);
    let escalations = team
        .iter()
        .filter(|m| text_of(m).contains("needs someone to look at it"))
        .count();
    assert_eq!(escalations, 6, "none held back by anybody's send caps");
    assert_eq!(fu.count("SELECT COUNT(*) FROM suppressed"), 0);
    // 12:31: half an hour before the 13:00 promises, with no news written: staff are warned,
    // in one mail for all six.
    fu.once_at(t0 + Span::hours(3) + Span::minutes(31));
    let team = stack.wait_for_mail(TEAM, 13);
    stack.settle();
    let at_risk: Vec<&Vec<u8>> = team
        .iter()
        .filter(|m| text_of(m).contains("was promised an update by"))
        .collect();
    assert_eq!(at_risk.len(), 1, "one mail for six promises at risk");
    let subject = parse(at_risk[0]).subject().unwrap_or_default().to_string();
    assert!(
        subject.starts_with("[At risk 13:00 +5] Incident 1: "),
        "{subject}"
    );
    let text = text_of(at_risk[0]);
    assert!(text.contains("Reply to this mail with the news"), "{text}");
    for n in 2..=6 {
        assert!(
            text.contains(&format!(
                "#{n} c{}@example.test: Problem {}, update promised by 13:00",
                n - 1,
                n - 1
            )),
            "{text}"
        );
    }
    // Told once: nothing more at the next tick.
    fu.once_at(t0 + Span::hours(3) + Span::minutes(41));
    stack.settle();
    assert_eq!(stack.mailbox(TEAM).len(), 13);
}

#[test]
fn notifications_over_the_staff_cap_wait_for_one_digest() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "notify_cap = { max = 2, within = \"1h\" }\n");
    let t0 = at("2026-11-23T09:00:00Z");
    customers_complain(&stack, 5);
    fu.once_at(t0);
    // A burst: every incident still gets its own notification, the thread staff answer in.
    let team = stack.wait_for_mail(TEAM, 5);
    assert_eq!(team.len(), 5, "one per incident, past the cap");
    // What comes after within the hour (the customers' replies) waits for one digest.
    for i in 0..3 {
        stack.deliver(
            SUPPORT,
            format!(
                "From: c{i}@example.test\r\nTo: {SUPPORT}\r\nSubject: Re: Problem {i}\r\n\
                 Message-ID: <c{i}-2@client.example.test>\r\n\
                 In-Reply-To: <c{i}@client.example.test>\r\n\r\n\
                 Still broken, order {i}4431.\r\n"
            )
            .as_bytes(),
        );
    }
    fu.once_at(t0 + Span::minutes(5));
    stack.settle();
    assert_eq!(
        stack.mailbox(TEAM).len(),
        5,
        "the replies are held for the digest"
    );
    fu.once_at(t0 + Span::minutes(61));
    let team = stack.wait_for_mail(TEAM, 6);
    assert_eq!(team.len(), 6, "then one digest");
    let digest = text_of(&team[5]);
    for i in 0..3 {
        assert!(digest.contains(&format!("Problem {i}")), "{digest}");
    }
    fu.once_at(t0 + Span::minutes(62));
    assert_eq!(stack.wait_for_mail(TEAM, 6).len(), 6, "and only one");
}

#[test]
fn a_reply_to_the_digest_needs_all_and_then_reaches_every_listed_customer_once() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "notify_cap = { max = 2, within = \"1h\" }\n");
    let t0 = at("2026-11-23T09:00:00Z");
    customers_complain(&stack, 5);
    fu.once_at(t0);
    stack.wait_for_mail(TEAM, 5);
    // Three customers write again within the hour: held for the digest.
    for i in 0..3 {
        stack.deliver(
            SUPPORT,
            format!(
                "From: c{i}@example.test\r\nTo: {SUPPORT}\r\nSubject: Re: Problem {i}\r\n\
                 Message-ID: <c{i}-2@client.example.test>\r\n\
                 In-Reply-To: <c{i}@client.example.test>\r\n\r\n\
                 Still broken, order {i}4431.\r\n"
            )
            .as_bytes(),
        );
    }
    fu.once_at(t0 + Span::minutes(5));
    fu.once_at(t0 + Span::minutes(61));
    let digest = stack.wait_for_mail(TEAM, 6)[5].clone();
    assert!(
        text_of(&digest).contains("#all"),
        "the digest says how to answer it: {}",
        text_of(&digest)
    );
    let customers: Vec<String> = (0..5).map(|i| format!("c{i}@example.test")).collect();
    let before: Vec<usize> = customers.iter().map(|c| stack.mailbox(c).len()).collect();
    // A plain reply to the digest answers no one incident: nothing goes to any customer,
    // and Anna is told how to do it.
    stack.send(
        ANNA,
        SUPPORT,
        &staff_reply(ANNA, &digest, "We are on it.", false),
    );
    eventually("the reply reaches support", Duration::from_secs(15), || {
        stack.mailbox(SUPPORT).len() >= 9
    });
    fu.once_at(t0 + Span::minutes(70));
    let told = stack.wait_for_mail(ANNA, 1);
    let refusal = text_of(told.last().expect("a mail"));
    assert!(refusal.contains("#all"), "{refusal}");
    stack.settle();
    for (c, n) in customers.iter().zip(&before) {
        assert_eq!(stack.mailbox(c).len(), *n, "{c} got nothing");
    }
    // With #all, the words go to every customer the digest listed, once each, in their own
    // thread; the others hear nothing.
    stack.send(
        ANNA,
        SUPPORT,
        &staff_reply(
            ANNA,
            &digest,
            "#all\nOur payment provider is down; we expect it back by 14:00.",
            false,
        ),
    );
    eventually("the reply reaches support", Duration::from_secs(15), || {
        stack.mailbox(SUPPORT).len() >= 10
    });
    fu.once_at(t0 + Span::minutes(75));
    for (i, (c, n)) in customers.iter().zip(&before).enumerate() {
        if i < 3 {
            let mail = stack.wait_for_mail(c, n + 1);
            assert_eq!(mail.len(), n + 1, "{c}: once");
            let text = text_of(&mail[*n]);
            assert!(
                text.contains("Our payment provider is down; we expect it back by 14:00."),
                "{c}: {text}"
            );
            assert!(
                !text.contains("#all") && !text.contains("Problem 1"),
                "{text}"
            );
            // In their own thread: an answer to their last mail.
            assert_eq!(
                parse(&mail[*n]).in_reply_to().as_text(),
                Some(format!("c{i}-2@client.example.test").as_str()),
                "{c}: in their own thread"
            );
        }
    }
    fu.once_at(t0 + Span::minutes(80));
    stack.settle();
    for (i, (c, n)) in customers.iter().zip(&before).enumerate() {
        let expected = if i < 3 { n + 1 } else { *n };
        assert_eq!(stack.mailbox(c).len(), expected, "{c}");
    }
}

#[test]
fn staff_in_the_followupd_group_use_the_cli_without_the_server_passwords() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let group = format!("fus{}", std::process::id() % 100_000);
    let user = format!("fua{}", std::process::id() % 100_000);
    let run = |cmd: &[&str]| {
        let out = std::process::Command::new(cmd[0])
            .args(&cmd[1..])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["groupadd", "-f", &group]);
    let _ = std::process::Command::new("useradd")
        .args(["-M", "-N", "-g", &group, "-s", "/usr/sbin/nologin", &user])
        .output();
    // The state directory is shared with the group (README: "Staff on the command line").
    let state = fu.database.parent().expect("state dir").to_path_buf();
    std::fs::create_dir_all(&state).expect("mkdir");
    run(&["chgrp", &group, state.to_str().expect("path")]);
    run(&["chmod", "2770", state.to_str().expect("path")]);
    // Let the user reach the config inside the test's private directory.
    let mut dir = state.clone();
    while let Some(parent) = dir.parent() {
        if parent == std::path::Path::new("/tmp") || parent == std::path::Path::new("/") {
            break;
        }
        let _ = std::process::Command::new("chmod")
            .args(["o+x", parent.to_str().expect("p")])
            .status();
        dir = parent.to_path_buf();
    }
    let t0 = at("2026-11-23T09:00:00Z");
    complaint_at(&stack, &fu, t0);
    // The passwords stay the service's: the staff member cannot read them.
    let password = stack.var("PASSWORD_FILE").to_string();
    let as_staff_at = |at: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new("runuser");
        if let Some(at) = at {
            cmd.env("FOLLOWUPD_TEST_NOW", at);
        }
        cmd.args([
            "-u",
            &user,
            "--",
            env!("CARGO_BIN_EXE_followupd"),
            "--config",
        ])
        .arg(&fu.config)
        .args(args)
        .env("FOLLOWUPD_LOG", "warn")
        .output()
        .expect("runuser")
    };
    let as_staff = |args: &[&str]| as_staff_at(None, args);
    let cat = std::process::Command::new("runuser")
        .args(["-u", &user, "--", "cat", &password])
        .output()
        .expect("runuser cat");
    assert!(
        !cat.status.success(),
        "the password file is not the staff's to read"
    );
    let list = ok(as_staff(&["incidents"]));
    assert!(list.contains("Checkout keeps failing"), "{list}");
    let full = ok(as_staff(&["incident", "show", "1", "--full"]));
    assert!(
        full.contains("every payment attempt ends with an error page."),
        "{full}"
    );
    let said = ok(as_staff_at(
        Some("2026-11-23T09:30:00Z"),
        &["incident", "note", "1", "Looking into it now."],
    ));
    assert!(said.contains("progress update queued"), "{said}");
    fu.once_at(t0 + Span::minutes(31));
    let mail = stack.wait_for_mail(ANN, 2);
    assert!(text_of(&mail[1]).contains("Looking into it now."));
    let _ = std::process::Command::new("userdel").arg(&user).output();
    let _ = std::process::Command::new("groupdel").arg(&group).output();
}

#[test]
fn the_cli_shows_what_was_written_with_terminal_escapes_made_harmless() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    stack.deliver(
        SUPPORT,
        complaint(
            ANN,
            "ann-1@client.example.test",
            "Broken \u{1b}[31mred\u{1b}[0m",
            "Line one.\r\nEscape: \u{1b}]0;pwned\u{7}\r\n",
        )
        .as_bytes(),
    );
    fu.once();
    for args in [
        vec!["incident", "show", "1", "--full"],
        vec!["message", "show", "1"],
        vec!["messages"],
        vec!["incidents"],
    ] {
        let out = ok(fu.run(&args));
        assert!(!out.contains('\u{1b}'), "{args:?}: {out:?}");
        assert!(!out.contains('\u{7}'), "{args:?}: {out:?}");
    }
    let shown = ok(fu.run(&["message", "show", "1"]));
    assert!(shown.contains("Line one."), "{shown}");
    assert!(shown.contains("Escape: ^[]0;pwned^G"), "{shown}");
    let raw = fu.run(&["message", "show", "1", "--raw"]);
    assert!(
        raw.stdout.windows(2).any(|w| w == b"\x1b]"),
        "--raw to a pipe is the exact bytes"
    );
}

#[test]
fn a_reply_to_a_notification_older_than_reply_valid_for_or_sent_to_another_member_acts_on_nothing()
{
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        &format!("\n[staff]\nmembers = [\"{ANNA}\", \"bob@example.test\"]\n"),
    );
    let t0 = at("2026-11-23T09:00:00Z");
    complaint_to_members(&stack, &fu, t0);
    let anna = stack.wait_for_mail(ANNA, 1);
    stack.wait_for_mail(ANN, 1);
    // Bob answers the notification that went to Anna (forwarded to him): not his to answer.
    let forwarded = staff_reply("bob@example.test", &anna[0], "We refunded it.", false);
    stack.deliver(SUPPORT, forwarded.as_bytes());
    fu.once_at(t0 + Span::minutes(10));
    assert_eq!(stack.mailbox(ANN).len(), 1, "nothing to the customer");
    // Bob's own, verified mail: a mistake, not a forgery. He alone is told.
    assert!(!has_event(&fu.incident(1), "forged_staff_reply"));
    assert!(has_event(&fu.incident(1), "staff_command_refused"));
    let bob = stack.wait_for_mail("bob@example.test", 2);
    assert!(
        bob.iter()
            .any(|m| text_of(m).contains("does not answer a notification sent to you")),
        "Bob is told how to answer"
    );
    // Anna answers it, but 91 days later: refused, and she is told to answer a fresh one.
    let late = staff_reply(ANNA, &anna[0], "We refunded it today.", false);
    stack.deliver(SUPPORT, late.as_bytes());
    fu.once_at(t0 + Span::days(91));
    eventually("Anna is told", Duration::from_secs(15), || {
        stack
            .mailbox(ANNA)
            .iter()
            .any(|m| text_of(m).contains("older than"))
    });
    let told = stack
        .mailbox(ANNA)
        .iter()
        .map(|m| text_of(m))
        .find(|t| t.contains("older than"))
        .expect("a refusal");
    assert!(told.contains("reply_valid_for"), "{told}");
    assert!(
        stack
            .mailbox(ANN)
            .iter()
            .all(|m| !text_of(m).contains("We refunded it")),
        "nothing relayed"
    );
}

/// Ann's complaint at `t0`, for a team without a list: each member gets their own notification.
fn complaint_to_members(stack: &MailStack, fu: &Followupd, t0: DateTime<Utc>) {
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Checkout keeps failing",
            "Hello,\r\n\r\nevery payment attempt ends with an error page.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
}
