//! Embedding tables held by a model: bytes in their stored format, owned or memory-mapped.

use std::sync::Arc;

use half::{bf16, f16};
use quantrec_kernels::formats::{TableFormat, TableRef};

use crate::{ModelError, Result};

/// Where a table's bytes live.
#[derive(Debug, Clone)]
pub enum TableBytes {
    /// In memory.
    Owned(Vec<u8>),
    /// A byte range of a memory-mapped artifact (pages in on demand).
    Mapped {
        /// The whole mapped file.
        map: Arc<memmap2::Mmap>,
        /// First byte of the table.
        start: usize,
        /// Length in bytes.
        len: usize,
    },
}

impl TableBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            TableBytes::Owned(v) => v,
            TableBytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

/// One table of a model with its storage format.
#[derive(Debug, Clone)]
pub struct StoredTable {
    /// Storage format.
    pub format: TableFormat,
    /// Number of rows.
    pub rows: usize,
    /// Row dimension.
    pub dim: usize,
    /// `rows × format.row_bytes(dim)` bytes.
    pub bytes: TableBytes,
}

impl StoredTable {
    /// Wraps `bytes`, checking their length against `rows × row_bytes(dim)`.
    pub fn new(format: TableFormat, rows: usize, dim: usize, bytes: TableBytes) -> Result<Self> {
        TableRef::new(format, rows, dim, bytes.as_slice())?;
        Ok(StoredTable {
            format,
            rows,
            dim,
            bytes,
        })
    }

    /// A borrowed view for the kernels.
    pub fn table_ref(&self) -> TableRef<'_> {
        TableRef {
            format: self.format,
            rows: self.rows,
            dim: self.dim,
            data: self.bytes.as_slice(),
        }
    }
}

/// Encodes `rows × dim` f32 values as `format` rows. Float formats are converted here (round to
/// nearest even; a value beyond the f16 range is an error, never clamped). Fused formats need the
/// row-wise quantizer of the formats module, which this build does not have yet: pass already
/// packed rows as [`TableData::Encoded`](crate::weights::TableData::Encoded) instead.
pub fn encode_table(
    table: usize,
    format: TableFormat,
    rows: usize,
    dim: usize,
    values: &[f32],
) -> Result<Vec<u8>> {
    format.check_dim(dim)?;
    if values.len() != rows * dim {
        return Err(ModelError::TensorShape {
            name: format!("tables.{table}"),
            expected: format!("[{rows}, {dim}]"),
            found: vec![values.len()],
        });
    }
    let mut out = Vec::with_capacity(rows * format.row_bytes(dim));
    match format {
        TableFormat::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        TableFormat::F16 => {
            for (i, &v) in values.iter().enumerate() {
                let h = f16::from_f32(v);
                if !h.is_finite() {
                    return Err(ModelError::TableEncoding {
                        table,
                        format: format.name().into(),
                        reason: format!(
                            "value {v} at row {}, column {} is outside the f16 range",
                            i / dim,
                            i % dim
                        ),
                    });
                }
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        TableFormat::Bf16 => values
            .iter()
            .for_each(|&v| out.extend_from_slice(&bf16::from_f32(v).to_le_bytes())),
        _ => {
            return Err(ModelError::TableEncoding {
                table,
                format: format.name().into(),
                reason: "row-wise quantization into fused formats is not available in this build \
                         (formats::quantize_table); supply packed rows (TableData::Encoded)"
                    .into(),
            });
        }
    }
    Ok(out)
}
