//! `quantrec convert`: quantizes the 2-D tables of a safetensors file to a row-wise format.
//!
//! Every 2-D f32/f16/bf16 tensor (or only those whose name matches `--tensors`) is converted to
//! `--format`, keeping its name; everything else is copied unchanged. Fused outputs are U8 tensors of
//! shape `[rows, row_bytes]`, exactly what PyTorch's `embedding_bag_{byte,4bit,2bit}_prepack` return
//! (so `torch.ops.quantized.embedding_bag_*_rowwise_offsets` accept them); f16/bf16 outputs are
//! F16/BF16 tensors. `__metadata__` keeps the input's entries and gains `quantrec.format.<name>` =
//! format name for every converted tensor, plus `quantrec.convert` = a JSON summary.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use half::{bf16, f16};
use quantrec_kernels::formats::{QuantizeOptions, TableFormat, quantize_table};
use regex::Regex;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

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

/// A tensor of the output file.
struct Out {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// Runs `quantrec convert`.
pub fn run(args: ConvertArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("parsing {} as safetensors", args.input.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("reading the header of {}", args.input.display()))?;
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();

    let mut outputs: Vec<(String, Out)> = Vec::new();
    let mut converted = Vec::new();
    let (mut before, mut after) = (0usize, 0usize);
    let mut names = st.names();
    names.sort();
    for name in names {
        let view = st.tensor(name)?;
        let selected = args.tensors.as_ref().is_none_or(|re| re.is_match(name));
        let convertible = view.shape().len() == 2
            && matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16);
        if selected && !convertible && args.tensors.is_some() {
            bail!(
                "tensor {name} matches --tensors but is {:?} {:?}; only 2-D f32/f16/bf16 tensors can be converted",
                view.dtype(),
                view.shape()
            );
        }
        if !(selected && convertible) {
            outputs.push((
                name.to_string(),
                Out {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
                },
            ));
            continue;
        }
        let out = convert(name, &view, args.format, args.greedy, args.refine)
            .with_context(|| format!("converting tensor {name} to {}", args.format))?;
        println!(
            "{name}: {:?} {:?} ({} bytes) -> {} {:?} ({} bytes)",
            view.dtype(),
            view.shape(),
            view.data().len(),
            args.format,
            out.shape,
            out.data.len()
        );
        before += view.data().len();
        after += out.data.len();
        metadata.insert(
            format!("quantrec.format.{name}"),
            args.format.name().to_string(),
        );
        converted.push(name.to_string());
        outputs.push((name.to_string(), out));
    }
    if converted.is_empty() {
        bail!(
            "no tensor of {} was converted: none is a 2-D f32/f16/bf16 tensor{}",
            args.input.display(),
            if args.tensors.is_some() {
                " matching --tensors"
            } else {
                ""
            }
        );
    }
    metadata.insert(
        "quantrec.convert".to_string(),
        serde_json::json!({
            "format": args.format.name(),
            "greedy": args.greedy,
            "refine": args.refine,
            "tensors": converted,
        })
        .to_string(),
    );

    let views = outputs
        .iter()
        .map(|(n, o)| {
            TensorView::new(o.dtype, o.shape.clone(), &o.data)
                .map(|v| (n.clone(), v))
                .with_context(|| format!("building output tensor {n}"))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, Some(metadata), &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "converted {} tensor(s) to {}{}: {} bytes -> {} bytes ({:.2}x smaller); copied {} other tensor(s); wrote {}",
        converted.len(),
        args.format,
        match (args.greedy, args.refine) {
            (true, true) => " (greedy ranges, least-squares refit)",
            (true, false) => " (greedy ranges)",
            (false, true) => " (least-squares refit)",
            (false, false) => "",
        },
        before,
        after,
        before as f64 / after.max(1) as f64,
        outputs.len() - converted.len(),
        args.output.display()
    );
    Ok(())
}

/// Quantizes one 2-D float tensor.
fn convert(
    name: &str,
    view: &TensorView<'_>,
    format: TableFormat,
    greedy: bool,
    refine: bool,
) -> Result<Out> {
    let (rows, dim) = (view.shape()[0], view.shape()[1]);
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => bail!("{other:?} tensors cannot be converted"),
    };
    let opts = QuantizeOptions {
        greedy,
        refine,
        name,
    };
    let packed = quantize_table(&values, rows, dim, format, &opts)?;
    let (dtype, shape) = match format {
        TableFormat::F32 => (Dtype::F32, vec![rows, dim]),
        TableFormat::F16 => (Dtype::F16, vec![rows, dim]),
        TableFormat::Bf16 => (Dtype::BF16, vec![rows, dim]),
        _ => (Dtype::U8, vec![rows, format.row_bytes(dim)]),
    };
    Ok(Out {
        dtype,
        shape,
        data: packed,
    })
}
