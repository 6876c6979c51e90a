//! What a staff member's reply says: commands on their own lines at the top, then the words
//! for the customer (or an internal note).
//!
//! ```text
//! #cadence 2h
//! #tag payments
//! We found the cause: a certificate expired. A fix is being deployed now.
//! ```
//!
//! `#resolve` reads the paragraphs that follow by their labels (`Root cause:`, `Prevention:`,
//! `Compensation:`); `#internal` keeps the whole mail from the customer.

use std::time::Duration;

use super::Resolution;

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
    /// The incident is the sender's.
    Assign,
    /// Not a command we know, or one we could not read: refused with this reason.
    Unreadable {
        line: String,
        why: String,
    },
}

/// A staff mail, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffMail {
    pub commands: Vec<Command>,
    /// The words for the customer: what is left after the command lines (and, with
    /// `#resolve`, after its labelled paragraphs).
    pub text: String,
    /// `#internal`: recorded as an internal note, never sent to the customer.
    pub internal: bool,
}

/// Reads the sender's own words (quotes and signature already removed).
pub fn read(own_text: &str) -> StaffMail {
    let mut mail = StaffMail::default();
    let mut lines = own_text.lines().peekable();
    // The command block: lines starting with `#` at the top, blank lines between allowed.
    while let Some(line) = lines.peek() {
        let t = line.trim();
        if t.is_empty() {
            lines.next();
            continue;
        }
        let Some(command) = t.strip_prefix('#') else {
            break;
        };
        lines.next();
        let (word, rest) = command
            .split_once(char::is_whitespace)
            .map_or((command, ""), |(w, r)| (w, r.trim()));
        match word.to_ascii_lowercase().as_str() {
            "internal" => mail.internal = true,
            "resolve" => mail.commands.push(Command::Resolve(Resolution::default())),
            "wait" => mail.commands.push(Command::Wait(rest.to_string())),
            "resume" => mail.commands.push(Command::Resume),
            "close" => mail.commands.push(Command::Close),
            "reopen" => mail.commands.push(Command::Reopen),
            "assign" => mail.commands.push(Command::Assign),
            "tag" => mail.commands.push(Command::Tag(rest.to_string())),
            "cadence" => mail.commands.push(match humantime::parse_duration(rest) {
                Ok(d) => Command::Cadence(d),
                Err(_) => Command::Unreadable {
                    line: t.to_string(),
                    why: format!("`{rest}` is not a duration; write it like #cadence 2h"),
                },
            }),
            _ => mail.commands.push(Command::Unreadable {
                line: t.to_string(),
                why: format!(
                    "`#{word}` is not a command; the commands are #resolve, #wait, #resume, \
                     #cadence, #close, #reopen, #tag, #assign and #internal"
                ),
            }),
        }
    }
    let rest: Vec<&str> = lines.collect();
    let resolving = mail
        .commands
        .iter()
        .any(|c| matches!(c, Command::Resolve(_)));
    let text = if resolving {
        let (resolution, leftover) = labelled(&rest);
        for c in &mut mail.commands {
            if let Command::Resolve(r) = c {
                *r = resolution.clone();
            }
        }
        leftover
    } else {
        rest.join("\n")
    };
    mail.text = text.trim().to_string();
    mail
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
    use super::*;

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
    fn commands_on_their_own_lines_at_the_top_then_the_note() {
        let m = read("#cadence 2h\n#tag Payments\n\n#assign\nThe provider is on it.\n#close");
        assert_eq!(
            m.commands,
            vec![
                Command::Cadence(Duration::from_secs(7200)),
                Command::Tag("Payments".into()),
                Command::Assign
            ]
        );
        assert_eq!(
            m.text, "The provider is on it.\n#close",
            "only the top block counts"
        );
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
            matches!(&m.commands[1], Command::Unreadable { why, .. } if why.contains("not a command"))
        );
        assert!(
            matches!(&m.commands[2], Command::Unreadable { why, .. } if why.contains("not a duration"))
        );
    }

    #[test]
    fn a_hash_in_the_middle_of_a_sentence_is_not_a_command() {
        let m = read("Your order #48391 ships today.");
        assert!(m.commands.is_empty());
        assert_eq!(m.text, "Your order #48391 ships today.");
    }
}
