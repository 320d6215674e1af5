//! Checks of a scope enum that need all its variants.

use super::ast::ScopeEnum;
use crate::attr::Errors;
use crate::enums::check_unique_ids;

pub fn check(scopes: &ScopeEnum, errors: &mut Errors) {
    for v in &scopes.variants {
        if let Some(at) = &v.missing_id {
            errors.spanned(at, format!("scope `{}` has no id: add `#[scope(id = N)]`", v.ident));
        }
    }
    let ids: Vec<_> = scopes.variants.iter().filter_map(|v| v.id.as_ref().map(|(n, l)| (&v.ident, *n, l))).collect();
    check_unique_ids(&ids, "scope", errors);
}
