//! One integration-test binary (one build, one link): every scenario runs the real `followupd`
//! binary against a real Dovecot and Postfix started by scripts/mailstack in its own temp dir.
//! Needs root (Postfix) and the packages `.ci/run` installs.

mod admin;
mod check;
mod core;
mod corpus;
mod harness;
mod heal;
mod idle;
mod intake;
mod oauth;
mod own_words;
mod package;
mod privacy;
mod promises;
mod service;
mod spine;
mod staff;
mod team;
mod trust;
mod understand;
