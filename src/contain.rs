//! A panic in our own code stays with the one message or incident it hit.
//!
//! Intake runs each message, and the scheduler each due incident, under [`caught`]: a bug met
//! while deciding, queueing or rendering for one of them rolls back what it half-did, keeps
//! the message (or marks the incident) for a person with the panic's message and place, and
//! the daemon goes on with the others. Without it one poisoned message would be fetched again
//! forever and one incident would stop every incident's updates.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Where the last panic on this thread happened, as the hook saw it.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Records each panic's place for [`caught`], then runs the hook that was there before (the
/// default prints it to stderr, where the journal keeps it).
pub fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            LAST.with(|last| *last.borrow_mut() = Some(place));
            previous(info);
        }));
    });
}

/// Runs `work`; a panic in it comes back as its message ("index out of bounds … at
/// src/mail/summary.rs:40:9") instead of unwinding further.
pub fn caught<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    LAST.with(|last| *last.borrow_mut() = None);
    panic::catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
        let place = LAST
            .with(|last| last.borrow_mut().take())
            .unwrap_or_default();
        let message = message(payload.as_ref());
        if place.is_empty() {
            message
        } else {
            format!("{message} at {place}")
        }
    })
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

/// The test hook for a forced panic (debug builds only): with `FOLLOWUPD_TEST_PANIC` set to
/// a word, rendering a mail whose data carries that word panics, as a bug in a template
/// helper would. Release builds never read the variable.
pub fn test_panic(stage: &str, data: impl FnOnce() -> String) {
    #[cfg(debug_assertions)]
    if let Ok(word) = std::env::var("FOLLOWUPD_TEST_PANIC") {
        if !word.is_empty() && data().contains(&word) {
            panic!("forced by FOLLOWUPD_TEST_PANIC while {stage}");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (stage, data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_comes_back_with_its_message_and_place() {
        let err = caught(|| -> u32 { panic!("boom {}", 7) }).expect_err("caught");
        assert!(err.starts_with("boom 7 at "), "{err}");
        assert!(err.contains("src/contain.rs:"), "{err}");
        assert_eq!(caught(|| 5), Ok(5));
    }
}
