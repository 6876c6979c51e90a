//! Arbitrary text through `mail::own_words`: what a writer wrote themselves, as against quotes,
//! attributions, signatures and our own mail. The input is split at its first NUL (else at its
//! middle): the first part is mail we sent (staff-only), a second NUL-separated part mail the
//! customer has seen, the rest the reply; the reply and the whole input are both read, so the
//! shingle coverage of our mail is exercised. Any panic is a finding.
#![no_main]

#[path = "common.rs"]
mod common;

use followupd::mail::{own_words, Context, OurMail};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::run(|| {
        let text = String::from_utf8_lossy(data);
        let (staff, public, reply) = pieces(&text);
        let mut ours = OurMail::none();
        ours.add(staff, true);
        if let Some(public) = public {
            ours.add(public, false);
            ours.add_public(public);
        }
        let _ = ours.is_empty();
        let _ = ours.staff_only_lines(&text);
        let _ = ours.staff_only_lines(reply);
        for context in [Context::Fresh, Context::Reply] {
            for body in [reply, &*text] {
                let own = own_words::read(body, &ours, context);
                let _ = own.text();
                let _ = own.is_empty();
                let _ = own.doubt.as_ref().map(ToString::to_string);
            }
        }
    });
});

/// Our mail (staff-only), mail the customer has seen, and the reply.
fn pieces(text: &str) -> (&str, Option<&str>, &str) {
    match text.split_once('\0') {
        Some((staff, rest)) => match rest.split_once('\0') {
            Some((public, reply)) => (staff, Some(public), reply),
            None => (staff, None, rest),
        },
        None => {
            let mid = (0..=text.len() / 2)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            (&text[..mid], None, &text[mid..])
        }
    }
}
