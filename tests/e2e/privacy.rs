//! Forgetting: `followupd erase ADDRESS` (a person's right to erasure) leaves no trace of the
//! person in the database files, only a tombstone; `[retention] raw_after` drops the raw text
//! of long-closed incidents and `incident show` says so.

use std::time::Duration;

use crate::harness::*;

const ANN: &str = "ann.erasable@example.test";
const BOB: &str = "bob.stays@example.test";
const CARL: &str = "carl.untouched@example.test";

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
    // Her address with a sub-address, a colleague's complaint naming her in its subject and
    // in a base64 body, and someone who has nothing to do with her.
    complain(
        &stack,
        "Ann.Erasable+orders@example.test",
        "Annabel Erasable",
        3,
    );
    use base64::Engine;
    let about_her = format!("Please also call my colleague {ANN}, she knows the order.\r\n");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&about_her);
    stack.send(
        BOB,
        SUPPORT,
        &format!(
            "From: Bob Stays <{BOB}>\r\nTo: {SUPPORT}\r\nSubject: For Annabel Erasable\r\n\
             Message-ID: <privacy-4@client.example.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {encoded}\r\n"
        ),
    );
    complain(&stack, CARL, "Carl Untouched", 5);
    eventually(
        "all five complaints recorded",
        Duration::from_secs(20),
        || {
            fu.once();
            fu.count("SELECT count(*) FROM messages WHERE direction = 'in' AND class = 'human'")
                >= 5
        },
    );
    // The receipt copies of the acknowledgements come back through intake too.
    assert!(!stack.wait_for_mail(ANN, 1).is_empty());
    fu.once();
    fu.once();
    let carl_rows = || -> String {
        let db = fu.db();
        let mut dump = String::new();
        for sql in [
            "SELECT quote(i.id), quote(subject), quote(summary), quote(customer_name), quote(state), quote(next_update_at) FROM incidents i WHERE customer_address = 'carl.untouched@example.test'",
            "SELECT quote(m.id), quote(from_addr), quote(subject), quote(m.message_id), quote(r.raw) FROM messages m JOIN message_raw r ON r.message_id = m.id WHERE from_addr LIKE '%carl.untouched%'",
            "SELECT quote(id), quote(recipient), quote(context), quote(raw), quote(state) FROM outbox WHERE recipient = 'carl.untouched@example.test'",
        ] {
            let mut stmt = db.prepare(sql).expect("query");
            let rows = stmt
                .query_map([], |r| {
                    let n = r.as_ref().column_count();
                    (0..n)
                        .map(|i| r.get::<_, String>(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("rows");
            for row in rows {
                dump.push_str(&row.expect("row").join("|"));
                dump.push('\n');
            }
        }
        dump
    };
    let carl_before = carl_rows();
    assert!(carl_before.lines().count() >= 3, "{carl_before}");
    let before = database_files(&fu);
    assert!(
        !found(&before, ANN).is_empty(),
        "the address is there before"
    );

    let in_mailbox = |who: &str| {
        stack
            .mailbox(SUPPORT)
            .iter()
            .filter(|m| String::from_utf8_lossy(m).to_lowercase().contains(who))
            .count()
    };
    assert!(
        in_mailbox("from: annabel erasable") >= 2,
        "hers are on the server"
    );
    let carl_on_server = in_mailbox(CARL);
    let out = fu.run(&[
        "erase",
        "Ann.Erasable@example.test",
        "--by",
        "dpo-karin",
        "--imap",
    ]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("2 incident(s) (#1, #3)"), "{said}");
    assert!(said.contains("imap: deleted"), "{said}");
    assert_eq!(
        in_mailbox("from: annabel erasable"),
        0,
        "gone from the server too"
    );
    assert_eq!(
        in_mailbox(CARL),
        carl_on_server,
        "nobody else's mail touched"
    );

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
    for form in [
        "ann.erasable+orders@example.test".to_string(),
        encoded.chars().take(40).collect::<String>(),
    ] {
        assert_eq!(found(&after, &form), Vec::<String>::new(), "{form}");
    }
    // Bob's incident stays his, without her in it; Carl's rows are exactly as they were.
    assert_eq!(fu.incident(4)["incident"]["customer_address"], BOB);
    assert_eq!(fu.incident(4)["incident"]["subject"], "For [erased]");
    assert_eq!(
        fu.incident(4)["incident"]["summary"],
        "Please also call my colleague [erased], she knows the order.",
        "his words stay, her address goes"
    );
    assert_eq!(carl_rows(), carl_before, "nobody else's rows touched");
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
    // Nobody is left to write to: closed (no update fails every cadence); the record of what
    // happened stays: the incident, the mail that went out.
    assert_eq!(shown["incident"]["state"], "closed");
    assert!(shown["incident"]["next_update_at"].is_null(), "{shown}");
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
