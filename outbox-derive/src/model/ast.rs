//! The model struct as parsed: its fields, its Diesel table, its `#[outbox]` keys.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Data, DeriveInput, Fields, Ident, LitInt, Path, Type};

use super::Direction;
use crate::attr::{ident_value, int_value, parse_keys, path_value, Errors};

pub struct Model {
    pub ident: Ident,
    pub direction: Direction,
    pub fields: Vec<ModelField>,
    /// `#[diesel(table_name = ...)]`, else Diesel's default (`Team` -> `teams`).
    pub table: Path,
    /// `#[diesel(primary_key(...))]`, when given.
    pub primary_key: Vec<Ident>,
    pub category: Option<Path>,
    pub shard: Option<Ident>,
    pub object: Option<Ident>,
    pub payload: Option<Ident>,
    pub replication_version: Option<(i32, LitInt)>,
    pub regions: Option<Ident>,
    /// Every `#[outbox]` key given, with its span.
    pub keys: Vec<(String, Span)>,
    /// Where to report a missing key: the `#[outbox]` attribute, else the struct name.
    pub anchor: TokenStream,
}

pub struct ModelField {
    pub ident: Ident,
    pub ty: Type,
    /// The Diesel column: the field name unless `#[diesel(column_name = ...)]`.
    pub column: Ident,
}

impl Model {
    pub fn field(&self, name: &Ident) -> Option<&ModelField> {
        self.fields.iter().find(|f| f.ident == *name)
    }

    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, s)| *s)
    }

    /// The primary key field: `object = field`, else Diesel's `primary_key`, else `id`.
    pub fn object_field(&self) -> Option<&ModelField> {
        match (&self.object, self.primary_key.as_slice()) {
            (Some(object), _) => self.field(object),
            (None, [pk]) => self.field(pk),
            (None, _) => self.fields.iter().find(|f| f.ident == "id"),
        }
    }
}

// `regions` is accepted on both derives so that valid.rs can say why it does
// not belong on a region model, rather than only listing the valid keys.
const KEYS: &[&str] = &["category", "shard", "object", "payload", "replication_version", "regions"];

impl Model {
    pub fn from_input(input: &DeriveInput, direction: Direction, errors: &mut Errors) -> Option<Model> {
        let derive = direction.derive_name();
        let fields = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => &named.named,
                _ => {
                    errors.spanned(&input.ident, format!("`{derive}` needs a struct with named fields"));
                    return None;
                }
            },
            Data::Enum(e) => {
                errors.spanned(e.enum_token, format!("`{derive}` goes on a Diesel model struct, not an enum"));
                return None;
            }
            Data::Union(u) => {
                errors.spanned(u.union_token, format!("`{derive}` goes on a Diesel model struct, not a union"));
                return None;
            }
        };
        if !input.generics.params.is_empty() {
            errors.spanned(&input.generics, format!("`{derive}` models cannot be generic: a table has one row type"));
        }

        let ident = &input.ident;
        let mut table = None;
        let mut primary_key = Vec::new();
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("diesel")) {
            // Diesel validates its own attribute; read what we need and skip the rest.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table_name") {
                    table = Some(meta.value()?.parse::<Path>()?);
                } else if meta.path.is_ident("primary_key") {
                    meta.parse_nested_meta(|pk| {
                        primary_key.extend(pk.path.get_ident().cloned());
                        Ok(())
                    })?;
                }
                while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    meta.input.parse::<proc_macro2::TokenTree>()?;
                }
                Ok(())
            });
        }
        let table = table.unwrap_or_else(|| {
            let name = Ident::new(&default_table_name(&ident.to_string()), ident.span());
            syn::parse_quote!(#name)
        });

        let fields = fields
            .iter()
            .filter_map(|f| {
                let field_ident = f.ident.clone()?;
                let mut column = field_ident.clone();
                for attr in f.attrs.iter().filter(|a| a.path().is_ident("diesel")) {
                    let _ = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("column_name") {
                            column = meta.value()?.parse()?;
                        }
                        while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                            meta.input.parse::<proc_macro2::TokenTree>()?;
                        }
                        Ok(())
                    });
                }
                Some(ModelField { ident: field_ident, ty: f.ty.clone(), column })
            })
            .collect();

        let outbox_attrs: Vec<_> = input.attrs.iter().filter(|a| a.path().is_ident("outbox")).collect();
        let mut model = Model {
            ident: ident.clone(),
            direction,
            fields,
            table,
            primary_key,
            category: None,
            shard: None,
            object: None,
            payload: None,
            replication_version: None,
            regions: None,
            keys: Vec::new(),
            anchor: outbox_attrs.first().map_or_else(|| quote!(#ident), |a| quote!(#a)),
        };
        for (i, attr) in outbox_attrs.iter().enumerate() {
            if i > 0 {
                errors.spanned(attr, "duplicate `#[outbox(...)]` attribute; merge it into the first one");
                continue;
            }
            parse_keys(attr, KEYS, errors, |key, meta| {
                model.keys.push((key.to_string(), meta.path.get_ident().map_or_else(Span::call_site, Ident::span)));
                match key {
                    "category" => {
                        model.category = Some(path_value(meta, "a category: `category = Category::Variant`")?)
                    }
                    "shard" => model.shard = Some(ident_value(meta, "a field name: `shard = organization_id`")?),
                    "object" => model.object = Some(ident_value(meta, "a field name: `object = id`")?),
                    "payload" => model.payload = Some(ident_value(meta, "a method name: `payload = outbox_payload`")?),
                    "regions" => model.regions = Some(ident_value(meta, "a method name: `regions = target_regions`")?),
                    "replication_version" => {
                        model.replication_version = Some(int_value(meta, "an integer: `replication_version = 2`")?)
                    }
                    _ => unreachable!("parse_keys only passes known keys"),
                }
                Ok(())
            });
        }
        Some(model)
    }
}

/// Diesel's default table name: the struct name in snake case, plus `s`.
fn default_table_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    use super::default_table_name;

    #[test]
    fn table_name_like_diesel() {
        assert_eq!(default_table_name("Team"), "teams");
        assert_eq!(default_table_name("OrganizationMember"), "organization_members");
    }
}
