//! Waiting for mail: IMAP IDLE when the server offers it (a complaint is read as it arrives,
//! whatever the poll interval), polling when it does not, and a quick return after an outage.

use std::time::{Duration, Instant};

use crate::harness::*;

const ANN: &str = "ann@example.test";

fn send_complaint(stack: &MailStack, n: u32) {
    order_never_arrived(stack, ANN, &format!("idle-{n}@client.example.test"), n);
}

fn sent(fu: &Followupd) -> i64 {
    fu.count("SELECT count(*) FROM outbox WHERE state = 'sent'")
}

#[test]
fn with_idle_a_complaint_is_answered_within_seconds_though_the_poll_interval_is_two_minutes() {
    let stack = MailStack::start();
    let fu = Followupd::with_poll(&stack, Tls::ImapsAndSmtpStarttls, "2m", "");
    let (daemon, log) = fu.spawn_logged();
    eventually("the daemon waits in IDLE", Duration::from_secs(20), || {
        read_log(&log).contains("waiting=IDLE")
    });
    // Let the first pass finish and IDLE begin.
    std::thread::sleep(Duration::from_secs(1));
    let sent_at = Instant::now();
    send_complaint(&stack, 1);
    eventually(
        "the acknowledgement is at the relay long before the next poll",
        Duration::from_secs(15),
        || sent(&fu) == 1,
    );
    let took = sent_at.elapsed();
    daemon.stop();
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(stack.wait_for_mail(ANN, 1).len(), 1);
}

#[test]
fn a_server_without_idle_is_still_polled() {
    let stack = MailStack::start_with(&["--no-idle"]);
    let fu = Followupd::with_poll(&stack, Tls::ImapStarttlsAndSmtps, "2s", "");
    let (daemon, log) = fu.spawn_logged();
    eventually("the daemon polls", Duration::from_secs(20), || {
        read_log(&log).contains("does not offer IDLE; polling")
    });
    send_complaint(&stack, 1);
    eventually("the complaint is answered", Duration::from_secs(30), || {
        sent(&fu) == 1
    });
    send_complaint(&stack, 2);
    eventually("and the next one", Duration::from_secs(30), || {
        sent(&fu) == 2
    });
    daemon.stop();
    assert!(!read_log(&log).contains("waiting=IDLE"));
}

#[test]
fn after_an_imap_outage_intake_is_back_within_seconds_not_a_backoff_later() {
    let stack = MailStack::start();
    // The default reconnect_max (1m). Retries after the drop: 1, 3, 7, 15 s, then one at 31 s.
    let fu = Followupd::with_poll(&stack, Tls::ImapsAndSmtpStarttls, "2m", "");
    let config = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(&fu.config, config.replace("reconnect_max = \"2s\"\n", "")).expect("config");
    let (daemon, log) = fu.spawn_logged();
    eventually("the daemon waits in IDLE", Duration::from_secs(20), || {
        read_log(&log).contains("waiting=IDLE")
    });
    stack.imap_down();
    // Back up at 18 s: without watching for it, the next attempt would come 13 s later.
    std::thread::sleep(Duration::from_secs(18));
    let up = Instant::now();
    stack.imap_up();
    // (Postfix authenticates through Dovecot, so it takes mail again only now.)
    send_complaint(&stack, 1);
    eventually(
        "a complaint is answered soon after IMAP is back",
        Duration::from_secs(60),
        || sent(&fu) == 1,
    );
    let took = up.elapsed();
    daemon.stop();
    let text = read_log(&log);
    assert!(text.contains("IMAP server answers again"), "{text}");
    assert!(
        took < Duration::from_secs(8),
        "answered {took:?} after IMAP came back (the backoff alone would take 13 s)"
    );
}
