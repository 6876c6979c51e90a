//! The fuzz target's seed corpus, run the way CI can: every fixture message (and every input
//! the fuzzer once crashed on) goes through `followupd::probe`, the same parse → classify →
//! thread → store → outbox path the daemon runs, with its invariants checked after each one.
//! The long randomised run is `cargo +nightly fuzz run intake` (README, "Fuzzing").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use followupd::probe::Probe;

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    for dir in ["mail", "fuzz-regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && path.extension().is_none_or(|e| e != "md" && e != "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_seed_corpus_passes_through_intake_with_every_promise_kept() {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut probe = Probe::new(&templates).expect("probe");
    let files = corpus();
    assert!(
        files.len() >= 30,
        "the corpus is there: {} files",
        files.len()
    );
    for path in &files {
        let raw = std::fs::read(path).expect("read fixture");
        let started = Instant::now();
        let outcome = probe
            .feed(&raw)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let took = started.elapsed();
        // Bounded work per message: nothing here may take long enough to stall an inbox.
        assert!(
            took < Duration::from_secs(2),
            "{} took {took:?} ({outcome:?})",
            path.display()
        );
    }
    assert!(probe.incidents().expect("count") > 10);
}
