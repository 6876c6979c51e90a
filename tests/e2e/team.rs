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
    team_of_three_with(stack, "")
}

/// The same, with `extra` after the `[staff]` members line (more `[staff]` keys, or sections).
fn team_of_three_with(stack: &MailStack, extra: &str) -> Followupd {
    Followupd::with_extra(
        stack,
        Tls::ImapsAndSmtpStarttls,
        &format!("\n[staff]\nmembers = [\"{ANNA}\", \"{BEN}\", \"{CHRIS}\"]\n{extra}"),
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
    let fu = team_of_three_with(
        &stack,
        "window = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"9h\"\n",
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

/// The week the team tried before this work, again: Anna, Ben and Chris; eight customers on
/// Monday morning, each taken by one member (`#assign me` with the first answer), news or a
/// question most days, each resolved by Thursday; a customer chasing, another answering a
/// question; on Wednesday morning a burst of forty complaints about one outage, answered and
/// then resolved with two replies to a digest. An office open Monday to Friday, 09:00–18:00,
/// for the customers' updates and the team's alarms alike. Ticks every quarter of an hour in
/// those hours, every two hours outside, Monday 09:00 to Sunday night.
///
/// That week cost each member 118 staff mails, 67 of them alarms (54 at risk, 13
/// escalations). Now the alarms are at most a third of that and come only in office hours,
/// every incident still has its own thread (the burst shared out, each member's digest
/// listing all of it), and no customer is sent the same mail twice. The figures per kind are
/// printed; the rest of each member's mail is what the team asked to see (a thread per
/// incident, a copy of every member's action).
#[test]
fn a_week_of_a_team_of_three_with_a_burst_of_forty_costs_each_member_a_third_of_the_alarms() {
    let stack = MailStack::start();
    let fu = team_of_three_with(
        &stack,
        "\n[cadence]\nwindow = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"9h\"\n",
    );
    let team = [ANNA, BEN, CHRIS];
    let mut now = at("2026-11-23T09:00:00Z");
    let end = at("2026-11-29T23:00:00Z");
    let in_hours = |t: chrono::DateTime<chrono::Utc>| {
        use chrono::{Datelike, Timelike};
        t.weekday().num_days_from_monday() < 5 && (9..18).contains(&t.hour())
    };
    // The daemon's ticks up to `t`: every quarter of an hour in staff hours, every two hours
    // outside (each tick is a process here; the daemon ticks every poll).
    let advance = |now: &mut chrono::DateTime<chrono::Utc>, t: chrono::DateTime<chrono::Utc>| {
        loop {
            let step = if in_hours(*now) {
                Span::minutes(15)
            } else {
                Span::hours(2)
            };
            if *now + step > t {
                break;
            }
            *now += step;
            fu.once_at(*now);
        }
        *now = t;
    };
    // The newest mail about incident `n` in `member`'s mailbox: what they answer.
    let newest_about = |member: &str, n: usize| -> Vec<u8> {
        stack
            .mailbox(member)
            .into_iter()
            .rev()
            .find(|m| subject_of(m).contains(&format!("Incident {n}: ")))
            .unwrap_or_else(|| panic!("{member} has no mail about incident {n}"))
    };
    let mut sent_by_staff = 0;
    let mut member_says = |member: &str, to: &[u8], text: &str| {
        sent_by_staff += 1;
        let raw = staff_reply(member, to, text, false).replacen(
            "Message-ID: <staff-",
            &format!("Message-ID: <week-{sent_by_staff}-"),
            1,
        );
        let before = stack.mailbox(SUPPORT).len();
        stack.send(member, SUPPORT, &raw);
        reaches_support(&stack, before + 1);
    };
    let customer = |i: usize| format!("c{i}@example.test");
    let customer_says = |who: &str, text: &str, k: usize| {
        let ours = stack.mailbox(who);
        let last = parse(ours.last().expect("a mail from us"));
        let id = last.message_id().expect("Message-ID").to_string();
        let subject = last.subject().unwrap_or_default().to_string();
        stack.deliver(
            SUPPORT,
            format!(
                "From: {who}\r\nTo: {SUPPORT}\r\nSubject: Re: {subject}\r\n\
                 Message-ID: <{who}-{k}@client.example.test>\r\nIn-Reply-To: <{id}>\r\n\
                 References: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                 {text}\r\n"
            )
            .as_bytes(),
        );
    };
    let owner = |i: usize| team[(i - 1) % 3];

    // Monday: eight customers, one every quarter of an hour; each taken half an hour later.
    let problems = [
        "Invoice charges two licences",
        "Cannot log in since the update",
        "Router keeps rebooting",
        "Refund not received",
        "Export to CSV is empty",
        "Parcel shows delivered but never came",
        "App crashes on start",
        "Password reset mail never arrives",
    ];
    for (i, problem) in problems.iter().enumerate() {
        let t = at("2026-11-23T09:00:00Z") + Span::minutes(15 * i as i64);
        advance(&mut now, t);
        stack.deliver(
            SUPPORT,
            complaint(
                &customer(i + 1),
                &format!("c{}-1@client.example.test", i + 1),
                problem,
                &format!("Hello,\r\n\r\n{problem}. Please help.\r\n\r\nRegards"),
            )
            .as_bytes(),
        );
        fu.once_at(now);
        stack.wait_for_mail(&customer(i + 1), 1);
    }
    for i in 1..=8 {
        advance(
            &mut now,
            at("2026-11-23T09:30:00Z") + Span::minutes(15 * (i as i64 - 1)),
        );
        let member = owner(i);
        let notification = newest_about(member, i);
        member_says(
            member,
            &notification,
            "#assign me\nThank you, I have your case and am looking into it now.",
        );
        fu.once_at(now);
    }
    // Tuesday: a chase, news, a question and its answer; the first case resolved.
    advance(&mut now, at("2026-11-24T10:00:00Z"));
    customer_says(&customer(2), "Hello?? Any news? It is still broken.", 2);
    fu.once_at(now);
    advance(&mut now, at("2026-11-24T11:00:00Z"));
    member_says(
        ANNA,
        &newest_about(ANNA, 1),
        "#resolve\nRoot cause: a second licence was added by a billing import.\n\n\
         Prevention: imports now check for an existing licence.\n\n\
         The wrong charge is refunded; you will see it within three days.",
    );
    fu.once_at(now);
    advance(&mut now, at("2026-11-24T11:10:00Z"));
    member_says(
        CHRIS,
        &newest_about(CHRIS, 3),
        "#wait the serial number on the back of the router\n\
         Could you send us the serial number on the back of the router?",
    );
    fu.once_at(now);
    advance(&mut now, at("2026-11-24T14:00:00Z"));
    customer_says(&customer(3), "The serial is SN-4471-XZ.", 2);
    fu.once_at(now);
    for (t, i, news) in [
        (
            "2026-11-24T15:00:00Z",
            2,
            "We found the cause: a session bug. A fix ships tomorrow.",
        ),
        (
            "2026-11-24T15:10:00Z",
            5,
            "The export bug is reproduced; a fix ships tomorrow.",
        ),
        (
            "2026-11-24T15:20:00Z",
            8,
            "The mail provider was blocking us; it is unblocked.",
        ),
        (
            "2026-11-24T15:30:00Z",
            4,
            "Finance has your refund request; it goes out Thursday.",
        ),
        (
            "2026-11-24T15:40:00Z",
            7,
            "We reproduced the crash on Android 14; fix in progress.",
        ),
        (
            "2026-11-24T15:50:00Z",
            3,
            "Thank you; a replacement router is on its way.",
        ),
        (
            "2026-11-24T16:00:00Z",
            6,
            "The carrier has opened an investigation.",
        ),
    ] {
        advance(&mut now, at(t));
        member_says(owner(i), &newest_about(owner(i), i), news);
        fu.once_at(now);
    }
    // Wednesday: forty complaints about one outage within ten minutes.
    for batch in 0..4 {
        advance(
            &mut now,
            at("2026-11-25T10:00:00Z") + Span::minutes(3 * batch),
        );
        for k in 0..10 {
            let o = batch * 10 + k + 1;
            stack.deliver(
                SUPPORT,
                complaint(
                    &format!("o{o}@example.test"),
                    &format!("o{o}-1@client.example.test"),
                    "Website down",
                    "Hello,\r\n\r\nyour website shows an error page since this morning.\r\n",
                )
                .as_bytes(),
            );
        }
        fu.once_at(now);
    }
    for o in 1..=40 {
        stack.wait_for_mail(&format!("o{o}@example.test"), 1);
    }
    // Chris answers the whole outage from his digest, then resolves it the same way.
    advance(&mut now, at("2026-11-25T10:30:00Z"));
    let digest = stack
        .mailbox(CHRIS)
        .into_iter()
        .rev()
        .find(|m| subject_of(m).starts_with("[Digest]"))
        .expect("Chris has a digest of the burst");
    let listed = text_of(&digest).matches("\n  - #").count();
    assert_eq!(
        listed,
        40,
        "the digest lists the whole burst: {}",
        text_of(&digest)
    );
    member_says(
        CHRIS,
        &digest,
        "#all\nOur website is down after a failed update; we are restoring it and \
         expect it back by 13:00.",
    );
    fu.once_at(now);
    advance(&mut now, at("2026-11-25T13:20:00Z"));
    member_says(
        CHRIS,
        &digest,
        "#all\n#resolve\nRoot cause: a failed update of the web servers.\n\n\
         Prevention: updates now go to one server first and are checked there.\n\n\
         The website is back.",
    );
    fu.once_at(now);
    // Wednesday to Thursday: the Monday cases resolved by their owners.
    for (t, i) in [
        ("2026-11-25T15:00:00Z", 2),
        ("2026-11-25T15:10:00Z", 5),
        ("2026-11-26T11:00:00Z", 4),
        ("2026-11-26T11:10:00Z", 6),
        ("2026-11-26T11:20:00Z", 7),
        ("2026-11-26T11:30:00Z", 8),
        ("2026-11-26T14:00:00Z", 3),
    ] {
        advance(&mut now, at(t));
        member_says(
            owner(i),
            &newest_about(owner(i), i),
            "#resolve\nRoot cause: found and fixed, see the earlier mail.\n\n\
             Prevention: a test now covers it.",
        );
        fu.once_at(now);
    }
    advance(&mut now, end);
    fu.nothing_left_to_send(&stack);
    stack.settle();

    // Each member: at most a third of the 67 alarms the same week cost, none outside office
    // hours, and fewer mails in all than the 118 before.
    let mut report = String::new();
    let label_of = |m: &[u8]| {
        subject_of(m)
            .strip_prefix('[')
            .and_then(|s| s.split(']').next())
            .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "other".into())
    };
    for member in team {
        let mail = stack.mailbox(member);
        let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
        for m in &mail {
            *kinds.entry(label_of(m)).or_default() += 1;
        }
        report.push_str(&format!("{member}: {} mails {kinds:?}\n", mail.len()));
    }
    eprintln!("a week for three:\n{report}");
    for member in team {
        let mail = stack.mailbox(member);
        let alarms: Vec<&Vec<u8>> = mail
            .iter()
            .filter(|m| ["At risk", "Escalation"].contains(&label_of(m).as_str()))
            .collect();
        assert!(alarms.len() <= 67 / 3, "{member}: {report}");
        for alarm in alarms {
            let sent = parse(alarm).date().expect("Date").to_timestamp();
            let sent = chrono::DateTime::from_timestamp(sent, 0).expect("time");
            assert!(
                in_hours(sent),
                "{member}: an alarm at {sent}: {}",
                subject_of(alarm)
            );
        }
        assert!(mail.len() < 118, "{member}: {report}");
    }
    // Every incident has its thread: some member got its own notification.
    for n in 1..=48 {
        assert!(
            team.iter()
                .any(|member| stack.mailbox(member).iter().any(|m| {
                    let s = subject_of(m);
                    s.starts_with("[New]") && s.contains(&format!("Incident {n}: "))
                })),
            "incident {n} has no thread:\n{report}"
        );
    }
    // No customer is sent the same mail twice, and every one heard of the resolution.
    for who in (1..=8)
        .map(customer)
        .chain((1..=40).map(|o| format!("o{o}@example.test")))
    {
        let bodies: Vec<String> = stack
            .mailbox(&who)
            .iter()
            .map(|raw| {
                text_of(raw)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        for (i, a) in bodies.iter().enumerate() {
            assert!(
                !bodies[i + 1..].contains(a),
                "{who} got the same mail twice: {a}"
            );
        }
        assert!(
            bodies.iter().any(|b| b.contains("is fixed")),
            "{who} never heard of the resolution: {bodies:#?}"
        );
    }
}
