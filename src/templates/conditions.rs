//! Variables a template tests with `{{#if}}` or `{{#unless}}`, or walks with `{{#each}}` or
//! `{{#with}}`, that no mail's data has. Strict rendering cannot see them: a missing value
//! there is simply false, so `{{#if incident.nubmer}}` passes every rendering and its
//! paragraph is never shown. `check` reads each template's tree for them instead.

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::Path;
use serde_json::Value;

/// The unknown paths in `template`'s conditions, with the line of each, looked up in every
/// sample of the mail's data (a path any sample has is known).
pub(super) fn unknown(template: &Template, samples: &[Value]) -> Vec<(Option<usize>, String)> {
    let mut out = Vec::new();
    walk(template, samples, &mut out);
    out
}

fn walk(template: &Template, samples: &[Value], out: &mut Vec<(Option<usize>, String)>) {
    for (index, element) in template.elements.iter().enumerate() {
        let TemplateElement::HelperBlock(block) = element else {
            continue;
        };
        let Parameter::Name(helper) = &block.name else {
            continue;
        };
        if !matches!(helper.as_str(), "if" | "unless" | "each" | "with") {
            continue;
        }
        let line = template.mapping.get(index).map(|m| m.0);
        for param in &block.params {
            if let Some(path) = absolute(param) {
                if !samples.iter().any(|data| has(data, &path)) {
                    out.push((line, format!("{{{{#{helper} {path}}}}}")));
                }
            }
        }
        // Inside `if` and `unless` the data is the same; inside `each` and `with` it is the
        // item's, which this does not follow.
        if matches!(helper.as_str(), "if" | "unless") {
            for inner in [&block.template, &block.inverse].into_iter().flatten() {
                walk(inner, samples, out);
            }
        }
    }
}

/// A plain path from the top of the data (`incident.number`), not `this`, `@index`, `../x`
/// or a literal.
fn absolute(param: &Parameter) -> Option<String> {
    let Parameter::Path(Path::Relative((_, raw))) = param else {
        return None;
    };
    let plain = raw
        .split('.')
        .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (plain && raw != "this").then(|| raw.clone())
}

fn has(data: &Value, path: &str) -> bool {
    let mut at = data;
    for seg in path.split('.') {
        match at.get(seg) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(source: &str) -> Vec<(Option<usize>, String)> {
        let template = Template::compile(source).expect("parses");
        let data = serde_json::json!({"incident": {"number": 1, "tags": []}, "customer": {}});
        unknown(&template, &[data])
    }

    #[test]
    fn a_misspelt_condition_is_found_with_its_line_and_known_ones_are_not() {
        let found = conditions(
            "Hi\n{{#if incident.number}}x{{/if}}\n{{#if incident.nubmer}}\n{{#unless customer.nmae}}y{{/unless}}\n{{/if}}\n{{#each incident.tags}}{{#if this}}z{{/if}}{{/each}}",
        );
        assert_eq!(
            found,
            vec![
                (Some(3), "{{#if incident.nubmer}}".to_string()),
                (Some(4), "{{#unless customer.nmae}}".to_string()),
            ]
        );
    }
}
