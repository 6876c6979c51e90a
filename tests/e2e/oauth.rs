//! Signing in with OAuth2, end to end: a real Dovecot that checks every bearer token with a real
//! OAuth2 provider on loopback (scripts/mailstack-oauth2), which issues, expires and revokes
//! tokens as Microsoft's and Google's do. Every test that fails a login on purpose has its own
//! stack: Dovecot delays the next login from the same address after a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;

const ANN: &str = "ann@example.test";
const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";

/// `[imap]` and `[smtp]` both signing in with the shared `[oauth2]` section.
fn oauth2_followupd(stack: &MailStack, mechanism: &str, oauth2: &str, extra: &str) -> Followupd {
    let login = format!("auth = \"oauth2\"\noauth2_mechanism = \"{mechanism}\"\n");
    Followupd::with_login(
        stack,
        Tls::ImapsAndSmtpStarttls,
        "1s",
        &login,
        &login,
        &format!("{extra}\n[oauth2]\n{oauth2}"),
    )
}

fn acks_to(stack: &MailStack, customer: &str) -> usize {
    stack
        .mailbox(customer)
        .iter()
        .filter(|raw| header(&parse(raw), "Auto-Submitted") == Some("auto-replied"))
        .count()
}

fn send_complaint(stack: &MailStack, customer: &str, n: u32) {
    order_never_arrived(stack, customer, &format!("c{n}-{customer}"), n);
}

/// Runs `followupd oauth2 login SERVER` as an admin would at a terminal, approving the device
/// code at the provider as they would in a browser; returns what it printed.
fn device_login(stack: &MailStack, fu: &Followupd, server: &str) -> String {
    let mut child = fu
        .command()
        .args(["oauth2", "login", server])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oauth2 login");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    let code = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read") == 0 {
            let _ = child.wait();
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("login ended before showing a code:\n{printed}\n{err}");
        }
        printed.push_str(&line);
        if let Some(code) = line.trim().strip_prefix("2. enter the code ") {
            break code.to_string();
        }
    };
    stack.oauth2("approve", &[&format!("user_code={code}")]);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    printed.push_str(&rest);
    let status = child.wait().expect("wait");
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    assert!(status.success(), "oauth2 login failed:\n{printed}\n{err}");
    printed
}

fn check_connect(fu: &Followupd) -> (bool, String) {
    let out = fu.run(&["check", "--connect"]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_complaint_is_acknowledged_through_xoauth2_on_imap_and_smtp() {
    let stack = MailStack::start_with(&["--oauth2"]);
    let fu = oauth2_followupd(
        &stack,
        "xoauth2",
        &stack.oauth2_section("client_credentials"),
        "",
    );
    send_complaint(&stack, ANN, 1);
    eventually(
        "the complaint is delivered",
        Duration::from_secs(15),
        || stack.mailbox(SUPPORT).len() == 1,
    );
    fu.once();
    assert_eq!(stack.wait_for_mail(ANN, 1).len(), 1, "one acknowledgement");
    let dovecot = stack.log("dovecot");
    assert!(
        dovecot.contains("Login: user=<support@example.test>, method=XOAUTH2"),
        "IMAP logged in with XOAUTH2:\n{dovecot}"
    );
    let postfix = stack.log("postfix");
    assert!(
        postfix.contains("sasl_method=XOAUTH2, sasl_username=support@example.test"),
        "SMTP AUTH was XOAUTH2:\n{postfix}"
    );
    let stats = stack.oauth2_stats();
    assert_eq!(
        stats["grant:client_credentials"], 1,
        "one token served IMAP and SMTP: {stats}"
    );
}

#[test]
fn the_access_token_expires_mid_run_and_is_renewed_without_losing_or_doubling_mail() {
    let stack = MailStack::start_with(&["--oauth2"]);
    // Tokens that live 8 s: followupd uses each for 6 s, then refreshes it and renews the
    // sessions opened with it, as Exchange Online would end them.
    stack.oauth2("ttl", &["seconds=8"]);
    let fu = oauth2_followupd(
        &stack,
        "xoauth2",
        &stack.oauth2_section("refresh_token"),
        "",
    );
    device_login(&stack, &fu, "imap");
    let token_file = fu.database.with_file_name("oauth2.token");
    let signed_in = std::fs::read_to_string(&token_file).expect("token file");

    let (daemon, log) = fu.spawn_logged();
    send_complaint(&stack, ANN, 1);
    eventually("Ann's acknowledgement", Duration::from_secs(30), || {
        acks_to(&stack, ANN) == 1
    });
    eventually(
        "the token expires and is refreshed while the daemon runs",
        Duration::from_secs(30),
        || stack.oauth2_stats()["refreshed"].as_u64().unwrap_or(0) >= 1,
    );
    send_complaint(&stack, BOB, 2);
    eventually("Bob's acknowledgement", Duration::from_secs(30), || {
        acks_to(&stack, BOB) == 1
    });

    // The provider ends the token early (a password change, say) and the server drops the
    // session: the cached token is refused, renewed once, and intake carries on.
    stack.oauth2("expire", &[]);
    stack.kick(SUPPORT);
    send_complaint(&stack, CAROL, 3);
    eventually("Carol's acknowledgement", Duration::from_secs(40), || {
        acks_to(&stack, CAROL) == 1
    });
    std::thread::sleep(Duration::from_secs(3));
    daemon.stop();

    for customer in [ANN, BOB, CAROL] {
        assert_eq!(acks_to(&stack, customer), 1, "{customer}: exactly one");
    }
    assert_eq!(fu.incidents().len(), 3);
    let text = read_log(&log);
    assert!(!text.contains("ERROR"), "no errors on the way:\n{text}");
    assert!(
        text.contains("IMAP session renewed"),
        "the session ended with its token:\n{text}"
    );
    let stats = stack.oauth2_stats();
    assert!(
        stats["introspect:inactive"].as_u64().unwrap_or(0) >= 1,
        "an expired token was refused at least once: {stats}"
    );
    // The provider rotates refresh tokens on every use; the saved one followed.
    let now = std::fs::read_to_string(&token_file).expect("token file");
    assert_ne!(now, signed_in, "the rotated refresh token was kept");
    let mode = std::fs::metadata(&token_file)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_revoked_sign_in_is_named_in_the_log_and_check_and_intake_resumes_after_a_new_login() {
    let stack = MailStack::start_with(&["--oauth2"]);
    let port = crate::service::free_port();
    let fu = oauth2_followupd(
        &stack,
        "xoauth2",
        &stack.oauth2_section("refresh_token"),
        &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    device_login(&stack, &fu, "imap");
    let (daemon, log) = fu.spawn_logged();
    send_complaint(&stack, ANN, 1);
    eventually("Ann's acknowledgement", Duration::from_secs(30), || {
        acks_to(&stack, ANN) == 1
    });

    // Someone revokes followupd's access in the provider's portal; the server ends the session.
    stack.oauth2("revoke", &[]);
    stack.kick(SUPPORT);
    send_complaint(&stack, BOB, 2);
    eventually_logged(
        "the refusal is logged with the provider's reason and the fix",
        Duration::from_secs(40),
        &log,
        || {
            let text = read_log(&log);
            text.contains("invalid_grant")
                && text.contains("AADSTS70008")
                && text.contains("followupd oauth2 login imap")
        },
    );
    let (ok, report) = check_connect(&fu);
    assert!(!ok, "check --connect fails while signed out:\n{report}");
    let line = report
        .lines()
        .find(|l| l.starts_with("imap login"))
        .unwrap_or_else(|| panic!("an imap line:\n{report}"));
    assert!(
        line.contains("FAILED") && line.contains("invalid_grant"),
        "{line}"
    );
    assert!(line.contains("followupd oauth2 login imap"), "{line}");
    assert_eq!(acks_to(&stack, BOB), 0, "nothing read while signed out");
    // A person must act: /healthz says so (503) and the gauge is 0.
    let (status, body) = crate::service::http_get(port, "/healthz");
    assert!(status.contains("503"), "{status}: {body}");
    assert!(body.starts_with("sign-in refused: "), "{body}");
    assert!(body.contains("followupd oauth2 login imap"), "{body}");
    let (_, metrics) = crate::service::http_get(port, "/metrics");
    assert!(
        metrics.contains("\nfollowupd_oauth2_sign_in_ok 0\n"),
        "{metrics}"
    );

    // A new sign-in; the running daemon picks it up on its next attempt.
    device_login(&stack, &fu, "imap");
    eventually(
        "Bob's complaint from the outage is answered",
        Duration::from_secs(60),
        || acks_to(&stack, BOB) == 1,
    );
    let (ok, report) = check_connect(&fu);
    assert!(ok, "check --connect after the new sign-in:\n{report}");
    eventually("healthy again", Duration::from_secs(15), || {
        crate::service::http_get(port, "/healthz").0.contains("200")
    });
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();
    assert_eq!(acks_to(&stack, ANN), 1, "Ann still has exactly one");
    assert_eq!(acks_to(&stack, BOB), 1);
    assert_eq!(fu.incidents().len(), 2);
}

#[test]
fn the_device_code_login_keeps_the_token_private_and_check_connect_then_succeeds() {
    let stack = MailStack::start_with(&["--oauth2"]);
    // A public client: no secret, as an Entra ID app with "public client flows" allowed.
    let section = format!(
        "token_url = \"{}\"\ndevice_url = \"{}\"\nclient_id = \"{}\"\nscope = \"mail offline\"\n",
        stack.var("OAUTH2_TOKEN_URL"),
        stack.var("OAUTH2_DEVICE_URL"),
        stack.var("OAUTH2_PUBLIC_CLIENT_ID"),
    );
    let fu = oauth2_followupd(&stack, "xoauth2", &section, "");
    let out = fu.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "check passes: the daemon may start and wait: {text}"
    );
    assert!(
        text.contains("not signed in yet: run `followupd oauth2 login imap`"),
        "{text}"
    );
    let (ok, report) = check_connect(&fu);
    assert!(!ok, "nobody signed in yet:\n{report}");
    assert!(
        report.contains("no saved sign-in") && report.contains("followupd oauth2 login imap"),
        "{report}"
    );

    let printed = device_login(&stack, &fu, "imap");
    assert!(
        printed.contains("[smtp] uses the same sign-in"),
        "{printed}"
    );
    let token_file = fu.database.with_file_name("oauth2.token");
    let mode = std::fs::metadata(&token_file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only followupd may read it");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&token_file).expect("read")).expect("json");
    let refresh = saved["refresh_token"].as_str().expect("refresh token");
    assert!(!printed.contains(refresh), "the token is never printed");

    let (ok, report) = check_connect(&fu);
    assert!(ok, "{report}");
    assert!(
        report.contains("[oauth2] ") && report.contains(": signed in at "),
        "{report}"
    );
    assert!(
        report.contains("imap login") && report.contains("ok, logged in with XOAUTH2"),
        "{report}"
    );
    assert!(report.contains("INBOX selected"), "{report}");
    assert!(
        report.contains("smtp login") && report.contains("AUTH XOAUTH2 as support@example.test"),
        "{report}"
    );
    assert!(!report.contains(refresh), "the token is never printed");
}

#[test]
fn an_app_with_a_certificate_signs_in_as_itself_with_oauthbearer() {
    let stack = MailStack::start_with(&["--oauth2"]);
    let section = format!(
        "token_url = \"{}\"\nclient_id = \"{}\"\nclient_certificate_file = \"{}\"\n\
         client_key_file = \"{}\"\ngrant = \"client_credentials\"\nscope = \"mail\"\n",
        stack.var("OAUTH2_TOKEN_URL"),
        stack.var("OAUTH2_CERT_CLIENT_ID"),
        stack.var("OAUTH2_CERT_FILE"),
        stack.var("OAUTH2_KEY_FILE"),
    );
    let fu = oauth2_followupd(&stack, "oauthbearer", &section, "");
    let (ok, report) = check_connect(&fu);
    assert!(ok, "{report}");
    assert!(report.contains("logged in with OAUTHBEARER"), "{report}");
    send_complaint(&stack, ANN, 1);
    eventually(
        "the complaint is delivered",
        Duration::from_secs(15),
        || stack.mailbox(SUPPORT).len() == 1,
    );
    fu.once();
    assert_eq!(stack.wait_for_mail(ANN, 1).len(), 1);
    assert!(stack
        .log("dovecot")
        .contains("user=<support@example.test>, method=OAUTHBEARER"));
    assert!(stack.log("postfix").contains("sasl_method=OAUTHBEARER"));
    // The provider verified the PS256 assertion against the registered certificate.
    let stats = stack.oauth2_stats();
    assert!(stats["grant:client_credentials"].as_u64().unwrap_or(0) >= 1);
    assert!(stats.get("error:invalid_client").is_none(), "{stats}");
}

#[test]
fn a_browser_sign_in_is_pasted_back_and_kept() {
    let stack = MailStack::start_with(&["--oauth2"]);
    let fu = oauth2_followupd(
        &stack,
        "xoauth2",
        &stack.oauth2_section("refresh_token"),
        "",
    );
    let mut child = fu
        .command()
        .args(["oauth2", "login", "imap", "--browser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let url = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).expect("read") > 0, "no URL");
        if let Some(url) = line.trim().strip_prefix("http://") {
            break format!("http://{url}");
        }
    };
    // The admin's browser: the provider signs them in and redirects to the loopback address.
    let location = redirect_of(&url);
    assert!(
        location.starts_with("http://localhost") && location.contains("code="),
        "{location}"
    );
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{location}").expect("paste");
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    assert!(child.wait().expect("wait").success(), "{rest}");
    assert!(rest.contains("Signed in as support@example.test"), "{rest}");
    let (ok, report) = check_connect(&fu);
    assert!(ok, "{report}");
}

/// GET `url` (plain HTTP on loopback) and return its Location header.
fn redirect_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut tcp = std::net::TcpStream::connect(host).expect("connect");
    write!(
        tcp,
        "GET /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("response");
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap_or_else(|| panic!("no redirect:\n{answer}"))
        .trim()
        .to_string()
}
