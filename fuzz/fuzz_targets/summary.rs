//! Arbitrary text through `mail::own_words::read` and then `mail::summarize`, at lengths from
//! nothing to `SUMMARY_CHARS`. A panic is a finding, and so is a summary that is not clean
//! single-line text or is longer than asked (plus the "…" a cut at a word adds).
#![no_main]

#[path = "common.rs"]
mod common;

use followupd::mail::{own_words, summarize, Context, OurMail, SUMMARY_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::run(|| {
        let text = String::from_utf8_lossy(data);
        for context in [Context::Fresh, Context::Reply] {
            let own = own_words::read(&text, &OurMail::none(), context);
            for max in [0, 1, 7, 80, SUMMARY_CHARS] {
                let summary = summarize(&own, max);
                assert!(
                    !summary
                        .chars()
                        .any(|c| c.is_control() || (c.is_whitespace() && c != ' ')),
                    "summary is not one clean line: {summary:?}"
                );
                let chars = summary.chars().count();
                assert!(
                    chars <= max + 1,
                    "summary of {chars} chars for max {max}: {summary:?}"
                );
            }
        }
    });
});
