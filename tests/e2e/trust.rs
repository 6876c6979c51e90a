//! Trust at the door: the support address is no reflector. Forged mail goes through the real
//! Postfix from 127.0.0.2, a server that is not the real one of the sender's domain; the
//! stack's receiving server (scripts/mailstack-authmilter) judges it as OpenDMARC would and
//! writes Authentication-Results, which followupd believes because `[intake]
//! trusted_authserv_id` names that server (the harness sets it).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::harness::*;

const ATTACKER_SERVER: &str = "127.0.0.2";
const ATTACKER: &str = "attacker@evil.test";
/// A victim at a domain that publishes DMARC (the stack's own domain): forged From fails.
const DMARC_VICTIM: &str = "victim@example.test";
/// A victim at a domain without DMARC: forged From is merely unverified.
const VICTIM: &str = "victim@small.test";

fn at(stamp: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(stamp)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Sends each mail from the attacker's server and waits until all are in the support inbox
/// (found by their Message-IDs: our own receipt copies land there too).
fn forge(stack: &MailStack, mails: &[String]) {
    for raw in mails {
        stack.send_from(ATTACKER_SERVER, ATTACKER, SUPPORT, raw);
    }
    let ids: Vec<String> = mails
        .iter()
        .map(|raw| {
            let m = parse(raw.as_bytes());
            format!("<{}>", m.message_id().expect("a Message-ID"))
        })
        .collect();
    eventually(
        "the forged mail is delivered",
        Duration::from_secs(30),
        || {
            let inbox: Vec<String> = stack
                .mailbox(SUPPORT)
                .iter()
                .map(|m| String::from_utf8_lossy(m).to_string())
                .collect();
            ids.iter()
                .all(|id| inbox.iter().any(|m| m.contains(id.as_str())))
        },
    );
}

/// What a reader sees of a mail: the subject, who it is to, and both bodies. (The threading
/// headers name the complaint's Message-ID; no mail client shows them.)
fn text_of(raw: &[u8]) -> String {
    let m = parse(raw);
    format!(
        "{}\n{}\n{}\n{}",
        m.subject().unwrap_or(""),
        header(&m, "To").unwrap_or(""),
        m.body_text(0).unwrap_or_default(),
        m.body_html(0).unwrap_or_default()
    )
}

#[test]
fn a_complaint_failing_dmarc_is_held_for_staff_and_a_verdict_from_another_server_means_nothing() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    forge(
        &stack,
        &[complaint(
            &format!("Victim <{DMARC_VICTIM}>"),
            "forged-1@evil.test",
            "Refund for order 4411",
            "Please send the refund to this account instead: ...",
        )],
    );
    fu.once();
    assert!(fu.incidents().is_empty(), "no incident for a failed sender");
    assert_eq!(fu.count("SELECT COUNT(*) FROM outbox"), 0, "nothing sent");
    let held = fu.json(&["quarantine", "--json"]);
    let held = held.as_array().expect("quarantine");
    assert_eq!(held.len(), 1, "staff can see it: {held:?}");
    let reason = held[0]["class_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("dmarc=fail") && reason.contains(DMARC_VICTIM),
        "{reason}"
    );

    // A real customer's mail, verified by our server, carrying another server's dmarc=fail
    // (quoted, forwarded, or made up): only our server's word counts.
    let ann = "ann@example.test";
    let raw = complaint(
        &format!("Ann Example <{ann}>"),
        "ann-1@client.example.test",
        "Checkout keeps failing",
        "Every payment attempt ends with an error page.",
    );
    stack.deliver(
        SUPPORT,
        format!(
            "Authentication-Results: mx.other.test; dmarc=fail header.from=example.test\r\n{raw}"
        )
        .as_bytes(),
    );
    fu.once();
    let mail = stack.wait_for_mail(ann, 1);
    let ack = text_of(&mail[0]);
    assert!(
        ack.contains("Checkout keeps failing") && ack.contains("Hello Ann,"),
        "a verified customer is answered in full: {ack}"
    );
    assert!(stack.mailbox(DMARC_VICTIM).is_empty());
}

/// A followupd whose one staff member is `anna`.
fn with_anna(stack: &MailStack, anna: &str) -> Followupd {
    Followupd::with_extra(
        stack,
        Tls::ImapsAndSmtpStarttls,
        &format!("\n[staff]\nmembers = [\"{anna}\"]\n"),
    )
}

#[test]
fn held_mail_a_person_vouches_for_is_taken_in_once_and_staff_mail_never_is() {
    let stack = MailStack::start();
    let anna = "anna@example.test";
    let fu = with_anna(&stack, anna);
    // A customer whose own domain's DMARC fails for this mail (a badly set up mail service):
    // held, nothing sent.
    forge(
        &stack,
        &[complaint(
            &format!("Victor <{DMARC_VICTIM}>"),
            "victor-1@mail.example.test",
            "Order 4411 never arrived",
            "Hello,\r\n\r\nmy order 4411 never arrived.\r\n\r\nVictor",
        )],
    );
    fu.once();
    let held = fu.json(&["quarantine", "--json"]);
    let id = held[0]["id"].as_i64().expect("a held message").to_string();
    // Staff know Victor and take it in: his complaint is answered, once.
    let out = fu.run(&["quarantine", "release", &id, "--by", "anna"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("incident 1 opened"), "{said}");
    fu.once();
    let mail = stack.wait_for_mail(DMARC_VICTIM, 1);
    assert!(
        text_of(&mail[0]).contains("order 4411 never arrived"),
        "{}",
        text_of(&mail[0])
    );
    assert_eq!(
        fu.json(&["quarantine", "--json"]).as_array().map(Vec::len),
        Some(0),
        "released mail leaves the list"
    );
    let again = fu.run(&["quarantine", "release", &id]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("released already, as message"),
        "{again:?}"
    );
    fu.once();
    stack.settle();
    assert_eq!(stack.mailbox(DMARC_VICTIM).len(), 1, "answered once");
    assert_eq!(fu.incidents().len(), 1);

    // Mail claiming to come from a member is never released: a forgery would act as the team.
    forge(
        &stack,
        &[complaint(
            &format!("Anna <{anna}>"),
            "forged-anna@evil.test",
            "Re: Incident 1",
            "#close",
        )],
    );
    fu.once();
    let held = fu.json(&["quarantine", "--json"]);
    let id = held[0]["id"]
        .as_i64()
        .expect("the forged staff mail")
        .to_string();
    let out = fu.run(&["quarantine", "release", &id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("never released"),
        "{out:?}"
    );
    assert_eq!(
        fu.incidents()[0]["state"],
        "open",
        "nothing it asked was done"
    );
}

#[test]
fn release_in_a_reply_to_a_held_notice_takes_the_customers_reply_in() {
    let stack = MailStack::start();
    let anna = "anna@example.test";
    let fu = with_anna(&stack, anna);
    let victor = complaint(
        &format!("Victor <{DMARC_VICTIM}>"),
        "victor-1@mail.example.test",
        "Order 4411 never arrived",
        "Hello,\r\n\r\nmy order 4411 never arrived.\r\n\r\nVictor",
    );
    // His first mail comes through our own relay (verified); his reply, from elsewhere, fails.
    stack.deliver(SUPPORT, victor.as_bytes());
    fu.once();
    stack.wait_for_mail(DMARC_VICTIM, 1);
    stack.wait_for_mail(anna, 1);
    forge(
        &stack,
        &[format!(
            "From: Victor <{DMARC_VICTIM}>\r\nTo: {SUPPORT}\r\nSubject: Re: Order 4411 never arrived\r\n\
             Message-ID: <victor-2@mail.example.test>\r\n\
             In-Reply-To: <victor-1@mail.example.test>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             The tracking number is JJD0002249.\r\n"
        )],
    );
    fu.once();
    let notice = stack.wait_for_mail(anna, 2)[1].clone();
    let notice_text = text_of(&notice);
    assert!(
        notice_text.contains("#release") && notice_text.contains("JJD0002249"),
        "{notice_text}"
    );
    stack.send(
        anna,
        SUPPORT,
        &crate::staff::staff_reply(anna, &notice, "#release", false),
    );
    eventually("the reply reaches support", Duration::from_secs(15), || {
        stack.mailbox(SUPPORT).len() >= 4
    });
    fu.once();
    // Taken in as Victor's: on the incident, no longer held, and nothing went to him for it.
    let shown = fu.run(&["incident", "show", "1", "--full"]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("JJD0002249"), "{shown}");
    assert_eq!(
        fu.json(&["quarantine", "--json"]).as_array().map(Vec::len),
        Some(0)
    );
    stack.settle();
    assert_eq!(
        stack.mailbox(DMARC_VICTIM).len(),
        1,
        "the release itself mails nobody"
    );
}

#[test]
fn an_unverified_complaint_gets_a_plain_acknowledgement_and_cannot_set_the_pace() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    forge(
        &stack,
        &[complaint(
            &format!("\"Claim your prize now\" <{VICTIM}>"),
            "forged-1@evil.test",
            "URGENT wire 5000 EUR to IBAN XX00 1234",
            "Hello, call +1 555 0100 to unlock your account at https://evil.test/login",
        )],
    );
    fu.once_at(t0);
    let mail = stack.wait_for_mail(VICTIM, 1);
    assert_eq!(mail.len(), 1, "one acknowledgement");
    let ack = text_of(&mail[0]);
    for echo in ["prize", "URGENT", "IBAN", "555 0100", "evil.test", "unlock"] {
        assert!(!ack.contains(echo), "`{echo}` must not be repeated: {ack}");
    }
    assert!(ack.contains("could not confirm"), "{ack}");
    let shown = fu.incident(1);
    assert_eq!(shown["incident"]["sender_trust"], "unverified", "{shown}");

    // The forger asks for updates every 30 minutes: not applied.
    forge(
        &stack,
        &[format!(
            "From: {VICTIM}\r\nTo: {SUPPORT}\r\nSubject: Re: hello\r\n\
             Message-ID: <forged-2@evil.test>\r\nIn-Reply-To: <forged-1@evil.test>\r\n\r\n\
             Please update me every 30 minutes.\r\n"
        )],
    );
    fu.once_at(t0 + chrono::Duration::minutes(5));
    let shown = fu.incident(1);
    assert_eq!(shown["incident"]["cadence_secs"], 4 * 3600, "{shown}");
    let mail = stack.wait_for_mail(VICTIM, 2);
    let status = text_of(&mail[1]);
    assert!(!status.contains("every 30 minutes"), "{status}");
}

#[test]
fn forged_complaints_from_twenty_sub_addresses_reach_the_mailbox_at_most_its_cap() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let mails: Vec<String> = (1..=20)
        .map(|i| {
            complaint(
                &format!("victim+{i}@small.test"),
                &format!("forged-{i}@evil.test"),
                &format!("Complaint {i}"),
                "Forged.",
            )
        })
        .collect();
    forge(&stack, &mails);
    fu.once();
    assert_eq!(fu.incidents().len(), 20, "every complaint is on record");
    // Let any mail in flight land before counting.
    stack.settle();
    assert_eq!(
        stack.mailbox(VICTIM).len(),
        3,
        "the per-mailbox cap (3 in 10 minutes), not one per sub-address"
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM suppressed WHERE reason LIKE '%victim@small.test%'"),
        17
    );
}

/// The attacker's day: forged complaints from sub-addresses and with Reply-To tricks, replies
/// asking for news and a faster pace, and References by the thousand, then 24 hours of the
/// daemon doing its job (the testing clock moves, one pass every 30 minutes). `scripts/abuse`
/// is the same attack at full size, with its figures printed.
#[test]
fn a_day_of_abuse_reaches_the_victim_at_most_five_times_and_never_with_a_large_mail() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let t0 = at("2026-11-23T09:00:00Z");
    let huge_refs: String = (0..3000)
        .map(|i| format!("<r{i}.{}@evil.test>", "x".repeat(40)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut mails = Vec::new();
    for i in 0..6 {
        mails.push(
            complaint(
                &format!("victim+{i}@small.test"),
                &format!("c{i}@evil.test"),
                &format!("Click https://evil.test/{i}"),
                "Your account is locked.",
            )
            .replace("\r\nTo:", &format!("\r\nReferences: {huge_refs}\r\nTo:")),
        );
    }
    // Reply-To tricks: the attacker's own (verified) domain asking answers to go to the victim,
    // and a forged From with a Reply-To at the victim's.
    mails.push(
        complaint(ATTACKER, "c10@evil.test", "Hi", "Reply to my friend.")
            .replace("\r\nTo:", &format!("\r\nReply-To: {VICTIM}\r\nTo:")),
    );
    mails.push(
        complaint(
            "someone@small.test",
            "c11@evil.test",
            "Hi",
            "Reply to my friend.",
        )
        .replace("\r\nTo:", &format!("\r\nReply-To: {VICTIM}\r\nTo:")),
    );
    // Forged sender checks below the server's own: its name with a version, with a comment,
    // exactly (the server removes only those), a DMARC pass naming no domain, and a From with
    // the victim's address in a comment.
    let id = stack.var("AUTHSERV_ID").to_string();
    for (n, (from, ar)) in [
        (
            VICTIM.to_string(),
            format!("{id} 1; dkim=pass header.d=small.test; dmarc=pass header.from=small.test"),
        ),
        (
            VICTIM.to_string(),
            format!("{id} (verified); dkim=pass header.d=small.test"),
        ),
        (
            VICTIM.to_string(),
            format!("{id}; dkim=pass header.d=small.test"),
        ),
        (VICTIM.to_string(), format!("{id}; dmarc=pass")),
        (
            format!("{VICTIM} ({VICTIM})"),
            format!("{id} 2; dmarc=pass header.from=small.test"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        mails.push(
            complaint(
                &from,
                &format!("ar{n}@evil.test"),
                "Verify me",
                "I am the victim.",
            )
            .replace(
                "\r\nTo:",
                &format!("\r\nAuthentication-Results: {ar}\r\nTo:"),
            ),
        );
    }
    forge(&stack, &mails);
    fu.once_at(t0);
    assert_eq!(
        fu.count(
            "SELECT COUNT(*) FROM messages WHERE trust = 'verified' AND from_addr LIKE '%small.test%'"
        ),
        0,
        "no forged sender check believed (the attacker's own domain is rightly verified)"
    );
    let mut replies = Vec::new();
    for i in 0..6 {
        replies.push(format!(
            "From: victim+{i}@small.test\r\nTo: {SUPPORT}\r\nSubject: Re: hi\r\n\
             Message-ID: <r{i}@evil.test>\r\nIn-Reply-To: <c{i}@evil.test>\r\n\
             References: {huge_refs} <c{i}@evil.test>\r\n\r\n\
             Any news? Please update me every 30 minutes.\r\n"
        ));
    }
    forge(&stack, &replies);
    // The day from t0 to just before t0 + 24 h.
    for step in 1..48 {
        fu.once_at(t0 + chrono::Duration::minutes(30 * step));
    }
    stack.settle();
    let got = stack.mailbox(VICTIM);
    let sent: Vec<String> = {
        let db = fu.db();
        let mut stmt = db
            .prepare("SELECT created_at, kind, recipient, incident_id FROM outbox ORDER BY id")
            .expect("query");
        stmt.query_map([], |r| {
            Ok(format!(
                "{} {} {} #{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?
            ))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    assert!(
        got.len() <= 5,
        "{} mails reached the victim in 24 h; the outbox: {sent:#?}",
        got.len()
    );
    assert!(!got.is_empty(), "the plain acknowledgement does go out");
    let largest = got.iter().map(Vec::len).max().unwrap_or(0);
    assert!(largest <= 20_000, "largest mail {largest} bytes");
    for raw in &got {
        let text = text_of(raw);
        assert!(
            !text.contains("evil.test/"),
            "nothing of theirs echoed: {text}"
        );
    }
}
