//! What `#[outbox_scope]` and `#[outbox_category]` share: both declare a
//! field-less enum whose variants carry stable ids, stored in outbox rows.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Fields, Ident, ItemEnum, LitInt};

use crate::attr::Errors;

/// Parses the item an enum attribute macro was put on. Anything else is
/// reported, and given back unchanged so the rest of the crate still sees it.
pub fn parse_enum(input: TokenStream, macro_name: &str) -> Result<ItemEnum, TokenStream> {
    match syn::parse2::<syn::Item>(input.clone()) {
        Ok(syn::Item::Enum(item)) => Ok(item),
        Ok(other) => {
            let error = syn::Error::new_spanned(
                item_keyword(&other).unwrap_or_else(|| quote!(#other)),
                format!("`#[{macro_name}]` goes on a field-less enum, one variant per id"),
            );
            let mut out = input;
            out.extend(error.into_compile_error());
            Err(out)
        }
        Err(e) => Err(e.into_compile_error()),
    }
}

fn item_keyword(item: &syn::Item) -> Option<TokenStream> {
    Some(match item {
        syn::Item::Struct(s) => {
            let t = s.struct_token;
            quote!(#t)
        }
        syn::Item::Union(u) => {
            let t = u.union_token;
            quote!(#t)
        }
        syn::Item::Fn(f) => {
            let t = f.sig.fn_token;
            quote!(#t)
        }
        _ => return None,
    })
}

/// Rejects what a `#[repr(i32)]` table of ids cannot be: generics, fields and
/// hand-written discriminants (the ids are the discriminants).
pub fn check_shape(item: &ItemEnum, macro_name: &str, errors: &mut Errors) -> bool {
    let mut ok = true;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(&item.generics, format!("`#[{macro_name}]` enums cannot be generic"));
        ok = false;
    }
    if item.variants.is_empty() {
        errors.spanned(&item.ident, format!("`#[{macro_name}]` enum `{}` has no variants", item.ident));
    }
    for v in &item.variants {
        if !matches!(v.fields, Fields::Unit) {
            errors.spanned(
                &v.fields,
                format!("variant `{}` has fields; `#[{macro_name}]` variants are plain names with an id", v.ident),
            );
            ok = false;
        }
        if let Some((_, d)) = &v.discriminant {
            errors.spanned(d, "remove `= ...`: the id given in the variant's attribute is its discriminant");
        }
    }
    ok
}

/// Reports every id used twice, on its second use, naming the first user:
/// ids are stored in rows, so two names for one id would mix their rows.
pub fn check_unique_ids(ids: &[(&Ident, i32, &LitInt)], kind: &str, errors: &mut Errors) {
    for (i, (ident, id, lit)) in ids.iter().enumerate() {
        if let Some((first, ..)) = ids[..i].iter().find(|(_, other, _)| other == id) {
            errors.spanned(
                lit,
                format!(
                    "{kind} id {id} is already used by `{first}`; give `{ident}` an id of its own (never reuse one)"
                ),
            );
        }
    }
}

/// The enum as the user wrote it, minus our attributes and discriminants, with
/// the derives generated code relies on. Emitted alone when there are errors.
pub fn plain_enum(item: &ItemEnum) -> TokenStream {
    let mut item = item.clone();
    for v in &mut item.variants {
        v.discriminant = None;
    }
    quote! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #item
    }
}

/// The enum with `#[repr(i32)]` and each id as its discriminant, so `as i32`
/// (usable in `const`) is the id.
pub fn enum_with_ids(item: &ItemEnum, ids: &[i32]) -> TokenStream {
    let mut item = item.clone();
    for (v, id) in item.variants.iter_mut().zip(ids) {
        let lit = LitInt::new(&id.to_string(), Span::call_site());
        v.discriminant = Some((Default::default(), syn::parse_quote!(#lit)));
    }
    quote! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        #item
    }
}
