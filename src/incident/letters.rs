//! What every mail about an incident can say, and how it threads.
//!
//! [`to_customer`] is the one door every customer mail goes through, the acknowledgement
//! included: it fills in the template data, threads the mail into the customer's
//! conversation, and carries the promise it makes.

use chrono::{DateTime, Utc};

use super::effects::Mail;
use super::{policy, Incident, IncidentNo, MailKind, MessageRow};
use crate::clock::{human_duration, stamp};
use crate::config::{Config, Treatment};
use crate::templates::{
    CustomerData, HeldData, IncidentData, MailData, RecurringData, ResolutionData, StaffData,
    SupportData,
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
pub fn mail_data(incident: &Incident, config: &Config, promise: Option<DateTime<Utc>>) -> MailData {
    let tz = config.cadence.timezone;
    let lang = language(incident, config);
    let human_time = |t: DateTime<Utc>, _| crate::lang::human_time(t, tz, &lang);
    MailData {
        incident: IncidentData {
            number: incident.number.0,
            token: incident.token.clone(),
            subject: incident.subject.clone(),
            summary: incident.summary.clone(),
            opened: human_time(incident.opened_at, tz),
            opened_iso: stamp(incident.opened_at),
            state: incident.state.as_str().to_string(),
            tags: incident.tags.clone(),
            recurring: incident.recurring,
        },
        customer: CustomerData {
            name: incident.customer_name.clone(),
            address: incident.customer_address.clone(),
            greeting_name: crate::mail::facts::greeting_name(
                incident.customer_name.as_deref(),
                config.wording.greeting,
            ),
        },
        support: SupportData {
            name: config.support.name.clone(),
            address: config.support.address.clone(),
        },
        next_update: promise.map(|t| human_time(t, tz)).unwrap_or_default(),
        next_update_iso: promise.map(stamp).unwrap_or_default(),
        cadence: human_duration(incident.cadence),
        pace: super::pace::in_words(incident.cadence, &lang),
        next_update_theirs: promise
            .map(|t| crate::lang::their_time(t, tz, incident.customer_utc_offset, &lang))
            .unwrap_or_default(),
        recurring: recurring_data(incident, &lang),
        problem: incident.subject.clone(),
        check_question: incident.check_question.clone().unwrap_or_default(),
        resolution: ResolutionData {
            root_cause: incident.root_cause.clone().unwrap_or_default(),
            prevention: incident.prevention.clone().unwrap_or_default(),
            compensation: incident.compensation.clone().unwrap_or_default(),
        },
        close_after: if lang == "de" {
            // As in "innerhalb von vier Tagen".
            since_words(
                chrono::Duration::from_std(config.cadence.close_after).unwrap_or_default(),
                &lang,
            )
        } else {
            human_duration(config.cadence.close_after)
        },
        previous_incident: incident.previous_incident.map_or(0, |n| n.0),
        lang,
        ..MailData::default()
    }
}

/// The language the customer is answered in: staff's choice or their mail's, else the default.
pub fn language(incident: &Incident, config: &Config) -> String {
    incident
        .lang
        .clone()
        .unwrap_or_else(|| config.language.default.clone())
}

/// What the templates know about a repeated problem.
fn recurring_data(incident: &Incident, lang: &str) -> RecurringData {
    let count = incident.repeat_count.max(1);
    RecurringData {
        count,
        count_words: if count > 1 {
            ordinal(count, lang)
        } else {
            String::new()
        },
        previous: incident.previous_incident.map_or(0, |n| n.0),
        since: incident
            .previous_opened_at
            .map(|at| since_words(incident.opened_at - at, lang))
            .unwrap_or_default(),
    }
}

/// How long between two incidents, as a person says it: "2 days", "three weeks", "2 months"
/// ("2 Tagen", "drei Wochen" in German, as in "innerhalb von …").
pub fn since_words(span: chrono::Duration, lang: &str) -> String {
    let days = span.num_days().max(0);
    let de = lang == "de";
    let (n, en_one, en_many, de_one, de_many) = if days < 1 {
        (
            span.num_hours().max(1),
            "an hour",
            "hours",
            "einer Stunde",
            "Stunden",
        )
    } else if days < 14 {
        (days, "a day", "days", "einem Tag", "Tagen")
    } else if days < 60 {
        (days / 7, "a week", "weeks", "einer Woche", "Wochen")
    } else {
        (days / 30, "a month", "months", "einem Monat", "Monaten")
    };
    const EN: [&str; 11] = [
        "", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    const DE: [&str; 11] = [
        "", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
    ];
    let number = |table: &[&str; 11]| {
        usize::try_from(n)
            .ok()
            .and_then(|i| table.get(i))
            .map_or(n.to_string(), |w| w.to_string())
    };
    match (n, de) {
        (1, false) => en_one.to_string(),
        (1, true) => de_one.to_string(),
        (_, false) => format!("{} {en_many}", number(&EN)),
        (_, true) => format!("{} {de_many}", number(&DE)),
    }
}

/// "second", "third" … / "zweiten", "dritten" … (as in "zum zweiten Mal"); "11th" / "11."
/// beyond ten.
pub fn ordinal(n: i64, lang: &str) -> String {
    const EN: [&str; 11] = [
        "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth",
    ];
    // As in "zum zweiten Mal", the one way the German templates use it.
    const DE: [&str; 11] = [
        "", "ersten", "zweiten", "dritten", "vierten", "fünften", "sechsten", "siebten", "achten",
        "neunten", "zehnten",
    ];
    let table = if lang == "de" { &DE } else { &EN };
    match usize::try_from(n).ok().and_then(|i| table.get(i)) {
        Some(word) if !word.is_empty() => word.to_string(),
        _ if lang == "de" => format!("{n}."),
        _ => format!("{n}th"),
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
    config: &Config,
    mail: CustomerMail,
    shape: impl FnOnce(&mut MailData),
) -> Mail {
    let CustomerMail {
        kind,
        to,
        promise,
        caused_by,
    } = mail;
    let mut data = mail_data(incident, config, promise);
    shape(&mut data);
    let plain = policy::for_incident(incident, &config.trust) != Treatment::Full;
    let mut to_name = to.name;
    if plain {
        // Nothing the sender wrote may travel back out: they may not be who they say.
        data.plain = true;
        data.incident.subject.clear();
        data.incident.summary.clear();
        data.customer.name = None;
        data.customer.greeting_name.clear();
        data.facts.clear();
        data.problem.clear();
        to_name = None;
    }
    let (in_reply_to, references) = if plain {
        // A forger picks the Message-IDs of the mail we answer: echoed, they would thread our
        // mail into the victim's conversation with someone else. Only our own ids go out.
        let domain = format!("@{}", config.support.domain().to_ascii_lowercase());
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
pub fn digest(
    held: &[(IncidentNo, MailKind, DateTime<Utc>, String)],
    recipient: &str,
    config: &Config,
) -> Option<Mail> {
    let (newest, _, _, _) = held.last()?;
    let tz = config.cadence.timezone;
    let lines = held
        .iter()
        .map(|(n, kind, at, subject)| {
            format!(
                "#{n} {}: {} ({})",
                kind_in_words(*kind),
                if subject.is_empty() {
                    "(no subject)"
                } else {
                    subject
                },
                at.with_timezone(&tz).format("%a %H:%M %Z")
            )
        })
        .collect::<Vec<_>>();
    let mut data = MailData {
        support: SupportData {
            name: config.support.name.clone(),
            address: config.support.address.clone(),
        },
        ..MailData::default()
    };
    data.incident.number = newest.0;
    data.staff = StaffData {
        reason: format!(
            "{} notifications since your limit of {} per {} was reached",
            held.len(),
            config.staff.notify_cap.max,
            human_duration(config.staff.notify_cap.within)
        ),
        digest: lines,
        ..StaffData::default()
    };
    Some(outside_thread(MailKind::StaffDigest, recipient, data))
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
pub fn global_cap_notice(incident: &Incident, reason: &str, config: &Config) -> Vec<Mail> {
    let mut data = mail_data(incident, config, incident.next_update_at);
    data.lang.clear();
    data.staff = StaffData {
        reason: reason.to_string(),
        ..StaffData::default()
    };
    config
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
    config: &Config,
) -> Vec<Mail> {
    let mut data = mail_data(incident, config, incident.next_update_at);
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
    config: &Config,
) -> Mail {
    let mut data = mail_data(incident, config, incident.next_update_at);
    data.lang.clear();
    data.staff = StaffData {
        member: member.to_string(),
        refusal: format!("the {kind} mail with your words was not sent to the customer: {reason}"),
        ..StaffData::default()
    };
    outside_thread(MailKind::StaffRefused, member, data)
}

/// A staff notification's kind, as a digest line says it.
fn kind_in_words(kind: MailKind) -> &'static str {
    match kind {
        MailKind::StaffNew => "new incident",
        MailKind::StaffReply => "the customer wrote",
        MailKind::StaffReopened => "reopened",
        MailKind::Escalation => "needs attention",
        MailKind::StaffAtRisk => "a promised update has no news",
        MailKind::StaffUndeliverable => "the customer's address bounced",
        MailKind::StaffForged => "a mail claimed to come from staff",
        MailKind::StaffRefused => "a command was refused",
        MailKind::StaffCapped => "automatic mail held back by the global cap",
        _ => "notification",
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
