//! Row frequencies on calibration data: how often each row of each table is looked up, and the
//! rows ranked hottest first — what frequency-aware row tiers ([`quantrec_model::tiers`]) split on.

use quantrec_model::ModelConfig;

use crate::eval::EvalSet;
use crate::{QuantError, Result};

/// One table's rows ranked by lookups.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRanking {
    /// Every row id, most looked-up first (ties by id), never-seen rows last (by id).
    pub order: Vec<u32>,
    /// Lookups of `order[i]`, for the seen rows (`counts.len()` = rows seen at least once).
    pub counts: Vec<u64>,
    /// Lookups over the calibration data.
    pub lookups: u64,
}

impl TableRanking {
    /// Rows seen at least once.
    pub fn seen(&self) -> usize {
        self.counts.len()
    }

    /// The fewest top-ranked rows whose lookups reach `share` (0..=1) of all lookups (at most
    /// the seen rows).
    pub fn rows_covering(&self, share: f64) -> usize {
        if self.lookups == 0 || share <= 0.0 {
            return 0;
        }
        let target = share * self.lookups as f64;
        let mut acc = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc as f64 >= target {
                return i + 1;
            }
        }
        self.counts.len()
    }
}

/// Every table's ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct RowRanking {
    /// One per table.
    pub tables: Vec<TableRanking>,
    /// Calibration samples counted.
    pub rows: usize,
}

impl RowRanking {
    /// Counts every lookup of `calib` (ids outside a table are [`QuantError::IdOutOfRange`]).
    pub fn measure(config: &ModelConfig, calib: &EvalSet) -> Result<RowRanking> {
        let mut counts: Vec<Vec<u64>> = config.tables.iter().map(|t| vec![0; t.rows]).collect();
        let mut sample = 0usize;
        for b in &calib.batches {
            for (t, f) in b.sparse.iter().enumerate() {
                let Some(c) = counts.get_mut(t) else {
                    return Err(QuantError::Shape {
                        what: "calibration batch tables".into(),
                        expected: config.tables.len(),
                        found: b.sparse.len(),
                    });
                };
                let rows = c.len();
                for (s, w) in f.offsets.windows(2).enumerate() {
                    for &id in &f.ids[w[0] as usize..w[1] as usize] {
                        if id < 0 || id as u64 >= rows as u64 {
                            return Err(QuantError::IdOutOfRange {
                                table: t,
                                sample: sample + s,
                                id,
                                rows,
                            });
                        }
                        c[id as usize] += 1;
                    }
                }
            }
            sample += b.size;
        }
        let tables = counts
            .into_iter()
            .map(|c| {
                let mut order: Vec<u32> = (0..c.len() as u32).collect();
                order.sort_by(|&a, &b| c[b as usize].cmp(&c[a as usize]).then(a.cmp(&b)));
                let seen = c.iter().filter(|&&n| n > 0).count();
                TableRanking {
                    counts: order[..seen].iter().map(|&i| c[i as usize]).collect(),
                    lookups: c.iter().sum(),
                    order,
                }
            })
            .collect();
        Ok(RowRanking {
            tables,
            rows: sample,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_data::batch::{Batch, SparseFeature};
    use quantrec_train::suggested_config;

    #[test]
    fn rows_rank_by_lookups_and_unseen_rows_come_last() {
        let config = suggested_config(1, &[6], 4);
        let batch = Batch {
            size: 3,
            n_dense: 1,
            dense: vec![0.0; 3],
            sparse: vec![SparseFeature {
                offsets: vec![0, 2, 4, 5],
                ids: vec![4, 1, 4, 4, 1],
                weights: None,
            }],
            labels: Some(vec![0.0, 1.0, 0.0]),
        };
        let set = EvalSet::from_batches(std::slice::from_ref(&batch)).unwrap();
        let r = RowRanking::measure(&config, &set).unwrap();
        let t = &r.tables[0];
        assert_eq!(t.order, vec![4, 1, 0, 2, 3, 5]);
        assert_eq!((t.counts.clone(), t.lookups, t.seen()), (vec![3, 2], 5, 2));
        assert_eq!(t.rows_covering(0.5), 1);
        assert_eq!(t.rows_covering(0.61), 2);
        assert_eq!(t.rows_covering(1.0), 2);
        let mut bad = batch;
        bad.sparse[0].ids[2] = 6;
        let set = EvalSet::from_batches(&[bad]).unwrap();
        assert!(matches!(
            RowRanking::measure(&config, &set),
            Err(QuantError::IdOutOfRange {
                table: 0,
                sample: 1,
                id: 6,
                rows: 6
            })
        ));
    }
}
