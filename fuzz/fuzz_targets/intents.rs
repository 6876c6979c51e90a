//! Arbitrary text through `incident::replies` with the shipped tables of every language: what a
//! reply asks for (news, no more updates) and the answer to the check-back (fixed, rating,
//! thanks, unhappy). The configured phrases are the
//! defaults (none), a few fixed ones, and, when the input has a NUL, the lines before it (as
//! `[replies]` would read them: trimmed, lower-case, empty ones dropped). Any panic is a finding.
#![no_main]

#[path = "common.rs"]
mod common;

use followupd::config::RepliesConfig;
use followupd::incident::replies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::run(|| {
        let text = String::from_utf8_lossy(data);
        let intents = followupd::probe::shipped_intents();
        let defaults = RepliesConfig::default();
        let _ = replies::read(&text, intents, &defaults.news_phrases, &defaults.stop_phrases);

        let news = phrases(["where are we", "ça avance", "statusbericht?"]);
        let stop = phrases(["unsubscribe", "keine mails mehr", "ß"]);
        let _ = replies::read(&text, intents, &news, &stop);

        if let Some((configured, rest)) = text.split_once('\0') {
            let list = phrases(configured.lines());
            let _ = replies::read(rest, intents, &list, &list);
            let _ = replies::check_back_answer(rest, intents);
        }
        let _ = replies::check_back_answer(&text, intents);
    });
});

/// Phrases as the configuration reads them.
fn phrases<'a>(list: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    list.into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}
