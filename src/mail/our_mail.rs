//! What a thread holds of ours: every run of six words of every mail followupd sent into it,
//! and of the notes staff keep to themselves, so that a reply's quoted copy of our mail is
//! recognised however the client re-wrapped or failed to mark it (see [`super::own_words`]).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// Words in a run that must match our mail before the run counts as ours. Six words in the same
/// order are not written by chance; fewer match ordinary phrases ("if there is anything to").
pub(super) const SHINGLE: usize = 6;
/// Bytes of our own mail read per thread (newest first): enough for every mail of a long
/// incident's thread, bounded whatever the thread holds.
pub const MAX_OUR_MAIL: usize = 2 * 1024 * 1024;

/// The texts of the mails followupd sent into one thread, ready to be recognised in a reply.
#[derive(Debug, Clone, Default)]
pub struct OurMail {
    /// Every run of [`SHINGLE`] words of every mail we sent.
    all: HashSet<u64>,
    /// The runs of mail only staff may read (notifications, escalations, internal notes).
    staff_only: HashSet<u64>,
    /// Staff-only texts too short for a run of [`SHINGLE`] words (a short internal note),
    /// as their words.
    short_staff_only: Vec<Vec<String>>,
    /// The runs the customer has seen or written (mail we sent them, their own mail): a
    /// staff-only mail that quotes the customer does not make their words staff-only.
    public: HashSet<u64>,
    bytes: usize,
}

impl OurMail {
    /// Nothing sent yet (a new complaint).
    pub fn none() -> OurMail {
        OurMail::default()
    }

    /// Adds the text of one mail we sent (or an internal note). Returns false once the budget
    /// of [`MAX_OUR_MAIL`] bytes is spent, and the text is then not added.
    pub fn add(&mut self, text: &str, staff_only: bool) -> bool {
        if self.bytes.saturating_add(text.len()) > MAX_OUR_MAIL {
            return false;
        }
        self.bytes += text.len();
        let words = words(text);
        if words.len() < SHINGLE {
            if staff_only && words.len() >= 3 {
                self.short_staff_only.push(words);
            }
            return true;
        }
        for run in words.windows(SHINGLE) {
            let h = run_hash(run);
            self.all.insert(h);
            if staff_only {
                self.staff_only.insert(h);
            } else {
                self.public.insert(h);
            }
        }
        true
    }

    /// Adds text the customer wrote or has seen that we did not send into this thread (their
    /// own mail): never staff-only, and not ours to recognise as quoted either.
    pub fn add_public(&mut self, text: &str) -> bool {
        if self.bytes.saturating_add(text.len()) > MAX_OUR_MAIL {
            return false;
        }
        self.bytes += text.len();
        for run in words(text).windows(SHINGLE) {
            self.public.insert(run_hash(run));
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.short_staff_only.is_empty()
    }

    /// The lines of `text` that carry words of a staff-only mail or note, as they stand.
    pub fn staff_only_lines(&self, text: &str) -> Vec<String> {
        let lines: Vec<&str> = text.lines().collect();
        let marks = self.coverage(&lines, true);
        let mut found: Vec<String> = lines
            .iter()
            .zip(&marks)
            .filter(|(_, m)| m.covered > 0)
            .map(|(l, _)| l.trim().to_string())
            .collect();
        if found.is_empty() && !self.short_staff_only.is_empty() {
            let all = words(text);
            for short in &self.short_staff_only {
                if all.windows(short.len()).any(|w| w == short.as_slice()) {
                    found.push(short.join(" "));
                }
            }
        }
        found
    }

    /// For each line, how many of its words belong to a run of our mail (`staff` : of staff-only
    /// mail). Runs are looked for across line breaks, since clients re-wrap what they quote.
    pub(super) fn coverage(&self, lines: &[&str], staff: bool) -> Vec<Coverage> {
        let set = if staff { &self.staff_only } else { &self.all };
        let counts = |h: &u64| set.contains(h) && !(staff && self.public.contains(h));
        let mut marks: Vec<Coverage> = lines
            .iter()
            .map(|l| Coverage {
                words: words(l).len(),
                covered: 0,
            })
            .collect();
        if set.is_empty() {
            return marks;
        }
        // Every word of the text with the line it stands on.
        let mut stream: Vec<(usize, String)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            stream.extend(words(line).into_iter().map(|w| (i, w)));
        }
        let mut covered = vec![false; stream.len()];
        if stream.len() >= SHINGLE {
            let only: Vec<String> = stream.iter().map(|(_, w)| w.clone()).collect();
            for (start, run) in only.windows(SHINGLE).enumerate() {
                if counts(&run_hash(run)) {
                    for c in covered.iter_mut().skip(start).take(SHINGLE) {
                        *c = true;
                    }
                }
            }
        }
        for ((line, _), hit) in stream.iter().zip(&covered) {
            if *hit {
                if let Some(m) = marks.get_mut(*line) {
                    m.covered += 1;
                }
            }
        }
        marks
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Coverage {
    pub(super) words: usize,
    pub(super) covered: usize,
}

impl Coverage {
    /// Most of the line is our mail.
    pub(super) fn ours(&self) -> bool {
        self.words > 0 && self.covered * 2 >= self.words
    }
}

/// The words of a text for matching: runs of letters and digits, lower-cased; punctuation,
/// quote marks and whitespace are set aside (clients change all three when they quote).
pub(super) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn run_hash(run: &[String]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    run.hash(&mut h);
    h.finish()
}
