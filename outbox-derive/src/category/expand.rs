//! Code generated for a valid category enum, and the stub emitted on errors.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::{CategoryEnum, CategoryVariant};
use crate::attr::split_variant;
use crate::enums::{enum_with_ids, plain_enum};

pub fn expand(categories: &CategoryEnum) -> TokenStream {
    let ids: Vec<i32> = categories.variants.iter().map(|c| c.id.as_ref().map_or(0, |(n, _)| *n)).collect();
    let item = enum_with_ids(&categories.item, &ids);
    let body = trait_impl(categories, &ids, true);
    let ty = &categories.item.ident;
    let registrations = (0..ids.len()).map(|i| {
        quote! {
            ::outbox::__private::inventory::submit! {
                ::outbox::__private::CategoryRegistration(
                    &<#ty as ::outbox::__private::OutboxCategory>::INFOS[#i]
                )
            }
        }
    });
    let receivers = categories.variants.iter().zip(&ids).flat_map(|(c, id)| receivers(c, *id));
    quote! {
        #item
        #body
        const _: () = {
            #(#registrations)*
            #(#receivers)*
        };
    }
}

/// The enum and a trait impl with declaration indices as ids and no scopes:
/// enough for models naming a category to type-check; nothing is registered.
pub fn stub(categories: &CategoryEnum) -> TokenStream {
    let ids: Vec<i32> = (0..categories.variants.len() as i32).collect();
    if !categories.shape_ok {
        let item = &categories.item;
        return quote!(#item);
    }
    let item = plain_enum(&categories.item);
    let body = trait_impl(categories, &ids, false);
    quote! { #item #body }
}

fn trait_impl(categories: &CategoryEnum, ids: &[i32], with_scopes: bool) -> TokenStream {
    let ty = &categories.item.ident;
    let variants: Vec<_> = categories.variants.iter().map(|c| c.ident()).collect();
    let infos = categories.variants.iter().zip(ids).map(|(c, id)| info(c, *id, with_scopes));
    let retired = categories.variants.iter().map(|c| c.retired && with_scopes);
    let index = 0..variants.len();
    quote! {
        impl #ty {
            /// The stable id stored in the `category` column.
            pub const fn id(self) -> i32 {
                match self {
                    #(#ty::#variants => #ids,)*
                }
            }

            // Models assert it in a `const`, so a retired category fails at compile time.
            #[doc(hidden)]
            pub const fn __outbox_retired(self) -> bool {
                match self {
                    #(#ty::#variants => #retired,)*
                }
            }
        }

        const _: () = {
            impl ::outbox::__private::OutboxCategory for #ty {
                const ALL: &'static [Self] = &[#(#ty::#variants),*];
                const INFOS: &'static [::outbox::__private::CategoryInfo] = &[#(#infos),*];
                fn id(self) -> i32 {
                    #ty::id(self)
                }
                fn info(self) -> &'static ::outbox::__private::CategoryInfo {
                    match self {
                        #(#ty::#variants => &<Self as ::outbox::__private::OutboxCategory>::INFOS[#index],)*
                    }
                }
            }
        };
    }
}

fn info(c: &CategoryVariant, id: i32, with_scopes: bool) -> TokenStream {
    let name = c.ident().to_string();
    // The scope is named through `OutboxScope`, so a path to anything else gets
    // that trait's message, spanned on the path the user wrote.
    let scope = match c.scope.as_ref().and_then(|p| Some((p, split_variant(p)?))) {
        Some((path, (scope_ty, variant))) if with_scopes && !c.retired => quote_spanned! {path.span()=>
            ::outbox::__private::Some(::outbox::__private::find_scope(
                <#scope_ty as ::outbox::__private::OutboxScope>::INFOS,
                #scope_ty::#variant as i32,
            ))
        },
        _ => quote!(::outbox::__private::None),
    };
    let (retired, discard, transactional) = (c.retired, c.discard, c.transactional);
    let max_attempts = match &c.max_attempts {
        Some((n, _)) => quote!(::outbox::__private::Some(#n)),
        None => quote!(::outbox::__private::None),
    };
    let on_poison = match &c.on_poison {
        Some(p) if p == "skip" => quote!(::outbox::__private::PoisonPolicy::Skip),
        _ => quote!(::outbox::__private::PoisonPolicy::Block),
    };
    quote! {
        ::outbox::__private::CategoryInfo {
            id: #id,
            name: #name,
            scope: #scope,
            retired: #retired,
            discard: #discard,
            transactional: #transactional,
            max_attempts: #max_attempts,
            on_poison: #on_poison,
            declared_in: ::outbox::__private::module_path!(),
        }
    }
}

/// `region = path` / `control = path`: a registration of a wrapper that calls
/// `path` through a function bounded by the direction's marker trait, so a
/// wrong signature is one error, spanned on the path.
fn receivers(c: &CategoryVariant, id: i32) -> Vec<TokenStream> {
    let mut out = Vec::new();
    for (path, variant, delivery, call) in [
        (&c.region, quote!(Region), quote!(Delivery), quote!(call_region)),
        (&c.control, quote!(Control), quote!(ControlDelivery), quote!(call_control)),
    ] {
        let Some(path) = path else { continue };
        let wrapper = quote::format_ident!("__outbox_{}_receiver_{}", variant.to_string().to_lowercase(), id as u32);
        let call = quote_spanned! {path.span()=>
            ::outbox::__private::assert::#call(#path, cx)
        };
        out.push(quote! {
            fn #wrapper(
                cx: &mut ::outbox::__private::#delivery<'_>,
            ) -> ::outbox::__private::Result<(), ::outbox::__private::ReceiverError> {
                #call
            }
            ::outbox::__private::inventory::submit! {
                ::outbox::__private::ReceiverRegistration {
                    category: #id,
                    receiver: ::outbox::__private::Receiver::#variant(#wrapper),
                    name: ::outbox::__private::stringify!(#path),
                    registered_in: ::outbox::__private::module_path!(),
                }
            }
        });
    }
    out
}
