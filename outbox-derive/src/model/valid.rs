//! Checks of a model that the macro can make itself; the rest (the category
//! exists and is live, field types, Diesel derives) is asserted in generated
//! code, where the compiler knows the types.

use super::ast::Model;
use super::Direction;
use crate::attr::{split_variant, Errors};

pub fn check(model: &Model, errors: &mut Errors) {
    let name = &model.ident;
    match &model.category {
        None => errors.spanned(
            &model.anchor,
            format!("model `{name}` has no category: add `#[outbox(category = Category::Variant, ...)]`"),
        ),
        Some(path) if split_variant(path).is_none() => {
            errors.spanned(path, "expected a category variant with its enum, like `Category::TeamUpdate`")
        }
        Some(_) => {}
    }

    let field_list = || model.fields.iter().map(|f| format!("`{}`", f.ident)).collect::<Vec<_>>().join(", ");
    match &model.shard {
        None => errors.spanned(
            &model.anchor,
            format!("model `{name}` has no shard: add `shard = field` naming the field rows are ordered by"),
        ),
        Some(shard) if model.field(shard).is_none() => errors.spanned(
            shard,
            format!("`shard = {shard}`: `{name}` has no field `{shard}`; its fields are {}", field_list()),
        ),
        Some(_) => {}
    }
    match &model.object {
        Some(object) if model.field(object).is_none() => errors.spanned(
            object,
            format!("`object = {object}`: `{name}` has no field `{object}`; its fields are {}", field_list()),
        ),
        Some(_) => {}
        None if model.object_field().is_none() => errors.spanned(
            name,
            format!(
                "model `{name}` has no primary key field: receivers reload rows by it; \
                 add an `id` field or name the key with `#[outbox(object = field)]`"
            ),
        ),
        None => {}
    }

    if let Some((n, lit)) = &model.replication_version {
        if *n < 1 {
            errors.spanned(lit, "`replication_version` starts at 1 and only goes up");
        }
    }
    match (model.direction, model.key_span("regions")) {
        (Direction::Region, Some(span)) => errors.at(
            span,
            "`regions` is for `ReplicatedControlModel`: a region model writes one row to its own region; remove it",
        ),
        (Direction::Control, None) => errors.spanned(
            &model.anchor,
            format!(
                "control model `{name}` needs `regions = method`: a method returning the names of the regions \
                 each change is sent to"
            ),
        ),
        _ => {}
    }
}
