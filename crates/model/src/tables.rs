//! Embedding tables held by a model: bytes in their stored format, owned or memory-mapped.

use std::sync::Arc;

use quantrec_kernels::formats::{QuantizeOptions, TableFormat, TableRef, quantize_table};

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

/// Encodes `rows × dim` f32 values as `format` rows with the formats module's FBGEMM-exact
/// quantizer. 4- and 2-bit rows use the greedy L2 clipping-range search (PyTorch's
/// `optimized_qparams=True`), which never loses accuracy against plain min/max; a value beyond the
/// f16 range or a NaN is an error naming the table and row, never clamped.
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
    let name = format!("tables.{table}");
    let opts = QuantizeOptions {
        greedy: matches!(format, TableFormat::Fused4 | TableFormat::Fused2),
        name: &name,
    };
    Ok(quantize_table(values, rows, dim, format, &opts)?)
}
