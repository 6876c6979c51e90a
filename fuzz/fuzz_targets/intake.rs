//! Arbitrary bytes through intake: parse → classify → thread → store → policy → outbox, with
//! the promises `Probe::feed` checks (nothing lost, no robot answered, no stranger joined, one
//! acknowledgement per incident, clean header text). Any error is a finding, and so is a panic
//! under the policy in `common.rs`.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Mutex;

use followupd::probe::Probe;
use libfuzzer_sys::fuzz_target;

/// One database for many inputs, so threading sees earlier messages; renewed now and then so
/// memory stays flat over a long run.
static PROBE: Mutex<Option<(Probe, u32)>> = Mutex::new(None);
const RENEW_EVERY: u32 = 2_000;

fuzz_target!(|data: &[u8]| {
    common::run(|| {
        let mut guard = PROBE.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match guard.as_ref() {
            Some((_, fed)) => *fed >= RENEW_EVERY,
            None => true,
        };
        if fresh {
            let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/../templates");
            let probe = Probe::new(std::path::Path::new(templates)).expect("probe starts");
            *guard = Some((probe, 0));
        }
        if let Some((probe, fed)) = guard.as_mut() {
            *fed += 1;
            if let Err(e) = probe.feed(data) {
                panic!("{e}");
            }
        }
    });
});
