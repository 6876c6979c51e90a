//! The text of a message as a person reading it would see it.
//!
//! Every inline text part counts, in order: Apple Mail splits the text around each inline
//! picture into parts of its own, and the words after the picture are as much the sender's as
//! those before. When the text parts hold nothing but whitespace (some webmailers send an empty
//! text/plain beside the real HTML), the HTML is read instead. A part whose charset label does
//! not decode cleanly, or that has none but holds 8-bit bytes, is decoded again from its raw
//! bytes with [`super::charset::decode`].
//!
//! HTML is read with the quoted history that mail clients mark in it (Gmail's `gmail_quote`,
//! Outlook's `divRplyFwdMsg`, Apple's `blockquote type="cite"` …) turned into `>` lines, so the
//! writer's own words are found the same way in HTML-only mail as in text.

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
                Cow::Owned(html_to_marked_text(&html))
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

/// Elements that end a line of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "dd",
    "dt",
    "center",
];

/// Elements whose content is never text a person reads.
const HIDDEN: &[&str] = &["head", "style", "script", "title", "xml", "template"];

/// How a mail client marks quoted history in HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteMark {
    /// The element holds the quote (Gmail's `gmail_quote`, Apple's and Thunderbird's
    /// `blockquote type="cite"`, Yahoo's `yahoo_quoted`, Proton's `protonmail_quote`).
    Element,
    /// Everything from here to the end is the quoted mail (Outlook's `divRplyFwdMsg`, its
    /// `border-top:solid #E1E1E1` header div, OWA's `appendonsend` and `stopSpelling` rule).
    Rest,
}

/// Whether an opening tag starts quoted history, from its name and attributes (lower-case).
fn quote_mark(name: &str, attrs: &str) -> Option<QuoteMark> {
    let id = attr(attrs, "id").unwrap_or("");
    let style: String = attr(attrs, "style")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let outlook_header_div = name == "div"
        && (style.contains("border-top:solid#e1e1e1")
            || style.contains("border-top:solid#b5c4df")
            || style.contains("border-top:1ptsolid#b5c4df"));
    if matches!(
        id,
        "divrplyfwdmsg" | "x_divrplyfwdmsg" | "appendonsend" | "x_appendonsend" | "stopspelling"
    ) || outlook_header_div
    {
        return Some(QuoteMark::Rest);
    }
    if name == "blockquote" {
        return Some(QuoteMark::Element);
    }
    let classes = attr(attrs, "class").unwrap_or("");
    let quoting_class = classes.split_whitespace().any(|c| {
        matches!(
            c,
            "gmail_quote"
                | "x_gmail_quote"
                | "gmail_quote_container"
                | "yahoo_quoted"
                | "protonmail_quote"
                | "moz-cite-prefix"
                | "zmail_extra"
                | "outlookmessageheader"
                | "quote"
        )
    });
    let named_quote = attr(attrs, "name") == Some("quote")
        || attr(attrs, "data-marker") == Some("__quoted_text__");
    (quoting_class || named_quote).then_some(QuoteMark::Element)
}

/// The value of attribute `name` in a tag's attribute text (quoted or not).
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    for (at, _) in attrs.match_indices(name) {
        let before = attrs.get(..at).and_then(|s| s.chars().next_back());
        if before.is_some_and(|c| !c.is_whitespace()) {
            continue;
        }
        let rest = attrs.get(at + name.len()..)?.trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        return Some(match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = rest.get(1..)?;
                inner.get(..inner.find(q).unwrap_or(inner.len()))?
            }
            _ => rest.get(
                ..rest
                    .find(|c: char| c.is_whitespace() || c == '/')
                    .unwrap_or(rest.len()),
            )?,
        });
    }
    None
}

/// HTML as the text a person reads, with the quoted history mail clients mark in their HTML
/// turned into `>` lines, so that [`super::own_words`] reads HTML-only mail like text.
pub fn html_to_marked_text(html: &str) -> String {
    struct Out {
        lines: Vec<(bool, String)>,
        line: String,
        quoted: bool,
        /// A no-break space stood in the line: an empty paragraph that Outlook writes as a
        /// blank line (`<p>&nbsp;</p>`).
        spaced: bool,
    }
    impl Out {
        fn text(&mut self, s: &str) {
            for c in s.chars() {
                if c == '\u{a0}' {
                    self.spaced = true;
                }
                if c.is_whitespace() {
                    if !self.line.is_empty() && !self.line.ends_with(' ') {
                        self.line.push(' ');
                    }
                } else {
                    self.line.push(c);
                }
            }
        }
        /// A line break: `<br>` always makes one; a block's edge only ends a line that has
        /// text, or an empty paragraph that held a no-break space.
        fn end_line(&mut self, always: bool) {
            if always || !self.line.trim().is_empty() || self.spaced {
                let line = std::mem::take(&mut self.line).trim().to_string();
                self.lines.push((self.quoted, line));
            }
            self.line.clear();
            self.spaced = false;
        }
    }
    let mut out = Out {
        lines: Vec::new(),
        line: String::new(),
        quoted: false,
        spaced: false,
    };
    // Open elements that matter for quotes: (name, starts a quote).
    let mut open: Vec<(String, bool)> = Vec::new();
    let mut rest_quoted = false;
    let mut hidden: Option<String> = None;
    let mut i = 0usize;
    while i < html.len() {
        let Some(rest) = html.get(i..) else { break };
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = rest.get(1..end.saturating_sub(1)).unwrap_or("");
            i += end;
            let closing = tag.starts_with('/');
            let body = tag.trim_start_matches('/');
            let name: String = body
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if let Some(h) = &hidden {
                if closing && &name == h {
                    hidden = None;
                }
                continue;
            }
            if !closing && HIDDEN.contains(&name.as_str()) && !body.ends_with('/') {
                hidden = Some(name);
                continue;
            }
            if BLOCKS.contains(&name.as_str()) {
                out.end_line(name == "br");
            }
            if closing {
                if let Some(at) = open.iter().rposition(|(n, _)| *n == name) {
                    open.truncate(at);
                }
            } else if matches!(
                name.as_str(),
                "div" | "blockquote" | "span" | "table" | "hr" | "p"
            ) {
                let attrs = body.get(name.len()..).unwrap_or("").to_ascii_lowercase();
                let mark = quote_mark(&name, &attrs);
                if mark == Some(QuoteMark::Rest) {
                    rest_quoted = true;
                }
                let self_closing = body.ends_with('/') || name == "hr";
                if !self_closing {
                    open.push((name, mark == Some(QuoteMark::Element)));
                }
            }
            out.quoted = rest_quoted || open.iter().any(|(_, q)| *q);
            continue;
        }
        let next = rest.find('<').unwrap_or(rest.len());
        let text = rest.get(..next).unwrap_or("");
        i += next;
        if hidden.is_none() {
            out.text(&decode_entities(text));
        }
    }
    out.end_line(false);
    // Blank lines collapsed, quoted lines marked.
    let mut text = String::new();
    let mut blank = true;
    for (quoted, line) in out.lines {
        if line.is_empty() {
            if !blank {
                text.push('\n');
            }
            blank = true;
            continue;
        }
        blank = false;
        if quoted {
            text.push_str("> ");
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.trim_end().to_string()
}

/// `&amp;`, `&nbsp;`, `&#233;`, `&#x20AC;` and the other named entities, as characters.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at).unwrap_or(""));
        let tail = rest.get(at..).unwrap_or("");
        match tail.find(';').filter(|e| *e <= 32) {
            Some(end) => {
                let token = tail.get(..=end).unwrap_or("");
                let mut decoded = String::new();
                mail_parser::decoders::html::add_html_token(&mut decoded, token.as_bytes(), false);
                out.push_str(&decoded);
                rest = tail.get(end + 1..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
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
