//! followupd: keeps promises to customers when something has gone wrong.
//!
//! The modules follow one email's journey: [`config`] → [`imap`] (intake) → [`mail`] (parse,
//! classify) → [`thread`] → [`store`] (SQLite) → [`policy`] (what the incident needs now) →
//! [`outbox`] → [`smtp`]; [`ingest`] runs one batch of that journey in one transaction,
//! [`templates`] and [`secret`] stand beside it, and [`daemon`] and [`cli`] wire it together.
//! [`probe`] drives intake on raw bytes without any server, for the fuzz target and its corpus.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod imap;
pub mod ingest;
pub mod lifecycle;
pub mod mail;
pub mod outbox;
pub mod pace;
pub mod policy;
pub mod probe;
pub mod schedule;
pub mod secret;
pub mod smtp;
pub mod store;
pub mod templates;
pub mod thread;
pub mod tls;
