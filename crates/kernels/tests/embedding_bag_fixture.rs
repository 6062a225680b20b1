//! Embedding bags against PyTorch's golden outputs (`fixtures/embedding_bags.safetensors`): FBGEMM's
//! `embedding_bag_{byte,4bit,2bit}_rowwise_offsets` on the packed tables of
//! `rowwise_formats.safetensors`, and `nn.functional.embedding_bag` on the f32 tables, for sum, mean and
//! per-sample-weighted sum, at every ISA level this CPU runs.
//!
//! PyTorch quirk: the quantized ops hard-code FBGEMM's `normalize_by_lengths = false`, so their
//! `mode=1` ("mean") returns the *sum* — the `d{D}_{byte,nbit4,nbit2}_mean` fixtures equal the sums
//! (asserted below). Our [`Pooling::Mean`] really averages (like FBGEMM with `normalize_by_lengths`
//! and like `nn.functional.embedding_bag`), so for those formats it is checked against the fixture sum
//! times `1/len`; a runtime that must reproduce PyTorch's quantized "mean" should ask for `Sum`.
//!
//! Tolerance: `|ours − torch| ≤ 1e-6·|torch| + 1e-7·Σ|terms|`, where `Σ|terms|` is the column's sum of
//! the absolute values of the pooled (weighted, mean-scaled) row values. The relative part alone cannot
//! hold where a sum cancels to nearly zero: any difference in summation order (PyTorch's f32 path may
//! group adds differently) moves the result by a few ulps of the *terms*, not of the result. The floor
//! is a fraction of one f32 ulp of the terms' magnitude (ulp ≈ 1.2e-7 relative), so it admits
//! reordering noise and nothing larger.

use std::collections::BTreeMap;

use quantrec_kernels::Isa;
use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, Indices, Lookup, Pooling, pool_scalar, pool_with_isa,
};
use quantrec_kernels::formats::{TableFormat, TableRef, dequantize_row};
use quantrec_testkit::{Tensor, fixture, tensors};

fn load(name: &str) -> BTreeMap<String, Tensor> {
    tensors(&fixture(env!("CARGO_MANIFEST_DIR"), name))
}

#[test]
fn pooled_outputs_match_pytorch_at_every_isa() {
    let bags = load("embedding_bags.safetensors");
    let tables = load("rowwise_formats.safetensors");
    let mut checked = 0;
    for d in [4usize, 8, 16, 32, 64, 128] {
        let ids = bags[&format!("d{d}_indices")].i64s();
        let offsets = bags[&format!("d{d}_offsets")].i64s();
        let weights = bags[&format!("d{d}_per_sample_weights")].f32s();
        let num_bags = offsets.len();
        for (fmt, key, format) in [
            ("byte", format!("byte_d{d}"), TableFormat::Fused8),
            ("nbit4", format!("nbit4_d{d}"), TableFormat::Fused4),
            ("nbit2", format!("nbit2_d{d}"), TableFormat::Fused2),
            ("f32", format!("w_d{d}"), TableFormat::F32),
        ] {
            let t = &tables[&key];
            let rows = t.shape[0];
            let table =
                TableRef::new(format, rows, d, &t.bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
            for (mode, pooling) in [
                ("sum", Pooling::Sum),
                ("mean", Pooling::Mean),
                ("wsum", Pooling::WeightedSum),
            ] {
                let name = format!("d{d}_{fmt}_{mode}");
                let mut expected = bags[&name].f32s();
                if fmt != "f32" && pooling == Pooling::Mean {
                    let sum = bags[&format!("d{d}_{fmt}_sum")].f32s();
                    assert!(
                        sum.iter()
                            .zip(&expected)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{name}: PyTorch's quantized mean is expected to equal its sum"
                    );
                    expected = mean_of_sums(&sum, &offsets, ids.len(), d);
                }
                assert_eq!(expected.len(), num_bags * d, "{name}");
                let bag = EmbeddingBag {
                    table,
                    pooling,
                    remap: None,
                };
                let lookup = Lookup {
                    indices: Indices::I64(&ids),
                    bags: Bags::Offsets(Indices::I64(&offsets)),
                    num_bags,
                    per_sample_weights: Some(&weights),
                };
                let magnitude = abs_sums(&table, &ids, &offsets, &weights, pooling);
                let mut out = vec![f32::NAN; num_bags * d];
                pool_scalar(&bag, &lookup, 0, &mut out, d).unwrap();
                compare(&out, &expected, &magnitude, &format!("{name} oracle"));
                for isa in Isa::available() {
                    let mut out = vec![f32::NAN; num_bags * d];
                    pool_with_isa(isa, &bag, &lookup, 0, &mut out, d).unwrap();
                    compare(&out, &expected, &magnitude, &format!("{name} at {isa}"));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6 * 4 * 3);
}

/// Bag sums times `1 / len` (zeros stay zeros for empty bags).
fn mean_of_sums(sum: &[f32], offsets: &[i64], n: usize, d: usize) -> Vec<f32> {
    let mut out = sum.to_vec();
    for b in 0..offsets.len() {
        let end = offsets.get(b + 1).map_or(n, |&o| o as usize);
        let len = end - offsets[b] as usize;
        if len > 0 {
            let inv = 1.0 / len as f32;
            out[b * d..(b + 1) * d].iter_mut().for_each(|v| *v *= inv);
        }
    }
    out
}

/// Per output element: Σ over the bag of |w · value| (divided by the bag length for mean).
fn abs_sums(
    table: &TableRef<'_>,
    ids: &[i64],
    offsets: &[i64],
    weights: &[f32],
    pooling: Pooling,
) -> Vec<f32> {
    let d = table.dim;
    let mut sums = vec![0f32; offsets.len() * d];
    let mut row = vec![0f32; d];
    for b in 0..offsets.len() {
        let start = offsets[b] as usize;
        let end = offsets.get(b + 1).map_or(ids.len(), |&o| o as usize);
        for i in start..end {
            dequantize_row(table.format, table.row(ids[i] as usize), &mut row);
            let w = if pooling == Pooling::WeightedSum {
                weights[i].abs()
            } else {
                1.0
            };
            for (s, v) in sums[b * d..(b + 1) * d].iter_mut().zip(&row) {
                *s += w * v.abs();
            }
        }
        if pooling == Pooling::Mean && end > start {
            sums[b * d..(b + 1) * d]
                .iter_mut()
                .for_each(|s| *s /= (end - start) as f32);
        }
    }
    sums
}

fn compare(got: &[f32], want: &[f32], magnitude: &[f32], what: &str) {
    for (i, ((g, w), m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let tol = 1e-6 * w.abs() + 1e-7 * m;
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {i}: ours {g:e}, pytorch {w:e} (diff {:e}, tolerance {tol:e})",
            (g - w).abs()
        );
    }
}
