//! Attribute parsing shared by every macro: `#[name(key = value, flag, ...)]`
//! lists whose errors are collected rather than returned one at a time, so a
//! user fixing an item sees all its mistakes in one compile.

use proc_macro2::{Span, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Ident, LitInt, Path, Token};

/// Collects every error of one item; `finish` combines them into one
/// `syn::Error`, which rustc renders as one diagnostic per message.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn spanned<T: ToTokens, D: std::fmt::Display>(&mut self, tokens: T, message: D) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn at<D: std::fmt::Display>(&mut self, span: Span, message: D) {
        self.push(syn::Error::new(span, message));
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Parses the keys of one helper attribute (`#[category(...)]` for example).
///
/// `on_key` handles one known key and may fail; its error is recorded and
/// parsing resumes at the next comma, so one bad value does not hide the
/// errors after it. Unknown keys are reported with the list of valid ones, and
/// a repeated key on its second occurrence (where the user must delete it).
pub fn parse_keys(
    attr: &Attribute,
    valid: &[&str],
    errors: &mut Errors,
    mut on_key: impl FnMut(&str, &ParseNestedMeta) -> syn::Result<()>,
) {
    let name = attr.path().to_token_stream().to_string();
    let mut seen: Vec<String> = Vec::new();
    if let syn::Meta::Path(_) = attr.meta {
        errors.spanned(attr, format!("expected `#[{name}(...)]` with keys: {}", valid.join(", ")));
        return;
    }
    let result = attr.parse_nested_meta(|meta| {
        let key = meta.path.to_token_stream().to_string().replace(' ', "");
        if !valid.contains(&key.as_str()) {
            errors.spanned(
                &meta.path,
                format!("unknown key `{key}` in `#[{name}(...)]`; expected one of: {}", valid.join(", ")),
            );
        } else if seen.contains(&key) {
            errors.spanned(&meta.path, format!("duplicate key `{key}` in `#[{name}(...)]`; remove this one"));
        } else {
            seen.push(key.clone());
            if let Err(e) = on_key(&key, &meta) {
                errors.push(e);
            }
        }
        skip_rest(&meta)
    });
    if let Err(e) = result {
        errors.push(e);
    }
}

/// Skips whatever is left of the current key's value, up to the next comma.
fn skip_rest(meta: &ParseNestedMeta) -> syn::Result<()> {
    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// `key = <integer>` as an `i32` id (ids are stored in INTEGER columns).
pub fn int_value<N>(meta: &ParseNestedMeta, what: &str) -> syn::Result<(N, LitInt)>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let lit: LitInt = meta.value()?.parse().map_err(|e| syn::Error::new(e.span(), format!("expected {what}")))?;
    let n = lit.base10_parse::<N>().map_err(|e| syn::Error::new(lit.span(), format!("expected {what}: {e}")))?;
    Ok((n, lit))
}

/// `key = some::path`.
pub fn path_value(meta: &ParseNestedMeta, what: &str) -> syn::Result<Path> {
    meta.value()?.parse::<Path>().map_err(|e| syn::Error::new(e.span(), format!("expected {what}")))
}

/// `key = identifier` (a field or method name).
pub fn ident_value(meta: &ParseNestedMeta, what: &str) -> syn::Result<Ident> {
    meta.value()?.parse::<Ident>().map_err(|e| syn::Error::new(e.span(), format!("expected {what}")))
}

/// A bare `key`; `key = ...` is a mistake worth naming (`retired = true`).
pub fn flag(meta: &ParseNestedMeta, key: &str) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        return Err(meta.error(format!("`{key}` is a flag and takes no value: write `{key}` alone")));
    }
    Ok(())
}

/// Removes the helper attributes an attribute macro consumed: unlike derive
/// helpers, they are not registered, so leaving one behind is an error.
pub fn strip(attrs: &mut Vec<Attribute>, name: &str) -> Vec<Attribute> {
    let (ours, theirs) = std::mem::take(attrs).into_iter().partition(|a| a.path().is_ident(name));
    *attrs = theirs;
    ours
}

/// `Enum::Variant` split into the enum's path and the variant, so generated
/// code can name the type once and the variant once (each name resolves in one
/// place, so a typo is one error).
pub fn split_variant(path: &Path) -> Option<(Path, Ident)> {
    if path.segments.len() < 2 || path.segments.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
    let mut ty = path.clone();
    let last = ty.segments.pop()?.into_value();
    // Popping leaves a trailing `::`; rebuild the punctuation without it.
    let segments = ty.segments.into_iter().collect();
    ty.segments = segments;
    Some((ty, last.ident))
}
