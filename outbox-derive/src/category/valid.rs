//! Checks of a category enum: keys that contradict each other, and ids.

use super::ast::{CategoryEnum, CategoryVariant};
use crate::attr::{split_variant, Errors};
use crate::enums::check_unique_ids;

pub fn check(categories: &CategoryEnum, errors: &mut Errors) {
    for c in &categories.variants {
        check_variant(c, errors);
    }
    let ids: Vec<_> =
        categories.variants.iter().filter_map(|c| c.id.as_ref().map(|(n, l)| (c.ident(), *n, l))).collect();
    check_unique_ids(&ids, "category", errors);
}

fn check_variant(c: &CategoryVariant, errors: &mut Errors) {
    let name = c.ident();
    if c.key_span("id").is_none() {
        errors.spanned(&c.anchor, format!("category `{name}` has no id: add `id = N` to its `#[category(...)]`"));
    }
    if c.retired {
        // A retired id only reserves the number: anything else would be dead configuration,
        // and a receiver for it would never be called.
        for (key, span) in c.keys.iter().filter(|(k, _)| k != "id" && k != "retired") {
            let why = match key.as_str() {
                "region" | "control" => "a retired category receives nothing, so it cannot have a receiver",
                _ => "a retired category only reserves its id",
            };
            errors.at(*span, format!("`{key}` on retired category `{name}`: {why}; remove `{key}`"));
        }
        return;
    }
    match &c.scope {
        None if c.key_span("scope").is_none() => errors.spanned(
            &c.anchor,
            format!("category `{name}` has no scope: add `scope = Scope::Variant` (or mark it `retired`)"),
        ),
        Some(path) if split_variant(path).is_none() => {
            errors.spanned(path, "expected a scope variant with its enum, like `Scope::Organization`")
        }
        _ => {}
    }
    if c.discard {
        for key in ["region", "control"] {
            if let Some(span) = c.key_span(key) {
                errors.at(
                    span,
                    format!(
                        "category `{name}` is `discard`, so its rows are dropped unread: remove `{key}` or `discard`"
                    ),
                );
            }
        }
    }
    if let Some((0, lit)) = &c.max_attempts {
        errors.spanned(lit, "`max_attempts` must be at least 1");
    }
    if let Some(policy) = &c.on_poison {
        if policy != "skip" && policy != "block" {
            errors.spanned(policy, format!("unknown `on_poison = {policy}`; expected `skip` or `block`"));
        }
    }
}
