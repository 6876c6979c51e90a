//! Talking to the servers from the command line: `check --connect` and `oauth2 login`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};

use crate::config::{Auth, Config};
use crate::errors::Chain;
use crate::imap::Inbox;
use crate::oauth::{login, Login, Logins};
use crate::smtp::Smtp;

/// One thing `check --connect` tried: what it was, and what came of it in one line (the
/// success, or what failed, what the server answered and what to fix).
struct Tried {
    what: &'static str,
    server: String,
    outcome: Result<String, String>,
}

/// Validates both CA files, opens the database for writing, and logs in to IMAP (selecting
/// the mailbox) and SMTP (EHLO, TLS, AUTH) as the daemon would: one line each.
pub fn check(config: &Config) -> Result<ExitCode> {
    let logins = Logins::new(config, &crate::tls::client_config(None)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut tried = vec![
        ca_file("imap", &config.imap.endpoint),
        ca_file("smtp", &config.smtp.endpoint),
        database(config),
    ];
    let imap_tls = crate::tls::client_config(config.imap.endpoint.ca_file.as_deref());
    let smtp_ca_ok = tried.get(1).is_some_and(|t| t.outcome.is_ok());
    runtime.block_on(async {
        tried.push(match imap_tls {
            Ok(tls) => imap(config, tls, &logins.imap).await,
            Err(_) => Tried {
                what: "imap login",
                server: config.imap.endpoint.server(),
                outcome: Err(format!(
                    "IMAP {}: not tried: [imap] ca_file is unusable (above)",
                    config.imap.endpoint.server()
                )),
            },
        });
        tried.push(if smtp_ca_ok {
            smtp(config, logins.smtp.clone()).await
        } else {
            Tried {
                what: "smtp login",
                server: config.smtp.endpoint.server(),
                outcome: Err(format!(
                    "SMTP {}: not tried: [smtp] ca_file is unusable (above)",
                    config.smtp.endpoint.server()
                )),
            }
        });
    });
    let mut failed = 0;
    for t in &tried {
        match &t.outcome {
            Ok(text) => writeln!(std::io::stdout(), "{:<10} {}: ok, {text}", t.what, t.server)?,
            Err(text) => {
                failed += 1;
                writeln!(std::io::stdout(), "{:<10} FAILED: {text}", t.what)?;
            }
        }
    }
    if failed > 0 {
        eprintln!("followupd: {failed} connection check(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `erase --imap`: deletes the messages with these Message-IDs from the support mailbox and,
/// when processed mail is moved, from that folder. Returns how many were deleted.
pub fn erase_from_mailbox(config: &Config, ids: &[String]) -> Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let tls = crate::tls::client_config(config.imap.endpoint.ca_file.as_deref())
        .context("[imap] ca_file")?;
    let logins = Logins::new(config, &crate::tls::client_config(None)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut mailboxes = vec![config.imap.clone()];
    if let crate::config::AfterProcessing::Move(folder) = &config.imap.after_processing {
        let mut moved = config.imap.clone();
        moved.mailbox = folder.clone();
        mailboxes.push(moved);
    }
    runtime.block_on(async {
        let mut removed = 0;
        for imap in &mailboxes {
            let (mut inbox, _) = Inbox::connect(imap, tls.clone(), &logins.imap)
                .await
                .map_err(|e| anyhow::anyhow!("IMAP, mailbox {}: {}", imap.mailbox, Chain(&e)))?;
            removed += inbox
                .delete_by_message_id(ids)
                .await
                .map_err(|e| anyhow::anyhow!("IMAP, mailbox {}: {}", imap.mailbox, Chain(&e)))?;
            inbox.logout().await;
        }
        Ok(removed)
    })
}

/// Messages `check --connect` looks at to see who signs the mail in the support mailbox.
const SURVEYED: usize = 20;

/// Which receiving server wrote the sender check of the newest messages, and what
/// `[intake] trusted_authserv_id` should be: "; the newest 20 messages carry
/// Authentication-Results from mx.example.com (18), none (2); trusted_authserv_id =
/// \"mx.example.com\" matches". Empty when the mailbox could not be read.
async fn sender_check_survey(config: &Config, inbox: &mut Inbox) -> String {
    let Ok(uids) = inbox.uids_after(0).await else {
        return String::new();
    };
    let newest: Vec<u32> = uids.iter().rev().take(SURVEYED).rev().copied().collect();
    if newest.is_empty() {
        return "; the mailbox is empty: no sender check to look at yet".into();
    }
    let Ok(sizes) = inbox.sizes(&newest).await else {
        return String::new();
    };
    // Headers only (every message counts as over a size of 0).
    let Ok(fetched) = inbox.fetch(&sizes, 0).await else {
        return String::new();
    };
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut top: Vec<(Option<String>, usize)> = Vec::new();
    for f in &fetched {
        let Some(message) = mail_parser::MessageParser::default().parse_headers(f.raw.as_slice())
        else {
            continue;
        };
        let (label, id) = match crate::mail::trust::topmost_authserv_id(message.headers_raw()) {
            Some(Some(id)) => (id.clone(), Some(Some(id))),
            Some(None) => ("no id (Exchange Online)".to_string(), Some(None)),
            None => ("none".to_string(), None),
        };
        match seen.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => seen.push((label, 1)),
        }
        if let Some(id) = id {
            match top.iter_mut().find(|(i, _)| *i == id) {
                Some((_, n)) => *n += 1,
                None => top.push((id, 1)),
            }
        }
    }
    seen.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let found = seen
        .iter()
        .map(|(l, n)| format!("{l} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    let advice = match (top.first(), config.intake.trusted_authserv_id.as_deref()) {
        (None, _) => "no receiving server wrote a sender check: ask your mail admin to add \
                      SPF, DKIM and DMARC checks (OpenDMARC, rspamd)"
            .to_string(),
        (Some((id, _)), configured) => {
            let suggested = crate::mail::trust::suggested_setting(id.as_deref());
            match configured {
                Some(c) if c.eq_ignore_ascii_case(&suggested) => {
                    format!("trusted_authserv_id = \"{c}\" matches")
                }
                Some(c) => format!(
                    "trusted_authserv_id = \"{c}\" does not sign them: did you mean \
                     \"{suggested}\"?"
                ),
                None => format!("suggested: [intake] trusted_authserv_id = \"{suggested}\""),
            }
        }
    };
    format!(
        "; the newest {} messages carry Authentication-Results from {found}; {advice}",
        fetched.len()
    )
}

/// A server's `ca_file`: PEM certificates rustls accepts as roots.
fn ca_file(section: &'static str, endpoint: &crate::config::Endpoint) -> Tried {
    let what = if section == "imap" {
        "imap ca"
    } else {
        "smtp ca"
    };
    let Some(path) = endpoint.ca_file.as_deref() else {
        return Tried {
            what,
            server: endpoint.server(),
            outcome: Ok("no ca_file: the system's roots".into()),
        };
    };
    let outcome = match crate::tls::read_pem_certs(path)
        .map_err(|e| e.to_string())
        .and_then(|certs| {
            crate::tls::client_config(Some(path))
                .map(|_| certs.len())
                .map_err(|e| Chain(&e).to_string())
        }) {
        Ok(n) => Ok(format!("{} ({n} certificate(s))", path.display())),
        Err(why) => Err(format!(
            "[{section}] ca_file {why}; point ca_file at the PEM file (-----BEGIN CERTIFICATE-----) \
             of the CA that signed {}'s certificate, or remove it to trust the system's roots",
            endpoint.server()
        )),
    };
    Tried {
        what,
        server: endpoint.server(),
        outcome,
    }
}

/// The database, opened as the daemon opens it, and a write transaction begun and rolled back:
/// a read-only file or directory shows here, not at the first complaint.
fn database(config: &Config) -> Tried {
    let path = config.database.display().to_string();
    let outcome = crate::store::open(&config.database)
        .map_err(|e| Chain(&e).to_string())
        .and_then(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
                .map_err(|e| format!("database {path}: cannot write: {e}"))
        })
        .map(|()| "opened for writing".to_string())
        .map_err(|why| {
            format!(
                "{why}; the user followupd runs as needs to write the file and its directory \
                 (the unit's StateDirectory= gives it /var/lib/followupd)"
            )
        });
    Tried {
        what: "database",
        server: path,
        outcome,
    }
}

async fn imap(
    config: &Config,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    login: &Login,
) -> Tried {
    let outcome = match Inbox::connect(&config.imap, tls, login).await {
        Ok((mut inbox, selected)) => {
            let survey = sender_check_survey(config, &mut inbox).await;
            let text = format!(
                "logged in with {}{}, mailbox {} selected (UIDVALIDITY {}), {}",
                inbox.logged_in_with,
                user(login),
                config.imap.mailbox,
                selected.uidvalidity,
                match (inbox.idle_offered(), config.imap.idle) {
                    (true, true) => "IDLE offered: new mail is read as it arrives",
                    (true, false) => "IDLE offered but [imap] idle = false: polling",
                    (false, _) => "no IDLE: polling every poll_interval",
                }
            ) + &survey;
            inbox.logout().await;
            Ok(text)
        }
        Err(e) => Err(Chain(&e).to_string()),
    };
    Tried {
        what: "imap login",
        server: config.imap.endpoint.server(),
        outcome,
    }
}

async fn smtp(config: &Config, login: Login) -> Tried {
    let server = config.smtp.endpoint.server();
    let outcome = match Smtp::new(&config.smtp.endpoint, login, 1, config.support.domain()) {
        Ok(smtp) => smtp
            .probe()
            .await
            .map(|how| {
                let tls = match config.smtp.endpoint.tls {
                    crate::config::TlsMode::Implicit => "TLS, ",
                    crate::config::TlsMode::Starttls => "STARTTLS, ",
                    crate::config::TlsMode::None => "",
                };
                format!("EHLO, {tls}{how} accepted")
            })
            .map_err(|e| e.to_string()),
        Err(e) => Err(Chain(&e).to_string()),
    };
    Tried {
        what: "smtp login",
        server,
        outcome,
    }
}

fn user(login: &Login) -> String {
    match login {
        Login::None => String::new(),
        Login::Password { user, .. } | Login::Bearer { user, .. } => format!(" as {user}"),
    }
}

/// `followupd oauth2 login imap|smtp [--browser]`.
pub fn login(config: &Config, server: &str, browser: bool) -> Result<ExitCode> {
    let (endpoint, other) = match server {
        "smtp" => (&config.smtp.endpoint, &config.imap.endpoint),
        _ => (&config.imap.endpoint, &config.smtp.endpoint),
    };
    let Auth::OAuth2 { account, .. } = &endpoint.auth else {
        bail!("[{server}] auth is not \"oauth2\": there is nothing to sign in to");
    };
    let user = endpoint.username.clone().unwrap_or_default();
    let tls = crate::tls::client_config(None)?;
    let mut out = std::io::stdout();
    let signed = if browser {
        login::browser(account, &user, tls, &mut std::io::stdin().lock(), &mut out)?
    } else {
        login::device(account, &user, tls, &mut out)?
    };
    writeln!(
        std::io::stdout(),
        "\nSigned in as {user}. The refresh token is kept in {} (mode 0600){}.",
        signed.file,
        if signed.scope.is_empty() {
            String::new()
        } else {
            format!(", for {}", signed.scope)
        }
    )?;
    if matches!(&other.auth, Auth::OAuth2 { account: theirs, .. } if Arc::ptr_eq(theirs, account)) {
        let other_name = if server == "smtp" { "imap" } else { "smtp" };
        writeln!(
            std::io::stdout(),
            "[{other_name}] uses the same sign-in ([{}]).",
            account.section
        )?;
    }
    writeln!(
        std::io::stdout(),
        "A running followupd uses it from its next connection on. Check with `followupd check \
         --connect`."
    )?;
    Ok(ExitCode::SUCCESS)
}
