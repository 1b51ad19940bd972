//! One module per subcommand.

pub mod consumer;
pub mod cost;
pub mod demo;
pub mod pattern;
pub mod reingest;
pub mod replay;
pub mod schema;
pub mod tail;
pub mod up;
