//! The first sign-in, done once by an admin at a terminal: `followupd oauth2 login SERVER`.
//!
//! - The device flow (RFC 8628, Microsoft 365's choice for a server without a browser): print
//!   the URL and the code, poll the token endpoint while the admin signs in anywhere, keep the
//!   refresh token.
//! - The browser flow (authorization code with PKCE, RFC 7636; what Google allows for Gmail,
//!   whose scope its device flow refuses): print the URL, the admin opens it in any browser,
//!   signs in, and pastes back the address the browser ended on (a loopback address that
//!   cannot load, which is fine: the code is in it).
//!
//! Either way the refresh token lands in the state directory with mode 0600 and nothing secret
//! is printed.

use std::io::{BufRead, Write};
use std::sync::Arc;

use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse};
use tokio_rustls::rustls::ClientConfig;

use super::saved::{self, SavedSignIn};
use super::{assertion, client, http_agent, token_error, TokenError};
use crate::config::{Grant, OAuth2Config};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("[{section}] grant = \"client_credentials\": the app signs in with its own credential, there is nothing to sign in to (try `followupd check --connect`)")]
    NotNeeded { section: String },
    #[error("[{section}] has no {what} (set {key}, or a provider preset)")]
    NoEndpoint {
        section: String,
        what: &'static str,
        key: &'static str,
    },
    #[error("the sign-in failed")]
    Token(#[source] TokenError),
    #[error("the provider returned no refresh token; for Microsoft 365 add offline_access to [{section}] scope, for Google sign in with --browser (it asks for offline access)")]
    NoRefreshToken { section: String },
    #[error("the pasted address has no `{0}` parameter; paste the whole address from the browser's address bar")]
    Pasted(&'static str),
    #[error("the provider refused the sign-in: {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Declined {
        error: String,
        description: Option<String>,
    },
    #[error("the pasted address belongs to another sign-in attempt (its state does not match); start again")]
    State,
    #[error("cannot keep the sign-in in {file}")]
    Save {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("terminal")]
    Terminal(#[from] std::io::Error),
}

/// What a finished sign-in saved.
#[derive(Debug)]
pub struct SignedIn {
    pub file: String,
    pub scope: String,
}

/// The device flow: prints where to go and the code to enter on `out`, then waits.
pub fn device(
    account: &OAuth2Config,
    user: &str,
    tls: Arc<ClientConfig>,
    out: &mut dyn Write,
) -> Result<SignedIn, LoginError> {
    needs_sign_in(account)?;
    if account.device_url.is_none() {
        return Err(LoginError::NoEndpoint {
            section: account.section.clone(),
            what: "device authorization endpoint",
            key: "device_url",
        });
    }
    let http = http_agent(account, tls);
    let client = client(account).map_err(LoginError::Token)?;
    let scopes = account.scopes.iter().map(|s| Scope::new(s.clone()));
    let mut request = client
        .exchange_device_code()
        .map_err(|e| LoginError::Token(configuration(account, e)))?
        .add_scopes(scopes);
    if let Some(jwt) = assertion(account).map_err(LoginError::Token)? {
        request = request
            .add_extra_param("client_assertion_type", assertion::ASSERTION_TYPE)
            .add_extra_param("client_assertion", jwt);
    }
    let details: oauth2::StandardDeviceAuthorizationResponse = request
        .request(&http)
        .map_err(|e| LoginError::Token(token_error(account, "the device sign-in", e)))?;
    writeln!(
        out,
        "To let followupd read and send mail as {user}:\n\
         \n  1. open {}\n  2. enter the code {}\n  3. sign in as {user} and accept\n\
         \nWaiting for you to finish (the code works for {} minutes)...",
        details.verification_uri().as_str(),
        details.user_code().secret(),
        details.expires_in().as_secs() / 60
    )?;
    out.flush()?;
    let mut poll = client.exchange_device_access_token(&details);
    if let Some(jwt) = assertion(account).map_err(LoginError::Token)? {
        poll = poll
            .add_extra_param("client_assertion_type", assertion::ASSERTION_TYPE)
            .add_extra_param("client_assertion", jwt);
    }
    let token = poll
        .request(&http, std::thread::sleep, None)
        .map_err(|e| LoginError::Token(device_error(account, e)))?;
    keep(account, &token)
}

/// The browser flow: prints the URL, reads the address the browser ended on from `input`.
pub fn browser(
    account: &OAuth2Config,
    user: &str,
    tls: Arc<ClientConfig>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<SignedIn, LoginError> {
    needs_sign_in(account)?;
    if account.authorize_url.is_none() {
        return Err(LoginError::NoEndpoint {
            section: account.section.clone(),
            what: "authorization endpoint",
            key: "authorize_url",
        });
    }
    let http = http_agent(account, tls);
    let redirect = RedirectUrl::new(account.redirect_uri.clone()).map_err(|e| {
        LoginError::Token(TokenError::BadAnswer {
            section: account.section.clone(),
            url: account.redirect_uri.clone(),
            reason: format!("redirect_uri is not a URL: {e}"),
        })
    })?;
    let client = client(account)
        .map_err(LoginError::Token)?
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .map_err(|e| LoginError::Token(configuration(account, e)))?
        .add_scopes(account.scopes.iter().map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge)
        // Google gives a refresh token only for offline access, and again only with consent.
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .add_extra_param("login_hint", user)
        .url();
    writeln!(
        out,
        "To let followupd read and send mail as {user}:\n\
         \n  1. open this address in any browser:\n\n     {url}\n\
         \n  2. sign in as {user} and accept\n  3. the browser then goes to {} and shows an \
         error page: that is expected.\n     Copy the whole address from its address bar and \
         paste it here.\n\nAddress: ",
        account.redirect_uri
    )?;
    out.flush()?;
    let mut line = String::new();
    input.read_line(&mut line)?;
    let pasted = oauth2::url::Url::parse(line.trim()).map_err(|_| LoginError::Pasted("code"))?;
    let param = |name: &str| {
        pasted
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        return Err(LoginError::Declined {
            error,
            description: param("error_description"),
        });
    }
    if param("state").as_deref() != Some(state.secret().as_str()) {
        return Err(LoginError::State);
    }
    let code = param("code").ok_or(LoginError::Pasted("code"))?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier);
    if let Some(jwt) = assertion(account).map_err(LoginError::Token)? {
        request = request
            .add_extra_param("client_assertion_type", assertion::ASSERTION_TYPE)
            .add_extra_param("client_assertion", jwt);
    }
    let token = request
        .request(&http)
        .map_err(|e| LoginError::Token(token_error(account, "the sign-in code", e)))?;
    keep(account, &token)
}

fn needs_sign_in(account: &OAuth2Config) -> Result<(), LoginError> {
    match account.grant {
        Grant::RefreshToken => Ok(()),
        Grant::ClientCredentials => Err(LoginError::NotNeeded {
            section: account.section.clone(),
        }),
    }
}

fn keep(
    account: &OAuth2Config,
    token: &oauth2::basic::BasicTokenResponse,
) -> Result<SignedIn, LoginError> {
    let Some(refresh) = token.refresh_token() else {
        return Err(LoginError::NoRefreshToken {
            section: account.section.clone(),
        });
    };
    let scope = token
        .scopes()
        .map(|s| {
            s.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let file = account.token_file.display().to_string();
    let _lock = saved::lock(&account.token_file).map_err(|source| LoginError::Save {
        file: file.clone(),
        source,
    })?;
    saved::write(
        &account.token_file,
        &SavedSignIn {
            refresh_token: refresh.secret().clone(),
            client_id: account.client_id.clone(),
            token_url: account.token_url.clone(),
            scope: scope.clone(),
            signed_in_at: crate::clock::stamp(chrono::Utc::now()),
            rotated_at: None,
        },
    )
    .map_err(|source| LoginError::Save {
        file: file.clone(),
        source,
    })?;
    Ok(SignedIn { file, scope })
}

fn configuration(account: &OAuth2Config, e: oauth2::ConfigurationError) -> TokenError {
    TokenError::BadAnswer {
        section: account.section.clone(),
        url: account.token_url.clone(),
        reason: e.to_string(),
    }
}

/// The device flow's own error type carries the same RFC 6749 fields.
fn device_error<RE: std::error::Error + 'static>(
    account: &OAuth2Config,
    e: oauth2::RequestTokenError<RE, oauth2::DeviceCodeErrorResponse>,
) -> TokenError {
    match e {
        oauth2::RequestTokenError::ServerResponse(response) => {
            let error = response.error().to_string();
            TokenError::Refused(Box::new(super::Refused {
                section: account.section.clone(),
                url: account.token_url.clone(),
                what: "the device sign-in",
                fix: super::fix_for(&error, account),
                error,
                description: response.error_description().cloned(),
            }))
        }
        oauth2::RequestTokenError::Request(e) => TokenError::Unreachable {
            section: account.section.clone(),
            url: account.token_url.clone(),
            reason: crate::errors::Chain(&e).to_string(),
        },
        oauth2::RequestTokenError::Parse(e, _) => TokenError::BadAnswer {
            section: account.section.clone(),
            url: account.token_url.clone(),
            reason: e.to_string(),
        },
        oauth2::RequestTokenError::Other(reason) => TokenError::BadAnswer {
            section: account.section.clone(),
            url: account.token_url.clone(),
            reason,
        },
    }
}
