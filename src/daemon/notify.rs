//! systemd's notification protocol (sd_notify(3)): one datagram per message to the unix socket
//! named by `$NOTIFY_SOCKET`. Written by hand: it is a dozen lines, and a crate for it would
//! add nothing but a dependency.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where `READY=1`, `STATUS=…` and `WATCHDOG=1` go; a no-op when not started by systemd.
pub struct Notifier {
    socket: Option<(UnixDatagram, Target)>,
}

enum Target {
    Path(PathBuf),
    /// `@name`: a socket in Linux's abstract namespace.
    Abstract(Vec<u8>),
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let target = match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => {
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec();
                match bytes.strip_prefix(b"@") {
                    Some(rest) => Target::Abstract(rest.to_vec()),
                    None => Target::Path(PathBuf::from(name)),
                }
            }
            _ => return Notifier { socket: None },
        };
        match UnixDatagram::unbound() {
            Ok(socket) => Notifier {
                socket: Some((socket, target)),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a socket to notify systemd");
                Notifier { socket: None }
            }
        }
    }

    /// Sends one notification. A failure is logged at debug only: systemd may be gone while we
    /// stop, and a notification is never worth stopping for.
    pub fn send(&self, message: &str) {
        let Some((socket, target)) = &self.socket else {
            return;
        };
        let sent = match target {
            Target::Path(path) => socket.send_to(message.as_bytes(), path),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
            }
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "systemd notification not delivered");
        }
    }
}

/// How often systemd wants `WATCHDOG=1` (`$WATCHDOG_USEC`, set by `WatchdogSec=`), when it is
/// meant for this process (`$WATCHDOG_PID`, when set, names it).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}
