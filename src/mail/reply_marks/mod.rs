//! The marks mail clients put around quoted history and signatures, in the languages our
//! customers and staff write: what [`super::own_words`] looks for.
//!
//! These are formats programs write (Outlook's header block, Gmail's attribution line, an
//! iPhone's footer), not sentences we say, so they live here beside their tests rather than in
//! a phrase file. Sources: the shapes Outlook, Gmail, Apple Mail, Thunderbird, Yahoo, GMX/Web.de,
//! Proton, iOS and Android clients write, checked against the public fixture suites of GitHub's
//! email_reply_parser (MIT), Mailgun's talon (Apache-2.0) and crisp-oss/email-reply-parser (MIT).
//!
//! Every comparison is made on a lower-cased copy that is only ever compared, never sliced
//! back into the original.

mod quote_words;
mod signature_words;

use quote_words::*;
use signature_words::*;

/// Characters a reader cannot see that clients and attackers leave in text: the byte-order
/// mark, zero-width spaces and joiners, word joiner, soft hyphen, bidi controls.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{feff}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{00ad}'
            | '\u{180e}'
    )
}

/// A lower-case copy for comparing, never for slicing: "İ" lower-cases to "i" and a combining
/// dot, which is dropped so that "İyi günler" reads as "iyi günler".
pub fn fold(text: &str) -> String {
    text.to_lowercase().replace('\u{307}', "")
}

/// A line of a `>` quote (also `> > `, and the fullwidth `＞` some Asian clients write).
pub fn is_quote_marked(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('>') || t.starts_with('＞')
}

/// A line as commands are read from it: NFKC (fullwidth `＃ｗｏｒｄ` and the small `﹟` become
/// `#word`), invisible characters (a BOM, zero-width spaces, direction marks) removed,
/// trimmed.
pub fn command_form(line: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    line.chars()
        .filter(|c| !is_invisible(*c))
        .nfkc()
        .collect::<String>()
        .trim()
        .to_string()
}

/// A staff command line: `#word` (or `# word`), in [`command_form`].
pub fn is_command_line(line: &str) -> bool {
    let t = command_form(line);
    let rest = t.strip_prefix('#').map(str::trim_start);
    rest.and_then(|r| r.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic())
}

/// A line that starts quoted history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// `-----Original Message-----` and translations, Android's `-------- Original message
    /// --------`.
    Reply,
    /// `---------- Forwarded message ---------`, Apple's "Begin forwarded message:".
    Forward,
    /// A bare rule (OWA's `________________________________`): history only when a header
    /// block follows it.
    Rule,
}

pub fn separator(line: &str) -> Option<Separator> {
    let t = line.trim();
    if t.chars().count() >= 10 && t.chars().all(|c| c == '_') {
        return Some(Separator::Rule);
    }
    let lower = t.to_lowercase();
    let inner = lower.trim_matches(|c: char| c == '-' || c == '—' || c == '=' || c.is_whitespace());
    let dashed = lower.starts_with("---") || lower.starts_with("———") || lower.starts_with("===");
    if dashed {
        if REPLY_SEPARATOR_WORDS
            .iter()
            .any(|w| inner == *w || inner.starts_with(w))
        {
            return Some(Separator::Reply);
        }
        if FORWARD_SEPARATOR_WORDS.iter().any(|w| inner.starts_with(w)) {
            return Some(Separator::Forward);
        }
    }
    let line_words = lower.trim_end_matches([':', ' ', '：']);
    if FORWARD_LINES.contains(&line_words) && lower.trim_end().ends_with([':', '：']) {
        return Some(Separator::Forward);
    }
    None
}

/// A field of a quoted mail's header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    From,
    Sent,
    To,
    Cc,
    Subject,
}

/// `From: …`, `Von: …`, `De : …` (French puts a space before the colon), `**From:** …` (an HTML
/// block read as text): which header field a line is, if it is one.
pub fn header_field(line: &str) -> Option<Field> {
    let t = line.trim().trim_start_matches(['*', '_']).trim_start();
    let (name, _value) = t.split_once([':', '：'])?;
    let name = name
        .trim()
        .trim_end_matches(['*', '_'])
        .trim()
        .to_lowercase();
    if name.is_empty() || name.chars().count() > 20 {
        return None;
    }
    FIELDS
        .iter()
        .find(|(_, names)| names.contains(&name.as_str()))
        .map(|(field, _)| *field)
}

/// A header line that is a sure sign of a quoted mail when it stands among the writer's words:
/// a sender or recipient with an address, or a subject with our reference token.
pub fn is_stray_header(line: &str) -> bool {
    let Some(field) = header_field(line) else {
        return false;
    };
    let value = line
        .split_once([':', '：'])
        .map(|(_, v)| v)
        .unwrap_or_default();
    match field {
        Field::From | Field::To | Field::Cc => value.contains('@'),
        Field::Subject => value.contains("[FU-"),
        Field::Sent => false,
    }
}

/// "On Mon, 7 Dec 2026 at 10:02, Example Support <support@example.test> wrote:" and its
/// translations ("Am 07.12.2026 um 10:02 schrieb …:", "Le lun. 7 déc. 2026 à 10:02, … a écrit :",
/// "El lun, 7 dic 2026 a las 10:02, … escribió:", "Il giorno … ha scritto:", "Op … schreef …:",
/// "Em … escreveu:"), and the name-first form Gmail writes in some languages ("Example Support
/// <support@example.test> schrieb am Mo., 7. Dez. 2026, 10:02:"). `text` is one line or a line
/// wrapped over two or three, joined with spaces.
///
/// A line counts only when it ends with a colon, names the writing (a verb above), and carries
/// what only a client puts there: an address, a time of day or a year. "On Monday it broke
/// again:" and "In my last mail I wrote:" are a person's words.
pub fn is_attribution(text: &str) -> bool {
    let t = text.trim();
    if t.chars().count() > 400 {
        return false;
    }
    // Zoho writes "---- On Tue, 29 Dec 2026 12:30:00 +0530 Support <…> wrote ---".
    let dashed = t.starts_with("--") && t.ends_with("--");
    let t = t.trim_matches(|c: char| c == '-' || c.is_whitespace());
    if !dashed && !t.ends_with([':', '：']) {
        return false;
    }
    let lower = fold(t);
    let client_marks = lower.contains('@') || has_time_of_day(&lower) || has_year(&lower);
    let has_verb = WROTE.iter().any(|v| contains_word(&lower, v));
    // Gmail in some languages writes no verb at all: "пн, 7 дек. 2026 г. в 13:02, Example
    // Support <support@example.test>:".
    let address_last = lower.trim_end_matches([':', '：', ' ']).ends_with('>')
        && lower.contains('@')
        && (has_time_of_day(&lower) || has_year(&lower));
    (has_verb && client_marks) || address_last
}

/// `10:02`, `9:15`, `22.05` is not counted (a date), only hours and minutes with a colon.
fn has_time_of_day(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(4).enumerate().any(|(i, w)| {
        w[0].is_ascii_digit()
            && w[1] == ':'
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
            && chars.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
    })
}

/// A four-digit year from 1990 to 2099, or a two-digit one after a dotted or slashed date
/// (`07.12.26`, `12/7/26`).
fn has_year(text: &str) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .iter()
        .any(|w| w.len() == 4 && matches!(w.parse::<u32>(), Ok(1990..=2099)))
        || text.split_whitespace().any(|w| {
            let parts: Vec<&str> = w
                .trim_end_matches([',', ':'])
                .split(['.', '/', '-'])
                .collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
        })
}

/// `word` occurs in `text` not inside a longer word.
pub fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(at + word.len()..).and_then(|s| s.chars().next());
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The RFC 3676 signature separator `-- ` (and the `--` that clients trim it to).
pub fn is_signature_delimiter(line: &str) -> bool {
    let t = line.trim_end();
    t == "--" || t == "-- " || t == "—" || t == "–"
}

pub fn is_mobile_footer(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    if lower.chars().count() > 90 {
        return false;
    }
    let starts = MOBILE_FOOTERS.iter().any(|p| lower.starts_with(p));
    if !starts {
        return false;
    }
    // "Get Outlook for iOS" and the like name the app in the phrase itself.
    lower.contains("outlook")
        || lower.contains("iphone")
        || DEVICES.iter().any(|d| contains_word(&lower, d))
}

pub fn is_disclaimer(line: &str) -> bool {
    let lower = line
        .trim()
        .trim_start_matches(['*', '_', '['])
        .to_lowercase();
    DISCLAIMERS.iter().any(|d| lower.starts_with(d))
}

/// A line that is plainly contact data: a phone number, a web or mail address, a labelled
/// field, a company with its legal form, a postal code with a town.
pub fn is_contact_line(line: &str) -> bool {
    // "Example GmbH | Musterstraße 1 | 10115 Berlin", "Tel.: … | Mobil: …": any part will do.
    if line.contains(['|', '·', '•']) {
        let parts: Vec<&str> = line
            .split(['|', '·', '•'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() > 1 && parts.iter().any(|p| contact_part(p)) {
            return line.chars().count() <= 200;
        }
    }
    contact_part(line)
}

fn contact_part(line: &str) -> bool {
    let t = line
        .trim()
        .trim_start_matches(['|', '•', '·', '*', '-'])
        .trim();
    if t.is_empty() || t.chars().count() > 100 {
        return false;
    }
    let lower = t.to_lowercase();
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let phone_chars = t
        .chars()
        .filter(|c| c.is_ascii_digit() || " +()-./".contains(*c))
        .count();
    // Mostly a number: "+49 30 1234 5678", "(030) 123-456".
    if digits >= 7 && phone_chars * 10 >= t.chars().count() * 6 {
        return true;
    }
    let first = lower
        .split(|c: char| c.is_whitespace() || c == ':')
        .next()
        .unwrap_or("");
    if digits >= 5 && CONTACT_LABELS.contains(&first) {
        return true;
    }
    if lower.starts_with("www.") || lower.starts_with("http://") || lower.starts_with("https://") {
        return t.split_whitespace().count() <= 3;
    }
    // An address alone on its line, or a labelled one.
    if t.contains('@') && t.split_whitespace().count() <= 3 && !t.ends_with(['.', '?', '!']) {
        return true;
    }
    if CONTACT_LABELS.contains(&first)
        && lower.contains(':')
        && (t.contains('@') || t.contains("www.") || digits >= 5)
    {
        return true;
    }
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() <= 6
        && words
            .iter()
            .any(|w| COMPANY_FORMS.contains(w) || COMPANY_FORMS.contains(&w.trim_end_matches('.')))
    {
        return true;
    }
    // "Hauptstraße 5, 10115 Berlin", "75008 Paris": a postal code and a town.
    words.len() <= 8
        && t.split(|c: char| !c.is_ascii_digit())
            .any(|d| (4..=5).contains(&d.len()))
        && t.chars().any(char::is_alphabetic)
        && !t.ends_with(['.', '?', '!'])
        && t.chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
        && t.split_whitespace().count() <= 6
        && !t.contains("order")
}

/// A company's legal footer line ("Example GmbH, Sitz: Berlin, Amtsgericht Charlottenburg HRB
/// 123456", "Registered in England No. 1234567").
pub fn is_register_line(line: &str) -> bool {
    let lower = fold(line.trim());
    lower.chars().count() <= 160 && REGISTER_WORDS.iter().any(|w| contains_word(&lower, w))
}

/// A short line that may sit in a signature block: a job title, a department, a company name
/// without its legal form, the writer's name. Never a sentence.
pub fn is_signature_line(line: &str) -> bool {
    let t = line.trim().trim_start_matches(['|', '•', '·']).trim();
    if t.is_empty() || t.chars().count() > 60 || t.ends_with(['.', '?', '!', ':', ',']) {
        return false;
    }
    // A postscript is more text, never a signature.
    let lower = fold(t);
    if lower.starts_with("p.s") || lower.starts_with("ps:") || lower.starts_with("ps ") {
        return false;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.len() > 6 {
        return false;
    }
    // Capitalised words ("Senior Support Engineer"), a capitalised title with small words in
    // it ("Head of customer care", "Atención al cliente"), or parts split by separators
    // ("Support | Example GmbH").
    let capitalised = words
        .iter()
        .filter(|w| w.chars().next().is_some_and(|c| c.is_uppercase()))
        .count();
    capitalised * 2 >= words.len()
        || (words.len() <= 4 && words[0].chars().next().is_some_and(char::is_uppercase))
        || t.contains(" | ")
}

/// One to three capitalised words and nothing else: a name under the text ("Tom", "Maria
/// Schneider", "Jean-Luc", "Anna W.").
pub fn looks_like_a_name(line: &str) -> bool {
    let t = line.trim();
    // Names in scripts without capitals: "田中", "김민수".
    let count = t.chars().count();
    if (1..=4).contains(&count)
        && t.chars()
            .all(|c| c.is_alphabetic() && !c.is_lowercase() && !c.is_uppercase())
    {
        return true;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let capitalised = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
    (1..=4).contains(&words.len())
        && words.first().is_some_and(|w| capitalised(w))
        && words.iter().all(|w| {
            let w = w.trim_end_matches(',');
            (capitalised(w) || NAME_PARTICLES.contains(&w))
                && w.chars()
                    .all(|c| c.is_alphabetic() || c == '-' || c == '.' || c == '\'' || c == '’')
        })
        && words.iter().filter(|w| capitalised(w)).count() <= 3
}

/// Whether `line` is a sign-off, and how many name lines may follow it: "Best," (up to two
/// name lines under it) or "Thanks, Anna" (the name on the line itself, none under it).
pub fn sign_off_len(line: &str) -> Option<usize> {
    let lower = fold(line.trim());
    let words = lower.trim_end_matches([',', '!', '.', ' ', '-', '。', '！', '、']);
    // "Grazie e buona giornata", "Thanks and best regards": sign-offs joined by "and".
    if [" and ", " & ", " und ", " e ", " y ", " et ", " en "]
        .iter()
        .any(|joint| {
            words.contains(joint)
                && words
                    .split(joint)
                    .all(|part| SIGN_OFFS.contains(&part.trim_matches([',', ' '])))
        })
    {
        return Some(2);
    }
    for s in SIGN_OFFS {
        if words == *s {
            return Some(2);
        }
        if let Some(rest) = words.strip_prefix(s) {
            let rest = rest.trim_start_matches([',', ' ']);
            if rest.len() < words.len() - s.len()
                && !rest.is_empty()
                && rest.split_whitespace().count() <= 3
                && !rest.contains(['.', '?', '!'])
                && original_is_name(line, rest)
            {
                return Some(0);
            }
        }
    }
    None
}

/// The last words of `line` (whose lower-case form ends in `rest`) are capitalised: a name.
fn original_is_name(line: &str, rest: &str) -> bool {
    let count = rest.split_whitespace().count();
    let words: Vec<&str> = line
        .trim()
        .trim_end_matches([',', '!', '.', ' ', '-'])
        .split_whitespace()
        .collect();
    words.len() >= count
        && words[words.len() - count..]
            .iter()
            .all(|w| w.chars().next().is_some_and(char::is_uppercase))
}

/// How the writer's first line greets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// The whole line is a greeting ("Hi Ann,", "Guten Tag Frau Weber", "Hello team!").
    Whole,
    /// The line opens with a greeting of this many characters, and the text goes on after it
    /// ("Hi Ann, the parcel left today.").
    Opens(usize),
}

pub fn greeting(line: &str) -> Option<Greeting> {
    let t = line.trim();
    let lower = fold(t);
    // A greeting that is the whole line, in any script ("Здравствуйте!", "お世話になっております。").
    let bare = lower.trim_end_matches([',', '!', '.', ':', '。', '！', '、', '，', ' ']);
    if GREETINGS.contains(&bare) {
        return Some(Greeting::Whole);
    }
    let g = GREETINGS.iter().find(|g| {
        lower.starts_with(*g)
            && lower
                .get(g.len()..)
                .and_then(|r| r.chars().next())
                .is_none_or(|c| !c.is_alphanumeric())
    })?;
    let words = t.split_whitespace().count();
    // The greeting ends at the first comma, exclamation mark or colon, counted in characters
    // of the line itself.
    let greeting_chars = g.chars().count();
    let end = t
        .chars()
        .enumerate()
        .skip(greeting_chars)
        .find(|(_, c)| matches!(c, ',' | '!' | ':' | '，'))
        .map(|(i, _)| i + 1);
    match end {
        Some(end) if end == t.chars().count() => (words <= 6).then_some(Greeting::Whole),
        Some(end) => {
            let head: String = t.chars().take(end).collect();
            (head.split_whitespace().count() <= 5).then_some(Greeting::Opens(end))
        }
        // "Hi Ann" with nothing after it on the line.
        None => (words <= 4 && !t.ends_with(['.', '?'])).then_some(Greeting::Whole),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_lines_in_seven_languages() {
        for line in [
            "On Mon, 7 Dec 2026 at 10:02, Example Support <support@example.test> wrote:",
            "On 07/12/2026 10:02, Example Support wrote:",
            "Am 07.12.2026 um 10:02 schrieb Example Support <support@example.test>:",
            "Example Support <support@example.test> schrieb am Mo., 7. Dez. 2026, 10:02:",
            "Le lun. 7 déc. 2026 à 10:02, Example Support <support@example.test> a écrit :",
            "El lun, 7 dic 2026 a las 10:02, Example Support (<support@example.test>) escribió:",
            "Il giorno lun 7 dic 2026 alle ore 10:02 Example Support <support@example.test> ha scritto:",
            "Op ma 7 dec. 2026 om 10:02 schreef Example Support <support@example.test>:",
            "Em seg., 7 de dez. de 2026 às 10:02, Example Support <support@example.test> escreveu:",
        ] {
            assert!(is_attribution(line), "{line}");
        }
        for line in [
            "On Monday it broke again:",
            "In my last mail I wrote:",
            "Here is what the courier wrote:",
        ] {
            assert!(!is_attribution(line), "{line}");
        }
    }

    #[test]
    fn header_fields_in_their_languages() {
        assert_eq!(header_field("From: Example"), Some(Field::From));
        assert_eq!(header_field("De : Example"), Some(Field::From));
        assert_eq!(header_field("**Von:** Example"), Some(Field::From));
        assert_eq!(header_field("Enviado el: lunes"), Some(Field::Sent));
        assert_eq!(header_field("Objet : Incident"), Some(Field::Subject));
        assert_eq!(header_field("Note: the lid"), None);
    }

    #[test]
    fn footers_and_disclaimers() {
        for line in [
            "Sent from my iPhone",
            "Von meinem iPhone gesendet",
            "Envoyé de mon iPhone",
            "Enviado desde mi iPhone",
            "Inviato da iPhone",
            "Verstuurd vanaf mijn iPhone",
            "Enviado do meu iPhone",
            "Get Outlook for iOS",
            "Sent from my Galaxy",
        ] {
            assert!(is_mobile_footer(line), "{line}");
        }
        assert!(!is_mobile_footer(
            "Sent from my office in Leeds yesterday, the parcel"
        ));
        assert!(is_disclaimer(
            "This e-mail and any attachments are confidential and intended solely"
        ));
    }

    #[test]
    fn greetings_end_at_their_comma() {
        assert_eq!(greeting("Hi Ann,"), Some(Greeting::Whole));
        assert_eq!(greeting("Hİ,"), Some(Greeting::Whole));
        assert_eq!(greeting("Guten Tag Frau Weber,"), Some(Greeting::Whole));
        assert_eq!(
            greeting("Hi Ann, the parcel left today."),
            Some(Greeting::Opens(7))
        );
        assert_eq!(greeting("History is not on our side."), None);
        assert_eq!(greeting("Hello?? Is anyone there?"), None);
    }

    #[test]
    fn sign_offs_with_and_without_a_name() {
        assert_eq!(sign_off_len("Best,"), Some(2));
        assert_eq!(sign_off_len("Thanks, Anna"), Some(0));
        assert_eq!(sign_off_len("Thanks, that works"), None);
        assert_eq!(sign_off_len("Mit freundlichen Grüßen"), Some(2));
    }

    #[test]
    fn contact_lines() {
        assert!(is_contact_line("Mobile: +49 171 2345678"));
        assert!(is_contact_line("+49 30 1234 5678"));
        assert!(is_contact_line("www.example.com"));
        assert!(is_contact_line("Example GmbH"));
        assert!(!is_contact_line("Please call me on Monday."));
        assert!(!is_contact_line("Order 48391 never arrived."));
    }
}
