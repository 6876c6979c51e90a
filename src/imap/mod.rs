//! IMAP: the support inbox, read by UID.
//!
//! We never rely on `\Seen` (a person reading the inbox in a mail client would hide mail from
//! us); the checkpoint of UIDVALIDITY and last UID in SQLite is what says what is new.
//! async-imap has no per-command timeouts, so every await here is bounded.
//!
//! Login is `LOGIN` with a password or `AUTHENTICATE XOAUTH2`/`OAUTHBEARER` with an access token
//! ([`crate::sasl`]); a refused token is renewed and tried once more. Between passes the daemon
//! waits in IDLE (RFC 2177) when the server offers it ([`Inbox::idle`]).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::{Client, Session};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::config::{AfterProcessing, ImapConfig, Mechanism, TlsMode};
use crate::oauth::{AccessToken, Login, TokenError};

mod login;

use login::*;

pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}

pub type ImapSession = Session<Box<dyn ImapStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(
        "IMAP {server}: cannot connect (check [imap] host and port, and that the server runs)"
    )]
    Connect {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "IMAP {server}: TLS handshake failed (check [imap] tls, and ca_file for a private CA)"
    )]
    Tls {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("IMAP {server}: `{host}` is not a valid TLS server name")]
    ServerName { server: String, host: String },
    #[error("IMAP {server}: no answer within {timeout} while {what}")]
    Timeout {
        server: String,
        what: &'static str,
        timeout: String,
    },
    #[error("IMAP {server}: {what} failed")]
    Protocol {
        server: String,
        what: &'static str,
        #[source]
        source: async_imap::error::Error,
    },
    #[error("IMAP {server}: the server closed the connection while {what}")]
    Closed { server: String, what: &'static str },
    #[error("IMAP {server}: mailbox {mailbox} has no UIDVALIDITY; cannot track it safely")]
    NoUidValidity { server: String, mailbox: String },
    #[error("IMAP {server}: no username configured in [imap]")]
    NoUsername { server: String },
    #[error(transparent)]
    Password(#[from] crate::config::ConfigError),
    #[error("IMAP {server}: the server refused the password for {user} ({answer}); check [imap] username and password_file")]
    PasswordRefused {
        server: String,
        user: String,
        answer: String,
    },
    #[error("IMAP {server}: the server refused the {mechanism} access token for {user} ({answer}{}); check that the token grants IMAP access to this mailbox (scope, and for app-only access the mailbox permission) and that [imap] username is the mailbox", challenge.as_deref().map(|c| format!("; it said {c}")).unwrap_or_default())]
    TokenRefused {
        server: String,
        mechanism: &'static str,
        user: String,
        answer: String,
        /// What the error challenge's JSON said (status, scope).
        challenge: Option<String>,
    },
    #[error("IMAP {server}: the server does not offer AUTH={mechanism}; set [imap] oauth2_mechanism to one it offers")]
    MechanismMissing {
        server: String,
        mechanism: &'static str,
    },
    #[error("IMAP {server}: cannot get an access token")]
    Token {
        server: String,
        #[source]
        source: TokenError,
    },
}

impl ImapError {
    /// Whether the server could not be reached at all (down, refusing connections, silent), as
    /// opposed to answering and refusing: only then is it worth watching for it to come back.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ImapError::Connect { .. } | ImapError::Closed { .. } | ImapError::Timeout { .. }
        ) || matches!(self, ImapError::Protocol { source, .. } if matches!(source, async_imap::error::Error::ConnectionLost | async_imap::error::Error::Io(_)))
    }
}

/// A fetched message: its UID and exact bytes (only the header section when it is larger than
/// `[intake] max_message_size`; `size` is then the size the server reported).
#[derive(Debug)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Raw,
    pub size: u64,
    pub headers_only: bool,
}

/// A message's bytes. Kept in the IMAP response they arrived in rather than copied: a 20 MB
/// message costs 20 MB, not 40.
#[derive(Debug)]
pub enum Raw {
    /// The whole message (`BODY[]`) or its header section (`BODY[HEADER]`) of a response.
    Response {
        fetch: async_imap::types::Fetch,
        header_only: bool,
    },
    Owned(Vec<u8>),
}

impl Raw {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Raw::Response {
                fetch,
                header_only: false,
            } => fetch.body().unwrap_or_default(),
            Raw::Response {
                fetch,
                header_only: true,
            } => fetch.header().unwrap_or_default(),
            Raw::Owned(bytes) => bytes,
        }
    }
}

/// Messages to fetch together: UID and size, ascending.
pub type Batch = Vec<(u32, u64)>;

/// Most bytes fetched in one batch (one transaction). Large messages come alone, so memory
/// stays bounded by the largest message, not by `batch_size` times it.
pub const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// What a message over `max_message_size` weighs in a batch: only its header section is fetched.
const HEADER_WEIGHT: u64 = 64 * 1024;

/// Splits messages (UID and size, ascending) into batches of at most `max_bytes` (a message
/// bigger than that alone), counting one over `max_size` as its header section only.
pub fn batches(sizes: &[(u32, u64)], max_bytes: u64, max_size: u64) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut current: Batch = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        let weight = if size > max_size { HEADER_WEIGHT } else { size };
        if !current.is_empty() && bytes.saturating_add(weight) > max_bytes {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push((uid, size));
        bytes = bytes.saturating_add(weight);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[derive(Debug, Clone, Copy)]
pub struct Selected {
    pub uidvalidity: u32,
}

pub struct Inbox {
    session: ImapSession,
    config: ImapConfig,
    server: String,
    /// When the access token this session logged in with expires: the session is renewed then
    /// (Exchange Online ends it anyway, and a revoked sign-in shows up within one token's life).
    usable_until: Option<Instant>,
    /// The server listed IDLE among its capabilities after login.
    idle_offered: bool,
    /// How the session logged in, for `check --connect`: `LOGIN` or the SASL mechanism.
    pub logged_in_with: &'static str,
}

/// Why an IDLE wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The server reported a change in the mailbox (EXISTS, …): time for a pass.
    Changed,
    /// The wait ran its full length without news.
    Quiet,
    /// The daemon is stopping.
    Stopped,
}

impl Inbox {
    /// Connects, upgrades to TLS as configured, logs in and selects the support mailbox.
    pub async fn connect(
        config: &ImapConfig,
        tls: Arc<ClientConfig>,
        login: &Login,
    ) -> Result<(Inbox, Selected), ImapError> {
        let ep = &config.endpoint;
        let server = format!("{}:{}", ep.host, ep.port);
        let bounded = Bounded {
            server: &server,
            timeout: ep.timeout,
        };
        // A token first: without one there is no point in connecting (nor in a failed login,
        // which the server answers with a growing delay).
        let token = match login {
            Login::Bearer { tokens, .. } => {
                Some(tokens.token().await.map_err(|source| ImapError::Token {
                    server: server.clone(),
                    source,
                })?)
            }
            _ => None,
        };
        let tcp = bounded
            .io(
                "connecting",
                TcpStream::connect((ep.host.as_str(), ep.port)),
            )
            .await?
            .map_err(|source| ImapError::Connect {
                server: server.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn ImapStream> = match ep.tls {
            TlsMode::None => Box::new(tcp),
            TlsMode::Implicit => Box::new(handshake(&bounded, &ep.host, tls, tcp).await?),
            TlsMode::Starttls => {
                let mut client = Client::new(tcp);
                read_greeting(&bounded, &mut client).await?;
                bounded
                    .imap(
                        "STARTTLS",
                        client.run_command_and_check_ok("STARTTLS", None),
                    )
                    .await?;
                let tcp = client.into_inner();
                Box::new(handshake(&bounded, &ep.host, tls, tcp).await?)
            }
        };
        let mut client = Client::new(stream);
        if ep.tls != TlsMode::Starttls {
            // After STARTTLS there is no second greeting; otherwise it must be read before login.
            read_greeting(&bounded, &mut client).await?;
        }
        let (mut session, usable_until, logged_in_with) = match (login, token) {
            (
                Login::Bearer {
                    user,
                    mechanism,
                    tokens,
                },
                Some(token),
            ) => {
                let (session, token) =
                    authenticate(&bounded, client, user, *mechanism, tokens, token).await?;
                (session, Some(token.usable_until), mechanism.as_str())
            }
            (Login::Password { user, password }, _) => {
                // Read now, not at start: staff running the CLI never need it.
                let password = match password {
                    Some(source) => source.read("imap")?,
                    None => String::new(),
                };
                let login = bounded
                    .io("logging in", client.login(user, password))
                    .await?;
                let session = login.map_err(|(source, _)| match source {
                    async_imap::error::Error::No(answer) => ImapError::PasswordRefused {
                        server: server.clone(),
                        user: user.clone(),
                        answer,
                    },
                    source => ImapError::Protocol {
                        server: server.clone(),
                        what: "LOGIN",
                        source,
                    },
                })?;
                (session, None, "LOGIN")
            }
            _ => return Err(ImapError::NoUsername { server }),
        };
        let capabilities = bounded.imap("CAPABILITY", session.capabilities()).await?;
        let idle_offered = capabilities.has_str("IDLE");
        let mut inbox = Inbox {
            session,
            config: config.clone(),
            server,
            usable_until,
            idle_offered,
            logged_in_with,
        };
        let selected = inbox.select().await?;
        if let AfterProcessing::Move(folder) = &config.after_processing {
            inbox.ensure_folder(folder).await;
        }
        Ok((inbox, selected))
    }

    /// Whether this session should wait in IDLE between passes: offered and not switched off.
    pub fn can_idle(&self) -> bool {
        self.idle_offered && self.config.idle
    }

    pub fn idle_offered(&self) -> bool {
        self.idle_offered
    }

    /// When the session must be renewed because its access token expires (None: never).
    pub fn usable_until(&self) -> Option<Instant> {
        self.usable_until
    }

    /// Waits in IDLE for at most `limit`, until the server reports a change or `stop` fires,
    /// then ends the IDLE. The connection comes back with the answer; any error ends it.
    ///
    /// async-imap restarts its timeout on every server keepalive (`* OK Still here`), so the
    /// whole wait is bounded here as well; a link that died silently is found by the DONE (or
    /// the NOOP the caller sends after a quiet wait) timing out.
    pub async fn idle(
        self,
        limit: Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Inbox, Woken), ImapError> {
        let Inbox {
            session,
            config,
            server,
            usable_until,
            idle_offered,
            logged_in_with,
        } = self;
        let bounded = Bounded {
            server: &server,
            timeout: config.endpoint.timeout,
        };
        // A second receiver of the same queue: the session disappears into the IDLE handle.
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        bounded.imap("IDLE", handle.init()).await?;
        let mut woken = if drain(|| unsolicited.try_recv().ok()) {
            // Mail that arrived just before IDLE began is reported before its continuation.
            Woken::Changed
        } else {
            Woken::Quiet
        };
        if woken == Woken::Quiet {
            // `_interrupt` must live while waiting: dropping the StopSource ends the wait.
            let (wait, _interrupt) = handle.wait_with_timeout(limit);
            tokio::select! {
                outcome = tokio::time::timeout(limit, wait) => match outcome {
                    Err(_) | Ok(Ok(async_imap::extensions::idle::IdleResponse::Timeout)) => {}
                    Ok(Ok(async_imap::extensions::idle::IdleResponse::NewData(_))) => {
                        woken = Woken::Changed;
                    }
                    // We never interrupt it ourselves: the connection is gone.
                    Ok(Ok(async_imap::extensions::idle::IdleResponse::ManualInterrupt)) => {
                        return Err(ImapError::Closed {
                            server: server.clone(),
                            what: "waiting in IDLE",
                        });
                    }
                    Ok(Err(source)) => {
                        return Err(ImapError::Protocol {
                            server: server.clone(),
                            what: "IDLE",
                            source,
                        });
                    }
                },
                _ = stop.changed() => woken = Woken::Stopped,
            }
        }
        let mut session = bounded.imap("DONE", handle.done()).await?;
        if drain_unsolicited(&mut session) && woken == Woken::Quiet {
            woken = Woken::Changed;
        }
        Ok((
            Inbox {
                session,
                config,
                server,
                usable_until,
                idle_offered,
                logged_in_with,
            },
            woken,
        ))
    }

    /// NOOP: proves the connection alive after a quiet wait; returns whether the server
    /// reported a change meanwhile.
    pub async fn noop(&mut self) -> Result<bool, ImapError> {
        let bounded = Bounded {
            server: &self.server,
            timeout: self.config.endpoint.timeout,
        };
        bounded.imap("NOOP", self.session.noop()).await?;
        Ok(drain_unsolicited(&mut self.session))
    }

    /// Empties the queue of unsolicited responses (async-imap drops them past 100); returns
    /// whether one announced a change to the mailbox since the last look.
    pub fn take_changes(&mut self) -> bool {
        drain_unsolicited(&mut self.session)
    }

    fn bounded(&self) -> Bounded<'_> {
        Bounded {
            server: &self.server,
            timeout: self.config.endpoint.timeout,
        }
    }

    async fn select(&mut self) -> Result<Selected, ImapError> {
        let bounded = Bounded {
            server: &self.server,
            timeout: self.config.endpoint.timeout,
        };
        let mailbox = bounded
            .imap("SELECT", self.session.select(&self.config.mailbox))
            .await?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::NoUidValidity {
                server: self.server.clone(),
                mailbox: self.config.mailbox.clone(),
            })?;
        Ok(Selected { uidvalidity })
    }

    /// Re-selects the mailbox, which also tells us whether UIDVALIDITY changed since connect.
    pub async fn refresh(&mut self) -> Result<Selected, ImapError> {
        self.select().await
    }

    /// UIDs above `last_uid`, ascending.
    pub async fn uids_after(&mut self, last_uid: u32) -> Result<Vec<u32>, ImapError> {
        let query = format!("UID {}:*", last_uid.saturating_add(1));
        let bounded = Bounded {
            server: &self.server,
            timeout: self.config.endpoint.timeout,
        };
        let found = bounded
            .imap("UID SEARCH", self.session.uid_search(query))
            .await?;
        // `n:*` always matches the highest UID, even when it is below n (RFC 3501 6.4.8):
        // without this filter the last message would be fetched on every poll.
        let mut uids: Vec<u32> = found.into_iter().filter(|uid| *uid > last_uid).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The size of each of `uids` (ascending), as the server reports it (`RFC822.SIZE`).
    /// Messages expunged meanwhile are not in the answer.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u64)>, ImapError> {
        let mut sizes: Vec<(u32, u64)> = self
            .fetch_items(uids, "(UID RFC822.SIZE)")
            .await?
            .iter()
            .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
            .filter(|(uid, _)| uids.binary_search(uid).is_ok())
            .collect();
        sizes.sort_unstable();
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes)
    }

    /// Fetches exact bytes for a batch (UIDs with their sizes, see [`batches`]) without
    /// setting `\Seen` (BODY.PEEK). A message over `max_size` is never downloaded whole: only
    /// its header section comes over the wire.
    pub async fn fetch(
        &mut self,
        batch: &[(u32, u64)],
        max_size: u64,
    ) -> Result<Vec<Fetched>, ImapError> {
        let (large, small): (Batch, Batch) = batch.iter().partition(|(_, size)| *size > max_size);
        let size_of = |uid: u32| batch.iter().find(|(u, _)| *u == uid).map_or(0, |(_, s)| *s);
        let mut out = Vec::with_capacity(batch.len());
        for (list, items, header_only) in [
            (&small, "(UID BODY.PEEK[])", false),
            (&large, "(UID BODY.PEEK[HEADER])", true),
        ] {
            let uids: Vec<u32> = list.iter().map(|(uid, _)| *uid).collect();
            for fetch in self.fetch_items(&uids, items).await? {
                // Unsolicited FETCH responses (flag changes) carry no body: skip them.
                let Some(uid) = fetch.uid.filter(|uid| uids.binary_search(uid).is_ok()) else {
                    continue;
                };
                let has_bytes = if header_only {
                    fetch.header().is_some()
                } else {
                    fetch.body().is_some()
                };
                if !has_bytes {
                    continue;
                }
                let raw = Raw::Response { fetch, header_only };
                let size = if header_only {
                    size_of(uid)
                } else {
                    raw.as_slice().len() as u64
                };
                out.push(Fetched {
                    uid,
                    raw,
                    size,
                    headers_only: header_only,
                });
            }
        }
        out.sort_by_key(|f| f.uid);
        out.dedup_by_key(|f| f.uid);
        Ok(out)
    }

    async fn fetch_items(
        &mut self,
        uids: &[u32],
        items: &str,
    ) -> Result<Vec<async_imap::types::Fetch>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let bounded = Bounded {
            server: &self.server,
            // A batch of large messages takes longer than one command: scale the bound.
            timeout: self.config.endpoint.timeout * 4,
        };
        let session = &mut self.session;
        bounded
            .imap("UID FETCH", async {
                let stream = session.uid_fetch(&set, items).await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await
    }

    /// Marks or moves messages, as configured, once their transaction has committed.
    pub async fn after_processing(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let action = self.config.after_processing.clone();
        let bounded = Bounded {
            server: &self.server,
            timeout: self.config.endpoint.timeout,
        };
        let session = &mut self.session;
        match action {
            AfterProcessing::Leave => Ok(()),
            AfterProcessing::MarkSeen => {
                bounded
                    .imap("UID STORE", async {
                        let stream = session.uid_store(&set, "+FLAGS.SILENT (\\Seen)").await?;
                        stream.try_collect::<Vec<_>>().await
                    })
                    .await?;
                Ok(())
            }
            AfterProcessing::Move(folder) => {
                bounded
                    .imap("UID MOVE", session.uid_mv(&set, &folder))
                    .await
            }
        }
    }

    /// Deletes (flags `\\Deleted`, then expunges) the messages of the selected mailbox whose
    /// Message-ID is one of `ids` (without angle brackets): `erase --imap`. Returns how many.
    pub async fn delete_by_message_id(&mut self, ids: &[String]) -> Result<usize, ImapError> {
        let bounded = Bounded {
            server: &self.server,
            timeout: self.config.endpoint.timeout,
        };
        let mut uids: Vec<u32> = Vec::new();
        for id in ids {
            // A Message-ID is ASCII without quotes or backslashes (it was well-formed enough to
            // be recorded); anything else cannot be searched for safely and is skipped.
            if !id.is_ascii() || id.contains(['"', '\\', '\r', '\n']) {
                continue;
            }
            let query = format!("HEADER Message-ID \"<{id}>\"");
            let found = bounded
                .imap("UID SEARCH", self.session.uid_search(query))
                .await?;
            uids.extend(found);
        }
        uids.sort_unstable();
        uids.dedup();
        if uids.is_empty() {
            return Ok(0);
        }
        let set = uid_set(&uids);
        let session = &mut self.session;
        bounded
            .imap("UID STORE", async {
                let stream = session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        let session = &mut self.session;
        bounded
            .imap("EXPUNGE", async {
                let stream = session.expunge().await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        Ok(uids.len())
    }

    /// Creates the move-to folder if it is missing; an existing folder is the usual case.
    async fn ensure_folder(&mut self, folder: &str) {
        let bounded = self.bounded();
        let server = bounded.server.to_string();
        let timeout = bounded.timeout;
        let result = tokio::time::timeout(timeout, self.session.create(folder)).await;
        if let Ok(Err(e)) = result {
            tracing::debug!(server, folder, error = %e, "CREATE refused (folder probably exists)");
        }
    }

    pub async fn logout(mut self) {
        let timeout = self.config.endpoint.timeout;
        let _ = tokio::time::timeout(timeout, self.session.logout()).await;
    }
}

/// Puts a time limit on a network step and names the step in the error.
struct Bounded<'a> {
    server: &'a str,
    timeout: Duration,
}

impl Bounded<'_> {
    // Every step is logged at debug as the conversation an admin would want to read: the
    // step's name (`SELECT`, `UID FETCH`, `logging in`) and how it ended, never arguments that
    // could hold a secret (the password and the token never reach a step's name).
    async fn io<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = T>,
    ) -> Result<T, ImapError> {
        tracing::debug!(server = self.server, "IMAP > {what}");
        let started = std::time::Instant::now();
        let done = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ImapError::Timeout {
                server: self.server.to_string(),
                what,
                timeout: humantime::format_duration(self.timeout).to_string(),
            });
        if done.is_err() {
            tracing::debug!(
                server = self.server,
                "IMAP < {what}: no answer within the timeout"
            );
        } else {
            tracing::trace!(
                server = self.server,
                ms = started.elapsed().as_millis() as u64,
                "IMAP < {what} done"
            );
        }
        done
    }

    async fn imap<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = async_imap::error::Result<T>>,
    ) -> Result<T, ImapError> {
        let result = self.io(what, fut).await?;
        match &result {
            Ok(_) => tracing::debug!(server = self.server, "IMAP < {what} OK"),
            Err(e) => tracing::debug!(server = self.server, "IMAP < {what}: {e}"),
        }
        result.map_err(|source| ImapError::Protocol {
            server: self.server.to_string(),
            what,
            source,
        })
    }
}

/// Empties the unsolicited-response queue; true if a response announced new or changed mail.
fn drain_unsolicited(session: &mut ImapSession) -> bool {
    drain(|| session.unsolicited_responses.try_recv().ok())
}

fn drain(mut next: impl FnMut() -> Option<async_imap::types::UnsolicitedResponse>) -> bool {
    let mut changed = false;
    while let Some(response) = next() {
        changed |= matches!(
            response,
            async_imap::types::UnsolicitedResponse::Exists(_)
                | async_imap::types::UnsolicitedResponse::Recent(_)
        );
    }
    changed
}

/// A compact IMAP sequence set for sorted UIDs: `1:4,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = uids.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&end.wrapping_add(1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_bytes_and_a_large_message_comes_alone() {
        const MB: u64 = 1024 * 1024;
        let sizes: Vec<(u32, u64)> = (1..=8).map(|uid| (uid, 20 * MB)).collect();
        let plan = batches(&sizes, BATCH_BYTES, 25 * 1000 * 1000);
        assert_eq!(plan.len(), 8, "eight 20 MB messages: eight batches of one");
        let small: Vec<(u32, u64)> = (1..=100).map(|uid| (uid, 4 * 1024)).collect();
        assert_eq!(batches(&small, BATCH_BYTES, 25 * MB).len(), 1);
        let mixed = [
            (1, 3 * MB),
            (2, 3 * MB),
            (3, 3 * MB),
            (4, 100 * MB),
            (5, 1024),
        ];
        let plan = batches(&mixed, BATCH_BYTES, 25 * MB);
        let uids: Vec<Vec<u32>> = plan
            .iter()
            .map(|b| b.iter().map(|(u, _)| *u).collect())
            .collect();
        assert_eq!(
            uids,
            vec![vec![1, 2], vec![3, 4, 5]],
            "a message over max_size weighs its header section only"
        );
        assert!(batches(&[], BATCH_BYTES, MB).is_empty());
    }

    use super::uid_set;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[1, 2, 3, 4, 7, 9, 10]), "1:4,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }
}
