//! Checks a freshly loaded version must pass before it serves: finite table values, a warm-up
//! forward pass with finite outputs, and the row-independence probe that decides whether the
//! batcher may merge requests for it.
//!
//! ## Why and how rows are padded
//! The float GEMM micro-kernels accumulate tiles of one or two rows in two interleaved sets
//! (even and odd k-steps, to hide FMA latency) and taller tiles in one, so a row's f32 result can
//! differ in the last bit between a call of one or two rows and a call of three or more. Every
//! taller tile height gives identical per-row results, and the kernels split rows into balanced
//! tiles, so a call never produces a tile of fewer than three rows once it has three rows or more.
//! The server therefore runs every merged call with at least [`MIN_CALL_ROWS`] rows and with a
//! last chunk (see `Model::set_chunk_size`) of at least that many rows, padding with copies of the
//! first row when needed ([`canonical_rows`]). A row's score is then the same whether it was sent
//! alone or merged, and equal to what `Model::predict` gives for it inside any batch of three rows
//! or more (which is how offline `predict` and `eval` run it). The load-time probe checks this on
//! the running CPU and thread count rather than trusting it: a version whose rows still depend on
//! their neighbours (dynamic int8 activations, whose range is the whole call's min/max, or a kernel
//! that changes) is served without merging, each request in its own model call exactly as sent.

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::{ActivationQuant, Precision};
use quantrec_model::forward::sigmoid;
use quantrec_model::{Model, Scratch};

/// Fewest rows of a merged model call (see the module docs).
pub const MIN_CALL_ROWS: usize = 3;

/// The rows a merged call of `rows` rows is padded to: at least [`MIN_CALL_ROWS`], and a last
/// chunk of at least [`MIN_CALL_ROWS`] rows.
pub fn canonical_rows(rows: usize, chunk: usize) -> usize {
    let mut m = rows.max(MIN_CALL_ROWS);
    while chunk > MIN_CALL_ROWS && !m.is_multiple_of(chunk) && m % chunk < MIN_CALL_ROWS {
        m += 1;
    }
    m
}

/// Appends copies of row 0 until `batch` has `rows` rows.
pub fn pad_batch(batch: &mut Batch, rows: usize) {
    let nd = batch.n_dense;
    while batch.size < rows {
        batch.dense.extend_from_within(..nd);
        for f in &mut batch.sparse {
            let (s, e) = (f.offsets[0] as usize, f.offsets[1] as usize);
            f.ids.extend_from_within(s..e);
            if let Some(w) = &mut f.weights {
                w.extend_from_within(s..e);
            }
            f.offsets.push(f.ids.len() as i64);
        }
        batch.size += 1;
    }
}

/// Concatenates batches (same model) into one.
pub fn concat(parts: &[&Batch]) -> Batch {
    let n_dense = parts.first().map_or(0, |b| b.n_dense);
    let n_tables = parts.first().map_or(0, |b| b.sparse.len());
    let mut out = Batch {
        size: 0,
        n_dense,
        dense: Vec::with_capacity(parts.iter().map(|b| b.dense.len()).sum()),
        sparse: vec![
            SparseFeature {
                offsets: vec![0],
                ids: Vec::new(),
                weights: None,
            };
            n_tables
        ],
        labels: None,
    };
    for b in parts {
        out.size += b.size;
        out.dense.extend_from_slice(&b.dense);
        for (o, f) in out.sparse.iter_mut().zip(&b.sparse) {
            let base = o.ids.len() as i64;
            o.offsets.extend(f.offsets[1..].iter().map(|&x| x + base));
            o.ids.extend_from_slice(&f.ids);
            if let Some(w) = &f.weights {
                o.weights.get_or_insert_with(Vec::new).extend_from_slice(w);
            }
        }
    }
    out
}

/// The first non-finite value of a table, as `(table, row)`.
pub fn first_nonfinite_table_value(model: &Model) -> Option<(usize, usize)> {
    let f16_bad = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]) & 0x7C00 == 0x7C00;
    let f32_bad = |b: &[u8]| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite();
    for (t, table) in model.tables().iter().enumerate() {
        let bytes = table.bytes.as_slice();
        let rb = table.format.row_bytes(table.dim);
        let cb = table.format.code_bytes(table.dim);
        let bad_row = |row: &[u8]| match table.format {
            TableFormat::F32 => row.chunks_exact(4).any(f32_bad),
            TableFormat::F16 => row.chunks_exact(2).any(f16_bad),
            TableFormat::Bf16 => row
                .chunks_exact(2)
                .any(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7F80 == 0x7F80),
            TableFormat::Fused8 => row[cb..].chunks_exact(4).any(f32_bad),
            _ => row[cb..].chunks_exact(2).any(f16_bad),
        };
        if rb == 0 {
            continue;
        }
        if let Some(r) = bytes.chunks_exact(rb).position(bad_row) {
            return Some((t, r));
        }
    }
    None
}

/// Whether any dense layer quantizes activations with a per-call range.
pub fn has_dynamic_activations(model: &Model) -> bool {
    let cross = model.cross_layers();
    model
        .bottom_layers()
        .iter()
        .chain(model.top_layers())
        .chain(cross.iter().flat_map(|(v, w)| [*v, *w]))
        .any(|l| {
            matches!(
                l.precision(),
                Precision::Int8(s) if s.activations == ActivationQuant::Dynamic
            )
        })
}

/// A deterministic synthetic batch with in-range ids and dense values in `[0, 2)`.
pub fn synthetic_batch(model: &Model, size: usize) -> Batch {
    let cfg = model.config();
    let nd = cfg.dense_features;
    let dense = (0..size * nd)
        .map(|i| ((i * 2654435761) % 1000) as f32 / 500.0)
        .collect();
    let sparse = cfg
        .tables
        .iter()
        .enumerate()
        .map(|(t, tc)| {
            let ids = (0..size)
                .map(|b| ((b * 7919 + t * 104729) % tc.rows.max(1)) as i64)
                .collect();
            SparseFeature::one_hot(ids)
        })
        .collect();
    Batch::unlabeled(size, nd, dense, sparse)
}

/// What the warm-up found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WarmUp {
    /// Whether requests may be merged (rows are independent of their neighbours once padded).
    pub mergeable: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// Runs the warm-up forward passes and the row-independence probe (on the calling thread's rayon
/// pool, which should be the compute pool). Errors say why the version must be refused.
pub fn warm_up(model: &Model) -> Result<WarmUp, String> {
    let chunk = model.chunk_size();
    let size = 2 * chunk + 40;
    let big = synthetic_batch(model, size);
    let mut s = Scratch::new();
    let merged = model
        .predict_logits(&big, &mut s)
        .map_err(|e| format!("warm-up forward pass failed: {e}"))?
        .to_vec();
    if let Some(r) = merged.iter().position(|x| !sigmoid(*x).is_finite()) {
        return Err(format!(
            "warm-up forward pass gave the non-finite logit {} for synthetic row {r}",
            merged[r]
        ));
    }
    if has_dynamic_activations(model) {
        return Ok(WarmUp {
            mergeable: false,
            reason: Some(
                "int8 layers with dynamic activation ranges make a row's score depend on the rows it is computed with".into(),
            ),
        });
    }
    let sizes = [1, 2, 3, 4, 5, 13, 14, 25, chunk - 1, chunk + 1, chunk + 2];
    for &n in sizes.iter().filter(|&&n| n >= 1 && n + 7 <= size) {
        for lo in [0, 7] {
            let mut part = quantrec_data::batch_ops::slice(&big, lo, lo + n);
            pad_batch(&mut part, canonical_rows(n, chunk));
            let got = model
                .predict_logits(&part, &mut s)
                .map_err(|e| format!("warm-up forward pass failed: {e}"))?;
            if let Some(i) = (0..n).find(|&i| got[i].to_bits() != merged[lo + i].to_bits()) {
                return Ok(WarmUp {
                    mergeable: false,
                    reason: Some(format!(
                        "probe: row {} computed in a call of {} rows gave {} but {} in a call of {size}",
                        lo + i,
                        part.size,
                        got[i],
                        merged[lo + i]
                    )),
                });
            }
        }
    }
    Ok(WarmUp {
        mergeable: true,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_rows_avoid_short_calls_and_chunks() {
        assert_eq!(canonical_rows(1, 256), 3);
        assert_eq!(canonical_rows(3, 256), 3);
        assert_eq!(canonical_rows(256, 256), 256);
        assert_eq!(canonical_rows(257, 256), 259);
        assert_eq!(canonical_rows(258, 256), 259);
        assert_eq!(canonical_rows(259, 256), 259);
        assert_eq!(canonical_rows(513, 256), 515);
        assert_eq!(canonical_rows(2, 1), 3);
    }
}
