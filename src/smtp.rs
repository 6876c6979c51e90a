//! SMTP: hand finished messages to the relay over pooled, reused connections.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Endpoint, TlsMode};

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("[smtp] ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("[smtp] TLS setup for {host} failed: {reason}")]
    Tls { host: String, reason: String },
}

/// Why a send failed, and so whether to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Server down, timeout, 4xx: the mail stays queued and is retried.
    #[error("{0}")]
    Transient(String),
    /// 5xx or an address the relay cannot take: retrying would not help.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    server: String,
}

impl Smtp {
    /// Builds the pooled transport. Call inside the tokio runtime (lettre's pool spawns a task).
    pub fn new(endpoint: &Endpoint, connections: u32, hello: &str) -> Result<Smtp, SmtpSetupError> {
        let tls = match endpoint.tls {
            TlsMode::None => Tls::None,
            TlsMode::Implicit => Tls::Wrapper(tls_parameters(endpoint)?),
            TlsMode::Starttls => Tls::Required(tls_parameters(endpoint)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&endpoint.host)
            .port(endpoint.port)
            .tls(tls)
            .hello_name(ClientId::Domain(hello.to_string()))
            .timeout(Some(endpoint.timeout))
            .pool_config(PoolConfig::new().max_size(connections));
        if let (Some(user), Some(password)) = (&endpoint.username, &endpoint.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Smtp {
            transport: builder.build(),
            timeout: endpoint.timeout,
            server: format!("{}:{}", endpoint.host, endpoint.port),
        })
    }

    /// Sends one finished message to the envelope recipients `to` (the headers say who it is
    /// for); returns the server's reply ("250 2.0.0 Ok: queued as …").
    pub async fn send(&self, from: &str, to: &[&str], raw: &[u8]) -> Result<String, SendError> {
        let envelope = envelope(from, to)?;
        // lettre's own timeout covers only the connect (lettre issue #1027), so bound the whole
        // exchange: a relay that stalls after DATA must not stall the outbox forever.
        let sent =
            tokio::time::timeout(self.timeout, self.transport.send_raw(&envelope, raw)).await;
        match sent {
            Err(_) => Err(SendError::Transient(format!(
                "{}: no answer within {}",
                self.server,
                humantime::format_duration(self.timeout)
            ))),
            Ok(Ok(response)) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Ok(Err(e)) if e.is_permanent() => {
                Err(SendError::Permanent(format!("{}: {e}", self.server)))
            }
            Ok(Err(e)) => Err(SendError::Transient(format!("{}: {e}", self.server))),
        }
    }
}

fn envelope(from: &str, to: &[&str]) -> Result<Envelope, SendError> {
    let parse = |a: &str| {
        a.parse::<Address>()
            .map_err(|e| SendError::Permanent(format!("address `{a}` cannot be used: {e}")))
    };
    let recipients = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(parse(from)?), recipients)
        .map_err(|e| SendError::Permanent(format!("envelope {from} -> {}: {e}", to.join(", "))))
}

fn tls_parameters(endpoint: &Endpoint) -> Result<TlsParameters, SmtpSetupError> {
    let mut builder = TlsParameters::builder(endpoint.host.clone());
    if let Some(path) = &endpoint.ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| SmtpSetupError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| SmtpSetupError::CaFile {
            path: shown,
            reason: e.to_string(),
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| SmtpSetupError::Tls {
        host: endpoint.host.clone(),
        reason: e.to_string(),
    })
}
