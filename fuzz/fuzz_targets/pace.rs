//! Arbitrary text through `incident::pace::read` (how often the customer wants to hear from
//! us), and the pace found in words (the shipped phrases) in English and German, as asked and as clamped
//! to the default `[cadence]` bounds. Any panic is a finding.
#![no_main]

#[path = "common.rs"]
mod common;

use followupd::config::CadenceConfig;
use followupd::incident::pace::{self, PaceRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::run(|| {
        let text = String::from_utf8_lossy(data);
        let request = pace::read(&text);
        if let PaceRequest::Unclear(sentence) = &request {
            let _ = sentence.len();
        }
        if let Some(wanted) = request.cadence() {
            let clamped = CadenceConfig::default().clamp(wanted);
            for lang in ["en", "de"] {
                let _ = followupd::probe::pace_in_words(wanted, lang);
                let _ = followupd::probe::pace_in_words(clamped, lang);
            }
        }
    });
});
