//! How sure we are of who sent a message, from what the receiving server found.
//!
//! Anyone can write any `From:`. The receiving mail server checks SPF, DKIM and DMARC and
//! writes its findings into `Authentication-Results` (RFC 8601); followupd believes only the
//! server named by `[intake] trusted_authserv_id`, and of it only the topmost header it wrote
//! (see [`trusted_findings`]). `"microsoft365"` and `"google"` name the two big providers.
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
    /// Verified with strict alignment: the From domain itself signed (DKIM `header.d`) or
    /// passed SPF (`smtp.mailfrom`), not a parent or subdomain of it. What a staff reply needs
    /// unless `[staff] alignment = "relaxed"`.
    #[serde(skip)]
    pub strict: bool,
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
            strict: false,
        };
    }
    let Some(trusted) = intake.trusted_authserv_id.as_deref() else {
        return Verdict {
            level: Trust::Unverified,
            reason: "no [intake] trusted_authserv_id: the sender cannot be checked".into(),
            strict: false,
        };
    };
    let server = Server::of(trusted);
    let findings = trusted_findings(&headers, &server);
    let from_domain = from.address.rsplit_once('@').map_or("", |(_, d)| d);
    judge(findings.as_deref(), from_domain, server.name())
}

/// The receiving server whose findings count (`[intake] trusted_authserv_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// Names itself first in its Authentication-Results (`mx.example.com; spf=pass …`).
    Named(String),
    /// Exchange Online (`"microsoft365"`): writes its Authentication-Results with no
    /// authserv-id at all (`spf=pass (sender IP is …) smtp.mailfrom=…; dkim=pass …;
    /// dmarc=pass action=none header.from=…;compauth=pass reason=100`).
    Microsoft365,
}

impl Server {
    /// `"google"` is Gmail and Google Workspace (`mx.google.com`); `"microsoft365"` Exchange
    /// Online; anything else the authserv-id itself.
    pub fn of(configured: &str) -> Server {
        match configured.to_ascii_lowercase().as_str() {
            "microsoft365" | "office365" | "exchange-online" => Server::Microsoft365,
            "google" | "gmail" => Server::Named("mx.google.com".into()),
            _ => Server::Named(configured.to_string()),
        }
    }

    fn name(&self) -> &str {
        match self {
            Server::Named(id) => id,
            Server::Microsoft365 => "Exchange Online",
        }
    }

    fn wrote(&self, id: Option<&str>) -> bool {
        match (self, id) {
            (Server::Named(name), Some(id)) => id.eq_ignore_ascii_case(name),
            (Server::Microsoft365, None) => true,
            _ => false,
        }
    }
}

/// Which server wrote the topmost `Authentication-Results` of a message (the receiving server
/// writes above everything else): its authserv-id, or `None` for Exchange Online's id-less
/// header (`Some(None)`). None when the message has none.
pub fn topmost_authserv_id<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<Option<String>> {
    headers
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .find_map(|(_, value)| parse_results(value))
        .map(|(id, _)| id.map(|id| id.to_ascii_lowercase()))
}

/// The `trusted_authserv_id` that names a server as found by [`topmost_authserv_id`]: the
/// preset for the big providers, else the id itself.
pub fn suggested_setting(id: Option<&str>) -> String {
    match id {
        None => "microsoft365".into(),
        Some("mx.google.com") => "google".into(),
        Some(id) => id.to_string(),
    }
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

/// The findings of the trusted server: those of the topmost `Authentication-Results` it wrote,
/// and nothing else. The receiving server writes its results above everything that came with
/// the message, so the topmost header bearing its name is its own; any lower down, even one
/// with its exact name, came from outside (RFC 8601 5 has the server remove those, but one
/// that strips only exact matches leaves `mx.example.com 1` or a commented variant in place).
/// Reading only the one header means a method the server did not report is simply missing,
/// never filled in from below. None when the server wrote nothing.
fn trusted_findings(headers: &[(&str, &str)], server: &Server) -> Option<Vec<Finding>> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .filter_map(|(_, value)| parse_results(value))
        .find(|(id, _)| server.wrote(id.as_deref()))
        .map(|(_, found)| found)
}

fn judge(findings: Option<&[Finding]>, from_domain: &str, trusted: &str) -> Verdict {
    let Some(findings) = findings else {
        return Verdict {
            level: Trust::Unverified,
            reason: format!("no Authentication-Results from {trusted}"),
            strict: false,
        };
    };
    let result = |method: &str, results: &[&str]| {
        findings
            .iter()
            .filter(|f| f.method.eq_ignore_ascii_case(method))
            .find(|f| results.iter().any(|r| f.result.eq_ignore_ascii_case(r)))
    };
    if let Some(f) = result("dmarc", &["fail"]).or_else(|| result("compauth", &["fail"])) {
        return Verdict {
            level: Trust::Failed,
            reason: format!(
                "{trusted}: {}=fail{}",
                f.method,
                f.prop("header.from")
                    .map(|d| format!(" for {d}"))
                    .unwrap_or_default()
            ),
            strict: false,
        };
    }
    // The From domain itself signed, or sent from where it says it sends from: strict
    // alignment, what a staff reply needs by default.
    let dkim_domains: Vec<&str> = findings
        .iter()
        .filter(|f| f.method.eq_ignore_ascii_case("dkim") && f.result.eq_ignore_ascii_case("pass"))
        .filter_map(|f| {
            f.prop("header.d").or_else(|| {
                f.prop("header.i")
                    .and_then(|i| i.rsplit_once('@').map(|(_, d)| d))
            })
        })
        .collect();
    let spf_domains: Vec<&str> = findings
        .iter()
        .filter(|f| f.method.eq_ignore_ascii_case("spf") && f.result.eq_ignore_ascii_case("pass"))
        .filter_map(|f| {
            f.prop("smtp.mailfrom")
                .map(|m| m.rsplit_once('@').map_or(m, |(_, d)| d))
        })
        .collect();
    let strict = dkim_domains
        .iter()
        .chain(&spf_domains)
        .any(|d| same_domain(d, from_domain));
    // A DMARC pass counts only for the domain it names, and only when it names it: a message
    // with two From domains, or results copied from another message, verify nothing.
    if let Some(f) = result("dmarc", &["pass"]) {
        if f.prop("header.from")
            .is_some_and(|d| same_domain(d, from_domain))
        {
            return verified(format!("{trusted}: dmarc=pass for {from_domain}"), strict);
        }
    }
    // Exchange Online's composite check passes mail from domains without a DMARC policy
    // (`dmarc=bestguesspass`) that it judged genuine, naming the From domain it judged.
    if let Some(f) = result("compauth", &["pass"]) {
        let judged =
            result("dmarc", &["pass", "bestguesspass", "none"]).and_then(|d| d.prop("header.from"));
        if judged.is_some_and(|d| same_domain(d, from_domain)) {
            let reason = f
                .prop("reason")
                .map(|r| format!(" reason={r}"))
                .unwrap_or_default();
            return verified(
                format!("{trusted}: compauth=pass{reason} for {from_domain}"),
                strict,
            );
        }
    }
    if let Some(d) = dkim_domains.iter().find(|d| aligned(d, from_domain)) {
        return verified(
            format!("{trusted}: dkim=pass aligned (header.d={d})"),
            strict,
        );
    }
    if let Some(d) = spf_domains.iter().find(|d| aligned(d, from_domain)) {
        return verified(
            format!("{trusted}: spf=pass aligned (smtp.mailfrom={d})"),
            strict,
        );
    }
    Verdict {
        level: Trust::Unverified,
        reason: format!("{trusted}: no DKIM or SPF pass aligned with {from_domain}"),
        strict: false,
    }
}

fn verified(reason: String, strict: bool) -> Verdict {
    Verdict {
        level: Trust::Verified,
        reason,
        strict,
    }
}

fn same_domain(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('.');
    let b = b.trim_end_matches('.');
    !a.is_empty() && a.eq_ignore_ascii_case(b)
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
/// the authserv-id (a version after it, `mx.example.com 1;`, is allowed and ignored) and each
/// finding. Exchange Online writes no authserv-id: its first part is already a finding, and
/// the id is None. None when the value is not a result header at all.
fn parse_results(value: &str) -> Option<(Option<String>, Vec<Finding>)> {
    let text = strip_comments(value);
    let mut parts = text.split(';').peekable();
    let first = parts.peek()?.split_whitespace().next()?.to_string();
    let id = if first.contains('=') {
        None
    } else {
        parts.next();
        Some(first)
    };
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
    fn only_the_topmost_header_of_the_trusted_server_counts_nothing_below_it() {
        // The server found no DKIM and said so only for SPF; a forged header below it (with a
        // version, a comment, or the exact name) must not fill in the missing method.
        for forged in [
            "mx.example.net 1; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",
            "mx.example.net (trusted); dkim=pass header.d=example.com",
            "MX.EXAMPLE.NET; dmarc=pass header.from=example.com",
        ] {
            let v = level(
                &[
                    (
                        "Authentication-Results",
                        "mx.example.net; spf=softfail smtp.mailfrom=evil.example",
                    ),
                    ("Received", "from relay.evil.example by mx.example.net"),
                    ("Authentication-Results", forged),
                ],
                Some("mx.example.net"),
            );
            assert_eq!(v.level, Trust::Unverified, "{forged}: {}", v.reason);
        }
        // With no header of its own at all, the first one bearing its name is taken (a server
        // that never strips is misconfigured; nothing better can be done).
        let v = level(
            &[(
                "Authentication-Results",
                "mx.example.net 1; dkim=pass header.d=example.com",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(
            v.level,
            Trust::Verified,
            "a version after the id is allowed"
        );
    }

    #[test]
    fn a_dmarc_pass_verifies_only_the_domain_it_names() {
        for ar in [
            "mx.example.net; dmarc=pass",
            "mx.example.net; dmarc=pass header.from=evil.example",
            "mx.example.net; dmarc=pass header.from=mail.example.com",
        ] {
            let v = level(&[("Authentication-Results", ar)], Some("mx.example.net"));
            assert_eq!(v.level, Trust::Unverified, "{ar}: {}", v.reason);
        }
    }

    #[test]
    fn strict_alignment_is_the_from_domain_itself() {
        let strict = level(
            &[(
                "Authentication-Results",
                "mx.example.net; dkim=pass header.d=example.com",
            )],
            Some("mx.example.net"),
        );
        assert!(strict.strict);
        let relaxed = level(
            &[(
                "Authentication-Results",
                "mx.example.net; dkim=pass header.d=mail.example.com; dmarc=pass header.from=example.com",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(relaxed.level, Trust::Verified);
        assert!(
            !relaxed.strict,
            "a subdomain signed, not example.com itself"
        );
    }

    /// Headers as Exchange Online writes them on a message into a Microsoft 365 mailbox.
    #[test]
    fn the_microsoft365_preset_reads_exchange_onlines_results_without_an_authserv_id() {
        let headers = [
            (
                "Authentication-Results",
                "spf=pass (sender IP is 209.85.128.41)\r\n smtp.mailfrom=example.com; dkim=pass (signature was verified)\r\n header.d=example.com;dmarc=pass action=none\r\n header.from=example.com;compauth=pass reason=100",
            ),
            ("Received-SPF", "Pass (protection.outlook.com: domain of example.com designates 209.85.128.41 as permitted sender)"),
            (
                "ARC-Authentication-Results",
                "i=1; mx.microsoft.com 1; spf=pass smtp.mailfrom=evil.example; dmarc=pass action=none header.from=example.com",
            ),
            (
                "Authentication-Results",
                "spf=pass smtp.mailfrom=evil.example; dmarc=pass header.from=evil.example",
            ),
        ];
        let v = level(&headers, Some("microsoft365"));
        assert_eq!(v.level, Trust::Verified, "{}", v.reason);
        assert!(v.reason.contains("Exchange Online"), "{}", v.reason);
        // No DMARC policy: composite authentication decides, for the domain it judged.
        let v = level(
            &[(
                "Authentication-Results",
                "spf=none (sender IP is 203.0.113.9) smtp.mailfrom=example.com; dkim=none (message not signed) header.d=none;dmarc=bestguesspass action=none header.from=example.com;compauth=pass reason=109",
            )],
            Some("microsoft365"),
        );
        assert_eq!(v.level, Trust::Verified, "{}", v.reason);
        assert!(
            v.reason.contains("compauth=pass reason=109"),
            "{}",
            v.reason
        );
        let v = level(
            &[(
                "Authentication-Results",
                "spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=example.com; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=example.com;compauth=fail reason=000",
            )],
            Some("microsoft365"),
        );
        assert_eq!(v.level, Trust::Failed, "{}", v.reason);
        // An id-less header is not a named server's.
        let v = level(
            &[(
                "Authentication-Results",
                "dmarc=pass header.from=example.com",
            )],
            Some("mx.example.net"),
        );
        assert_eq!(v.level, Trust::Unverified);
    }

    /// Headers as Gmail writes them on a message into a Gmail or Workspace mailbox.
    #[test]
    fn the_google_preset_reads_gmails_results() {
        let headers = [
            ("ARC-Seal", "i=1; a=rsa-sha256; t=1764000000; cv=none; d=google.com; s=arc-20240605; b=x"),
            (
                "ARC-Authentication-Results",
                "i=1; mx.google.com; dkim=pass header.i=@example.com header.s=s1 header.b=abc; spf=pass (google.com: domain of ann@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=ann@example.com; dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com",
            ),
            (
                "Authentication-Results",
                "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=s1 header.b=abc;\r\n       spf=pass (google.com: domain of ann@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=ann@example.com;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com",
            ),
        ];
        let v = level(&headers, Some("google"));
        assert_eq!(v.level, Trust::Verified, "{}", v.reason);
        assert!(v.strict);
        assert!(v.reason.contains("mx.google.com"), "{}", v.reason);
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
