//! From names to ids and back, through a registry that may be empty (the
//! standalone `outbox` binary links no application).

use outbox_core::Registry;

use super::InspectError;

pub(crate) fn scope_name(registry: &Registry, id: i32) -> Option<&'static str> {
    registry.scope(id).map(|s| s.name)
}

pub(crate) fn category_name(registry: &Registry, id: i32) -> Option<&'static str> {
    registry.category(id).map(|c| c.name)
}

/// The scope id for `given`: a declared name, or a number. A number is
/// accepted as is when the registry declares no scopes (a tool without the
/// application), otherwise it must be declared.
///
/// # Errors
/// [`InspectError::UnknownScope`], listing the known scopes.
pub fn resolve_scope(registry: &Registry, given: &str) -> Result<i32, InspectError> {
    let known = registry.scopes();
    let hint = || {
        if known.is_empty() {
            "this program knows no scope names; pass the scope's numeric id".to_string()
        } else {
            let list: Vec<String> = known.iter().map(|s| format!("{} ({})", s.name, s.id)).collect();
            format!("known scopes: {}", list.join(", "))
        }
    };
    if let Ok(id) = given.trim().parse::<i32>() {
        if known.is_empty() || registry.scope(id).is_some() {
            return Ok(id);
        }
    } else if let Some(s) = registry.scope_named(given.trim()) {
        return Ok(s.id);
    }
    Err(InspectError::UnknownScope { given: given.to_string(), hint: hint() })
}

/// The category id for `given`: a declared name, or a number (accepted as is
/// when the registry declares no categories, otherwise it must be declared).
///
/// # Errors
/// [`InspectError::UnknownCategory`], listing the known categories.
pub fn resolve_category(registry: &Registry, given: &str) -> Result<i32, InspectError> {
    let known = registry.categories();
    let hint = || {
        if known.is_empty() {
            "this program knows no category names; pass the category's numeric id".to_string()
        } else {
            let list: Vec<String> = known.iter().map(|c| format!("{} ({})", c.name, c.id)).collect();
            format!("known categories: {}", list.join(", "))
        }
    };
    if let Ok(id) = given.trim().parse::<i32>() {
        if known.is_empty() || registry.category(id).is_some() {
            return Ok(id);
        }
    } else if let Some(c) = registry.category_named(given.trim()) {
        return Ok(c.id);
    }
    Err(InspectError::UnknownCategory { given: given.to_string(), hint: hint() })
}
