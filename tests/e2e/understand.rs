//! Reading customers in their own words, against real Dovecot and Postfix with the clock
//! moved (`run --once --now`): a chaser that never says "update", a "don't spam me", and
//! check-back answers in French, Spanish and unhappy English.

use chrono::{DateTime, Duration as Span, Utc};

use crate::harness::*;

fn at(stamp: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(stamp)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// `customer` complains (Message-ID `<{tag}-1@client.example.test>`) and is acknowledged at
/// `t0`.
fn complained(stack: &MailStack, fu: &Followupd, customer: &str, tag: &str, t0: DateTime<Utc>) {
    stack.deliver(
        SUPPORT,
        complaint(
            customer,
            &format!("{tag}-1@client.example.test"),
            "La lampe est cassée",
            "La lampe que j'ai reçue hier est arrivée cassée.",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    stack.wait_for_mail(customer, 1);
}

/// `customer` replies to their complaint's thread with `body`.
fn replies(stack: &MailStack, customer: &str, tag: &str, n: u32, body: &str) {
    let raw = format!(
        "From: {customer}\r\nTo: {SUPPORT}\r\nSubject: Re: La lampe est cassée\r\n\
         Message-ID: <{tag}-{n}@client.example.test>\r\n\
         In-Reply-To: <{tag}-1@client.example.test>\r\n\
         References: <{tag}-1@client.example.test>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    stack.deliver(SUPPORT, raw.as_bytes());
}

fn body(raw: &[u8]) -> String {
    parse(raw).body_text(0).expect("text").to_string()
}

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_chaser_without_the_word_update_is_answered_and_dont_spam_me_stops_the_updates() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-28T09:00:00Z");
    let ann = "ann@example.test";
    complained(&stack, &fu, ann, "ann", t0);

    replies(
        &stack,
        ann,
        "ann",
        2,
        "Hello?? Is anyone there? It is freezing in here. What is going on?",
    );
    fu.once_at(t0 + Span::minutes(30));
    let mail = stack.wait_for_mail(ann, 2);
    let status = body(&mail[1]);
    assert!(
        status.contains("incident 1"),
        "the chaser gets the status at once: {status}"
    );

    replies(&stack, ann, "ann", 3, "Please don't spam me.");
    fu.once_at(t0 + Span::hours(1));
    let mail = stack.wait_for_mail(ann, 3);
    let confirmed = body(&mail[2]);
    assert_eq!(
        fu.incident(1)["incident"]["updates_stopped"],
        true,
        "{confirmed}"
    );
    // No progress update comes any more, however long we wait.
    fu.once_at(t0 + Span::hours(12));
    fu.nothing_left_to_send(&stack);
    assert_eq!(stack.mailbox(ann).len(), 3, "one confirmation, then quiet");
}

#[test]
fn check_back_answers_in_french_and_spanish_close_and_only_a_clear_no_reopens() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let customers = [
        (
            "marie@example.test",
            "marie",
            "Oui, j'ai bien reçu la lampe. Merci !",
        ),
        (
            "lucia@example.test",
            "lucia",
            "Sí, ya me ha llegado el reembolso.",
        ),
        (
            "tom@example.test",
            "tom",
            "Could you also send me the invoice?",
        ),
        ("jan@example.test", "jan", "Non, toujours pas reçu."),
    ];
    for (address, tag, _) in customers {
        complained(&stack, &fu, address, tag, t0);
    }
    for n in 1..=customers.len() {
        ok(fu.run_at(
            t0 + Span::hours(1),
            &[
                "incident",
                "resolve",
                &n.to_string(),
                "--root-cause",
                "The lamp was packed without padding.",
                "--prevention",
                "Lamps are packed in foam now.",
            ],
        ));
    }
    fu.once_at(t0 + Span::hours(1));
    // The check-back, three days on.
    fu.once_at(t0 + Span::days(3) + Span::hours(1) + Span::minutes(1));
    for (address, _, _) in customers {
        stack.wait_for_mail(address, 3);
    }
    for (i, (address, tag, answer)) in customers.iter().enumerate() {
        replies(
            &stack,
            address,
            tag,
            2 + u32::try_from(i).expect("small"),
            answer,
        );
    }
    fu.once_at(t0 + Span::days(3) + Span::hours(2));
    fu.nothing_left_to_send(&stack);
    let state = |n: i64| fu.incident(n)["incident"]["state"].clone();
    assert_eq!(state(1), "closed", "a French yes closes");
    assert_eq!(state(2), "closed", "a Spanish yes closes");
    assert_eq!(state(3), "resolved", "a question is no reason to reopen");
    assert_eq!(state(4), "open", "a clear no reopens");
    let marie = stack.mailbox("marie@example.test");
    assert_eq!(marie.len(), 4, "a thank-you, nothing more");
    assert!(body(&marie[3]).contains("closed"), "{}", body(&marie[3]));
    assert_eq!(
        stack.mailbox("tom@example.test").len(),
        3,
        "nothing goes back to an unclear answer"
    );
}
