//! The writer's own words: what a person typed into this mail, and nothing else.
//!
//! Every reply, a customer's or a staff member's, is read here before anything acts on it. What
//! is taken away:
//! - quoted history, in the shapes real clients write it: `>` quotes (top-, bottom- and
//!   inline-posted), attribution lines ("On … wrote:", "Am … schrieb …:", "Le … a écrit :" and
//!   the others in [`super::reply_marks`], also wrapped over two or three lines), Outlook's
//!   header blocks (`From:`/`Sent:`/`To:`/`Subject:` and their translations) and separators
//!   (`-----Original Message-----`, OWA's underscores), and the HTML containers that
//!   [`super::body`] turns into `>` lines;
//! - **our own mail**: any run of text that matches a mail followupd sent into this thread, after
//!   whitespace, case, punctuation and quote marks are set aside. This is the last word: it
//!   holds for clients nobody has seen yet, since whatever a client does to the quote, it keeps
//!   our words in order;
//! - signatures: RFC 3676 `-- `, phone footers ("Sent from my iPhone" and translations), legal
//!   disclaimers, and unmarked contact blocks (a name with title, company, phone lines under it).
//!
//! What is set apart: the writer's greeting ("Hi Ann,") and sign-off ("Best,\nAnna"), so a
//! template that greets and signs itself does not say it twice.
//!
//! Text is handled line by line and character by character: nothing here slices one string at a
//! position found in another copy of it (lower-casing changes byte lengths: "İ" is two bytes,
//! "i̇" three).

use super::our_mail::{words, Coverage};
pub use super::our_mail::{OurMail, MAX_OUR_MAIL};
use super::reply_marks;

/// Longest own text kept, in bytes: a person does not write more in one mail, and nothing
/// downstream may grow with what a sender sent.
pub const MAX_OWN_TEXT: usize = 64 * 1024;
/// Lines read per mail; what follows is kept raw on record but not read.
const MAX_LINES: usize = 5_000;
/// How a mail reached us, which decides what counts as quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A new mail that opens an incident: what it forwards is part of what the sender brings
    /// us ("see the mail from the shop below"), so a forwarded message is kept.
    Fresh,
    /// A reply in a thread: everything quoted or forwarded is someone else's.
    Reply,
}

/// Why the reading may not be what the writer meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doubt {
    /// A line is partly made of our mail: a quote the client mangled, or the writer's own
    /// words around a piece of ours.
    PartlyOurs(String),
    /// A line that looks like the header of a quoted mail stands alone in the text.
    StrayHeader(String),
}

impl std::fmt::Display for Doubt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Doubt::PartlyOurs(line) => write!(f, "a line is partly text of our own mail: «{line}»"),
            Doubt::StrayHeader(line) => {
                write!(f, "a line looks like the header of a quoted mail: «{line}»")
            }
        }
    }
}

/// What the writer wrote in one mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnWords {
    /// Their greeting line ("Hi Ann,"), when they opened with one and wrote more.
    pub greeting: Option<String>,
    /// What they wrote for the reader, without greeting and sign-off; lines kept. Pieces of an
    /// inline reply are joined by a blank line.
    pub body: String,
    /// Their closing words and the name under them ("Best,\nAnna").
    pub sign_off: Option<String>,
    /// Their signature: a `-- ` block or the contact lines under their name (staff may need
    /// the phone number). Phone footers and disclaimers are dropped, not kept here.
    pub signature: Option<String>,
    /// Something of someone else's was found and taken away (a quote, our mail).
    pub quoted: bool,
    /// Why the reading may be wrong.
    pub doubt: Option<Doubt>,
}

impl OwnWords {
    /// Everything they wrote: greeting, body and sign-off.
    pub fn text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if let Some(g) = &self.greeting {
            parts.push(g);
        }
        if !self.body.is_empty() {
            parts.push(&self.body);
        }
        if let Some(s) = &self.sign_off {
            parts.push(s);
        }
        parts.join("\n")
    }

    /// Nothing of their own (a reply that is all quote).
    pub fn is_empty(&self) -> bool {
        self.greeting.is_none() && self.body.trim().is_empty() && self.sign_off.is_none()
    }
}

/// What each line of a mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Own,
    /// Someone else's: a `>` quote, a quoted mail, our own mail.
    Quoted,
    /// "On … wrote:" above a quote.
    Attribution,
}

/// Reads the writer's own words out of a mail's readable text (see [`super::body`]: HTML quote
/// containers arrive as `>` lines). `ours` holds what we sent into this thread.
pub fn read(body: &str, ours: &OurMail, context: Context) -> OwnWords {
    let lines: Vec<String> = body.lines().take(MAX_LINES).map(clean).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut kinds = vec![Kind::Own; refs.len()];
    let mut quoted = false;

    for (i, line) in refs.iter().enumerate() {
        if reply_marks::is_quote_marked(line) {
            kinds[i] = Kind::Quoted;
            quoted = true;
        }
    }
    // Where quoted history starts with nothing marking its lines: everything from there on is
    // someone else's, except what `>` quotes leave open below an attribution.
    if let Some(cut) = history_start(&refs, &kinds, context) {
        for k in kinds.iter_mut().skip(cut) {
            *k = Kind::Quoted;
        }
        quoted = true;
    }
    // Attribution lines right above a quote.
    for (start, len) in attributions(&refs, &kinds) {
        for k in kinds.iter_mut().skip(start).take(len) {
            *k = Kind::Attribution;
        }
    }
    // Our own mail, however it was quoted.
    let mut doubt = None;
    if !ours.is_empty() {
        let marks = ours.coverage(&refs, false);
        for (i, m) in marks.iter().enumerate() {
            if kinds[i] != Kind::Own {
                continue;
            }
            if m.ours() {
                kinds[i] = Kind::Quoted;
                quoted = true;
            } else if m.covered >= 3 && doubt.is_none() {
                doubt = Some(Doubt::PartlyOurs(refs[i].trim().to_string()));
            }
        }
        absorb_gaps(&refs, &mut kinds, &marks);
    }
    // The writer's pieces: runs of own lines between quotes.
    let mut pieces: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (line, kind) in refs.iter().zip(&kinds) {
        if *kind == Kind::Own {
            current.push(line);
        } else if !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    // Footers, disclaimers and `-- ` blocks end each piece; the sign-off and an unmarked
    // signature stand at the end of the last one.
    let mut signature: Vec<String> = Vec::new();
    let mut kept: Vec<Vec<&str>> = Vec::new();
    for piece in pieces {
        let (own, sig) = split_signature(&piece);
        let sig = join_piece(trim_blank(&sig));
        if !sig.is_empty() {
            signature.push(sig);
        }
        let own = trim_blank(&own).to_vec();
        if !own.is_empty() {
            kept.push(own);
        }
    }
    let mut sign_off = None;
    if let Some(last) = kept.last_mut() {
        let tail = split_tail(last);
        if !tail.signature.is_empty() {
            signature.push(join_piece(&tail.signature));
        }
        sign_off = (!tail.sign_off.is_empty()).then(|| join_piece(&tail.sign_off));
        *last = tail.body;
    }
    kept.retain(|p| !trim_blank(p).is_empty());
    // A stray header line among the writer's words: a quote we did not recognise.
    if doubt.is_none() {
        doubt = kept
            .iter()
            .flatten()
            .find(|l| reply_marks::is_stray_header(l))
            .map(|l| Doubt::StrayHeader(l.trim().to_string()));
    }
    let greeting = take_greeting(&mut kept);
    let body = bounded(
        &kept
            .iter()
            .map(|piece| join_piece(trim_blank(piece)))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
    );
    // A name and a signature with nothing written above them are not words: an Outlook reply
    // that is all quote still carries the sender's automatic signature.
    if body.is_empty() && greeting.is_none() {
        if let Some(s) = sign_off.take() {
            signature.insert(0, s);
        }
    }
    OwnWords {
        greeting,
        body,
        sign_off,
        signature: (!signature.is_empty()).then(|| signature.join("\n")),
        quoted,
        doubt,
    }
}

/// A line as it is read: no-break and other odd spaces as spaces, invisible characters (a
/// byte-order mark, zero-width spaces and joiners, bidi controls) and control characters
/// removed, trailing whitespace trimmed.
fn clean(line: &str) -> String {
    line.chars()
        .filter(|c| !reply_marks::is_invisible(*c))
        .map(|c| {
            if c.is_whitespace() || (c.is_control() && c != '\n') {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// The first line from which on everything is quoted history with no marks on its lines: an
/// Outlook header block or separator, or an attribution line that no `>` quote follows.
fn history_start(lines: &[&str], kinds: &[Kind], context: Context) -> Option<usize> {
    for i in 0..lines.len() {
        if kinds[i] != Kind::Own {
            continue;
        }
        let line = lines[i];
        match reply_marks::separator(line) {
            Some(reply_marks::Separator::Reply) => return Some(i),
            Some(reply_marks::Separator::Forward) if context == Context::Reply => return Some(i),
            Some(reply_marks::Separator::Rule) if header_block_at(lines, kinds, i + 1) => {
                return Some(i)
            }
            _ => {}
        }
        if header_block_at(lines, kinds, i) {
            return Some(i);
        }
        if let Some(len) = attribution_at(lines, i) {
            if !quote_follows(lines, kinds, i + len) {
                return Some(i);
            }
        }
    }
    None
}

/// Lines `at..` are a quoted mail's header: at least three header fields in a row (wrapped
/// values allowed), or two when they are the sender and the date.
fn header_block_at(lines: &[&str], kinds: &[Kind], at: usize) -> bool {
    let mut i = at;
    // A blank line may sit between a separator and the block.
    while lines.get(i).is_some_and(|l| l.trim().is_empty()) && i < at + 2 {
        i += 1;
    }
    let Some(first) = lines
        .get(i)
        .filter(|_| kinds.get(i) == Some(&Kind::Own))
        .and_then(|l| reply_marks::header_field(l))
    else {
        return false;
    };
    let mut fields = vec![first];
    let mut j = i + 1;
    let mut continuation = 0;
    while j < lines.len() && j < i + 12 {
        let line = lines[j];
        if line.trim().is_empty() {
            break;
        }
        match reply_marks::header_field(line) {
            Some(f) => {
                if !fields.contains(&f) {
                    fields.push(f);
                }
                continuation = 0;
            }
            // A long value wrapped onto the next line (a list of recipients).
            None if continuation < 2 => continuation += 1,
            None => break,
        }
        j += 1;
    }
    use reply_marks::Field;
    let sender = fields.contains(&Field::From);
    let date = fields.contains(&Field::Sent);
    fields.len() >= 3 || (sender && date)
}

/// How many lines from `at` make an attribution line ("On … wrote:"), wrapped or not.
fn attribution_at(lines: &[&str], at: usize) -> Option<usize> {
    let mut joined = String::new();
    for len in 1..=3 {
        let line = lines.get(at + len - 1)?;
        if line.trim().is_empty() || reply_marks::is_quote_marked(line) {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line.trim());
        if joined.chars().count() > 400 {
            return None;
        }
        if reply_marks::is_attribution(&joined) {
            return Some(len);
        }
    }
    None
}

/// A `>` quote starts at `at` (blank lines allowed before it).
fn quote_follows(lines: &[&str], kinds: &[Kind], at: usize) -> bool {
    let mut i = at;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        return kinds[i] == Kind::Quoted;
    }
    false
}

/// Attribution lines that stand right above a `>` quote: (first line, line count).
fn attributions(lines: &[&str], kinds: &[Kind]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if kinds[i] == Kind::Own {
            if let Some(len) = attribution_at(lines, i) {
                if quote_follows(lines, kinds, i + len) {
                    found.push((i, len));
                    i += len;
                    continue;
                }
            }
        }
        i += 1;
    }
    found
}

/// Short lines caught between two runs of our mail (a blank line, "Hello Ann," of our own
/// greeting when it is too short to match alone) belong to the quote.
fn absorb_gaps(lines: &[&str], kinds: &mut [Kind], marks: &[Coverage]) {
    let n = kinds.len();
    let mut i = 0;
    while i < n {
        if kinds[i] != Kind::Own {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && kinds[i] == Kind::Own {
            i += 1;
        }
        let before = start > 0 && kinds[start - 1] == Kind::Quoted;
        let after = i < n && kinds[i] == Kind::Quoted;
        let gap = &lines[start..i];
        let small = gap.iter().filter(|l| !l.trim().is_empty()).count() <= 2
            && gap
                .iter()
                .zip(&marks[start..i])
                .all(|(l, m)| l.trim().is_empty() || m.covered > 0 || words(l).len() <= 3);
        if before && after && small {
            for k in kinds.iter_mut().take(i).skip(start) {
                *k = Kind::Quoted;
            }
        }
    }
    // Blank lines and a lone short line at the very end, under our mail, are the rest of it.
    if let Some(last_ours) = kinds.iter().rposition(|k| *k == Kind::Quoted) {
        let tail = &lines[last_ours + 1..];
        if tail.iter().all(|l| l.trim().is_empty()) {
            for k in kinds.iter_mut().skip(last_ours + 1) {
                *k = Kind::Quoted;
            }
        }
    }
}

fn trim_blank<'a, 'b>(mut lines: &'b [&'a str]) -> &'b [&'a str] {
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines = &lines[1..];
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines = &lines[..lines.len() - 1];
    }
    lines
}

/// Lines trimmed, runs of blank lines made one.
fn join_piece(lines: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in lines {
        let t = line.trim();
        if t.is_empty() && out.last().is_some_and(|l| l.is_empty()) {
            continue;
        }
        out.push(t);
    }
    out.join("\n")
}

/// At most [`MAX_OWN_TEXT`] bytes, cut at a line.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_OWN_TEXT {
        return text.to_string();
    }
    let mut out = String::new();
    for line in text.lines() {
        if out.len() + line.len() + 1 > MAX_OWN_TEXT {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// A piece of the writer's text, split at a phone's footer, a disclaimer or a `-- ` line: the
/// `-- ` block is their signature (kept for staff, who may need the phone number in it); a
/// footer and a disclaimer are nobody's words and are dropped.
fn split_signature<'a>(piece: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let footer = piece.iter().position(|l| {
        reply_marks::is_signature_delimiter(l)
            || reply_marks::is_mobile_footer(l)
            || reply_marks::is_disclaimer(l)
    });
    let Some(at) = footer else {
        return (piece.to_vec(), Vec::new());
    };
    let (text, marked) = piece.split_at(at);
    let mut signature = Vec::new();
    if marked
        .first()
        .is_some_and(|l| reply_marks::is_signature_delimiter(l))
    {
        signature.extend(
            marked.iter().skip(1).take_while(|l| {
                !reply_marks::is_mobile_footer(l) && !reply_marks::is_disclaimer(l)
            }),
        );
    }
    (text.to_vec(), signature)
}

/// The end of the writer's text, taken apart.
struct Tail<'a> {
    body: Vec<&'a str>,
    sign_off: Vec<&'a str>,
    signature: Vec<&'a str>,
}

/// A line that may stand below the writer's text: blank, a name, contact data, a title or a
/// company line, a company register line.
fn closing(line: &str) -> bool {
    line.trim().is_empty()
        || reply_marks::looks_like_a_name(line)
        || reply_marks::is_contact_line(line)
        || reply_marks::is_signature_line(line)
        || reply_marks::is_register_line(line)
}

/// Finds the sign-off ("Best,\nAnna", "Mit freundlichen Grüßen\nMonika Schulz", a name alone)
/// and an unmarked signature (name, title, company, phone lines) at the end of the writer's
/// last piece of text. Commands written at the very end (`#tag vip`) stay in the body.
fn split_tail<'a>(piece: &[&'a str]) -> Tail<'a> {
    let mut end = piece.len();
    while end > 0 && {
        let t = piece[end - 1].trim();
        t.is_empty() || reply_marks::is_command_line(t)
    } {
        end -= 1;
    }
    let commands = &piece[end..];
    let lines = &piece[..end];
    let with_commands = |body: &[&'a str]| -> Vec<&'a str> {
        let mut body = trim_blank(body).to_vec();
        if commands.iter().any(|l| !l.trim().is_empty()) {
            body.push("");
            body.extend(trim_blank(commands));
        }
        body
    };
    // A sign-off phrase with only closing lines under it.
    let first = end.saturating_sub(15).max(1);
    for i in first..end {
        let Some(names) = reply_marks::sign_off_len(lines[i]) else {
            continue;
        };
        if !lines[i + 1..].iter().all(|l| closing(l)) {
            continue;
        }
        let mut so_end = i + 1;
        if names > 0 {
            let mut j = i + 1;
            while j < end && lines[j].trim().is_empty() {
                j += 1;
            }
            if j < end && reply_marks::looks_like_a_name(lines[j]) {
                so_end = j + 1;
            }
        }
        return Tail {
            body: with_commands(&lines[..i]),
            sign_off: lines[i..so_end].to_vec(),
            signature: trim_blank(&lines[so_end..]).to_vec(),
        };
    }
    // No sign-off phrase: a block of closing lines under the text.
    let mut b = end;
    while b > 0 && closing(lines[b - 1]) {
        b -= 1;
    }
    let block: Vec<usize> = (b..end).filter(|&i| !lines[i].trim().is_empty()).collect();
    let separated = |at: usize| {
        at > 0 && {
            let above = lines[at - 1].trim();
            above.is_empty() || above.ends_with(['.', '!', '?', ')', ':'])
        }
    };
    let Some(&top) = block.first() else {
        return Tail {
            body: with_commands(lines),
            sign_off: Vec::new(),
            signature: Vec::new(),
        };
    };
    // An automatic signature with nothing above it (a reply that is all quote).
    let alone = b == 0
        && reply_marks::looks_like_a_name(lines[top])
        && block
            .iter()
            .any(|&i| reply_marks::is_contact_line(lines[i]));
    if alone {
        return Tail {
            body: with_commands(&[]),
            sign_off: Vec::new(),
            signature: lines[top..end].to_vec(),
        };
    }
    if b == 0 || !separated(top) {
        return Tail {
            body: with_commands(lines),
            sign_off: Vec::new(),
            signature: Vec::new(),
        };
    }
    let name_alone = reply_marks::looks_like_a_name(lines[top])
        && (block.len() == 1 || lines[top + 1].trim().is_empty());
    let rest: Vec<usize> = block
        .iter()
        .copied()
        .skip(usize::from(name_alone))
        .collect();
    let rest_is_signature = rest.iter().any(|&i| reply_marks::is_contact_line(lines[i]))
        || rest
            .iter()
            .all(|&i| reply_marks::looks_like_a_name(lines[i]));
    match (name_alone, rest.is_empty(), rest_is_signature) {
        // "Tom" under the text.
        (true, true, _) => Tail {
            body: with_commands(&lines[..top]),
            sign_off: vec![lines[top]],
            signature: Vec::new(),
        },
        // "Sam" under the text, then the automatic signature.
        (true, false, true) => Tail {
            body: with_commands(&lines[..top]),
            sign_off: vec![lines[top]],
            signature: trim_blank(&lines[top + 1..end]).to_vec(),
        },
        // A contact block under the text: the automatic signature, name and all.
        (false, false, true) => Tail {
            body: with_commands(&lines[..top]),
            sign_off: Vec::new(),
            signature: lines[top..end].to_vec(),
        },
        _ => Tail {
            body: with_commands(lines),
            sign_off: Vec::new(),
            signature: Vec::new(),
        },
    }
}

/// Takes the writer's greeting off the first line of their text (command lines above it
/// skipped), when the line is a greeting alone and more follows. A greeting that opens a
/// sentence ("Hi Ann, the parcel left today.") stays in the text.
fn take_greeting(pieces: &mut [Vec<&str>]) -> Option<String> {
    let written: usize = pieces
        .iter()
        .flatten()
        .filter(|l| !l.trim().is_empty() && !reply_marks::is_command_line(l))
        .count();
    let first = pieces.iter_mut().find(|p| !trim_blank(p).is_empty())?;
    let at = first
        .iter()
        .position(|l| !l.trim().is_empty() && !reply_marks::is_command_line(l))?;
    let line = first[at];
    if written > 1 && reply_marks::greeting(line) == Some(reply_marks::Greeting::Whole) {
        first.remove(at);
        // The blank line under the greeting goes with it.
        if first.get(at).is_some_and(|l| l.trim().is_empty()) {
            first.remove(at);
        }
        return Some(line.trim().to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(body: &str) -> OwnWords {
        read(body, &OurMail::none(), Context::Reply)
    }

    #[test]
    fn a_top_posted_reply_over_a_gmail_quote() {
        let o = own("Hi Ann,\n\nthe parcel left today.\n\nBest,\nAnna\n\nOn Mon, 7 Dec 2026 at 10:02, Example Support <support@example.test> wrote:\n> Incident 12 needs someone\n> #resolve\n");
        assert_eq!(o.greeting.as_deref(), Some("Hi Ann,"));
        assert_eq!(o.body, "the parcel left today.");
        assert_eq!(o.sign_off.as_deref(), Some("Best,\nAnna"));
        assert!(o.quoted);
    }

    #[test]
    fn a_bottom_posted_thunderbird_reply_keeps_what_is_under_the_quote() {
        let o = own("On 07/12/2026 10:02, Example Support wrote:\n> Incident 12 needs someone\n> to look at it.\n\nWe shipped a new lamp today.\n");
        assert_eq!(o.body, "We shipped a new lamp today.");
    }

    #[test]
    fn an_outlook_header_block_ends_the_own_words_in_any_language() {
        for block in [
            "From: Example Support <support@example.test>\nSent: Monday, December 7, 2026 10:02 AM\nTo: Anna <anna@example.test>\nSubject: Incident 12",
            "Von: Example Support <support@example.test>\nGesendet: Montag, 7. Dezember 2026 10:02\nAn: Anna <anna@example.test>\nBetreff: Vorfall 12",
            "De : Example Support <support@example.test>\nEnvoyé : lundi 7 décembre 2026 10:02\nÀ : Anna <anna@example.test>\nObjet : Incident 12",
            "________________________________\nDe: Example Support <support@example.test>\nEnviado: lunes, 7 de diciembre de 2026 10:02\nPara: Anna\nAsunto: Incidente 12",
        ] {
            let o = own(&format!("Bitte alle zwei Stunden.\n\n{block}\n\nWir schreiben alle 4 Stunden.\n"));
            assert_eq!(o.body, "Bitte alle zwei Stunden.", "{block}");
        }
    }

    #[test]
    fn a_customer_line_starting_with_from_is_their_own() {
        let o = own("From: the warehouse in Leeds, the parcel never left.\nOn Monday it broke again:\nthe lid is cracked.");
        assert_eq!(
            o.body,
            "From: the warehouse in Leeds, the parcel never left.\nOn Monday it broke again:\nthe lid is cracked."
        );
    }

    #[test]
    fn signatures_of_every_kind_are_taken_away() {
        let o = own("The fix is live.\n\nAnna Weber\nSenior Support Engineer\nExample GmbH\nMobile: +49 171 2345678");
        assert_eq!(o.body, "The fix is live.");
        assert_eq!(o.sign_off, None, "an automatic signature, name and all");
        assert!(o.signature.as_deref().unwrap().contains("2345678"));
        let o = own("Works now.\n\nSent from my iPhone");
        assert_eq!(o.body, "Works now.");
        let o = own("Thanks\n-- \nAnn\nCEO");
        assert_eq!(o.body, "Thanks");
    }

    #[test]
    fn our_own_mail_quoted_without_any_mark_is_recognised() {
        let mut ours = OurMail::none();
        let sent = "Hello Ann,\n\nWe are still working on incident 12. We have no new finding\nto report yet.\n\nWhat happens next: we will write again by Monday 7 December, 14:00 UTC.";
        ours.add(sent, false);
        let reply = "Please write every two hours.\n\nHello Ann,\nWe are still working on incident 12. We have no new finding to report yet.\nWhat happens next: we will write again by Monday 7 December, 14:00 UTC.";
        let o = read(reply, &ours, Context::Reply);
        assert_eq!(o.body, "Please write every two hours.");
    }

    #[test]
    fn a_german_outlook_customer_is_heard_not_our_acknowledgement_below_her() {
        let ack = "Guten Tag Frau Schneider,\n\nvielen Dank für Ihre Nachricht. Wir melden uns alle 4 Stunden mit dem\nneuesten Stand, bis das Problem gelöst ist.";
        let mut ours = OurMail::none();
        ours.add(ack, false);
        let with_block = format!(
            "Bitte informieren Sie mich alle zwei Stunden.\n\nMaria Schneider\n\nVon: Example Support <support@example.test>\nGesendet: Montag, 23. November 2026 10:00\nAn: maria@example.test\nBetreff: Re: Lieferung fehlt\n\n{ack}"
        );
        // Outlook without its header block (a mobile client's reply): our own text is known.
        let bare = format!("Bitte informieren Sie mich alle zwei Stunden.\n\n{ack}");
        for reply in [with_block, bare] {
            let o = read(&reply, &ours, Context::Reply);
            assert_eq!(
                o.body, "Bitte informieren Sie mich alle zwei Stunden.",
                "{reply}"
            );
            assert_eq!(
                crate::incident::pace::read(&o.text()).cadence(),
                Some(std::time::Duration::from_secs(2 * 3600))
            );
        }
    }

    #[test]
    fn a_staff_only_line_is_found() {
        let mut ours = OurMail::none();
        ours.add(
            "Customer sounds angry; call them tomorrow before noon please",
            true,
        );
        let found =
            ours.staff_only_lines("Hi,\ncall them tomorrow before noon please, the customer said.");
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_turkish_capital_i_does_not_break_the_reading() {
        let o = own("Hİ,\n\nmy order never arrived.\n\nThanks,\nİsmail");
        assert_eq!(o.body, "my order never arrived.");
        assert_eq!(o.greeting.as_deref(), Some("Hİ,"));
    }

    #[test]
    fn an_all_quote_reply_is_empty() {
        let o = own("\n\nOn Mon, 7 Dec 2026 at 10:02, Example Support <support@example.test> wrote:\n> Incident 12\n");
        assert!(o.is_empty());
    }

    #[test]
    fn inline_answers_are_kept_in_order() {
        let o = own("On 07/12/2026 10:02, Example Support wrote:\n> Which order number?\n\n48391\n\n> Which colour?\n\nRed.\n");
        assert_eq!(o.body, "48391\n\nRed.");
    }

    #[test]
    fn a_command_under_the_sign_off_stays_in_the_body() {
        let o = own("We shipped a replacement.\n\nBest,\nAnna\n#tag vip");
        assert_eq!(o.body, "We shipped a replacement.\n\n#tag vip");
        assert_eq!(o.sign_off.as_deref(), Some("Best,\nAnna"));
    }
}

/// The reply corpus (`tests/fixtures/replies/`): every client, language and posting style,
/// each with what its writer wrote beside it. See its MANIFEST.md.
#[cfg(test)]
mod fixtures {
    use super::*;
    use std::path::Path;

    #[derive(serde::Deserialize)]
    struct Expected {
        client: String,
        greeting: Option<String>,
        body: String,
        sign_off: Option<String>,
        leaks: Vec<String>,
    }

    /// Paragraphs with their whitespace made single spaces: clients hard-wrap what the writer
    /// typed as one line.
    fn paragraphs(text: &str) -> Vec<String> {
        text.split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect()
    }

    fn flat(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// What the thread of a fixture holds of ours, near enough: the fixed lines of every
    /// template that rendered the mails they quote.
    fn template_lines() -> OurMail {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates =
            crate::templates::Templates::load(&dir, &crate::incident::MailKind::template_names())
                .expect("templates");
        templates.staff_only().clone()
    }

    fn check(ours: &OurMail) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the reply corpus")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        assert!(files.len() >= 80, "{} replies", files.len());
        let config = crate::config::Config::example().expect("example config");
        let mut wrong = Vec::new();
        for path in files {
            let raw = std::fs::read(&path).expect("read");
            let expected: Expected = serde_json::from_str(
                &std::fs::read_to_string(path.with_extension("json")).expect("expectation"),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let mail = match crate::mail::parse(&raw, &config) {
                Ok(mail) => mail,
                Err(q) => {
                    wrong.push(format!("{name}: quarantined: {}", q.reason));
                    continue;
                }
            };
            let own = read(&mail.body, ours, Context::Reply);
            let mut problems = Vec::new();
            if paragraphs(&own.body) != paragraphs(&expected.body) {
                problems.push(format!(
                    "body\n      want {:?}\n      got  {:?}",
                    expected.body, own.body
                ));
            }
            if own.greeting.as_deref().map(flat) != expected.greeting.as_deref().map(flat) {
                problems.push(format!(
                    "greeting: want {:?}, got {:?}",
                    expected.greeting, own.greeting
                ));
            }
            if own.sign_off.as_deref().map(flat) != expected.sign_off.as_deref().map(flat) {
                problems.push(format!(
                    "sign-off: want {:?}, got {:?}",
                    expected.sign_off, own.sign_off
                ));
            }
            let text = flat(&own.text());
            for leak in &expected.leaks {
                if text.contains(&flat(leak)) {
                    problems.push(format!("LEAK: {leak:?}"));
                }
            }
            if !problems.is_empty() {
                wrong.push(format!(
                    "{name} ({}):\n    {}",
                    expected.client,
                    problems.join("\n    ")
                ));
            }
        }
        wrong
    }

    #[test]
    fn every_reply_in_the_corpus_gives_its_writers_own_words_and_nothing_else() {
        let wrong = check(&OurMail::none());
        assert!(
            wrong.is_empty(),
            "{} of the replies read wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn knowing_our_own_mail_changes_nothing_a_writer_wrote() {
        let wrong = check(&template_lines());
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
