//! Charsets: bytes a sender did not label, or labelled wrongly, read as the text they are.
//!
//! The declared charset is tried first. When there is none, or it does not decode cleanly
//! (it would give replacement characters), the charsets a sender most likely confused it with
//! are tried — the other Japanese encodings for a Japanese label, GB18030 for GB2312 — and then
//! Firefox's detector (`chardetng`) guesses from the bytes themselves. Every fallback is
//! recorded as a [`CharsetNote`], so staff can see why a message reads as it does.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::Encoding;

/// How one piece of a message was decoded when the declared charset could not be used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CharsetNote {
    /// Which piece: `headers`, `subject`, `name`, `body`.
    pub part: &'static str,
    /// The charset that was used, by its WHATWG name (`Shift_JIS`, `GBK`).
    pub used: String,
    /// What the sender declared, if anything.
    pub declared: Option<String>,
}

impl std::fmt::Display for CharsetNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.declared {
            Some(label) => write!(
                f,
                "{}: {} (declared {label}, which did not decode cleanly)",
                self.part, self.used
            ),
            None => write!(
                f,
                "{}: {} (undeclared 8-bit, detected)",
                self.part, self.used
            ),
        }
    }
}

/// Bytes decoded, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static Encoding,
    /// Whether `encoding` is the declared one (no fallback was needed).
    pub as_declared: bool,
}

/// Guesses the charset of bytes that say nothing about it. Email may be ISO-2022-JP, so the
/// detector is allowed to say so (Firefox's advice for mail); UTF-8 is allowed too.
pub fn detect(bytes: &[u8]) -> &'static Encoding {
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    detector.guess(None, Utf8Detection::Allow)
}

/// Decodes with `encoding`, or None if any byte sequence is malformed in it.
pub fn decode_clean(encoding: &'static Encoding, bytes: &[u8]) -> Option<String> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
}

/// Encodings senders confuse with the one they declared: a mailer that labels Shift_JIS as
/// ISO-2022-JP, or writes GBK's extra characters under a GB2312 label.
fn siblings(declared: &'static Encoding) -> Vec<&'static Encoding> {
    use encoding_rs::{BIG5, EUC_JP, EUC_KR, GB18030, GBK, ISO_2022_JP, SHIFT_JIS};
    if declared == ISO_2022_JP || declared == SHIFT_JIS || declared == EUC_JP {
        vec![SHIFT_JIS, EUC_JP, ISO_2022_JP]
    } else if declared == GBK || declared == GB18030 {
        vec![GB18030, BIG5]
    } else if declared == BIG5 {
        vec![BIG5, GB18030]
    } else if declared == EUC_KR {
        vec![EUC_KR]
    } else {
        Vec::new()
    }
}

/// Decodes `bytes` labelled `label` (a MIME charset name, or None): the label if it decodes
/// cleanly, else its siblings, else the detector's guess (lossy if even that is malformed).
pub fn decode(label: Option<&str>, bytes: &[u8]) -> Decoded {
    // "us-ascii" over 8-bit bytes says only that the sender's mailer did not know: WHATWG would
    // read it as windows-1252, which turns every CJK mail so labelled into Latin-1 noise.
    let ascii_label = label.is_some_and(|l| {
        matches!(
            l.trim().to_ascii_lowercase().as_str(),
            "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us"
        )
    });
    let declared = label
        .filter(|_| !ascii_label || bytes.is_ascii())
        .and_then(|l| Encoding::for_label(l.trim().as_bytes()));
    if let Some(encoding) = declared {
        if let Some(text) = decode_clean(encoding, bytes) {
            return Decoded {
                text,
                encoding,
                as_declared: true,
            };
        }
        for sibling in siblings(encoding) {
            if let Some(text) = decode_clean(sibling, bytes) {
                return Decoded {
                    text,
                    encoding: sibling,
                    as_declared: false,
                };
            }
        }
    }
    let guessed = detect(bytes);
    let (text, _) = guessed.decode_without_bom_handling(bytes);
    Decoded {
        text: text.into_owned(),
        encoding: guessed,
        as_declared: false,
    }
}

/// Decodes the RFC 2047 encoded-words in a raw header value (`=?charset?B|Q?…?=`), each with
/// [`decode`], so a mislabelled word is read in the charset it really is. Text between words
/// is kept; whitespace between two adjacent words is dropped (RFC 2047 section 6.2). Returns
/// the text and, when a word needed a fallback, the charset used and the one declared.
pub fn decode_encoded_words(value: &str) -> (String, Option<(&'static Encoding, String)>) {
    let mut out = String::with_capacity(value.len());
    let mut fallback = None;
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        let Some((label, encoding, text, len)) = encoded_word(candidate) else {
            out.push_str(before);
            out.push_str("=?");
            rest = candidate.get(2..).unwrap_or("");
            after_word = false;
            continue;
        };
        if after_word && before.chars().all(char::is_whitespace) {
            // Adjacent encoded-words: the whitespace between them is not text.
        } else {
            out.push_str(before);
        }
        let bytes = match encoding {
            b'B' | b'b' => mail_parser::decoders::base64::base64_decode(text.as_bytes()),
            _ => q_decode(text.as_bytes()),
        };
        if let Some(bytes) = bytes {
            // RFC 2231 allows a language after the charset: `utf-8*en`.
            let charset = label.split('*').next().unwrap_or(label);
            let decoded = decode(Some(charset), &bytes);
            if !decoded.as_declared && fallback.is_none() {
                fallback = Some((decoded.encoding, charset.to_string()));
            }
            out.push_str(&decoded.text);
        }
        after_word = true;
        rest = candidate.get(len..).unwrap_or("");
    }
    out.push_str(rest);
    (out, fallback)
}

/// `=?label?X?text?=` at the start of `s`: the label, the encoding letter, the text and the
/// length of the whole word.
fn encoded_word(s: &str) -> Option<(&str, u8, &str, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (label, after) = inner.split_once('?')?;
    let mut chars = after.chars();
    let letter = chars
        .next()
        .filter(|c| matches!(c, 'B' | 'b' | 'Q' | 'q'))?;
    let after = after.get(1..)?.strip_prefix('?')?;
    let end = after.find("?=")?;
    let text = after.get(..end)?;
    if label.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    let len = 2 + label.len() + 3 + end + 2;
    Some((label, letter as u8, text, len))
}

/// The Q encoding of RFC 2047 section 4.2: `_` is a space, `=XX` a byte.
fn q_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = text.get(i + 1..i + 3)?;
                let value = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())?;
                out.push(value);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_charset_that_decodes_is_kept() {
        let d = decode(Some("iso-8859-1"), b"caf\xe9");
        assert_eq!(d.text, "café");
        assert!(d.as_declared);
        assert_eq!(d.encoding, encoding_rs::WINDOWS_1252);
    }

    #[test]
    fn shift_jis_labelled_iso_2022_jp_reads_as_shift_jis() {
        // ツール in Shift_JIS, as a Japanese mobile mailer labels it.
        let d = decode(Some("ISO-2022-JP"), b"\x83\x63\x81\x5b\x83\x8b");
        assert_eq!(d.text, "ツール");
        assert!(!d.as_declared);
        assert_eq!(d.encoding, encoding_rs::SHIFT_JIS);
    }

    #[test]
    fn undeclared_gb2312_is_detected() {
        let (bytes, _, _) = encoding_rs::GBK.encode("转发：您好，我的订单还没有收到，请尽快处理。");
        let d = decode(None, &bytes);
        assert_eq!(d.text, "转发：您好，我的订单还没有收到，请尽快处理。");
        assert_eq!(d.encoding, encoding_rs::GBK);
    }

    #[test]
    fn undeclared_latin1_is_still_read_as_windows_1252() {
        let d = decode(None, "Facture erronée, prélevé deux fois".as_bytes());
        assert_eq!(d.encoding, encoding_rs::UTF_8);
        let d = decode(None, b"Facture erron\xe9e, pr\xe9lev\xe9 deux fois");
        assert_eq!(d.text, "Facture erronée, prélevé deux fois");
        assert_eq!(d.encoding, encoding_rs::WINDOWS_1252);
    }

    #[test]
    fn encoded_words_are_decoded_each_in_the_charset_it_really_is() {
        let (text, fallback) = decode_encoded_words("=?ISO-2022-JP?B?g2OBW4OL?= <tool@example.jp>");
        assert_eq!(text, "ツール <tool@example.jp>");
        assert_eq!(
            fallback,
            Some((encoding_rs::SHIFT_JIS, "ISO-2022-JP".to_string()))
        );
        let (text, fallback) =
            decode_encoded_words("=?utf-8?q?caf=C3=A9?= =?utf-8?q?_au_lait?= ok");
        assert_eq!(text, "café au lait ok");
        assert_eq!(fallback, None);
        let (text, _) = decode_encoded_words("no words =?here");
        assert_eq!(text, "no words =?here");
        let (text, _) = decode_encoded_words("=?x?Q?=zz?=");
        assert_eq!(text, "");
    }
}
