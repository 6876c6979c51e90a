//! The test harness: a real Dovecot + Postfix per test (scripts/mailstack) in its own temp dir,
//! the real `followupd` binary, and an IMAP client to look at mailboxes as a customer would.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value;

pub const SUPPORT: &str = "support@example.test";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A private mail stack, stopped when dropped.
pub struct MailStack {
    pub dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl MailStack {
    pub fn start() -> MailStack {
        Self::start_with(&[])
    }

    /// A stack started with extra `scripts/mailstack start` options (`--oauth2`, `--no-idle`).
    pub fn start_with(options: &[&str]) -> MailStack {
        // Short path under /tmp: unix sockets inside it are limited to 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("fu")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let out = Command::new(repo().join("scripts/mailstack"))
            .arg("start")
            .arg(dir.path().join("ms"))
            .arg("--free-ports")
            .args(options)
            .output()
            .expect("run scripts/mailstack");
        assert!(
            out.status.success(),
            "mailstack start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MailStack { dir, env }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("mailstack did not report {key}"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.var(key).parse().expect("port number")
    }

    pub fn stack_dir(&self) -> PathBuf {
        self.dir.path().join("ms")
    }

    pub fn password(&self) -> String {
        std::fs::read_to_string(self.var("PASSWORD_FILE")).expect("password file")
    }

    /// Acts on the stack's OAuth2 provider (`scripts/mailstack oauth2 DIR ACTION ARGS`);
    /// returns what it printed.
    pub fn oauth2(&self, action: &str, args: &[&str]) -> String {
        let dir = self.stack_dir();
        let mut all = vec!["oauth2", dir.to_str().expect("utf-8 path"), action];
        all.extend_from_slice(args);
        self.script(&all, None)
    }

    /// The provider's counters (`/admin/stats`): grants, refusals, introspections.
    pub fn oauth2_stats(&self) -> Value {
        serde_json::from_str(&self.oauth2("stats", &[])).expect("stats JSON")
    }

    /// Ends the user's IMAP sessions, as a provider does when it revokes a sign-in.
    pub fn kick(&self, user: &str) {
        let dir = self.stack_dir();
        self.script(&["kick", dir.to_str().expect("utf-8 path"), user], None);
    }

    pub fn imap_down(&self) {
        let dir = self.stack_dir();
        self.script(&["imap-down", dir.to_str().expect("utf-8 path")], None);
    }

    pub fn imap_up(&self) {
        let dir = self.stack_dir();
        self.script(&["imap-up", dir.to_str().expect("utf-8 path")], None);
    }

    /// One of the stack's logs: `dovecot`, `postfix` or `oauth2`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.stack_dir().join(format!("log/{name}.log")))
            .unwrap_or_default()
    }

    fn script(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let mut child = Command::new(repo().join("scripts/mailstack"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run scripts/mailstack");
        if let Some(bytes) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bytes)
                .expect("write message");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("mailstack");
        assert!(
            out.status.success(),
            "mailstack {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Sends a message through the real Postfix, as a customer's mail server would.
    pub fn send(&self, from: &str, to: &str, raw: &str) {
        let dir = self.stack_dir();
        self.script(
            &["send", dir.to_str().expect("utf-8 path"), from, to],
            Some(raw.as_bytes()),
        );
    }

    /// Sends through the real Postfix from another loopback address: a server that is not the
    /// real one of `from`'s domain (the stack's sender check fails it where DMARC is published).
    pub fn send_from(&self, ip: &str, from: &str, to: &str, raw: &str) {
        let dir = self.stack_dir();
        self.script(
            &[
                "send",
                "--from-ip",
                ip,
                dir.to_str().expect("utf-8 path"),
                from,
                to,
            ],
            Some(raw.as_bytes()),
        );
    }

    /// The stack's OAuth2 provider and its clients, as `[oauth2]` lines for followupd:
    /// the confidential client with its secret.
    pub fn oauth2_section(&self, grant: &str) -> String {
        format!(
            "token_url = \"{}\"\ndevice_url = \"{}\"\nauthorize_url = \"{}\"\nclient_id = \"{}\"\n\
             client_secret_file = \"{}\"\nscope = \"mail\"\ngrant = \"{grant}\"\n",
            self.var("OAUTH2_TOKEN_URL"),
            self.var("OAUTH2_DEVICE_URL"),
            self.var("OAUTH2_AUTHORIZE_URL"),
            self.var("OAUTH2_CLIENT_ID"),
            self.var("OAUTH2_CLIENT_SECRET_FILE"),
        )
    }

    pub fn smtp_down(&self) {
        let dir = self.stack_dir();
        self.script(&["smtp-down", dir.to_str().expect("utf-8 path")], None);
    }

    pub fn smtp_up(&self) {
        let dir = self.stack_dir();
        self.script(&["smtp-up", dir.to_str().expect("utf-8 path")], None);
    }

    /// Puts `raw` into a mailbox as the stack's receiving server delivers a mail whose sender
    /// it verified: with its `Authentication-Results` on top (DMARC pass for the From domain),
    /// and otherwise the exact bytes. For a customer's mail whose words a test checks.
    pub fn deliver(&self, user: &str, raw: &[u8]) {
        let from = mail_parser::MessageParser::default()
            .parse(raw)
            .and_then(|m| {
                m.from()
                    .and_then(|f| f.first())
                    .and_then(|a| a.address().map(str::to_string))
            })
            .unwrap_or_default();
        let domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        let mut stamped = format!(
            "Authentication-Results: {}; spf=pass smtp.mailfrom={domain}; dmarc=pass \
             header.from={domain}\r\n",
            self.var("AUTHSERV_ID")
        )
        .into_bytes();
        stamped.extend_from_slice(raw);
        self.append(user, &stamped);
    }

    /// Puts exact bytes into a mailbox with IMAP APPEND (no MTA rewriting headers, and no
    /// sender check: followupd cannot verify who sent it).
    pub fn append(&self, user: &str, raw: &[u8]) {
        let raw = raw.to_vec();
        self.imap(user, move |mut session| async move {
            session
                .append("INBOX", None, None, &raw)
                .await
                .expect("APPEND");
            session
        });
    }

    /// Every message in a user's INBOX, raw, read over IMAP without setting \Seen.
    pub fn mailbox(&self, user: &str) -> Vec<Vec<u8>> {
        self.mailbox_named(user, "INBOX")
    }

    /// Every message in one of a user's mailboxes.
    pub fn mailbox_named(&self, user: &str, name: &str) -> Vec<Vec<u8>> {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        let name = name.to_string();
        self.imap(user, move |mut session| async move {
            let mailbox = session.select(&name).await.expect("SELECT");
            if mailbox.exists > 0 {
                let fetches: Vec<_> = session
                    .uid_fetch("1:*", "(UID BODY.PEEK[])")
                    .await
                    .expect("FETCH")
                    .try_collect()
                    .await
                    .expect("FETCH stream");
                let mut sink = sink.lock().expect("lock");
                for f in &fetches {
                    if let Some(body) = f.body() {
                        sink.push(body.to_vec());
                    }
                }
            }
            session
        });
        let messages = out.lock().expect("lock").clone();
        messages
    }

    /// Whether Postfix holds no mail in flight (its incoming, active and maildrop queues are
    /// empty): every mail handed to it so far has been delivered (or deferred for good).
    pub fn postfix_idle(&self) -> bool {
        fn empty(dir: &Path) -> bool {
            std::fs::read_dir(dir).map_or(true, |entries| {
                entries.flatten().all(|e| {
                    let path = e.path();
                    path.is_dir() && empty(&path)
                })
            })
        }
        let spool = self.stack_dir().join("postfix/spool");
        ["incoming", "active", "maildrop"]
            .iter()
            .all(|q| empty(&spool.join(q)))
    }

    /// Waits until Postfix has delivered everything handed to it: after a pass of followupd,
    /// whatever it sent has arrived, so "nothing more arrived" can be asserted.
    pub fn settle(&self) {
        eventually(
            "Postfix delivered what it was given",
            Duration::from_secs(10),
            || self.postfix_idle(),
        );
    }

    /// Waits until the mailbox holds at least `n` messages and Postfix has nothing left in
    /// flight, so that a message that should NOT arrive but was already sent has arrived too
    /// (the callers have let followupd finish its pass: whatever it sent is in Postfix's hands).
    pub fn wait_for_mail(&self, user: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mail = self.mailbox(user);
            if mail.len() >= n {
                let settle = Instant::now() + Duration::from_secs(10);
                while !self.postfix_idle() && Instant::now() < settle {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return self.mailbox(user);
            }
            assert!(
                Instant::now() < deadline,
                "{user} has {} message(s), expected {n}",
                mail.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn imap<F, Fut>(&self, user: &str, body: F)
    where
        F: FnOnce(async_imap::Session<tokio::net::TcpStream>) -> Fut,
        Fut: std::future::Future<Output = async_imap::Session<tokio::net::TcpStream>>,
    {
        let port = self.port("IMAP_PORT");
        let password = self.password();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect IMAP");
            let mut client = async_imap::Client::new(tcp);
            client.read_response().await.expect("greeting");
            let session = client
                .login(user, password)
                .await
                .map_err(|(e, _)| e)
                .expect("LOGIN");
            let mut session = body(session).await;
            let _ = session.logout().await;
        });
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        // For refactors that must not change a word: with FOLLOWUPD_MAIL_DUMP set, every
        // mailbox of the stack is kept under DIR/<test name>/ (scripts/mail-diff compares two).
        if let Some(dump) = std::env::var_os("FOLLOWUPD_MAIL_DUMP") {
            // What the relay still holds lands first: a test may end before its last mail.
            // (No panic here: this may run while a failed test unwinds.)
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.postfix_idle() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let test = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .replace("::", "-");
            let mail = self.stack_dir().join("mail");
            keep_mail(&mail, &Path::new(&dump).join(test));
        }
        let _ = Command::new(repo().join("scripts/mailstack"))
            .arg("stop")
            .arg(self.stack_dir())
            .output();
    }
}

/// How followupd talks to the stack in a test.
#[derive(Clone, Copy)]
pub enum Tls {
    /// IMAPS for intake, STARTTLS for SMTP.
    ImapsAndSmtpStarttls,
    /// STARTTLS for intake, implicit TLS (SMTPS) for SMTP.
    ImapStarttlsAndSmtps,
}

/// A followupd set up against a stack: its config file, database and templates.
pub struct Followupd {
    pub config: PathBuf,
    pub database: PathBuf,
}

impl Followupd {
    pub fn new(stack: &MailStack, tls: Tls) -> Followupd {
        Self::with_extra(stack, tls, "")
    }

    /// `extra` is appended to the generated config (e.g. an [outbox] section).
    pub fn with_extra(stack: &MailStack, tls: Tls, extra: &str) -> Followupd {
        Self::with_poll(stack, tls, "1s", extra)
    }

    /// As [`Followupd::with_extra`], polling the inbox every `poll_interval`.
    pub fn with_poll(stack: &MailStack, tls: Tls, poll_interval: &str, extra: &str) -> Followupd {
        let password_file = stack.var("PASSWORD_FILE");
        Self::with_login(
            stack,
            tls,
            poll_interval,
            &format!("password_file = \"{password_file}\"\n"),
            "",
            extra,
        )
    }

    /// A followupd whose `[imap]` and `[smtp]` sections end with `imap_login` and
    /// `smtp_login` (e.g. `auth = "oauth2"`; the SMTP username is added when it is set).
    pub fn with_login(
        stack: &MailStack,
        tls: Tls,
        poll_interval: &str,
        imap_login: &str,
        smtp_login: &str,
        extra: &str,
    ) -> Followupd {
        let dir = stack.dir.path().join("followupd");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (imap_port, imap_tls, smtp_port, smtp_tls) = match tls {
            Tls::ImapsAndSmtpStarttls => (
                stack.port("IMAPS_PORT"),
                "implicit",
                stack.port("SMTP_PORT"),
                "starttls",
            ),
            Tls::ImapStarttlsAndSmtps => (
                stack.port("IMAP_PORT"),
                "starttls",
                stack.port("SMTPS_PORT"),
                "implicit",
            ),
        };
        let ca = stack.var("CA_FILE");
        let templates = repo().join("templates");
        let extra = trusting_the_stack(extra, stack.var("AUTHSERV_ID"));
        let smtp_user = if smtp_login.is_empty() {
            String::new()
        } else {
            format!("username = \"{SUPPORT}\"\n{smtp_login}")
        };
        let config = format!(
            r#"[imap]
host = "localhost"
port = {imap_port}
tls = "{imap_tls}"
ca_file = "{ca}"
username = "{SUPPORT}"
{imap_login}poll_interval = "{poll_interval}"
timeout = "20s"
reconnect_max = "2s"

[smtp]
host = "localhost"
port = {smtp_port}
tls = "{smtp_tls}"
ca_file = "{ca}"
timeout = "20s"
{smtp_user}
[support]
address = "{SUPPORT}"
name = "Example Support"

[database]
path = "state/followupd.db"

[templates]
dir = "{templates}"
{extra}"#,
            templates = templates.display()
        );
        let path = dir.join("followupd.toml");
        std::fs::write(&path, config).expect("write config");
        Followupd {
            config: path,
            database: dir.join("state/followupd.db"),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_followupd"));
        cmd.arg("--config").arg(&self.config);
        cmd.env("FOLLOWUPD_LOG", "info");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run followupd")
    }

    /// `followupd run --once`, which must succeed.
    pub fn once(&self) -> String {
        let out = self.run(&["run", "--once"]);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "run --once failed:\n{log}");
        log
    }

    /// `followupd run --once` as if it were `at` (the testing clock, `FOLLOWUPD_TEST_NOW`).
    pub fn once_at(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        let out = self.run_at(at, &["run", "--once"]);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "run --once at {at} failed:\n{log}");
        log
    }

    /// Any command with the testing clock set to `at`.
    pub fn run_at(&self, at: chrono::DateTime<chrono::Utc>, args: &[&str]) -> Output {
        self.command_at(at)
            .args(args)
            .output()
            .expect("run followupd")
    }

    /// A command with the testing clock set to `at`.
    pub fn command_at(&self, at: chrono::DateTime<chrono::Utc>) -> Command {
        let mut cmd = self.command();
        cmd.env(
            "FOLLOWUPD_TEST_NOW",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        cmd
    }

    /// The daemon in the background, its log going to `log` (read it with [`read_log`]);
    /// stopped when the guard is dropped, also when the test fails.
    pub fn spawn_logged(&self) -> (Running, PathBuf) {
        let log = self
            .config
            .parent()
            .expect("config dir")
            .join(format!("daemon-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = self
            .command()
            .args(["run"])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn followupd run");
        (Running(Some(child)), log)
    }

    /// As [`Followupd::spawn_logged`], with extra environment (`NOTIFY_SOCKET`, …); the log
    /// is appended to, so a second daemon on the same config keeps the first one's lines.
    pub fn spawn_logged_with(&self, env: &[(&str, &str)]) -> (Running, PathBuf) {
        let log = self
            .config
            .parent()
            .expect("config dir")
            .join(format!("daemon-{}.log", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = self
            .command()
            .args(["run"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn followupd run");
        (Running(Some(child)), log)
    }

    /// The daemon in the background, killed when the guard is dropped (also when the test
    /// fails); used as the `Child` it wraps.
    pub fn spawn(&self) -> Running {
        Running::new(
            self.command()
                .args(["run"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn followupd run"),
        )
    }

    /// Waits until followupd has nothing left to send (no mail queued, in doubt or in flight)
    /// and Postfix has delivered what it was given: a mail sent twice would be in its
    /// mailbox by then. Used instead of "wait a while" before counting what arrived.
    pub fn nothing_left_to_send(&self, stack: &MailStack) {
        eventually(
            "followupd has nothing queued or in flight",
            Duration::from_secs(60),
            || self.count("SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'sending')") == 0,
        );
        stack.settle();
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "followupd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    pub fn incidents(&self) -> Vec<Value> {
        self.json(&["incidents", "--json"])
            .as_array()
            .expect("array")
            .clone()
    }

    pub fn incident(&self, n: i64) -> Value {
        self.json(&["incident", "show", &n.to_string(), "--json"])
    }

    /// A read-only look at the database, for facts the CLI does not print.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            &self.database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open database")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// A daemon the test started: SIGTERM with [`Running::stop`], killed if the test panics first.
pub struct Running(Option<Child>);

impl Running {
    /// A daemon the test spawned itself (with its own stderr, say).
    pub fn new(child: Child) -> Running {
        Running(Some(child))
    }

    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (`HUP`, …) to the daemon.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether the daemon is still running.
    pub fn alive(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, as systemd stops it, and wait for it to finish.
    pub fn stop(mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a running daemon")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running daemon")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies the messages (maildir `cur/` and `new/` files) under `from`, best effort: it runs
/// while a stack is dropped, perhaps during a failed test's unwinding.
fn keep_mail(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            keep_mail(&path, &to.join(&name));
        } else if path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "cur" || d == "new")
        {
            let _ = std::fs::create_dir_all(to);
            let _ = std::fs::copy(&path, to.join(&name));
        }
    }
}

pub fn read_log(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Copies a directory tree (the shipped templates: kinds, partials, staff/, de/).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

/// `customer` writes, through the stack's Postfix, that order `n` never arrived.
pub fn order_never_arrived(stack: &MailStack, customer: &str, message_id: &str, n: u32) {
    stack.send(
        customer,
        SUPPORT,
        &complaint(
            customer,
            message_id,
            &format!("Order {n} never arrived"),
            "Hello,\r\n\r\nmy parcel never came.\r\n",
        ),
    );
}

/// A complaint as a customer's mail client would write it.
pub fn complaint(from: &str, message_id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

pub fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parseable message")
}

pub fn header<'a>(msg: &'a mail_parser::Message<'_>, name: &str) -> Option<&'a str> {
    msg.headers_raw()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Whether `incident show --json` output has an event of this kind.
pub fn has_event(shown: &Value, kind: &str) -> bool {
    shown["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|e| e["kind"] == kind))
}

/// As [`eventually`], showing the daemon's log if it times out.
pub fn eventually_logged(
    what: &str,
    timeout: Duration,
    log: &std::path::Path,
    mut check: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\n--- daemon log ---\n{}",
            read_log(log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tests this run skipped, reported when the test binary exits (after the summary).
static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

extern "C" fn report_skips() {
    if let Ok(list) = SKIPPED.lock() {
        if !list.is_empty() {
            eprintln!("\ne2e: {} test(s) SKIPPED on this machine:", list.len());
            for line in list.iter() {
                eprintln!("  SKIPPED {line}");
            }
        }
    }
}

/// This machine lacks what the calling test needs (`why`). CI runs every test, so by default
/// that is a failure saying what is missing; with `FOLLOWUPD_ALLOW_SKIPS=1` (a developer's
/// machine without it) the test is skipped, and the skips are counted and named after the
/// suite's summary. Returns only when skipping is allowed.
pub fn cannot_run_here(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    assert!(
        std::env::var("FOLLOWUPD_ALLOW_SKIPS").as_deref() == Ok("1"),
        "{test} cannot run on this machine: {why}. CI runs every test; where this machine \
         cannot, set FOLLOWUPD_ALLOW_SKIPS=1 to skip such tests (they are listed at the end)"
    );
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a plain function with no arguments to run at exit.
        unsafe {
            libc::atexit(report_skips);
        }
    });
    if let Ok(mut list) = SKIPPED.lock() {
        list.push(format!("{test}: {why}"));
    }
    eprintln!("SKIPPED: {why}");
}

/// Waits until `check` holds, polling; panics with `what` after the timeout.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `extra` with `[intake] trusted_authserv_id` naming the stack's receiving server (its sender
/// check stamps every mail sent through it), as an admin sets it up, unless `extra` names one
/// itself. TOML allows one `[intake]` table: the key goes into the test's own if it has one.
fn trusting_the_stack(extra: &str, authserv_id: &str) -> String {
    if extra.contains("trusted_authserv_id") {
        return extra.to_string();
    }
    let line = format!("trusted_authserv_id = \"{authserv_id}\"\n");
    match extra.find("[intake]\n") {
        Some(at) => {
            let after = at + "[intake]\n".len();
            format!("{}{line}{}", &extra[..after], &extra[after..])
        }
        None => format!("{extra}\n[intake]\n{line}"),
    }
}
