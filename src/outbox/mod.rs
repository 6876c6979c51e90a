//! The outbox: mail decided inside a transaction, sent after it.
//!
//! [`queue`] turns a decided mail into an outbox row (Message-ID, send caps, first render,
//! the promise it makes); [`compose`] renders the templates into a complete message;
//! [`send`] drains due rows to the relay and records every attempt; [`guard`] knows what a
//! thread holds of ours and stops a customer mail that carries staff-only text. A queued mail has its
//! Message-ID and template data fixed at queue time and its bytes fixed at first render, so
//! every retry sends the very same message.

pub mod caps;
pub mod compose;
pub mod guard;
pub mod queue;
pub mod send;

pub use queue::{enqueue, Pass, Queued};
pub use send::{drain, DrainReport};
