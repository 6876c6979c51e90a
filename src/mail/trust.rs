//! How sure we are of who sent a message, from what the receiving server found.
//!
//! Anyone can write any `From:`. The receiving mail server checks SPF, DKIM and DMARC and
//! writes its findings into `Authentication-Results` (RFC 8601); followupd believes only the
//! server named by `[intake] trusted_authserv_id`, and for each method only its topmost
//! result (see [`trusted_findings`]).
//! The server's spam verdict (`X-Spam-Flag: YES` and friends, `[intake] spam_headers`) counts
//! as a failure too.

use serde::Serialize;

use super::Person;
use crate::config::IntakeConfig;

/// How far a message's sender is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// DKIM or SPF passed aligned with the From domain, or DMARC passed, at the trusted server.
    Verified,
    /// Nothing proves the sender (no trusted server configured, or it found nothing).
    Unverified,
    /// DMARC failed at the trusted server, or it judged the message spam.
    Failed,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Verified => "verified",
            Trust::Unverified => "unverified",
            Trust::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Trust> {
        [Trust::Verified, Trust::Unverified, Trust::Failed]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

impl std::fmt::Display for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trust level and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub level: Trust,
    pub reason: String,
}

/// One `method=result` finding with its properties (`header.d=example.com`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    method: String,
    result: String,
    props: Vec<(String, String)>,
}

impl Finding {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Judges a message from its header fields in order (name, raw value).
pub fn assess<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    from: &Person,
    intake: &IntakeConfig,
) -> Verdict {
    let headers: Vec<(&str, &str)> = headers.into_iter().collect();
    if let Some(hit) = spam_verdict(headers.iter().copied(), intake) {
        return Verdict {
            level: Trust::Failed,
            reason: format!("the receiving server's spam verdict ({hit})"),
        };
    }
    let Some(trusted) = intake.trusted_authserv_id.as_deref() else {
        return Verdict {
            level: Trust::Unverified,
            reason: "no [intake] trusted_authserv_id: the sender cannot be checked".into(),
        };
    };
    let findings = trusted_findings(&headers, trusted);
    let from_domain = from.address.rsplit_once('@').map_or("", |(_, d)| d);
    judge(&findings, from_domain, trusted)
}

/// The receiving server's spam verdict (`[intake] spam_headers`), as `Name: value`, if it gave
/// one. The one place that reads it: the sender check fails on it, and the classifier
/// (`src/mail/classify.rs`) makes such mail junk.
pub fn spam_verdict<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    intake: &IntakeConfig,
) -> Option<String> {
    let headers: Vec<(&str, &str)> = headers.into_iter().collect();
    intake.spam_headers.iter().find_map(|rule| {
        headers
            .iter()
            .find(|(name, value)| rule.matches(name, value))
            .map(|(name, value)| format!("{name}: {}", value.trim()))
    })
}

/// The findings of the trusted server: every `Authentication-Results` that names it, where
/// for each method (dkim, spf, dmarc, …) only the topmost header that reports it counts. The
/// trusted server writes its results above whatever came with the message, and RFC 8601 5
/// has it remove any that claim its name from outside; should one slip through, the server's
/// own result for the same method, above it, still decides.
fn trusted_findings(headers: &[(&str, &str)], trusted: &str) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("Authentication-Results") {
            continue;
        }
        let Some((id, found)) = parse_results(value) else {
            continue;
        };
        if !id.eq_ignore_ascii_case(trusted) {
            continue;
        }
        let earlier: Vec<String> = findings.iter().map(|f| f.method.clone()).collect();
        findings.extend(found.into_iter().filter(|f| !earlier.contains(&f.method)));
    }
    findings
}

fn judge(findings: &[Finding], from_domain: &str, trusted: &str) -> Verdict {
    let result = |method: &str, result: &str| {
        findings
            .iter()
            .filter(|f| f.method.eq_ignore_ascii_case(method))
            .find(|f| f.result.eq_ignore_ascii_case(result))
    };
    if let Some(f) = result("dmarc", "fail") {
        return Verdict {
            level: Trust::Failed,
            reason: format!(
                "{trusted}: dmarc=fail{}",
                f.prop("header.from")
                    .map(|d| format!(" for {d}"))
                    .unwrap_or_default()
            ),
        };
    }
    // A pass counts for the domain it names (a message with two From domains, or results
    // copied from another message, must not verify the one we answer).
    if let Some(f) = result("dmarc", "pass") {
        match f.prop("header.from") {
            Some(d) if !aligned(d, from_domain) => {}
            _ => return verified(format!("{trusted}: dmarc=pass")),
        }
    }
    for f in findings
        .iter()
        .filter(|f| f.method.eq_ignore_ascii_case("dkim") && f.result.eq_ignore_ascii_case("pass"))
    {
        let signer = f.prop("header.d").or_else(|| {
            f.prop("header.i")
                .and_then(|i| i.rsplit_once('@').map(|(_, d)| d))
        });
        if let Some(d) = signer.filter(|d| aligned(d, from_domain)) {
            return verified(format!("{trusted}: dkim=pass aligned (header.d={d})"));
        }
    }
    for f in findings
        .iter()
        .filter(|f| f.method.eq_ignore_ascii_case("spf") && f.result.eq_ignore_ascii_case("pass"))
    {
        let envelope = f
            .prop("smtp.mailfrom")
            .map(|m| m.rsplit_once('@').map_or(m, |(_, d)| d));
        if let Some(d) = envelope.filter(|d| aligned(d, from_domain)) {
            return verified(format!("{trusted}: spf=pass aligned (smtp.mailfrom={d})"));
        }
    }
    Verdict {
        level: Trust::Unverified,
        reason: if findings.is_empty() {
            format!("no Authentication-Results from {trusted}")
        } else {
            format!("{trusted}: no DKIM or SPF pass aligned with {from_domain}")
        },
    }
}

fn verified(reason: String) -> Verdict {
    Verdict {
        level: Trust::Verified,
        reason,
    }
}

/// Relaxed alignment (RFC 7489 3.1): the same domain, or one a subdomain of the other.
fn aligned(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    !a.is_empty()
        && !b.is_empty()
        && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// `mx.example.com; dkim=pass header.d=example.com (comment); spf=fail smtp.mailfrom=x@y`:
/// the authserv-id and each finding. None when the value is not a result header at all.
fn parse_results(value: &str) -> Option<(String, Vec<Finding>)> {
    let text = strip_comments(value);
    let mut parts = text.split(';');
    let id = parts.next()?.split_whitespace().next()?.to_string();
    let mut findings = Vec::new();
    for part in parts {
        let mut words = part.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let method = method
            .split('/')
            .next()
            .unwrap_or(method)
            .to_ascii_lowercase();
        let props = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_string()))
            .collect();
        findings.push(Finding {
            method,
            result: result.trim_matches('"').to_ascii_lowercase(),
            props,
        });
    }
    Some((id, findings))
}

/// Removes RFC 5322 comments (nested parentheses), keeping quoted strings whole.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeaderRule;

    fn intake(trusted: Option<&str>) -> IntakeConfig {
        IntakeConfig {
            trusted_authserv_id: trusted.map(str::to_string),
            ..IntakeConfig::default()
        }
    }

    fn ann() -> Person {
        Person {
            address: "ann@example.com".into(),
            name: None,
        }
    }

    fn level(headers: &[(&str, &str)], trusted: Option<&str>) -> Verdict {
        assess(headers.iter().copied(), &ann(), &intake(trusted))
    }

    #[test]
    fn without_a_trusted_server_everyone_is_unverified() {
        let v = level(
            &[(
                "Authentication-Results",
                "mx.example.net; dkim=pass header.d=example.com",
            )],
            None,
        );
        assert_eq!(v.level, Trust::Unverified);
        assert!(v.reason.contains("trusted_authserv_id"), "{}", v.reason);
    }

    #[test]
    fn an_aligned_dkim_or_spf_pass_or_dmarc_pass_verifies() {
        for ar in [
            "mx.example.net; dkim=pass (2048-bit key) header.d=example.com header.s=s1",
            "mx.example.net; dkim=pass header.i=@mail.example.com",
            "mx.example.net;\r\n spf=pass (sender SPF authorized) smtp.mailfrom=bounce@example.com",
            "mx.example.net 1; dmarc=pass (p=reject) header.from=example.com",
        ] {
            let v = level(&[("Authentication-Results", ar)], Some("mx.example.net"));
            assert_eq!(v.level, Trust::Verified, "{ar}: {}", v.reason);
        }
    }

    #[test]
    fn a_pass_for_another_domain_proves_nothing_about_from() {
        let v = level(
            &[(
                "Authentication-Results",
                "mx.example.net; dkim=pass header.d=mailer.example; spf=pass smtp.mailfrom=x@mailer.example",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(v.level, Trust::Unverified, "{}", v.reason);
        assert!(
            v.reason.contains("no DKIM or SPF pass aligned"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn dmarc_fail_at_the_trusted_server_fails() {
        let v = level(
            &[(
                "Authentication-Results",
                "mx.example.net; dkim=none; spf=softfail smtp.mailfrom=ann@example.com; dmarc=fail (p=none) header.from=example.com",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(v.level, Trust::Failed);
        assert!(v.reason.contains("dmarc=fail"), "{}", v.reason);
    }

    #[test]
    fn results_from_an_untrusted_server_are_ignored_and_the_servers_own_come_first() {
        let forged = level(
            &[(
                "Authentication-Results",
                "evil.example; dmarc=pass header.from=example.com",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(forged.level, Trust::Unverified);
        // Postfix with a milter and Dovecot's LMTP: two Received above the server's results.
        let delivered = level(
            &[
                ("Return-Path", "<ann@example.com>"),
                ("Received", "from mx.example.net by mx.example.net with LMTP"),
                ("Received", "from mail.example.com by mx.example.net (Postfix)"),
                (
                    "Authentication-Results",
                    "mx.example.net; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com",
                ),
            ],
            Some("mx.example.net"),
        );
        assert_eq!(delivered.level, Trust::Verified);
        // A forged one with our server's name that slipped through, below the real one: the
        // real result for each method decides.
        let smuggled = level(
            &[
                ("Received", "from relay.evil.example by mx.example.net"),
                (
                    "Authentication-Results",
                    "mx.example.net; spf=pass smtp.mailfrom=evil.example; dmarc=fail header.from=example.com",
                ),
                (
                    "Authentication-Results",
                    "mx.example.net; dmarc=pass header.from=example.com; dkim=pass header.d=example.com",
                ),
            ],
            Some("mx.example.net"),
        );
        assert_eq!(smuggled.level, Trust::Failed, "{}", smuggled.reason);
        let other_domain = level(
            &[(
                "Authentication-Results",
                "mx.example.net; dmarc=pass header.from=evil.example",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(other_domain.level, Trust::Unverified);
        let dmarc_fail_hidden_by_comment = level(
            &[(
                "Authentication-Results",
                "mx.example.net; (dmarc=pass) dmarc=fail",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(dmarc_fail_hidden_by_comment.level, Trust::Failed);
    }

    #[test]
    fn the_servers_spam_verdict_fails_whatever_else_passed() {
        let v = level(
            &[
                ("X-Spam-Flag", " YES"),
                (
                    "Authentication-Results",
                    "mx.example.net; dmarc=pass header.from=example.com",
                ),
            ],
            Some("mx.example.net"),
        );
        assert_eq!(v.level, Trust::Failed);
        assert!(v.reason.contains("X-Spam-Flag: YES"), "{}", v.reason);
        let custom = IntakeConfig {
            spam_headers: vec![HeaderRule::parse("X-Junk: true").expect("rule")],
            ..intake(None)
        };
        let v = assess([("X-Junk", "True")], &ann(), &custom);
        assert_eq!(v.level, Trust::Failed);
        let clean = assess([("X-Spam-Flag", "NO")], &ann(), &intake(None));
        assert_eq!(clean.level, Trust::Unverified);
    }

    #[test]
    fn relaxed_alignment_accepts_subdomains_both_ways() {
        assert!(aligned("example.com", "example.com."));
        assert!(aligned("mail.example.com", "example.com"));
        assert!(aligned("example.com", "eu.example.com"));
        assert!(!aligned("example.com", "badexample.com"));
        assert!(!aligned("", "example.com"));
    }
}
