//! The thread is the team's ticket: three members, each told in their own mailbox, against
//! real Dovecot and Postfix. What one does (a reply, a note, an assignment) reaches the
//! others with the exact text the customer got; subjects say what happened; a customer's
//! screenshot rides with the notification.

use std::time::Duration;

use chrono::Duration as Span;
use mail_parser::MimeHeaders;

use crate::harness::*;
use crate::staff::{at, staff_reply, text_of};

const ANN: &str = "ann@example.test";
const ANNA: &str = "anna@example.test";
const BEN: &str = "ben@example.test";
const CHRIS: &str = "chris@example.test";

/// Anna, Ben and Chris, each notified in their own mailbox.
fn team_of_three(stack: &MailStack) -> Followupd {
    Followupd::with_extra(
        stack,
        Tls::ImapsAndSmtpStarttls,
        &format!("\n[staff]\nmembers = [\"{ANNA}\", \"{BEN}\", \"{CHRIS}\"]\n"),
    )
}

/// Waits until the support inbox holds `n` mails (a staff reply sent through Postfix).
fn reaches_support(stack: &MailStack, n: usize) {
    eventually(
        "the reply reaches the support inbox",
        Duration::from_secs(15),
        || stack.mailbox(SUPPORT).len() >= n,
    );
}

fn subject_of(raw: &[u8]) -> String {
    parse(raw).subject().unwrap_or_default().to_string()
}

#[test]
fn what_one_member_does_reaches_the_others_with_the_exact_customer_text() {
    let stack = MailStack::start();
    let fu = team_of_three(&stack);
    let t0 = at("2026-11-23T09:00:00Z");
    // Ann's complaint carries a screenshot.
    let complaint = format!(
        "From: \"Ann Example\" <{ANN}>\r\nTo: {SUPPORT}\r\nSubject: Checkout keeps failing\r\n\
         Message-ID: <ann-1@client.example.test>\r\nDate: Mon, 23 Nov 2026 08:59:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\nevery payment attempt ends with an error page. Screenshot attached.\r\n\r\nAnn\r\n\
         --b1\r\nContent-Type: image/png; name=\"error.png\"\r\n\
         Content-Disposition: attachment; filename=\"error.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
         --b1--\r\n"
    );
    stack.deliver(SUPPORT, complaint.as_bytes());
    fu.once_at(t0);
    stack.wait_for_mail(ANN, 1);
    let mut notified = Vec::new();
    for member in [ANNA, BEN, CHRIS] {
        let mail = stack.wait_for_mail(member, 1);
        assert_eq!(mail.len(), 1, "{member}: one notification");
        let n = parse(&mail[0]);
        assert!(
            subject_of(&mail[0]).starts_with("[New] Incident 1: Checkout keeps failing"),
            "{}",
            subject_of(&mail[0])
        );
        let screenshot = n
            .attachments()
            .find(|a| a.attachment_name() == Some("error.png"))
            .expect("the screenshot is attached, not only listed");
        assert_eq!(screenshot.content_type().map(|c| c.ctype()), Some("image"));
        notified.push(mail[0].clone());
    }

    // Anna answers from her notification and gives the incident to Ben.
    let reply = staff_reply(
        ANNA,
        &notified[0],
        "#assign ben\nWe found it: the payment provider had an outage. Please try again now.",
        false,
    );
    stack.send(ANNA, SUPPORT, &reply);
    reaches_support(&stack, 2);
    fu.once_at(t0 + Span::minutes(10));
    let to_ann = stack.wait_for_mail(ANN, 2);
    let sent = text_of(&to_ann[1]);
    assert!(
        sent.contains("the payment provider had an outage"),
        "{sent}"
    );
    for (i, member) in [ANNA, BEN, CHRIS].into_iter().enumerate() {
        let mail = stack.wait_for_mail(member, 2);
        assert_eq!(mail.len(), 2, "{member}: the team's copy, once");
        let copy = &mail[1];
        assert!(
            subject_of(copy).starts_with("[Reply sent] Incident 1: Checkout keeps failing"),
            "{}",
            subject_of(copy)
        );
        let text = text_of(copy);
        assert!(
            text.contains("Anna Berg <anna@example.test> acted on incident 1"),
            "{text}"
        );
        assert_eq!(
            text.matches("the payment provider had an outage").count(),
            1,
            "the words once, in the copy: {text}"
        );
        assert!(text.contains("assigned to ben@example.test"), "{text}");
        assert!(text.contains("Assigned:     ben@example.test"), "{text}");
        // Every line the customer read is in the copy, as they read it.
        for line in sent.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                text.contains(line.trim()),
                "{member} misses {line:?}:\n{text}"
            );
        }
        let own = parse(&notified[i]).message_id().expect("id").to_string();
        let references: Vec<String> = parse(copy)
            .references()
            .as_text_list()
            .map(|l| l.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        assert!(
            references.contains(&own),
            "{member}: threaded under their own notification: {references:?}"
        );
    }

    // The morning list: Ben's incidents, and a search in what the team wrote.
    let mine = fu.run(&["incidents", "--assignee", "ben"]);
    let mine = String::from_utf8_lossy(&mine.stdout).to_string();
    assert!(mine.contains("ASSIGNED") && mine.contains("ben"), "{mine}");
    assert!(mine.contains("Checkout keeps failing"), "{mine}");
    let nobody = fu.run(&["incidents", "--assignee", "chris"]);
    assert!(
        String::from_utf8_lossy(&nobody.stdout).contains("no incidents"),
        "{nobody:?}"
    );
    let found = fu.run(&["incidents", "--search", "PAYMENT PROVIDER"]);
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("Checkout keeps failing"),
        "{found:?}"
    );
    let unknown = fu.run(&["incidents", "--assignee", "dora"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no team member is called `dora`"),
        "{unknown:?}"
    );

    // An internal note from the shell never reaches the customer; the team sees it.
    let out = fu.run_at(
        t0 + Span::minutes(20),
        &[
            "incident",
            "note",
            "1",
            "--internal",
            "test",
            "--by",
            "chris",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("internal note recorded"),
        "{out:?}"
    );
    fu.once_at(t0 + Span::minutes(21));
    let ben = stack.wait_for_mail(BEN, 3);
    assert!(
        subject_of(&ben[2]).starts_with("[Internal note] Incident 1"),
        "{}",
        subject_of(&ben[2])
    );
    assert!(text_of(&ben[2]).contains("internal: test"));
    assert_eq!(stack.mailbox(ANN).len(), 2, "the customer got no note");
}

#[test]
fn two_answers_in_a_minute_the_second_is_held_and_a_reply_all_is_not_sent_twice() {
    let stack = MailStack::start();
    let fu = team_of_three(&stack);
    let t0 = at("2026-11-23T09:00:00Z");
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Parcel never arrived",
            "Hello,\r\n\r\nmy parcel for order 48391 never arrived.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(ANN, 1);
    let new_for = |member: &str| stack.wait_for_mail(member, 1)[0].clone();
    let (for_ben, for_chris, for_anna) = (new_for(BEN), new_for(CHRIS), new_for(ANNA));
    let arrived = |n: usize| reaches_support(&stack, n);

    // Ben answers first; Chris, from the same old notification, a minute later.
    stack.send(
        BEN,
        SUPPORT,
        &staff_reply(BEN, &for_ben, "A replacement ships today.", false),
    );
    arrived(2);
    fu.once_at(t0 + Span::minutes(5));
    stack.send(
        CHRIS,
        SUPPORT,
        &staff_reply(CHRIS, &for_chris, "We will refund you.", false),
    );
    arrived(3);
    fu.once_at(t0 + Span::minutes(6));
    let to_ann = stack.wait_for_mail(ANN, 2);
    assert_eq!(to_ann.len(), 2, "Ben's answer only");
    assert!(text_of(&to_ann[1]).contains("A replacement ships today."));
    let chris = stack.wait_for_mail(CHRIS, 3);
    let held = chris
        .iter()
        .find(|m| subject_of(m).starts_with("[Held: ben@example.test answered first]"))
        .unwrap_or_else(|| {
            panic!(
                "Chris is told: {:?}",
                chris.iter().map(|m| subject_of(m)).collect::<Vec<_>>()
            )
        });
    let text = text_of(held);
    assert!(text.contains("A replacement ships today."), "{text}");
    assert!(text.contains("#send"), "{text}");

    // He decides his still goes.
    stack.send(CHRIS, SUPPORT, &staff_reply(CHRIS, held, "#send", false));
    arrived(4);
    fu.once_at(t0 + Span::minutes(8));
    let to_ann = stack.wait_for_mail(ANN, 3);
    assert_eq!(to_ann.len(), 3);
    assert!(text_of(&to_ann[2]).contains("We will refund you."));

    // Anna replies to all: Ann has Anna's own mail; followupd records it and sends nothing.
    let anna_before = stack.mailbox(ANNA).len();
    let mut all = staff_reply(
        ANNA,
        &for_anna,
        "#close\nI have also asked the carrier.",
        false,
    );
    all = all.replacen(
        &format!("To: {SUPPORT}\r\n"),
        &format!("To: {SUPPORT}\r\nCc: {ANN}\r\n"),
        1,
    );
    stack.send(ANNA, ANN, &all);
    stack.send(ANNA, SUPPORT, &all);
    arrived(5);
    fu.once_at(t0 + Span::minutes(10));
    let to_ann = stack.wait_for_mail(ANN, 4);
    stack.settle();
    let to_ann_now = stack.mailbox(ANN);
    assert_eq!(
        to_ann_now.len(),
        4,
        "her own mail, and no second copy from followupd: {:?}",
        to_ann.iter().map(|m| subject_of(m)).collect::<Vec<_>>()
    );
    let shown = fu.run(&["incident", "show", "1"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("I have also asked the carrier."),
        "{shown:?}"
    );
    // Its #close was not run, and Anna is told why.
    assert_eq!(fu.incident(1)["incident"]["state"], "open");
    let anna = stack.wait_for_mail(ANNA, anna_before + 1);
    assert!(
        anna[anna_before..]
            .iter()
            .any(|m| subject_of(m).starts_with("[Refused]") && text_of(m).contains("reply-all")),
        "{:?}",
        anna[anna_before..]
            .iter()
            .map(|m| subject_of(m))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_canned_reply_goes_out_with_the_incidents_data_and_an_unknown_one_is_refused() {
    let stack = MailStack::start();
    let fu = team_of_three(&stack);
    let t0 = at("2026-11-23T09:00:00Z");
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Charged twice",
            "Hello,\r\n\r\nI was charged twice for order 48391. Please refund one.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(ANN, 1);
    let listed = fu.run(&["template", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("refund-approved (also in de, es, fr)"),
        "{listed}"
    );
    let notification = stack.wait_for_mail(BEN, 1)[0].clone();
    let arrived = |n: usize| reaches_support(&stack, n);
    stack.send(
        BEN,
        SUPPORT,
        &staff_reply(BEN, &notification, "#reply refund-aproved", false),
    );
    arrived(2);
    fu.once_at(t0 + Span::minutes(5));
    let ben = stack.wait_for_mail(BEN, 2);
    let refused = ben
        .iter()
        .find(|m| subject_of(m).starts_with("[Refused]"))
        .expect("a misspelt name is refused");
    let text = text_of(refused);
    assert!(
        text.contains("no canned reply `refund-aproved`") && text.contains("refund-approved"),
        "{text}"
    );
    assert_eq!(stack.mailbox(ANN).len(), 1, "nothing went to the customer");

    stack.send(
        BEN,
        SUPPORT,
        &staff_reply(
            BEN,
            &notification,
            "#reply refund-approved\nSorry again for the trouble.",
            false,
        ),
    );
    arrived(3);
    fu.once_at(t0 + Span::minutes(10));
    let to_ann = stack.wait_for_mail(ANN, 2);
    let text = text_of(&to_ann[1]);
    let token = fu.incident(1)["incident"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(
        text.contains("We have approved your refund.")
            && text.contains(&format!("Your reference is {token}."))
            && text.contains("Sorry again for the trouble."),
        "{text}"
    );
    assert!(!text.contains("#reply"), "{text}");
}

#[test]
fn on_hold_until_thursday_the_customer_is_told_why_and_hears_nothing_until_then() {
    let stack = MailStack::start();
    let fu = team_of_three(&stack);
    // Monday 23 November 2026.
    let t0 = at("2026-11-23T09:00:00Z");
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Parcel lost",
            "Hello,\r\n\r\nthe tracking of order 48391 has not moved for a week.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(ANN, 1);
    let notification = stack.wait_for_mail(ANNA, 1)[0].clone();
    stack.send(
        ANNA,
        SUPPORT,
        &staff_reply(
            ANNA,
            &notification,
            "#hold until Thursday 10:00 waiting for the carrier's search\n\
             They promised us an answer by Thursday morning.",
            false,
        ),
    );
    reaches_support(&stack, 2);
    fu.once_at(t0 + Span::minutes(10));
    let to_ann = stack.wait_for_mail(ANN, 2);
    let text = text_of(&to_ann[1]);
    for part in [
        "on hold until Thursday 26 November 2026, 10:00 UTC",
        "waiting for the carrier's search",
        "They promised us an answer by Thursday morning.",
        "we will not write before that time",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(!text.contains("#hold"), "{text}");
    let shown = fu.incident(1);
    assert_eq!(shown["incident"]["hold_until"], "2026-11-26T10:00:00.000Z");

    // Three days pass: no update to Ann, no escalation to the team.
    let staff_before = stack.mailbox(BEN).len();
    for hours in [6, 24, 30, 48, 60, 71] {
        fu.once_at(t0 + Span::hours(hours));
    }
    stack.settle();
    assert_eq!(stack.mailbox(ANN).len(), 2, "nothing during the hold");
    let ben = stack.mailbox(BEN);
    assert!(
        ben[staff_before..]
            .iter()
            .all(|m| !subject_of(m).starts_with("[Escalation]")),
        "no escalation while on hold: {:?}",
        ben.iter().map(|m| subject_of(m)).collect::<Vec<_>>()
    );

    // Thursday 10:00 (sent within the lead before it): the promised update, on time, and the
    // hold is over.
    fu.once_at(at("2026-11-26T09:51:00Z"));
    let to_ann = stack.wait_for_mail(ANN, 3);
    assert_eq!(to_ann.len(), 3);
    let text = text_of(&to_ann[2]);
    assert!(
        !text.contains("on hold") && !text.contains("later than we promised"),
        "{text}"
    );
    assert!(fu.incident(1)["incident"]["hold_until"].is_null());
}

#[test]
fn the_assignee_alone_is_alarmed_first_and_the_team_only_within_staff_hours() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        &format!(
            "\n[staff]\nmembers = [\"{ANNA}\", \"{BEN}\", \"{CHRIS}\"]\n\
             window = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"9h\"\n"
        ),
    );
    // Monday 23 November 2026, 09:00 UTC.
    let t0 = at("2026-11-23T09:00:00Z");
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("\"Ann Example\" <{ANN}>"),
            "ann-1@client.example.test",
            "Invoice wrong",
            "Hello,\r\n\r\ninvoice 2211 charges me for two licences; I have one.\r\n\r\nAnn",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(ANN, 1);
    let notification = stack.wait_for_mail(ANNA, 1)[0].clone();
    stack.send(
        ANNA,
        SUPPORT,
        &staff_reply(ANNA, &notification, "#assign ben", false),
    );
    reaches_support(&stack, 2);
    fu.once_at(t0 + Span::minutes(5));
    let escalations = |member: &str| {
        stack
            .mailbox(member)
            .iter()
            .filter(|m| subject_of(m).starts_with("[Escalation]"))
            .count()
    };
    let at_risk = |member: &str| {
        stack
            .mailbox(member)
            .iter()
            .filter(|m| subject_of(m).starts_with("[At risk"))
            .count()
    };
    // 12:00: the 13:00 promise is at risk; 17:01: eight quiet hours. Ben alone hears.
    fu.once_at(at("2026-11-23T12:01:00Z"));
    fu.once_at(at("2026-11-23T17:01:00Z"));
    stack.wait_for_mail(BEN, 4);
    stack.settle();
    assert_eq!((at_risk(BEN), escalations(BEN)), (1, 1), "Ben is alarmed");
    for member in [ANNA, CHRIS] {
        assert_eq!((at_risk(member), escalations(member)), (0, 0), "{member}");
    }
    // An hour later nobody has written, but the team's day is over (18:00): they hear on
    // Tuesday at 09:00, not at night.
    fu.once_at(at("2026-11-23T18:02:00Z"));
    fu.once_at(at("2026-11-23T23:00:00Z"));
    stack.settle();
    for member in [ANNA, CHRIS] {
        assert_eq!(escalations(member), 0, "{member}: not outside staff hours");
    }
    fu.once_at(at("2026-11-24T09:01:00Z"));
    for member in [ANNA, CHRIS] {
        eventually("the team is told", Duration::from_secs(15), || {
            escalations(member) == 1
        });
        let mail = stack.mailbox(member);
        let text = text_of(
            mail.iter()
                .find(|m| subject_of(m).starts_with("[Escalation]"))
                .expect("escalation"),
        );
        assert!(text.contains("assigned to ben@example.test"), "{text}");
    }
    assert_eq!(escalations(BEN), 1, "Ben is not told twice");
}

#[test]
fn one_reply_with_to_tag_answers_every_customer_of_an_outage_in_their_own_thread() {
    let stack = MailStack::start();
    let fu = team_of_three(&stack);
    let t0 = at("2026-11-23T09:00:00Z");
    let customers = ["c1@example.test", "c2@example.test", "c3@example.test"];
    for (i, customer) in customers.iter().enumerate() {
        let (subject, body, lang) = if i == 2 {
            (
                "Zahlung geht nicht",
                "Guten Tag,\r\n\r\ndie Zahlung schlägt immer fehl.\r\n",
                "de",
            )
        } else {
            (
                "Payment fails",
                "Hello,\r\n\r\nevery payment fails with an error.\r\n",
                "en",
            )
        };
        stack.deliver(
            SUPPORT,
            format!(
                "From: {customer}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n\
                 Message-ID: <c{i}-1@client.example.test>\r\nContent-Language: {lang}\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
            )
            .as_bytes(),
        );
    }
    fu.once_at(t0);
    for customer in customers {
        stack.wait_for_mail(customer, 1);
    }
    for n in ["1", "2", "3"] {
        let out = fu.run_at(t0 + Span::minutes(2), &["incident", "tag", n, "outage"]);
        assert!(out.status.success(), "{out:?}");
    }
    let notification = stack.wait_for_mail(ANNA, 1)[0].clone();
    let anna_before = stack.mailbox(ANNA).len();
    stack.send(
        ANNA,
        SUPPORT,
        &staff_reply(
            ANNA,
            &notification,
            "#to-tag outage\nOur payment provider is down; we expect it back by 14:00.",
            false,
        ),
    );
    reaches_support(&stack, 4);
    fu.once_at(t0 + Span::minutes(10));
    for (i, customer) in customers.iter().enumerate() {
        let mail = stack.wait_for_mail(customer, 2);
        assert_eq!(mail.len(), 2, "{customer}: once");
        let m = parse(&mail[1]);
        let text = text_of(&mail[1]);
        assert!(
            text.contains("Our payment provider is down; we expect it back by 14:00."),
            "{customer}: {text}"
        );
        assert!(!text.contains("#to-tag"), "{text}");
        assert_eq!(
            m.in_reply_to().as_text(),
            parse(&stack.mailbox(customer)[0]).message_id(),
            "{customer}: in their own thread"
        );
        if i == 2 {
            assert_eq!(header(&m, "Content-Language"), Some("de"));
            assert!(text.contains("So ist der Stand bei Vorgang 3"), "{text}");
        }
    }
    // The team hears once, on the incident Anna wrote in.
    stack.settle();
    let anna = stack.mailbox(ANNA);
    let copies: Vec<String> = anna[anna_before..]
        .iter()
        .filter(|m| subject_of(m).starts_with("[Reply sent]"))
        .map(|m| text_of(m))
        .collect();
    assert_eq!(copies.len(), 1, "one copy, not one per incident");
    assert!(
        copies[0].contains("2 more incidents tagged `outage`: #"),
        "{}",
        copies[0]
    );
}
