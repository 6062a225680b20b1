//! Whole-table quantization and dequantization (the safe entry points re-exported by `formats`).

use half::{bf16, f16};
use rayon::prelude::*;

use super::codes::CodeOps;
use super::decode::DecodeOps;
use super::greedy::{self, GreedyOps};
use super::{TableFormat, TableRef, dequantize_row, fused8, nbit, refine};
use crate::{Isa, KernelError, QuantProblem, Result};

/// Rows handed to one rayon task.
const ROWS_PER_TASK: usize = 512;

/// How [`quantize_table`] quantizes.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuantizeOptions<'a> {
    /// Choose each N-bit row's clipping range with the greedy L2 search (PyTorch's
    /// `optimized_qparams=True`) instead of its min and max. Only for [`TableFormat::Fused8Half`],
    /// [`TableFormat::Fused4`] and [`TableFormat::Fused2`]; asking for it with another format is an error.
    pub greedy: bool,
    /// After choosing the range, refit each N-bit row's f16 scale and bias (and its codes) by least
    /// squares ([`super::refine`]): same byte layout, never a larger row error than without. Only
    /// for the formats `greedy` applies to. Rows then differ from PyTorch's bytes (they decode with
    /// less error), so leave it off to reproduce PyTorch exactly.
    pub refine: bool,
    /// Names the table in errors.
    pub name: &'a str,
}

/// Quantizes a row-major `rows × dim` f32 table to `format` (byte-compatible with FBGEMM/PyTorch:
/// see the module docs of [`crate::formats`]). Errors: a dimension the format cannot hold, a length
/// that is not `rows · dim`, a NaN or infinite value (naming the table, row and column), or greedy
/// search for a format without it.
pub fn quantize_table(
    src: &[f32],
    rows: usize,
    dim: usize,
    format: TableFormat,
    opts: &QuantizeOptions<'_>,
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; rows * format.row_bytes(dim)];
    quantize_table_with(Isa::active(), src, rows, dim, format, opts, &mut out)?;
    Ok(out)
}

/// [`quantize_table`] for an f16 table (values are widened to f32 exactly, as FBGEMM does).
pub fn quantize_table_f16(
    src: &[f16],
    rows: usize,
    dim: usize,
    format: TableFormat,
    opts: &QuantizeOptions<'_>,
) -> Result<Vec<u8>> {
    let wide: Vec<f32> = src.iter().map(|v| v.to_f32()).collect();
    quantize_table(&wide, rows, dim, format, opts)
}

/// Quantizes one row into `out` (`format.row_bytes(src.len())` bytes); errors name the row as row 0
/// of `opts.name`.
pub fn quantize_row(
    src: &[f32],
    format: TableFormat,
    opts: &QuantizeOptions<'_>,
    out: &mut [u8],
) -> Result<()> {
    quantize_table_with(Isa::active(), src, 1, src.len(), format, opts, out)
}

/// [`quantize_table`] into a caller's buffer of `rows · format.row_bytes(dim)` bytes, with the
/// kernels of ISA level `isa` (every level gives the same bytes; tests pin each one). A level this
/// CPU lacks is an error.
pub fn quantize_table_with(
    isa: Isa,
    src: &[f32],
    rows: usize,
    dim: usize,
    format: TableFormat,
    opts: &QuantizeOptions<'_>,
    out: &mut [u8],
) -> Result<()> {
    format.check_dim(dim)?;
    let name = opts.name;
    if src.len() != rows * dim {
        return Err(KernelError::Shape {
            what: "table source (rows × dim)",
            index: None,
            expected: rows * dim,
            found: src.len(),
        });
    }
    let row_bytes = format.row_bytes(dim);
    if out.len() != rows * row_bytes {
        return Err(KernelError::Shape {
            what: "table output bytes (rows × row bytes)",
            index: None,
            expected: rows * row_bytes,
            found: out.len(),
        });
    }
    let nbit = matches!(format.bits(), 2 | 4) || format == TableFormat::Fused8Half;
    if (opts.greedy || opts.refine) && !nbit {
        let what = if opts.greedy {
            "greedy range search"
        } else {
            "least-squares refinement"
        };
        return Err(KernelError::BadQuantParams {
            what: "table quantization",
            table: Some(name.to_string()),
            problem: QuantProblem::NotNBit {
                option: what,
                format: format.name(),
            },
        });
    }
    let (greedy_ops, code_ops) = (GreedyOps::for_isa(isa)?, CodeOps::for_isa(isa)?);
    check_finite(src, dim, name)?;
    if rows == 0 {
        return Ok(());
    }
    let bits = format.bits() as u32;
    let ranges = if opts.greedy {
        let mut r = vec![(0.0f32, 0.0f32); rows];
        greedy::search_rows(&greedy_ops, src, dim, bits, &mut r)?;
        Some(r)
    } else {
        None
    };
    let row_src = |r: usize| &src[r * dim..(r + 1) * dim];
    let first_bad = out
        .par_chunks_mut(ROWS_PER_TASK * row_bytes)
        .enumerate()
        .map(|(task, chunk)| {
            let ops = &code_ops;
            let mut scratch = Vec::new();
            let mut codes = Vec::new();
            let mut bad = None;
            for (k, o) in chunk.chunks_exact_mut(row_bytes).enumerate() {
                let r = task * ROWS_PER_TASK + k;
                let x = row_src(r);
                match (format, &ranges) {
                    (TableFormat::F32, _) => {
                        for (b, v) in o.chunks_exact_mut(4).zip(x) {
                            b.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    (TableFormat::F16, _) => {
                        for (b, v) in o.chunks_exact_mut(2).zip(x) {
                            b.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
                        }
                    }
                    (TableFormat::Bf16, _) => {
                        for (b, v) in o.chunks_exact_mut(2).zip(x) {
                            b.copy_from_slice(&bf16::from_f32(*v).to_le_bytes());
                        }
                    }
                    (TableFormat::Fused8, _) => fused8::quantize_row(ops, x, o),
                    (_, Some(ranges)) => {
                        let (lo, hi) = ranges[r];
                        nbit::quantize_row_with_range(ops, x, bits, lo, hi, &mut scratch, o);
                    }
                    (_, None) => nbit::quantize_row(ops, x, bits, &mut scratch, o),
                }
                if opts.refine {
                    refine::refine_row(x, bits, &mut codes, o);
                }
                if bad.is_none() && !row_is_representable(format, dim, o) {
                    bad = Some(r);
                }
            }
            bad
        })
        .flatten()
        .min();
    match first_bad {
        None => Ok(()),
        Some(r) => Err(unrepresentable(
            format,
            dim,
            &out[r * row_bytes..(r + 1) * row_bytes],
            r,
            name,
        )),
    }
}

/// Whether a quantized row can be used: no f16/bf16 value overflowed to infinity, and its scale and
/// bias are finite (checked on the stored bits).
fn row_is_representable(format: TableFormat, dim: usize, row: &[u8]) -> bool {
    let half_finite = |b: &[u8], exp: u16| u16::from_le_bytes([b[0], b[1]]) & exp != exp;
    let c = format.code_bytes(dim);
    match format {
        TableFormat::F32 => true,
        TableFormat::F16 => row
            .chunks_exact(2)
            .fold(true, |ok, b| ok & half_finite(b, 0x7c00)),
        TableFormat::Bf16 => row
            .chunks_exact(2)
            .fold(true, |ok, b| ok & half_finite(b, 0x7f80)),
        TableFormat::Fused8 => row[c..c + 8].chunks_exact(4).all(|b| {
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            bits & 0x7f80_0000 != 0x7f80_0000
        }),
        _ => half_finite(&row[c..], 0x7c00) && half_finite(&row[c + 2..], 0x7c00),
    }
}

/// The error for a row that [`row_is_representable`] refused: FBGEMM would have written it
/// silently broken (an infinite value, or an infinite bias with all-zero codes).
fn unrepresentable(
    format: TableFormat,
    dim: usize,
    row: &[u8],
    r: usize,
    name: &str,
) -> KernelError {
    let problem = if format.bits() == 16 {
        let mut decoded = vec![0f32; dim];
        dequantize_row(format, row, &mut decoded);
        let c = decoded.iter().position(|v| !v.is_finite()).unwrap_or(0);
        let max = if format == TableFormat::F16 {
            f16::MAX.to_f32()
        } else {
            bf16::MAX.to_f32()
        };
        QuantProblem::Overflow {
            row: r,
            col: c,
            largest: max,
        }
    } else {
        // The row's values or range exceed what the format's scale and bias can hold.
        let (scale, bias) = super::row_scale_bias(format, dim, row);
        QuantProblem::RowScaleBias {
            row: r,
            scale,
            bias,
        }
    };
    KernelError::BadQuantParams {
        what: "table quantization",
        table: Some(name.to_string()),
        problem,
    }
}

/// The first NaN or infinity of a row-major table, as [`KernelError::NonFinite`] naming `name`.
fn check_finite(src: &[f32], dim: usize, name: &str) -> Result<()> {
    const CHUNK: usize = 1024;
    for (c, chunk) in src.chunks(CHUNK).enumerate() {
        // A branch-free pass per chunk (vectorizes); the position only when something is wrong.
        if chunk.iter().fold(true, |ok, v| ok & v.is_finite()) {
            continue;
        }
        let i = c * CHUNK
            + chunk
                .iter()
                .position(|v| !v.is_finite())
                .expect("found above");
        return Err(KernelError::NonFinite {
            what: "table source",
            table: Some(name.to_string()),
            row: i / dim,
            col: i % dim,
            value: src[i],
        });
    }
    Ok(())
}

/// Decodes a whole table into `out` (`rows · dim` f32, row-major), in parallel over rows; each row
/// is bit-for-bit [`dequantize_row`] (the vector levels are tested against it).
pub fn dequantize_table(table: &TableRef<'_>, out: &mut [f32]) -> Result<()> {
    dequantize_table_with(Isa::active(), table, out)
}

/// [`dequantize_table`] with the decoders of ISA level `isa` (an error if this CPU lacks it).
pub fn dequantize_table_with(isa: Isa, table: &TableRef<'_>, out: &mut [f32]) -> Result<()> {
    let ops = DecodeOps::for_isa(isa)?;
    let (rows, dim) = (table.rows, table.dim);
    if out.len() != rows * dim {
        return Err(KernelError::Shape {
            what: "dequantized table (rows × dim)",
            index: None,
            expected: rows * dim,
            found: out.len(),
        });
    }
    if dim == 0 {
        return Ok(());
    }
    out.par_chunks_mut(ROWS_PER_TASK * dim)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (k, o) in chunk.chunks_exact_mut(dim).enumerate() {
                ops.decode_checked(table.format, table.row(task * ROWS_PER_TASK + k), o);
            }
        });
    Ok(())
}
