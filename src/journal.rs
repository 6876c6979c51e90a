//! Log lines straight to the systemd journal, each a line an admin can read as it is.
//!
//! `journalctl` shows MESSAGE and nothing else: a line that says "reload refused: the
//! configuration is broken" and keeps the file, the line and the cause in other fields tells
//! the admin nothing. So MESSAGE carries the message and every fact of the event after it
//! (`reload refused … error="followupd.toml:12: …"`), and each fact is also a field of its own
//! (`FOLLOWUPD_INCIDENT=12`) for `journalctl FOLLOWUPD_INCIDENT=12`. Levels become priorities
//! (`journalctl -p err`). The native protocol on `/run/systemd/journal/socket`, one datagram
//! per line (see systemd's `sd_journal_sendv`).

use std::fmt::{self, Write as _};
use std::os::unix::net::UnixDatagram;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// Where journald listens for native log lines.
const SOCKET: &str = "/run/systemd/journal/socket";

/// A line longer than this is cut (a datagram must fit the socket's buffer; no line of ours
/// comes near it).
const MESSAGE_MAX: usize = 48 * 1024;

pub struct JournalLayer {
    socket: UnixDatagram,
}

impl JournalLayer {
    /// A layer sending to journald, if its socket can be reached.
    pub fn connect() -> std::io::Result<JournalLayer> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(SOCKET)?;
        Ok(JournalLayer { socket })
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut facts = Facts::default();
        event.record(&mut facts);
        let mut message = facts.message;
        for (name, value) in &facts.fields {
            let _ = write!(message, " {name}={}", shown(value));
        }
        if message.len() > MESSAGE_MAX {
            let mut cut = MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let mut buf = Vec::with_capacity(message.len() + 128);
        put(&mut buf, "MESSAGE", &message);
        put(&mut buf, "PRIORITY", priority(*event.metadata().level()));
        put(&mut buf, "SYSLOG_IDENTIFIER", "followupd");
        for (name, value) in &facts.fields {
            put(&mut buf, &field_name(name), value);
        }
        // Nothing is left to tell of a line that cannot be logged.
        let _ = self.socket.send(&buf);
    }
}

/// syslog priorities as journald reads them: err 3, warning 4, notice 5, info 6, debug 7.
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "5",
        Level::DEBUG => "6",
        Level::TRACE => "7",
    }
}

/// `FOLLOWUPD_` and the field's name in capitals; anything but letters, digits and `_`
/// becomes `_` (journald's rule for field names).
fn field_name(name: &str) -> String {
    let mut out = String::from("FOLLOWUPD_");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// A value as MESSAGE shows it: bare when it is one word, quoted otherwise.
fn shown(value: &str) -> String {
    if !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '"') {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

/// One field in the native protocol: `NAME=value\n`, or, for a value with a newline in it,
/// `NAME\n`, its length as 64-bit little-endian, the value, `\n`.
fn put(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

/// An event's message and its other fields, in the order written.
#[derive(Default)]
struct Facts {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Facts {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` arrives here as Display wrapped in Debug: this prints it as Display.
        self.record_str(field, &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_with_a_newline_is_length_encoded_and_names_are_journal_names() {
        let mut buf = Vec::new();
        put(&mut buf, "MESSAGE", "one line");
        put(&mut buf, &field_name("message-id"), "a\nb");
        let mut want = b"MESSAGE=one line\nFOLLOWUPD_MESSAGE_ID\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(buf, want);
        assert_eq!(shown("12"), "12");
        assert_eq!(shown("file.toml:3: bad"), "\"file.toml:3: bad\"");
    }
}
