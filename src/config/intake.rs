//! `[intake]` and `[trust]`: what is read and how far a sender must be proven.

use super::*;

/// How incoming mail is screened before anything acts on it.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Larger mail is recorded with its headers only.
    pub max_message_size: u64,
    /// Senders that never read replies (no-reply@ and friends): mail whose From, Sender or
    /// Return-Path matches is bulk.
    pub noreply_patterns: Vec<AddressPattern>,
    pub strangers: StrangerPolicy,
    /// The authserv-id of the receiving server whose `Authentication-Results` we believe.
    pub trusted_authserv_id: Option<String>,
    /// Headers by which the receiving server says a message is spam.
    pub spam_headers: Vec<HeaderRule>,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            noreply_patterns: DEFAULT_NOREPLY
                .iter()
                .map(|p| AddressPattern::new(p))
                .collect(),
            strangers: StrangerPolicy::NewIncident,
            trusted_authserv_id: None,
            spam_headers: DEFAULT_SPAM_HEADERS
                .iter()
                .filter_map(|r| HeaderRule::parse(r))
                .collect(),
        }
    }
}

/// `X-Spam-Flag: YES`: a header name and the start of its value, both case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub name: String,
    pub value_prefix: String,
}

impl HeaderRule {
    /// Reads `Name: value`; None without a colon or a name.
    pub fn parse(text: &str) -> Option<HeaderRule> {
        let (name, value) = text.split_once(':')?;
        let name = name.trim();
        (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| HeaderRule {
            name: name.to_string(),
            value_prefix: value.trim().to_lowercase(),
        })
    }

    pub fn matches(&self, name: &str, value: &str) -> bool {
        name.eq_ignore_ascii_case(&self.name)
            && value.trim().to_lowercase().starts_with(&self.value_prefix)
    }
}

/// The spam verdicts of SpamAssassin and Rspamd, as receiving servers write them.
pub const DEFAULT_SPAM_HEADERS: &[&str] = &[
    "X-Spam-Flag: YES",
    "X-Spam-Status: Yes",
    "X-Spam: Yes",
    "X-Spam-Action: reject",
    "X-Spam-Action: add header",
    "X-Spam-Action: rewrite subject",
];

pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1000 * 1000;

/// Local parts that announce nobody reads the replies. `*` matches any run of characters.
pub const DEFAULT_NOREPLY: &[&str] = &[
    "noreply*@*",
    "no-reply*@*",
    "no_reply*@*",
    "donotreply*@*",
    "do-not-reply*@*",
    "do_not_reply*@*",
    "*-noreply@*",
    "*.noreply@*",
    "bounce*@*",
    "bounces*@*",
    "*-bounces@*",
];

/// What to do with mail that points at an incident its sender does not take part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrangerPolicy {
    /// It becomes its own incident (and is acknowledged like any new complaint).
    NewIncident,
    /// It is kept for staff in quarantine; nothing is sent.
    Hold,
}

/// A case-insensitive address glob: `*` matches any run of characters, nothing else is special.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPattern(String);

impl AddressPattern {
    pub fn new(pattern: &str) -> AddressPattern {
        AddressPattern(pattern.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `address` must already be lower-cased.
    pub fn matches(&self, address: &str) -> bool {
        let mut pieces = self.0.split('*');
        let Some(first) = pieces.next() else {
            return false;
        };
        let Some(mut rest) = address.strip_prefix(first) else {
            return false;
        };
        let pieces: Vec<&str> = pieces.collect();
        let Some((last, middle)) = pieces.split_last() else {
            return rest.is_empty(); // no `*` at all: exact match
        };
        for piece in middle {
            match rest.find(piece) {
                Some(i) => rest = &rest[i + piece.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntake {
    pub(super) max_message_size: Option<Spanned<String>>,
    pub(super) noreply_patterns: Option<Vec<Spanned<String>>>,
    pub(super) strangers: Option<Spanned<String>>,
    pub(super) trusted_authserv_id: Option<Spanned<String>>,
    pub(super) spam_headers: Option<Vec<Spanned<String>>>,
}

/// What mail gets, by how far the receiving server proved its sender (`[trust]`). A verified
/// sender is always answered in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Nothing proves the sender (or no `[intake] trusted_authserv_id` is set).
    pub unverified: Treatment,
    /// DMARC failed at the trusted server, or it judged the mail spam.
    pub failed: Treatment,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            unverified: Treatment::Plain,
            failed: Treatment::Hold,
        }
    }
}

/// How a sender's mail is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Answered as written: the mail may quote them, and they may set the pace, copy people in
    /// and clear an undeliverable mark.
    Full,
    /// The incident opens and is answered, but no mail repeats a word they wrote, and they
    /// cannot set the pace, add participants or clear an undeliverable mark.
    Plain,
    /// Recorded and kept in quarantine for staff; nothing is sent.
    Hold,
}

impl Treatment {
    pub fn as_str(self) -> &'static str {
        match self {
            Treatment::Full => "full",
            Treatment::Plain => "plain",
            Treatment::Hold => "hold",
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrust {
    pub(super) unverified: Option<Spanned<String>>,
    pub(super) failed: Option<Spanned<String>>,
}

/// `"25MB"`, `"500 KB"`, `"1MiB"`, `"1048576"`: decimal units are powers of 1000, binary of 1024.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "kib" => 1024,
        "mb" | "m" => 1000 * 1000,
        "mib" => 1024 * 1024,
        "gb" | "g" => 1000 * 1000 * 1000,
        "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

impl Validator<'_> {
    pub(super) fn intake(&self, raw: RawIntake) -> Result<IntakeConfig, ConfigError> {
        let mut intake = IntakeConfig::default();
        if let Some(size) = raw.max_message_size {
            intake.max_message_size = match parse_size(size.get_ref()) {
                Some(n) if n >= 1024 => n,
                _ => {
                    return self.err(
                        size.span(),
                        format!(
                            "[intake] max_message_size `{}` is not a size of at least 1 KB; \
                             write it like \"25MB\" or \"500KB\"",
                            size.get_ref()
                        ),
                    )
                }
            };
        }
        if let Some(patterns) = raw.noreply_patterns {
            let mut parsed = Vec::new();
            for p in patterns {
                if !p.get_ref().contains('@') {
                    return self.err(
                        p.span(),
                        format!(
                            "[intake] noreply pattern `{}` has no `@`; patterns match whole \
                             addresses, like \"noreply*@*\"",
                            p.get_ref()
                        ),
                    );
                }
                parsed.push(AddressPattern::new(p.get_ref()));
            }
            intake.noreply_patterns = parsed;
        }
        if let Some(strangers) = raw.strangers {
            intake.strangers = match strangers.get_ref().as_str() {
                "new-incident" => StrangerPolicy::NewIncident,
                "hold" => StrangerPolicy::Hold,
                other => {
                    return self.err(
                        strangers.span(),
                        format!(
                        "[intake] strangers = \"{other}\" is not one of \"new-incident\", \"hold\""
                    ),
                    )
                }
            };
        }
        if let Some(id) = raw.trusted_authserv_id {
            let text = id.get_ref().trim();
            if text.is_empty() || text.contains(char::is_whitespace) || text.contains(';') {
                return self.err(
                    id.span(),
                    format!(
                        "[intake] trusted_authserv_id `{}` is not an authserv-id; it is the first \
                         word of your mail server's Authentication-Results header, like \
                         \"mx.example.com\"",
                        id.get_ref()
                    ),
                );
            }
            intake.trusted_authserv_id = Some(text.to_string());
        }
        if let Some(rules) = raw.spam_headers {
            let mut parsed = Vec::new();
            for rule in rules {
                match HeaderRule::parse(rule.get_ref()) {
                    Some(r) => parsed.push(r),
                    None => {
                        return self.err(
                            rule.span(),
                            format!(
                                "[intake] spam header `{}` is not `Name: value`, like \
                                 \"X-Spam-Flag: YES\"",
                                rule.get_ref()
                            ),
                        )
                    }
                }
            }
            intake.spam_headers = parsed;
        }
        Ok(intake)
    }

    pub(super) fn trust(&self, raw: RawTrust) -> Result<TrustPolicy, ConfigError> {
        let mut policy = TrustPolicy::default();
        for (key, value, slot) in [
            ("unverified", raw.unverified, &mut policy.unverified),
            ("failed", raw.failed, &mut policy.failed),
        ] {
            let Some(value) = value else { continue };
            *slot = match value.get_ref().as_str() {
                "full" => Treatment::Full,
                "plain" => Treatment::Plain,
                "hold" => Treatment::Hold,
                other => {
                    return self.err(
                        value.span(),
                        format!(
                        "[trust] {key} = \"{other}\" is not one of \"full\", \"plain\", \"hold\""
                    ),
                    )
                }
            };
        }
        Ok(policy)
    }
}
