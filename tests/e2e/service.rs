//! followupd as a systemd service: readiness, a status line, the watchdog, and reload. PID 1
//! is not systemd here, so each test plays systemd's part itself: a unix datagram socket named
//! by `NOTIFY_SOCKET`, read as systemd reads it.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::*;

const ANN: &str = "ann@example.test";

/// systemd's end of the notification socket.
struct Systemd {
    socket: UnixDatagram,
    path: PathBuf,
    /// Every notification received, in order.
    seen: Vec<String>,
}

impl Systemd {
    fn listen(dir: &Path) -> Systemd {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Systemd {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    fn env(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads what arrives for `wait`; returns it (also kept in `seen`).
    fn read_for(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
        }
        self.seen.extend(got.iter().cloned());
        got
    }

    /// Reads until a notification satisfies `want`; returns it.
    fn wait_for(&mut self, what: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                self.seen.push(text.clone());
                if want(&text) {
                    return text;
                }
            }
        }
        panic!("timed out waiting for {what}; received: {:?}", self.seen);
    }
}

fn send_complaint(stack: &MailStack, n: u32) {
    order_never_arrived(stack, ANN, &format!("svc-{n}@client.example.test"), n);
}

/// Dovecot's master process and everything it started (login and IMAP processes).
fn dovecot_processes(stack: &MailStack) -> Vec<u32> {
    let master: u32 = std::fs::read_to_string(stack.stack_dir().join("run/master.pid"))
        .expect("dovecot master.pid")
        .trim()
        .parse()
        .expect("pid");
    let mut all = vec![master];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) && !all.contains(&pid) {
                all.push(pid);
            }
        }
        i += 1;
    }
    all
}

fn signal_all(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

#[test]
fn the_daemon_reports_ready_and_a_status_line_and_a_stuck_intake_stops_the_watchdog() {
    let stack = MailStack::start();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        "[service]\nstall_after = \"3s\"\n",
    );
    let mut systemd = Systemd::listen(stack.dir.path());
    let (mut daemon, log) = fu.spawn_logged_with(&[
        ("NOTIFY_SOCKET", &systemd.env()),
        ("WATCHDOG_USEC", "1000000"),
    ]);
    systemd.wait_for("READY=1", Duration::from_secs(20), |m| m == "READY=1");
    assert!(
        read_log(&log).contains("ready: IMAP reached"),
        "{}",
        read_log(&log)
    );
    systemd.wait_for("a status line", Duration::from_secs(10), |m| {
        m.starts_with("STATUS=0 open incidents, 0 queued, last poll ")
    });

    send_complaint(&stack, 1);
    let status = systemd.wait_for(
        "the complaint in the status",
        Duration::from_secs(30),
        |m| m.starts_with("STATUS=1 open incident, "),
    );
    assert!(status.contains("s ago"), "{status}");
    let pings = systemd.read_for(Duration::from_secs(3));
    assert!(
        pings.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
        "the watchdog is fed while all is well: {pings:?}"
    );

    // Dovecot stops answering mid-session: intake hangs in a read (until its 20 s timeout),
    // longer than stall_after.
    let dovecot = dovecot_processes(&stack);
    signal_all(&dovecot, "STOP");
    eventually_logged(
        "the stall is noticed",
        Duration::from_secs(15),
        &log,
        || {
            let logged = read_log(&log);
            logged.contains("a task has not come round its loop")
                && logged.contains("stuck=intake (")
        },
    );
    // Whatever was in flight when the stall was noticed, then silence.
    systemd.read_for(Duration::from_millis(300));
    let quiet = systemd.read_for(Duration::from_secs(4));
    signal_all(&dovecot, "CONT");
    assert!(
        !quiet.iter().any(|m| m == "WATCHDOG=1"),
        "no watchdog pings while intake is stuck: {quiet:?}\n{}",
        read_log(&log)
    );
    // Once intake moves again (its timeout ends the hung read and it reconnects), the pings
    // come back.
    systemd.wait_for("WATCHDOG=1 again", Duration::from_secs(40), |m| {
        m == "WATCHDOG=1"
    });
    assert!(daemon.alive());
    daemon.stop();
    systemd.read_for(Duration::from_millis(500));
    assert!(
        systemd.seen.iter().any(|m| m == "STOPPING=1"),
        "{:?}",
        systemd.seen
    );
}

/// A copy of the shipped templates the test may edit.
pub(crate) fn own_templates(fu: &Followupd) -> PathBuf {
    let dir = fu.config.parent().expect("dir").join("templates");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        &dir,
    );
    let config = std::fs::read_to_string(&fu.config).expect("config");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    std::fs::write(
        &fu.config,
        config.replace(
            &format!("dir = \"{}\"", shipped.display()),
            &format!("dir = \"{}\"", dir.display()),
        ),
    )
    .expect("config");
    dir
}

/// The text of the `n`th acknowledgement Ann has received.
fn acknowledgement_text(stack: &MailStack, n: usize) -> String {
    let mails = stack.wait_for_mail(ANN, n);
    parse(&mails[n - 1])
        .body_text(0)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[test]
fn a_reload_changes_the_next_acknowledgement_and_a_broken_template_changes_nothing() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let templates = own_templates(&fu);
    let ack = templates.join("acknowledgement.text.hbs");
    let original = std::fs::read_to_string(&ack).expect("template");
    let mut systemd = Systemd::listen(stack.dir.path());
    let (mut daemon, log) = fu.spawn_logged_with(&[("NOTIFY_SOCKET", &systemd.env())]);
    systemd.wait_for("READY=1", Duration::from_secs(20), |m| m == "READY=1");

    std::fs::write(
        &ack,
        format!("A person will read this within the hour.\n{original}"),
    )
    .expect("edit");
    daemon.signal("HUP");
    eventually_logged("the reload", Duration::from_secs(10), &log, || {
        read_log(&log).contains(
            "reloaded: the next step uses the new settings and the next mail the new templates",
        )
    });
    systemd.wait_for("RELOADING=1", Duration::from_secs(5), |m| {
        m == "RELOADING=1"
    });
    send_complaint(&stack, 1);
    let first = acknowledgement_text(&stack, 1);
    assert!(
        first.contains("A person will read this within the hour."),
        "{first}"
    );

    // A typo: an unknown variable on line 2. The reload is refused, file and line logged, and
    // the wording in force stays.
    std::fs::write(
        &ack,
        format!("A person will read this within the hour.\nYour agent is {{{{agent.name}}}}.\n{original}"),
    )
    .expect("break");
    daemon.signal("HUP");
    let expected = format!("{} line 2: unknown variable `agent.name`", ack.display());
    eventually_logged("the refused reload", Duration::from_secs(10), &log, || {
        let text = read_log(&log);
        text.contains(&expected) && text.contains("reload refused: the templates are broken")
    });
    assert!(daemon.alive(), "SIGHUP must not end the daemon");
    send_complaint(&stack, 2);
    let second = acknowledgement_text(&stack, 2);
    assert!(
        second.contains("A person will read this within the hour.") && !second.contains("agent"),
        "{second}"
    );

    // A restart with the typo still there: the daemon runs with the last good set and says so.
    daemon.stop();
    let (daemon, log) = fu.spawn_logged_with(&[]);
    eventually_logged("the loud start", Duration::from_secs(20), &log, || {
        let text = read_log(&log);
        text.contains("THE CONFIGURED TEMPLATES ARE BROKEN") && text.contains(&expected)
    });
    send_complaint(&stack, 3);
    let third = acknowledgement_text(&stack, 3);
    assert!(
        third.contains("A person will read this within the hour.") && !third.contains("agent"),
        "{third}"
    );
    daemon.stop();
}

#[test]
fn a_reload_puts_changed_settings_in_force_and_names_those_that_need_a_restart() {
    const TEAM: &str = "team@example.test";
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let (mut daemon, log) = fu.spawn_logged();
    send_complaint(&stack, 1);
    acknowledgement_text(&stack, 1);
    assert!(stack.mailbox(TEAM).is_empty(), "no staff configured yet");

    // Staff are now told of new incidents (live), and the SMTP timeout changed (it needs a
    // new connection: named, the old value stays).
    let config = std::fs::read_to_string(&fu.config).expect("config");
    let edited = format!("{config}\n[staff]\nnotify = [\"{TEAM}\"]\n").replacen(
        "timeout = \"20s\"\n\n[support]",
        "timeout = \"30s\"\n\n[support]",
        1,
    );
    assert_ne!(
        edited.matches("30s").count(),
        0,
        "the SMTP timeout was edited"
    );
    std::fs::write(&fu.config, edited).expect("edit config");
    daemon.signal("HUP");
    eventually_logged("the reload", Duration::from_secs(10), &log, || {
        let text = read_log(&log);
        text.contains("reloaded: the next step uses the new settings")
            && text.contains("changed=[staff]")
            && text.contains("needs_restart=[smtp]")
    });

    send_complaint(&stack, 2);
    let told = stack.wait_for_mail(TEAM, 1);
    assert_eq!(
        told.len(),
        1,
        "staff told of the incident opened after the reload"
    );
    let subject = parse(&told[0]).subject().unwrap_or("").to_string();
    assert!(subject.contains("Order 2 never arrived"), "{subject}");
    acknowledgement_text(&stack, 2);
    assert!(daemon.alive());
    daemon.stop();
}

/// `GET path` on the metrics listener; the status line and the body.
pub(crate) fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The value of one sample (`name{labels}`) in a scrape.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn metrics_count_a_complaint_its_acknowledgement_and_an_smtp_failure_and_status_agrees() {
    let stack = MailStack::start();
    let port = free_port();
    let fu = Followupd::with_extra(
        &stack,
        Tls::ImapsAndSmtpStarttls,
        &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut systemd = Systemd::listen(stack.dir.path());
    let (daemon, log) = fu.spawn_logged_with(&[("NOTIFY_SOCKET", &systemd.env())]);
    eventually_logged("the daemon is up", Duration::from_secs(20), &log, || {
        read_log(&log).contains("IMAP connected")
    });
    let (status, body) = http_get(port, "/healthz");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.starts_with("ok\nimap connected"), "{body}");
    // 100 clients that connect and say nothing: the load balancer's check is not kept waiting.
    let idle: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let started = std::time::Instant::now();
    let (status, _) = http_get(port, "/healthz");
    let took = started.elapsed();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        took < Duration::from_millis(100),
        "/healthz took {took:?} behind 100 idle connections"
    );
    drop(idle);
    let (_, body) = http_get(port, "/metrics");
    assert_eq!(
        sample(&body, "followupd_messages_total{class=\"human\"}"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(sample(&body, "followupd_imap_up"), Some(1.0), "{body}");

    send_complaint(&stack, 1);
    stack.wait_for_mail(ANN, 1);
    eventually_logged(
        "the scrape shows the complaint and its acknowledgement",
        Duration::from_secs(10),
        &log,
        || {
            let (_, body) = http_get(port, "/metrics");
            sample(&body, "followupd_messages_total{class=\"human\"}") == Some(1.0)
                && sample(&body, "followupd_incidents{state=\"open\"}") == Some(1.0)
                && sample(&body, "followupd_sends_total{result=\"sent\"}") == Some(1.0)
                && sample(&body, "followupd_promises_pending") == Some(1.0)
        },
    );
    let (_, body) = http_get(port, "/metrics");
    assert_eq!(sample(&body, "followupd_smtp_up"), Some(1.0), "{body}");
    assert_eq!(
        sample(&body, "followupd_templates_fallback"),
        Some(0.0),
        "{body}"
    );
    assert!(
        sample(&body, "followupd_last_reload_success_timestamp_seconds").is_some_and(|t| t > 1.7e9),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "followupd_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );

    // The relay goes away: the next acknowledgement waits, a failed attempt is counted.
    stack.smtp_down();
    // Postfix is down: the complaint is put straight into the support mailbox.
    stack.append(
        SUPPORT,
        complaint(
            ANN,
            "svc-2@client.example.test",
            "Order 2 never arrived",
            "Hello,\r\n\r\nmy parcel never came.\r\n",
        )
        .as_bytes(),
    );
    eventually_logged(
        "the scrape shows the SMTP failure",
        Duration::from_secs(30),
        &log,
        || {
            let (_, body) = http_get(port, "/metrics");
            sample(&body, "followupd_incidents{state=\"open\"}") == Some(2.0)
                && sample(&body, "followupd_sends_total{result=\"retry\"}")
                    .is_some_and(|n| n >= 1.0)
                && sample(&body, "followupd_outbox_depth") == Some(1.0)
                && sample(&body, "followupd_smtp_up") == Some(0.0)
        },
    );
    let (_, body) = http_get(port, "/metrics");
    let retries = sample(&body, "followupd_sends_total{result=\"retry\"}").unwrap_or(0.0);
    let out = fu.run(&["status"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("incidents   2 open, 0 waiting, 0 resolved, 0 closed"),
        "{said}"
    );
    assert!(
        said.contains("outbox      1 queued (oldest queued "),
        "{said}"
    );
    // The daemon may have retried once more between the scrape and `status`.
    let said_retries: f64 = said
        .lines()
        .find_map(|l| l.strip_prefix("sends       1 sent, "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1.0);
    assert!(said_retries >= retries, "{said} vs {retries}");
    assert!(said.contains("messages    2 human"), "{said}");
    assert!(said.contains("daemon      ok; imap connected"), "{said}");
    let (status, _) = http_get(port, "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    systemd.wait_for(
        "the relay in the status line",
        Duration::from_secs(15),
        |m| {
            m.starts_with("STATUS=2 open incidents, 1 queued, last poll ")
                && m.contains("; SMTP relay unreachable: ")
        },
    );

    // IMAP goes away too: the status line, /healthz and /metrics say so.
    stack.imap_down();
    systemd.wait_for("IMAP in the status line", Duration::from_secs(20), |m| {
        m.starts_with("STATUS=") && m.contains("; IMAP down: ")
    });
    let (status, body) = http_get(port, "/healthz");
    assert_eq!(
        status, "HTTP/1.1 200 OK",
        "IMAP down is not the daemon's ill health: {body}"
    );
    assert!(body.contains("imap down: "), "{body}");
    let (_, body) = http_get(port, "/metrics");
    assert_eq!(sample(&body, "followupd_imap_up"), Some(0.0), "{body}");
    daemon.stop();
    stack.imap_up();
    stack.smtp_up();
}

#[test]
fn debug_logs_show_the_imap_and_smtp_conversation_and_never_the_password() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let (daemon, log) = fu.spawn_logged_with(&[("FOLLOWUPD_LOG", "debug")]);
    send_complaint(&stack, 1);
    stack.wait_for_mail(ANN, 1);
    eventually_logged("the send is logged", Duration::from_secs(10), &log, || {
        read_log(&log).contains("SMTP < 250")
    });
    daemon.stop();
    let text = read_log(&log);
    for step in [
        "IMAP > logging in",
        "IMAP > SELECT",
        "IMAP < SELECT OK",
        "IMAP > UID FETCH",
        "SMTP > EHLO",
        "SMTP > STARTTLS",
        "SMTP > MAIL FROM:<",
        "RCPT TO: 2 recipient(s)",
    ] {
        assert!(text.contains(step), "no `{step}` in the debug log:\n{text}");
    }
    let password = stack.password();
    let password = password.trim();
    assert!(password.len() >= 8, "a real password to look for");
    assert!(!text.contains(password), "the password reached the log");
}

/// The journal's socket, played by the test: `src/journal.rs` writes to this fixed path.
struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
    made_dir: bool,
}

impl Journal {
    /// None when a real journald owns the path (its socket is not ours to read).
    fn listen() -> Option<Journal> {
        let dir = Path::new("/run/systemd/journal");
        let path = dir.join("socket");
        if path.exists() {
            cannot_run_here(&format!("a real journald listens at {}", path.display()));
            return None;
        }
        let made_dir = !dir.exists();
        std::fs::create_dir_all(dir).expect("mkdir /run/systemd/journal");
        let socket = UnixDatagram::bind(&path).expect("bind the journal socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Some(Journal {
            socket,
            path,
            made_dir,
        })
    }

    /// Every entry received for `wait`, each as `KEY=value` lines.
    fn entries(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                out.push(native_entry(&buf[..n]));
            }
        }
        out
    }
}

/// journald's native protocol (systemd.journal-fields(7), "native protocol"): `KEY=value\n`,
/// or `KEY\n` + 64-bit little-endian length + value + `\n` for values that may hold newlines.
fn native_entry(mut bytes: &[u8]) -> String {
    let mut out = String::new();
    while !bytes.is_empty() {
        let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'=') else {
            break;
        };
        let key = String::from_utf8_lossy(&bytes[..end]).to_string();
        let value;
        if bytes[end] == b'=' {
            let rest = &bytes[end + 1..];
            let stop = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            value = String::from_utf8_lossy(&rest[..stop]).to_string();
            bytes = rest.get(stop + 1..).unwrap_or_default();
        } else {
            let rest = &bytes[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().expect("length")) as usize;
            value = String::from_utf8_lossy(&rest[8..8 + len]).to_string();
            bytes = rest.get(8 + len + 1..).unwrap_or_default();
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if self.made_dir {
            let _ = std::fs::remove_dir(self.path.parent().expect("dir"));
        }
    }
}

#[test]
fn under_systemd_log_levels_become_journal_priorities_with_incident_and_uid_fields() {
    use std::os::unix::fs::MetadataExt;
    let Some(journal) = Journal::listen() else {
        return;
    };
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    // systemd sets JOURNAL_STREAM to the device and inode of the stream it gave as stderr.
    let log = stack.dir.path().join("stderr");
    let file = std::fs::File::create(&log).expect("log");
    let meta = std::fs::metadata(&log).expect("stat");
    let daemon = Running::new(
        fu.command()
            .arg("run")
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn"),
    );
    send_complaint(&stack, 1);
    stack.wait_for_mail(ANN, 1);
    stack.imap_down();
    let entries = journal.entries(Duration::from_secs(4));
    daemon.stop();
    stack.imap_up();
    let opened = entries
        .iter()
        .find(|e| e.contains("new incident opened"))
        .unwrap_or_else(|| panic!("no incident entry in {entries:#?}"));
    // tracing-journald's mapping: ERROR 3, WARN 4, INFO 5 (notice), DEBUG 6, TRACE 7.
    assert!(opened.contains("PRIORITY=5\n"), "{opened}");
    assert!(opened.contains("FOLLOWUPD_INCIDENT=1\n"), "{opened}");
    assert!(opened.contains("FOLLOWUPD_UID=1\n"), "{opened}");
    assert!(opened.contains("SYSLOG_IDENTIFIER=followupd\n"), "{opened}");
    // What `journalctl` shows is MESSAGE alone: the facts are in it too.
    assert!(
        opened.contains("MESSAGE=new incident opened uid=1 incident=1\n"),
        "{opened}"
    );
    let sent = entries
        .iter()
        .find(|e| e.contains("mail sent"))
        .unwrap_or_else(|| panic!("no send entry in {entries:#?}"));
    assert!(sent.contains("FOLLOWUPD_MESSAGE_ID=fu."), "{sent}");
    let lost = entries
        .iter()
        .find(|e| e.contains("IMAP connection lost") || e.contains("intake failed"))
        .unwrap_or_else(|| panic!("no IMAP trouble entry in {entries:#?}"));
    assert!(
        lost.contains("PRIORITY=4\n") || lost.contains("PRIORITY=3\n"),
        "{lost}"
    );
    let message = lost
        .lines()
        .find(|l| l.starts_with("MESSAGE="))
        .unwrap_or_default();
    assert!(
        message.contains(" error="),
        "the cause is in the message: {lost}"
    );
    // Nothing went to stderr as plain lines meanwhile.
    assert!(
        !read_log(&log).contains("new incident opened"),
        "{}",
        read_log(&log)
    );
}
