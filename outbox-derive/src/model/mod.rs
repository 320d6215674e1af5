//! `#[derive(ReplicatedRegionModel)]` and `#[derive(ReplicatedControlModel)]`:
//! one implementation, parameterised by the outbox the model writes to.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;

use crate::attr::Errors;

/// Which derive is expanding: they differ in the outbox and in `regions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Region,
    Control,
}

impl Direction {
    fn derive_name(self) -> &'static str {
        match self {
            Direction::Region => "ReplicatedRegionModel",
            Direction::Control => "ReplicatedControlModel",
        }
    }
}

/// Expands `#[derive(ReplicatedRegionModel)]`.
pub fn region_model_inner(input: TokenStream) -> syn::Result<TokenStream> {
    model_inner(input, Direction::Region)
}

/// Expands `#[derive(ReplicatedControlModel)]`.
pub fn control_model_inner(input: TokenStream) -> syn::Result<TokenStream> {
    model_inner(input, Direction::Control)
}

fn model_inner(input: TokenStream, direction: Direction) -> syn::Result<TokenStream> {
    let input: syn::DeriveInput = syn::parse2(input)?;
    let mut errors = Errors::default();
    let model = ast::Model::from_input(&input, direction, &mut errors);
    if let Some(model) = &model {
        valid::check(model, &mut errors);
    }
    match (model, errors.finish()) {
        (Some(model), Ok(())) => Ok(expand::expand(&model)),
        (_, result) => {
            // A stub impl keeps the user's `impl RegionReplication for Model`
            // and calls like `model.save(..)` from failing as well.
            let mut out = expand::stub(&input.ident, &input.generics, direction);
            if let Err(e) = result {
                out.extend(e.into_compile_error());
            }
            Ok(out)
        }
    }
}
