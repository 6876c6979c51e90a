//! SASL for bearer tokens: what the client says in XOAUTH2 and OAUTHBEARER, and what a refusal
//! means. Pure functions, shared by IMAP `AUTHENTICATE` and SMTP `AUTH`.
//!
//! Both mechanisms refuse in two steps (RFC 7628 3.2.2; Google's and Microsoft's XOAUTH2 do the
//! same): the server first sends a challenge carrying a JSON error, the client must answer it
//! (an empty response for XOAUTH2, a single 0x01 for OAUTHBEARER), and only then comes the
//! final NO / 535. A client that does not answer hangs until the server gives up.

use serde::Deserialize;

use crate::config::Mechanism;

/// The client's first message: the user and the bearer token.
pub fn initial_response(mechanism: Mechanism, user: &str, token: &str) -> String {
    match mechanism {
        // https://developers.google.com/gmail/imap/xoauth2-protocol
        Mechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
        // RFC 7628 3.1: a GS2 header naming the authorization identity, then key/values.
        Mechanism::Oauthbearer => format!("n,a={},\x01auth=Bearer {token}\x01\x01", gs2(user)),
    }
}

/// The answer to an error challenge, after which the server sends its final refusal.
pub fn answer_to_error(mechanism: Mechanism) -> &'static [u8] {
    match mechanism {
        Mechanism::Xoauth2 => b"",
        Mechanism::Oauthbearer => b"\x01",
    }
}

/// RFC 5801 saslname: `,` and `=` are escaped.
fn gs2(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[derive(Deserialize)]
struct Challenge {
    status: Option<String>,
    scope: Option<String>,
    schemes: Option<String>,
}

/// A readable account of the JSON an error challenge carries (`{"status":"401",
/// "schemes":"bearer","scope":"https://mail.google.com/"}`): the status and, when the server
/// names it, the scope it wants. Bytes that are not that JSON are shown as text, shortened.
pub fn describe_error_challenge(challenge: &[u8]) -> String {
    match serde_json::from_slice::<Challenge>(challenge) {
        Ok(c) => {
            let mut parts = Vec::new();
            if let Some(status) = c.status {
                parts.push(format!("status {status}"));
            }
            if let Some(scope) = c.scope.filter(|s| !s.is_empty()) {
                parts.push(format!("wants scope {scope}"));
            }
            if let Some(schemes) = c.schemes {
                parts.push(format!("schemes {schemes}"));
            }
            parts.join(", ")
        }
        Err(_) => {
            let text = String::from_utf8_lossy(challenge);
            text.chars().take(200).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_names_the_mailbox_and_the_bearer_token() {
        assert_eq!(
            initial_response(Mechanism::Xoauth2, "support@example.com", "ya29.tok"),
            "user=support@example.com\x01auth=Bearer ya29.tok\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_has_a_gs2_header_with_the_user_escaped() {
        assert_eq!(
            initial_response(Mechanism::Oauthbearer, "a,b=c@example.com", "tok"),
            "n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer tok\x01\x01"
        );
    }

    #[test]
    fn an_error_challenge_is_answered_as_each_mechanism_requires() {
        assert_eq!(answer_to_error(Mechanism::Xoauth2), b"");
        assert_eq!(answer_to_error(Mechanism::Oauthbearer), b"\x01");
    }

    #[test]
    fn an_error_challenge_reads_as_words() {
        let dovecot = br#"{"status":"401","schemes":"bearer","scope":"mail"}"#;
        assert_eq!(
            describe_error_challenge(dovecot),
            "status 401, wants scope mail, schemes bearer"
        );
        assert_eq!(describe_error_challenge(b"not json"), "not json");
        let long = vec![b'x'; 1000];
        assert_eq!(describe_error_challenge(&long).len(), 200);
    }
}
