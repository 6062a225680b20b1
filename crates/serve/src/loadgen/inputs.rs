//! The requests a load run sends: realistic DLRM ranking requests for the served model's shape,
//! or rows of a data file, cut into requests of `candidates` rows.
//!
//! **Synthetic** requests imitate one ranking call: a user context shared by every candidate and
//! per-candidate item features. The first `⌈n_tables / 2⌉` tables are the context (one id per
//! request, repeated on every row), the others are drawn per candidate; ids are Zipf-distributed
//! (exponent [`ZIPF`], the synthetic Criteo generator's) over each table's rows. Dense values are
//! heavy-tailed counts as the model sees them, `ln(1 + x)` with `x` log-normal.

use std::path::Path;

use quantrec_data::source::batches;
use quantrec_data::synth::zipf::Zipf;
use quantrec_data::{Batch, SourceSpec, SparseFeature, open_source};
use quantrec_kernels::rng::Rng;

use crate::client::ModelShape;
use crate::{Result, ServeError};

/// Zipf exponent of synthetic ids.
pub const ZIPF: f64 = 1.2;

/// `count` synthetic ranking requests of `candidates` rows for a model of `shape`.
pub fn synthetic(shape: &ModelShape, candidates: usize, count: usize, seed: u64) -> Vec<Batch> {
    let mut rng = Rng::new(seed ^ 0x6c6f_6164_6765_6e00);
    let zipf: Vec<Zipf> = shape
        .table_rows
        .iter()
        .map(|&r| Zipf::new(r.max(1) as u64, ZIPF))
        .collect();
    // Per-feature log-normal location: counts of very different scales, like Criteo's I1..I13.
    let mu: Vec<f64> = (0..shape.n_dense).map(|_| rng.uniform() * 4.0).collect();
    let context_tables = shape.table_rows.len().div_ceil(2);
    (0..count)
        .map(|_| {
            let dense = (0..candidates)
                .flat_map(|_| mu.iter().map(|&m| m + rng.normal()).collect::<Vec<_>>())
                .map(|z| z.exp().ln_1p() as f32)
                .collect();
            let sparse = zipf
                .iter()
                .enumerate()
                .map(|(t, z)| {
                    let ids = if t < context_tables {
                        vec![z.sample(&mut rng) as i64 - 1; candidates]
                    } else {
                        (0..candidates)
                            .map(|_| z.sample(&mut rng) as i64 - 1)
                            .collect()
                    };
                    SparseFeature::one_hot(ids)
                })
                .collect();
            Batch::unlabeled(candidates, shape.n_dense, dense, sparse)
        })
        .collect()
}

/// Up to `count` requests of exactly `candidates` rows from a data file (Criteo TSV, gzip, or
/// a batch file; ids hashed into or checked against the model's tables). Labels are dropped.
pub fn from_file(
    path: &Path,
    shape: &ModelShape,
    candidates: usize,
    count: usize,
) -> Result<Vec<Batch>> {
    let err = |reason: String| ServeError::LoadgenInputs {
        path: path.to_path_buf(),
        reason,
    };
    let spec = SourceSpec::new(shape.table_rows.clone(), candidates);
    let mut src = open_source(path, &spec).map_err(|e| err(e.to_string()))?;
    if src.n_dense() != shape.n_dense || src.n_tables() != shape.table_rows.len() {
        return Err(err(format!(
            "rows have {} dense features and {} tables, the model takes {} and {}",
            src.n_dense(),
            src.n_tables(),
            shape.n_dense,
            shape.table_rows.len()
        )));
    }
    let mut out = Vec::new();
    for b in batches(src.as_mut()) {
        let mut b = b.map_err(|e| err(e.to_string()))?;
        if b.size != candidates {
            break;
        }
        b.labels = None;
        out.push(b);
        if out.len() == count {
            break;
        }
    }
    if out.is_empty() {
        return Err(err(format!(
            "fewer than {candidates} rows: not one request of that many candidates"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_requests_share_the_context_and_stay_in_range() {
        let shape = ModelShape {
            n_dense: 3,
            table_rows: vec![5, 1000, 7],
            max_batch_size: 1024,
        };
        let reqs = synthetic(&shape, 256, 4, 1);
        assert_eq!(reqs.len(), 4);
        for b in &reqs {
            assert_eq!((b.size, b.dense.len()), (256, 256 * 3));
            assert!(b.dense.iter().all(|x| x.is_finite() && *x >= 0.0));
            for (t, f) in b.sparse.iter().enumerate() {
                assert_eq!(f.ids.len(), 256);
                assert!(
                    f.ids
                        .iter()
                        .all(|&i| (0..shape.table_rows[t] as i64).contains(&i))
                );
            }
            // Tables 0 and 1 are the user context, table 2 varies by candidate.
            assert!(b.sparse[0].ids.iter().all(|&i| i == b.sparse[0].ids[0]));
            assert!(b.sparse[1].ids.iter().all(|&i| i == b.sparse[1].ids[0]));
            assert!(b.sparse[2].ids.iter().any(|&i| i != b.sparse[2].ids[0]));
        }
        assert_eq!(reqs, synthetic(&shape, 256, 4, 1));
        assert_ne!(reqs, synthetic(&shape, 256, 4, 2));
    }
}
