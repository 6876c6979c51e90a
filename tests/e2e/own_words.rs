//! Replies read as their writers meant them, against real Dovecot and Postfix: staff answer
//! from Outlook, Thunderbird and Gmail the way those clients quote, and the customer gets
//! their words and nothing of what was meant for staff; a reply we cannot read with confidence
//! is held and its writer told; a bug met on one message or incident stays with it.

use chrono::{DateTime, Duration as Span, Utc};

use crate::harness::*;
use crate::staff::{at, text_of, with_staff, ANNA, TEAM};

const ANN: &str = "ann@example.test";
const BOB: &str = "bob@example.test";

/// Ann's complaint at `t0`; returns the team's notification.
fn complaint_at(stack: &MailStack, fu: &Followupd, t0: DateTime<Utc>) -> Vec<u8> {
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Refund for order 48391",
            "Hello,\r\n\r\nI returned order #48391 three weeks ago and have no refund yet.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(TEAM, 1)[0].clone()
}

/// A staff member's reply to `answered` (a notification, escalation or held notice) with the
/// body as their client wrote it.
fn reply_to(from: &str, name: &str, answered: &[u8], body: &str, n: u32) -> Vec<u8> {
    let m = parse(answered);
    let id = m.message_id().expect("Message-ID").to_string();
    let subject = m.subject().expect("subject").to_string();
    format!(
        "From: {name} <{from}>\r\nTo: {SUPPORT}\r\nSubject: RE: {subject}\r\n\
         Message-ID: <staff-{n}@example.test>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// What Outlook desktop puts under the writer's text: a rule, a header block, then the mail
/// as it was, not marked as quoted.
fn outlook_quote(answered: &[u8], from: &str, sent: &str) -> String {
    let subject = parse(answered).subject().expect("subject").to_string();
    format!(
        "________________________________\n{from} Example Support <{SUPPORT}>\n{sent} Monday, \
         November 23, 2026 10:12 AM\nTo: {TEAM}\nSubject: {subject}\n\n{}",
        text_of(answered).replace("\r\n", "\n")
    )
}

/// What Thunderbird and Gmail put above or below: an attribution line and `>` quotes.
fn marked_quote(answered: &[u8]) -> String {
    let quoted: String = text_of(answered)
        .lines()
        .map(|l| format!("> {l}\n"))
        .collect();
    format!("On 23/11/2026 10:12, Example Support wrote:\n{quoted}")
}

#[test]
fn an_outlook_reply_to_an_escalation_quoting_an_internal_note_sends_the_customer_only_the_staff_text(
) {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "\n[escalation]\nafter_no_note = \"1h\"\n");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);
    let note = "Finance must approve refunds over 200 EUR first; do not promise her a date.";
    stack.deliver(
        SUPPORT,
        &reply_to(
            ANNA,
            "Anna Berg",
            &notification,
            &format!("#internal\n{note}\n\n{}", marked_quote(&notification)),
            1,
        ),
    );
    fu.once_at(t0 + Span::minutes(5));
    // No note for an hour: the escalation shows the latest note, the internal one.
    fu.once_at(t0 + Span::minutes(70));
    let team = stack.wait_for_mail(TEAM, 2);
    let escalation = team
        .iter()
        .find(|m| text_of(m).contains("needs someone to look at it"))
        .expect("an escalation")
        .clone();
    assert!(text_of(&escalation).contains("Finance must approve refunds"));

    // Bob answers from Outlook: his words on top, the escalation below, unmarked.
    let body = format!(
        "Hi Ann,\n\nyour refund was approved today; the money is on its way to your card.\n\n\
         Kind regards\nBob Stone\nCustomer Care | Example Shop\nMobile +49 171 5550123\n\n{}",
        outlook_quote(&escalation, "From:", "Sent:")
    );
    stack.deliver(SUPPORT, &reply_to(BOB, "Bob Stone", &escalation, &body, 2));
    fu.once_at(t0 + Span::minutes(80));
    let mail = stack.wait_for_mail(ANN, 2);
    let text = text_of(&mail[1]);
    assert!(
        text.contains("Your refund was approved today; the money is on its way to your card."),
        "{text}"
    );
    for leaked in [
        "Finance",
        "200 EUR",
        "needs someone to look at it",
        "#resolve",
        "+49 171",
        "Customer Care | Example Shop",
        "Sent:",
        "Subject:",
    ] {
        assert!(
            !text.contains(leaked),
            "{leaked} reached the customer: {text}"
        );
    }
    assert_eq!(
        text.matches("Hi Ann,").count(),
        1,
        "his greeting, not the template's as well: {text}"
    );
    assert!(text.contains("Bob Stone"), "signed: {text}");
    assert_eq!(
        text.matches("Bob").count(),
        1,
        "his name once, under the template's sign-off: {text}"
    );

    // The same in German Outlook, with the header block in German: still nothing of it.
    let body = format!(
        "Die Gutschrift ist heute gebucht worden.\n\n{}",
        outlook_quote(&escalation, "Von:", "Gesendet:")
    );
    stack.deliver(SUPPORT, &reply_to(BOB, "Bob Stone", &escalation, &body, 3));
    fu.once_at(t0 + Span::minutes(90));
    let mail = stack.wait_for_mail(ANN, 3);
    let text = text_of(&mail[2]);
    assert!(
        text.contains("Die Gutschrift ist heute gebucht worden."),
        "{text}"
    );
    assert!(!text.contains("Finance"), "{text}");
    assert!(!text.contains("Gesendet"), "{text}");
}

#[test]
fn bottom_posted_and_gmail_replies_are_relayed_with_commands_read_wherever_they_stand() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);

    // Thunderbird, bottom-posted, with a `-- ` signature.
    let body = format!(
        "{}\nThe refund left our bank this morning; it reaches your card in 2 to 3 days.\n\n\
         -- \nAnna Berg\nSupport lead, Example Shop\n+49 30 1234567\n",
        marked_quote(&notification)
    );
    stack.deliver(
        SUPPORT,
        &reply_to(ANNA, "Anna Berg", &notification, &body, 1),
    );
    fu.once_at(t0 + Span::minutes(10));
    let mail = stack.wait_for_mail(ANN, 2);
    let text = text_of(&mail[1]);
    assert!(
        text.contains(
            "The refund left our bank this morning; it reaches your card in 2 to 3 days."
        ),
        "{text}"
    );
    assert!(!text.contains("+49 30"), "{text}");
    assert!(!text.contains("I returned order"), "nothing quoted: {text}");

    // Gmail from a phone: greeting, text, a command at the bottom, the quote below.
    let body = format!(
        "Hi Ann,\n\nyou will also get a 10 EUR voucher for the wait.\n\n#tag vip\n\n\
         Sent from my iPhone\n\n{}",
        marked_quote(&notification)
    );
    stack.deliver(
        SUPPORT,
        &reply_to(ANNA, "Anna Berg", &notification, &body, 2),
    );
    fu.once_at(t0 + Span::minutes(20));
    let mail = stack.wait_for_mail(ANN, 3);
    let text = text_of(&mail[2]);
    assert!(
        text.contains("You will also get a 10 EUR voucher for the wait."),
        "{text}"
    );
    assert_eq!(text.matches("Hi Ann,").count(), 1, "{text}");
    for leaked in ["#tag", "vip", "Sent from my iPhone", "wrote:"] {
        assert!(!text.contains(leaked), "{leaked}: {text}");
    }
    let shown = fu.incident(1);
    assert!(
        shown["incident"]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "vip")),
        "the command at the bottom was carried out: {shown}"
    );
}

#[test]
fn a_reply_we_cannot_read_with_confidence_is_held_the_member_told_and_hash_send_sends_it() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);

    // All quote: the writer pressed send before typing.
    stack.deliver(
        SUPPORT,
        &reply_to(
            ANNA,
            "Anna Berg",
            &notification,
            &marked_quote(&notification),
            1,
        ),
    );
    fu.once_at(t0 + Span::minutes(10));
    let anna = stack.wait_for_mail(ANNA, 1);
    let held = text_of(&anna[0]);
    assert!(held.contains("was not sent to the customer"), "{held}");
    assert!(held.contains("We found no words of yours"), "{held}");
    assert_eq!(stack.mailbox(ANN).len(), 1, "nothing to the customer");
    assert!(has_event(&fu.incident(1), "staff_reply_held"));

    // A line that reads like a quoted mail's header: not sure it is hers; held, shown.
    let body = format!(
        "The courier confirmed it:\nFrom: dispatch@parcels.test the parcel leaves on Friday.\n\n{}",
        marked_quote(&notification)
    );
    stack.deliver(
        SUPPORT,
        &reply_to(ANNA, "Anna Berg", &notification, &body, 2),
    );
    fu.once_at(t0 + Span::minutes(20));
    let anna = stack.wait_for_mail(ANNA, 2);
    let held = text_of(&anna[1]);
    assert!(held.contains("could not tell with confidence"), "{held}");
    assert!(
        held.contains("the parcel leaves on Friday"),
        "shown: {held}"
    );
    assert!(held.contains("#send"), "{held}");
    assert_eq!(stack.mailbox(ANN).len(), 1, "nothing to the customer yet");

    // `#send` in a reply to the notice: the text goes as it was shown.
    let body = format!("#send\n\n{}", marked_quote(&anna[1]));
    stack.deliver(SUPPORT, &reply_to(ANNA, "Anna Berg", &anna[1], &body, 3));
    fu.once_at(t0 + Span::minutes(30));
    let mail = stack.wait_for_mail(ANN, 2);
    let text = text_of(&mail[1]);
    assert!(
        text.contains("From: dispatch@parcels.test the parcel leaves on Friday."),
        "{text}"
    );
    assert!(!text.contains("#send"), "{text}");
    assert!(!text.contains("was not sent"), "{text}");
    let shown = fu.incident(1);
    assert!(has_event(&shown, "staff_reply_released"), "{shown}");

    // `#send` again: nothing is waiting; refused, nothing sent.
    stack.deliver(SUPPORT, &reply_to(ANNA, "Anna Berg", &anna[1], &body, 4));
    fu.once_at(t0 + Span::minutes(40));
    let anna = stack.wait_for_mail(ANNA, 3);
    assert!(
        text_of(anna.last().expect("refusal")).contains("is waiting to be sent"),
        "{}",
        text_of(anna.last().expect("refusal"))
    );
    assert_eq!(stack.mailbox(ANN).len(), 2);
}

#[test]
fn a_bug_met_on_one_message_or_incident_stays_with_it_and_the_next_complaint_is_answered() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let with_bug = |word: &str, at: DateTime<Utc>| {
        let out = fu
            .command_at(at)
            .env("FOLLOWUPD_TEST_PANIC", word)
            .args(["run", "--once"])
            .output()
            .expect("run followupd");
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "the pass goes on: {log}");
        log
    };
    let customers = ["zoe@example.test", "yan@example.test"];
    for (i, who) in customers.iter().enumerate() {
        stack.deliver(
            SUPPORT,
            complaint(
                who,
                &format!("c{i}@client.example.test"),
                if i == 0 {
                    "Zebra print mug broken"
                } else {
                    "Lamp broken"
                },
                "Hello,\r\n\r\nit arrived in pieces.\r\n",
            )
            .as_bytes(),
        );
    }
    fu.once_at(t0);
    for who in customers {
        assert_eq!(stack.wait_for_mail(who, 1).len(), 1);
    }

    // Rendering panics on one complaint: it is kept for a person, the next is answered.
    stack.deliver(
        SUPPORT,
        complaint(
            "xia@example.test",
            "poison@client.example.test",
            "Poison pill",
            "Hello,\r\n\r\nthis one meets the bug.\r\n",
        )
        .as_bytes(),
    );
    stack.deliver(
        SUPPORT,
        complaint(
            "wes@example.test",
            "hi@client.example.test",
            "Hİ",
            "Hİ, my order never arrived.\r\n",
        )
        .as_bytes(),
    );
    let log = with_bug("Poison", t0 + Span::minutes(5));
    assert!(
        log.contains("forced by FOLLOWUPD_TEST_PANIC while rendering"),
        "the panic's message in the log line: {log}"
    );
    assert_eq!(
        stack.wait_for_mail("wes@example.test", 1).len(),
        1,
        "answered"
    );
    assert!(stack.mailbox("xia@example.test").is_empty());
    let held = fu.count(
        "SELECT COUNT(*) FROM messages WHERE class = 'quarantined'
         AND class_reason LIKE '%a bug%forced by FOLLOWUPD_TEST_PANIC%'",
    );
    assert_eq!(held, 1, "kept for a person with the panic's message");

    // In the scheduler: the one incident is marked and passed over, the other gets its update.
    let log = with_bug("Zebra", t0 + Span::hours(4));
    assert!(log.contains("a bug stopped work on this incident"), "{log}");
    assert_eq!(
        stack.wait_for_mail("yan@example.test", 2).len(),
        2,
        "updated"
    );
    assert_eq!(stack.mailbox("zoe@example.test").len(), 1);
    let shown = fu.incident(1);
    assert!(has_event(&shown, "internal_error"), "{shown}");
    assert!(
        shown["fault"]
            .as_str()
            .is_some_and(|f| f.contains("FOLLOWUPD_TEST_PANIC")),
        "{shown}"
    );
    // Passed over until staff act: the next pass does not fail on it again.
    let log = with_bug("Zebra", t0 + Span::hours(4) + Span::minutes(1));
    assert!(!log.contains("a bug stopped work"), "{log}");
}

/// Outlook on the web writes HTML only (its text part empty): the writer's lines as `<div>`s,
/// then `divRplyFwdMsg` with the header block and the notification below, unmarked.
#[test]
fn an_html_only_outlook_on_the_web_reply_sends_the_customer_only_the_staff_text() {
    let stack = MailStack::start();
    let fu = with_staff(&stack, "");
    let t0 = at("2026-11-23T09:00:00Z");
    let notification = complaint_at(&stack, &fu, t0);
    stack.wait_for_mail(ANN, 1);
    let n = parse(&notification);
    let id = n.message_id().expect("Message-ID").to_string();
    let subject = n.subject().expect("subject").to_string();
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let quoted: String = text_of(&notification)
        .lines()
        .map(|l| format!("<div>{}</div>\r\n", escape(l)))
        .collect();
    let html = format!(
        "<html><body dir=\"ltr\">\r\n\
         <div class=\"elementToProof\">Hallo Frau Example,</div>\r\n\
         <div class=\"elementToProof\"><br></div>\r\n\
         <div class=\"elementToProof\">die Erstattung ist heute angewiesen worden.</div>\r\n\
         <div class=\"elementToProof\"><br></div>\r\n\
         <div class=\"elementToProof\">Freundliche Gr&uuml;&szlig;e</div>\r\n\
         <div class=\"elementToProof\">Anna Berg</div>\r\n\
         <div class=\"elementToProof\">Tel. +49 30 1234567</div>\r\n\
         <div id=\"appendonsend\"></div>\r\n\
         <hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\r\n\
         <div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\"><b>Von:</b> \
         Example Support &lt;{SUPPORT}&gt;<br>\r\n<b>Gesendet:</b> Montag, 23. November 2026 \
         10:05<br>\r\n<b>An:</b> {TEAM}<br>\r\n<b>Betreff:</b> {}</font>\r\n\
         <div>&nbsp;</div></div>\r\n{quoted}</body></html>\r\n",
        escape(&subject)
    );
    let raw = format!(
        "From: Anna Berg <{ANNA}>\r\nTo: {SUPPORT}\r\nSubject: AW: {subject}\r\n\
         Message-ID: <owa-1@example.test>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 10:10:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
    );
    stack.deliver(SUPPORT, raw.as_bytes());
    fu.once_at(t0 + Span::minutes(10));
    let mail = stack.wait_for_mail(ANN, 2);
    let text = text_of(&mail[1]);
    assert!(
        text.contains("Die Erstattung ist heute angewiesen worden."),
        "{text}"
    );
    assert_eq!(text.matches("Hallo Frau Example,").count(), 1, "{text}");
    for leaked in [
        "Gesendet",
        "Betreff",
        "New incident from",
        "#resolve",
        "+49 30",
        "I returned order",
    ] {
        assert!(
            !text.contains(leaked),
            "{leaked} reached the customer: {text}"
        );
    }
}
