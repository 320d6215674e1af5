//! `#[outbox_scope]`: an enum of scopes, each with a stable id.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;

use crate::attr::Errors;
use crate::enums::parse_enum;

/// Expands `#[outbox_scope]`. Errors come back inside the tokens, after a stub
/// of the enum, so code naming the enum does not fail as well.
pub fn outbox_scope_inner(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let item = match parse_enum(input, "outbox_scope") {
        Ok(item) => item,
        Err(reported) => return Ok(reported),
    };
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.spanned(&args, "`#[outbox_scope]` takes no arguments; put `#[scope(id = N)]` on each variant");
    }
    let scopes = ast::ScopeEnum::from_item(item, &mut errors);
    valid::check(&scopes, &mut errors);
    Ok(match errors.finish() {
        Ok(()) => expand::expand(&scopes),
        Err(e) => {
            let mut out = expand::stub(&scopes);
            out.extend(e.into_compile_error());
            out
        }
    })
}
