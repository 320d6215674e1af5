//! Procedural macros of the `outbox` framework. Use them through `outbox::prelude`.
use proc_macro::TokenStream;

/// Declares an enum of outbox scopes.
#[proc_macro_attribute]
pub fn outbox_scope(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
/// Declares the enum of outbox categories.
#[proc_macro_attribute]
pub fn outbox_category(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
/// Region model hooks.
#[proc_macro_derive(ReplicatedRegionModel, attributes(outbox))]
pub fn derive_region(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
/// Control model hooks.
#[proc_macro_derive(ReplicatedControlModel, attributes(outbox))]
pub fn derive_control(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
