//! Forgetting: `followupd erase ADDRESS` (a person's right to erasure) leaves no trace of the
//! person in the database files, only a tombstone; `[retention] raw_after` drops the raw text
//! of long-closed incidents and `incident show` says so.

use std::time::Duration;

use crate::harness::*;

const ANN: &str = "ann.erasable@example.test";
const BOB: &str = "bob.stays@example.test";

fn complain(stack: &MailStack, from: &str, name: &str, n: u32) {
    stack.send(
        from,
        SUPPORT,
        &complaint(
            &format!("{name} <{from}>"),
            &format!("privacy-{n}@client.example.test"),
            &format!("Order {n} arrived broken"),
            &format!(
                "Hello,\r\n\r\nthe vase was in pieces. Call me back at {from}.\r\n\r\n{name}\r\n"
            ),
        ),
    );
}

/// Every file of the database (the file, its WAL and shared memory), as bytes.
fn database_files(fu: &Followupd) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let path = format!("{}{suffix}", fu.database.display());
            std::fs::read(&path).ok().map(|bytes| (path, bytes))
        })
        .collect()
}

fn found(files: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    let needle = needle.to_lowercase();
    files
        .iter()
        .filter(|(_, bytes)| {
            String::from_utf8_lossy(bytes)
                .to_lowercase()
                .contains(&needle)
        })
        .map(|(path, _)| path.clone())
        .collect()
}

#[test]
fn erase_leaves_no_trace_of_the_address_in_the_database_files_and_a_tombstone() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    complain(&stack, ANN, "Annabel Erasable", 1);
    complain(&stack, BOB, "Bob Stays", 2);
    eventually("both complaints delivered", Duration::from_secs(20), || {
        fu.once();
        fu.count("SELECT count(*) FROM incidents") == 2
    });
    // The receipt copies of the acknowledgements come back through intake too.
    assert_eq!(stack.wait_for_mail(ANN, 1).len(), 1);
    fu.once();
    fu.once();
    let before = database_files(&fu);
    assert!(
        !found(&before, ANN).is_empty(),
        "the address is there before"
    );

    let out = fu.run(&["erase", "Ann.Erasable@example.test", "--by", "dpo-karin"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("1 incident(s) (#1)"), "{said}");

    let after = database_files(&fu);
    assert_eq!(
        found(&after, ANN),
        Vec::<String>::new(),
        "the address is gone"
    );
    assert_eq!(
        found(&after, "Annabel"),
        Vec::<String>::new(),
        "the name is gone"
    );
    assert_eq!(
        found(&after, "vase was in pieces. Call me back at ann"),
        Vec::<String>::new()
    );
    // Someone else's data is untouched (the search itself works).
    assert!(!found(&after, BOB).is_empty());
    assert_eq!(fu.incident(2)["incident"]["customer_address"], BOB);

    let shown = fu.incident(1);
    let tombstone = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "erased")
        .cloned()
        .expect("a tombstone event");
    assert_eq!(tombstone["actor"], "dpo-karin");
    let detail = tombstone["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("erased at a person's request by dpo-karin"),
        "{detail}"
    );
    assert!(
        shown["incident"]["customer_address"] == "[erased]",
        "{shown}"
    );
    // The record of what happened stays: the incident, its state, the mail that went out.
    assert_eq!(shown["incident"]["state"], "open");
    assert_eq!(
        fu.count("SELECT count(*) FROM outbox WHERE incident_id = 1 AND state = 'sent'"),
        1
    );
}

#[test]
fn retention_drops_the_raw_text_of_long_closed_incidents_and_incident_show_says_so() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "[retention]\nraw_after = \"365d\"\n",
    );
    complain(&stack, ANN, "Annabel Erasable", 1);
    complain(&stack, BOB, "Bob Stays", 2);
    eventually("both complaints recorded", Duration::from_secs(20), || {
        fu.once();
        fu.count("SELECT count(*) FROM incidents") == 2
    });
    let out = fu.run(&["incident", "close", "1", "--by", "anna"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Half a year on, nothing is dropped yet.
    let half_year = chrono::Utc::now() + chrono::Duration::days(180);
    fu.once_at(half_year);
    assert_eq!(
        fu.count("SELECT count(*) FROM messages WHERE raw_dropped_at IS NOT NULL"),
        0
    );

    // A year and a day after closing: the closed incident's raw text goes, the open one's stays.
    let later = chrono::Utc::now() + chrono::Duration::days(366);
    fu.once_at(later);
    let out = fu.run(&["incident", "show", "1"]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("raw text dropped by retention on"),
        "{shown}"
    );
    assert!(
        shown.contains("Order 1 arrived broken"),
        "headers stay: {shown}"
    );
    assert!(has_event(&fu.incident(1), "raw_dropped"));
    let kept = fu.run(&["incident", "show", "2", "--full"]);
    let kept = String::from_utf8_lossy(&kept.stdout).to_string();
    assert!(kept.contains("the vase was in pieces"), "{kept}");
    assert!(!kept.contains("dropped by retention"), "{kept}");
    // The same message delivered again (a mail client resending it, a mailbox rescan) is still
    // recognised though its raw text is gone: no second incident, no second acknowledgement.
    let again = format!(
        "Received: from resent.example.test\r\n{}",
        complaint(
            &format!("Annabel Erasable <{ANN}>"),
            "privacy-1@client.example.test",
            "Order 1 arrived broken",
            &format!("Hello,\r\n\r\nthe vase was in pieces. Call me back at {ANN}.\r\n\r\nAnnabel Erasable\r\n"),
        )
    );
    stack.append(SUPPORT, again.as_bytes());
    let log = fu.once_at(later + chrono::Duration::minutes(1));
    assert_eq!(fu.count("SELECT count(*) FROM incidents"), 2, "{log}");
    assert_eq!(
        fu.count("SELECT count(*) FROM outbox WHERE kind = 'acknowledgement'"),
        2,
        "{log}"
    );
    assert!(has_event(&fu.incident(1), "duplicate_delivery"), "{log}");
    let incoming = fu.count(
        "SELECT id FROM messages WHERE incident_id = 1 AND direction = 'in' ORDER BY id LIMIT 1",
    );
    let raw = fu.run(&["message", "show", &incoming.to_string(), "--raw"]);
    assert!(!raw.status.success());
    assert!(
        String::from_utf8_lossy(&raw.stderr).contains("dropped by retention"),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
}
