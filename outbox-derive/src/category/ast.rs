//! The category enum as parsed from the user's item.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, ItemEnum, LitInt, Path};

use crate::attr::{flag, ident_value, int_value, parse_keys, path_value, strip, Errors};
use crate::enums::check_shape;

pub struct CategoryEnum {
    /// The user's enum without `#[category]` attributes.
    pub item: ItemEnum,
    /// False when the enum cannot carry ids at all (generics, fields): the
    /// stub is then the item alone, since a trait impl would add errors.
    pub shape_ok: bool,
    pub variants: Vec<CategoryVariant>,
}

#[derive(Default)]
pub struct CategoryVariant {
    pub ident: Option<Ident>,
    pub id: Option<(i32, LitInt)>,
    pub scope: Option<Path>,
    pub region: Option<Path>,
    pub control: Option<Path>,
    pub retired: bool,
    pub discard: bool,
    pub transactional: bool,
    pub max_attempts: Option<(u32, LitInt)>,
    pub on_poison: Option<Ident>,
    /// Every key given, with its span, for "this key does not go with that one" errors.
    pub keys: Vec<(String, Span)>,
    /// Where to report a missing key: the attribute, or the variant without one.
    pub anchor: TokenStream,
}

impl CategoryVariant {
    pub fn ident(&self) -> &Ident {
        self.ident.as_ref().expect("set by from_item")
    }

    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, s)| *s)
    }
}

pub const KEYS: &[&str] =
    &["id", "scope", "region", "control", "retired", "discard", "transactional", "max_attempts", "on_poison"];

impl CategoryEnum {
    pub fn from_item(mut item: ItemEnum, errors: &mut Errors) -> Self {
        let shape_ok = check_shape(&item, "outbox_category", errors);
        let mut variants = Vec::new();
        for v in &mut item.variants {
            let attrs = strip(&mut v.attrs, "category");
            let ident = &v.ident;
            let mut c = CategoryVariant {
                ident: Some(ident.clone()),
                anchor: attrs.first().map_or_else(|| quote!(#ident), |a| quote!(#a)),
                ..CategoryVariant::default()
            };
            for (i, attr) in attrs.iter().enumerate() {
                if i > 0 {
                    errors.spanned(attr, "duplicate `#[category(...)]` attribute; merge it into the first one");
                    continue;
                }
                parse_keys(attr, KEYS, errors, |key, meta| {
                    c.keys.push((key.to_string(), meta.path.get_ident().map_or_else(Span::call_site, Ident::span)));
                    match key {
                        "id" => c.id = Some(int_value(meta, "an integer id: `id = 0`")?),
                        "scope" => c.scope = Some(path_value(meta, "a scope: `scope = Scope::Variant`")?),
                        "region" => c.region = Some(path_value(meta, "a receiver function: `region = path::to::fn`")?),
                        "control" => {
                            c.control = Some(path_value(meta, "a receiver function: `control = path::to::fn`")?)
                        }
                        "retired" => {
                            c.retired = true;
                            flag(meta, key)?
                        }
                        "discard" => {
                            c.discard = true;
                            flag(meta, key)?
                        }
                        "transactional" => {
                            c.transactional = true;
                            flag(meta, key)?
                        }
                        "max_attempts" => {
                            c.max_attempts = Some(int_value(meta, "a number of attempts: `max_attempts = 5`")?)
                        }
                        "on_poison" => {
                            c.on_poison = Some(ident_value(meta, "`on_poison = skip` or `on_poison = block`")?)
                        }
                        _ => unreachable!("parse_keys only passes known keys"),
                    }
                    Ok(())
                });
            }
            variants.push(c);
        }
        CategoryEnum { item, shape_ok, variants }
    }
}
