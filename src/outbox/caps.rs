//! Send caps: how much automatic mail may go where, so the support address can never be made
//! to flood anyone.
//!
//! Every cap is a sliding window counted in SQLite (a restart resets nothing) over what was
//! queued. Customer mail is counted per recipient *mailbox*, not per address string:
//! `Ann.Lee+1@GMail.com` and `annlee@gmail.com` are one person ([`mailbox`]). Mail about an
//! incident nobody could vouch for (an unverified sender, no staff action) also counts against
//! stricter per-mailbox and per-domain caps; answers the customer's own mail triggers count per
//! incident; and everything together counts against a global cap that protects the domain's
//! reputation. Staff mail has its own cap (`[staff] notify_cap`) and never touches these.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::clock::before;
use crate::config::{CapWindow, MailboxRules, SendCaps};
use crate::incident::{Audience, IncidentNo, Mail, MailKind};
use crate::store::outbox::CapScope;
use crate::store::{self, StoreError};

/// The mailbox an address delivers to, as the caps count it: lower-case, the sub-address
/// (`+tag`, and `-tag` where configured) cut off the local part, and dots removed for domains
/// that ignore them. A quoted or odd local part is only lower-cased.
pub fn mailbox(address: &str, rules: &MailboxRules) -> String {
    rules.mailbox(address)
}

/// The domain an address delivers to, lower-case.
pub fn domain(address: &str) -> String {
    address
        .trim()
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .trim_end_matches('.')
        .to_lowercase()
}

/// Why a mail may not go out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    /// The global cap: staff are told.
    pub global: bool,
}

/// Why automatic mail about `incident` to `mail.to` may not go out now, if it may not: the
/// address bounced, or a cap is reached.
pub fn customer_refusal(
    conn: &Connection,
    incident: IncidentNo,
    mail: &Mail,
    caps: &SendCaps,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>, StoreError> {
    let recipient = mail.to.as_str();
    if let Some(u) = store::outbox::undeliverable(conn, recipient)? {
        return Ok(Some(Refusal {
            reason: format!(
                "{recipient} is marked undeliverable since {} ({})",
                crate::clock::stamp(u.since),
                u.reason
            ),
            global: false,
        }));
    }
    if mail.staff_by.is_some() {
        // A staff member's own words to the customer: the caps guard customers against
        // automatic mail (and forged complaints using them up); they never silence a person.
        return Ok(None);
    }
    let mailbox = mailbox(recipient, &caps.mailbox);
    let domain = domain(recipient);
    let mut checks: Vec<(&[CapWindow], CapScope<'_>, String)> = vec![(
        &caps.windows,
        CapScope::Mailbox(&mailbox),
        format!("automatic mails to {mailbox}"),
    )];
    if mail.unverified {
        checks.push((
            &caps.unverified_windows,
            CapScope::UnverifiedMailbox(&mailbox),
            format!("mails to {mailbox} about incidents from a sender nobody verified"),
        ));
        checks.push((
            &caps.domain_windows,
            CapScope::UnverifiedDomain(&domain),
            format!("mails to {domain} about incidents from senders nobody verified"),
        ));
    }
    if answers_the_customer(mail) {
        checks.push((
            &caps.answer_windows,
            CapScope::Answers(incident),
            format!("answers to the customer's own mail on incident {incident}"),
        ));
    }
    for (windows, scope, what) in checks {
        if let Some(reason) = first_reached(conn, windows, scope, &what, now)? {
            return Ok(Some(Refusal {
                reason,
                global: false,
            }));
        }
    }
    let global = first_reached(
        conn,
        &caps.global_windows,
        CapScope::All,
        "automatic mails to customers in all",
        now,
    )?;
    Ok(global.map(|reason| Refusal {
        reason,
        global: true,
    }))
}

/// A mail the customer's own mail caused: their "any news?" answered, a pace or a stop
/// confirmed, a reopen after their reply. The acknowledgement is not one (one per incident).
fn answers_the_customer(mail: &Mail) -> bool {
    mail.caused_by.is_some() && matches!(mail.kind, MailKind::Status | MailKind::Reopened)
}

fn first_reached(
    conn: &Connection,
    windows: &[CapWindow],
    scope: CapScope<'_>,
    what: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    for window in windows {
        let sent = store::outbox::customer_mail_count(conn, scope, before(now, window.within))?;
        if let Some(reason) = reached(window, sent, what) {
            return Ok(Some(reason));
        }
    }
    Ok(None)
}

/// The reason a window with `sent` mails in it refuses one more, if it does.
pub fn reached(window: &CapWindow, sent: u32, what: &str) -> Option<String> {
    (sent >= window.max).then(|| {
        format!(
            "send cap: {sent} {what} within {} already (limit {})",
            humantime::format_duration(window.within),
            window.max
        )
    })
}

/// Whether a staff member's notifications are over `[staff] notify_cap`: counted apart from
/// any customer's caps, so escalations are never silenced by what a customer received.
pub fn staff_refusal(
    conn: &Connection,
    recipient: &str,
    cap: &CapWindow,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let sent = store::outbox::automatic_mail_since(conn, recipient, before(now, cap.within))?
        .into_iter()
        .filter(|(_, kind)| kind.audience() == Audience::Staff)
        .count();
    Ok((sent >= cap.max as usize).then(|| {
        format!(
            "staff cap: {sent} notifications to {recipient} within {} already (limit {}); \
             held for the next digest",
            humantime::format_duration(cap.within),
            cap.max
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_addresses_case_and_gmail_dots_fold_into_one_mailbox() {
        let rules = MailboxRules::default();
        let victim = mailbox("victim@example.test", &rules);
        for address in [
            "victim+1@example.test",
            "Victim+anything+more@EXAMPLE.test",
            "VICTIM@example.test.",
        ] {
            assert_eq!(mailbox(address, &rules), victim, "{address}");
        }
        assert_eq!(
            mailbox("Ann.Lee+shop@GoogleMail.com", &rules),
            "annlee@gmail.com",
            "googlemail.com is gmail.com"
        );
        assert_eq!(mailbox("a.nnlee@gmail.com", &rules), "annlee@gmail.com");
        assert_eq!(
            mailbox("ann.lee@example.com", &rules),
            "ann.lee@example.com",
            "dots matter elsewhere"
        );
        assert_eq!(
            mailbox("victim-1@example.test", &rules),
            "victim-1@example.test",
            "`-` is a sub-address only where configured"
        );
        let dash = MailboxRules {
            subaddress_separators: vec!['+', '-'],
            ..MailboxRules::default()
        };
        assert_eq!(mailbox("victim-1@example.test", &dash), victim);
        assert_eq!(
            mailbox("+only@example.test", &rules),
            "+only@example.test",
            "a local part that is all sub-address stays whole"
        );
        assert_eq!(domain("Ann@Example.COM."), "example.com");
    }

    #[test]
    fn a_window_refuses_at_its_limit_and_says_which() {
        let w = CapWindow {
            max: 3,
            within: std::time::Duration::from_secs(600),
        };
        assert_eq!(reached(&w, 2, "x"), None);
        let reason = reached(&w, 3, "automatic mails to a@b").expect("reached");
        assert_eq!(
            reason,
            "send cap: 3 automatic mails to a@b within 10m already (limit 3)"
        );
    }
}
