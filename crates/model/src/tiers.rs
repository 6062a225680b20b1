//! Frequency-aware row tiers: one table stored as several FBGEMM row-wise sub-tables of different
//! formats (hot rows 8-bit, warm 4-bit, cold 2-bit, ...) plus a remap from the original id to a
//! row of the concatenated sub-tables, -1 for a pruned row (the shared zero row; FBGEMM's
//! pruned-index `compressed_indices_mapping` is the model). Every id of the table stays valid;
//! ids past the table are still an error.
//!
//! The split comes from the plan ([`TierPlan`]: formats and row counts, hottest first) and a
//! ranking of the table's rows by their lookups on calibration data (computed in the quant
//! crate): the first `levels[0].rows` ranked rows form tier 0, and so on; the `pruned` rows left
//! are never stored. Each tier's rows are copied byte for byte from the whole table encoded in the
//! tier's format (row-wise formats encode each row on its own), so a tier is exactly the rows the
//! untiered table would store. Pooling: [`quantrec_kernels::embedding_bag::pool_tiered`].

use std::sync::Arc;

use quantrec_kernels::embedding_bag::{Lookup, Pooling, TierRemap, TieredTable, pool_tiered};
use quantrec_kernels::formats::{TableFormat, TableRef};

use crate::plan::TierPlan;
use crate::tables::{StoredTable, TableBytes};
use crate::{ModelError, Result};

/// Original id → row of the concatenated tiers, -1 = pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remap {
    /// 16-bit entries (every stored row index fits).
    I16(Vec<i16>),
    /// 32-bit entries (FBGEMM's width).
    I32(Vec<i32>),
}

impl Remap {
    /// Builds the remap for `stored` rows in the width [`TierPlan::remap_entry_bytes`] picks.
    pub fn from_rows(rows: &[i32], stored: usize) -> Remap {
        if stored <= i16::MAX as usize {
            Remap::I16(rows.iter().map(|&r| r as i16).collect())
        } else {
            Remap::I32(rows.to_vec())
        }
    }

    /// Number of original ids.
    pub fn len(&self) -> usize {
        match self {
            Remap::I16(v) => v.len(),
            Remap::I32(v) => v.len(),
        }
    }

    /// True for a table without ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per entry.
    pub fn entry_bytes(&self) -> usize {
        match self {
            Remap::I16(_) => 2,
            Remap::I32(_) => 4,
        }
    }

    /// The kernels' view.
    pub fn as_kernel(&self) -> TierRemap<'_> {
        match self {
            Remap::I16(v) => TierRemap::I16(v),
            Remap::I32(v) => TierRemap::I32(v),
        }
    }

    /// Entry `i` (-1 = pruned).
    pub fn get(&self, i: usize) -> i32 {
        self.as_kernel().get(i)
    }

    /// Little-endian bytes (the artifact's `tables.{t}.remap` tensor).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Remap::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Remap::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Parses little-endian entries of `entry_bytes` (2 or 4) bytes.
    pub fn from_le_bytes(bytes: &[u8], entry_bytes: usize) -> Remap {
        if entry_bytes == 2 {
            Remap::I16(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            )
        } else {
            Remap::I32(
                bytes
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        }
    }
}

/// One tier's stored rows.
#[derive(Clone, Debug, PartialEq)]
pub struct TierBytes {
    /// Format of the rows.
    pub format: TableFormat,
    /// Rows stored.
    pub rows: usize,
    /// `rows × format.row_bytes(dim)` bytes in FBGEMM's layout.
    pub bytes: Vec<u8>,
}

/// A tiered table as weights: its tiers' bytes and the remap (what the artifact stores).
#[derive(Clone, Debug, PartialEq)]
pub struct TieredData {
    /// Tiers, hottest first.
    pub tiers: Vec<TierBytes>,
    /// Original id → concatenated row, -1 = pruned.
    pub remap: Remap,
}

impl TieredData {
    /// Splits table `t` (`rows × dim`) as `plan` says: `ranking` lists row ids hottest first (at
    /// least `plan.stored_rows()` of them, no repeats); `encoded(format)` gives the whole table
    /// encoded in `format` (`rows × format.row_bytes(dim)` bytes), from which each tier copies its
    /// rows.
    pub fn split<'e>(
        t: usize,
        rows: usize,
        dim: usize,
        plan: &TierPlan,
        ranking: &[u32],
        mut encoded: impl FnMut(TableFormat) -> Result<&'e [u8]>,
    ) -> Result<TieredData> {
        let bad = |reason: String| ModelError::TierData { table: t, reason };
        let stored = plan.stored_rows();
        if stored + plan.pruned != rows || ranking.len() < stored {
            return Err(bad(format!(
                "{stored} stored + {} pruned rows for a table of {rows} rows ranked over {} rows",
                plan.pruned,
                ranking.len()
            )));
        }
        let mut remap = vec![-1i32; rows];
        for (pos, &id) in ranking[..stored].iter().enumerate() {
            let slot = remap
                .get_mut(id as usize)
                .ok_or_else(|| bad(format!("ranked row {id} is past the table")))?;
            if *slot != -1 {
                return Err(bad(format!("row {id} is ranked twice")));
            }
            *slot = pos as i32;
        }
        let mut tiers = Vec::with_capacity(plan.levels.len());
        let mut start = 0;
        for level in &plan.levels {
            let rb = level.format.row_bytes(dim);
            let full = encoded(level.format)?;
            if full.len() != rows * rb {
                return Err(bad(format!(
                    "the {} encoding has {} bytes, not {}",
                    level.format.name(),
                    full.len(),
                    rows * rb
                )));
            }
            let mut bytes = Vec::with_capacity(level.rows * rb);
            for &id in &ranking[start..start + level.rows] {
                let id = id as usize;
                bytes.extend_from_slice(&full[id * rb..(id + 1) * rb]);
            }
            tiers.push(TierBytes {
                format: level.format,
                rows: level.rows,
                bytes,
            });
            start += level.rows;
        }
        Ok(TieredData {
            tiers,
            remap: Remap::from_rows(&remap, stored),
        })
    }

    /// Checks the data against table `t`'s plan: tier formats and rows, bytes, remap width,
    /// length and entries (each in `-1..stored rows`).
    pub fn check(&self, t: usize, rows: usize, dim: usize, plan: &TierPlan) -> Result<()> {
        let bad = |reason: String| ModelError::TierData { table: t, reason };
        if self.tiers.len() != plan.levels.len() {
            return Err(bad(format!(
                "{} tiers stored, {} planned",
                self.tiers.len(),
                plan.levels.len()
            )));
        }
        for (k, (tier, level)) in self.tiers.iter().zip(&plan.levels).enumerate() {
            if tier.format != level.format || tier.rows != level.rows {
                return Err(bad(format!(
                    "tier {k} holds {} rows of {}, the plan {} of {}",
                    tier.rows,
                    tier.format.name(),
                    level.rows,
                    level.format.name()
                )));
            }
            TableRef::new(tier.format, tier.rows, dim, &tier.bytes)?;
        }
        check_remap(t, &self.remap, rows, plan)
    }
}

fn check_remap(t: usize, remap: &Remap, rows: usize, plan: &TierPlan) -> Result<()> {
    let bad = |reason: String| ModelError::TierData { table: t, reason };
    if remap.len() != rows || remap.entry_bytes() != plan.remap_entry_bytes() {
        return Err(bad(format!(
            "remap of {} entries of {} bytes, expected {rows} of {}",
            remap.len(),
            remap.entry_bytes(),
            plan.remap_entry_bytes()
        )));
    }
    let stored = plan.stored_rows() as i64;
    let k = remap.as_kernel();
    if let Some(i) = (0..rows).find(|&i| {
        let r = i64::from(k.get(i));
        r < -1 || r >= stored
    }) {
        return Err(bad(format!(
            "remap entry {i} is {}, outside -1..{stored}",
            k.get(i)
        )));
    }
    Ok(())
}

/// A tiered table held by a model: its sub-tables (owned or memory-mapped) and the remap.
#[derive(Clone, Debug)]
pub struct Tiers {
    /// Sub-tables, hottest first.
    pub tables: Vec<StoredTable>,
    /// Original id → concatenated row, -1 = pruned.
    pub remap: Remap,
}

impl Tiers {
    /// Checks `tables` and `remap` against table `t`'s plan (`rows × dim`).
    pub fn new(
        t: usize,
        rows: usize,
        dim: usize,
        plan: &TierPlan,
        tables: Vec<StoredTable>,
        remap: Remap,
    ) -> Result<Tiers> {
        if tables.len() != plan.levels.len()
            || tables
                .iter()
                .zip(&plan.levels)
                .any(|(s, l)| s.format != l.format || s.rows != l.rows || s.dim != dim)
        {
            return Err(ModelError::TierData {
                table: t,
                reason: "stored tiers differ from the plan's formats and rows".into(),
            });
        }
        check_remap(t, &remap, rows, plan)?;
        Ok(Tiers { tables, remap })
    }

    /// From checked weights data (bytes held in memory).
    pub fn from_data(
        t: usize,
        rows: usize,
        dim: usize,
        plan: &TierPlan,
        data: TieredData,
    ) -> Result<Tiers> {
        data.check(t, rows, dim, plan)?;
        let tables = data
            .tiers
            .into_iter()
            .map(|tb| StoredTable::new(tb.format, tb.rows, dim, TableBytes::in_memory(tb.bytes)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tiers {
            tables,
            remap: data.remap,
        })
    }

    /// The weights form (bytes copied).
    pub fn to_data(&self) -> TieredData {
        TieredData {
            tiers: self
                .tables
                .iter()
                .map(|s| TierBytes {
                    format: s.format,
                    rows: s.rows,
                    bytes: s.bytes.as_slice().to_vec(),
                })
                .collect(),
            remap: self.remap.clone(),
        }
    }

    /// Bytes stored: every tier plus the remap.
    pub fn bytes(&self) -> usize {
        self.tables
            .iter()
            .map(|s| s.bytes.as_slice().len())
            .sum::<usize>()
            + self.remap.len() * self.remap.entry_bytes()
    }

    /// The sub-tables' bytes held in memory (see [`TableBytes::into_memory`]).
    pub fn into_memory(self) -> Result<Tiers> {
        let tables = self
            .tables
            .into_iter()
            .map(|mut s| {
                s.bytes = s.bytes.into_memory()?;
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tiers {
            tables,
            remap: self.remap,
        })
    }

    /// Pools table `t` for a batch of bags (see [`pool_tiered`]).
    pub fn pool(
        &self,
        dim: usize,
        pooling: Pooling,
        lookup: &Lookup<'_>,
        t: usize,
        out: &mut [f32],
        out_stride: usize,
    ) -> quantrec_kernels::Result<()> {
        // Up to STACK_TIERS tiers are viewed from the stack: no allocation per call.
        const STACK_TIERS: usize = 4;
        let empty = TableRef {
            format: TableFormat::F32,
            rows: 0,
            dim,
            data: &[],
        };
        let mut stack = [empty; STACK_TIERS];
        let heap: Vec<TableRef<'_>>;
        let refs: &[TableRef<'_>] = if self.tables.len() <= STACK_TIERS {
            for (slot, s) in stack.iter_mut().zip(&self.tables) {
                *slot = s.table_ref();
            }
            &stack[..self.tables.len()]
        } else {
            heap = self.tables.iter().map(StoredTable::table_ref).collect();
            &heap
        };
        let table = TieredTable {
            tiers: refs,
            remap: self.remap.as_kernel(),
            dim,
        };
        pool_tiered(&table, pooling, lookup, t, out, out_stride)
    }
}

/// A tiered [`StoredTable`]: `rows × dim` ids, the hottest tier's format, the rows in `tiers`.
pub fn stored(format: TableFormat, rows: usize, dim: usize, tiers: Tiers) -> StoredTable {
    StoredTable {
        format,
        rows,
        dim,
        bytes: TableBytes::Owned(Vec::new()),
        tiers: Some(Arc::new(tiers)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TierLevel;

    fn plan() -> TierPlan {
        TierPlan {
            recipe: "test".into(),
            levels: vec![
                TierLevel {
                    format: TableFormat::Fused8,
                    rows: 1,
                },
                TierLevel {
                    format: TableFormat::F32,
                    rows: 2,
                },
            ],
            pruned: 2,
        }
    }

    #[test]
    fn split_copies_ranked_rows_and_prunes_the_rest() {
        let (rows, dim) = (5, 4);
        let f32_rows: Vec<u8> = (0..rows * dim)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let f8 = vec![7u8; rows * TableFormat::Fused8.row_bytes(dim)];
        let data = TieredData::split(0, rows, dim, &plan(), &[3, 0, 4], |f| {
            Ok(if f == TableFormat::F32 {
                &f32_rows
            } else {
                &f8
            })
        })
        .unwrap();
        assert_eq!(data.remap, Remap::I16(vec![1, -1, -1, 0, 2]));
        assert_eq!(data.tiers[0].bytes, vec![7u8; 12]);
        assert_eq!(
            data.tiers[1].bytes,
            [&f32_rows[0..16], &f32_rows[64..80]].concat()
        );
        data.check(0, rows, dim, &plan()).unwrap();
        let mut wrong = data.clone();
        wrong.remap = Remap::I16(vec![1, -1, -1, 3, 2]);
        assert!(matches!(
            wrong.check(0, rows, dim, &plan()),
            Err(ModelError::TierData { table: 0, .. })
        ));
        assert!(TieredData::split(0, rows, dim, &plan(), &[3, 3, 4], |_| Ok(&f8)).is_err());
    }
}
