//! followupd: keeps promises to customers when something has gone wrong.
//!
//! The modules follow one email's journey:
//! [`config`] → [`imap`] (intake) → [`mail`] (parse, classify) → [`thread`] (which incident) →
//! [`incident`] (the decision core: what the incident needs now) → [`apply`] (the one door:
//! effects written in one transaction) → [`outbox`] (queue, compose, send) → [`smtp`].
//! [`intake`] runs one IMAP batch through that journey; [`scheduler`] acts when time passes;
//! [`store`] is SQLite and nothing else; [`clock`] owns time and promises; [`templates`],
//! [`secret`] and [`deps`] stand beside them; [`daemon`] (three tasks) and [`cli`] are the
//! edges. [`probe`] drives intake on raw bytes without any server, for the fuzz target and the
//! fixture corpus.
//!
//! Imports only point down this list: edges (cli, daemon, probe) → intake, scheduler → apply →
//! outbox → store → incident, thread, mail → deps, templates, secret, config → clock, digest,
//! errors.

pub mod apply;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod deps;
pub mod digest;
pub mod errors;
pub mod imap;
pub mod incident;
pub mod intake;
pub mod mail;
pub mod outbox;
pub mod probe;
pub mod scheduler;
pub mod secret;
pub mod smtp;
pub mod store;
pub mod templates;
pub mod thread;
pub mod tls;
