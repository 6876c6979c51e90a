//! `followupd check`: an admin's typo or a broken template is reported with file, line and
//! reason, before the daemon ever runs.

use std::path::Path;
use std::process::Command;

use crate::harness::copy_tree;

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_followupd"))
        .arg("--config")
        .arg(config)
        .arg("check")
        .output()
        .expect("run followupd check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_config(dir: &Path, templates: &Path, extra_imap: &str) -> std::path::PathBuf {
    let path = dir.join("followupd.toml");
    std::fs::write(
        &path,
        format!(
            r#"[imap]
host = "127.0.0.1"
tls = "none"
username = "support@example.test"
{extra_imap}
[smtp]
host = "127.0.0.1"
tls = "none"

[support]
address = "support@example.test"
name = "Example Support"

[database]
path = "state/followupd.db"

[templates]
dir = "{}"
"#,
            templates.display()
        ),
    )
    .expect("write config");
    path
}

fn shipped_templates() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

#[test]
fn check_passes_on_a_good_config_and_the_shipped_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &shipped_templates(), "");
    let (ok, text) = check(&config);
    assert!(ok, "{text}");
    assert!(text.contains("templates"), "{text}");
    // Works, but not what an admin wants: said, without failing.
    for warning in [
        "warning    [intake] trusted_authserv_id is not set: no sender can be verified",
        "\"microsoft365\", \"google\"",
        "warning    [staff] members is empty",
    ] {
        assert!(text.contains(warning), "{warning}: {text}");
    }
    let listening = dir.path().join("open.toml");
    std::fs::write(
        &listening,
        std::fs::read_to_string(&config).expect("config")
            + "\n[metrics]\nenabled = true\nlisten = \"0.0.0.0:9187\"\n",
    )
    .expect("write");
    let (ok, text) = check(&listening);
    assert!(ok, "{text}");
    assert!(
        text.contains("[metrics] listen = \"0.0.0.0:9187\" is reachable from other machines"),
        "{text}"
    );
}

#[test]
fn check_names_file_line_and_key_of_a_typo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &shipped_templates(),
        "poll_intervall = \"30s\"\n",
    );
    let (ok, text) = check(&config);
    assert!(!ok, "a typo must fail check");
    let expected = format!("{}:5:", config.display());
    assert!(text.contains(&expected), "wanted {expected} in: {text}");
    assert!(text.contains("poll_intervall"), "{text}");
}

#[test]
fn check_reports_a_broken_template_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("templates");
    copy_tree(&shipped_templates(), &templates);
    let text_template = templates.join("acknowledgement.text.hbs");
    let original = std::fs::read_to_string(&text_template).expect("read");
    std::fs::write(
        &text_template,
        format!("{original}\nYour engineer is {{{{engineer.name}}}}.\n"),
    )
    .expect("write");
    let config = write_config(dir.path(), &templates, "");
    let (ok, text) = check(&config);
    assert!(!ok, "an unknown variable must fail check");
    let line = original.lines().count() + 2;
    let expected =
        format!("acknowledgement.text.hbs line {line}: unknown variable `engineer.name`");
    assert!(text.contains(&expected), "wanted `{expected}` in: {text}");
}

#[test]
fn check_names_a_broken_partial_once_as_the_file_it_is_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("templates");
    copy_tree(&shipped_templates(), &templates);
    // The German greeting is used by every German customer mail; the error is in it.
    std::fs::write(
        templates.join("de/partials/greeting.hbs"),
        "Hallo {{customer.vorname}},\n",
    )
    .expect("write");
    let config = write_config(dir.path(), &templates, "");
    let (ok, text) = check(&config);
    assert!(!ok, "{text}");
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("unknown variable `customer.vorname`"))
        .collect();
    assert_eq!(hits.len(), 1, "reported once: {text}");
    assert!(hits[0].contains("de/partials/greeting.hbs"), "{text}");
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
#[cfg(unix)]
fn check_refuses_a_password_file_others_may_read_and_a_ca_file_that_is_not_pem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("imap.password");
    std::fs::write(&password, "hunter2\n").expect("write");
    chmod(&password, 0o644);
    let config = write_config(
        dir.path(),
        &shipped_templates(),
        &format!("password_file = \"{}\"\n", password.display()),
    );
    let (ok, text) = check(&config);
    assert!(!ok, "a world-readable password must fail check: {text}");
    let expected = format!("{}:5:", config.display());
    assert!(text.contains(&expected), "wanted {expected} in: {text}");
    assert!(
        text.contains("open to everyone") && text.contains("chmod o-rwx"),
        "says why and how to fix it: {text}"
    );
    chmod(&password, 0o600);
    let (ok, text) = check(&config);
    assert!(ok, "{text}");

    let not_pem = dir.path().join("ca.crt");
    std::fs::write(&not_pem, [0x30u8, 0x82, 0x01, 0x0a, 0x02, 0x82]).expect("write");
    let text = std::fs::read_to_string(&config).expect("config").replace(
        "[smtp]\nhost = \"127.0.0.1\"\n",
        &format!(
            "[smtp]\nhost = \"127.0.0.1\"\nca_file = \"{}\"\n",
            not_pem.display()
        ),
    );
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("ca_file"))
        .expect("ca_file line");
    std::fs::write(&config, text).expect("write");
    let (ok, text) = check(&config);
    assert!(!ok, "a CA file that is not PEM must fail check: {text}");
    let expected = format!("{}:{line}:", config.display());
    assert!(
        text.contains(&expected) && text.contains("no usable PEM certificate"),
        "wanted {expected} in: {text}"
    );
}

#[test]
#[cfg(unix)]
fn a_fresh_database_and_key_are_private_outside_systemd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &shipped_templates(), "");
    // Whatever the umask of the shell that starts it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022 && exec {} --config {} incidents",
            env!("CARGO_BIN_EXE_followupd"),
            config.display()
        ))
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let state = dir.path().join("state");
    let db = state.join("followupd.db");
    assert_eq!(mode_of(&db), 0o600, "database");
    for side in ["followupd.db-wal", "followupd.db-shm"] {
        let path = state.join(side);
        if path.exists() {
            assert_eq!(mode_of(&path), 0o600, "{side}");
        }
    }
    // An existing database others can read (an older version, a copy by hand): made private,
    // with a warning naming it.
    chmod(&db, 0o644);
    let out = Command::new(env!("CARGO_BIN_EXE_followupd"))
        .arg("--config")
        .arg(&config)
        .arg("incidents")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode_of(&db), 0o640, "database");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("readable by everyone (mode 0644); made private")
            && log.contains("followupd.db"),
        "{log}"
    );
    chmod(&db, 0o600);
    // The key is made by the first command that needs it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022 && exec {} --config {} check",
            env!("CARGO_BIN_EXE_followupd"),
            config.display()
        ))
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("created on first run"));
    let key = state.join("secret.key");
    chmod(&state, 0o700);
    std::fs::write(&key, [7u8; 32]).expect("key");
    chmod(&key, 0o644);
    let (ok, text) = check(&config);
    assert!(!ok, "a key others may read is refused: {text}");
    assert!(
        text.contains("secret.key") && text.contains("chmod"),
        "{text}"
    );
}

/// `check --connect` against a real stack: each failure is one line naming the server, what it
/// answered and what to fix.
#[test]
fn check_connect_names_a_wrong_imap_password_and_an_unreachable_smtp_port_in_one_line_each() {
    use crate::harness::{MailStack, Tls};
    let stack = MailStack::start();
    let fu = crate::harness::Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    // One mail through the stack's Postfix: its sender check signs it.
    crate::harness::order_never_arrived(&stack, "ann@example.test", "c1@client.example.test", 1);
    crate::harness::eventually(
        "the complaint reaches the support mailbox",
        std::time::Duration::from_secs(15),
        || !stack.mailbox(crate::harness::SUPPORT).is_empty(),
    );
    let out = fu.run(&["check", "--connect"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("imap login") && text.contains("ok, logged in with LOGIN"),
        "{text}"
    );
    assert!(
        text.contains("the newest 1 messages carry Authentication-Results from mail.example.test (1); trusted_authserv_id = \"mail.example.test\" matches"),
        "{text}"
    );
    assert!(
        text.contains("smtp login") && text.contains("ok, EHLO, STARTTLS"),
        "{text}"
    );
    assert!(
        text.contains("database") && text.contains("ok, opened for writing"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("smtp ca") && l.contains("ok,") && l.contains("1 certificate")),
        "{text}"
    );

    let wrong = stack.dir.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    // A port nobody listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = std::fs::read_to_string(&fu.config).expect("config");
    let config = config
        .replace(stack.var("PASSWORD_FILE"), wrong.to_str().expect("utf-8"))
        .replace(
            &format!("port = {}\ntls = \"starttls\"", stack.port("SMTP_PORT")),
            &format!("port = {closed}\ntls = \"starttls\""),
        );
    std::fs::write(&fu.config, config).expect("config");
    let out = fu.run(&["check", "--connect"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    let line = |what: &str| {
        text.lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line in:\n{text}"))
            .to_string()
    };
    let imap = line("imap login");
    assert!(
        imap.contains("FAILED") && imap.contains("refused the password for support@example.test"),
        "{imap}"
    );
    assert!(
        imap.contains("AUTHENTICATIONFAILED") && imap.contains("password_file"),
        "{imap}"
    );
    let smtp = line("smtp login");
    assert!(
        smtp.contains("FAILED") && smtp.contains(&format!("localhost:{closed}")),
        "{smtp}"
    );
    assert!(
        smtp.contains("cannot connect") && smtp.contains("Connection refused"),
        "{smtp}"
    );
    assert!(smtp.contains("check [smtp] host and port"), "{smtp}");
}

#[test]
fn check_connect_names_a_ca_file_that_is_not_pem_in_one_line() {
    use crate::harness::{MailStack, Tls};
    let stack = MailStack::start();
    let fu = crate::harness::Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    // A DER file, or a key, where the CA certificate belongs: a common mistake.
    let bad = stack.dir.path().join("ca.der");
    std::fs::write(&bad, b"0\x82\x03\x1a0\x82\x02\x02\xa0\x03not pem at all").expect("write");
    let config = std::fs::read_to_string(&fu.config).expect("config");
    // Only [smtp]'s ca_file (the second one) goes bad.
    let ca_line = format!("ca_file = \"{}\"", stack.var("CA_FILE"));
    let at = config.rfind(&ca_line).expect("smtp ca_file line");
    let config = format!(
        "{}ca_file = \"{}\"{}",
        &config[..at],
        bad.display(),
        &config[at + ca_line.len()..]
    );
    std::fs::write(&fu.config, config).expect("config");
    let out = fu.run(&["check", "--connect"]);
    assert!(!out.status.success());
    // Refused with the configuration, before any connection: one line, with the file and line
    // of the key, the file it names and what is wrong with it.
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 1, "{said}");
    let line = lines[0];
    assert!(
        line.contains(&format!("{}:16: [smtp] ca_file", fu.config.display())),
        "{line}"
    );
    assert!(line.contains(&bad.display().to_string()), "{line}");
    assert!(
        line.contains("no usable PEM certificate: no CERTIFICATE block found"),
        "{line}"
    );
}
