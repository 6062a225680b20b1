//! One module per subcommand.

pub mod convert;
pub mod demo;
pub mod eval;
pub mod r#gen;
pub mod import;
pub mod inspect;
pub mod predict;
pub mod train;
