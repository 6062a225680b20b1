//! Embedding tables held by a model: bytes in their stored format, owned or memory-mapped.

use std::sync::Arc;

use quantrec_kernels::formats::{QuantizeOptions, TableFormat, TableRef, quantize_table};

use crate::{ModelError, Result};

/// Tables of at least this many bytes are held in transparent huge pages when they are in
/// memory (one 2 MiB page on x86-64; smaller tables gain nothing).
pub const HUGE_PAGE_MIN_BYTES: usize = 2 << 20;

/// Where a table's bytes live.
#[derive(Debug, Clone)]
pub enum TableBytes {
    /// In memory.
    Owned(Vec<u8>),
    /// In read-only anonymous memory advised for transparent huge pages (on Linux). Pooling
    /// gathers rows at random: with 4 KiB pages a table of more than a few MB misses the TLB on
    /// almost every row, and the page walk, not the row itself, sets the rows/s (measured 1.3–2.6×
    /// faster bags on 2M-row tables with huge pages).
    Resident(Arc<memmap2::Mmap>),
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
            TableBytes::Resident(map) => map,
            TableBytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }

    /// Table bytes held in memory: in huge pages ([`TableBytes::resident`]) from
    /// [`HUGE_PAGE_MIN_BYTES`] on, else as they are.
    pub fn in_memory(bytes: Vec<u8>) -> Result<TableBytes> {
        if bytes.len() < HUGE_PAGE_MIN_BYTES {
            return Ok(TableBytes::Owned(bytes));
        }
        TableBytes::resident(&bytes)
    }

    /// A copy of `bytes` in anonymous memory advised for transparent huge pages before it is
    /// written (Linux; elsewhere, and where the kernel has them disabled, ordinary pages), then
    /// made read-only.
    pub fn resident(bytes: &[u8]) -> Result<TableBytes> {
        if bytes.is_empty() {
            return Ok(TableBytes::Owned(Vec::new()));
        }
        let io = |e| ModelError::io("<anonymous table memory>", e);
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).map_err(io)?;
        #[cfg(target_os = "linux")]
        {
            // A hint: a kernel without transparent huge pages refuses it and the table simply
            // stays in ordinary pages, so the error is deliberately ignored.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        map.copy_from_slice(bytes);
        let map = map.make_read_only().map_err(io)?;
        Ok(TableBytes::Resident(Arc::new(map)))
    }

    /// The bytes, held in memory (huge pages for large tables) if they are a file mapping.
    pub fn into_memory(self) -> Result<TableBytes> {
        match self {
            TableBytes::Mapped { .. } => {
                let bytes = self.as_slice();
                if bytes.len() < HUGE_PAGE_MIN_BYTES {
                    Ok(TableBytes::Owned(bytes.to_vec()))
                } else {
                    TableBytes::resident(bytes)
                }
            }
            other => Ok(other),
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
    /// `rows × format.row_bytes(dim)` bytes (empty for a tiered table).
    pub bytes: TableBytes,
    /// For a table stored in frequency tiers ([`crate::tiers`]): its sub-tables and remap; then
    /// `format` is the hottest tier's and `bytes` is empty.
    pub tiers: Option<Arc<crate::tiers::Tiers>>,
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
            tiers: None,
        })
    }

    /// A borrowed view for the kernels (of no rows for a tiered table, whose rows are in `tiers`).
    pub fn table_ref(&self) -> TableRef<'_> {
        TableRef {
            format: self.format,
            rows: if self.tiers.is_some() { 0 } else { self.rows },
            dim: self.dim,
            data: self.bytes.as_slice(),
        }
    }

    /// Bytes stored for the table (every tier and the remap for a tiered table).
    pub fn stored_bytes(&self) -> usize {
        self.bytes.as_slice().len() + self.tiers.as_ref().map_or(0, |t| t.bytes())
    }

    /// The table with file-mapped bytes (its tiers' included) held in memory.
    pub fn into_memory(self) -> Result<StoredTable> {
        let tiers = match self.tiers {
            Some(t) => Some(Arc::new(
                Arc::try_unwrap(t)
                    .unwrap_or_else(|shared| (*shared).clone())
                    .into_memory()?,
            )),
            None => None,
        };
        Ok(StoredTable {
            bytes: self.bytes.into_memory()?,
            tiers,
            ..self
        })
    }
}

/// Encodes table `t` of f32 values in `plan`'s format and encoding ([`encode_table`] with
/// `plan.table_refit`). A plan whose N-bit tables are curvature-encoded (`plan.table_curvature`)
/// is refused: that encoding needs calibration data, so such tables come pre-encoded (from the
/// quant crate's model builder) or the plan is built there.
pub fn encode_planned_table(
    plan: &crate::Plan,
    t: usize,
    rows: usize,
    dim: usize,
    values: &[f32],
) -> Result<Vec<u8>> {
    let format = plan.tables[t];
    if plan.tiers_of(t).is_some() {
        return Err(ModelError::TiersNeedCalibration { table: t });
    }
    if plan.table_curvature
        && matches!(
            format,
            TableFormat::Fused8Half | TableFormat::Fused4 | TableFormat::Fused2
        )
    {
        return Err(ModelError::CurvatureNeedsCalibration { table: t, format });
    }
    encode_table(t, format, rows, dim, values, plan.table_refit)
}

/// Encodes `rows × dim` f32 values as `format` rows with the formats module's FBGEMM-exact
/// quantizer. 4- and 2-bit rows use the greedy L2 clipping-range search (PyTorch's
/// `optimized_qparams=True`), which never loses accuracy against plain min/max; with `refit`, every
/// N-bit row (fused8half, fused4, fused2) is then refitted by least squares (`QuantizeOptions::refine`:
/// never more row error; without it the bytes are PyTorch's exactly); a value beyond the
/// f16 range or a NaN is an error naming the table and row, never clamped.
pub fn encode_table(
    table: usize,
    format: TableFormat,
    rows: usize,
    dim: usize,
    values: &[f32],
    refit: bool,
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
        refine: refit
            && matches!(
                format,
                TableFormat::Fused8Half | TableFormat::Fused4 | TableFormat::Fused2
            ),
        name: &name,
    };
    Ok(quantize_table(values, rows, dim, format, &opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn small_tables_stay_owned_and_large_ones_move_to_resident_memory() {
        let small = pattern(HUGE_PAGE_MIN_BYTES - 1);
        let t = TableBytes::in_memory(small.clone()).unwrap();
        assert!(matches!(t, TableBytes::Owned(_)));
        assert_eq!(t.as_slice(), &small[..]);
        let large = pattern(HUGE_PAGE_MIN_BYTES + 4097);
        let t = TableBytes::in_memory(large.clone()).unwrap();
        assert!(matches!(t, TableBytes::Resident(_)));
        assert_eq!(t.as_slice(), &large[..]);
        let empty = TableBytes::resident(&[]).unwrap();
        assert!(empty.as_slice().is_empty());
    }
}
