//! Mail that is recorded but does not move an incident along: an auto-reply, a bounce, the
//! same mail delivered twice, mail kept for a person. What the history says about each, and
//! why mail is held, as facts for the phrase book (`[arrival]` in `phrases.toml`).
//!
//! Intake gathers these; [`crate::apply::note`] words and writes them.

use super::policy::Policy;
use super::{EventKind, IncidentNo, MailKind, MessageRow};
use crate::said;
use crate::templates::Said;

/// How a reply was matched to its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedVia {
    References,
    ThreadIndex,
    SubjectToken,
    /// A new mail, not a reply, naming an order or invoice number of the incident.
    SameFact,
    /// A new mail, not a reply, with the incident's subject, soon after.
    SameSubject,
}

/// Something that arrived and is only recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival<'a> {
    /// Mail no person wrote (an auto-reply, a list mail): never answered.
    Automated {
        class: &'a str,
        from: &'a str,
        reason: &'a str,
    },
    /// A delivery report.
    Bounce {
        from: &'a str,
        incident: Option<IncidentNo>,
        /// It names mail of ours we have a record of.
        ours: bool,
        failed: &'a [String],
        delayed: &'a [String],
        original_ids: &'a [String],
    },
    /// A bounce marked `address` undeliverable.
    Undeliverable { address: &'a str, reason: &'a str },
    /// A proven person wrote from an address that had bounced.
    UndeliverableCleared { address: &'a str },
    /// A reply joined its incident.
    Joined { from: &'a str, via: JoinedVia },
    /// The same message again (another delivery of it).
    Duplicate { uid: u32, of: MessageRow },
    /// Kept for a person, unread by the daemon.
    Quarantined { uid: u32, reason: &'a str },
    /// Over `[intake] max_message_size`: only its headers were fetched.
    Oversize { uid: u32, size: u64 },
}

impl Arrival<'_> {
    /// The history's kind and sentence for it.
    pub fn noted(&self, policy: &Policy) -> (EventKind, String) {
        let list = |items: &[String]| {
            if items.is_empty() {
                policy.say(&said!("arrival.none"))
            } else {
                items.join(", ")
            }
        };
        let (kind, said) = match *self {
            Arrival::Automated {
                class,
                from,
                reason,
            } => (
                EventKind::AutomatedIgnored,
                said!(
                    "arrival.automated",
                    class = class,
                    from = from,
                    reason = reason
                ),
            ),
            Arrival::Bounce {
                from,
                incident,
                ours,
                failed,
                delayed,
                original_ids,
            } => (
                EventKind::Bounce,
                match (incident, ours) {
                    (Some(n), true) => said!(
                        "arrival.bounce.ours",
                        from = from,
                        number = n,
                        failed = list(failed),
                        delayed = list(delayed),
                    ),
                    (Some(n), false) => said!("arrival.bounce.unrecorded", from = from, number = n),
                    (None, _) if original_ids.is_empty() => {
                        said!("arrival.bounce.not_ours_no_id", from = from)
                    }
                    (None, _) => said!(
                        "arrival.bounce.not_ours",
                        from = from,
                        ids = format!("<{}>", original_ids.join(">, <")),
                    ),
                },
            ),
            Arrival::Undeliverable { address, reason } => (
                EventKind::RecipientUndeliverable,
                said!("arrival.undeliverable", address = address, reason = reason),
            ),
            Arrival::UndeliverableCleared { address } => (
                EventKind::UndeliverableCleared,
                said!("arrival.deliverable_again", address = address),
            ),
            Arrival::Joined { from, via } => (
                EventKind::CustomerReply,
                match via {
                    JoinedVia::References => said!("arrival.joined.references", from = from),
                    JoinedVia::ThreadIndex => said!("arrival.joined.thread_index", from = from),
                    JoinedVia::SubjectToken => said!("arrival.joined.subject_token", from = from),
                    JoinedVia::SameFact => said!("arrival.joined.same_fact", from = from),
                    JoinedVia::SameSubject => said!("arrival.joined.same_subject", from = from),
                },
            ),
            Arrival::Duplicate { uid, of } => (
                EventKind::DuplicateDelivery,
                said!("arrival.duplicate", uid = uid, of = of),
            ),
            Arrival::Quarantined { uid, reason } => (
                EventKind::Quarantined,
                said!("arrival.quarantined", uid = uid, reason = reason),
            ),
            Arrival::Oversize { uid, size } => (
                EventKind::Oversize,
                said!("arrival.oversize", uid = uid, size = size),
            ),
        };
        (kind, policy.say(&said))
    }
}

/// Why a bounce marks an address undeliverable: our mail of `kind` to it failed, as a
/// machine-readable report or a mailer-daemon's prose said.
pub fn bounced(kind: MailKind, machine_readable: bool) -> Said {
    if machine_readable {
        said!("arrival.bounced.report", kind = kind)
    } else {
        said!("arrival.bounced.notice", kind = kind)
    }
}

/// Why a mail is kept for a person instead of read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held<'a> {
    /// `[trust]` holds mail whose sender check came out so.
    SenderCheck {
        from: &'a str,
        level: &'a str,
        reason: &'a str,
    },
    /// `[intake] strangers = "hold"`: a stranger pointed at someone else's incident.
    Stranger { from: &'a str, incidents: String },
    /// Mail claiming a staff address without a staff reply's proof.
    ForgedStaff {
        from: &'a str,
        incident: IncidentNo,
        why: &'a str,
    },
    /// A Message-ID seen before, with other content.
    SameIdOtherContent { id: &'a str, of: MessageRow },
    /// Reading it failed (a parse error, a bug): kept for a retry or a person.
    Failed { error: String },
}

impl Held<'_> {
    pub fn reason(&self) -> Said {
        match self {
            Held::SenderCheck {
                from,
                level,
                reason,
            } => said!(
                "arrival.held.sender_check",
                from = from,
                level = level,
                reason = reason
            ),
            Held::Stranger { from, incidents } => {
                said!("arrival.held.stranger", from = from, incidents = incidents)
            }
            Held::ForgedStaff {
                from,
                incident,
                why,
            } => said!(
                "arrival.held.forged_staff",
                from = from,
                number = incident,
                why = why
            ),
            Held::SameIdOtherContent { id, of } => {
                said!("arrival.held.same_id", id = id, of = of)
            }
            Held::Failed { error } => said!("arrival.held.failed", error = error),
        }
    }
}

/// Why a message could not be read as mail.
pub fn unreadable(why: &crate::mail::Unreadable) -> Said {
    use crate::mail::Unreadable;
    match why {
        Unreadable::ParserFailed => said!("arrival.unreadable.parser_failed"),
        Unreadable::NotAMessage => said!("arrival.unreadable.not_a_message"),
        Unreadable::FromUnusable(from) => said!("arrival.unreadable.from_unusable", from = from),
        Unreadable::NoFrom => said!("arrival.unreadable.no_from"),
    }
}

/// Why it is unclear which words of a reply are the writer's, as staff are told.
pub fn doubt(doubt: &crate::mail::own_words::Doubt) -> Said {
    use crate::mail::own_words::Doubt;
    match doubt {
        Doubt::PartlyOurs(line) => said!("arrival.doubt.partly_ours", line = line),
        Doubt::StrayHeader(line) => said!("arrival.doubt.stray_header", line = line),
    }
}

/// "the sender check failed (dkim=fail …)": the part of a held reason staff also get alone.
pub fn sender_check(level: &str, reason: &str) -> Said {
    said!("arrival.sender_check", level = level, reason = reason)
}
