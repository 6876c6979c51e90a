//! Safe intake against real Dovecot and Postfix: robots are recorded and never answered, bounces
//! silence a dead address, floods are capped, strangers never join, real clients' replies do,
//! and odd or hostile mail neither stalls the inbox nor leaks into headers.
//!
//! Messages are the raw files in tests/fixtures/mail (see its MANIFEST.md), put into the support
//! mailbox byte for byte with IMAP APPEND, with placeholders filled in per test.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const ANN: &str = "ann@example.test";

/// A fixture with its placeholders filled in. `%MSGID%` becomes `fx-<file stem>` so each
/// recorded message can be traced back to its file.
fn fixture(name: &str, vars: &[(&str, &str)]) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mail")
        .join(name);
    let mut raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let stem = name.trim_end_matches(".eml");
    let msgid = format!("fx-{stem}");
    let mut all: Vec<(&str, &str)> = vec![("%SUPPORT%", SUPPORT), ("%MSGID%", &msgid)];
    all.extend_from_slice(vars);
    for (key, value) in all {
        raw = replace_bytes(&raw, key.as_bytes(), value.as_bytes());
    }
    raw
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The acknowledgement a customer got: its Message-ID and the incident token in its subject.
struct Ack {
    message_id: String,
    token: String,
    thread_index: Option<String>,
}

fn complain_and_get_ack(stack: &MailStack, fu: &Followupd, customer: &str, subject: &str) -> Ack {
    let before = stack.mailbox(customer).len();
    stack.deliver(
        SUPPORT,
        complaint(
            customer,
            &format!(
                "{}-{}@client.example.test",
                customer.replace('@', "."),
                before
            ),
            subject,
            "The parcel arrived crushed and the vase inside is in pieces.",
        )
        .as_bytes(),
    );
    fu.once();
    let mail = stack.wait_for_mail(customer, before + 1);
    let ack = parse(mail.last().expect("an acknowledgement"));
    let subject = ack.subject().expect("subject").to_string();
    let token = subject
        .rsplit_once('[')
        .and_then(|(_, t)| t.strip_suffix(']'))
        .unwrap_or_else(|| panic!("no token in {subject}"))
        .to_string();
    Ack {
        message_id: ack.message_id().expect("Message-ID").to_string(),
        token,
        thread_index: header(&ack, "Thread-Index").map(str::to_string),
    }
}

fn messages(fu: &Followupd, class: Option<&str>) -> Vec<Value> {
    let mut args = vec!["messages", "--json", "--limit", "1000"];
    if let Some(c) = class {
        args.extend(["--class", c]);
    }
    fu.json(&args).as_array().expect("array").clone()
}

/// The recorded message that came from fixture `stem` (by its `fx-` Message-ID).
fn recorded<'a>(all: &'a [Value], stem: &str) -> &'a Value {
    let prefix = format!("fx-{stem}@");
    all.iter()
        .find(|m| {
            m["message_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&prefix))
        })
        .unwrap_or_else(|| panic!("no recorded message from {stem}.eml"))
}

#[test]
fn automated_mail_is_recorded_with_its_class_linked_and_never_answered() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let ack = complain_and_get_ack(&stack, &fu, ANN, "Broken vase");
    let vars = [
        ("%ACK_ID%", ack.message_id.as_str()),
        ("%CUSTOMER%", ANN),
        ("%TOKEN%", ack.token.as_str()),
    ];
    let automated = [
        ("ooo-rfc3834", "auto-reply"),
        ("ooo-exchange", "auto-reply"),
        ("ooo-exchange-no-autosubmitted", "auto-reply"),
        ("ooo-legacy", "auto-reply"),
        ("ooo-autorespond-header", "auto-reply"),
        ("mailing-list", "bulk"),
        ("newsletter-noreply", "bulk"),
        ("noreply-transactional", "bulk"),
        ("bounce-delayed", "bounce"),
        ("bounce-headers-only", "bounce"),
    ];
    for (stem, _) in &automated {
        stack.append(SUPPORT, &fixture(&format!("{stem}.eml"), &vars));
    }
    // Our own acknowledgement redirected back to us keeps its Message-ID: it is recognised
    // as the mail we sent and not stored again. The same mail with a Message-ID we do not
    // know is still our own mail (loop header, our From) and is recorded as a loop.
    stack.append(SUPPORT, &fixture("our-own-ack-forwarded-back.eml", &vars));
    let unknown = [
        ("%ACK_ID%", "fu.1.0000.ffff@example.test"),
        ("%CUSTOMER%", ANN),
        ("%TOKEN%", ack.token.as_str()),
    ];
    stack.append(
        SUPPORT,
        &fixture("our-own-ack-forwarded-back.eml", &unknown),
    );
    // Two people whose mail looks a little automatic but is not.
    stack.append(SUPPORT, &fixture("precedence-first-class.eml", &vars));
    stack.append(SUPPORT, &fixture("auto-submitted-no.eml", &vars));
    fu.once();

    let all = messages(&fu, None);
    for (stem, class) in &automated {
        let m = recorded(&all, stem);
        assert_eq!(m["class"], *class, "{stem}.eml: {m}");
        assert!(
            m["class_reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{stem}.eml is recorded with the rule that classed it: {m}"
        );
    }
    let loops = messages(&fu, Some("loop"));
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert_eq!(loops[0]["message_id"], "fu.1.0000.ffff@example.test");
    for stem in [
        "ooo-rfc3834",
        "ooo-exchange",
        "bounce-delayed",
        "bounce-headers-only",
    ] {
        assert_eq!(
            recorded(&all, stem)["incident"],
            1,
            "{stem}.eml is linked to the incident it answers"
        );
    }
    for stem in ["precedence-first-class", "auto-submitted-no"] {
        assert_eq!(recorded(&all, stem)["class"], "human", "{stem}.eml");
    }
    let auto = messages(&fu, Some("auto-reply"));
    assert_eq!(
        auto.len(),
        5,
        "messages --class auto-reply lists exactly the 5"
    );

    // Nothing was sent because of any of them: one ack each for the three humans, no more.
    assert_eq!(
        fu.incidents().len(),
        3,
        "only the two human mails opened incidents"
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM outbox"),
        3,
        "acknowledgements only for human mail"
    );
    stack.settle();
    assert_eq!(
        stack.mailbox(ANN).len(),
        1,
        "the customer whose OOF/bounce came back got nothing more"
    );
    // A delayed-delivery report is not a failure; the mailbox-full report is.
    let dead = fu.json(&["undeliverable", "--json"]);
    let dead = dead.as_array().expect("array");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["address"], ANN);
}

#[test]
fn a_bounce_marks_the_recipient_undeliverable_until_they_write_again_or_staff_clear_it() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let ack = complain_and_get_ack(&stack, &fu, ANN, "Broken vase");
    stack.append(
        SUPPORT,
        &fixture(
            "bounce-postfix-dsn.eml",
            &[
                ("%ACK_ID%", ack.message_id.as_str()),
                ("%CUSTOMER%", ANN),
                ("%TOKEN%", ack.token.as_str()),
            ],
        ),
    );
    // An old-style MAILER-DAEMON notice about another customer's acknowledgement.
    let bob = "bob@example.test";
    let bob_ack = complain_and_get_ack(&stack, &fu, bob, "Late delivery");
    stack.append(
        SUPPORT,
        &fixture(
            "bounce-plain-mailer-daemon.eml",
            &[
                ("%ACK_ID%", bob_ack.message_id.as_str()),
                ("%CUSTOMER%", bob),
                ("%TOKEN%", bob_ack.token.as_str()),
            ],
        ),
    );
    fu.once();

    let bounces = messages(&fu, Some("bounce"));
    assert_eq!(bounces.len(), 2, "{bounces:?}");
    let dead = fu.json(&["undeliverable", "--json"]);
    let dead: Vec<&str> = dead
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["address"].as_str())
        .collect();
    assert_eq!(dead, vec![ANN, bob]);
    let shown = fu.incident(1);
    assert!(has_event(&shown, "bounce"), "{shown}");
    assert!(has_event(&shown, "recipient_undeliverable"), "{shown}");

    // A colleague complains and asks for answers to go to Ann: nothing goes to Ann's dead box.
    let colleague = complaint(
        "carl@example.test",
        "carl-1@client.example.test",
        "Same problem here",
        "Please reply to Ann.",
    )
    .replace("\r\nTo:", &format!("\r\nReply-To: {ANN}\r\nTo:"));
    stack.append(SUPPORT, colleague.as_bytes());
    fu.once();
    let third = fu.incident(3);
    let suppressed = third["suppressed"].as_array().expect("suppressed list");
    assert_eq!(suppressed.len(), 1, "{third}");
    assert!(
        suppressed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("marked undeliverable")),
        "{third}"
    );
    assert_eq!(
        stack.mailbox(ANN).len(),
        1,
        "Ann's dead address got nothing"
    );

    // Someone else writes as Ann, unverified: anyone can write any From, so the mark stays and
    // nothing goes to her dead box.
    stack.append(
        SUPPORT,
        complaint(
            ANN,
            "forged-ann@evil.example",
            "Clear my address",
            "Forged.",
        )
        .as_bytes(),
    );
    fu.once();
    assert_eq!(
        fu.json(&["undeliverable", "--json"])
            .as_array()
            .expect("array")
            .len(),
        2,
        "an unverified mail clears nothing"
    );
    assert_eq!(stack.mailbox(ANN).len(), 1);

    // Ann writes again herself, verified by the receiving server: her address works, the mark
    // goes, and she is answered.
    let again = complain_and_get_ack(&stack, &fu, ANN, "Still broken");
    assert!(again.token.starts_with("FU-5-"), "{}", again.token);
    let dead = fu.json(&["undeliverable", "--json"]);
    assert_eq!(dead.as_array().expect("array").len(), 1, "only Bob is left");
    // Staff clear Bob by hand, and the event log says who.
    let out = fu.run(&["undeliverable", "clear", bob, "--by", "alice"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fu.count("SELECT COUNT(*) FROM undeliverable"), 0);
    assert_eq!(
        fu.count(
            "SELECT COUNT(*) FROM events WHERE kind = 'undeliverable_cleared' AND actor = 'alice'"
        ),
        1
    );
    let again = fu.run(&["undeliverable", "clear", bob]);
    assert!(!again.status.success(), "clearing twice is an error");
}

#[test]
fn a_flood_from_one_sender_gets_a_bounded_number_of_acknowledgements_and_all_is_recorded() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let flooder = "flood@example.test";
    for i in 0..20 {
        stack.append(
            SUPPORT,
            complaint(
                flooder,
                &format!("flood-{i}@client.example.test"),
                &format!("Complaint number {i}"),
                "Everything is broken.",
            )
            .as_bytes(),
        );
    }
    fu.once();
    assert_eq!(fu.incidents().len(), 20, "every complaint is an incident");
    let acks = stack.wait_for_mail(flooder, 3);
    assert_eq!(
        acks.len(),
        3,
        "default cap: 3 automatic mails per 10 minutes"
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM suppressed WHERE reason LIKE 'send cap:%'"),
        17
    );
    let last = fu.incident(20);
    assert!(has_event(&last, "mail_suppressed"), "{last}");
    assert!(
        last["suppressed"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("within 10m already (limit 3)")),
        "{last}"
    );
    // The cap lives in SQLite: a restarted daemon does not reset it.
    stack.append(
        SUPPORT,
        complaint(
            flooder,
            "flood-21@client.example.test",
            "One more",
            "Still broken.",
        )
        .as_bytes(),
    );
    fu.once();
    stack.settle();
    assert_eq!(stack.mailbox(flooder).len(), 3);
    assert_eq!(fu.incidents().len(), 21);
}

#[test]
fn real_clients_replies_join_and_strangers_copying_ids_or_tokens_never_do() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let ack = complain_and_get_ack(&stack, &fu, ANN, "Broken vase");
    let thread_index = ack
        .thread_index
        .clone()
        .expect("our ack carries a Thread-Index");
    // Outlook replies with the conversation's 22 bytes plus a 5-byte block of its own.
    let reply_index = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut bytes = engine.decode(&thread_index).expect("base64");
        bytes.truncate(22);
        bytes.extend([1, 2, 3, 4, 5]);
        engine.encode(bytes)
    };
    let vars = [
        ("%ACK_ID%", ack.message_id.as_str()),
        ("%CUSTOMER%", ANN),
        ("%TOKEN%", ack.token.as_str()),
        ("%THREAD_INDEX%", reply_index.as_str()),
    ];
    // 1. Re:/AW:/SV:/Fwd:/WG:/TR: in any mix, no In-Reply-To or References, token kept.
    stack.deliver(SUPPORT, &fixture("reply-prefixes.eml", &vars));
    // 2. Outlook: only Thread-Index / Thread-Topic, no token, no references.
    stack.deliver(SUPPORT, &fixture("outlook-reply-thread-index.eml", &vars));
    // 3. A reply to a reply: our Message-ID only deep in References.
    let deep = complaint(ANN, "ann-deep@client.example.test", "Re: Re: Broken vase", "Any news?")
        .replace(
            "\r\nTo:",
            &format!(
                "\r\nIn-Reply-To: <ann-unknown@client.example.test>\r\nReferences: \
                 <ann.example.test-0@client.example.test> <{}> <ann-unknown@client.example.test>\r\nTo:",
                ack.message_id
            ),
        );
    stack.deliver(SUPPORT, deep.as_bytes());
    // 4. Ann copies in her colleague; the colleague's reply joins.
    let with_cc = complaint(
        ANN,
        "ann-cc@client.example.test",
        "Re: Broken vase",
        "Adding Carl.",
    )
    .replace(
        "\r\nTo:",
        &format!(
            "\r\nCc: carl@example.test\r\nIn-Reply-To: <{}>\r\nTo:",
            ack.message_id
        ),
    );
    stack.deliver(SUPPORT, with_cc.as_bytes());
    fu.once();
    let carl = complaint(
        "carl@example.test",
        "carl-1@client.example.test",
        "Re: Broken vase",
        "I can confirm.",
    )
    .replace(
        "\r\nTo:",
        &format!(
            "\r\nCc: dora@example.test\r\nIn-Reply-To: <{}>\r\nTo:",
            ack.message_id
        ),
    );
    stack.deliver(SUPPORT, carl.as_bytes());
    fu.once();
    let incoming = |shown: &Value| {
        shown["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["direction"] == "in")
            .count()
    };
    let joined = fu.incident(1);
    assert_eq!(
        incoming(&joined),
        6,
        "the complaint and the five replies: {joined}"
    );
    assert_eq!(fu.incidents().len(), 1);

    // Strangers: copying In-Reply-To, the subject token, or Outlook's Thread-Index, and
    // Carl's Cc (only the customer widens the circle).
    let stranger = |who: &str, id: &str, extra: &str, subject: &str| {
        complaint(who, id, subject, "I want in.")
            .replace("\r\nTo:", &format!("\r\n{extra}To:"))
            .into_bytes()
    };
    stack.deliver(
        SUPPORT,
        &stranger(
            "eve@example.test",
            "eve-1@evil.example",
            &format!("In-Reply-To: <{}>\r\n", ack.message_id),
            "Re: Broken vase",
        ),
    );
    stack.deliver(
        SUPPORT,
        &stranger(
            "mallory@example.test",
            "mal-1@evil.example",
            "",
            &format!("Re: Broken vase [{}]", ack.token),
        ),
    );
    stack.deliver(
        SUPPORT,
        &stranger(
            "trudy@example.test",
            "trudy-1@evil.example",
            &format!("Thread-Index: {reply_index}\r\n"),
            "RE: Broken vase",
        ),
    );
    stack.deliver(
        SUPPORT,
        &stranger(
            "dora@example.test",
            "dora-1@example.test",
            &format!("In-Reply-To: <{}>\r\n", ack.message_id),
            "Re: Broken vase",
        ),
    );
    fu.once();
    let after = fu.incident(1);
    assert_eq!(incoming(&after), 6, "incident 1 is unchanged");
    let list = fu.incidents();
    assert_eq!(list.len(), 5, "each stranger has an incident of their own");
    for (n, who) in [
        (2, "eve@example.test"),
        (3, "mallory@example.test"),
        (4, "trudy@example.test"),
        (5, "dora@example.test"),
    ] {
        let shown = fu.incident(n);
        assert_eq!(shown["incident"]["customer_address"], who);
        assert!(has_event(&shown, "stranger_reference"), "{shown}");
        let subject = shown["incident"]["subject"].as_str().expect("subject");
        assert_eq!(
            subject, "Broken vase",
            "prefixes and copied tokens stripped"
        );
    }
    // Each stranger was acknowledged in their own incident, never with incident 1's token.
    let mal = stack.wait_for_mail("mallory@example.test", 1);
    let subject = parse(&mal[0]).subject().expect("subject").to_string();
    assert!(subject.contains("[FU-3-"), "{subject}");
    assert!(!subject.contains(&ack.token), "{subject}");
}

#[test]
fn with_strangers_hold_a_strangers_mail_waits_for_staff_and_nothing_is_sent() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[intake]\nstrangers = \"hold\"\n",
    );
    let ack = complain_and_get_ack(&stack, &fu, ANN, "Broken vase");
    stack.append(
        SUPPORT,
        complaint(
            "eve@example.test",
            "eve-1@evil.example",
            &format!("Re: Broken vase [{}]", ack.token),
            "Let me in.",
        )
        .as_bytes(),
    );
    fu.once();
    assert_eq!(fu.incidents().len(), 1, "no incident for the stranger");
    let held = fu.json(&["quarantine", "--json"]);
    let held = held.as_array().expect("array");
    assert_eq!(held.len(), 1);
    assert!(
        held[0]["class_reason"].as_str().is_some_and(
            |r| r.starts_with("held for staff: eve@example.test pointed at incident #1")
        ),
        "{held:?}"
    );
    stack.settle();
    assert!(stack.mailbox("eve@example.test").is_empty());
    assert_eq!(fu.incident(1)["messages"].as_array().map(Vec::len), Some(2));
}

#[test]
fn the_same_mail_delivered_via_two_of_our_addresses_is_one_incident_and_one_ack() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "", // own_addresses are not needed: the trace headers are what differ
    );
    let body = complaint(
        ANN,
        "twice@client.example.test",
        "Broken vase",
        "Sent to both of you.",
    )
    .replace(
        "\r\nTo: support@example.test",
        "\r\nTo: support@example.test, help@example.test",
    );
    for (to, hop) in [
        ("support@example.test", "mx1"),
        ("help@example.test", "mx2"),
    ] {
        let copy = format!(
            "Return-Path: <{ANN}>\r\nDelivered-To: {to}\r\nReceived: from client.example.test \
             by {hop}.example.test with ESMTPS id {hop}q1;\r\n\tMon, 23 Nov 2026 09:00:0{} +0000\r\n{body}",
            hop.len()
        );
        stack.append(SUPPORT, copy.as_bytes());
    }
    fu.once();
    assert_eq!(fu.incidents().len(), 1);
    assert_eq!(stack.wait_for_mail(ANN, 1).len(), 1);
    assert!(has_event(&fu.incident(1), "duplicate_delivery"));
    assert!(fu
        .json(&["quarantine", "--json"])
        .as_array()
        .expect("array")
        .is_empty());
}

#[test]
fn malformed_mail_never_stalls_the_inbox_and_the_complaint_behind_it_is_answered() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let malformed = [
        "malformed-missing-boundary",
        "malformed-truncated-base64",
        "malformed-header-no-colon",
        "malformed-multipart-no-boundary",
        "malformed-deep-nesting",
        "malformed-many-headers",
        "malformed-garbage",
    ];
    for stem in malformed {
        stack.append(SUPPORT, &fixture(&format!("{stem}.eml"), &[]));
    }
    stack.append(
        SUPPORT,
        complaint(
            ANN,
            "after-junk@client.example.test",
            "Broken vase",
            "Behind the junk.",
        )
        .as_bytes(),
    );
    let started = std::time::Instant::now();
    fu.once();
    let took = started.elapsed();
    assert_eq!(
        stack.wait_for_mail(ANN, 1).len(),
        1,
        "the complaint is answered"
    );
    let all = messages(&fu, None);
    let incoming = all.iter().filter(|m| m["direction"] == "in").count();
    assert_eq!(
        incoming,
        malformed.len() + 1,
        "every message is on record: {all:?}"
    );
    // The garbage has no sender: it is kept for a human, with a reason.
    let quarantined = messages(&fu, Some("quarantined"));
    assert!(
        quarantined
            .iter()
            .all(|m| m["class_reason"].as_str().is_some_and(|r| !r.is_empty())),
        "{quarantined:?}"
    );
    assert!(!quarantined.is_empty(), "the garbage is quarantined");
    // Readable malformed mail from a person still gets an acknowledgement.
    for stem in ["malformed-missing-boundary", "malformed-truncated-base64"] {
        assert_eq!(recorded(&all, stem)["class"], "human", "{stem}");
    }
    assert!(took < Duration::from_secs(30), "intake took {took:?}");
}

#[test]
fn mail_over_the_size_limit_is_recorded_with_headers_only_and_still_answered() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[intake]\nmax_message_size = \"64KB\"\n",
    );
    let photo = "QUJDRA==".repeat(40_000); // 320 KB of base64
    let big = format!(
        "From: {ANN}\r\nTo: {SUPPORT}\r\nSubject: Photos of the damage\r\n\
         Message-ID: <big-1@client.example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nSee the photos.\r\n--b1\r\n\
         Content-Type: image/jpeg; name=\"damage.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {photo}\r\n--b1--\r\n"
    );
    stack.append(SUPPORT, big.as_bytes());
    fu.once();
    assert_eq!(
        stack.wait_for_mail(ANN, 1).len(),
        1,
        "the customer is acknowledged"
    );
    let shown = fu.incident(1);
    let first = &shown["messages"][0];
    assert_eq!(first["headers_only"], true, "{shown}");
    assert!(
        first["size"].as_i64().is_some_and(|s| s > 300_000),
        "the real size is on record: {first}"
    );
    assert!(has_event(&shown, "oversize"), "{shown}");
    let stored: i64 = fu.count("SELECT MAX(length(r.raw)) FROM message_raw r JOIN messages m ON m.id = r.message_id WHERE m.direction = 'in'");
    assert!(
        stored < 64_000,
        "only the headers were fetched and kept ({stored} bytes)"
    );
    // The full message is still on the server for staff.
    assert_eq!(
        stack.mailbox(SUPPORT).len(),
        2,
        "the complaint and the ack's receipt copy"
    );
}

#[test]
fn header_injection_and_template_syntax_in_customer_text_stay_inert() {
    let stack = MailStack::start();
    // Greeted by the whole display name, so the test sees every decoded name in the mail.
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[wording]\ngreeting = \"display_name\"\n",
    );
    stack.deliver(SUPPORT, &fixture("header-injection.eml", &[]));
    stack.deliver(SUPPORT, &fixture("template-syntax.eml", &[]));
    fu.once();
    let list = fu.incidents();
    assert_eq!(list.len(), 2);
    for incident in &list {
        let customer = incident["customer_address"].as_str().expect("address");
        let mail = stack.wait_for_mail(customer, 1);
        assert_eq!(mail.len(), 1, "one acknowledgement to {customer}");
        let raw = String::from_utf8_lossy(&mail[0]).to_string();
        let ack = parse(&mail[0]);
        assert!(header(&ack, "Bcc").is_none(), "no Bcc header: {raw}");
        assert!(
            header(&ack, "X-Injected").is_none(),
            "no injected header: {raw}"
        );
        assert!(
            !raw.lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
            "{raw}"
        );
        let subject = ack.subject().expect("subject");
        let text = ack.body_text(0).expect("text");
        let html = ack.body_html(0).expect("html");
        if customer == "eve@evil.example" {
            assert!(
                subject.contains("Refund Bcc: victim@evil.example"),
                "{subject}"
            );
            assert!(
                text.contains("Hello Eve X-Injected: yes,"),
                "the name is inert text: {text}"
            );
        } else {
            assert!(
                subject
                    .contains("{{support.address}} {{#each incident}}x{{/each}} {{> signature}}"),
                "template syntax in the subject is literal: {subject}"
            );
            assert!(
                text.contains("{{#if incident}}{{incident.token}}{{/if}}"),
                "template syntax the customer typed is quoted literally: {text}"
            );
            assert!(text.contains("Hello Mallory {{support.name}},"), "{text}");
            assert!(
                !html.contains("<script>"),
                "HTML escapes customer text: {html}"
            );
            assert!(html.contains("&lt;script&gt;"), "{html}");
        }
    }
}

#[test]
fn mail_in_many_charsets_and_mime_shapes_reaches_templates_as_clean_utf8() {
    let stack = MailStack::start();
    // Greeted by the whole display name, so the test sees every decoded name in the mail.
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[wording]\ngreeting = \"display_name\"\n",
    );
    // (fixture, decoded subject, decoded name, a phrase the summary must carry)
    let cases = [
        (
            "subject-utf8-b",
            "Écran fissuré à la livraison 😡 – commande n° 88412",
            "Renée Jäger",
            "L'écran était fissuré dès l'ouverture du colis",
        ),
        (
            "subject-iso8859-1-q",
            "Lieferung beschädigt, bitte Rückerstattung für Bestellung Nr. 40917",
            "Jürgen Weiß",
            "die Kaffeemaschine ist beschädigt",
        ),
        (
            "subject-iso8859-2",
            "Reklamace: nefunkční pračka, objednávka č. 3318",
            "Kateřina Dvořáková",
            "po třech dnech přestala fungovat",
        ),
        (
            "subject-windows-1252",
            "Charged €49.99 twice – “Premium” upgrade never activated",
            "Siobhán O’Brien",
            "I was charged €49.99 twice on 20 November",
        ),
        (
            "subject-iso-2022-jp",
            "注文した商品がまだ届きません（注文番号 20261120-7731）",
            "山田 太郎",
            "まだ届きません",
        ),
        (
            "subject-shift-jis",
            "返金のお願い（二重請求されています）",
            "佐藤 花子",
            "先月の利用料金が二重に請求されています",
        ),
        (
            "subject-gb2312",
            "投诉：收到的耳机没有声音",
            "王小明",
            "左耳完全没有声音",
        ),
        (
            "subject-koi8-r",
            "Не работает доступ к личному кабинету после оплаты",
            "Алексей Смирнов",
            "доступ к личному кабинету так и не появился",
        ),
        (
            "html-only",
            "Payment gateway down since Friday - urgent",
            "Marcus Holm",
            "card payments have failed in our web shop",
        ),
        (
            "attachments",
            "Bürostuhl gebrochen – Garantiefall",
            "Lena Hoffmann",
            "Rückenlehne meines Bürostuhls",
        ),
        (
            "no-message-id",
            "Water pump leaking since day one",
            "Otto Meier",
            "has been leaking at the pump housing since day one",
        ),
        (
            "raw-8bit-headers",
            "Facture erronée - montant facturé deux fois",
            "André Lévesque",
            "a été prélevé deux fois",
        ),
    ];
    for (stem, ..) in &cases {
        stack.deliver(SUPPORT, &fixture(&format!("{stem}.eml"), &[]));
    }
    fu.once();
    let list = fu.incidents();
    assert_eq!(list.len(), cases.len(), "one incident each: {list:?}");
    let mut problems = Vec::new();
    for (stem, subject, name, phrase) in &cases {
        let Some(incident) = list.iter().find(|i| i["subject"] == *subject) else {
            problems.push(format!("{stem}.eml: no incident with subject {subject:?}"));
            continue;
        };
        if incident["customer_name"] != *name {
            problems.push(format!("{stem}.eml: name {}", incident["customer_name"]));
        }
        let summary = incident["summary"].as_str().unwrap_or_default();
        if !summary.contains(phrase) || summary.contains('\u{fffd}') {
            problems.push(format!("{stem}.eml: summary {summary:?}"));
        }
        let customer = incident["customer_address"].as_str().expect("address");
        let mail = stack.wait_for_mail(customer, 1);
        let ack = parse(&mail[0]);
        let ack_subject = ack.subject().unwrap_or_default();
        if !ack_subject.contains(subject) {
            problems.push(format!("{stem}.eml: ack subject {ack_subject:?}"));
        }
        let text = ack.body_text(0).unwrap_or_default();
        // A mail with Content-Language: de is answered from the German set, one in French
        // words from the French set.
        let greeted = [
            format!("Hello {name},"),
            format!("Hallo {name},"),
            // German greets a whole name in the register of "Sie".
            format!("Guten Tag {name},"),
            format!("Bonjour {name},"),
        ]
        .iter()
        .any(|g| text.contains(g.as_str()));
        if !greeted || !text.contains(phrase) {
            problems.push(format!("{stem}.eml: ack text {text:?}"));
        }
        if *stem == "no-message-id" {
            assert!(ack.in_reply_to().is_empty(), "nothing to reply to");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Attachments are listed with name, type and decoded size; the summary has none of them.
    let lena = list
        .iter()
        .find(|i| i["customer_name"] == "Lena Hoffmann")
        .and_then(|i| i["number"].as_i64())
        .expect("Lena's incident");
    let shown = fu.incident(lena);
    let attachments = &shown["messages"][0]["attachments"];
    assert_eq!(
        attachments,
        &serde_json::json!([
            {"name": "IMG_4821.jpg", "content_type": "image/jpeg", "size": 3625},
            {"name": "Rechnung März.pdf", "content_type": "application/pdf", "size": 967},
        ]),
        "{shown}"
    );
}

#[test]
fn an_address_no_mail_can_be_written_to_is_failed_with_a_reason_not_queued_forever() {
    let stack = MailStack::start();
    // Fast retries, so that a few seconds are several retry rounds.
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[outbox]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n",
    );
    // lettre refuses two dots in a row: no retry can ever write to it.
    let impossible = "kim..tran@shop-backend.example";
    stack.append(
        SUPPORT,
        complaint(
            impossible,
            "kim-1@web1.shop-backend.example",
            "Voucher code rejected at checkout",
            "The voucher WINTER26 is rejected at checkout.",
        )
        .as_bytes(),
    );
    // A trailing dot (the DNS root) is only a spelling: the customer is answered without it.
    stack.append(
        SUPPORT,
        complaint(
            "Sam One <sam@example.test.>",
            "sam-1@client.example.test",
            "Password reset mail never arrives",
            "I have asked for a password reset five times today.",
        )
        .as_bytes(),
    );
    let mut daemon = fu.spawn();
    let sam = stack.wait_for_mail("sam@example.test", 1);
    assert_eq!(
        sam.len(),
        1,
        "Sam is acknowledged once, at the address without the dot"
    );
    // Several retry rounds at 1-2 s.
    std::thread::sleep(Duration::from_secs(6));
    let failed = |sql_extra: &str| {
        fu.count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE recipient = '{impossible}' {sql_extra}"
        ))
    };
    assert_eq!(failed(""), 1, "the acknowledgement is on record");
    assert_eq!(
        failed("AND state = 'failed'"),
        1,
        "kept as failed, not queued"
    );
    assert_eq!(
        fu.count(&format!(
            "SELECT COUNT(*) FROM send_attempts a JOIN outbox o ON o.id = a.outbox_id
             WHERE o.recipient = '{impossible}'"
        )),
        1,
        "given up once, never retried"
    );
    let kim = fu
        .incidents()
        .into_iter()
        .find(|i| i["customer_address"] == impossible)
        .expect("Kim's complaint still opened an incident");
    let shown = fu.incident(kim["number"].as_i64().expect("number"));
    let outbox = shown["outbox"].as_array().expect("outbox");
    assert_eq!(outbox[0]["state"], "failed", "{shown}");
    assert!(
        outbox[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("undeliverable by syntax") && e.contains(impossible)),
        "{shown}"
    );
    assert!(has_event(&shown, "recipient_invalid"), "{shown}");

    // A row an older followupd left queued unrendered for that address fails at the sender's
    // first look, with an event, instead of being retried forever.
    let _ = daemon.kill();
    let _ = daemon.wait();
    {
        let db = rusqlite::Connection::open(&fu.database).expect("open database");
        db.execute(
            &format!(
                "UPDATE outbox SET state = 'queued', raw = NULL, attempts = 0,
                 last_error = NULL, next_attempt_at = '2000-01-01T00:00:00Z'
                 WHERE recipient = '{impossible}'"
            ),
            [],
        )
        .expect("requeue");
    }
    let mut daemon = fu.spawn();
    eventually(
        "the sender gives the old row up",
        Duration::from_secs(20),
        || failed("AND state = 'failed'") == 1,
    );
    std::thread::sleep(Duration::from_secs(5));
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(
        failed("AND state = 'failed'"),
        1,
        "still failed after retry rounds"
    );
    assert_eq!(
        fu.count(&format!(
            "SELECT COUNT(*) FROM send_attempts a JOIN outbox o ON o.id = a.outbox_id
             WHERE o.recipient = '{impossible}'"
        )),
        2,
        "one more attempt on record: the give-up, no retries"
    );
    assert_eq!(
        fu.count(
            "SELECT COUNT(*) FROM events WHERE kind = 'recipient_invalid'
             AND detail LIKE '%kept as failed%'"
        ),
        2,
        "staff are told each time a row is given up"
    );
}

#[test]
fn robots_spam_and_other_help_desks_get_no_acknowledgement_while_people_do() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let vars = [
        ("%ACK_ID%", "fu.9.0000.ffff@example.test"),
        ("%CUSTOMER%", ANN),
        ("%TOKEN%", "FU-9-0000000000"),
    ];
    let robots = [
        ("newsletter-esp-no-list-id", "bulk"),
        ("newsletter-noreply", "bulk"),
        ("noreply-transactional", "bulk"),
        ("invoice-robot-noreply-return-path", "bulk"),
        ("cron-output", "bulk"),
        ("monitoring-nagios-alert", "bulk"),
        ("jira-notification", "bulk"),
        ("github-notification", "bulk"),
        ("helpdesk-zendesk-auto-response", "auto-reply"),
        ("helpdesk-rt-autoreply", "auto-reply"),
        ("helpdesk-znuny-auto-response", "auto-reply"),
        ("helpdesk-x-loop-naming-us", "loop"),
        ("spam-flagged", "junk"),
        ("spam-rspamd-add-header", "junk"),
    ];
    // (fixture, address, a phrase of their own words the incident's summary must carry)
    let people = [
        (
            "person-proton-with-feedback-id",
            "lea.fischer@proton-mail.example",
            "nothing arrived",
        ),
        (
            "apple-mail-split-text",
            "jonas.berg@icloud-mail.example",
            "must have been packed broken",
        ),
        (
            "html-empty-text-part",
            "m.okafor@webmail.example",
            "although I cancelled the plan",
        ),
        (
            "thunderbird-multipart-related",
            "e.novak@posta.example",
            "got size XL",
        ),
        (
            "sender-two-from-first-empty",
            "ann.other@example.test",
            "unknown to the courier",
        ),
        (
            "cjk-gb2312-raw-headers",
            "wang.xm@qq-mail.example",
            "左耳完全没有声音",
        ),
        (
            "cjk-iso-2022-jp-label-really-shift-jis",
            "tanaka.i@docomo-mail.example",
            "今月の請求が二重になっています",
        ),
        (
            "cjk-gb2312-undeclared-body",
            "li.na@163-mail.example",
            "退款还没有到账",
        ),
    ];
    for (stem, _) in &robots {
        stack.append(SUPPORT, &fixture(&format!("{stem}.eml"), &vars));
    }
    for (stem, ..) in &people {
        stack.append(SUPPORT, &fixture(&format!("{stem}.eml"), &vars));
    }
    fu.once();

    let all = messages(&fu, None);
    for (stem, class) in &robots {
        let m = recorded(&all, stem);
        assert_eq!(m["class"], *class, "{stem}.eml: {m}");
        assert!(m["incident"].is_null(), "{stem}.eml opened nothing: {m}");
    }
    let junk = messages(&fu, Some("junk"));
    assert_eq!(
        junk.len(),
        2,
        "staff see what the spam filter caught: {junk:?}"
    );
    for (stem, ..) in &people {
        let m = recorded(&all, stem);
        assert_eq!(m["class"], "human", "{stem}.eml: {m}");
    }
    let incidents = fu.incidents();
    assert_eq!(incidents.len(), people.len(), "{incidents:?}");
    let recipients: Vec<String> = {
        let db = fu.db();
        let mut stmt = db
            .prepare("SELECT recipient FROM outbox ORDER BY recipient")
            .expect("query");
        stmt.query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("recipients")
    };
    let mut expected: Vec<String> = people.iter().map(|(_, a, _)| a.to_string()).collect();
    expected.sort();
    assert_eq!(
        recipients, expected,
        "one acknowledgement per person, none to a robot"
    );
    for (stem, address, phrase) in &people {
        let incident = incidents
            .iter()
            .find(|i| i["customer_address"] == *address)
            .unwrap_or_else(|| panic!("{stem}.eml: no incident for {address}"));
        let summary = incident["summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains(phrase) && !summary.contains('\u{fffd}'),
            "{stem}.eml: summary {summary:?}"
        );
        let mail = stack.wait_for_mail(address, 1);
        assert_eq!(mail.len(), 1, "{stem}.eml: one acknowledgement");
    }
}

/// A complaint of about `size` bytes: a line of text and a scan attached, base64, as mail
/// clients send it (the bytes are noise, so nothing compresses).
fn big_complaint(i: usize, size: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ i as u64;
    let noise: Vec<u8> = (0..size * 3 / 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(noise);
    let mut body = String::with_capacity(encoded.len() * 78 / 76 + 1024);
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        body.push_str("\r\n");
    }
    format!(
        "From: Customer {i} <big{i}@example.test>\r\nTo: {SUPPORT}\r\n\
         Subject: Scan of the damaged parcel {i}\r\nMessage-ID: <big-{i}@client.example.test>\r\n\
         Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe parcel arrived crushed; scan attached.\r\n\
         --b\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"scan.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--b--\r\n"
    )
    .into_bytes()
}

/// The daemon's memory high-water mark so far (VmHWM, of its own process image only).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn eight_mails_of_twenty_megabytes_at_once_need_less_than_64_mib() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    for i in 0..8 {
        stack.deliver(SUPPORT, &big_complaint(i, 20_000_000));
    }
    let mut daemon = fu.spawn();
    eventually(
        "the eight mails are recorded",
        Duration::from_secs(120),
        || fu.database.exists() && fu.count("SELECT COUNT(*) FROM incidents") == 8,
    );
    let peak = peak_rss_kib(daemon.id()).expect("the daemon's VmHWM");
    daemon.kill().expect("kill");
    let _ = daemon.wait();
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM messages WHERE headers_only = 0 AND size > 20000000"),
        8,
        "recorded whole"
    );
    assert!(
        peak < 64 * 1024,
        "peak RSS {:.1} MiB for eight 20 MB mails",
        peak as f64 / 1024.0
    );
}
