//! The optional metrics and health listener (`[metrics] enabled = true`, loopback by default):
//! `GET /metrics` in the Prometheus text format, `GET /healthz` for load balancers.
//!
//! Every gauge and counter about mail is read from the database at scrape time
//! ([`crate::store::stats`]), so a restart resets nothing and `followupd status` shows the same
//! numbers; what only the process knows (IMAP up or down, each task's last turn, reloads) comes
//! from [`Health`]. The HTTP side is a few lines over tokio: two fixed GET routes, a bounded
//! request head, a timeout, `Connection: close` — nothing a framework would add here.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};

use super::health::{stalled, Health, ImapState};
use super::Shared;
use crate::errors::Chain;
use crate::store::stats::Snapshot;
use crate::store::{self, Handle};

/// The longest request head read; anything longer is refused.
const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn serve(
    shared: &Shared,
    listener: TcpListener,
    db: Handle,
    mut stop: watch::Receiver<bool>,
) {
    let db = Arc::new(Mutex::new(db));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "metrics: accept failed");
                continue;
            }
        };
        // One request at a time: a scrape is a few milliseconds of SQL, and Prometheus asks
        // every 15 s or so. Never more than one query runs for metrics.
        if let Err(e) = answer(shared, stream, &db).await {
            tracing::debug!(error = %e, "metrics: request failed");
        }
    }
}

async fn answer(shared: &Shared, mut stream: TcpStream, db: &Mutex<Handle>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() + n > MAX_HEAD {
                break;
            }
            head.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            let mut handle = db.lock().await;
            match handle.run(|c| store::stats::snapshot(c)).await {
                Ok(snapshot) => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    render(&snapshot, &shared.health, shared.deps().now()),
                ),
                Err(e) => (
                    "503 Service Unavailable",
                    "text/plain; charset=utf-8",
                    format!("database unreadable: {}\n", Chain(&e)),
                ),
            }
        }
        ("GET", "/healthz") => {
            let (ok, text) = healthz(shared);
            let status = if ok {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "text/plain; charset=utf-8", text)
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "try /metrics or /healthz\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Healthy while every task keeps coming round its loop (what the watchdog checks). IMAP being
/// down is shown but is not unhealthy: restarting followupd would not bring the server back.
fn healthz(shared: &Shared) -> (bool, String) {
    let stuck = stalled(
        &shared.health.since_beats(),
        shared.deps().config.service.stall_after,
    );
    let imap = match shared.health.imap() {
        ImapState::Connected => "imap connected".to_string(),
        ImapState::Connecting => "imap connecting".to_string(),
        ImapState::Down(why) => format!("imap down: {why}"),
    };
    if stuck.is_empty() {
        (true, format!("ok\n{imap}\n"))
    } else {
        let names: Vec<&str> = stuck.iter().map(|(t, _)| t.as_str()).collect();
        (false, format!("stuck: {}\n{imap}\n", names.join(", ")))
    }
}

/// A label value in the text format: backslash, double quote and line feed escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn by_label(
    out: &mut String,
    name: &str,
    key: &str,
    values: &std::collections::BTreeMap<String, i64>,
    always: &[&str],
) {
    for k in always {
        if !values.contains_key(*k) {
            let _ = writeln!(out, "{name}{{{key}=\"{k}\"}} 0");
        }
    }
    for (k, n) in values {
        let _ = writeln!(out, "{name}{{{key}=\"{}\"}} {n}", label(k));
    }
}

/// The Prometheus text exposition of a snapshot and the process's own state.
pub fn render(snapshot: &Snapshot, health: &Health, now: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(4096);
    let age = |t: Option<DateTime<Utc>>| t.map_or(0, |t| (now - t).num_seconds().max(0));
    family(
        &mut out,
        "followupd_messages_total",
        "counter",
        "Incoming messages recorded, by class.",
    );
    by_label(
        &mut out,
        "followupd_messages_total",
        "class",
        &snapshot.messages,
        &["human"],
    );
    family(
        &mut out,
        "followupd_incidents",
        "gauge",
        "Incidents by state.",
    );
    by_label(
        &mut out,
        "followupd_incidents",
        "state",
        &snapshot.incidents,
        &["open", "waiting", "resolved", "closed"],
    );
    family(
        &mut out,
        "followupd_intake_lag_seconds",
        "gauge",
        "Age of the start of the last complete intake pass: mail delivered since may be unread.",
    );
    // No sample before intake's first complete pass: "unknown" is not "no lag".
    if snapshot.read_through.is_some() {
        let _ = writeln!(
            out,
            "followupd_intake_lag_seconds {}",
            age(snapshot.read_through)
        );
    }
    family(
        &mut out,
        "followupd_imap_up",
        "gauge",
        "1 while intake is connected to IMAP.",
    );
    let up = matches!(health.imap(), ImapState::Connected);
    let _ = writeln!(out, "followupd_imap_up {}", u8::from(up));
    family(
        &mut out,
        "followupd_outbox",
        "gauge",
        "Outgoing mail by outbox state.",
    );
    by_label(
        &mut out,
        "followupd_outbox",
        "state",
        &snapshot.outbox,
        &["queued", "sending", "sent", "failed"],
    );
    family(
        &mut out,
        "followupd_outbox_depth",
        "gauge",
        "Mail queued and not yet sent.",
    );
    let _ = writeln!(out, "followupd_outbox_depth {}", snapshot.queued());
    family(
        &mut out,
        "followupd_outbox_oldest_queued_seconds",
        "gauge",
        "Age of the oldest queued mail (0 when none).",
    );
    let _ = writeln!(
        out,
        "followupd_outbox_oldest_queued_seconds {}",
        age(snapshot.oldest_queued)
    );
    family(
        &mut out,
        "followupd_sends_total",
        "counter",
        "Attempts to hand mail to the SMTP relay, by result.",
    );
    by_label(
        &mut out,
        "followupd_sends_total",
        "result",
        &snapshot.sends,
        &["sent", "retry", "failed"],
    );
    family(
        &mut out,
        "followupd_promises_total",
        "counter",
        "Promised updates, by outcome (pending: not yet due or settled).",
    );
    by_label(
        &mut out,
        "followupd_promises_total",
        "outcome",
        &snapshot.promises,
        &["kept", "breached", "pending"],
    );
    family(
        &mut out,
        "followupd_escalations_total",
        "counter",
        "Incidents escalated to staff.",
    );
    let _ = writeln!(out, "followupd_escalations_total {}", snapshot.escalations);
    family(
        &mut out,
        "followupd_suppressed_total",
        "counter",
        "Mail decided but not sent, by reason.",
    );
    by_label(
        &mut out,
        "followupd_suppressed_total",
        "reason",
        &snapshot.suppressed,
        &[],
    );
    family(
        &mut out,
        "followupd_task_last_loop_seconds",
        "gauge",
        "Seconds since each task last came round its loop.",
    );
    for (task, since) in health.since_beats() {
        let _ = writeln!(
            out,
            "followupd_task_last_loop_seconds{{task=\"{}\"}} {}",
            task.as_str(),
            since.as_secs()
        );
    }
    family(
        &mut out,
        "followupd_reloads_total",
        "counter",
        "Reloads (SIGHUP), by result.",
    );
    let ok = health.reloads_ok.load(std::sync::atomic::Ordering::Relaxed);
    let failed = health
        .reloads_failed
        .load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(out, "followupd_reloads_total{{result=\"ok\"}} {ok}");
    let _ = writeln!(out, "followupd_reloads_total{{result=\"failed\"}} {failed}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_with_quotes_and_a_newline_stays_one_well_formed_sample() {
        let mut snapshot = Snapshot::default();
        snapshot.suppressed.insert("send cap \"x\"\nnext".into(), 2);
        let text = render(&snapshot, &Health::new(), Utc::now());
        assert!(
            text.contains("followupd_suppressed_total{reason=\"send cap \\\"x\\\"\\nnext\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("followupd_incidents{state=\"open\"} 0"),
            "{text}"
        );
    }
}
