//! Procedural macros of the `outbox` framework. Use them through `outbox::prelude`.
//!
//! Each macro lives in its own folder: `ast.rs` parses the item and its
//! attributes, `valid.rs` checks what needs the whole item, `expand.rs` writes
//! the code. (The examples below are compiled as the `outbox` crate's doc
//! tests and integration tests; a proc-macro crate cannot run them itself.)
//! Attribute errors of one item are collected and reported together
//! (`attr::Errors`); on errors a stub is still emitted so that code naming the
//! item does not fail too.

mod attr;
mod category;
mod enums;
mod model;
mod scope;

use proc_macro::TokenStream;

/// Declares an enum of outbox scopes. Each variant needs a stable id, stored in
/// every outbox row's `shard_scope`: never change or reuse one.
///
/// Generates `#[repr(i32)]` with the ids as discriminants, the usual derives
/// (`Debug, Clone, Copy, PartialEq, Eq, Hash`), `impl OutboxScope`, a
/// `const fn id(self) -> i32`, and the registration of every scope.
///
/// ```
/// use outbox::prelude::*;
///
/// #[outbox_scope]
/// pub enum Scope {
///     #[scope(id = 0)]
///     Organization,
///     #[scope(id = 1)]
///     User,
/// }
///
/// assert_eq!(Scope::User.id(), 1);
/// assert_eq!(Scope::from_id(0), Some(Scope::Organization));
/// ```
#[proc_macro_attribute]
pub fn outbox_scope(args: TokenStream, input: TokenStream) -> TokenStream {
    scope::outbox_scope_inner(args.into(), input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Declares the enum of outbox categories: one variant per kind of message.
///
/// `#[category(...)]` keys: `id = N` (required, stored in every row: never
/// reuse one), `scope = Scope::Variant` (required unless retired),
/// `region = path` / `control = path` (a receiver function), `retired` (the id
/// stays reserved; takes no other key), `discard` (rows are dropped unread; no
/// receiver), `transactional`, `max_attempts = N`, `on_poison = skip | block`
/// (default `block`).
///
/// ```
/// use outbox::prelude::*;
///
/// #[outbox_scope]
/// pub enum Scope {
///     #[scope(id = 3)]
///     AuditLog,
/// }
///
/// #[outbox_category]
/// pub enum Category {
///     #[category(id = 5, scope = Scope::AuditLog, region = record_event, max_attempts = 10)]
///     AuditLogEvent,
///     #[category(id = 4, retired)]
///     OrganizationMemberTeamUpdate,
/// }
///
/// fn record_event(_cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
///     Ok(())
/// }
///
/// assert_eq!(Category::AuditLogEvent.scope_id(), Some(3));
/// assert!(Category::OrganizationMemberTeamUpdate.info().retired);
/// ```
#[proc_macro_attribute]
pub fn outbox_category(args: TokenStream, input: TokenStream) -> TokenStream {
    category::outbox_category_inner(args.into(), input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Makes a Diesel model write a `region_outbox` row on every change, and
/// registers it as the receiver of its category (implement
/// `RegionReplication` to say what delivery does).
///
/// `#[outbox(...)]` keys: `category = Category::Variant`, `shard = field`
/// (required), `object = field` (default `id`), `payload = method` (returns
/// anything `Serialize`, kept for deletion receivers), `replication_version = N`.
/// The model must derive `Queryable, Selectable, Insertable, AsChangeset`.
///
/// ```
/// # use outbox::prelude::*;
/// # use diesel::prelude::*;
/// # diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }
/// # #[outbox_scope] pub enum Scope { #[scope(id = 0)] Organization }
/// # #[outbox_category] pub enum Category { #[category(id = 2, scope = Scope::Organization)] TeamUpdate }
/// #[derive(Queryable, Selectable, Insertable, AsChangeset, ReplicatedRegionModel)]
/// #[diesel(table_name = teams)]
/// #[outbox(category = Category::TeamUpdate, shard = organization_id, payload = outbox_payload)]
/// pub struct Team {
///     pub id: i64,
///     pub organization_id: i64,
///     pub name: String,
/// }
///
/// impl Team {
///     fn outbox_payload(&self) -> serde_json::Value {
///         serde_json::json!({ "name": self.name })
///     }
/// }
///
/// impl RegionReplication for Team {
///     fn handle_async_replication(&self, _cx: &mut Delivery<'_>) -> Result<(), ReceiverError> {
///         Ok(())
///     }
///     fn handle_async_deletion(
///         _cx: &mut Delivery<'_>,
///         _id: i64,
///         _shard: i64,
///         _payload: Option<&serde_json::Value>,
///     ) -> Result<(), ReceiverError> {
///         Ok(())
///     }
/// }
/// ```
#[proc_macro_derive(ReplicatedRegionModel, attributes(outbox))]
pub fn derive_region_model(input: TokenStream) -> TokenStream {
    model::region_model_inner(input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Makes a Diesel model write one `control_outbox` row per target region on
/// every change, and registers it as the receiver of its category (implement
/// `ControlReplication`).
///
/// Same keys as [`ReplicatedRegionModel`], plus `regions = method` (required):
/// a method returning the target region names (`IntoIterator` of `Into<String>`).
///
/// ```
/// # use outbox::prelude::*;
/// # use diesel::prelude::*;
/// # diesel::table! { users (id) { id -> Integer, name -> Text } }
/// # #[outbox_scope] pub enum Scope { #[scope(id = 1)] User }
/// # #[outbox_category] pub enum Category { #[category(id = 0, scope = Scope::User)] UserUpdate }
/// #[derive(Queryable, Selectable, Insertable, AsChangeset, ReplicatedControlModel)]
/// #[diesel(table_name = users)]
/// #[outbox(category = Category::UserUpdate, shard = id, regions = target_regions)]
/// pub struct User {
///     pub id: i32,
///     pub name: String,
/// }
///
/// impl User {
///     fn target_regions(&self) -> [&'static str; 2] {
///         ["us", "de"]
///     }
/// }
///
/// impl ControlReplication for User {
///     fn handle_async_replication(&self, cx: &mut ControlDelivery<'_>) -> Result<(), ReceiverError> {
///         let _region = cx.region_name();
///         Ok(())
///     }
///     fn handle_async_deletion(
///         _cx: &mut ControlDelivery<'_>,
///         _id: i64,
///         _shard: i64,
///         _payload: Option<&serde_json::Value>,
///     ) -> Result<(), ReceiverError> {
///         Ok(())
///     }
/// }
/// ```
#[proc_macro_derive(ReplicatedControlModel, attributes(outbox))]
pub fn derive_control_model(input: TokenStream) -> TokenStream {
    model::control_model_inner(input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// The messages of the `compile_error!`s in an expansion.
    fn errors(tokens: proc_macro2::TokenStream) -> Vec<String> {
        let text = tokens.to_string();
        text.split("compile_error !").skip(1).filter_map(|s| s.split('"').nth(1).map(str::to_string)).collect()
    }

    #[test]
    fn scope_errors_are_collected() {
        let out = crate::scope::outbox_scope_inner(
            quote!(),
            quote!(
                enum Scope {
                    #[scope(id = 0)]
                    A,
                    #[scope(id = 0, name = 1)]
                    B,
                    C,
                }
            ),
        )
        .unwrap();
        let errors = errors(out);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("unknown key `name`"));
        assert!(errors.iter().any(|e| e.contains("scope id 0 is already used by `A`")));
        assert!(errors.iter().any(|e| e.contains("scope `C` has no id")));
    }

    #[test]
    fn valid_category_expands_to_registrations() {
        let out = crate::category::outbox_category_inner(
            quote!(),
            quote!(
                enum Category {
                    #[category(id = 2, scope = Scope::Org, region = on_team)]
                    Team,
                    #[category(id = 4, retired)]
                    Old,
                }
            ),
        )
        .unwrap()
        .to_string();
        assert!(errors(out.parse().unwrap()).is_empty());
        assert!(out.contains("Team = 2") && out.contains("Old = 4"), "{out}");
        assert!(out.contains("ReceiverRegistration"));
    }

    #[test]
    fn model_keys_are_checked() {
        let out = crate::model::control_model_inner(quote! {
            #[outbox(category = Category::Team, shard = org, shard = org)]
            struct Team { id: i64 }
        })
        .unwrap();
        let errors = errors(out);
        assert!(errors.iter().any(|e| e.starts_with("duplicate key `shard`")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("has no field `org`")));
        assert!(errors.iter().any(|e| e.contains("needs `regions = method`")));
    }
}
