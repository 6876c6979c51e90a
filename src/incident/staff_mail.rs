//! What a staff member's reply says: commands on their own lines, then the words for the
//! customer (or an internal note).
//!
//! ```text
//! #cadence 2h
//! #tag payments
//! We found the cause: a certificate expired. A fix is being deployed now.
//! ```
//!
//! A command is a line of the writer's own words (see [`crate::mail::own_words`]) that starts
//! with `#` and a command's name, wherever it stands: a `#tag vip` written under the text is a
//! command, not text for the customer. An unknown `#word` at the top is refused; lower down it
//! is text ("#1 priority"). `#resolve` reads the paragraphs labelled `Root cause:`,
//! `Prevention:`, `Compensation:` and `Question:`; `#internal` keeps the whole mail from the
//! customer; `#send` sends a held reply as it was shown.

use crate::said;
use crate::templates::Said;
use std::time::Duration;

use super::Resolution;
use crate::mail::OwnWords;

/// A command from a staff mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Resolve(Resolution),
    /// What we need from the customer.
    Wait(String),
    Resume,
    Cadence(Duration),
    Close,
    Reopen,
    Tag(String),
    /// The incident is this member's ("ben", an address); "" or "me": the sender's.
    Assign(String),
    /// On hold: "until Thursday 10:00 waiting for the carrier"; the mail's words go with it.
    Hold(String),
    /// An outage: the mail's words, and its commands about the incident's course (`#resolve`,
    /// `#wait`, …), go to every open incident tagged `label` as well, each customer in their
    /// own thread. Intake carries them out (`sent_to`); the decision records it on this one.
    ToTag {
        label: String,
        sent_to: Vec<super::IncidentNo>,
    },
    /// `#all`, in a reply to a digest: as `ToTag`, for every other open incident the digest
    /// listed. Intake fills `sent_to` from the digest; empty, the reply answers no digest and
    /// is refused.
    ToAll {
        sent_to: Vec<super::IncidentNo>,
    },
    /// A canned reply (`templates/staff/replies/NAME.hbs`) for the customer, before the words
    /// the member wrote. Intake puts its text in place (it needs the templates); one left
    /// here was not found.
    Reply(String),
    /// Not a command we know, or one we could not read: refused with this reason.
    Unreadable {
        line: String,
        why: Said,
    },
}

/// A staff mail, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffMail {
    pub commands: Vec<Command>,
    /// The words for the customer: what is left after the command lines (and, with
    /// `#resolve`, after its labelled paragraphs), without the writer's greeting and sign-off.
    pub text: String,
    /// `#internal`: recorded as an internal note, never sent to the customer.
    pub internal: bool,
    /// The writer's own greeting ("Hi Ann,"): the customer's mail opens with it instead of the
    /// template's.
    pub greeting: Option<String>,
    /// `#send`: send the reply that was held back, as it was shown.
    pub send: bool,
    /// `#release`, in a reply to a held-mail notice: the held mail is taken in after all.
    pub release: bool,
    /// The writer's own words as read, commands and all (greeting and sign-off apart): what is
    /// kept when the reply is held, and read again on `#send`.
    pub body: String,
}

impl StaffMail {
    /// A mail that does nothing but tell its writer why (`line`: what is refused).
    pub fn refused(line: &str, why: Said) -> StaffMail {
        StaffMail {
            commands: vec![Command::Unreadable {
                line: line.to_string(),
                why,
            }],
            ..StaffMail::default()
        }
    }
}

impl StaffMail {
    /// What of an `#all` or `#to-tag` reply is carried out on each other incident it names:
    /// its words and the commands about an incident's course (resolve, wait, hold, resume,
    /// pace, close, tag). Never the writer's greeting (it names one customer), a resolution's
    /// compensation (given to one customer), an assignment, `#send` or `#release`: those are
    /// about the incident the reply answers.
    pub fn for_the_others(&self) -> StaffMail {
        StaffMail {
            commands: self
                .commands
                .iter()
                .filter(|c| c.for_every_incident())
                .map(|c| match c {
                    // What one customer is given (a refund, a voucher) is theirs alone.
                    Command::Resolve(r) => Command::Resolve(Resolution {
                        compensation: None,
                        ..r.clone()
                    }),
                    other => other.clone(),
                })
                .collect(),
            text: self.text.clone(),
            body: self.body.clone(),
            ..StaffMail::default()
        }
    }
}

impl Command {
    /// A command about an incident's course: `#all` and `#to-tag` carry it to every incident
    /// they name (an outage resolved in one mail).
    pub fn for_every_incident(&self) -> bool {
        matches!(
            self,
            Command::Resolve(_)
                | Command::Wait(_)
                | Command::Hold(_)
                | Command::Resume
                | Command::Cadence(_)
                | Command::Close
                | Command::Tag(_)
        )
    }
}

/// The names of the commands, as a staff member writes them after `#`.
const COMMANDS: &[&str] = &[
    "internal", "resolve", "wait", "resume", "close", "reopen", "assign", "tag", "cadence", "send",
    "reply", "hold", "to-tag", "all", "release",
];

/// Reads a staff member's own words.
pub fn read(own: &OwnWords) -> StaffMail {
    let mut mail = read_text(&own.body);
    // An `#internal` the reading put under the sign-off or in the signature still counts:
    // missing it would send the note to the customer.
    let below = [own.sign_off.as_deref(), own.signature.as_deref()];
    if below
        .iter()
        .flatten()
        .flat_map(|t| t.lines())
        .any(|l| command_of(l).is_some_and(|(word, _)| word == "internal"))
    {
        mail.internal = true;
    }
    mail.greeting = own.greeting.clone();
    mail.body = own.body.clone();
    if mail.greeting.is_some() {
        // "Hi Ann,\n\nyour refund…": set apart from its greeting, the text opens a sentence.
        mail.text = capitalised(&mail.text);
    }
    // A greeting that opens the first sentence ("Hi Ann, the parcel left today.") is theirs
    // too: the template must not greet a second time.
    if mail.greeting.is_none() {
        let first = mail.text.lines().next().unwrap_or("");
        if let Some(crate::mail::reply_marks::Greeting::Opens(len)) =
            crate::mail::reply_marks::greeting(first)
        {
            let greeting: String = first.trim().chars().take(len).collect();
            let rest: String = first.trim().chars().skip(len).collect();
            let mut lines: Vec<String> = mail.text.lines().map(str::to_string).collect();
            if let Some(line) = lines.first_mut() {
                *line = capitalised(rest.trim_start());
            }
            mail.greeting = Some(greeting.trim().to_string());
            mail.text = lines.join("\n").trim().to_string();
        }
    }
    mail
}

/// "the parcel left today." after a greeting reads as a sentence of its own.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        Some(first) => std::iter::once(first).chain(chars).collect(),
        None => String::new(),
    }
}

/// The command a line holds, if it is one: `#word rest`, with the word lower-cased. Read
/// after NFKC (the fullwidth `＃ｉｎｔｅｒｎａｌ` a phone keyboard types, the small `﹟`) with
/// invisible characters removed (a BOM, a zero-width space pasted before it): a command that
/// fails to be recognised would send its line, and an internal note, to the customer.
/// `# internal` and `#internal:` are the command too.
fn command_of(line: &str) -> Option<(String, String)> {
    let t = crate::mail::reply_marks::command_form(line);
    let command = t.strip_prefix('#')?;
    let command = match command.trim_start() {
        after if after.len() != command.len() => {
            // "# internal": a command only if a command's name follows.
            let name: String = after
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            if !COMMANDS.contains(&name.to_ascii_lowercase().as_str()) {
                return None;
            }
            after
        }
        same => same,
    };
    if !command
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    let mut word: String = command
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    // The one command with a hyphen in its name.
    if word.eq_ignore_ascii_case("to")
        && command
            .get(2..6)
            .is_some_and(|t| t.eq_ignore_ascii_case("-tag"))
    {
        word = command.chars().take(6).collect();
    }
    let after: String = command.chars().skip(word.chars().count()).collect();
    let word = word.to_ascii_lowercase();
    let mut after_chars = after.chars();
    match after_chars.next() {
        None => Some((word, String::new())),
        Some(c) if c.is_whitespace() => Some((word, after.trim().to_string())),
        // "#internal: she sounds upset", "#tag: vip".
        Some(':' | '.' | ',' | ';') => Some((word, after_chars.as_str().trim().to_string())),
        // "#internal-only", "#internal2": still meant for staff; failing to see it would send
        // the note to the customer.
        Some(_) if word == "internal" => Some((word, String::new())),
        // "#tag/vip", "#1st": one word that is no command.
        Some(_) => Some((command.to_ascii_lowercase(), String::new())),
    }
}

/// Reads the body of a staff member's own words (their greeting and sign-off set apart).
pub fn read_text(own_text: &str) -> StaffMail {
    let mut mail = StaffMail::default();
    let mut text_lines: Vec<&str> = Vec::new();
    let mut at_top = true;
    for line in own_text.lines() {
        let t = line.trim();
        let Some((word, rest)) = command_of(t) else {
            if !t.is_empty() {
                at_top = false;
            }
            text_lines.push(line);
            continue;
        };
        if !COMMANDS.contains(&word.as_str()) {
            if at_top {
                mail.commands.push(Command::Unreadable {
                    line: t.to_string(),
                    why: said!("refusal.unknown_command", word = word),
                });
            } else {
                text_lines.push(line);
            }
            continue;
        }
        match word.as_str() {
            "internal" => mail.internal = true,
            "send" => mail.send = true,
            "release" => mail.release = true,
            "resolve" => mail.commands.push(Command::Resolve(Resolution::default())),
            "wait" => mail.commands.push(Command::Wait(rest)),
            "resume" => mail.commands.push(Command::Resume),
            "close" => mail.commands.push(Command::Close),
            "reopen" => mail.commands.push(Command::Reopen),
            "assign" => mail.commands.push(Command::Assign(rest)),
            "tag" => mail.commands.push(Command::Tag(rest)),
            "reply" => mail.commands.push(Command::Reply(rest)),
            "hold" => mail.commands.push(Command::Hold(rest)),
            "all" => mail.commands.push(Command::ToAll {
                sent_to: Vec::new(),
            }),
            "to-tag" => mail.commands.push(Command::ToTag {
                label: rest,
                sent_to: Vec::new(),
            }),
            _ => mail.commands.push(match humantime::parse_duration(&rest) {
                Ok(d) => Command::Cadence(d),
                Err(_) => Command::Unreadable {
                    line: t.to_string(),
                    why: said!("refusal.not_a_duration", text = rest),
                },
            }),
        }
    }
    let resolving = mail
        .commands
        .iter()
        .any(|c| matches!(c, Command::Resolve(_)));
    let text = if resolving {
        let (resolution, leftover) = labelled(&text_lines);
        for c in &mut mail.commands {
            if let Command::Resolve(r) = c {
                *r = resolution.clone();
            }
        }
        leftover
    } else {
        text_lines.join("\n")
    };
    mail.text = tidy(&text);
    mail
}

/// Trimmed, and no runs of blank lines where command lines stood.
fn tidy(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.trim().is_empty() && out.last().is_none_or(|l| l.trim().is_empty()) {
            continue;
        }
        out.push(t);
    }
    out.join("\n").trim().to_string()
}

/// The `Root cause:` / `Prevention:` / `Compensation:` paragraphs, and the other text.
fn labelled(lines: &[&str]) -> (Resolution, String) {
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        Other,
        Cause,
        Prevention,
        Compensation,
        Question,
    }
    let mut resolution = Resolution::default();
    let mut compensation = String::new();
    let mut question = String::new();
    let mut other: Vec<&str> = Vec::new();
    let mut part = Part::Other;
    for line in lines {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        let label = [
            ("root cause:", Part::Cause),
            ("cause:", Part::Cause),
            ("prevention:", Part::Prevention),
            ("compensation:", Part::Compensation),
            ("question:", Part::Question),
        ]
        .into_iter()
        .find(|(l, _)| lower.starts_with(l));
        let content = match label {
            Some((l, p)) => {
                part = p;
                t.get(l.len()..).unwrap_or("").trim()
            }
            None if t.is_empty() => {
                // A blank line ends a labelled paragraph.
                part = Part::Other;
                other.push(t);
                continue;
            }
            None => t,
        };
        let target = match part {
            Part::Cause => &mut resolution.root_cause,
            Part::Prevention => &mut resolution.prevention,
            Part::Compensation => &mut compensation,
            Part::Question => &mut question,
            Part::Other => {
                other.push(t);
                continue;
            }
        };
        if !content.is_empty() {
            if !target.is_empty() {
                target.push(' ');
            }
            target.push_str(content);
        }
    }
    if !compensation.is_empty() {
        resolution.compensation = Some(compensation);
    }
    if !question.is_empty() {
        resolution.question = Some(question);
    }
    (resolution, other.join("\n"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn what_an_outage_reply_carries_to_the_others_is_its_course_and_words_only() {
        let mut mail = read_text(
            "#all\n#assign me\n#resolve\nRoot cause: a failed update.\n\nPrevention: one \
             server first.\n\nCompensation: a month free for you.\n\nThe site is back.",
        );
        mail.greeting = Some("Hi Ann,".into());
        let others = mail.for_the_others();
        assert_eq!(others.greeting, None);
        assert_eq!(others.text, mail.text);
        assert_eq!(others.commands.len(), 1, "{:?}", others.commands);
        match &others.commands[0] {
            Command::Resolve(r) => {
                assert_eq!(r.root_cause, "a failed update.");
                assert_eq!(r.compensation, None);
            }
            other => panic!("{other:?}"),
        }
    }
    use super::*;

    fn read(text: &str) -> StaffMail {
        read_text(text)
    }

    #[test]
    fn internal_is_recognised_however_a_client_or_keyboard_wrote_it() {
        for first in [
            "\u{feff}#internal",
            "\u{200b}#internal",
            "\u{200e}#internal",
            "＃ｉｎｔｅｒｎａｌ",
            "﹟internal",
            "# internal",
            "#Internal:",
            "#INTERNAL.",
            "#internal-only",
            "  #internal  ",
        ] {
            let m = read(&format!("{first}\nShe sounds upset; call her."));
            assert!(m.internal, "{first:?}");
            assert_eq!(m.text, "She sounds upset; call her.", "{first:?}");
        }
        let m = read("Thanks for waiting.\n#internal: she is a VIP");
        assert!(m.internal, "anywhere, with a colon");
        // Under the sign-off, where a reading might put it: still internal.
        let own = crate::mail::own_words::read(
            "Call her back today.\n\nBest,\nAnna\n\u{200b}#internal",
            &crate::mail::OurMail::none(),
            crate::mail::Context::Reply,
        );
        assert!(super::read(&own).internal);
        let m = read("# 1 priority for us now");
        assert!(!m.internal);
        assert!(m.commands.is_empty(), "not a command: {m:?}");
    }

    #[test]
    fn plain_words_are_a_note_for_the_customer() {
        let m = read("We found it: the courier lost the parcel.\nA new one ships today.");
        assert!(m.commands.is_empty());
        assert!(!m.internal);
        assert_eq!(
            m.text,
            "We found it: the courier lost the parcel.\nA new one ships today."
        );
    }

    #[test]
    fn commands_on_their_own_lines_wherever_they_stand_then_the_note() {
        let m = read("#cadence 2h\n#tag Payments\n\n#assign\nThe provider is on it.\n#close");
        assert_eq!(
            m.commands,
            vec![
                Command::Cadence(Duration::from_secs(7200)),
                Command::Tag("Payments".into()),
                Command::Assign(String::new()),
                Command::Close,
            ]
        );
        assert_eq!(m.text, "The provider is on it.");
        let m = read("#assign Ben\nBen knows the carrier.");
        assert_eq!(m.commands, vec![Command::Assign("Ben".into())]);
        let m = read("#To-Tag outage-12-07\nThe provider is down.");
        assert_eq!(
            m.commands,
            vec![Command::ToTag {
                label: "outage-12-07".into(),
                sent_to: Vec::new()
            }]
        );
        assert_eq!(m.text, "The provider is down.");
        let m = read("We shipped a replacement.\n\n#tag vip");
        assert_eq!(m.commands, vec![Command::Tag("vip".into())]);
        assert_eq!(m.text, "We shipped a replacement.");
    }

    #[test]
    fn a_fullwidth_hash_is_a_command_and_an_unknown_word_lower_down_is_text() {
        let m = read("＃ｉｎｔｅｒｎａｌ\nCall them tomorrow.");
        assert!(m.internal);
        let m = read("Thanks for waiting.\n#1 priority for us now.");
        assert!(m.commands.is_empty());
        assert_eq!(m.text, "Thanks for waiting.\n#1 priority for us now.");
        let m = read("Thanks.\n#frobnicate");
        assert_eq!(m.text, "Thanks.\n#frobnicate");
    }

    #[test]
    fn the_writers_greeting_is_theirs_whether_alone_or_opening_the_text() {
        let own = crate::mail::own_words::read(
            "Hi Ann,\n\nthe parcel left today.\n\nBest,\nAnna",
            &crate::mail::OurMail::none(),
            crate::mail::Context::Reply,
        );
        let m = super::read(&own);
        assert_eq!(m.greeting.as_deref(), Some("Hi Ann,"));
        assert_eq!(
            m.text, "The parcel left today.",
            "set apart, it opens a sentence"
        );
        let own = crate::mail::own_words::read(
            "Hi Ann, the parcel left today.",
            &crate::mail::OurMail::none(),
            crate::mail::Context::Reply,
        );
        let m = super::read(&own);
        assert_eq!(m.greeting.as_deref(), Some("Hi Ann,"));
        assert_eq!(m.text, "The parcel left today.");
    }

    #[test]
    fn resolve_reads_its_labelled_paragraphs() {
        let m = read(
            "#resolve\n\nRoot cause: a certificate on the payment gateway\nexpired.\n\n\
             Prevention: certificates renew automatically now.\n\
             Compensation: we refunded the fee.\n             Question: Can you pay by card again?\n\nSorry again, Ann.",
        );
        assert_eq!(
            m.commands,
            vec![Command::Resolve(Resolution {
                root_cause: "a certificate on the payment gateway expired.".into(),
                prevention: "certificates renew automatically now.".into(),
                compensation: Some("we refunded the fee.".into()),
                question: Some("Can you pay by card again?".into()),
            })]
        );
        assert_eq!(m.text, "Sorry again, Ann.");
        let missing = read("#resolve\nIt works again.");
        assert_eq!(
            missing.commands,
            vec![Command::Resolve(Resolution::default())]
        );
    }

    #[test]
    fn internal_keeps_the_mail_from_the_customer() {
        let m = read("#internal\nCustomer sounds angry; call them tomorrow.");
        assert!(m.internal);
        assert_eq!(m.text, "Customer sounds angry; call them tomorrow.");
    }

    #[test]
    fn wait_carries_what_we_need_and_unknown_commands_are_refused() {
        let m =
            read("#wait the serial number on the back of the device\n#frobnicate\n#cadence soon");
        assert_eq!(
            m.commands[0],
            Command::Wait("the serial number on the back of the device".into())
        );
        assert!(
            matches!(&m.commands[1], Command::Unreadable { why, .. } if why.key == "refusal.unknown_command")
        );
        assert!(
            matches!(&m.commands[2], Command::Unreadable { why, .. } if why.key == "refusal.not_a_duration")
        );
    }

    #[test]
    fn a_hash_in_the_middle_of_a_sentence_is_not_a_command() {
        let m = read("Your order #48391 ships today.");
        assert!(m.commands.is_empty());
        assert_eq!(m.text, "Your order #48391 ships today.");
    }
}
