//! The decision core seen from outside: `upcoming` is the scheduler's own tick, so what it lists
//! is what the daemon then does, at that time; and mail queued by intake reaches the relay at
//! once, whatever the poll interval.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};

use crate::harness::*;

const ANN: &str = "ann@example.test";
const BOB: &str = "bob@example.test";
const LEAD: &str = "lead@example.test";

fn at(stamp: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(stamp)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn ok(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn upcoming_lists_a_late_update_an_escalation_a_check_back_and_a_close_when_the_daemon_acts() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "\n[escalation]\nstaff = [\"lead@example.test\"]\n",
    );
    let t0 = at("2026-11-23T09:00:00Z");
    stack.append(
        SUPPORT,
        complaint(
            ANN,
            "ann-1@client.example.test",
            "Checkout fails",
            "Payment errors.",
        )
        .as_bytes(),
    );
    stack.append(
        SUPPORT,
        complaint(
            BOB,
            "bob-1@client.example.test",
            "Wrong invoice",
            "Billed twice.",
        )
        .as_bytes(),
    );
    fu.once_at(t0);
    ok(fu.run_at(
        t0 + Span::hours(1),
        &[
            "incident",
            "resolve",
            "2",
            "--root-cause",
            "A retry charged the card twice.",
            "--prevention",
            "Charges are now idempotent.",
        ],
    ));
    fu.once_at(t0 + Span::hours(1));
    stack.wait_for_mail(BOB, 2);

    // The daemon was down from 10:00 to 14:00, past Ann's 13:00 promise.
    let now = t0 + Span::hours(5);
    let plan: serde_json::Value = serde_json::from_slice(&ok(
        fu.run_at(now, &["upcoming", "--within", "7d", "--json"])
    ))
    .expect("JSON");
    let plan: Vec<(DateTime<Utc>, String, i64)> = plan
        .as_array()
        .expect("array")
        .iter()
        .map(|u| {
            (
                at(u["at"].as_str().expect("at")),
                u["what"].as_str().expect("what").to_string(),
                u["incident"].as_i64().expect("incident"),
            )
        })
        .collect();
    let expected = vec![
        (now, "progress".to_string(), 1),
        (t0 + Span::hours(8), "staff/escalation".to_string(), 1),
        (
            t0 + Span::hours(1) + Span::days(3),
            "check_back".to_string(),
            2,
        ),
        (t0 + Span::hours(1) + Span::days(7), "close".to_string(), 2),
    ];
    assert_eq!(plan, expected);

    // The daemon does each of them at that time, not a minute before.
    let happened = |what: &str| -> bool {
        match what {
            "progress" => stack.mailbox(ANN).len() >= 2,
            "staff/escalation" => !stack.mailbox(LEAD).is_empty(),
            "check_back" => stack.mailbox(BOB).len() >= 3,
            "close" => fu.incident(2)["incident"]["state"] == "closed",
            other => panic!("unexpected {other}"),
        }
    };
    for (when, what, _) in &expected {
        if *when > now {
            fu.once_at(*when - Span::minutes(1));
            // Whatever that pass sent has been delivered once Postfix holds nothing in flight.
            stack.settle();
            assert!(!happened(what), "{what} happened before {when}");
        }
        fu.once_at(*when);
        eventually(
            &format!("{what} at {when}"),
            Duration::from_secs(15),
            || happened(what),
        );
    }
    let late = parse(&stack.mailbox(ANN)[1])
        .body_text(0)
        .expect("text")
        .to_string();
    assert!(late.contains("later than we promised"), "{late}");
}

#[test]
fn a_status_answer_queued_by_intake_reaches_the_relay_within_a_second_whatever_the_poll_interval() {
    let stack = MailStack::start();
    let fu = Followupd::with_poll(&stack, Tls::ImapsAndSmtpStarttls, "60s", "");
    stack.append(
        SUPPORT,
        complaint(
            ANN,
            "ann-1@client.example.test",
            "Refund missing",
            "Where is it?",
        )
        .as_bytes(),
    );
    fu.once();
    stack.wait_for_mail(ANN, 1);
    stack.append(
        SUPPORT,
        format!(
            "From: {ANN}\r\nTo: {SUPPORT}\r\nSubject: Re: Refund missing\r\n\
             Message-ID: <ann-2@client.example.test>\r\n\
             In-Reply-To: <ann-1@client.example.test>\r\n\r\nAny news?\r\n"
        )
        .as_bytes(),
    );
    let mut daemon = fu.spawn();
    eventually("the status answer is sent", Duration::from_secs(20), || {
        fu.count("SELECT COUNT(*) FROM outbox WHERE kind = 'status' AND state = 'sent'") == 1
    });
    let _ = std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status();
    let _ = daemon.wait();
    let waited: f64 = fu
        .db()
        .query_row(
            "SELECT (julianday(sent_at) - julianday(created_at)) * 86400.0 FROM outbox
             WHERE kind = 'status'",
            [],
            |r| r.get(0),
        )
        .expect("times");
    assert!(
        waited < 1.0,
        "queued by intake, handed to the relay {waited:.3} s later"
    );
    assert_eq!(stack.wait_for_mail(ANN, 2).len(), 2);
}
