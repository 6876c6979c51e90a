//! What the customer already told us, so no mail asks for it again: order and invoice numbers
//! found by configurable words (`[wording.facts]`), and the name to greet them by.

use serde::Serialize;

pub use crate::config::{default_fact_rules as default_rules, FactRule, GreetingRule};

/// A fact found: "order" "48391".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

/// A value has at least this many digits ("#48391", "R-2026-118"), so "order 2 of them" is
/// no order number.
pub const MIN_DIGITS: usize = 3;
const MAX_VALUE_LEN: usize = 40;
/// Words between the introducing word and the value that say nothing.
const FILLERS: &[&str] = &[
    "#",
    "no",
    "no.",
    "nr",
    "nr.",
    "number",
    "num",
    "nummer",
    "is",
    "ist",
    "id",
    ":",
    "-",
    "was",
    "war",
    "reference",
    "ref",
    "ref.",
    // French, Spanish, Italian, Dutch, Portuguese: "commande n° 88412", "pedido nº 5521".
    "n°",
    "nº",
    "n",
    "numéro",
    "número",
    "numero",
    "núm",
    "num.",
    "est",
    "es",
    "è",
    "is:",
];

/// The facts in `text`, the first value of each kind, in the order of `rules`.
pub fn find(text: &str, rules: &[FactRule]) -> Vec<Fact> {
    // Brackets, quotes and the punctuation after them go: "(Bestellnummer 48391).",
    // "«commande 88412»", "[order 66120]".
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(
                    c,
                    '(' | ')' | '[' | ']' | '"' | '«' | '»' | ',' | ';' | '!' | '?'
                )
            })
            .trim_end_matches(['.', ')', ']', '»', '"'])
        })
        .map(str::to_string)
        .collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let mut out = Vec::new();
    for rule in rules {
        let found = (0..lower.len()).find_map(|i| {
            rule.words.iter().find_map(|intro| {
                let intro: Vec<&str> = intro.split_whitespace().collect();
                let end = i + intro.len();
                let here = lower.get(i..end)?;
                let matches = here
                    .iter()
                    .zip(&intro)
                    .all(|(w, want)| w.trim_end_matches([':', '.']) == *want);
                if !matches {
                    return None;
                }
                // "order #48391", "order no. 48391", "Bestellnummer: 40917".
                let mut j = end;
                while lower.get(j).is_some_and(|w| FILLERS.contains(&w.as_str())) {
                    j += 1;
                }
                value(words.get(j)?)
            })
        });
        if let Some(value) = found {
            out.push(Fact {
                name: rule.name.clone(),
                value,
            });
        }
    }
    out
}

fn value(word: &str) -> Option<String> {
    let v = word
        .trim_start_matches(['#', ':'])
        .trim_end_matches(['.', ':', '!', '?']);
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let clean = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'));
    (digits >= MIN_DIGITS && v.len() <= MAX_VALUE_LEN && clean).then(|| v.to_string())
}

/// Titles that are not a first name.
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "herr", "frau", "madame", "monsieur",
];

/// The name to greet the customer by ("" for none): see [`GreetingRule`]. An address or a
/// name that is all capitals, a role or a company stays as it is or is left out: "Hello
/// SUPPORT TEAM" reads worse than "Hello,".
pub fn greeting_name(display: Option<&str>, rule: GreetingRule) -> String {
    let Some(name) = display
        .map(|n| n.trim().trim_matches(['"', '\'']).trim())
        .filter(|n| !n.is_empty() && !n.contains('@'))
    else {
        return String::new();
    };
    match rule {
        GreetingRule::None => String::new(),
        GreetingRule::DisplayName => name.to_string(),
        GreetingRule::FirstName => first_name(name),
    }
}

fn first_name(name: &str) -> String {
    if name
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_uppercase)
    {
        return String::new();
    }
    // "Schneider, Maria"
    let given = match name.split_once(',') {
        Some((_, first)) if !first.trim().is_empty() => first.trim(),
        _ => name,
    };
    let words: Vec<&str> = given
        .split_whitespace()
        .filter(|w| !TITLES.contains(&w.trim_end_matches('.').to_lowercase().as_str()))
        .collect();
    match words.as_slice() {
        [] => name.to_string(),
        // "Herr Schneider": the title is how they want to be called.
        [only] if given.split_whitespace().count() > 1 => {
            format!("{} {only}", given.split_whitespace().next().unwrap_or(""))
        }
        [first, ..] => {
            // "SCHNEIDER Maria" writes the family name first: which word is the first name is
            // unclear, so the name stays whole.
            if first.chars().count() > 1 && first.chars().all(|c| !c.is_lowercase()) {
                given.to_string()
            } else {
                first.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_invoice_numbers_are_found_however_they_are_written() {
        let rules = default_rules();
        let cases = [
            (
                "It broke again, order #48391, photo attached.",
                "order",
                "48391",
            ),
            ("My order no. 5521 arrived broken.", "order", "5521"),
            ("Order number: A-7710-B", "order", "A-7710-B"),
            ("Bestellnummer: 40917, bitte", "order", "40917"),
            (
                "The invoice INV-2026-11-0412 is wrong.",
                "invoice",
                "INV-2026-11-0412",
            ),
            (
                "Rechnung Nr. R-2026-118 ist falsch",
                "invoice",
                "R-2026-118",
            ),
            // In brackets with punctuation after them, in the subject, in other languages.
            (
                "Es geht um meine Lieferung (Bestellnummer 48391).",
                "order",
                "48391",
            ),
            ("Please help (order number 66120).", "order", "66120"),
            ("J'ai reçu ma commande n° 88412 cassée.", "order", "88412"),
            ("Mi pedido nº 5521 no ha llegado.", "order", "5521"),
            ("La facture 2026-1187 est fausse.", "invoice", "2026-1187"),
            (
                "Mijn bestelling 771204 is niet aangekomen.",
                "order",
                "771204",
            ),
            (
                "Subject line: [order 66120] still missing",
                "order",
                "66120",
            ),
        ];
        for (text, name, value) in cases {
            let found = find(text, &rules);
            assert!(
                found.iter().any(|f| f.name == name && f.value == value),
                "{text}: {found:?}"
            );
        }
        assert!(find("I ordered 2 of them.", &rules).is_empty());
        assert!(find("The order arrived in 12 boxes.", &rules).is_empty());
    }

    #[test]
    fn customers_are_greeted_by_their_first_name() {
        let first = |n: &str| greeting_name(Some(n), GreetingRule::FirstName);
        assert_eq!(first("Maria Schneider"), "Maria");
        assert_eq!(first("Schneider, Maria"), "Maria");
        assert_eq!(first("Dr. Maria Schneider"), "Maria");
        assert_eq!(first("\"Tom\""), "Tom");
        assert_eq!(first("Herr Schneider"), "Herr Schneider");
        assert_eq!(first("SCHNEIDER Maria"), "SCHNEIDER Maria");
        assert_eq!(first("ACME SUPPORT"), "");
        assert_eq!(first("ann@example.com"), "");
        assert_eq!(greeting_name(None, GreetingRule::FirstName), "");
        assert_eq!(
            greeting_name(Some("Maria Schneider"), GreetingRule::DisplayName),
            "Maria Schneider"
        );
        assert_eq!(
            greeting_name(Some("Maria Schneider"), GreetingRule::None),
            ""
        );
    }
}
