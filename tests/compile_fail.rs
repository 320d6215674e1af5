//! Every compile-time check of the macros, with the message users see.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test compile_fail`,
//! then read every changed `.stderr`: it is the product's error message.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
