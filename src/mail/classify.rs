//! Who wrote a message: a person, or a robot that must never be answered.
//!
//! Every rule is one row of [`RULES`], checked in order; the first that matches decides the
//! class, and its description becomes the message's `class_reason`. Each row says where its
//! marker comes from (the RFC, the software that writes it, or the file that shows it), so a
//! reader can check it and a new robot is one row away. The order matters:
//!
//! 1. **loop** — our own mail, or a loop header naming one of our addresses: never answered,
//!    whatever else it says;
//! 2. **bounce** — delivery reports and mail daemons, so they can be linked to what bounced;
//! 3. read receipts, then **junk** — the receiving server's spam verdict;
//! 4. the markers of particular robots (help desks, ticket and CI systems, mail service
//!    providers, cron and monitoring): specific before generic;
//! 5. RFC 3834 and the other generic auto-reply markers (a vacation reply sent from `<>` with
//!    `Precedence: bulk` is still an auto-reply);
//! 6. `Precedence` and list headers, the null sender, and no-reply addresses.
//!
//! Whatever matches nothing is a person. Headers that mail clients add by habit (`X-Mailer`,
//! `Thread-Index`, `X-Rspamd-Server` on ham) are in no rule: a person writing from them is
//! still a person.

use super::{MessageClass, Person, LOOP_HEADER};
use crate::config::Config;

/// What a rule looks at. Header values are compared trimmed and lower-cased.
#[derive(Debug, Clone, Copy)]
pub enum Test {
    /// The header is present, whatever its value.
    Present(&'static str),
    /// The header is present, unless its value contains one of these.
    PresentUnless(&'static str, &'static [&'static str]),
    /// The header's value is one of these.
    Is(&'static str, &'static [&'static str]),
    /// The header's value starts with one of these.
    StartsWith(&'static str, &'static [&'static str]),
    /// The header is present with a first word (before `;` or a comment) other than these.
    Not(&'static str, &'static [&'static str]),
    /// One of the comma- or space-separated words of the header's value is one of these.
    Word(&'static str, &'static [&'static str]),
    /// The header names one of our addresses (`[support] address` or `own_addresses`).
    NamesUs(&'static str),
    /// From is one of our addresses.
    FromUs,
    /// The sender is a mail system's bounce sender (`mailer-daemon`, `postmaster`).
    BounceSender,
    /// `Content-Type: multipart/report` with this `report-type`.
    Report(&'static str),
    /// The subject starts with one of these (lower-cased, whole words up to a separator).
    Subject(&'static [&'static str]),
    /// `Return-Path: <>`, the null sender.
    NullSender,
    /// The receiving server's spam verdict: a header of `[intake] spam_headers` (read by
    /// [`super::trust::spam_verdict`], the one place the sender check reads it too).
    SpamVerdict,
    /// An address in this header (From, Sender or Return-Path) matches `[intake]
    /// noreply_patterns`.
    NoReply(&'static str),
}

/// One row of the classification table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub test: Test,
    pub class: MessageClass,
    /// Who writes this marker, in a few words (`SpamAssassin`, `Jira notification`).
    pub what: &'static str,
    /// Where that can be checked: an RFC section, a document or a source file.
    pub source: &'static str,
}

const fn rule(test: Test, class: MessageClass, what: &'static str, source: &'static str) -> Rule {
    Rule {
        test,
        class,
        what,
        source,
    }
}

use MessageClass::{AutoReply, Bounce, Bulk, Junk, Loop};
use Test::*;

/// Every rule, in the order they are checked.
pub const RULES: &[Rule] = &[
    // --- 1. Loops: our own mail, or a robot's loop header naming us ---------------------------
    rule(Present(LOOP_HEADER), Loop, "our own mail", "src/outbox/compose.rs: every mail we send carries it"),
    rule(FromUs, Loop, "our own address", "[support] address and own_addresses"),
    rule(NamesUs("X-Loop"), Loop, "a loop header naming us", "procmailex(5) `X-Loop: address`; Zammad, OTRS and list servers set it to their own address"),
    rule(NamesUs("X-OTRS-Loop"), Loop, "an OTRS/Znuny loop header naming us", "OTRS Kernel/System/Email.pm writes `X-OTRS-Loop: <sender address>`"),
    rule(NamesUs("X-BeenThere"), Loop, "a list-loop header naming us", "Mailman 2 Handlers/CookHeaders.py: `X-BeenThere: <list address>`"),
    // --- 2. Bounces ----------------------------------------------------------------------------
    rule(BounceSender, Bounce, "mail system", "RFC 5321 section 4.5.1 (postmaster); sendmail and Postfix send notices as MAILER-DAEMON"),
    rule(Report("delivery-status"), Bounce, "delivery status notification", "RFC 3464; RFC 6533 (global-delivery-status)"),
    // --- 3. Read receipts and the receiving server's spam verdict ------------------------------
    rule(Report("disposition-notification"), AutoReply, "read receipt", "RFC 8098"),
    rule(SpamVerdict, Junk, "the receiving server's spam verdict", "[intake] spam_headers, default SpamAssassin's X-Spam-Flag: YES and X-Spam-Status: Yes (Mail::SpamAssassin::Conf), Rspamd's X-Spam: Yes and X-Spam-Action (rspamd.com/doc/modules/milter_headers.html); read in src/mail/trust.rs, where it also fails the sender check"),
    // --- 4. Particular robots ------------------------------------------------------------------
    // Help desks and their loop markers (issue 10: two help desks must not answer each other).
    rule(Not("X-OTRS-Loop", &["no", "false"]), AutoReply, "OTRS/Znuny", "OTRS/Znuny Kernel/System/PostMaster.pm and Ticket.pm: no auto-response unless X-OTRS-Loop is false/no"),
    rule(Present("X-No-Loop"), AutoReply, "loop marker", "OTRS/Znuny Kernel/System/PostMaster.pm treats X-No-Loop as a loop"),
    rule(Present("X-Loop"), AutoReply, "loop marker", "Zammad app/models/channel/filter/auto_response_check.rb (`X-Loop: yes`); procmailex(5)"),
    rule(Present("X-RT-Loop-Prevention"), AutoReply, "Request Tracker", "RT lib/RT/Interface/Email.pm stamps every mail RT sends"),
    rule(Present("RT-Ticket"), AutoReply, "Request Tracker", "RT lib/RT/Action/SendEmail.pm (`RT-Ticket: <rtname> #<id>`)"),
    rule(StartsWith("Managed-By", &["rt "]), AutoReply, "Request Tracker", "RT lib/RT/Action/SendEmail.pm (`Managed-By: RT <version>`)"),
    rule(Present("X-Zendesk-From-Account-Id"), AutoReply, "Zendesk", "Zendesk help centre, custom mail servers: headers every Zendesk mail keeps"),
    rule(Present("X-ServiceNow-Source"), Bulk, "ServiceNow notification", "ServiceNow outbound notifications (`X-ServiceNow-Source: Notification-<id>`)"),
    rule(Present("X-ServiceNow-Generated"), Bulk, "ServiceNow notification", "Zammad admin docs, Service Now integration: `X-ServiceNow-Generated`"),
    // Ticket and CI systems.
    rule(Present("X-JIRA-FingerPrint"), Bulk, "Jira notification", "Atlassian Jira mail notifications; Jira's own mail handler drops mail carrying its fingerprint"),
    rule(Present("X-GitHub-Reason"), Bulk, "GitHub notification", "docs.github.com: about notifications, filtering email notifications (X-GitHub-Reason)"),
    rule(Present("X-GitLab-Project"), Bulk, "GitLab notification", "docs.gitlab.com: notification emails, email headers (X-GitLab-Project)"),
    rule(Present("X-GitLab-NotificationReason"), Bulk, "GitLab notification", "docs.gitlab.com: notification emails, email headers"),
    rule(Present("X-Bugzilla-Reason"), Bulk, "Bugzilla notification", "Bugzilla docs, user preferences: email headers (X-Bugzilla-Reason)"),
    // Mail service providers and newsletters.
    rule(Present("List-Unsubscribe-Post"), Bulk, "one-click unsubscribe", "RFC 8058"),
    rule(PresentUnless("Feedback-ID", &["proton"]), Bulk, "feedback loop id", "Google bulk sender guidelines (Feedback-ID); Proton Mail stamps it on personal mail too"),
    rule(Present("X-MC-User"), Bulk, "Mailchimp", "Mailchimp campaign mail"),
    rule(Present("X-Mandrill-User"), Bulk, "Mailchimp Transactional (Mandrill)", "Mandrill outbound mail"),
    rule(Present("X-SG-EID"), Bulk, "SendGrid", "SendGrid outbound mail (event id)"),
    rule(Present("X-SES-Outgoing"), Bulk, "Amazon SES", "Amazon SES outbound mail"),
    rule(Present("X-Mailgun-Sid"), Bulk, "Mailgun", "Mailgun outbound mail (sending id)"),
    rule(Present("X-SFMC-Stack"), Bulk, "Salesforce Marketing Cloud", "Salesforce Marketing Cloud outbound mail"),
    rule(Present("X-SFDC-LK"), Bulk, "Salesforce", "Salesforce email relay / org-sent mail"),
    // Not Postmark's X-PM-Message-Id: header names ignore case, and Proton Mail stamps
    // X-Pm-Message-Id on every personal mail.
    rule(Present("X-MSFBL"), Bulk, "SparkPost", "SparkPost feedback-loop header"),
    rule(Present("X-Mailin-EID"), Bulk, "Brevo (Sendinblue)", "Brevo outbound mail"),
    // Cron and monitoring.
    rule(Present("X-Cron-Env"), Bulk, "cron", "Vixie cron / cronie do_command.c: one X-Cron-Env header per variable"),
    rule(Subject(&["cron <", "anacron job "]), Bulk, "cron", "Vixie cron / cronie subject `Cron <user@host> command`; anacron"),
    rule(Subject(&["logwatch for "]), Bulk, "logwatch", "logwatch(8) default subject"),
    rule(Subject(&["** problem ", "** recovery ", "** acknowledgement ", "** flappingstart ", "** downtimestart "]), Bulk, "Nagios/Icinga alert", "Nagios commands.cfg notify-host/service-by-email: `** $NOTIFICATIONTYPE$ ... Alert`"),
    rule(Subject(&["monit alert -- "]), Bulk, "monit alert", "monit default mail-format subject `monit alert -- $EVENT $SERVICE`"),
    rule(Subject(&["unattended-upgrades result for "]), Bulk, "unattended-upgrades", "Debian unattended-upgrades report subject"),
    // --- 5. Generic auto-replies ---------------------------------------------------------------
    rule(Not("Auto-Submitted", &["no"]), AutoReply, "RFC 3834", "RFC 3834 section 5: any value other than `no`"),
    rule(Word("X-Auto-Response-Suppress", &["all", "autoreply", "oof"]), AutoReply, "Exchange", "[MS-OXCMAIL] section 2.2.3.2.20"),
    rule(Present("X-Autoreply"), AutoReply, "auto-responder", "various responders (X-Autoreply: yes)"),
    rule(Present("X-Autorespond"), AutoReply, "auto-responder", "cPanel autorespond"),
    rule(Present("X-Autoresponder"), AutoReply, "auto-responder", "various responders"),
    rule(Present("X-Autogenerated"), AutoReply, "auto-responder", "various responders (X-Autogenerated: Reply)"),
    rule(Present("X-AutoReply-From"), AutoReply, "auto-responder", "various responders"),
    rule(Present("X-Mail-Autoreply"), AutoReply, "auto-responder", "various responders"),
    rule(Present("X-MS-Exchange-Inbox-Rules-Loop"), AutoReply, "Exchange inbox rule", "Exchange stamps mail its inbox rules and OOF generate"),
    rule(Subject(AUTO_REPLY_SUBJECTS), AutoReply, "out-of-office subject", "Outlook/Exchange, Lotus Notes and Sieve vacation subject prefixes"),
    rule(Is("Precedence", &["auto_reply", "junk"]), AutoReply, "vacation(1)", "vacation(1) and its descendants mark replies `junk`; cPanel `auto_reply`"),
    rule(Is("X-Precedence", &["auto_reply", "junk"]), AutoReply, "vacation(1)", "as Precedence"),
    // --- 6. Lists, the null sender, no-reply addresses -------------------------------------------
    rule(Is("Precedence", &["bulk", "list"]), Bulk, "bulk mail", "RFC 2076 section 3.9; RFC 3834 section 3.1.8"),
    rule(Is("X-Precedence", &["bulk", "list"]), Bulk, "bulk mail", "as Precedence"),
    rule(Present("List-Id"), Bulk, "mailing list", "RFC 2919"),
    rule(Present("List-Unsubscribe"), Bulk, "mailing list or newsletter", "RFC 2369"),
    rule(Present("List-Post"), Bulk, "mailing list", "RFC 2369"),
    rule(Present("X-BeenThere"), Bulk, "Mailman list", "Mailman 2 Handlers/CookHeaders.py"),
    rule(Present("X-Mailman-Version"), Bulk, "Mailman list", "Mailman 2 and 3 stamp every list mail, digests included"),
    rule(Present("Mailing-List"), Bulk, "ezmlm list", "ezmlm-send(1)"),
    rule(Present("X-Mailing-List"), Bulk, "SmartList list", "SmartList / vger.kernel.org"),
    rule(NullSender, Bounce, "null sender", "RFC 5321 section 4.5.5: notices come from <> (auto-replies too: checked after them)"),
    rule(NoReply("From"), Bulk, "no-reply sender", "[intake] noreply_patterns"),
    rule(NoReply("Sender"), Bulk, "no-reply Sender", "[intake] noreply_patterns"),
    rule(NoReply("Return-Path"), Bulk, "no-reply Return-Path", "[intake] noreply_patterns; invoice robots send from a person-like From with a noreply bounce address"),
];

/// Decides whether a message is from a person: the first rule of [`RULES`] that matches, with
/// why; `(Human, "")` when none does.
pub fn classify(
    message: &mail_parser::Message<'_>,
    from: &Person,
    subject: &str,
    config: &Config,
) -> (MessageClass, String) {
    let facts = Facts {
        message,
        from,
        subject: subject.to_lowercase(),
        config,
    };
    RULES
        .iter()
        .find_map(|rule| {
            facts
                .matched(&rule.test)
                .map(|m| (rule.class, format!("{m} ({})", rule.what)))
        })
        .unwrap_or((MessageClass::Human, String::new()))
}

struct Facts<'a, 'm> {
    message: &'a mail_parser::Message<'m>,
    from: &'a Person,
    /// Lower-cased.
    subject: String,
    config: &'a Config,
}

impl Facts<'_, '_> {
    /// Every value of a header as written, whitespace collapsed.
    fn written(&self, name: &str) -> Vec<String> {
        self.message
            .headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Every value of a header, trimmed and lower-cased.
    fn values(&self, name: &str) -> Vec<String> {
        self.written(name)
            .iter()
            .map(|v| v.to_lowercase())
            .collect()
    }

    /// The first value of `name` that passes `test` (which sees it lower-cased), as written.
    fn any(&self, name: &str, test: impl Fn(&str) -> bool) -> Option<String> {
        self.written(name)
            .into_iter()
            .find(|v| test(&v.to_lowercase()))
            .map(|v| format!("{name}: {}", shorten(&v)))
    }

    /// What matched, said the way `class_reason` shows it; None if the test does not hold.
    fn matched(&self, test: &Test) -> Option<String> {
        match *test {
            Present(name) => self.any(name, |_| true).map(|_| format!("{name} header")),
            PresentUnless(name, unless) => {
                self.any(name, |v| !unless.iter().any(|u| v.contains(u)))
            }
            Is(name, values) => self.any(name, |v| values.contains(&v)),
            StartsWith(name, prefixes) => {
                self.any(name, |v| prefixes.iter().any(|p| v.starts_with(p)))
            }
            Not(name, values) => self.any(name, |v| !values.contains(&first_word(v))),
            Word(name, words) => self.any(name, |v| {
                v.split([',', ' ', ';']).any(|w| words.contains(&w.trim()))
            }),
            NamesUs(name) => self.any(name, |v| {
                addresses_in(v).any(|a| self.config.support.is_own_address(&a))
            }),
            FromUs => self
                .config
                .support
                .is_own_address(&self.from.address)
                .then(|| format!("sent from our own address {}", self.from.address)),
            BounceSender => {
                let local = self.from.address.split('@').next().unwrap_or_default();
                matches!(local, "mailer-daemon" | "postmaster")
                    .then(|| format!("sent by {}", self.from.address))
            }
            Report(kind) => self
                .any("Content-Type", |v| {
                    v.starts_with("multipart/report") && v.contains(kind)
                })
                .map(|_| format!("multipart/report {kind}")),
            Subject(prefixes) => prefixes
                .iter()
                .find(|p| self.subject.starts_with(**p))
                .map(|p| format!("subject `{}`", p.trim_end())),
            SpamVerdict => {
                super::trust::spam_verdict(self.message.headers_raw(), &self.config.intake)
                    .map(|hit| shorten(&hit))
            }
            NullSender => self
                .any("Return-Path", |v| v == "<>" || v.is_empty())
                .map(|_| "empty Return-Path (<>)".to_string()),
            NoReply(name) => {
                let addresses: Vec<String> = if name.eq_ignore_ascii_case("From") {
                    vec![self.from.address.clone()]
                } else {
                    self.values(name)
                        .iter()
                        .flat_map(|v| addresses_in(v).collect::<Vec<_>>())
                        .collect()
                };
                addresses.iter().find_map(|address| {
                    self.config
                        .intake
                        .noreply_patterns
                        .iter()
                        .find(|p| p.matches(address))
                        .map(|p| format!("{name} {address} matches {}", p.as_str()))
                })
            }
        }
    }
}

/// The keyword of a structured value: `auto-replied (vacation)` and `auto-generated; x=y` are
/// `auto-replied` and `auto-generated`.
fn first_word(value: &str) -> &str {
    value
        .split([';', '(', ' '])
        .next()
        .unwrap_or_default()
        .trim()
}

/// The mail addresses written in a header value, lower-cased, without angle brackets.
fn addresses_in(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '"' | '(' | ')'))
        .filter(|w| w.contains('@'))
        .map(|w| w.trim_matches('.').to_lowercase())
}

fn shorten(value: &str) -> String {
    super::header_safe(value, 80)
}

/// Subject prefixes of out-of-office replies from Outlook/Exchange (in the languages its
/// installations most often use), Lotus Notes and Sieve vacation, lower-cased. Only whole
/// prefixes ending in a colon count, so "Automatic replies are broken" stays human.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "auto-reply:",
    "auto:",
    "out of office:",
    "out of office autoreply:",
    "out of office reply:",
    "automatische antwort:",
    "abwesenheitsnotiz:",
    "réponse automatique :",
    "réponse automatique:",
    "risposta automatica:",
    "respuesta automática:",
    "resposta automática:",
    "automatisch antwoord:",
    "autosvar:",
    "automaattinen vastaus:",
    "automatyczna odpowiedź:",
];

#[cfg(test)]
mod tests {
    //! Each rule both ways: the robot it names is caught, and a person whose mail carries a
    //! look-alike (or a header their client adds by habit) is not.

    use super::*;

    fn config() -> Config {
        let mut config = Config::example().expect("example config");
        config.support.own_addresses = vec!["help@example.test".into()];
        config
    }

    const PERSON: &str = "From: \"Ann Customer\" <ann@example.test>\r\nTo: support@example.test\r\nSubject: My order arrived broken\r\nMessage-ID: <c1@mail.example.test>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nReturn-Path: <ann@example.test>\r\n";

    /// The class and reason of a person's complaint with `extra` header lines (CRLF-separated)
    /// added, and its subject replaced if `subject` is given.
    fn classed(extra: &str, subject: Option<&str>) -> (MessageClass, String) {
        let mut head = PERSON.to_string();
        if let Some(s) = subject {
            head = head.replace("My order arrived broken", s);
        }
        let raw = format!("{head}{extra}\r\nthe vase arrived in pieces\r\n");
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        let from = crate::mail::person(Some("ann@example.test"), Some("Ann")).expect("person");
        let subject = message.subject().unwrap_or_default().to_string();
        classify(&message, &from, &subject, &config())
    }

    fn class_with(extra: &str) -> MessageClass {
        classed(&format!("{extra}\r\n"), None).0
    }

    #[test]
    fn a_plain_person_is_human_with_no_reason() {
        assert_eq!(classed("", None), (MessageClass::Human, String::new()));
    }

    #[test]
    fn every_rule_names_its_source_and_what_it_is() {
        for rule in RULES {
            assert!(!rule.source.trim().is_empty(), "{rule:?}");
            assert!(!rule.what.trim().is_empty(), "{rule:?}");
        }
    }

    #[test]
    fn a_loop_header_naming_us_is_a_loop_one_naming_someone_else_is_a_robot() {
        assert_eq!(class_with("X-Loop: support@example.test"), Loop);
        assert_eq!(class_with("X-Loop: <Help@Example.test>"), Loop);
        assert_eq!(class_with("X-OTRS-Loop: support@example.test"), Loop);
        assert_eq!(class_with("X-BeenThere: help@example.test"), Loop);
        assert_eq!(class_with("X-Loop: helpdesk@other.example"), AutoReply);
        assert_eq!(class_with("X-Loop: yes"), AutoReply, "Zammad");
        assert_eq!(class_with("X-BeenThere: list@lists.example"), Bulk);
        assert_eq!(class_with("X-Mailman-Version: 2.0.4"), Bulk, "a digest");
    }

    #[test]
    fn help_desk_markers_are_robots_and_their_off_switches_are_not() {
        assert_eq!(class_with("X-OTRS-Loop: yes"), AutoReply);
        assert_eq!(class_with("X-OTRS-Loop: no"), MessageClass::Human);
        assert_eq!(class_with("X-OTRS-Loop: false"), MessageClass::Human);
        assert_eq!(class_with("X-No-Loop: 1"), AutoReply);
        assert_eq!(class_with("X-RT-Loop-Prevention: example.com"), AutoReply);
        assert_eq!(class_with("RT-Ticket: example.com #4711"), AutoReply);
        assert_eq!(
            class_with("Managed-By: RT 5.0.5 (http://www.bestpractical.com/rt/)"),
            AutoReply
        );
        assert_eq!(
            class_with("Managed-By: the facilities team"),
            MessageClass::Human
        );
        assert_eq!(class_with("X-Zendesk-From-Account-Id: 68b8aed"), AutoReply);
        assert_eq!(
            class_with("X-ServiceNow-Source: Notification-ec04d322"),
            Bulk
        );
    }

    #[test]
    fn ticket_and_ci_notifications_are_bulk() {
        for header in [
            "X-JIRA-FingerPrint: 3f0c9a7e1b2d4c5e",
            "X-GitHub-Reason: mention",
            "X-GitLab-Project: shop",
            "X-GitLab-NotificationReason: assigned",
            "X-Bugzilla-Reason: AssignedTo",
        ] {
            assert_eq!(class_with(header), Bulk, "{header}");
        }
    }

    #[test]
    fn mail_service_providers_are_bulk_but_proton_users_are_people() {
        for header in [
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Feedback-ID: 1.eu-west-1.abc:AmazonSES",
            "X-MC-User: 8a3b7c",
            "X-Mandrill-User: md_123",
            "X-SG-EID: abc",
            "X-SES-Outgoing: 2026.11.23-54.240.0.1",
            "X-Mailgun-Sid: WyI5",
            "X-SFMC-Stack: 7",
            "X-SFDC-LK: 00D",
            "X-MSFBL: eyJ",
            "X-Mailin-EID: MTIz",
        ] {
            assert_eq!(class_with(header), Bulk, "{header}");
        }
        assert_eq!(
            class_with("Feedback-ID: 7Gq4:user:proton"),
            MessageClass::Human,
            "Proton Mail stamps Feedback-ID on personal mail"
        );
        assert_eq!(
            class_with("X-Pm-Message-ID: 01JDFAKE"),
            MessageClass::Human,
            "and X-Pm-Message-Id, which is Postmark's header name in another case"
        );
    }

    #[test]
    fn cron_and_monitoring_are_bulk_but_a_person_writing_about_cron_is_not() {
        assert_eq!(class_with("X-Cron-Env: <SHELL=/bin/sh>"), Bulk);
        for subject in [
            "Cron <root@web1> /usr/local/bin/backup",
            "Anacron job 'cron.daily' on web1",
            "Logwatch for web1 (Linux)",
            "** PROBLEM Service Alert: web1/HTTP is CRITICAL **",
            "monit alert -- Does not exist nginx",
            "unattended-upgrades result for web1: SUCCESS",
        ] {
            assert_eq!(classed("", Some(subject)).0, Bulk, "{subject}");
        }
        for subject in [
            "Cron job on my hosted plan stopped running",
            "Logwatch shows errors since your update",
            "** URGENT ** my server is down",
        ] {
            assert_eq!(
                classed("", Some(subject)).0,
                MessageClass::Human,
                "{subject}"
            );
        }
    }

    #[test]
    fn the_receiving_servers_spam_verdict_makes_junk_and_ham_verdicts_do_not() {
        for header in [
            "X-Spam-Flag: YES",
            "X-Spam-Status: Yes, score=8.0 required=5.0 tests=BAYES_99",
            "X-Spam: Yes",
            "X-Spam-Action: add header",
            "X-Spam-Action: rewrite subject",
            "X-Spam-Action: reject",
        ] {
            assert_eq!(class_with(header), Junk, "{header}");
        }
        for header in [
            "X-Spam-Flag: NO",
            "X-Spam-Status: No, score=-0.5 required=5.0",
            "X-Spam-Action: no action",
            "X-Spam-Action: greylist",
            "X-Rspamd-Server: mx1",
            "X-Rspamd-Queue-Id: 4F3030E",
            "X-Spamd-Result: default: False [-0.50 / 15.00]",
        ] {
            assert_eq!(class_with(header), MessageClass::Human, "{header}");
        }
        let (class, reason) = classed("X-Spam-Flag: YES\r\n", None);
        assert_eq!(class, Junk);
        assert_eq!(
            reason,
            "X-Spam-Flag: YES (the receiving server's spam verdict)"
        );
    }

    #[test]
    fn the_spam_verdict_is_the_one_the_sender_check_reads() {
        let mut config = config();
        config.intake.spam_headers =
            vec![crate::config::HeaderRule::parse("X-Junk: true").expect("rule")];
        let raw = format!("{PERSON}X-Junk: TRUE\r\nX-Spam-Flag: YES\r\n\r\nbuy now\r\n");
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        let from = crate::mail::person(Some("ann@example.test"), None).expect("person");
        let (class, reason) = classify(&message, &from, "", &config);
        assert_eq!(class, Junk);
        assert!(reason.starts_with("X-Junk: TRUE"), "{reason}");
        let verdict = crate::mail::trust::assess(message.headers_raw(), &from, &config.intake);
        assert_eq!(verdict.level, crate::mail::Trust::Failed);
        // X-Spam-Flag is no verdict once the configured list leaves it out.
        config.intake.spam_headers.clear();
        assert_eq!(
            classify(&message, &from, "", &config).0,
            MessageClass::Human
        );
    }

    #[test]
    fn a_person_whose_client_adds_headers_by_habit_is_still_a_person() {
        for header in [
            "X-Mailer: Apple Mail (2.3774.300.61.1.2)",
            "X-Mailer: Microsoft Outlook 16.0",
            "X-Mailer: PHPMailer 6.9.1 (https://github.com/PHPMailer/PHPMailer)",
            "User-Agent: Mozilla Thunderbird",
            "Thread-Topic: My order arrived broken",
            "Thread-Index: AdbA1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f",
            "X-MS-Has-Attach: yes",
            "X-Priority: 1",
            "Importance: high",
            "Precedence: first-class",
            "Auto-Submitted: no",
            "X-Auto-Response-Suppress: DR, RN, NRN",
            "Sender: Ann Customer <ann@example.test>",
            "Return-Path: <ann@example.test>",
            "Delivered-To: support@example.test",
        ] {
            assert_eq!(class_with(header), MessageClass::Human, "{header}");
        }
    }

    #[test]
    fn noreply_patterns_apply_to_from_sender_and_return_path() {
        assert_eq!(class_with("Sender: no-reply@billing.example"), Bulk);
        let (class, reason) = classed("Return-Path: <noreply@bounce.invoices.example>\r\n", None);
        assert_eq!(class, Bulk);
        assert_eq!(
            reason,
            "Return-Path noreply@bounce.invoices.example matches noreply*@* (no-reply Return-Path)"
        );
    }

    #[test]
    fn rfc_3834_and_exchange_markers_stay_auto_replies() {
        assert_eq!(
            class_with("Auto-Submitted: auto-replied (vacation)"),
            AutoReply
        );
        assert_eq!(
            class_with("Auto-Submitted: no (manually)"),
            MessageClass::Human
        );
        assert_eq!(class_with("X-Auto-Response-Suppress: All"), AutoReply);
        assert_eq!(
            class_with("X-Auto-Response-Suppress: OOF, AutoReply"),
            AutoReply
        );
        assert_eq!(
            classed("", Some("Automatic reply: My order arrived broken")).0,
            AutoReply
        );
        assert_eq!(
            classed("", Some("Automatic replies are broken in your app")).0,
            MessageClass::Human
        );
    }
}
