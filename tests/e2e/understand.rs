//! Reading customers in their own words, against real Dovecot and Postfix with the clock
//! moved (`run --once`, `FOLLOWUPD_TEST_NOW`): a French customer whose mail names no language answered in
//! French, a chaser that never says "update", a "don't spam me", check-back answers in
//! French and Spanish, what we understood from a complaint, and a new mail that follows up.

use chrono::{DateTime, Duration as Span, Utc};

use crate::harness::*;

fn at(stamp: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(stamp)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// `customer` complains (Message-ID `<{tag}-1@client.example.test>`, no Content-Language, as
/// Gmail writes) and is acknowledged at `t0`; returns the acknowledgement's text.
fn complained(
    stack: &MailStack,
    fu: &Followupd,
    (customer, tag, body): (&str, &str, &str),
    t0: DateTime<Utc>,
) -> String {
    stack.deliver(
        SUPPORT,
        complaint(
            customer,
            &format!("{tag}-1@client.example.test"),
            "La lampe est cassée",
            body,
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    let mail = stack.wait_for_mail(customer, 1);
    crate::harness::parse(mail.last().expect("acknowledged"))
        .body_text(0)
        .expect("text")
        .to_string()
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
    complained(
        &stack,
        &fu,
        (
            ann,
            "ann",
            "The lamp I ordered arrived broken, the glass is shattered.",
        ),
        t0,
    );

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
            "Bonjour, la lampe que j'ai reçue hier est arrivée cassée. Pouvez-vous m'en \
             envoyer une autre ?",
            "Oui, j'ai bien reçu la lampe. Merci !",
        ),
        (
            "lucia@example.test",
            "lucia",
            "Hola, todavía no me han devuelto el dinero del pedido 5521. ¿Qué pasa?",
            "Sí, ya me ha llegado el reembolso.",
        ),
        (
            "tom@example.test",
            "tom",
            "The lamp I ordered arrived broken, the glass is shattered.",
            "Could you also send me the invoice?",
        ),
        (
            "jan@example.test",
            "jan",
            "La lampe est arrivée cassée et le verre est en morceaux.",
            "Non, toujours pas reçu.",
        ),
    ];
    for (address, tag, body, _) in customers {
        let ack = complained(&stack, &fu, (address, tag, body), t0);
        if tag == "marie" {
            assert!(
                ack.contains("Nous sommes désolés") && ack.contains("dossier 1"),
                "a French customer is answered in French, though her mail names no language: \
                 {ack}"
            );
        }
        if tag == "lucia" {
            assert!(
                ack.contains("incidencia"),
                "and a Spanish one in Spanish: {ack}"
            );
        }
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
    for (address, ..) in customers {
        stack.wait_for_mail(address, 3);
    }
    for (i, (address, tag, _, answer)) in customers.iter().enumerate() {
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
    assert!(
        body(&marie[3]).contains("Nous avons clôturé"),
        "thanked in French: {}",
        body(&marie[3])
    );
    assert_eq!(
        stack.mailbox("tom@example.test").len(),
        3,
        "nothing goes back to an unclear answer"
    );
}

#[test]
fn the_fourth_chase_in_a_day_gets_no_fourth_automatic_answer_but_reaches_staff() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[staff]\nmembers = [\"lead@example.test\"]\n",
    );
    let t0 = at("2026-11-23T09:00:00Z");
    let bob = "bob@example.test";
    complained(
        &stack,
        &fu,
        (
            bob,
            "bob",
            "My heating has been off since last night and it is freezing.",
        ),
        t0,
    );
    // Worded differently each time, as people chase (the same six words again would read as
    // a quote of the thread).
    let chases = [
        "Hello?? Is anyone there?",
        "Any news? It is still freezing here.",
        "What is going on? Nobody has come yet.",
        "Just checking in again, still no heating.",
    ];
    for (n, chase) in (2..).zip(chases) {
        replies(&stack, bob, "bob", n, chase);
        fu.once_at(t0 + Span::minutes(10 * i64::from(n)));
    }
    fu.nothing_left_to_send(&stack);
    assert_eq!(
        stack.mailbox(bob).len(),
        4,
        "the acknowledgement and three status answers (the answer cap), no fourth"
    );
    let chasing = stack
        .mailbox("lead@example.test")
        .iter()
        .map(|raw| body(raw))
        .filter(|text| text.contains("The customer is chasing"))
        .count();
    assert_eq!(chasing, 1, "staff hear of the fourth chase");
    let shown = fu.incident(1);
    let events = shown["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("asked for news again; no automatic answer"))),
        "{shown}"
    );
}

#[test]
fn a_french_complaint_is_understood_and_a_new_mail_about_the_same_order_follows_it_up() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-24T09:00:00Z");
    let marie = "marie@example.test";
    // As Gmail sends it: no Content-Language, the photo attached, the pleasantries first.
    let complaint = format!(
        "From: Marie Dupont <{marie}>\r\nTo: {SUPPORT}\r\nSubject: Lampe arrivée cassée\r\n\
         Message-ID: <marie-1@client.example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Bonjour,\r\n\r\nJ'espère que vous allez bien. Je vous écris au sujet de ma commande \
         n° 771204. La lampe est arrivée cassée, le verre est en morceaux. Mes clients \
         attendent l'ouverture de la boutique. J'en ai besoin avant vendredi.\r\n\r\n\
         Cordialement,\r\nMarie Dupont\r\n\
         --b1\r\nContent-Type: image/jpeg; name=\"lampe.jpg\"\r\n\
         Content-Disposition: attachment; filename=\"lampe.jpg\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsL\r\n\
         --b1--\r\n"
    );
    stack.deliver(SUPPORT, complaint.as_bytes());
    fu.once_at(t0);
    let mail = stack.wait_for_mail(marie, 1);
    let ack = body(&mail[0]);
    let flat = ack.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("dossier 1"), "answered in French: {ack}");
    assert!(
        flat.contains("\"La lampe est arrivée cassée, le verre est en morceaux.\""),
        "what we understood is the problem, not the pleasantries: {ack}"
    );
    assert!(!flat.contains("J'espère"), "{ack}");
    assert!(flat.contains("Mes clients attendent"), "the impact: {ack}");
    assert!(flat.contains("avant vendredi"), "the deadline: {ack}");
    assert!(
        flat.contains("771204") && flat.contains("lampe.jpg"),
        "what she sent is known: {ack}"
    );
    assert!(
        !flat.contains("capture d'écran") && !flat.contains("numéro de commande,"),
        "nothing she sent is asked for again: {ack}"
    );
    assert_eq!(
        fu.incident(1)["incident"]["summary"],
        "La lampe est arrivée cassée, le verre est en morceaux.",
        "staff read the problem too"
    );

    replies(&stack, marie, "marie", 2, "Des nouvelles ?");
    fu.once_at(t0 + Span::minutes(30));
    let mail = stack.wait_for_mail(marie, 2);
    let status = body(&mail[1]);
    assert!(
        status.contains("Merci pour votre message") && status.contains("dossier 1"),
        "a French status answer at once: {status}"
    );

    // A new mail, not a reply, naming the same order: a follow-up, not a second incident.
    stack.deliver(
        SUPPORT,
        crate::harness::complaint(
            marie,
            "marie-3@client.example.test",
            "Commande 771204",
            "Toujours rien pour ma commande 771204 ? C'est urgent.",
        )
        .as_bytes(),
    );
    fu.once_at(t0 + Span::hours(1));
    let mail = stack.wait_for_mail(marie, 3);
    let answer = body(&mail[2]);
    assert!(answer.contains("dossier 1"), "{answer}");
    assert_eq!(fu.incidents().len(), 1, "no second incident");
    assert!(has_event(&fu.incident(1), "customer_reply"));
}
