//! RFC 7523 client assertions: the app proves itself with its certificate's key instead of a
//! secret (Entra ID "certificate credentials"): a short-lived JWT, PS256-signed, naming the
//! certificate by its SHA-256 thumbprint (`x5t#S256`) and the token endpoint as audience.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion may be used: Entra ID asks for minutes, not hours.
const LIFETIME_SECS: i64 = 600;

/// A signed assertion for `client_id` at `token_url`, issued at `now` (Unix seconds), by the
/// key of the certificate whose `x5t#S256` is `thumbprint`.
pub fn client_assertion(
    key: &RsaKeyPair,
    thumbprint: &str,
    client_id: &str,
    token_url: &str,
    now: i64,
) -> Result<String, String> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let rng = SystemRandom::new();
    let mut jti = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut jti).map_err(|_| "no randomness".to_string())?;
    let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint});
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": b64(&jti),
        "nbf": now,
        "iat": now,
        "exp": now + LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PSS_SHA256,
        &rng,
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "the key could not sign".to_string())?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

#[cfg(test)]
mod tests {
    use ring::signature::{KeyPair, RsaKeyPair, UnparsedPublicKey, RSA_PSS_2048_8192_SHA256};

    use super::*;

    /// A 2048-bit RSA key in PKCS#8, made once with `openssl genpkey -algorithm RSA`.
    fn key() -> RsaKeyPair {
        let pem = include_str!("../../tests/fixtures/oauth2/client.key");
        use rustls_pki_types::pem::PemObject;
        let der =
            rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).expect("PEM key");
        RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("RSA key")
    }

    #[test]
    fn an_assertion_is_signed_for_the_token_endpoint_and_names_the_certificate() {
        let pair = key();
        // DER RSAPublicKey, as the certificate carries it.
        let public = pair.public_key().as_ref().to_vec();
        let jwt = client_assertion(
            &pair,
            "THUMB",
            "app-id",
            "https://login.example/t",
            1_800_000_000,
        )
        .expect("signed");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .expect("base64url")
        };
        let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).expect("json");
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).expect("json");
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["x5t#S256"], "THUMB");
        assert_eq!(claims["aud"], "https://login.example/t");
        assert_eq!(claims["iss"], "app-id");
        assert_eq!(claims["sub"], "app-id");
        assert_eq!(claims["exp"], 1_800_000_600);
        let verifier = UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &public);
        let signed = format!("{}.{}", parts[0], parts[1]);
        verifier
            .verify(signed.as_bytes(), &decode(parts[2]))
            .expect("the signature verifies with the certificate's public key");
        let mut forged = signed.clone();
        forged.push('x');
        assert!(verifier
            .verify(forged.as_bytes(), &decode(parts[2]))
            .is_err());
    }
}
