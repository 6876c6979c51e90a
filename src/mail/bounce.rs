//! Delivery reports: which of our mails bounced, for whom.

use mail_parser::MimeHeaders;

use super::headers::clean_id;
use super::{person, BounceReport, MAX_REPORT_ITEMS};

/// Reads a bounce: the machine-readable report (RFC 3464) when there is one, and the Message-ID
/// of the bounced mail from the attached original or its headers. An old-style bounce without
/// a report only yields the Message-IDs quoted in its text.
pub fn bounce_report(message: &mail_parser::Message<'_>) -> BounceReport {
    let mut report = BounceReport::default();
    for part in &message.parts {
        let (ctype, subtype) = match part.content_type() {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype()
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_default(),
            ),
            None => continue,
        };
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                report.is_dsn = true;
                read_delivery_status(&String::from_utf8_lossy(part.contents()), &mut report);
            }
            ("message", "rfc822" | "global") => {
                // mail-parser's accessors index `parts[0]`, and a truncated attachment can
                // leave a nested message with no parts at all (found by fuzzing).
                let nested = part.message().filter(|m| !m.parts.is_empty());
                if let Some(id) = nested.and_then(|m| m.message_id()) {
                    push_unique(&mut report.original_ids, clean_id(id));
                }
            }
            ("text", "rfc822-headers" | "global-headers") => {
                quoted_message_ids(&String::from_utf8_lossy(part.contents()), &mut report);
            }
            _ => {}
        }
    }
    if report.original_ids.is_empty() {
        // Old-style bounces quote the original in their text.
        for i in 0..message.text_body_count().min(3) {
            if let Some(text) = message.body_text(i) {
                quoted_message_ids(&text, &mut report);
            }
        }
    }
    report.original_ids.retain(|id| !id.is_empty());
    report
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if list.len() < MAX_REPORT_ITEMS && !item.is_empty() && !list.contains(&item) {
        list.push(item);
    }
}

/// `Message-ID: <…>` lines in quoted headers.
fn quoted_message_ids(text: &str, report: &mut BounceReport) {
    for line in text.lines() {
        let line = line.trim_start_matches(['>', ' ', '\t']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("message-id") {
            push_unique(&mut report.original_ids, clean_id(value));
        }
    }
}

/// The per-recipient blocks of a message/delivery-status body: `Final-Recipient` (or
/// `Original-Recipient`) with its `Action`.
fn read_delivery_status(text: &str, report: &mut BounceReport) {
    let mut recipient: Option<String> = None;
    let mut action: Option<String> = None;
    let mut finish = |recipient: &mut Option<String>, action: &mut Option<String>| {
        if let (Some(r), Some(a)) = (recipient.take(), action.take()) {
            match a.as_str() {
                "failed" => push_unique(&mut report.failed, r),
                "delayed" => push_unique(&mut report.delayed, r),
                _ => {} // delivered, relayed, expanded: nothing went wrong
            }
        }
    };
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            finish(&mut recipient, &mut action);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "final-recipient" | "original-recipient" => {
                // `rfc822; ann@example.com`: the address type comes first.
                let address = value.rsplit(';').next().unwrap_or(value);
                if let Some(p) = person(Some(address.trim_matches(['<', '>', ' '])), None) {
                    if name == "final-recipient" || recipient.is_none() {
                        recipient = Some(p.address);
                    }
                }
            }
            "action" => action = Some(value.to_ascii_lowercase()),
            _ => {}
        }
    }
}
