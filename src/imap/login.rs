//! Opening a session: the server's greeting, TLS (implicit or STARTTLS), and signing in with
//! a password or an OAuth2 token (SASL XOAUTH2 / OAUTHBEARER).

use super::*;

/// AUTHENTICATE with the token; if the server refuses it, once more with a renewed one (the
/// server may know of a revocation or expiry we do not), on the same connection.
pub(super) async fn authenticate(
    bounded: &Bounded<'_>,
    mut client: Client<Box<dyn ImapStream>>,
    user: &str,
    mechanism: Mechanism,
    tokens: &crate::oauth::TokenSource,
    mut token: AccessToken,
) -> Result<(ImapSession, AccessToken), ImapError> {
    let mut renewed = false;
    loop {
        let said = Said::default();
        let sasl = Sasl {
            first: Some(
                crate::sasl::initial_response(mechanism, user, token.secret()).into_bytes(),
            ),
            mechanism,
            said: said.clone(),
        };
        let attempt = bounded
            .io(
                "authenticating",
                client.authenticate(mechanism.as_str(), sasl),
            )
            .await?;
        match attempt {
            Ok(session) => return Ok((session, token)),
            Err((async_imap::error::Error::No(answer), back)) => {
                if !renewed {
                    renewed = true;
                    client = back;
                    token = tokens
                        .renewed(&token)
                        .await
                        .map_err(|source| ImapError::Token {
                            server: bounded.server.to_string(),
                            source,
                        })?;
                    continue;
                }
                let challenge = said.lock().ok().and_then(|c| c.clone());
                return Err(ImapError::TokenRefused {
                    server: bounded.server.to_string(),
                    mechanism: mechanism.as_str(),
                    user: user.to_string(),
                    answer,
                    challenge: challenge.map(|c| crate::sasl::describe_error_challenge(&c)),
                });
            }
            Err((async_imap::error::Error::Bad(answer), _)) => {
                return Err(ImapError::MechanismMissing {
                    server: format!("{} ({answer})", bounded.server),
                    mechanism: mechanism.as_str(),
                })
            }
            Err((source, _)) => {
                return Err(ImapError::Protocol {
                    server: bounded.server.to_string(),
                    what: "AUTHENTICATE",
                    source,
                })
            }
        }
    }
}

/// The error challenge a refusing server sent, kept for the message.
type Said = Arc<std::sync::Mutex<Option<Vec<u8>>>>;

/// One SASL exchange as async-imap drives it: the initial response to the server's first
/// (empty) challenge; then, if the server answers with an error challenge, the answer RFC 7628
/// requires before its final NO.
pub(super) struct Sasl {
    first: Option<Vec<u8>>,
    mechanism: Mechanism,
    said: Said,
}

impl async_imap::Authenticator for Sasl {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.first.take() {
            Some(first) => first,
            None => {
                if let Ok(mut said) = self.said.lock() {
                    *said = Some(challenge.to_vec());
                }
                crate::sasl::answer_to_error(self.mechanism).to_vec()
            }
        }
    }
}

pub(super) async fn read_greeting<T: ImapStream>(
    bounded: &Bounded<'_>,
    client: &mut Client<T>,
) -> Result<(), ImapError> {
    match bounded
        .io("reading the greeting", client.read_response())
        .await?
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Closed {
            server: bounded.server.to_string(),
            what: "reading the greeting",
        }),
        Err(source) => Err(ImapError::Connect {
            server: bounded.server.to_string(),
            source,
        }),
    }
}

pub(super) async fn handshake(
    bounded: &Bounded<'_>,
    host: &str,
    tls: Arc<ClientConfig>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| ImapError::ServerName {
        server: bounded.server.to_string(),
        host: host.to_string(),
    })?;
    bounded
        .io(
            "in the TLS handshake",
            TlsConnector::from(tls).connect(name, tcp),
        )
        .await?
        .map_err(|source| ImapError::Tls {
            server: bounded.server.to_string(),
            source,
        })
}
