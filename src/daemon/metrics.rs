//! The optional metrics and health listener (`[metrics] enabled = true`, loopback by default):
//! `GET /metrics` in the OpenMetrics text format (prometheus-client), `GET /healthz` for load
//! balancers, served by hyper.
//!
//! Every gauge and counter about mail is read from the database at scrape time
//! ([`crate::store::stats`]), so a restart resets nothing and `followupd status` shows the same
//! numbers; what only the process knows (IMAP up or down, each task's last turn, reloads) comes
//! from [`Health`]. A registry is filled per scrape from that snapshot.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};

use super::health::{stalled, Health, ImapState};
use super::Shared;
use crate::errors::Chain;
use crate::store::stats::Snapshot;
use crate::store::{self, Handle};

/// A client that does not finish its request head in this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more are closed at once (each lives at most 10 s).
const MAX_CONNECTIONS: usize = 256;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

pub(super) async fn serve(
    shared: &Shared,
    listener: TcpListener,
    db: Handle,
    mut stop: watch::Receiver<bool>,
) {
    let db = Mutex::new(db);
    // Connections are served side by side (idle or slow clients must not delay /healthz for a
    // load balancer), each bounded in time, at most MAX_CONNECTIONS at once. /metrics queries
    // still run one at a time behind the database handle's lock.
    let mut open = FuturesUnordered::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(()) = open.next(), if !open.is_empty() => continue,
            _ = stop.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "metrics: accept failed");
                continue;
            }
        };
        if open.len() >= MAX_CONNECTIONS {
            tracing::debug!("metrics: too many open connections; one refused");
            drop(stream);
            continue;
        }
        let db = &db;
        open.push(async move {
            let service = hyper::service::service_fn(|request| answer(shared, db, request));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(READ_TIMEOUT * 2, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics: request failed"),
                Err(_) => tracing::debug!("metrics: a client took too long; dropped"),
            }
        });
    }
}

async fn answer(
    shared: &Shared,
    db: &Mutex<Handle>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        Ok(response)
    };
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let mut handle = db.lock().await;
            match handle.run(|c| store::stats::snapshot(c)).await {
                Ok(snapshot) => reply(
                    StatusCode::OK,
                    OPENMETRICS,
                    render(&snapshot, &shared.health, shared.deps().now()),
                ),
                Err(e) => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    format!("database unreadable: {}\n", Chain(&e)),
                ),
            }
        }
        "/healthz" => {
            let (ok, text) = healthz(shared);
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, TEXT, text)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "try /metrics or /healthz\n".into(),
        ),
    }
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
    if let Some(refused) = shared.health.sign_in_refused() {
        // Restarting would not help either, but a person must act: not healthy.
        return (false, format!("sign-in refused: {refused}\n{imap}\n"));
    }
    if stuck.is_empty() {
        (true, format!("ok\n{imap}\n"))
    } else {
        let names: Vec<&str> = stuck.iter().map(|(t, _)| t.as_str()).collect();
        (false, format!("stuck: {}\n{imap}\n", names.join(", ")))
    }
}

type Labels = Vec<(String, String)>;

/// A label value escaped for the text format (backslash, double quote, line feed): the encoder
/// writes label values as given, and a suppression reason may hold any of them.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Fills the registry for one scrape from the database snapshot and the process's own state.
struct Scrape(Registry);

impl Scrape {
    fn counter(&mut self, name: &str, help: &str, value: i64) {
        let counter = Counter::<u64>::default();
        counter.inc_by(u64::try_from(value).unwrap_or(0));
        self.0.register(name, help, counter);
    }

    fn gauge(&mut self, name: &str, help: &str, value: i64) {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        self.0.register(name, help, gauge);
    }

    /// One sample per value of `key`; the `always` values appear (as 0) even when absent, so
    /// an alert on them has a series to watch from the start.
    fn counters_by(
        &mut self,
        name: &str,
        help: &str,
        key: &str,
        values: &BTreeMap<String, i64>,
        always: &[&str],
    ) {
        let family = by_label::<Counter<u64>>(key, values, always, |c, n| {
            c.inc_by(u64::try_from(n).unwrap_or(0));
        });
        self.0.register(name, help, family);
    }

    fn gauges_by(
        &mut self,
        name: &str,
        help: &str,
        key: &str,
        values: &BTreeMap<String, i64>,
        always: &[&str],
    ) {
        let family = by_label::<Gauge<i64>>(key, values, always, |g, n| {
            g.set(n);
        });
        self.0.register(name, help, family);
    }
}

/// A family with one sample per value of `key`, each given its number by `set`.
fn by_label<M: Default>(
    key: &str,
    values: &BTreeMap<String, i64>,
    always: &[&str],
    set: impl Fn(&M, i64),
) -> Family<Labels, M> {
    let family = Family::<Labels, M>::default();
    for k in always {
        let _ = family.get_or_create(&vec![(key.to_string(), (*k).to_string())]);
    }
    for (k, n) in values {
        set(
            &family.get_or_create(&vec![(key.to_string(), escaped(k))]),
            *n,
        );
    }
    family
}

/// The OpenMetrics text exposition of a snapshot and the process's own state. Counter names
/// get their `_total` suffix from the encoder (`followupd_sends_total{result="sent"}`).
pub fn render(snapshot: &Snapshot, health: &Health, now: DateTime<Utc>) -> String {
    let age = |t: Option<DateTime<Utc>>| t.map_or(0, |t| (now - t).num_seconds().max(0));
    let mut scrape = Scrape(Registry::default());
    scrape.counters_by(
        "followupd_messages",
        "Incoming messages recorded, by class",
        "class",
        &snapshot.messages,
        &["human"],
    );
    scrape.gauges_by(
        "followupd_incidents",
        "Incidents by state",
        "state",
        &snapshot.incidents,
        &["open", "waiting", "resolved", "closed"],
    );
    // No sample before intake's first complete pass: "unknown" is not "no lag".
    if snapshot.read_through.is_some() {
        scrape.gauge(
            "followupd_intake_lag_seconds",
            "Age of the start of the last complete intake pass: mail delivered since may be unread",
            age(snapshot.read_through),
        );
    }
    scrape.gauge(
        "followupd_imap_up",
        "1 while intake is connected to IMAP",
        i64::from(matches!(health.imap(), ImapState::Connected)),
    );
    scrape.gauge(
        "followupd_oauth2_sign_in_ok",
        "0 while the OAuth2 sign-in is refused (revoked, expired, never made): sign in again",
        i64::from(health.sign_in_refused().is_none()),
    );
    scrape.gauge(
        "followupd_smtp_up",
        "0 while the SMTP relay cannot be reached (the last attempt failed to connect)",
        i64::from(health.smtp_down().is_none()),
    );
    scrape.gauge(
        "followupd_templates_fallback",
        "1 while running with the last good templates because the configured ones are broken",
        i64::from(
            health
                .templates_fallback
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
    );
    scrape.gauge(
        "followupd_last_reload_success_timestamp_seconds",
        "Unix time of the start or of the last reload that took",
        i64::try_from(health.last_reload_ok()).unwrap_or(i64::MAX),
    );
    let build = Family::<Labels, Gauge<i64>>::default();
    build
        .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
        .set(1);
    scrape.0.register(
        "followupd_build_info",
        "The running build, as labels; always 1",
        build,
    );
    scrape.gauges_by(
        "followupd_outbox",
        "Outgoing mail by outbox state",
        "state",
        &snapshot.outbox,
        &["queued", "sending", "sent", "failed"],
    );
    scrape.gauge(
        "followupd_outbox_depth",
        "Mail queued and not yet sent",
        snapshot.queued(),
    );
    scrape.gauge(
        "followupd_outbox_oldest_queued_seconds",
        "Age of the oldest queued mail (0 when none)",
        age(snapshot.oldest_queued),
    );
    scrape.counters_by(
        "followupd_sends",
        "Attempts to hand mail to the SMTP relay, by result",
        "result",
        &snapshot.sends,
        &["sent", "retry", "failed"],
    );
    // Kept and breached only grow; pending goes up and down, so it is a gauge of its own.
    let settled: BTreeMap<String, i64> = snapshot
        .promises
        .iter()
        .filter(|(k, _)| k.as_str() != "pending")
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    scrape.counters_by(
        "followupd_promises",
        "Promised updates settled, by outcome",
        "outcome",
        &settled,
        &["kept", "breached"],
    );
    scrape.gauge(
        "followupd_promises_pending",
        "Promised updates not yet due or settled",
        snapshot.promises.get("pending").copied().unwrap_or(0),
    );
    scrape.counter(
        "followupd_escalations",
        "Incidents escalated to staff",
        snapshot.escalations,
    );
    scrape.counters_by(
        "followupd_suppressed",
        "Mail decided but not sent, by reason",
        "reason",
        &snapshot.suppressed,
        &[],
    );
    let loops = Family::<Labels, Gauge<i64>>::default();
    for (task, since) in health.since_beats() {
        loops
            .get_or_create(&vec![("task".into(), task.as_str().into())])
            .set(i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    }
    scrape.0.register(
        "followupd_task_last_loop_seconds",
        "Seconds since each task last came round its loop",
        loops,
    );
    let reloads = BTreeMap::from([
        (
            "ok".to_string(),
            i64::try_from(health.reloads_ok.load(std::sync::atomic::Ordering::Relaxed))
                .unwrap_or(i64::MAX),
        ),
        (
            "failed".to_string(),
            i64::try_from(
                health
                    .reloads_failed
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .unwrap_or(i64::MAX),
        ),
    ]);
    scrape.counters_by(
        "followupd_reloads",
        "Reloads (SIGHUP), by result",
        "result",
        &reloads,
        &[],
    );
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &scrape.0);
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

    #[test]
    fn pending_promises_are_a_gauge_and_a_fallback_and_a_reload_show() {
        let mut snapshot = Snapshot::default();
        snapshot.promises.insert("pending".into(), 3);
        snapshot.promises.insert("kept".into(), 5);
        let health = Health::new();
        health
            .templates_fallback
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let text = render(&snapshot, &health, Utc::now());
        assert!(text.contains("\nfollowupd_promises_pending 3\n"), "{text}");
        assert!(
            text.contains("followupd_promises_total{outcome=\"kept\"} 5"),
            "{text}"
        );
        assert!(!text.contains("outcome=\"pending\""), "{text}");
        assert!(
            text.contains("\nfollowupd_templates_fallback 1\n"),
            "{text}"
        );
        health.reloaded_now();
        let text = render(&snapshot, &health, Utc::now());
        assert!(
            text.contains("\nfollowupd_templates_fallback 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE followupd_promises_pending gauge"),
            "{text}"
        );
    }
}
