//! Code generated for a valid scope enum, and the stub emitted on errors.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::ScopeEnum;
use crate::enums::{enum_with_ids, plain_enum};

pub fn expand(scopes: &ScopeEnum) -> TokenStream {
    let ids: Vec<i32> = scopes.variants.iter().map(|v| v.id.as_ref().map_or(0, |(n, _)| *n)).collect();
    let item = enum_with_ids(&scopes.item, &ids);
    let body = trait_impl(scopes, &ids);
    let ty = &scopes.item.ident;
    let registrations = (0..ids.len()).map(|i| {
        quote! {
            ::outbox::__private::inventory::submit! {
                ::outbox::__private::ScopeRegistration(
                    &<#ty as ::outbox::__private::OutboxScope>::INFOS[#i]
                )
            }
        }
    });
    quote! {
        #item
        #body
        const _: () = {
            #(#registrations)*
        };
    }
}

/// The enum and a trait impl whose ids are the declaration indices: enough for
/// categories naming the scope to type-check, while no registration is made.
pub fn stub(scopes: &ScopeEnum) -> TokenStream {
    let ids: Vec<i32> = (0..scopes.variants.len() as i32).collect();
    if !scopes.shape_ok {
        let item = &scopes.item;
        return quote!(#item);
    }
    let item = plain_enum(&scopes.item);
    let body = trait_impl(scopes, &ids);
    quote! { #item #body }
}

fn trait_impl(scopes: &ScopeEnum, ids: &[i32]) -> TokenStream {
    let ty = &scopes.item.ident;
    let variants: Vec<_> = scopes.variants.iter().map(|v| &v.ident).collect();
    let names = variants.iter().map(|v| v.to_string());
    let index = 0..variants.len();
    quote! {
        impl #ty {
            /// The stable id stored in `shard_scope`.
            pub const fn id(self) -> i32 {
                match self {
                    #(#ty::#variants => #ids,)*
                }
            }
        }

        const _: () = {
            impl ::outbox::__private::OutboxScope for #ty {
                const ALL: &'static [Self] = &[#(#ty::#variants),*];
                const INFOS: &'static [::outbox::__private::ScopeInfo] = &[#(
                    ::outbox::__private::ScopeInfo {
                        id: #ids,
                        name: #names,
                        declared_in: ::outbox::__private::module_path!(),
                    }
                ),*];
                fn id(self) -> i32 {
                    #ty::id(self)
                }
                fn info(self) -> &'static ::outbox::__private::ScopeInfo {
                    match self {
                        #(#ty::#variants => &<Self as ::outbox::__private::OutboxScope>::INFOS[#index],)*
                    }
                }
            }
        };
    }
}
