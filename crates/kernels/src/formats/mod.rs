//! FBGEMM-compatible row-wise table formats.
//!
//! Byte layouts, one row after another, little-endian:
//! - [`TableFormat::F32`]: `d × f32`.
//! - [`TableFormat::F16`] / [`TableFormat::Bf16`]: `d × f16` / `d × bf16` (round to nearest even).
//! - [`TableFormat::Fused8`]: `d × u8` codes, then `f32 scale`, `f32 bias` (FBGEMM `embedding_bag_byte_prepack`).
//! - [`TableFormat::Fused8Half`], [`TableFormat::Fused4`], [`TableFormat::Fused2`]: `ceil(d·N/8)` bytes of
//!   codes with element 0 in the lowest bits, then `f16 scale`, `f16 bias` (FBGEMM's N-bit fused rows).
//!
//! A value decodes as `code · scale + bias`.
//!
//! Quantizing ([`quantize_table`], [`quantize_row`], [`quantize_table_f16`]) reproduces PyTorch 2.x /
//! FBGEMM byte for byte:
//! - `fused8`: `embedding_bag_byte_prepack` — `scale = range/255` (f32), `bias = min` (f32),
//!   `code = lrintf((x - min) · 255/(range + 1e-8))` (round half to even).
//! - `fused8half`, `fused4`, `fused2`: `embedding_bag_{4,2}bit_prepack` — `bias = f16(min)`,
//!   `scale = f16((max - bias)/(2^N - 1))` (1 when that is 0 or the range is 0),
//!   `code = clamp(lrintf((x - bias) · (1/scale)), 0, 2^N - 1)`.
//! - with [`QuantizeOptions::greedy`]: the clipping range `[lo, hi]` of each N-bit row comes from the
//!   greedy L2 search of `optimized_qparams=True` ([`greedy`]), then the same N-bit formula with
//!   `lo`, `hi` in place of min and max.
//! - `f16` / `bf16`: round to nearest even.
//!
//! Values must be finite ([`crate::KernelError::NonFinite`] names the table, row and column), and
//! rows whose f16 (or, for `fused8`, f32) scale or bias would not be finite are refused instead of
//! written as FBGEMM would (infinite bias, all-zero codes). [`dequantize_table`] decodes back to f32.
//!
//! Kernel families, each with an ops table per [`crate::Isa`] level (scalar oracle, AVX2, AVX-512)
//! and tested bit for bit against the oracle at every level: [`GreedyOps`] (the range search, one
//! row per vector lane), [`CodeOps`] (min/max and codes), [`DecodeOps`] (rows back to f32).
//! `quantize_table_with` / `dequantize_table_with` pin a level; the plain functions use
//! [`crate::Isa::active`]. Tables are processed in parallel over rows with rayon.

pub mod codes;
pub mod decode;
mod fused8;
pub mod greedy;
mod metric;
mod nbit;
mod refine;
mod round;
mod table;

pub use codes::CodeOps;
pub use decode::DecodeOps;
pub use greedy::GreedyOps;
pub use metric::refine_row_in_metric;
pub use table::{
    QuantizeOptions, dequantize_table, dequantize_table_with, quantize_row, quantize_table,
    quantize_table_f16, quantize_table_with,
};

use crate::{KernelError, Result};
use half::{bf16, f16};

/// How one embedding table stores its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableFormat {
    /// Plain f32.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
    /// 8-bit codes with f32 scale and bias per row.
    Fused8,
    /// 8-bit codes with f16 scale and bias per row.
    Fused8Half,
    /// 4-bit codes (two per byte) with f16 scale and bias per row.
    Fused4,
    /// 2-bit codes (four per byte) with f16 scale and bias per row.
    Fused2,
}

impl TableFormat {
    /// Every format, widest first.
    pub const ALL: [TableFormat; 7] = [
        TableFormat::F32,
        TableFormat::F16,
        TableFormat::Bf16,
        TableFormat::Fused8,
        TableFormat::Fused8Half,
        TableFormat::Fused4,
        TableFormat::Fused2,
    ];

    /// The name used on the command line, in plans and in artifact metadata.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::F32 => "f32",
            TableFormat::F16 => "f16",
            TableFormat::Bf16 => "bf16",
            TableFormat::Fused8 => "fused8",
            TableFormat::Fused8Half => "fused8half",
            TableFormat::Fused4 => "fused4",
            TableFormat::Fused2 => "fused2",
        }
    }

    /// Parses a name produced by [`TableFormat::name`].
    pub fn parse(s: &str) -> Option<TableFormat> {
        TableFormat::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Bits per stored code for the fused formats; 32 / 16 for the float formats.
    pub fn bits(self) -> usize {
        match self {
            TableFormat::F32 => 32,
            TableFormat::F16 | TableFormat::Bf16 => 16,
            TableFormat::Fused8 | TableFormat::Fused8Half => 8,
            TableFormat::Fused4 => 4,
            TableFormat::Fused2 => 2,
        }
    }

    /// Whether rows carry a per-row scale and bias after the codes.
    pub fn is_fused(self) -> bool {
        matches!(
            self,
            TableFormat::Fused8
                | TableFormat::Fused8Half
                | TableFormat::Fused4
                | TableFormat::Fused2
        )
    }

    /// Checks that rows of dimension `dim` can be stored: 4-bit rows need an even dimension and 2-bit
    /// rows a multiple of 4 (FBGEMM's rule; no silent padding).
    pub fn check_dim(self, dim: usize) -> Result<()> {
        match self {
            TableFormat::Fused4 if !dim.is_multiple_of(2) => Err(KernelError::UnsupportedDim {
                format: self.name(),
                dim,
                reason: "4-bit rows need an even dimension",
            }),
            TableFormat::Fused2 if !dim.is_multiple_of(4) => Err(KernelError::UnsupportedDim {
                format: self.name(),
                dim,
                reason: "2-bit rows need a dimension divisible by 4",
            }),
            _ => Ok(()),
        }
    }

    /// Bytes of the packed codes (or plain values) of one row, without scale and bias.
    pub fn code_bytes(self, dim: usize) -> usize {
        match self {
            TableFormat::F32 => dim * 4,
            TableFormat::F16 | TableFormat::Bf16 => dim * 2,
            _ => (dim * self.bits()).div_ceil(8),
        }
    }

    /// Bytes of one whole row, scale and bias included.
    pub fn row_bytes(self, dim: usize) -> usize {
        self.code_bytes(dim)
            + match self {
                TableFormat::Fused8 => 8,
                TableFormat::Fused8Half | TableFormat::Fused4 | TableFormat::Fused2 => 4,
                _ => 0,
            }
    }

    /// The row dimension of a fused row of `row_bytes` bytes (inverse of [`TableFormat::row_bytes`]
    /// for fused formats; used to read FBGEMM-packed tensors whose shape is `[rows, row_bytes]`).
    pub fn dim_from_row_bytes(self, row_bytes: usize) -> Option<usize> {
        let per_row = self.row_bytes(0);
        let codes = row_bytes.checked_sub(per_row)?;
        let dim = match self {
            TableFormat::F32 => (codes % 4 == 0).then_some(codes / 4)?,
            TableFormat::F16 | TableFormat::Bf16 => (codes % 2 == 0).then_some(codes / 2)?,
            _ => codes * 8 / self.bits(),
        };
        Some(dim)
    }
}

impl std::fmt::Display for TableFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A borrowed table: `rows` rows of dimension `dim` stored back to back in `format`.
#[derive(Clone, Copy, Debug)]
pub struct TableRef<'a> {
    /// How rows are stored.
    pub format: TableFormat,
    /// Number of rows.
    pub rows: usize,
    /// Logical row dimension (number of values per row).
    pub dim: usize,
    /// `rows · format.row_bytes(dim)` bytes.
    pub data: &'a [u8],
}

impl<'a> TableRef<'a> {
    /// Wraps `data`, checking that its length matches `rows × row_bytes(dim)` and the dimension rule.
    pub fn new(format: TableFormat, rows: usize, dim: usize, data: &'a [u8]) -> Result<Self> {
        format.check_dim(dim)?;
        let expected = rows * format.row_bytes(dim);
        if data.len() != expected {
            return Err(KernelError::Shape {
                what: "table bytes (rows × row bytes)",
                index: None,
                expected,
                found: data.len(),
            });
        }
        Ok(TableRef {
            format,
            rows,
            dim,
            data,
        })
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.format.row_bytes(self.dim)
    }

    /// The raw bytes of row `r` (panics if `r >= rows`; callers check ids first).
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// The f32 value of the IEEE half with bits `h`, exactly (what `half::f16::to_f32` and F16C's
/// `vcvtph2ps` return; NaNs stay NaNs with their payload), without branches or a CPU-feature check:
/// the row decoders read two of these per looked-up row.
#[inline(always)]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let magnitude = u32::from(h & 0x7fff);
    // Exponent and mantissa moved into an f32's fields read as 2^-112 times the value, so one
    // multiplication by 2^112 (exact: a power of two into the normal range) rebases normals and
    // turns subnormal halves into normal floats; infinities and NaNs take the all-ones exponent.
    let rebased = f32::from_bits(magnitude << 13) * f32::from_bits(0x7780_0000);
    let special = f32::from_bits((magnitude << 13) | 0x7f80_0000);
    let v = if magnitude >= 0x7c00 {
        special
    } else {
        rebased
    };
    f32::from_bits(v.to_bits() | sign)
}

/// Reads the `(scale, bias)` stored after the codes of a fused row.
#[inline]
pub fn row_scale_bias(format: TableFormat, dim: usize, row: &[u8]) -> (f32, f32) {
    let c = format.code_bytes(dim);
    match format {
        TableFormat::Fused8 => (
            f32::from_le_bytes(row[c..c + 4].try_into().expect("4 bytes")),
            f32::from_le_bytes(row[c + 4..c + 8].try_into().expect("4 bytes")),
        ),
        TableFormat::Fused8Half | TableFormat::Fused4 | TableFormat::Fused2 => (
            f16_bits_to_f32(u16::from_le_bytes([row[c], row[c + 1]])),
            f16_bits_to_f32(u16::from_le_bytes([row[c + 2], row[c + 3]])),
        ),
        _ => (1.0, 0.0),
    }
}

/// The code of element `i` of a fused row (element 0 in the lowest bits of byte 0).
#[inline]
pub fn row_code(format: TableFormat, row: &[u8], i: usize) -> u8 {
    match format.bits() {
        8 => row[i],
        4 => (row[i / 2] >> ((i % 2) * 4)) & 0x0f,
        2 => (row[i / 4] >> ((i % 4) * 2)) & 0x03,
        _ => 0,
    }
}

/// Scalar oracle: decodes one stored row into `out` (`out.len()` is the row dimension).
pub fn dequantize_row(format: TableFormat, row: &[u8], out: &mut [f32]) {
    let dim = out.len();
    match format {
        TableFormat::F32 => {
            for (o, b) in out.iter_mut().zip(row.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        TableFormat::F16 => {
            for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        TableFormat::Bf16 => {
            for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        _ => {
            let (scale, bias) = row_scale_bias(format, dim, row);
            for (i, o) in out.iter_mut().enumerate() {
                *o = f32::from(row_code(format, row, i)).mul_add(scale, bias);
            }
        }
    }
}
