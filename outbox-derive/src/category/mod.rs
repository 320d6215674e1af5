//! `#[outbox_category]`: the table of contents of every kind of outbox message.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;

use crate::attr::Errors;
use crate::enums::parse_enum;

/// Expands `#[outbox_category]`. Errors come back inside the tokens, after a
/// stub of the enum, so models naming a category do not fail as well.
pub fn outbox_category_inner(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let item = match parse_enum(input, "outbox_category") {
        Ok(item) => item,
        Err(reported) => return Ok(reported),
    };
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.spanned(&args, "`#[outbox_category]` takes no arguments; put `#[category(...)]` on each variant");
    }
    let categories = ast::CategoryEnum::from_item(item, &mut errors);
    valid::check(&categories, &mut errors);
    Ok(match errors.finish() {
        Ok(()) => expand::expand(&categories),
        Err(e) => {
            let mut out = expand::stub(&categories);
            out.extend(e.into_compile_error());
            out
        }
    })
}
