//! What a sender's proof earns them.
//!
//! Anyone can write any `From:`. Mail whose sender the receiving server verified is answered in
//! full; otherwise `[trust]` decides: by default an unverified sender's incident opens and is
//! answered *plainly* (no mail repeats a word they wrote, so the support address cannot be used
//! to send someone else the attacker's words), and they cannot set the pace, copy people in, or
//! clear an undeliverable mark; a failed check keeps the mail for staff. A staff member acting
//! on an incident vouches for it: from then on it is answered in full.

use crate::config::{
    CadenceConfig, Config, EscalationConfig, LanguageConfig, RecurringConfig, RepliesConfig,
    StaffConfig, SupportConfig, Treatment, TrustPolicy, WordingConfig,
};
use crate::mail::{Person, Trust, Verdict};
use crate::templates::{Intents, Phrases, Said};

use super::Incident;

/// What a decision may know of the configuration: the rules it applies and the words it says
/// them with; never endpoints, paths or credentials.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub support: &'a SupportConfig,
    pub cadence: &'a CadenceConfig,
    pub staff: &'a StaffConfig,
    pub escalation: &'a EscalationConfig,
    pub recurring: &'a RecurringConfig,
    pub replies: &'a RepliesConfig,
    pub trust: &'a TrustPolicy,
    pub wording: &'a WordingConfig,
    pub language: &'a LanguageConfig,
    pub phrases: &'a Phrases,
    /// What customers write that followupd acts on.
    pub intents: &'a Intents,
    /// The languages with a template set of their own besides the default.
    pub template_sets: &'a [String],
}

impl<'a> Policy<'a> {
    pub fn new(
        config: &'a Config,
        phrases: &'a Phrases,
        intents: &'a Intents,
        template_sets: &'a [String],
    ) -> Policy<'a> {
        Policy {
            support: &config.support,
            cadence: &config.cadence,
            staff: &config.staff,
            escalation: &config.escalation,
            recurring: &config.recurring,
            replies: &config.replies,
            trust: &config.trust,
            wording: &config.wording,
            language: &config.language,
            phrases,
            intents,
            template_sets,
        }
    }

    /// `said` as staff read it: in the default set's words (events, reasons, refusals).
    pub fn say(&self, said: &Said) -> String {
        self.phrases.say(None, said)
    }

    /// `said` in `lang` (a customer's language); the default set's words for the default.
    pub fn say_in(&self, lang: &str, said: &Said) -> String {
        self.phrases.say(self.lang_set(lang), said)
    }

    /// Whether customers writing in `lang` can be answered in it: the default, or a language
    /// with its own template set.
    pub fn answers_in(&self, lang: &str) -> bool {
        lang == self.language.default || self.template_sets.iter().any(|l| l == lang)
    }

    /// The phrase set of `lang`: None (the default set) for the default language.
    pub fn lang_set<'l>(&self, lang: &'l str) -> Option<&'l str> {
        (lang != self.language.default).then_some(lang)
    }
}

/// Whether a mail claiming a staff sender is proven enough to act as staff: with a trusted
/// receiving server (`sender_check`), verified with strict alignment (the From domain itself
/// signed or sent it), or relaxed where `[staff] alignment = "relaxed"`.
pub fn staff_sender_proven(sender_check: bool, trust: &Verdict, staff: &StaffConfig) -> bool {
    !sender_check || (trust.level == Trust::Verified && (trust.strict || staff.relaxed_alignment))
}

/// Whether a notification sent on `day` (days since 1970; None for an id made before ids
/// carried their day) may still be answered on `today`, under `[staff] reply_valid_for`.
pub fn notification_still_answerable(day: Option<i64>, today: i64, staff: &StaffConfig) -> bool {
    let valid_days = i64::try_from(staff.reply_valid_for.as_secs() / 86_400).unwrap_or(i64::MAX);
    day.is_some_and(|day| today.saturating_sub(day) <= valid_days)
}

/// How a mail with this sender proof is treated.
pub fn for_sender(trust: Trust, policy: &TrustPolicy) -> Treatment {
    match trust {
        Trust::Verified => Treatment::Full,
        Trust::Unverified => policy.unverified,
        Trust::Failed => policy.failed,
    }
}

/// How mail about `incident` is treated: by what proved the address it goes to, unless staff
/// vouched.
pub fn for_incident(incident: &Incident, policy: &TrustPolicy) -> Treatment {
    if incident.vouched_by.is_some() {
        Treatment::Full
    } else {
        for_sender(reply_trust(incident), policy)
    }
}

/// Whether nobody has proven that the address `incident`'s mail goes to wants it: neither the
/// receiving server nor a staff member. The stricter send caps count such mail (`[send_caps]
/// unverified_windows`).
pub fn unproven(incident: &Incident) -> bool {
    reply_trust(incident) != Trust::Verified && incident.vouched_by.is_none()
}

/// How far the incident's reply address is proven. A verified From proves its own domain; a
/// Reply-To in another domain is only what the sender asked for: anyone with a domain of their
/// own could otherwise make us write to whomever they like.
fn reply_trust(incident: &Incident) -> Trust {
    let same =
        domain(&incident.reply_address).eq_ignore_ascii_case(domain(&incident.customer_address));
    match incident.sender_trust {
        Trust::Verified if !same => Trust::Unverified,
        trust => trust,
    }
}

/// The one address an incident's mail goes to, chosen when it opens: the Reply-To the sender
/// asked for, unless it is ours, or the sender is not answered in full and the Reply-To is in
/// another domain than From (a forged From with a Reply-To elsewhere must not split an
/// incident's mail between two people, or send it to a third).
pub fn reply_address<'a>(
    from: &'a Person,
    reply_to: Option<&'a Person>,
    treatment: Treatment,
    is_own: impl Fn(&str) -> bool,
) -> &'a Person {
    let Some(reply_to) = reply_to else {
        return from;
    };
    if is_own(&reply_to.address) {
        return from;
    }
    let same_domain = domain(&reply_to.address).eq_ignore_ascii_case(domain(&from.address));
    if treatment == Treatment::Full || same_domain {
        reply_to
    } else {
        from
    }
}

fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::{notification_still_answerable, staff_sender_proven};
    use crate::config::StaffConfig;
    use crate::mail::{Trust, Verdict};

    #[test]
    fn a_staff_reply_needs_a_strict_pass_unless_relaxed_and_a_fresh_notification() {
        let staff = StaffConfig::default();
        let verdict = |level, strict| Verdict {
            level,
            reason: String::new(),
            strict,
        };
        assert!(staff_sender_proven(
            false,
            &verdict(Trust::Unverified, false),
            &staff
        ));
        assert!(staff_sender_proven(
            true,
            &verdict(Trust::Verified, true),
            &staff
        ));
        assert!(!staff_sender_proven(
            true,
            &verdict(Trust::Verified, false),
            &staff
        ));
        assert!(!staff_sender_proven(
            true,
            &verdict(Trust::Unverified, false),
            &staff
        ));
        let relaxed = StaffConfig {
            relaxed_alignment: true,
            ..StaffConfig::default()
        };
        assert!(staff_sender_proven(
            true,
            &verdict(Trust::Verified, false),
            &relaxed
        ));
        // 90 days by default: day 0 answerable on day 90, not on day 91; an id without its
        // day never.
        assert!(notification_still_answerable(Some(0), 90, &staff));
        assert!(!notification_still_answerable(Some(0), 91, &staff));
        assert!(!notification_still_answerable(None, 0, &staff));
    }

    use super::*;

    fn person(address: &str) -> Person {
        Person {
            address: address.into(),
            name: None,
        }
    }

    #[test]
    fn a_verified_sender_is_answered_in_full_whatever_the_policy_says() {
        let strict = TrustPolicy {
            unverified: Treatment::Hold,
            failed: Treatment::Hold,
        };
        assert_eq!(for_sender(Trust::Verified, &strict), Treatment::Full);
        assert_eq!(for_sender(Trust::Unverified, &strict), Treatment::Hold);
        let default = TrustPolicy::default();
        assert_eq!(for_sender(Trust::Unverified, &default), Treatment::Plain);
        assert_eq!(for_sender(Trust::Failed, &default), Treatment::Hold);
    }

    #[test]
    fn a_reply_to_elsewhere_is_used_only_for_a_sender_answered_in_full() {
        let from = person("ann@example.com");
        let same = person("ann.private@example.com");
        let elsewhere = person("victim@elsewhere.test");
        let own = |a: &str| a == "support@example.test";
        assert_eq!(
            reply_address(&from, Some(&elsewhere), Treatment::Full, own),
            &elsewhere
        );
        assert_eq!(
            reply_address(&from, Some(&elsewhere), Treatment::Plain, own),
            &from,
            "an unverified From with a Reply-To in another domain is answered at From"
        );
        assert_eq!(
            reply_address(&from, Some(&same), Treatment::Plain, own),
            &same
        );
        assert_eq!(
            reply_address(
                &from,
                Some(&person("support@example.test")),
                Treatment::Full,
                own
            ),
            &from,
            "never our own address"
        );
        assert_eq!(reply_address(&from, None, Treatment::Plain, own), &from);
    }

    #[test]
    fn a_verified_sender_proves_its_own_domain_not_the_reply_to_it_chose() {
        let mut incident = crate::incident::decide::tests_support::incident();
        let policy = TrustPolicy::default();
        incident.sender_trust = Trust::Verified;
        assert_eq!(for_incident(&incident, &policy), Treatment::Full);
        assert!(!unproven(&incident));
        incident.reply_address = "victim@elsewhere.test".into();
        assert_eq!(for_incident(&incident, &policy), Treatment::Plain);
        assert!(unproven(&incident));
        incident.vouched_by = Some("anna".into());
        assert_eq!(for_incident(&incident, &policy), Treatment::Full);
        assert!(!unproven(&incident));
        incident.vouched_by = None;
        incident.reply_address = "ann.home@example.test".into();
        assert!(!unproven(&incident), "the same domain");
    }
}
