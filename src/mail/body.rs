//! The text of a message as a person reading it would see it.
//!
//! Every inline text part counts, in order: Apple Mail splits the text around each inline
//! picture into parts of its own, and the words after the picture are as much the sender's as
//! those before. When the text parts hold nothing but whitespace (some webmailers send an empty
//! text/plain beside the real HTML), the HTML is read instead. A part whose charset label does
//! not decode cleanly, or that has none but holds 8-bit bytes, is decoded again from its raw
//! bytes with [`super::charset::decode`].

use std::borrow::Cow;

use mail_parser::{Encoding, MessagePart, MimeHeaders, PartType};

use super::charset::{self, CharsetNote};

/// Text parts read per message; the rest are kept in the raw message.
const MAX_TEXT_PARTS: usize = 20;

/// The readable text of `message` and a note for every part whose charset had to be found.
pub fn readable_text(message: &mail_parser::Message<'_>) -> (String, Vec<CharsetNote>) {
    let mut notes = Vec::new();
    let text = joined(message, &message.text_body, &mut notes);
    if !text.trim().is_empty() {
        return (text, notes);
    }
    let mut html_notes = Vec::new();
    let html = joined(message, &message.html_body, &mut html_notes);
    if !html.trim().is_empty() {
        return (html, html_notes);
    }
    match lone_text(message, &mut notes) {
        Some(lone) => (lone, notes),
        None => (text, notes),
    }
}

/// A single-part message whose type says text but not which kind (`Content-Type: text`, seen
/// from old ISPs' mailers): mail-parser files it as an attachment, a person reads it as text.
fn lone_text(message: &mail_parser::Message<'_>, notes: &mut Vec<CharsetNote>) -> Option<String> {
    let [part] = message.parts.as_slice() else {
        return None;
    };
    let ct = part.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("text") || ct.subtype().is_some() {
        return None;
    }
    let text = match &part.body {
        PartType::Text(text) => text.to_string(),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            let label = ct.attribute("charset");
            let decoded = charset::decode(label, bytes);
            if !decoded.as_declared {
                notes.push(CharsetNote {
                    part: "body",
                    used: decoded.encoding.name().to_string(),
                    declared: label.map(str::to_string),
                });
            }
            decoded.text
        }
        _ => return None,
    };
    let text = repaired(message, part, &text, notes).into_owned();
    (!text.trim().is_empty()).then_some(text)
}

fn joined(
    message: &mail_parser::Message<'_>,
    ids: &[mail_parser::MessagePartId],
    notes: &mut Vec<CharsetNote>,
) -> String {
    let mut pieces: Vec<String> = Vec::new();
    for id in ids.iter().take(MAX_TEXT_PARTS) {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let piece = match &part.body {
            PartType::Text(text) => repaired(message, part, text, notes),
            PartType::Html(html) => {
                let html = repaired(message, part, html, notes);
                Cow::Owned(mail_parser::decoders::html::html_to_text(&html))
            }
            // Inline pictures and other parts sit between the text parts.
            _ => continue,
        };
        if !piece.trim().is_empty() {
            pieces.push(piece.trim_end().to_string());
        }
    }
    pieces.join("\n")
}

/// The part's text, or, when mail-parser had to put replacement characters in it, its raw
/// bytes decoded again in the charset they really are.
fn repaired<'t>(
    message: &mail_parser::Message<'_>,
    part: &MessagePart<'_>,
    text: &'t str,
    notes: &mut Vec<CharsetNote>,
) -> Cow<'t, str> {
    if !text.contains('\u{fffd}') {
        return Cow::Borrowed(text);
    }
    let label = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::to_string);
    let raw = message.raw_message();
    let Some(body) = raw.get(part.offset_body as usize..part.offset_end as usize) else {
        return Cow::Borrowed(text);
    };
    let bytes = match part.encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        Encoding::None => Some(body.to_vec()),
    };
    let Some(bytes) = bytes else {
        return Cow::Borrowed(text);
    };
    let decoded = charset::decode(label.as_deref(), &bytes);
    // Only a better reading replaces mail-parser's: one without replacement characters.
    if decoded.text.contains('\u{fffd}') {
        return Cow::Borrowed(text);
    }
    if !decoded.as_declared {
        notes.push(CharsetNote {
            part: "body",
            used: decoded.encoding.name().to_string(),
            declared: label,
        });
    }
    Cow::Owned(decoded.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(raw: &str) -> (String, Vec<CharsetNote>) {
        let raw = raw.replace('\n', "\r\n");
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        readable_text(&message)
    }

    #[test]
    fn apple_mail_text_split_around_a_picture_is_read_whole() {
        let (text, notes) = text_of(
            "From: a@example.test\nSubject: s\nMIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=\"Apple-Mail=_1\"\n\n\
             --Apple-Mail=_1\nContent-Type: text/plain; charset=us-ascii\n\n\
             The screen arrived cracked, see the photo:\n\n\
             --Apple-Mail=_1\nContent-Disposition: inline; filename=IMG_1.jpeg\n\
             Content-Type: image/jpeg; name=\"IMG_1.jpeg\"\nContent-Transfer-Encoding: base64\n\n\
             /9j/4AAQ\n\n\
             --Apple-Mail=_1\nContent-Type: text/plain; charset=us-ascii\n\n\
             And the box was dented too. Please send a new one.\n\n\
             --Apple-Mail=_1--\n",
        );
        assert_eq!(
            text,
            "The screen arrived cracked, see the photo:\nAnd the box was dented too. Please send a new one."
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn an_empty_text_part_falls_back_to_the_html() {
        let (text, _) = text_of(
            "From: a@example.test\nSubject: s\nMIME-Version: 1.0\n\
             Content-Type: multipart/alternative; boundary=b\n\n\
             --b\nContent-Type: text/plain; charset=utf-8\n\n \n\n\
             --b\nContent-Type: text/html; charset=utf-8\n\n\
             <html><body><p>My invoice is wrong.</p></body></html>\n\
             --b--\n",
        );
        assert_eq!(text.trim(), "My invoice is wrong.");
    }

    #[test]
    fn a_text_type_without_a_subtype_is_still_read() {
        let (text, _) = text_of(
            "From: a@example.test\nSubject: s\nMIME-Version: 1.0\n\
             Content-Type: text; charset=us-ascii\n\nMy drainbread ISP mangles headers.\n",
        );
        assert_eq!(text.trim(), "My drainbread ISP mangles headers.");
    }

    #[test]
    fn a_text_part_with_words_wins_over_the_html() {
        let (text, _) = text_of(
            "From: a@example.test\nSubject: s\nMIME-Version: 1.0\n\
             Content-Type: multipart/alternative; boundary=b\n\n\
             --b\nContent-Type: text/plain; charset=utf-8\n\nPlain words.\n\n\
             --b\nContent-Type: text/html; charset=utf-8\n\n<p>HTML words.</p>\n\
             --b--\n",
        );
        assert_eq!(text, "Plain words.");
    }

    #[test]
    fn an_undeclared_8bit_gb2312_part_is_detected() {
        let (body, _, _) =
            encoding_rs::GBK.encode("您好，我买的耳机左边没有声音，请帮我换一个。谢谢！");
        let mut raw = b"From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            .to_vec();
        raw.extend_from_slice(&body);
        let message = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parses");
        let (text, notes) = readable_text(&message);
        assert_eq!(text, "您好，我买的耳机左边没有声音，请帮我换一个。谢谢！");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].used, "GBK");
        assert_eq!(notes[0].declared, None);
    }

    #[test]
    fn a_declared_charset_that_does_not_fit_is_replaced() {
        let (body, _, _) =
            encoding_rs::SHIFT_JIS.encode("商品がまだ届きません。至急確認してください。");
        let mut raw = b"From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            .to_vec();
        raw.extend_from_slice(&body);
        let message = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parses");
        let (text, notes) = readable_text(&message);
        assert_eq!(text, "商品がまだ届きません。至急確認してください。");
        assert_eq!(notes[0].used, "Shift_JIS");
        assert_eq!(notes[0].declared.as_deref(), Some("ISO-2022-JP"));
    }
}
