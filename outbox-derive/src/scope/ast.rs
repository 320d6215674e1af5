//! The scope enum as parsed from the user's item.

use syn::{Ident, ItemEnum, LitInt};

use crate::attr::{int_value, parse_keys, strip, Errors};
use crate::enums::check_shape;

pub struct ScopeEnum {
    /// The user's enum without `#[scope]` attributes.
    pub item: ItemEnum,
    /// False when the enum cannot carry ids at all (generics, fields): the
    /// stub is then the item alone, since a trait impl would add errors.
    pub shape_ok: bool,
    pub variants: Vec<ScopeVariant>,
}

pub struct ScopeVariant {
    pub ident: Ident,
    pub id: Option<(i32, LitInt)>,
    /// Where to report a missing id: the attribute, or the variant without one.
    pub missing_id: Option<proc_macro2::TokenStream>,
}

const KEYS: &[&str] = &["id"];

impl ScopeEnum {
    pub fn from_item(mut item: ItemEnum, errors: &mut Errors) -> Self {
        let shape_ok = check_shape(&item, "outbox_scope", errors);
        let mut variants = Vec::new();
        for v in &mut item.variants {
            let attrs = strip(&mut v.attrs, "scope");
            let mut id = None;
            let mut id_given = false;
            for (i, attr) in attrs.iter().enumerate() {
                if i > 0 {
                    errors.spanned(attr, "duplicate `#[scope(...)]` attribute; merge it into the first one");
                    continue;
                }
                parse_keys(attr, KEYS, errors, |_key, meta| {
                    id_given = true;
                    id = Some(int_value::<i32>(meta, "an integer id: `id = 0`")?);
                    Ok(())
                });
            }
            let missing_id = match attrs.first() {
                _ if id_given => None,
                Some(attr) => Some(quote::quote!(#attr)),
                None => {
                    let ident = &v.ident;
                    Some(quote::quote!(#ident))
                }
            };
            variants.push(ScopeVariant { ident: v.ident.clone(), id, missing_id });
        }
        ScopeEnum { item, shape_ok, variants }
    }
}
