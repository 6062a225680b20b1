//! One module per subcommand.

pub mod demo;
pub mod r#gen;
pub mod import;
pub mod inspect;
pub mod predict;
