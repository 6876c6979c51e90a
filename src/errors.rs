//! Printing an error with its causes, each once.
//!
//! Library errors name their own problem and leave the cause to `source()` (as pimalaya's
//! error types do), so a log line or the CLI prints the chain with [`Chain`]:
//! "database /var/lib/followupd/f.db: cannot open: permission denied".

use std::fmt;

/// Displays an error and every cause below it, joined by ": ".
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        let mut last = self.0.to_string();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Some dependencies repeat their cause's words (rusqlite prints "file is not a
            // database", then its source "Error code 26: file is not a database"): say each
            // thing once.
            if !last.contains(&text) && !text.contains(&last) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database f.db: cannot open")]
    struct Open {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = Open {
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        };
        assert_eq!(
            Chain(&e).to_string(),
            "database f.db: cannot open: permission denied"
        );
    }

    #[test]
    fn a_cause_that_repeats_its_wrapper_is_not_printed_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.db");
        std::fs::write(&path, "not a database, just text").expect("write");
        let e = crate::store::open(&path).expect_err("refused");
        let text = Chain(&e).to_string();
        assert!(text.contains(": cannot open: "), "{text}");
        assert_eq!(text.matches("not a database").count(), 1, "{text}");
    }
}
