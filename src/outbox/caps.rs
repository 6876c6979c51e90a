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
use crate::incident::caps as rules;
use crate::incident::{Audience, IncidentNo, Mail};
use crate::store::{self, StoreError};
use crate::templates::Said;

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
    pub reason: Said,
    /// The global cap: staff are told.
    pub global: bool,
}

/// Why automatic mail about `incident` to `mail.to` may not go out now, if it may not: the
/// address bounced, or a cap ([`crate::incident::caps`]) is reached. Only counts here.
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
            reason: rules::undeliverable(recipient, u.since, &u.reason),
            global: false,
        }));
    }
    let mailbox = mailbox(recipient, &caps.mailbox);
    let domain = domain(recipient);
    for cap in rules::customer_caps(incident, mail, caps, &mailbox, &domain) {
        for window in cap.windows {
            let sent =
                store::outbox::customer_mail_count(conn, cap.scope, before(now, window.within))?;
            if let Some(reason) = rules::reached(window, sent, cap.scope) {
                return Ok(Some(Refusal {
                    reason,
                    global: cap.global,
                }));
            }
        }
    }
    Ok(None)
}

/// Whether a staff member's notifications are over `[staff] notify_cap`: counted apart from
/// any customer's caps, so escalations are never silenced by what a customer received.
pub fn staff_refusal(
    conn: &Connection,
    recipient: &str,
    cap: &CapWindow,
    now: DateTime<Utc>,
) -> Result<Option<Said>, StoreError> {
    let sent = store::outbox::automatic_mail_since(conn, recipient, before(now, cap.within))?
        .into_iter()
        .filter(|(_, kind)| kind.audience() == Audience::Staff)
        .count();
    Ok(rules::staff_reached(cap, sent, recipient))
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
}
