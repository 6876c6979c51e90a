//! Send caps as rules: which windows a mail counts against, and whether a window already full
//! refuses it. The outbox counts what was sent ([`crate::outbox::caps`]); this decides.
//!
//! Customer mail counts per recipient mailbox; mail about an incident nobody could vouch for
//! also counts against stricter per-mailbox and per-domain windows; answers the customer's
//! own mail caused count per incident; everything together counts against the global window.
//! A staff member's own words to the customer count against none: the caps guard customers
//! against automatic mail, they never silence a person. Staff notifications have their own
//! window (`[staff] notify_cap`).

use chrono::{DateTime, Utc};

use super::{IncidentNo, Mail, MailKind};
use crate::clock::stamp;
use crate::config::{CapWindow, SendCaps};
use crate::said;
use crate::templates::Said;

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapScope<'a> {
    /// To one mailbox (folded, see `outbox::caps::mailbox`).
    Mailbox(&'a str),
    /// To one mailbox, about incidents nobody could vouch for.
    UnverifiedMailbox(&'a str),
    /// To one domain, about incidents nobody could vouch for.
    UnverifiedDomain(&'a str),
    /// Answers the customer's own mail caused on one incident (status, reopened).
    Answers(IncidentNo),
    /// Everything.
    All,
}

/// One cap a mail counts against: its windows, what they count, and how staff read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cap<'a> {
    pub windows: &'a [CapWindow],
    pub scope: CapScope<'a>,
    /// The global cap: when it holds mail back, staff are told.
    pub global: bool,
}

/// The caps automatic mail about `incident` to `mailbox` (at `domain`) counts against, in the
/// order they are checked; none for a staff member's own words.
pub fn customer_caps<'a>(
    incident: IncidentNo,
    mail: &Mail,
    caps: &'a SendCaps,
    mailbox: &'a str,
    domain: &'a str,
) -> Vec<Cap<'a>> {
    if mail.staff_by.is_some() {
        return Vec::new();
    }
    let cap = |windows: &'a [CapWindow], scope| Cap {
        windows,
        scope,
        global: false,
    };
    let mut out = vec![cap(&caps.windows, CapScope::Mailbox(mailbox))];
    if mail.unverified {
        out.push(cap(
            &caps.unverified_windows,
            CapScope::UnverifiedMailbox(mailbox),
        ));
        out.push(cap(
            &caps.domain_windows,
            CapScope::UnverifiedDomain(domain),
        ));
    }
    if answers_the_customer(mail) {
        out.push(cap(&caps.answer_windows, CapScope::Answers(incident)));
    }
    out.push(Cap {
        windows: &caps.global_windows,
        scope: CapScope::All,
        global: true,
    });
    out
}

/// A mail the customer's own mail caused: their "any news?" answered, a pace or a stop
/// confirmed, a reopen after their reply. The acknowledgement is not one (one per incident).
fn answers_the_customer(mail: &Mail) -> bool {
    mail.caused_by.is_some() && matches!(mail.kind, MailKind::Status | MailKind::Reopened)
}

/// Why one more mail does not fit `window` with `sent` in it already, if it does not.
pub fn reached(window: &CapWindow, sent: u32, scope: CapScope<'_>) -> Option<Said> {
    if sent < window.max {
        return None;
    }
    // Each scope's phrase names what it counts, beside the same three numbers.
    let (key, counted) = match scope {
        CapScope::Mailbox(m) => ("cap.mailbox", Some(("mailbox", m.to_string()))),
        CapScope::UnverifiedMailbox(m) => {
            ("cap.unverified_mailbox", Some(("mailbox", m.to_string())))
        }
        CapScope::UnverifiedDomain(d) => ("cap.unverified_domain", Some(("domain", d.to_string()))),
        CapScope::Answers(n) => ("cap.answers", Some(("number", n.to_string()))),
        CapScope::All => ("cap.all", None),
    };
    let mut facts = vec![
        ("sent", sent.to_string()),
        (
            "within",
            humantime::format_duration(window.within).to_string(),
        ),
        ("limit", window.max.to_string()),
    ];
    facts.extend(counted);
    Some(Said::new(key, facts))
}

/// Why nothing automatic goes to an address that bounced.
pub fn undeliverable(recipient: &str, since: DateTime<Utc>, reason: &str) -> Said {
    said!(
        "cap.undeliverable",
        recipient = recipient,
        since = stamp(since),
        reason = reason
    )
}

/// Why a staff notification waits for the digest, if it must: `sent` to `recipient` within
/// `[staff] notify_cap` already.
pub fn staff_reached(cap: &CapWindow, sent: usize, recipient: &str) -> Option<Said> {
    (sent >= cap.max as usize).then(|| {
        said!(
            "cap.staff",
            sent = sent,
            recipient = recipient,
            within = humantime::format_duration(cap.within),
            limit = cap.max,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_refuses_at_its_limit_and_says_which() {
        let w = CapWindow {
            max: 3,
            within: std::time::Duration::from_secs(600),
        };
        let scope = CapScope::Mailbox("a@b");
        assert_eq!(reached(&w, 2, scope), None);
        let reason = reached(&w, 3, scope).expect("reached");
        assert_eq!(
            crate::templates::Phrases::default().say(None, &reason),
            "send cap: 3 automatic mails to a@b within 10m already (limit 3)"
        );
    }
}
