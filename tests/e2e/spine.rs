//! The spine, end to end against real Dovecot and Postfix: a complaint arrives, becomes an
//! incident, is acknowledged exactly once, and everything is on record.

use std::time::Duration;

use crate::harness::*;

const CUSTOMER: &str = "customer@example.test";

fn acks_in(mail: &[Vec<u8>]) -> Vec<mail_parser::Message<'_>> {
    mail.iter()
        .map(|raw| parse(raw))
        .filter(|m| header(m, "Auto-Submitted") == Some("auto-replied"))
        .collect()
}

#[test]
fn a_new_complaint_gets_one_acknowledgement_threaded_to_it() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    stack.send(
        CUSTOMER,
        SUPPORT,
        &complaint(
            "\"Ann Customer\" <customer@example.test>",
            "c1@client.example.test",
            "My order #5521 arrived broken",
            "Hello,\r\n\r\nthe vase I ordered arrived in pieces.\r\n",
        ),
    );
    eventually(
        "the complaint reaches the support inbox",
        Duration::from_secs(15),
        || stack.mailbox(SUPPORT).len() == 1,
    );
    fu.once();

    let mail = stack.wait_for_mail(CUSTOMER, 1);
    assert_eq!(mail.len(), 1, "exactly one acknowledgement");
    let ack = parse(&mail[0]);
    assert_eq!(ack.in_reply_to().as_text(), Some("c1@client.example.test"));
    assert_eq!(
        ack.references().as_text(),
        Some("c1@client.example.test"),
        "References carries the complaint"
    );
    assert_eq!(header(&ack, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(&ack, "X-Auto-Response-Suppress"), Some("All"));
    assert!(header(&ack, "X-Followupd-Loop").is_some());
    let subject = ack.subject().expect("subject");
    assert!(
        subject.starts_with("Re: My order #5521 arrived broken [FU-1-"),
        "{subject}"
    );
    let text = ack.body_text(0).expect("text body");
    assert!(
        text.contains("Hello Ann,"),
        "greeted by the first name: {text}"
    );
    assert!(text.contains("I'm sorry"), "{text}");
    assert!(
        text.contains("\"The vase I ordered arrived in pieces"),
        "{text}"
    );
    assert!(text.contains("incident 1"), "{text}");
    assert!(
        ack.body_html(0).is_some(),
        "HTML alternative from acknowledgement.html.hbs"
    );

    // The written record: the incident, both messages with raw bytes, the sent outbox row.
    let incidents = fu.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["state"], "open");
    assert_eq!(incidents[0]["customer_address"], CUSTOMER);
    let shown = fu.incident(1);
    let messages = shown["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["direction"], "in");
    assert_eq!(messages[1]["direction"], "out");
    assert_eq!(
        messages[1]["message_id"].as_str(),
        ack.message_id(),
        "the Message-ID on record is the one the customer received"
    );
    assert_eq!(shown["outbox"][0]["state"], "sent");
    assert_eq!(
        fu.count(
            "SELECT COUNT(*) FROM messages m JOIN message_raw r ON r.message_id = m.id \
             WHERE length(r.raw) = m.size AND m.size > 0"
        ),
        2
    );
    // The support copy was marked \Seen only after the commit (after_processing = seen).
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM messages WHERE after_processing = 'done'"),
        1
    );
}

#[test]
fn a_reply_to_the_acknowledgement_joins_the_incident_and_gets_one_status_answer() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    stack.append(
        SUPPORT,
        complaint(
            CUSTOMER,
            "c1@client.example.test",
            "Refund missing",
            "Where is my refund?",
        )
        .as_bytes(),
    );
    fu.once();
    let mail = stack.wait_for_mail(CUSTOMER, 1);
    let ack = parse(&mail[0]);
    let ack_id = ack.message_id().expect("ack Message-ID").to_string();
    let ack_subject = ack.subject().expect("subject").to_string();

    let reply = format!(
        "From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Re: {ack_subject}\r\n\
         Message-ID: <c2@client.example.test>\r\nIn-Reply-To: <{ack_id}>\r\n\
         References: <c1@client.example.test> <{ack_id}>\r\n\r\nAny news? The order number is 5521.\r\n"
    );
    stack.append(SUPPORT, reply.as_bytes());
    fu.once();

    let mail = stack.wait_for_mail(CUSTOMER, 2);
    assert_eq!(mail.len(), 2, "the acknowledgement and one status answer");
    let status = parse(&mail[1]);
    // Nobody verified this sender (the mail was appended, no sender check): the answer threads
    // onto our own acknowledgement, never onto a Message-ID the sender chose.
    assert_eq!(status.in_reply_to().as_text(), Some(ack_id.as_str()));
    assert!(
        !String::from_utf8_lossy(&mail[1]).contains("client.example.test>"),
        "no foreign Message-ID echoed"
    );
    assert_eq!(
        status.subject(),
        Some(ack_subject.as_str()),
        "same thread, same token"
    );
    assert!(
        status
            .body_text(0)
            .is_some_and(|t| t.contains("incident 1")),
        "a status answer, not a second acknowledgement"
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'"),
        1
    );
    assert_eq!(fu.incidents().len(), 1, "no new incident");
    let shown = fu.incident(1);
    let incoming: Vec<_> = shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["direction"] == "in")
        .collect();
    assert_eq!(incoming.len(), 2, "the reply is on the incident's timeline");
    assert!(has_event(&shown, "customer_reply"));
}

#[test]
fn the_subject_token_alone_joins_for_the_customer_but_a_stranger_gets_a_new_incident() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    stack.append(
        SUPPORT,
        complaint(
            CUSTOMER,
            "c1@client.example.test",
            "Broken login",
            "I cannot log in.",
        )
        .as_bytes(),
    );
    fu.once();
    let mail = stack.wait_for_mail(CUSTOMER, 1);
    let token_subject = parse(&mail[0]).subject().expect("subject").to_string();

    // The customer's client dropped In-Reply-To but kept the subject: joins.
    stack.append(
        SUPPORT,
        complaint(
            CUSTOMER,
            "c2@client.example.test",
            &format!("RE: {token_subject}"),
            "Still broken. Any news?",
        )
        .as_bytes(),
    );
    // A stranger copies the token (say, from a forwarded mail): must not join.
    let stranger = "stranger@example.test";
    stack.append(
        SUPPORT,
        complaint(
            stranger,
            "s1@elsewhere.example.test",
            &token_subject,
            "Let me into this ticket.",
        )
        .as_bytes(),
    );
    fu.once();

    let incidents = fu.incidents();
    assert_eq!(
        incidents.len(),
        2,
        "the stranger got an incident of their own"
    );
    assert_eq!(incidents[0]["customer_address"], CUSTOMER);
    assert_eq!(
        incidents[0]["messages"], 4,
        "complaint, ack, the customer's follow-up and our status answer"
    );
    assert_eq!(incidents[1]["customer_address"], stranger);
    let stranger_acks = stack.wait_for_mail(stranger, 1);
    assert_eq!(stranger_acks.len(), 1);
    assert_eq!(
        stack.mailbox(CUSTOMER).len(),
        2,
        "the customer got the ack and the answer to their own follow-up, nothing from the stranger"
    );
    let shown = fu.incident(2);
    assert!(has_event(&shown, "stranger_reference"));
}

#[test]
fn the_same_message_delivered_twice_is_acknowledged_once() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let raw = complaint(
        CUSTOMER,
        "dup@client.example.test",
        "Charged twice",
        "Two charges.",
    );
    stack.append(SUPPORT, raw.as_bytes());
    fu.once();
    // The second copy arrives after the first was processed (a retrying MTA, two aliases).
    stack.append(SUPPORT, raw.as_bytes());
    fu.once();

    let mail = stack.wait_for_mail(CUSTOMER, 1);
    assert_eq!(mail.len(), 1, "one acknowledgement");
    assert_eq!(fu.incidents().len(), 1);
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
        1
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM events WHERE kind = 'duplicate_delivery'"),
        1
    );
}

#[test]
fn a_malformed_message_is_quarantined_and_the_next_complaint_still_answered() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    // No From header, an unterminated encoded word, a multipart without a boundary and raw
    // non-UTF-8 bytes: nobody to answer. (No NUL: IMAP literals cannot carry it.)
    let malformed = b"Subject: =?utf-8?B?broken\r\nMessage-ID: <bad@x>\r\nContent-Type: multipart/mixed\r\n\r\n--\x80\xff\xfe garbage\r\n";
    stack.append(SUPPORT, malformed);
    stack.append(
        SUPPORT,
        complaint(
            CUSTOMER,
            "good@client.example.test",
            "Parcel lost",
            "Where is it?",
        )
        .as_bytes(),
    );
    fu.once();

    let mail = stack.wait_for_mail(CUSTOMER, 1);
    assert_eq!(mail.len(), 1, "the good complaint was acknowledged");
    assert_eq!(fu.incidents().len(), 1);
    let quarantine = fu.json(&["quarantine", "--json"]);
    let list = quarantine.as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert!(
        list[0]["class_reason"]
            .as_str()
            .unwrap_or("")
            .contains("no From header"),
        "{list:?}"
    );
    // Kept raw, byte for byte, for a human.
    let raw: Vec<u8> = fu
        .db()
        .query_row(
            "SELECT r.raw FROM message_raw r JOIN messages m ON m.id = r.message_id \
             WHERE class = 'quarantined'",
            [],
            |r| r.get(0),
        )
        .expect("raw kept");
    assert_eq!(raw, malformed.to_vec());
}

#[test]
fn smtp_down_then_up_delivers_the_acknowledgement_late_but_once() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[outbox]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n",
    );
    stack.append(
        SUPPORT,
        complaint(
            CUSTOMER,
            "c1@client.example.test",
            "Outage",
            "Your site is down.",
        )
        .as_bytes(),
    );
    stack.smtp_down();
    let mut daemon = fu.spawn();
    eventually(
        "a failed send attempt is recorded",
        Duration::from_secs(20),
        || {
            fu.database.exists()
                && fu.count("SELECT COUNT(*) FROM send_attempts WHERE outcome = 'retry'") >= 1
        },
    );
    // The relay stays away long enough for its probe backoff to reach its ceiling.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'"),
        1,
        "kept, not dropped"
    );

    stack.smtp_up();
    // The relay is probed on its own schedule (at most 5 s apart), and its first answer sends
    // the queue: the mail does not wait out a backoff of its own.
    eventually(
        "the acknowledgement is sent",
        Duration::from_secs(10),
        || fu.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 1,
    );
    let mail = stack.wait_for_mail(CUSTOMER, 1);
    // A second copy, if it were going to go, goes before the outbox is empty.
    fu.nothing_left_to_send(&stack);
    stop(&mut daemon);
    let mail_after = stack.mailbox(CUSTOMER);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail_after.len(), 1, "sent exactly once");
    let last_error: Option<String> = fu
        .db()
        .query_row("SELECT last_error FROM outbox", [], |r| r.get(0))
        .expect("row");
    assert!(last_error.is_none(), "cleared once sent");
}

/// A followupd with small intake batches and fast retries, and `n` distinct complaints waiting.
fn busy_inbox(stack: &MailStack, n: usize) -> Followupd {
    let fu = Followupd::with_extra(
        stack,
        Tls::ImapsAndSmtpStarttls,
        // Every complaint comes from its own sub-address of one mailbox, which the test reads
        // at once: here they count as different people.
        "\n[outbox]\nretry_initial = \"1s\"\nretry_max = \"1s\"\n\
         [send_caps]\nsubaddress_separators = []\n",
    );
    // Small batches: the kill lands between commits as well as inside one.
    let config = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(
        &fu.config,
        config.replace(
            "poll_interval = \"1s\"",
            "poll_interval = \"1s\"\nbatch_size = 5",
        ),
    )
    .expect("config");
    for i in 0..n {
        stack.deliver(
            SUPPORT,
            complaint(
                &format!("customer+{i}@example.test"),
                &format!("kill-{i}@client.example.test"),
                &format!("Complaint number {i}"),
                "Something went wrong.",
            )
            .as_bytes(),
        );
    }
    fu
}

/// Starts the daemon again after a kill, waits (at most `within`) until every acknowledgement
/// is sent, lets it run `settle` longer (time to do something wrong), stops it, and checks no
/// complaint was lost.
fn restart_until_all_sent(fu: &Followupd, n: usize, within: Duration, settle: Duration) {
    let mut daemon = fu.spawn();
    eventually("every complaint is acknowledged", within, || {
        sent(fu) == n as i64
    });
    std::thread::sleep(settle);
    stop(&mut daemon);
    assert_eq!(
        fu.incidents().len(),
        n,
        "every complaint became exactly one incident"
    );
}

fn sent(fu: &Followupd) -> i64 {
    fu.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
}

/// Every complaint `kill-{i}` answered; returns (acks received, distinct complaints answered,
/// distinct ack Message-IDs).
fn tally(stack: &MailStack, n: usize) -> (usize, usize, usize) {
    let mail = stack.wait_for_mail(CUSTOMER, n);
    let acks = acks_in(&mail);
    let mut answered: Vec<String> = acks
        .iter()
        .map(|a| a.in_reply_to().as_text().unwrap_or("").to_string())
        .collect();
    answered.sort();
    answered.dedup();
    let mut ids: Vec<String> = acks
        .iter()
        .map(|a| a.message_id().unwrap_or("").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    (acks.len(), answered.len(), ids.len())
}

#[test]
fn a_daemon_killed_mid_intake_and_restarted_loses_nothing_and_sends_nothing_twice() {
    let stack = MailStack::start();
    let n = 60;
    let fu = busy_inbox(&stack, n);
    // The relay is away, so the kill lands while complaints are being committed and their
    // acknowledgements queued, with nothing in flight to the relay.
    stack.smtp_down();
    let mut daemon = fu.spawn();
    eventually(
        "intake is part way through",
        Duration::from_secs(30),
        || fu.database.exists() && fu.count("SELECT COUNT(*) FROM incidents") >= 10,
    );
    daemon.kill().expect("SIGKILL");
    let _ = daemon.wait();
    let at_kill = fu.count("SELECT COUNT(*) FROM incidents");
    assert!(
        at_kill < n as i64,
        "the kill must land mid-intake ({at_kill} of {n})"
    );
    assert_eq!(sent(&fu), 0);

    stack.smtp_up();
    restart_until_all_sent(&fu, n, Duration::from_secs(60), Duration::from_secs(2));
    let (acks, answered, _) = tally(&stack, n);
    assert_eq!(answered, n, "every complaint answered");
    assert_eq!(acks, n, "none answered twice");
}

#[test]
fn a_daemon_killed_while_sending_loses_nothing_and_sends_nothing_twice() {
    let stack = MailStack::start();
    let n = 60;
    let fu = busy_inbox(&stack, n);
    let mut daemon = fu.spawn();
    eventually(
        "acknowledgements are going out",
        Duration::from_secs(30),
        || fu.database.exists() && sent(&fu) >= 3,
    );
    daemon.kill().expect("SIGKILL");
    let _ = daemon.wait();
    let at_kill = sent(&fu);
    let in_flight = fu.count("SELECT COUNT(*) FROM outbox WHERE state = 'sending'");
    assert!(
        at_kill < n as i64,
        "the kill must land mid-run (sent {at_kill} of {n})"
    );
    assert!(
        in_flight <= 4,
        "at most one mail in doubt per SMTP connection, got {in_flight}"
    );

    // With the default in-doubt grace (10 minutes), receipts decide: intake reads the support
    // mailbox past the receipt margin, and what is still in doubt then is settled (confirmed by
    // its receipt, or sent again) within 30 s of the restart. Then settle: a mail wrongly
    // held back or wrongly resent would show.
    restart_until_all_sent(&fu, n, Duration::from_secs(30), Duration::from_secs(5));
    let (acks, answered, distinct_ids) = tally(&stack, n);
    eprintln!(
        "killed with {at_kill} sent and {in_flight} in flight; acknowledgements received: {acks}"
    );
    assert_eq!(answered, n, "nothing lost: every complaint answered");
    assert_eq!(
        distinct_ids, n,
        "one acknowledgement Message-ID per complaint"
    );
    // The relay may have accepted a mail in flight before the kill; its receipt copy in the
    // support mailbox proves it, so it is not sent again.
    assert_eq!(acks, n, "no complaint answered twice");
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM events WHERE kind = 'mail_in_doubt'"),
        in_flight,
        "every mail in flight at the kill was held for its receipt"
    );
}

#[test]
fn starttls_for_imap_and_implicit_tls_for_smtp_work_with_the_generated_ca() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapStarttlsAndSmtps);
    stack.append(
        SUPPORT,
        complaint(
            CUSTOMER,
            "tls@client.example.test",
            "TLS check",
            "Hello over TLS.",
        )
        .as_bytes(),
    );
    fu.once();
    let mail = stack.wait_for_mail(CUSTOMER, 1);
    assert_eq!(mail.len(), 1);
    let ack = parse(&mail[0]);
    let received: Vec<&str> = ack
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Received"))
        .map(|(_, value)| value)
        .collect();
    assert!(
        received.iter().any(|r| r.contains("with ESMTPS")),
        "submitted to Postfix over TLS: {received:?}"
    );
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    // Point ca_file at a PEM that is not the stack's CA: the handshake must fail, loudly.
    let other_ca = stack.dir.path().join("other-ca.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Other CA",
            "-keyout",
        ])
        .arg(stack.dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("openssl");
    assert!(status.status.success());
    let config = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(
        &fu.config,
        config.replace(stack.var("CA_FILE"), other_ca.to_str().expect("path")),
    )
    .expect("config");
    let out = fu.run(&["run", "--once"]);
    assert!(
        !out.status.success(),
        "an untrusted IMAP server must not be used"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS handshake failed"), "{err}");
}

#[test]
fn a_uidvalidity_change_rescans_the_mailbox_without_answering_anything_twice() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    stack.append(
        SUPPORT,
        complaint(CUSTOMER, "c1@client.example.test", "Late", "Still late.").as_bytes(),
    );
    stack.append(
        SUPPORT,
        complaint("bob@example.test", "c2@client.example.test", "No", "No MID")
            .replace("Message-ID: <c2@client.example.test>\r\n", "")
            .as_bytes(),
    );
    fu.once();
    stack.wait_for_mail(CUSTOMER, 1);
    // As if the server had renumbered the mailbox (a restore, a migration): the checkpoint's
    // UIDVALIDITY no longer matches, so every message is read again from UID 1.
    let db = rusqlite::Connection::open(&fu.database).expect("open");
    // Every UID we recorded now belongs to another UIDVALIDITY, as after a real renumbering.
    for table in ["imap_checkpoint", "messages"] {
        let column = if table == "messages" {
            "imap_uidvalidity"
        } else {
            "uidvalidity"
        };
        db.execute(&format!("UPDATE {table} SET {column} = {column} + 1"), [])
            .expect("update");
    }
    drop(db);
    fu.once();

    assert_eq!(fu.incidents().len(), 2, "nothing re-opened");
    assert_eq!(
        stack.wait_for_mail(CUSTOMER, 1).len(),
        1,
        "nothing answered twice"
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM events WHERE kind = 'uidvalidity_changed'"),
        1
    );
    // One recognised by Message-ID, one (without a Message-ID) by its content hash.
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM events WHERE kind = 'duplicate_delivery'"),
        2
    );
}

#[test]
fn after_processing_move_files_recorded_mail_and_leaves_quarantine_for_a_human() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(&stack, Tls::ImapStarttlsAndSmtps, "");
    let config = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(
        &fu.config,
        config.replace(
            "poll_interval = \"1s\"",
            "poll_interval = \"1s\"\nafter_processing = \"move\"\nmove_to = \"Processed\"",
        ),
    )
    .expect("config");
    stack.append(SUPPORT, b"Subject: no sender\r\n\r\nwho am I\r\n");
    stack.append(
        SUPPORT,
        complaint(CUSTOMER, "c1@client.example.test", "Broken", "It broke.").as_bytes(),
    );
    fu.once();
    stack.wait_for_mail(CUSTOMER, 1);

    let inbox = stack.mailbox(SUPPORT);
    let left: Vec<String> = inbox
        .iter()
        .map(|raw| parse(raw).subject().unwrap_or("").to_string())
        .collect();
    // The complaint was moved; the quarantined message stays in the INBOX where staff look.
    // (The acknowledgement's receipt copy may also have arrived by now: it is our own mail.)
    assert!(left.contains(&"no sender".to_string()), "{left:?}");
    assert!(!left.contains(&"Broken".to_string()), "{left:?}");
    assert_eq!(stack.mailbox_named(SUPPORT, "Processed").len(), 1);
}

#[test]
fn a_second_followupd_on_the_same_database_refuses_to_start() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let (mut daemon, log) = fu.spawn_logged();
    // It connects only after taking the lock.
    eventually_logged("the daemon is up", Duration::from_secs(20), &log, || {
        read_log(&log).contains("IMAP connected")
    });
    let out = fu.run(&["run", "--once"]);
    stop(&mut daemon);
    assert!(
        !out.status.success(),
        "two senders on one outbox could send a mail twice"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another followupd is already running"),
        "{err}"
    );
    // Once the daemon has stopped, the lock is free again.
    fu.once();
}

fn stop(daemon: &mut std::process::Child) {
    // SIGTERM: the daemon finishes its step and exits cleanly.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let status = daemon.wait().expect("wait");
    assert!(status.success(), "clean exit on SIGTERM, got {status:?}");
}
