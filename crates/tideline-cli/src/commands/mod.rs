//! One module per subcommand.

pub mod demo;
pub mod pattern;
pub mod tail;
pub mod up;
