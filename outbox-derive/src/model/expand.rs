//! Code generated for a valid model, and the stub emitted on errors.
//!
//! Storage goes through `with_db!`, which expands each statement once per
//! enabled backend on a concrete connection: no generic Diesel bounds to spell
//! out, and a model that does not fit a backend fails to compile.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Generics, Ident};

use super::ast::Model;
use super::Direction;
use crate::attr::split_variant;

pub fn expand(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let name = ident.to_string();
    let category = model.category.as_ref().expect("checked by valid.rs");
    let (category_ty, variant) = split_variant(category).expect("checked by valid.rs");
    let table = &model.table;
    let table_name = table.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
    let version = model.replication_version.as_ref().map_or(1, |(n, _)| *n);
    let shard = model.shard.as_ref().expect("checked by valid.rs");
    let object = model.object_field().expect("checked by valid.rs");
    let (object_field, object_ty, object_col) = (&object.ident, &object.ty, &object.column);
    let object_span = model.object.as_ref().map_or_else(|| object_field.span(), Ident::span);
    let direction = direction_tokens(model.direction);

    // The category is named exactly once (type) and its variant once (value),
    // so a typo in either is one error, spanned where the user wrote it.
    let retired_message = format!(
        "category `{}` is retired: its id is reserved and no rows may be written with it; \
         give `{name}` a live category",
        quote!(#category).to_string().replace(' ', "")
    );
    let category_items = quote! {
        type __OutboxCategory = #category_ty;
        const __OUTBOX_CATEGORY: __OutboxCategory = __OutboxCategory::#variant;
    };
    let retired_check = quote_spanned! {variant.span()=>
        const _: () = ::outbox::__private::assert!(!__OUTBOX_CATEGORY.__outbox_retired(), #retired_message);
    };

    let derives_check = quote_spanned! {ident.span()=>
        const _: () = {
            ::outbox::__private::assert::insertable::<#ident, #table::table>();
            ::outbox::__private::assert::as_changeset::<#ident, #table::table>();
            ::outbox::__private::assert::selectable::<#ident>();
            ::outbox::__private::assert::queryable::<#ident>();
        };
    };

    let object_identifier = quote_spanned! {object_span=>
        ::outbox::__private::Identifier::to_outbox_id(self.#object_field, "object_identifier")
    };
    let shard_identifier = quote_spanned! {shard.span()=>
        ::outbox::__private::Identifier::to_outbox_id(self.#shard, "shard_identifier")
    };
    let payload = model.payload.as_ref().map(|method| {
        let call = quote_spanned! {method.span()=>
            ::outbox::__private::to_payload(
                ::outbox::__private::OutboxCategory::info(__OUTBOX_CATEGORY).name,
                &self.#method(),
            )
        };
        quote! {
            fn payload_for_update(&self) -> ::outbox::__private::Result<::outbox::__private::Option<::outbox::__private::Value>> {
                #call
            }
        }
    });
    let regions = model.regions.as_ref().map(|method| {
        let call = quote_spanned! {method.span()=>
            ::outbox::__private::region_names(self.#method())
        };
        quote! {
            fn outbox_region_names(&self) -> ::outbox::__private::Vec<::outbox::__private::String> {
                #call
            }
        }
    });

    let receiver = match model.direction {
        Direction::Region => quote_spanned! {ident.span()=>
            ::outbox::__private::Receiver::Region(::outbox::__private::receive_region_model::<#ident>)
        },
        Direction::Control => quote_spanned! {ident.span()=>
            ::outbox::__private::Receiver::Control(::outbox::__private::receive_control_model::<#ident>)
        },
    };

    let diesel = quote!(::outbox::__private::diesel);
    let with_db = quote!(::outbox::__private::with_db!);
    let uses = quote! {
        #[allow(unused_imports)]
        use ::outbox::__private::diesel::{
            ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, RunQueryDsl as _, SelectableHelper as _,
        };
    };
    let result = quote!(::outbox::__private::diesel::QueryResult);
    let conn = quote!(::outbox::__private::DbConn<'_>);

    quote! {
        const _: () = {
            #category_items
            #retired_check
            #derives_check

            impl ::outbox::__private::OutboxModel for #ident {
                type Category = __OutboxCategory;
                const DIRECTION: ::outbox::__private::Direction = #direction;
                const MODEL_NAME: &'static str = #name;
                const TABLE_NAME: &'static str = #table_name;
                const REPLICATION_VERSION: i32 = #version;

                fn outbox_category() -> __OutboxCategory {
                    __OUTBOX_CATEGORY
                }
                fn object_identifier(&self) -> ::outbox::__private::Result<i64> {
                    #object_identifier
                }
                fn shard_identifier(&self) -> ::outbox::__private::Result<i64> {
                    #shard_identifier
                }
                #payload
                #regions

                fn __outbox_save(
                    &self,
                    rows: &[::outbox::__private::OutboxRow],
                    db: #conn,
                ) -> ::outbox::__private::Result<()> {
                    #uses
                    #with_db(db, |c| ::outbox::__private::ChangeWithOutbox::change_with_outbox(
                        c,
                        #diesel::insert_into(#table::table)
                            .values(self)
                            .on_conflict(#table::#object_col)
                            .do_update()
                            .set(self),
                        rows,
                    ))
                }
                fn __outbox_update(&self, db: #conn) -> #result<usize> {
                    #uses
                    #with_db(db, |c| #diesel::update(#table::table.filter(#table::#object_col.eq(self.#object_field)))
                        .set(self)
                        .execute(c))
                }
                fn __outbox_insert_all(
                    models: &[Self],
                    rows: &[::outbox::__private::OutboxRow],
                    db: #conn,
                ) -> ::outbox::__private::Result<()> {
                    #uses
                    #with_db(db, |c| ::outbox::__private::ChangeWithOutbox::change_with_outbox(
                        c,
                        #diesel::insert_into(#table::table).values(models),
                        rows,
                    ))
                }
                fn __outbox_delete_all(
                    models: &[Self],
                    rows: &[::outbox::__private::OutboxRow],
                    db: #conn,
                ) -> ::outbox::__private::Result<()> {
                    #uses
                    let ids: ::outbox::__private::Vec<#object_ty> =
                        models.iter().map(|model| model.#object_field).collect();
                    #with_db(db, |c| ::outbox::__private::ChangeWithOutbox::change_with_outbox(
                        c,
                        #diesel::delete(#table::table.filter(#table::#object_col.eq_any(ids.iter().copied()))),
                        rows,
                    ))
                }
                fn __outbox_load(object_identifier: i64, db: #conn) -> #result<::outbox::__private::Option<Self>> {
                    #uses
                    // An id the key type cannot hold cannot name a row: the row is gone.
                    let id = match <#object_ty as ::outbox::__private::TryFrom<i64>>::try_from(object_identifier) {
                        ::outbox::__private::Ok(id) => id,
                        ::outbox::__private::Err(_) => return ::outbox::__private::Ok(::outbox::__private::None),
                    };
                    #with_db(db, |c| #table::table
                        .filter(#table::#object_col.eq(id))
                        .select(Self::as_select())
                        .first::<Self>(c)
                        .optional())
                }
                fn __outbox_load_batch(after: i64, limit: i64, db: #conn) -> #result<::outbox::__private::Vec<Self>> {
                    #uses
                    match <#object_ty as ::outbox::__private::TryFrom<i64>>::try_from(after) {
                        ::outbox::__private::Ok(after) => #with_db(db, |c| #table::table
                            .filter(#table::#object_col.gt(after))
                            .order(#table::#object_col.asc())
                            .limit(limit)
                            .select(Self::as_select())
                            .load::<Self>(c)),
                        // Below the key type's range (e.g. -1 with unsigned keys): start at the first row.
                        ::outbox::__private::Err(_) if after < 0 => #with_db(db, |c| #table::table
                            .order(#table::#object_col.asc())
                            .limit(limit)
                            .select(Self::as_select())
                            .load::<Self>(c)),
                        ::outbox::__private::Err(_) => ::outbox::__private::Ok(::outbox::__private::Vec::new()),
                    }
                }
            }

            ::outbox::__private::inventory::submit! {
                ::outbox::__private::ReceiverRegistration {
                    category: __OUTBOX_CATEGORY as i32,
                    receiver: #receiver,
                    name: #name,
                    registered_in: ::outbox::__private::module_path!(),
                }
            }
        };
    }
}

/// An impl that satisfies the trait without registering anything, so the
/// user's `impl RegionReplication` and calls to `save()` do not add errors to
/// the ones reported on the attribute.
pub fn stub(ident: &Ident, generics: &Generics, direction: Direction) -> TokenStream {
    if !generics.params.is_empty() {
        return TokenStream::new();
    }
    let direction = direction_tokens(direction);
    let name = ident.to_string();
    let unreachable = quote!(::std::unreachable!("outbox: the #[outbox] attribute of this model has errors"));
    let result = quote!(::outbox::__private::diesel::QueryResult);
    let conn = quote!(::outbox::__private::DbConn<'_>);
    quote! {
        const _: () = {
            impl ::outbox::__private::OutboxModel for #ident {
                type Category = ::outbox::__private::assert::NoCategory;
                const DIRECTION: ::outbox::__private::Direction = #direction;
                const MODEL_NAME: &'static str = #name;
                const TABLE_NAME: &'static str = #name;
                fn outbox_category() -> Self::Category { #unreachable }
                fn object_identifier(&self) -> ::outbox::__private::Result<i64> { #unreachable }
                fn shard_identifier(&self) -> ::outbox::__private::Result<i64> { #unreachable }
                fn __outbox_save(&self, _: &[::outbox::__private::OutboxRow], _: #conn) -> ::outbox::__private::Result<()> {
                    #unreachable
                }
                fn __outbox_update(&self, _: #conn) -> #result<usize> { #unreachable }
                fn __outbox_insert_all(_: &[Self], _: &[::outbox::__private::OutboxRow], _: #conn) -> ::outbox::__private::Result<()> {
                    #unreachable
                }
                fn __outbox_delete_all(_: &[Self], _: &[::outbox::__private::OutboxRow], _: #conn) -> ::outbox::__private::Result<()> {
                    #unreachable
                }
                fn __outbox_load(_: i64, _: #conn) -> #result<::outbox::__private::Option<Self>> { #unreachable }
                fn __outbox_load_batch(_: i64, _: i64, _: #conn) -> #result<::outbox::__private::Vec<Self>> {
                    #unreachable
                }
            }
        };
    }
}

fn direction_tokens(direction: Direction) -> TokenStream {
    match direction {
        Direction::Region => quote!(::outbox::__private::Direction::Region),
        Direction::Control => quote!(::outbox::__private::Direction::Control),
    }
}
