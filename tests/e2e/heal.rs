//! The sender heals itself: a full disk, a relay outage and a crash each end with every customer
//! answered exactly once, soon after the fault clears, by the daemon that saw the fault.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const CUSTOMER: &str = "customer@example.test";

/// A followupd whose complaints each come from their own sub-address of one mailbox (counted as
/// different people, so no send cap applies), with `extra` appended to its config.
fn many_customers(stack: &MailStack, extra: &str) -> Followupd {
    Followupd::with_extra(
        stack,
        Tls::ImapsAndSmtpStarttls,
        &format!("\n[send_caps]\nsubaddress_separators = []\n{extra}"),
    )
}

fn complain(stack: &MailStack, tag: &str, i: usize, body: &str) {
    stack.deliver(
        SUPPORT,
        complaint(
            &format!("customer+{tag}{i}@example.test"),
            &format!("{tag}-{i}@client.example.test"),
            &format!("Complaint {tag} {i}"),
            body,
        )
        .as_bytes(),
    );
}

/// How many acknowledgements answer each complaint whose Message-ID starts with `tag-`.
fn answers(stack: &MailStack, tag: &str) -> std::collections::BTreeMap<String, usize> {
    let mut answered = std::collections::BTreeMap::new();
    for raw in stack.mailbox(CUSTOMER) {
        let mail = parse(&raw);
        if header(&mail, "Auto-Submitted") != Some("auto-replied") {
            continue;
        }
        let to = mail.in_reply_to().as_text().unwrap_or("").to_string();
        if to.starts_with(&format!("{tag}-")) {
            *answered.entry(to).or_insert(0) += 1;
        }
    }
    answered
}

/// A small tmpfs mounted for the daemon's state directory; unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// None where this machine does not let the test mount one (not root, no CAP_SYS_ADMIN).
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).expect("mkdir state");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            cannot_run_here(&format!(
                "cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Some(SmallDisk(dir.to_path_buf()))
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        loop {
            if std::io::Write::write_all(&mut file, &block).is_err() {
                break;
            }
        }
        // What a 64 KiB block did not fill, smaller writes do.
        let byte = [0u8; 512];
        while std::io::Write::write_all(&mut file, &byte).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_delays_mail_and_when_space_returns_every_customer_is_answered_once() {
    let stack = MailStack::start();
    let fu = many_customers(&stack, "");
    let state = fu.database.parent().expect("state dir").to_path_buf();
    let Some(disk) = SmallDisk::mount(&state, "6m") else {
        return;
    };
    let (mut daemon, log) = fu.spawn_logged();
    complain(&stack, "before", 0, "The site is down.");
    eventually(
        "the first complaint is answered",
        Duration::from_secs(30),
        || answers(&stack, "before").len() == 1,
    );

    let filler = disk.fill();
    // Big enough that the database must grow to take them: the disk's last free pages are gone.
    let body = "My whole order history is missing from the account page.\r\n".repeat(3000);
    let n = 5;
    for i in 0..n {
        complain(&stack, "full", i, &body);
    }
    eventually_logged(
        "the daemon says why it is stuck",
        Duration::from_secs(30),
        &log,
        || read_log(&log).contains("database or disk is full"),
    );
    // The daemon says it is stuck: what it could not record, it cannot have answered.
    assert!(
        answers(&stack, "full").len() < n,
        "the disk was full: not every complaint can have been recorded and answered"
    );

    std::fs::remove_file(&filler).expect("free the disk");
    let freed = Instant::now();
    eventually(
        "every complaint is answered after space returns",
        Duration::from_secs(30),
        || answers(&stack, "full").len() == n,
    );
    let took = freed.elapsed();
    // Whatever it would send twice, it would have sent by now.
    fu.nothing_left_to_send(&stack);
    let answered = answers(&stack, "full");
    assert_eq!(answered.len(), n, "every customer answered");
    assert!(
        answered.values().all(|&times| times == 1),
        "nobody answered twice: {answered:?}"
    );
    assert_eq!(answers(&stack, "before").values().sum::<usize>(), 1);
    assert!(
        daemon.alive(),
        "the same daemon healed, no restart:\n{}",
        read_log(&log)
    );
    let text = read_log(&log);
    assert!(
        text.contains("database or disk is full"),
        "the trouble is logged with its cause:\n{text}"
    );
    assert!(
        text.contains("database writes work again"),
        "and its end:\n{text}"
    );
    eprintln!(
        "all {n} answered {:.1} s after space returned",
        took.as_secs_f64()
    );

    // Again, with the disk filling while the acknowledgements wait for the relay: this time it
    // is the sender whose writes fail (marking mail in flight, recording what the relay said).
    stack.smtp_down();
    for i in 0..n {
        complain(&stack, "queued", i, "The invoice is wrong.");
    }
    eventually(
        "the new complaints are recorded and wait for the relay",
        Duration::from_secs(30),
        || fu.count("SELECT COUNT(*) FROM outbox WHERE state = 'queued'") == n as i64,
    );
    let full_before = read_log(&log).matches("database or disk is full").count();
    let filler = disk.fill();
    stack.smtp_up();
    // Until the sender meets the full disk (it logs it), for at most 8 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    while read_log(&log).matches("database or disk is full").count() == full_before
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(&filler).expect("free the disk");
    eventually(
        "every queued acknowledgement goes after space returns",
        Duration::from_secs(30),
        || answers(&stack, "queued").len() == n,
    );
    fu.nothing_left_to_send(&stack);
    let answered = answers(&stack, "queued");
    assert!(
        answered.values().all(|&times| times == 1),
        "nobody answered twice: {answered:?}"
    );
    assert_eq!(
        fu.count("SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'sending')"),
        0,
        "nothing left behind in the outbox"
    );
    assert!(daemon.alive(), "still the same daemon");
    daemon.stop();
}

#[test]
fn after_a_relay_outage_the_whole_queue_goes_within_seconds() {
    let stack = MailStack::start();
    // The per-mail backoff for a 4xx would keep these for minutes: the relay's return must not.
    let fu = many_customers(
        &stack,
        "[outbox]\nretry_initial = \"30s\"\nretry_max = \"1h\"\n",
    );
    stack.smtp_down();
    let (daemon, log) = fu.spawn_logged();
    let n: usize = 20;
    for i in 0..n {
        complain(&stack, "outage", i, "Nothing works.");
    }
    eventually(
        "every complaint is an incident",
        Duration::from_secs(60),
        || fu.database.exists() && fu.incidents().len() == n,
    );
    eventually_logged(
        "the outage is logged",
        Duration::from_secs(30),
        &log,
        || read_log(&log).contains("SMTP relay unreachable"),
    );
    // Long enough for every mail to have failed, and for a per-mail backoff to have grown.
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(answers(&stack, "outage").len(), 0);

    stack.smtp_up();
    let back = Instant::now();
    eventually(
        "every acknowledgement reaches the relay",
        Duration::from_secs(10),
        || fu.count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == n as i64,
    );
    let took = back.elapsed();
    let answered = stack.wait_for_mail(CUSTOMER, n);
    assert_eq!(answered.len(), n, "each customer answered once");
    assert!(read_log(&log).contains("SMTP relay answers again; sending the queue"));
    eprintln!(
        "{n} acknowledgements sent {:.1} s after the relay returned",
        took.as_secs_f64()
    );
    daemon.stop();
}

/// The project's fault bench in its short form, for what the tests above and in spine.rs do not
/// already cover: SIGKILL at random moments with the shortest grace `check` accepts, and
/// SIGTERM during a burst, each against its own stack. The outages and the full disk are the
/// tests above; the long form's figures are in the notes.
#[test]
fn the_fault_bench_short_form_loses_nothing_and_doubles_nothing() {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/chaos"))
        .args(["--short", "kills", "sigterm"])
        .args(["--binary", env!("CARGO_BIN_EXE_followupd")])
        .output()
        .expect("run scripts/chaos");
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(
        out.status.success(),
        "scripts/chaos found loss or duplicates:\n{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for run in ["kills-1", "sigterm"] {
        let line = table
            .lines()
            .find(|l| l.starts_with(run))
            .unwrap_or_else(|| panic!("no result for {run}:\n{table}"));
        if line.contains("skipped") {
            continue;
        }
        let figures: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            (figures[2], figures[3]),
            ("0", "0"),
            "{run}: lost and duplicated"
        );
    }
}
