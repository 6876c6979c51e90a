//! The panic policy every fuzz target shares (`#[path = "common.rs"] mod common;`).
//!
//! libFuzzer's panic hook aborts on every panic, even one followupd catches on purpose:
//! `mail::parse` (and `readable`, `sent_texts`, `attachment_parts`) runs mail-parser under
//! `catch_unwind` and quarantines what it cannot parse, since mail-parser 0.11 panics on some
//! malformed MIME. That is the designed outcome, not a finding. A panic in followupd's own code
//! is a bug even when something catches it (`contain::caught` holds the message for a person,
//! `mail::parse` quarantines it), so the hook cannot simply be silent either. [`run`] installs
//! this one instead:
//!
//! - a panic in followupd's own code (or in a fuzz target) prints its message and place to
//!   stderr and aborts: libFuzzer saves the input as a crash;
//! - a panic in a dependency (a file under `.cargo/registry` or `.cargo/git`) is silent; if
//!   followupd catches it, that was the design; if it escapes, [`run`]'s own `catch_unwind`
//!   prints it and aborts, so it is still a finding.
//!
//! The place is the panic's location. Most standard-library panics (`unwrap`, indexing,
//! slicing, overflow) report their caller's line, but a few (`str::split_at`, `Vec::drain`,
//! `step_by(0)`) report their own file under `/rustc/`; then the innermost frame of a backtrace
//! outside the standard library decides. Checked by experiment with `cargo fuzz build`:
//! followupd's files show as `/work/main/src/…` (an absolute path: it is a path dependency
//! outside this workspace), the targets' as `fuzz_targets/….rs`, dependencies as
//! `/root/.cargo/registry/src/index.crates.io-…/mail-parser-0.11…/src/…`, the standard library
//! as `/rustc/<commit>/library/…`.

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

static HOOK: Once = Once::new();

thread_local! {
    /// The last silent panic on this thread (message and place), for [`run`] to print if it
    /// escapes.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs one input under the policy: installs the hook (once, before followupd's
/// `contain::install_hook`, which keeps it as the hook it chains to) and aborts with the panic's
/// message if any panic escapes `work`.
pub fn run(work: impl FnOnce()) {
    HOOK.call_once(|| panic::set_hook(Box::new(hook)));
    LAST.with(|last| *last.borrow_mut() = None);
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(work)) {
        let seen = LAST.with(|last| last.borrow_mut().take());
        let text = seen.unwrap_or_else(|| message(payload.as_ref()).to_string());
        eprintln!("fuzz: a panic escaped: {text}");
        std::process::abort();
    }
}

fn hook(info: &PanicHookInfo<'_>) {
    let place = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_else(|| "an unknown place".into());
    let text = format!("'{}' at {place}", message(info.payload()));
    let ours = match info.location() {
        Some(l) if is_std(l.file()) => innermost_outside_std().is_some_and(|f| !is_dependency(&f)),
        Some(l) => !is_dependency(l.file()),
        None => true,
    };
    if ours {
        eprintln!("fuzz: panic in followupd's own code: {text}");
        std::process::abort();
    }
    LAST.with(|last| *last.borrow_mut() = Some(text));
}

fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

fn is_std(file: &str) -> bool {
    file.starts_with("/rustc/") || file.contains("/rustlib/src/rust/library/")
}

/// Someone else's code: the standard library or a crate from cargo's registry or a git checkout.
fn is_dependency(file: &str) -> bool {
    is_std(file)
        || file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.contains("/registry/src/")
        || file.contains("/git/checkouts/")
}

/// The file of the innermost frame that is neither this hook nor the standard library, read
/// from the backtrace's debug form (`{ fn: "…", file: "…", line: … }`); None without debug info.
fn innermost_outside_std() -> Option<String> {
    let trace = format!("{:?}", Backtrace::force_capture());
    trace
        .split("file: \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|file| !is_std(file) && !file.ends_with(file!()))
        .map(str::to_string)
}
