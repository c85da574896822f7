//! `#[derive(KerasLayer)]`: the Rust counterpart of Keras's
//! `@keras.saving.register_keras_serializable(package=..., name=...)`.
//!
//! The derive only records the registered name; everything else (config through serde, weights,
//! lookup) lives in `strata-registry`, which re-exports this macro:
//!
//! ```ignore
//! use strata_registry::KerasLayer;
//! #[derive(KerasLayer, serde::Serialize, serde::Deserialize)]
//! #[keras(package = "my_custom_layers")] // registered as `my_custom_layers>CustomDense`
//! struct CustomDense { units: usize }
//! ```
//!
//! Attributes (all optional): `package = "..."` (default `"Custom"`, Keras's default package) and
//! `name = "..."` (default: the struct's name); or `unregistered`, for a class as Keras saves it
//! when it was never registered (registered name = the bare class name, loadable only through
//! `custom_objects`, i.e. `Registry::layer`). The generated impl is of
//! `strata_registry::KerasClass`, so the deriving crate must depend on `strata-registry`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr, parse_macro_input};

/// Implements `strata_registry::KerasClass` (package and class name) for a struct or enum.
/// See the crate docs for the `#[keras(package = "...", name = "...")]` attribute.
#[proc_macro_derive(KerasLayer, attributes(keras))]
pub fn derive_keras_layer(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut package: Option<LitStr> = None;
    let mut unregistered = false;
    let mut name: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("keras")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("unregistered") {
                unregistered = true;
                Ok(())
            } else if meta.path.is_ident("package") {
                package = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("name") {
                name = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown `keras` attribute; expected `package = \"...\"`, `name = \"...\"` or `unregistered`",
                ))
            }
        })?;
    }
    for lit in package.iter().chain(name.iter()) {
        let v = lit.value();
        if v.is_empty() || v.contains('>') {
            return Err(syn::Error::new(lit.span(), "must be non-empty and must not contain `>`"));
        }
    }
    let ident = &input.ident;
    // `unregistered`: a class Keras saves without `register_keras_serializable` (its registered
    // name is the bare class name), found only through `custom_objects` on load
    let package =
        if unregistered { String::new() } else { package.map(|l| l.value()).unwrap_or_else(|| "Custom".to_string()) };
    let name = name.map(|l| l.value()).unwrap_or_else(|| ident.to_string());
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::strata_registry::KerasClass for #ident #ty_generics #where_clause {
            const PACKAGE: &'static str = #package;
            const NAME: &'static str = #name;
        }
    })
}
