//! The admin's commands: `check` (with its warnings) and `erase`.

use super::*;
use std::io::Write as _;

/// `followupd erase ADDRESS`: the person's messages, names and addresses go; a tombstone
/// event stays. The file is vacuumed and its WAL emptied afterwards, with `secure_delete` on
/// during the erasure, so the address survives nowhere in the database's files.
pub(super) fn erase(
    config: &Config,
    address: &str,
    by: Option<String>,
    imap: bool,
    clock: Clock,
) -> Result<ExitCode> {
    let address = address.trim().to_lowercase();
    let plausible = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>');
    if !plausible {
        bail!("`{address}` is not an email address like ann@example.com: erase takes one whole address");
    }
    let mut conn = store::open(&config.database)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let actor = crate::incident::Actor::Staff(by.unwrap_or_else(unix_user));
    let tx = conn.transaction()?;
    let erased = store::erasure::erase(&tx, &address, &actor, clock.now())?;
    tx.commit()?;
    let clean = store::erasure::vacuum(&conn)?;
    let incidents: Vec<String> = erased.incidents.iter().map(|n| format!("#{n}")).collect();
    writeln!(std::io::stdout(),
        "erased {address}: {} incident(s){}, {} message(s), {} mail(s), {} event detail(s); a tombstone event records it",
        erased.incidents.len(),
        if incidents.is_empty() {
            String::new()
        } else {
            format!(" ({})", incidents.join(", "))
        },
        erased.messages,
        erased.mails,
        erased.events
    )?;
    if !clean {
        eprintln!(
            "followupd: the database's write-ahead log is in use by another process (the daemon?) \
             and could not be emptied; its old pages are overwritten by the next writes. For \
             certainty now, stop the daemon and run `followupd erase {address}` again."
        );
    }
    if imap {
        let removed = connect::erase_from_mailbox(config, &erased.message_ids)?;
        writeln!(
            std::io::stdout(),
            "imap: deleted {removed} message(s) of {} from the support mailbox on {}",
            erased.message_ids.len(),
            config.imap.endpoint.server()
        )?;
    } else if !erased.message_ids.is_empty() {
        writeln!(
            std::io::stdout(),
            "their {} message(s) are still in the support mailbox on the server: run with \
             --imap to delete them there too",
            erased.message_ids.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The acting user for the event log when `--by` is not given.
pub(super) fn unix_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub(super) fn check(config: &Config, connect: bool) -> Result<ExitCode> {
    writeln!(
        std::io::stdout(),
        "config     {}: ok",
        config.path.display()
    )?;
    let templates = crate::deps::load_templates(config)?;
    let rendered = templates.check(&config.support.name, &config.support.address)?;
    writeln!(
        std::io::stdout(),
        "templates  {}: ok ({rendered} renderings with complete, plain and sparse sample data)",
        config.templates.display()
    )?;
    // `check --connect` reports the CA files in its own lines, with the rest.
    if !connect {
        crate::tls::client_config(config.imap.endpoint.ca_file.as_deref())
            .context("[imap] ca_file")?;
        crate::tls::client_config(config.smtp.endpoint.ca_file.as_deref())
            .context("[smtp] ca_file")?;
    }
    // The passwords are read here (only the daemon and this check ever read them): a file
    // others may read is refused with its line, as `run` would refuse it.
    for (section, endpoint) in [
        ("imap", &config.imap.endpoint),
        ("smtp", &config.smtp.endpoint),
    ] {
        endpoint.password(section)?;
    }
    // The same for OAuth2 client secrets and keys; and whether someone signed in yet (not an
    // error: the daemon runs and says so until someone does).
    for (server, account) in oauth2_accounts(config) {
        match &account.client_auth {
            config::ClientAuth::None => {}
            config::ClientAuth::Secret(file) => {
                file.read_line(&account.section)?;
            }
            config::ClientAuth::Certificate(cert) => {
                cert.key.read_rsa_key(&account.section)?;
            }
        }
        let state = match account.grant {
            config::Grant::ClientCredentials => "the app signs in as itself".to_string(),
            config::Grant::RefreshToken => match crate::oauth::saved::read(&account.token_file) {
                Ok(Some(saved)) => format!(
                    "signed in at {} ({})",
                    saved.signed_in_at,
                    account.token_file.display()
                ),
                Ok(None) => format!(
                    "not signed in yet: run `followupd oauth2 login {server}`"
                ),
                Err(e) => bail!(
                    "[{}] sign-in file {}: {e}; sign in again with `followupd oauth2 login {server}`",
                    account.section,
                    account.token_file.display()
                ),
            },
        };
        writeln!(
            std::io::stdout(),
            "oauth2     [{}] {}: {state}",
            account.section,
            account.token_url
        )?;
    }
    let key = if config.secret_file.exists() {
        crate::secret::Secret::load_or_create(&config.secret_file)?;
        "ok"
    } else {
        "created on first run"
    };
    writeln!(
        std::io::stdout(),
        "secret     {}: {key}",
        config.secret_file.display()
    )?;
    writeln!(
        std::io::stdout(),
        "imap       {}:{} (tls {}), mailbox {}, {}, {}",
        config.imap.endpoint.host,
        config.imap.endpoint.port,
        config.imap.endpoint.tls.as_str(),
        config.imap.mailbox,
        login_said(&config.imap.endpoint),
        if config.imap.idle {
            "IDLE when offered"
        } else {
            "polling"
        }
    )?;
    writeln!(
        std::io::stdout(),
        "smtp       {}:{} (tls {}), {}",
        config.smtp.endpoint.host,
        config.smtp.endpoint.port,
        config.smtp.endpoint.tls.as_str(),
        login_said(&config.smtp.endpoint)
    )?;
    writeln!(
        std::io::stdout(),
        "database   {}",
        config.database.display()
    )?;
    for warning in check_warnings(config)
        .into_iter()
        .chain(templates.unknown_conditions(&config.support.name, &config.support.address))
    {
        writeln!(std::io::stdout(), "warning    {warning}")?;
    }
    if connect {
        return connect::check(config);
    }
    Ok(ExitCode::SUCCESS)
}

/// What works but is likely not what the admin wants: said by `check`, never a failure.
pub(super) fn check_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.intake.trusted_authserv_id.is_none() {
        out.push(
            "[intake] trusted_authserv_id is not set: no sender can be verified, so every \
             customer gets the cut-down mail that ends \"We could not confirm that this address \
             wrote to us\" (at most 5 per person in 24 hours) and staff replies cannot be \
             checked. Set it to \"microsoft365\", \"google\", or the first word of your \
             server's Authentication-Results (`check --connect` lists the ones it sees)"
                .to_string(),
        );
    }
    if config.staff.members.is_empty() {
        out.push(
            "[staff] members is empty: nobody can answer a customer or give a command by mail, \
             and escalations only reach [escalation] staff or the log"
                .to_string(),
        );
    }
    out.extend(strangers_in_the_state_directory(config));
    // A staff/at_risk template edited before alarms came together would drop the others.
    let at_risk = config.templates.join("staff/at_risk.text.hbs");
    if std::fs::read_to_string(&at_risk).is_ok_and(|t| !t.contains("also_at_risk")) {
        out.push(format!(
            "{} does not show `staff.also_at_risk`: a member with several promises at risk gets \
             one mail, and it names the others only through that list; add it (see the shipped \
             template)",
            at_risk.display()
        ));
    }
    // The well-known ports speak one way: the other waits for a greeting that never comes
    // (a 60-second timeout that says nothing about why).
    for (section, endpoint, implicit_port, starttls_ports) in [
        ("imap", &config.imap.endpoint, 993, &[143][..]),
        ("smtp", &config.smtp.endpoint, 465, &[25, 587][..]),
    ] {
        let hint = match endpoint.tls {
            config::TlsMode::Starttls if endpoint.port == implicit_port => Some("implicit"),
            config::TlsMode::Implicit if starttls_ports.contains(&endpoint.port) => {
                Some("starttls")
            }
            _ => None,
        };
        if let Some(wanted) = hint {
            out.push(format!(
                "[{section}] port {} usually wants tls = \"{wanted}\", not \"{}\": the two \
                 sides would wait for each other until the timeout",
                endpoint.port,
                endpoint.tls.as_str()
            ));
        }
    }
    if let Some(listen) = config.metrics.listen {
        if !listen.ip().is_loopback() {
            out.push(format!(
                "[metrics] listen = \"{listen}\" is reachable from other machines: /metrics \
                 shows queue sizes and error counts to anyone who can connect. Use \
                 127.0.0.1 and a reverse proxy, or a firewall"
            ));
        }
    }
    out
}

/// Files in the state directory that another user owns than the directory's owner (the
/// service's user): what the service may be unable to read or write, as a file root left
/// there before root's commands worked as the service.
fn strangers_in_the_state_directory(config: &Config) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Some(state) = config.database.parent() else {
        return Vec::new();
    };
    let Ok(owner) = std::fs::metadata(state).map(|m| m.uid()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(state) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let uid = entry.metadata().ok()?.uid();
            (uid != owner).then(|| {
                format!(
                    "{} belongs to uid {uid}, not to the owner of {} (uid {owner}): the service \
                     may not be able to use it; `chown --reference={} {}` gives it back",
                    entry.path().display(),
                    state.display(),
                    state.display(),
                    entry.path().display()
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// Each distinct sign-in, with the server that uses it first (for `oauth2 login SERVER`).
pub(super) fn oauth2_accounts(config: &Config) -> Vec<(&'static str, &config::OAuth2Config)> {
    let mut out: Vec<(&'static str, &std::sync::Arc<config::OAuth2Config>)> = Vec::new();
    for (server, endpoint) in [
        ("imap", &config.imap.endpoint),
        ("smtp", &config.smtp.endpoint),
    ] {
        if let config::Auth::OAuth2 { account, .. } = &endpoint.auth {
            if !out.iter().any(|(_, a)| std::sync::Arc::ptr_eq(a, account)) {
                out.push((server, account));
            }
        }
    }
    out.into_iter().map(|(s, a)| (s, a.as_ref())).collect()
}

/// How `check` describes a server's login: `password`, or `oauth2 XOAUTH2 via [oauth2]
/// (microsoft365, refresh_token)`.
pub(super) fn login_said(endpoint: &config::Endpoint) -> String {
    match (&endpoint.auth, &endpoint.username) {
        (_, None) => "no login".into(),
        (config::Auth::Password, Some(_)) => "password login".into(),
        (config::Auth::OAuth2 { mechanism, account }, Some(_)) => format!(
            "oauth2 {} via [{}] ({}, {})",
            mechanism.as_str(),
            account.section,
            account.provider.as_str(),
            account.grant.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_known_port_with_the_other_tls_is_named_by_check() {
        let mut config = Config::example().expect("example");
        config.smtp.endpoint.port = 465;
        config.smtp.endpoint.tls = config::TlsMode::Starttls;
        config.imap.endpoint.port = 993;
        config.imap.endpoint.tls = config::TlsMode::Implicit;
        let warnings = check_warnings(&config);
        let about = |section: &str| {
            warnings
                .iter()
                .filter(|w| w.starts_with(&format!("[{section}] port")))
                .count()
        };
        assert_eq!(about("imap"), 0, "{warnings:?}");
        assert_eq!(about("smtp"), 1, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("[smtp] port 465 usually wants tls = \"implicit\"")),
            "{warnings:?}"
        );
    }
}
