//! Topic rules shared by broker, client and harness: name and filter validation.

pub mod validate;
pub use validate::*;
