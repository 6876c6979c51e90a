//! `[wording]`, `[language]` and `[replies]`: how mail is worded and replies are read.

use super::*;

/// A kind of fact and the words that introduce it in a customer's text ("order", "order no.",
/// "Bestellnummer"). The value is the next word with at least `crate::mail::facts::MIN_DIGITS` digits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRule {
    pub name: String,
    /// Lower case.
    pub words: Vec<String>,
}

/// The shipped rules: order and invoice numbers, in English and German.
pub fn default_fact_rules() -> Vec<FactRule> {
    let rule = |name: &str, words: &[&str]| FactRule {
        name: name.to_string(),
        words: words.iter().map(|w| w.to_string()).collect(),
    };
    vec![
        rule(
            "order",
            &[
                "order",
                "order number",
                "bestellung",
                "bestellnummer",
                "auftrag",
                "auftragsnummer",
                "commande",
                "numéro de commande",
                "pedido",
                "número de pedido",
                "ordine",
                "numero d'ordine",
                "bestelling",
                "bestelnummer",
                "ordernummer",
                "encomenda",
            ],
        ),
        rule(
            "invoice",
            &[
                "invoice",
                "invoice number",
                "rechnung",
                "rechnungsnummer",
                "facture",
                "factura",
                "fattura",
                "factuur",
                "factuurnummer",
                "fatura",
            ],
        ),
    ]
}

/// How a mail greets the customer (`[wording] greeting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GreetingRule {
    /// "Maria" from "Maria Schneider", "Schneider, Maria" or "Dr. Maria Schneider"; the whole
    /// name when it is unclear which word is the first name.
    #[default]
    FirstName,
    /// The display name as they sent it.
    DisplayName,
    /// Nobody by name: "Hello,".
    None,
}

impl GreetingRule {
    pub fn parse(text: &str) -> Option<GreetingRule> {
        match text {
            "first_name" => Some(GreetingRule::FirstName),
            "display_name" => Some(GreetingRule::DisplayName),
            "none" => Some(GreetingRule::None),
            _ => None,
        }
    }
}

/// How mails word what the customer told us (`[wording]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordingConfig {
    /// How the greeting names the customer.
    pub greeting: GreetingRule,
    /// Facts found in a complaint (order and invoice numbers) that no mail asks for again.
    pub facts: Vec<FactRule>,
}

impl Default for WordingConfig {
    fn default() -> Self {
        WordingConfig {
            greeting: GreetingRule::default(),
            facts: default_fact_rules(),
        }
    }
}

/// The language a customer is answered in (`[language]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageConfig {
    /// When neither the customer's mail nor staff say otherwise: `en`.
    pub default: String,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        LanguageConfig {
            default: "en".into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWording {
    pub(super) greeting: Option<Spanned<String>>,
    pub(super) facts: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLanguage {
    pub(super) default: Option<Spanned<String>>,
}

/// Phrases added to the built-in English ones (`src/incident/replies.rs`), lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepliesConfig {
    /// A reply with one of these asks for news and is answered with the status at once.
    pub news_phrases: Vec<String>,
    /// A reply with one of these asks for no more automatic updates.
    pub stop_phrases: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplies {
    #[serde(default)]
    pub(super) news_phrases: Vec<String>,
    #[serde(default)]
    pub(super) stop_phrases: Vec<String>,
}

pub(super) fn phrases(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

impl Validator<'_> {
    pub(super) fn wording(&self, raw: RawWording) -> Result<WordingConfig, ConfigError> {
        let mut out = WordingConfig::default();
        if let Some(g) = raw.greeting {
            out.greeting = match GreetingRule::parse(g.get_ref()) {
                Some(rule) => rule,
                None => {
                    return self.err(
                        g.span(),
                        format!(
                            "[wording] greeting `{}`: use \"first_name\", \"display_name\" or \
                             \"none\"",
                            g.get_ref()
                        ),
                    )
                }
            };
        }
        if let Some(facts) = raw.facts {
            out.facts = facts
                .into_iter()
                .map(|(name, words)| FactRule {
                    name,
                    words: words
                        .iter()
                        .map(|w| w.trim().to_lowercase())
                        .filter(|w| !w.is_empty())
                        .collect(),
                })
                .collect();
        }
        Ok(out)
    }

    pub(super) fn language(&self, raw: RawLanguage) -> Result<LanguageConfig, ConfigError> {
        let mut out = LanguageConfig::default();
        if let Some(lang) = raw.default {
            match crate::lang::normalise(lang.get_ref()) {
                Some(code) => out.default = code,
                None => {
                    return self.err(
                        lang.span(),
                        format!(
                            "[language] default `{}` is not a language code like \"en\" or \"de\"",
                            lang.get_ref()
                        ),
                    )
                }
            }
        }
        Ok(out)
    }
}
