//! The stage functions, shared by the Lambdas and local mode.

pub mod emit;
pub mod query;
pub mod store;
pub mod transform;
