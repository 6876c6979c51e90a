//! What every mail about an incident can say, and how it threads.
//!
//! [`to_customer`] is the one door every customer mail goes through, the acknowledgement
//! included: it fills in the template data, threads the mail into the customer's
//! conversation, and carries the promise it makes.

use chrono::{DateTime, Utc};

use super::effects::Mail;
use super::policy::Policy;
use super::{policy, Incident, IncidentNo, MailKind, MessageRow};
use crate::clock::stamp;
use crate::config::Treatment;
use crate::said;
use crate::templates::{
    CustomerData, HeldData, IncidentData, MailData, Phrases, RecurringData, ResolutionData, Said,
    StaffData, SupportData,
};

/// References kept on a mail: the conversation's first message and the most recent ones, and
/// never more than [`MAX_REFERENCES_BYTES`] in all. A thread of any length, or a sender's 3000
/// References, costs a few hundred bytes (RFC 5322 3.6.4 allows trimming the middle).
pub const MAX_REFERENCES: usize = 6;
pub const MAX_REFERENCES_BYTES: usize = 600;
/// The longest Message-ID we repeat in a header; longer ones are someone's noise.
pub const MAX_ID_LEN: usize = 250;

/// The conversation with the customer, oldest first: every Message-ID they sent or received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    pub ids: Vec<String>,
    /// The Outlook conversation our mail continues (hex Thread-Index root).
    pub thread_root: Option<String>,
}

impl Conversation {
    /// In-Reply-To (the newest message) and References (the first, then the newest, at most
    /// [`MAX_REFERENCES`] and [`MAX_REFERENCES_BYTES`], in the conversation's order). Only
    /// well-formed ASCII Message-IDs go into a header: anything else cannot be encoded there.
    pub fn threading(&self) -> (Option<String>, Vec<String>) {
        let ids: Vec<&String> = self.ids.iter().filter(|id| well_formed_id(id)).collect();
        let mut refs: Vec<String> = Vec::new();
        if let Some(first) = ids.first() {
            refs.push((*first).clone());
        }
        let tail = ids.len().saturating_sub(MAX_REFERENCES - 1);
        for id in ids.iter().skip(tail.max(1)) {
            if !refs.contains(id) {
                refs.push((*id).clone());
            }
        }
        // `<id>` and a space each: drop from the middle until it fits.
        let bytes = |refs: &[String]| refs.iter().map(|r| r.len() + 3).sum::<usize>();
        while refs.len() > 2 && bytes(&refs) > MAX_REFERENCES_BYTES {
            refs.remove(1);
        }
        (ids.last().map(|id| (*id).clone()), refs)
    }
}

/// Whether `id` (without its angle brackets) is a Message-ID as RFC 5322 3.6.4 writes it:
/// `dot-atom-text "@" (dot-atom-text / "[" dtext "]")`, ASCII, at most [`MAX_ID_LEN`] bytes.
pub fn well_formed_id(id: &str) -> bool {
    fn atext(c: char) -> bool {
        c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
    }
    fn dot_atom(text: &str) -> bool {
        !text.is_empty()
            && text
                .split('.')
                .all(|a| !a.is_empty() && a.chars().all(atext))
    }
    if id.len() > MAX_ID_LEN || !id.is_ascii() {
        return false;
    }
    let Some((left, right)) = id.split_once('@') else {
        return false;
    };
    let literal = right
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|d| {
            d.chars()
                .all(|c| c.is_ascii_graphic() && !"[]\\".contains(c))
        });
    dot_atom(left) && (dot_atom(right) || literal)
}

/// Template data for a mail about `incident`. `promise` is the next update the mail promises
/// (none for resolution, check-back and escalation).
pub fn mail_data(incident: &Incident, policy: &Policy, promise: Option<DateTime<Utc>>) -> MailData {
    let tz = policy.cadence.timezone;
    let lang = language(incident, policy);
    let words = policy.phrases;
    let set = policy.lang_set(&lang);
    let human_time = |t: DateTime<Utc>| words.human_time(set, t, tz);
    let resolution = incident.resolution.as_ref().map(|r| &r.resolution);
    MailData {
        incident: IncidentData {
            number: incident.number.0,
            token: incident.token.clone(),
            subject: incident.subject.clone(),
            summary: incident.summary.clone(),
            opened: human_time(incident.opened_at),
            opened_iso: stamp(incident.opened_at),
            state: incident.state().as_str().to_string(),
            tags: incident.tags.clone(),
            recurring: incident.recurring,
            assignee: incident.assigned_to.clone().unwrap_or_default(),
        },
        customer: CustomerData {
            name: incident.customer_name.clone(),
            address: incident.customer_address.clone(),
            greeting_name: crate::mail::facts::greeting_name(
                incident.customer_name.as_deref(),
                policy.wording.greeting,
            ),
            full_name_greeting: policy.wording.greeting == crate::config::GreetingRule::DisplayName,
        },
        support: SupportData {
            name: policy.support.name.clone(),
            address: policy.support.address.clone(),
        },
        next_update: promise.map(human_time).unwrap_or_default(),
        next_update_iso: promise.map(stamp).unwrap_or_default(),
        cadence: words.duration(set, incident.cadence),
        pace: words.pace(set, incident.cadence),
        next_update_short: String::new(),
        next_update_theirs: promise
            .map(|t| words.their_time(set, t, tz, incident.customer_utc_offset))
            .unwrap_or_default(),
        recurring: recurring_data(incident, words, set),
        problem: incident.subject.clone(),
        check_question: resolution
            .and_then(|r| r.question.clone())
            .unwrap_or_default(),
        resolution: ResolutionData {
            root_cause: resolution.map(|r| r.root_cause.clone()).unwrap_or_default(),
            prevention: resolution.map(|r| r.prevention.clone()).unwrap_or_default(),
            compensation: resolution
                .and_then(|r| r.compensation.clone())
                .unwrap_or_default(),
        },
        close_after: {
            let after = policy.cadence.close_after;
            words.say(
                set,
                &said!(
                    "mail.close_after",
                    duration = words.duration(set, after),
                    since = words.since(set, chrono::Duration::from_std(after).unwrap_or_default()),
                ),
            )
        },
        previous_incident: incident.previous_incident.map_or(0, |n| n.0),
        lang,
        ..MailData::default()
    }
}

/// The language the customer is answered in: staff's choice or their mail's, else the default.
pub fn language(incident: &Incident, policy: &Policy) -> String {
    incident
        .lang
        .clone()
        .filter(|lang| policy.answers_in(lang))
        .unwrap_or_else(|| policy.language.default.clone())
}

/// What the templates know about a repeated problem.
fn recurring_data(incident: &Incident, words: &Phrases, set: Option<&str>) -> RecurringData {
    let count = incident.repeat_count.max(1);
    RecurringData {
        count,
        count_words: if count > 1 {
            words.ordinal(set, count)
        } else {
            String::new()
        },
        previous: incident.previous_incident.map_or(0, |n| n.0),
        since: incident
            .previous_opened_at
            .map(|at| words.since(set, incident.opened_at - at))
            .unwrap_or_default(),
    }
}

/// Who a customer mail goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub name: Option<String>,
}

impl Recipient {
    /// The incident's one reply address, chosen when it opened.
    pub fn customer_of(incident: &Incident) -> Recipient {
        Recipient {
            address: incident.reply_address.clone(),
            name: incident.reply_name.clone(),
        }
    }
}

/// What a customer mail is: its kind, who gets it, the next update it promises, and the message
/// it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMail {
    pub kind: MailKind,
    pub to: Recipient,
    pub promise: Option<DateTime<Utc>>,
    pub caused_by: Option<MessageRow>,
}

/// A customer mail: the one door. `shape` sets what only this mail says (a note, a flag).
pub fn to_customer(
    incident: &Incident,
    conversation: &Conversation,
    policy: &Policy,
    mail: CustomerMail,
    shape: impl FnOnce(&mut MailData),
) -> Mail {
    let CustomerMail {
        kind,
        to,
        promise,
        caused_by,
    } = mail;
    let mut data = mail_data(incident, policy, promise);
    shape(&mut data);
    let plain = policy::for_incident(incident, policy.trust) != Treatment::Full;
    let mut to_name = to.name;
    if plain {
        // Nothing the sender wrote may travel back out: they may not be who they say.
        data.plain = true;
        data.incident.subject.clear();
        data.incident.summary.clear();
        data.customer.name = None;
        data.customer.greeting_name.clear();
        data.facts.clear();
        data.understood = Default::default();
        data.attachments.clear();
        data.problem.clear();
        to_name = None;
    }
    let (in_reply_to, references) = if plain {
        // A forger picks the Message-IDs of the mail we answer: echoed, they would thread our
        // mail into the victim's conversation with someone else. Only our own ids go out.
        let domain = format!("@{}", policy.support.domain().to_ascii_lowercase());
        Conversation {
            ids: conversation
                .ids
                .iter()
                .filter(|id| id.starts_with("fu.") && id.to_ascii_lowercase().ends_with(&domain))
                .cloned()
                .collect(),
            thread_root: None,
        }
        .threading()
    } else {
        conversation.threading()
    };
    Mail {
        kind,
        to: to.address,
        to_name,
        unverified: policy::unproven(incident),
        data,
        promise,
        caused_by,
        in_reply_to,
        references,
        thread_root: conversation.thread_root.clone(),
        attachments_from: None,
        staff_by: None,
    }
}

/// One mail to a staff member for the notifications the staff cap held back: a line for each
/// (incident, what, when, subject), in the team's time zone. None when there is nothing held.
pub fn digest(held: &[DigestLine], recipient: &str, policy: &Policy) -> Option<Mail> {
    let newest = held.last()?.incident;
    let tz = policy.cadence.timezone;
    let words = policy.phrases;
    let lines = held
        .iter()
        .map(|line| {
            let local = line.at.with_timezone(&tz);
            let subject = if line.subject.is_empty() {
                policy.say(&said!("digest.no_subject"))
            } else {
                line.subject.clone()
            };
            let day = words.word(
                None,
                "words.weekdays_short",
                chrono::Datelike::weekday(&local).num_days_from_monday() as usize,
            );
            let assigned = line
                .assignee
                .as_ref()
                .map(|to| policy.say(&said!("digest.assigned", assignee = to)))
                .unwrap_or_default();
            policy.say(&said!(
                "digest.line",
                number = line.incident,
                what = policy.say(&kind_in_words(line.kind)),
                subject = subject,
                day = day,
                time = local.format("%H:%M"),
                zone = local.format("%Z"),
                assigned = assigned
            ))
        })
        .collect::<Vec<_>>();
    let mut data = MailData {
        support: SupportData {
            name: policy.support.name.clone(),
            address: policy.support.address.clone(),
        },
        ..MailData::default()
    };
    data.incident.number = newest.0;
    data.staff = StaffData {
        reason: policy.say(&said!(
            "digest.reason",
            count = held.len(),
            max = policy.staff.notify_cap.max,
            within = words.duration(None, policy.staff.notify_cap.within),
        )),
        digest: lines,
        ..StaffData::default()
    };
    Some(outside_thread(MailKind::StaffDigest, recipient, data))
}

/// One line of a digest: a notification held back, or a new incident of a burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLine {
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub at: DateTime<Utc>,
    pub subject: String,
    pub assignee: Option<String>,
}

/// A mail to one staff address outside any incident's thread (a digest, a notice about the
/// mail itself rather than about the incident).
fn outside_thread(kind: MailKind, to: &str, data: MailData) -> Mail {
    Mail {
        kind,
        to: to.to_string(),
        to_name: None,
        unverified: false,
        data,
        promise: None,
        caused_by: None,
        in_reply_to: None,
        references: Vec::new(),
        thread_root: None,
        attachments_from: None,
        staff_by: None,
    }
}

/// To staff: the global send cap (`[send_caps] global_windows`) held automatic mail to
/// customers back, first on `incident`. One mail per staff recipient, outside any thread.
pub fn global_cap_notice(incident: &Incident, reason: &str, policy: &Policy) -> Vec<Mail> {
    let mut data = mail_data(incident, policy, incident.next_update_at());
    data.lang.clear();
    data.staff = StaffData {
        reason: reason.to_string(),
        ..StaffData::default()
    };
    policy
        .staff
        .recipients()
        .iter()
        .map(|to| outside_thread(MailKind::StaffCapped, to, data.clone()))
        .collect()
}

/// Tells `to` (staff) that a mail to the customer was stopped because it carried staff-only
/// text, and which lines.
pub fn stopped_notice(
    incident: &Incident,
    kind: MailKind,
    found: &[String],
    to: &[String],
    policy: &Policy,
) -> Vec<Mail> {
    let mut data = mail_data(incident, policy, incident.next_update_at());
    data.lang.clear();
    data.staff = StaffData {
        held: HeldData {
            stopped: kind.as_str().to_string(),
            found: found.to_vec(),
            ..HeldData::default()
        },
        ..StaffData::default()
    };
    to.iter()
        .map(|to| outside_thread(MailKind::StaffHeld, to, data.clone()))
        .collect()
}

/// Tells a staff member that the customer mail carrying their words was not sent, and why.
pub fn not_sent_notice(
    incident: &Incident,
    kind: MailKind,
    member: &str,
    reason: &str,
    policy: &Policy,
) -> Mail {
    let mut data = mail_data(incident, policy, incident.next_update_at());
    data.lang.clear();
    data.staff = StaffData {
        member: member.to_string(),
        refusal: policy.say(&said!("staff.not_sent", kind = kind, reason = reason)),
        ..StaffData::default()
    };
    outside_thread(MailKind::StaffRefused, member, data)
}

/// A staff notification's kind, as a digest line says it.
fn kind_in_words(kind: MailKind) -> Said {
    match kind {
        MailKind::StaffNew => said!("digest.kind.new"),
        MailKind::StaffReply => said!("digest.kind.reply"),
        MailKind::StaffReopened => said!("digest.kind.reopened"),
        MailKind::Escalation => said!("digest.kind.escalation"),
        MailKind::StaffAtRisk => said!("digest.kind.at_risk"),
        MailKind::StaffUndeliverable => said!("digest.kind.undeliverable"),
        MailKind::StaffForged => said!("digest.kind.forged"),
        MailKind::StaffRefused => said!("digest.kind.refused"),
        MailKind::StaffCapped => said!("digest.kind.capped"),
        _ => said!("digest.kind.other"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(n: usize) -> Conversation {
        Conversation {
            ids: (1..=n).map(|i| format!("m{i}@x")).collect(),
            thread_root: None,
        }
    }

    #[test]
    fn a_short_conversation_threads_to_its_newest_message_with_every_reference() {
        let (reply_to, refs) = conv(3).threading();
        assert_eq!(reply_to.as_deref(), Some("m3@x"));
        assert_eq!(refs, vec!["m1@x", "m2@x", "m3@x"]);
        assert_eq!(conv(0).threading(), (None, vec![]));
    }

    #[test]
    fn a_long_conversation_keeps_its_first_and_newest_references_only() {
        let (reply_to, refs) = conv(3000).threading();
        assert_eq!(reply_to.as_deref(), Some("m3000@x"));
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "m1@x");
        assert_eq!(refs[1], "m2996@x");
        assert_eq!(refs.last().map(String::as_str), Some("m3000@x"));
    }

    #[test]
    fn references_stay_a_few_hundred_bytes_and_carry_only_well_formed_ascii_ids() {
        let long = |i: usize| format!("{}{i}@example.test", "a".repeat(200));
        let mut ids: Vec<String> = (0..3000).map(long).collect();
        ids.push("späm@example.test".into());
        ids.push("no-at-sign".into());
        ids.push("two@@example.test".into());
        ids.push(format!("{}@x", "b".repeat(MAX_ID_LEN)));
        ids.push("a b@example.test".into());
        let conversation = Conversation {
            ids,
            thread_root: None,
        };
        let (reply_to, refs) = conversation.threading();
        assert_eq!(reply_to, Some(long(2999)), "the newest well-formed one");
        let bytes: usize = refs.iter().map(|r| r.len() + 3).sum();
        assert!(bytes <= MAX_REFERENCES_BYTES, "{bytes} bytes");
        assert_eq!(refs.first(), Some(&long(0)));
        assert_eq!(refs.last(), Some(&long(2999)));
        assert!(refs.iter().all(|r| well_formed_id(r)));
    }

    #[test]
    fn message_ids_are_checked_as_rfc_5322_writes_them() {
        for good in [
            "fu.1.abc@example.test",
            "CAF=x+y_z@mail.gmail.com",
            "1234@[127.0.0.1]",
            "a!#$%&'*+-/=?^_`{|}~@x",
        ] {
            assert!(well_formed_id(good), "{good}");
        }
        for bad in [
            "",
            "@x",
            "x@",
            "a..b@x",
            ".a@x",
            "a@x.",
            "é@x",
            "a\r\nBcc: x@y@z",
            "a@[x]y",
            "<a@x>",
        ] {
            assert!(!well_formed_id(bad), "{bad:?}");
        }
    }
}
