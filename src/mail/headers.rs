//! Header values: decoding what senders wrote, making untrusted text safe for our own headers,
//! Message-ID lists, subjects and Outlook's Thread-Index.

use std::borrow::Cow;

use base64::Engine;
use encoding_rs::Encoding;
use mail_parser::HeaderValue;

use super::{charset, MAX_HEADER_TEXT, MAX_LIST_ITEMS};
use crate::secret::THREAD_INDEX_ROOT;

/// Header lines that are not UTF-8 were written by a client that never declared a charset:
/// Latin-1 from an old Western mailer, GB2312 from a Chinese one, Shift_JIS from a Japanese
/// phone. The bytes of all such lines are given together to the detector (more text, a better
/// guess), and each line is read in the charset it names, rather than rejected or turned into
/// replacement characters. Returns the charset used, when one was needed.
pub(crate) fn decode_8bit_headers(raw: &[u8]) -> (Cow<'_, [u8]>, Option<&'static Encoding>) {
    let end = header_end(raw);
    let head = &raw[..end];
    if std::str::from_utf8(head).is_ok() {
        return (Cow::Borrowed(raw), None);
    }
    let undeclared: Vec<u8> = head
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| std::str::from_utf8(line).is_err())
        .flatten()
        .copied()
        .collect();
    let encoding = charset::detect(&undeclared);
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8);
    for line in head.split_inclusive(|b| *b == b'\n') {
        match std::str::from_utf8(line) {
            Ok(_) => out.extend_from_slice(line),
            Err(_) => {
                let (text, _) = encoding.decode_without_bom_handling(line);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out.extend_from_slice(&raw[end..]);
    (Cow::Owned(out), Some(encoding))
}

/// Offset just past the blank line that ends the header section (or the whole input).
pub(crate) fn header_end(raw: &[u8]) -> usize {
    let mut at_line_start = true;
    for (i, b) in raw.iter().enumerate() {
        match b {
            b'\n' if at_line_start => return i + 1,
            b'\n' => at_line_start = true,
            b'\r' => {}
            _ => at_line_start = false,
        }
    }
    raw.len()
}

/// Header fields each delivery adds or rewrites on its way in: they differ between two copies
/// of the same mail and say nothing about what the sender wrote.
const TRACE_HEADERS: &[&str] = &[
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "x-delivered-to",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "x-spam-status",
    "x-spam-score",
    "x-spam-level",
    "x-spam-flag",
    "x-virus-scanned",
    "x-rspamd-queue-id",
    "x-rspamd-server",
    "x-ms-exchange-organization-authas",
];

/// A hash of the message as its sender wrote it: every header field except the trace fields
/// above (unfolded, in order), then the body. Two deliveries of one mail share it.
pub fn content_digest(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let end = header_end(raw);
    let mut hasher = Sha256::new();
    let mut skipping = false;
    for line in raw[..end].split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line
                .split(|b| *b == b':')
                .next()
                .map(|n| String::from_utf8_lossy(n).trim().to_ascii_lowercase())
                .unwrap_or_default();
            skipping = TRACE_HEADERS.contains(&name.as_str());
        }
        if !skipping {
            hasher.update(line);
        }
    }
    hasher.update(&raw[end..]);
    crate::digest::to_hex(&hasher.finalize())
}

/// Outlook's Thread-Index is base64 of a 22-byte conversation header (time + GUID) followed by
/// one 5-byte block per reply, so every message of a conversation starts with the same 22 bytes.
pub fn thread_index_root(value: &str) -> Option<String> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    bytes.get(..THREAD_INDEX_ROOT).map(crate::digest::to_hex)
}

pub(crate) fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(250)
        .collect()
}

pub(crate) fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().filter(|id| !id.is_empty()).collect()
}

/// In-Reply-To names the message being answered, and References lists the thread oldest first,
/// so the most specific evidence comes first in this order.
pub(crate) fn thread_order(in_reply_to: Option<&str>, references: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = in_reply_to.map(str::to_string).into_iter().collect();
    for id in references.iter().rev() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids.truncate(MAX_LIST_ITEMS);
    ids
}

/// Reply and forward prefixes as mail clients write them (English, German, Nordic, French,
/// Dutch, Spanish/Portuguese, Polish, Turkish), with optional counters like `Re[2]:`.
const SUBJECT_PREFIXES: &[&str] = &[
    "re", "aw", "sv", "vs", "fw", "fwd", "wg", "tr", "antw", "rv", "enc", "res", "odp", "ynt",
];

/// The subject with every reply/forward prefix and every incident token removed: what the
/// conversation is about. Used for new incidents and for matching a thread by topic.
pub fn base_subject(subject: &str) -> String {
    let mut rest = strip_tokens(subject);
    loop {
        let trimmed = rest.trim_start();
        match strip_one_prefix(trimmed) {
            Some(after) => rest = after.to_string(),
            None => {
                rest = trimmed.to_string();
                break;
            }
        }
    }
    header_safe(&rest, MAX_HEADER_TEXT)
}

fn strip_one_prefix(text: &str) -> Option<&str> {
    let word_end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (word, after) = text.split_at(word_end);
    if !SUBJECT_PREFIXES.contains(&word.to_ascii_lowercase().as_str()) {
        return None;
    }
    // An optional counter: `Re[2]:`, `Re(2):`, `Re^2:`.
    let after = match after.chars().next() {
        Some('[') => after.split_once(']').map(|(_, a)| a)?,
        Some('(') => after.split_once(')').map(|(_, a)| a)?,
        Some('^') => after
            .get(1..)
            .unwrap_or("")
            .trim_start_matches(|c: char| c.is_ascii_digit()),
        _ => after,
    };
    let after = after.trim_start_matches(' ');
    after.strip_prefix(':').or_else(|| after.strip_prefix('：'))
}

/// Removes `[FU-<n>-<hex>]` tokens, ours or copied from someone else's incident.
fn strip_tokens(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut rest = subject;
    while let Some(start) = rest.find("[FU-") {
        let (before, candidate) = rest.split_at_checked(start).unwrap_or((rest, ""));
        let end = candidate.find(']');
        let is_token = end.is_some_and(|e| {
            let inner = candidate.get(4..e).unwrap_or("");
            inner.split_once('-').is_some_and(|(n, mac)| {
                !n.is_empty()
                    && n.chars().all(|c| c.is_ascii_digit())
                    && !mac.is_empty()
                    && mac.chars().all(|c| c.is_ascii_hexdigit())
            })
        });
        match (is_token, end) {
            (true, Some(e)) => {
                out.push_str(before);
                rest = candidate.get(e + 1..).unwrap_or("");
            }
            _ => {
                let (kept, after) = candidate.split_at_checked(4).unwrap_or((candidate, ""));
                out.push_str(before);
                out.push_str(kept);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Makes untrusted text safe for one header line: CR, LF, tabs and other control characters
/// become spaces, runs of whitespace collapse, and the result is cut to `max` characters.
/// (Encoding non-ASCII per RFC 2047 is left to the message builder.)
pub fn header_safe(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)));
    let mut pending_space = false;
    let mut count: usize = 0;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        // Bidi overrides can make a subject read differently from what it says.
        if matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        if count.saturating_add(usize::from(pending_space) + 1) > max {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}
