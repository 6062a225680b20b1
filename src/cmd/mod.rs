//! One module per subcommand.

pub mod args;
pub mod bench;
pub mod calibrate;
pub mod convert;
pub mod debug;
pub mod demo;
pub mod eval;
pub mod r#gen;
pub mod import;
pub mod inspect;
pub mod loadgen;
pub mod output;
pub mod predict;
pub mod quantize;
pub mod refresh;
pub mod search;
pub mod serve;
pub mod tables;
pub mod train;
