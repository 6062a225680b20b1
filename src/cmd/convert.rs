//! `quantrec convert`: quantizes the 2-D tables of a safetensors file to a row-wise format
//! ([`quantrec_model::convert`], which says what is written).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::convert::{ConvertOptions, convert_file};
use regex::Regex;

/// Arguments of `quantrec convert`.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The safetensors file to read.
    pub input: PathBuf,
    /// The safetensors file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Target format: fused8, fused8half, fused4, fused2, f16, bf16 (or f32).
    #[arg(long, value_parser = parse_format)]
    pub format: TableFormat,
    /// Choose each row's clipping range with PyTorch's greedy L2 search (`optimized_qparams=True`;
    /// fused8half, fused4 and fused2 only).
    #[arg(long)]
    pub greedy: bool,
    /// Then refit each N-bit row's f16 scale and bias by least squares (fused8half, fused4 and
    /// fused2 only): same layout PyTorch reads, less error per row, but not PyTorch's exact bytes.
    #[arg(long)]
    pub refine: bool,
    /// Only convert tensors whose name matches this regular expression (unanchored: use `^...$` for
    /// whole names); each matching tensor must be a 2-D float tensor.
    #[arg(long)]
    pub tensors: Option<Regex>,
}

fn parse_format(s: &str) -> std::result::Result<TableFormat, String> {
    TableFormat::parse(s).ok_or_else(|| {
        let names: Vec<_> = TableFormat::ALL.iter().map(|f| f.name()).collect();
        format!("unknown format {s:?}; expected one of {}", names.join(", "))
    })
}

/// Runs `quantrec convert`.
pub fn run(args: ConvertArgs) -> Result<()> {
    let options = ConvertOptions {
        format: args.format,
        greedy: args.greedy,
        refine: args.refine,
    };
    let select = args
        .tensors
        .as_ref()
        .map(|re| move |name: &str| re.is_match(name));
    let summary = convert_file(
        &args.input,
        &args.output,
        options,
        select.as_ref().map(|f| f as &dyn Fn(&str) -> bool),
    )
    .with_context(|| format!("converting {}", args.input.display()))?;
    for t in &summary.converted {
        println!("{}", t.line(args.format));
    }
    println!("{summary}; wrote {}", args.output.display());
    Ok(())
}
