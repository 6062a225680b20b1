//! One module per subcommand.

pub mod demo;
pub mod import;
pub mod inspect;
pub mod predict;
