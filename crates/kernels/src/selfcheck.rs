//! A self-check of every kernel family of the [registry](crate::registry) at every implementation
//! this CPU runs, against the family's scalar oracle.
//!
//! The same comparisons the test suite makes, on fresh random data, small enough to run in well
//! under a second: `quantrec demo` runs it so a user sees on their own machine that every SIMD path
//! agrees with the plain reference before trusting its speed.

use crate::embedding_bag::{
    self, Bags, EmbeddingBag, EmbeddingBagFamily, Indices, Lookup, Pooling,
};
use crate::formats::codes::Codes;
use crate::formats::decode::Decode;
use crate::formats::greedy::Greedy;
use crate::formats::{
    QuantizeOptions, TableFormat, TableRef, dequantize_table_with, quantize_table_with,
};
use crate::gemm::int8::{Int8Family, Int8Input, Int8Kernel, Int8Output};
use crate::gemm::{ActivationQuant, DenseFamily, Int8Spec, LinearScratch, PackedLinear, Precision};
use crate::interaction::{InteractionFamily, PairOrder, pairs};
use crate::registry::{FAMILIES, KernelFamily};
use crate::rng::Rng;
use crate::{Isa, Result};

/// The outcome of one kernel family at one implementation level.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// Kernel family (`formats`, `embedding_bag`, `linear_f32`, ...).
    pub family: &'static str,
    /// The implementation checked (an ISA level or an int8 kernel name).
    pub implementation: String,
    /// Number of cases compared.
    pub cases: usize,
    /// Largest error found, relative to the bound's scale (0 for exact comparisons).
    pub max_error: f64,
    /// The error each case was allowed (0 = bit-exact).
    pub tolerance: f64,
    /// Whether every case matched.
    pub passed: bool,
}

/// Runs every family of the [registry](crate::registry) at every implementation this CPU runs;
/// errors only when a kernel refuses valid arguments.
pub fn run_all(seed: u64) -> Result<Vec<CheckResult>> {
    let mut out = Vec::new();
    for family in FAMILIES {
        for (index, _) in family.available() {
            out.extend((family.selfcheck)(index, seed)?);
        }
    }
    Ok(out)
}

/// Row codes, packed codes and min/max of implementation `index` of [`Codes`], and whole tables
/// quantized at its level, byte for byte against the scalar oracle.
pub(crate) fn codes(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    let ops = Codes::get(index)?;
    let oracle = Codes::get(0)?;
    let mut rng = Rng::new(seed ^ 5);
    let (mut cases, mut mismatches) = (0, 0);
    let mut scratch = Vec::new();
    for len in [0usize, 1, 7, 15, 16, 17, 33, 64, 100] {
        let x = rng.normal_vec(len, 0.4);
        let (lo, hi) = oracle.min_max(&x);
        mismatches += usize::from(ops.min_max(&x) != (lo, hi));
        let bias = if len == 0 { 0.0 } else { lo };
        let inv = if hi > lo { 15.0 / (hi - lo) } else { 1.0 };
        for bits in [1u32, 2, 4, 8] {
            let bytes = (len * bits as usize).div_ceil(8);
            let (mut want, mut got) = (vec![0u8; bytes], vec![0u8; bytes]);
            oracle.packed_codes(&x, bias, inv, bits, &mut scratch, &mut want)?;
            ops.packed_codes(&x, bias, inv, bits, &mut scratch, &mut got)?;
            mismatches += usize::from(want != got);
            cases += 1;
        }
    }
    let imp = Codes::IMPLEMENTATIONS[index];
    let mut results = vec![exact(Codes::NAME, imp.name.into(), cases + 9, mismatches)];
    results.push(check_tables(imp.isa, seed)?);
    Ok(results)
}

/// Quantize and decode a table in every fused and half format at `isa`: bytes and decoded values
/// must be identical to the scalar level's.
fn check_tables(isa: Isa, seed: u64) -> Result<CheckResult> {
    let mut rng = Rng::new(seed);
    let (rows, dim) = (33, 24);
    let mut src = rng.normal_vec(rows * dim, 0.3);
    src[..dim].fill(0.7); // a constant row
    let (mut cases, mut mismatches) = (0, 0);
    for format in TableFormat::ALL {
        for greedy in [false, true] {
            if greedy && !matches!(format, TableFormat::Fused4 | TableFormat::Fused2) {
                continue;
            }
            let opts = QuantizeOptions {
                greedy,
                refine: greedy,
                name: "selfcheck",
            };
            let mut want = vec![0u8; rows * format.row_bytes(dim)];
            let mut got = want.clone();
            quantize_table_with(Isa::Scalar, &src, rows, dim, format, &opts, &mut want)?;
            quantize_table_with(isa, &src, rows, dim, format, &opts, &mut got)?;
            let table = TableRef::new(format, rows, dim, &want)?;
            let (mut a, mut b) = (vec![0f32; rows * dim], vec![0f32; rows * dim]);
            dequantize_table_with(Isa::Scalar, &table, &mut a)?;
            dequantize_table_with(isa, &table, &mut b)?;
            cases += 2;
            mismatches += usize::from(want != got) + usize::from(a != b);
        }
    }
    Ok(exact("formats", isa.name().into(), cases, mismatches))
}

/// Row decoding of implementation `index` of [`Decode`] for every format, bit for bit.
pub(crate) fn decode(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    let ops = Decode::get(index)?;
    let oracle = Decode::get(0)?;
    let mut rng = Rng::new(seed ^ 6);
    let (mut cases, mut mismatches) = (0, 0);
    for dim in [4usize, 8, 12, 16, 20, 32, 36, 64, 68] {
        let src = rng.normal_vec(3 * dim, 0.5);
        for format in TableFormat::ALL {
            let mut bytes = vec![0u8; 3 * format.row_bytes(dim)];
            let opts = QuantizeOptions {
                greedy: false,
                refine: false,
                name: "selfcheck",
            };
            quantize_table_with(Isa::Scalar, &src, 3, dim, format, &opts, &mut bytes)?;
            for row in bytes.chunks_exact(format.row_bytes(dim)) {
                let (mut want, mut got) = (vec![0f32; dim], vec![f32::NAN; dim]);
                oracle.decode(format, row, &mut want)?;
                ops.decode(format, row, &mut got)?;
                mismatches += usize::from(bits(&want) != bits(&got));
                cases += 1;
            }
        }
    }
    let name = Decode::IMPLEMENTATIONS[index].name;
    Ok(vec![exact(Decode::NAME, name.into(), cases, mismatches)])
}

/// The greedy range search of implementation `index` of [`Greedy`], bit for bit.
pub(crate) fn greedy(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    let ops = Greedy::get(index)?;
    let oracle = Greedy::get(0)?;
    let mut rng = Rng::new(seed ^ 7);
    let (mut cases, mut mismatches) = (0, 0);
    for (rows, dim) in [(1usize, 1usize), (17, 16), (9, 33), (40, 64)] {
        let mut src = rng.normal_vec(rows * dim, 0.5);
        src[..dim].fill(-0.25); // a constant row
        for bits in [2u32, 4] {
            let (mut want, mut got) = (vec![(0f32, 0f32); rows], vec![(0f32, 0f32); rows]);
            oracle.search(&src, dim, bits, &mut want)?;
            ops.search(&src, dim, bits, &mut got)?;
            let b = |v: &[(f32, f32)]| -> Vec<(u32, u32)> {
                v.iter().map(|(a, b)| (a.to_bits(), b.to_bits())).collect()
            };
            mismatches += usize::from(b(&want) != b(&got));
            cases += 1;
        }
    }
    let name = Greedy::IMPLEMENTATIONS[index].name;
    Ok(vec![exact(Greedy::NAME, name.into(), cases, mismatches)])
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn exact(
    family: &'static str,
    implementation: String,
    cases: usize,
    mismatches: usize,
) -> CheckResult {
    CheckResult {
        family,
        implementation,
        cases,
        max_error: mismatches as f64,
        tolerance: 0.0,
        passed: mismatches == 0,
    }
}

/// Pool bags (an empty one, a long one, odd dimension) from every format against the oracle.
pub(crate) fn embedding_bag(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    let ops = EmbeddingBagFamily::get(index)?;
    let name = EmbeddingBagFamily::IMPLEMENTATIONS[index].name;
    let mut rng = Rng::new(seed ^ 1);
    let (rows, bags) = (101, 9);
    let lengths: Vec<i64> = (0..bags)
        .map(|b| if b == 3 { 0 } else { 1 + rng.below(40) as i64 })
        .collect();
    let ids: Vec<i64> = (0..lengths.iter().sum::<i64>())
        .map(|_| rng.below(rows as u64) as i64)
        .collect();
    let weights = rng.normal_vec(ids.len(), 1.0);
    let (mut cases, mut mismatches) = (0, 0);
    for dim in [4, 16, 20, 60, 64, 68, 132] {
        let src = rng.normal_vec(rows * dim, 0.5);
        for format in TableFormat::ALL {
            let mut bytes = vec![0u8; rows * format.row_bytes(dim)];
            let opts = QuantizeOptions {
                greedy: false,
                refine: false,
                name: "selfcheck",
            };
            quantize_table_with(Isa::Scalar, &src, rows, dim, format, &opts, &mut bytes)?;
            let table = TableRef::new(format, rows, dim, &bytes)?;
            for pooling in [Pooling::Sum, Pooling::Mean, Pooling::WeightedSum] {
                let bag = EmbeddingBag {
                    table,
                    pooling,
                    remap: None,
                };
                let lookup = Lookup {
                    indices: Indices::I64(&ids),
                    bags: Bags::Lengths(Indices::I64(&lengths)),
                    num_bags: bags,
                    per_sample_weights: Some(&weights),
                };
                let (mut want, mut got) = (vec![0f32; bags * dim], vec![0f32; bags * dim]);
                embedding_bag::pool_scalar(&bag, &lookup, 0, &mut want, dim)?;
                embedding_bag::pool_with_ops(ops, &bag, &lookup, 0, &mut got, dim)?;
                // Every implementation promises the oracle's bits.
                mismatches += usize::from(bits(&want) != bits(&got));
                cases += 1;
            }
        }
    }
    Ok(vec![exact(
        EmbeddingBagFamily::NAME,
        name.into(),
        cases,
        mismatches,
    )])
}

/// Every precision of implementation `index` of [`DenseFamily`] against the scalar oracle.
pub(crate) fn dense(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    [
        ("linear_f32", Precision::F32),
        ("linear_fp16", Precision::F16),
        ("linear_bf16", Precision::Bf16),
    ]
    .into_iter()
    .map(|(family, precision)| check_float_linear(family, precision, index, seed))
    .collect()
}

/// A float linear layer at `isa` against the same precision at the scalar level; the error is
/// measured against `Σ|x·w| + |b|` per output, the scale the summation-order bound uses.
fn check_float_linear(
    family: &'static str,
    precision: Precision,
    index: usize,
    seed: u64,
) -> Result<CheckResult> {
    let imp = DenseFamily::IMPLEMENTATIONS[index];
    let mut rng = Rng::new(seed ^ 2);
    let (mut cases, mut max_err, mut tol_max) = (0, 0f64, 0f64);
    let mut passed = true;
    for (m, k, n) in [(1, 13, 7), (17, 64, 33), (3, 479, 16), (40, 100, 70)] {
        let w = rng.normal_vec(n * k, 0.1);
        let b = rng.normal_vec(n, 0.1);
        let x = rng.normal_vec(m * k, 1.0);
        let reference = PackedLinear::new_for_implementation(&w, Some(&b), n, k, precision, 0)?;
        let simd = PackedLinear::new_for_implementation(&w, Some(&b), n, k, precision, index)?;
        let (mut want, mut got) = (vec![0f32; m * n], vec![0f32; m * n]);
        let mut scratch = LinearScratch::default();
        reference.forward(&x, m, &mut want, false, &mut scratch)?;
        simd.forward(&x, m, &mut got, false, &mut scratch)?;
        // (k + 2)·2⁻²³ relative to Σ|x·w| + |b|: any two summation orders of the same products.
        let tol = (k as f64 + 2.0) * f64::from(f32::EPSILON) * 2.0;
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| f64::from((x[i * k + p] * w[j * k + p]).abs()))
                    .sum::<f64>()
                    + f64::from(b[j].abs());
                let e =
                    f64::from((want[i * n + j] - got[i * n + j]).abs()) / s.max(f64::MIN_POSITIVE);
                max_err = max_err.max(e);
                passed &= e <= tol;
            }
        }
        tol_max = tol_max.max(tol);
        cases += 1;
    }
    Ok(CheckResult {
        family,
        implementation: imp.name.into(),
        cases,
        max_error: max_err,
        tolerance: tol_max,
        passed,
    })
}

/// int8 accumulators and f32 outputs of implementation `index` of [`Int8Family`] must be bit-exact
/// against the scalar kernel, with per-tensor and per-row dynamic activations.
pub(crate) fn int8(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    let kernel = Int8Kernel::ALL[index];
    let mut rng = Rng::new(seed ^ 3);
    let (mut cases, mut mismatches) = (0, 0);
    for (m, k, n) in [(1, 13, 7), (17, 64, 33), (40, 479, 16), (64, 256, 48)] {
        let w = rng.normal_vec(n * k, 0.1);
        let b = rng.normal_vec(n, 0.1);
        let x = rng.normal_vec(m * k, 1.0);
        for activations in [ActivationQuant::Dynamic, ActivationQuant::DynamicPerRow] {
            let spec = Int8Spec {
                per_channel: true,
                activations,
            };
            let layer = PackedLinear::new(&w, Some(&b), n, k, Precision::Int8(spec))?;
            let mut scratch = LinearScratch::default();
            let mut run = |kernel, raw: bool| -> Result<Vec<u32>> {
                let (mut acc, mut y) = (vec![0i32; m * n], vec![0f32; m * n]);
                let out = if raw {
                    Int8Output::RawI32(&mut acc)
                } else {
                    Int8Output::F32(&mut y)
                };
                layer.forward_int8(kernel, Int8Input::F32(&x), m, out, false, &mut scratch)?;
                Ok(if raw {
                    acc.iter().map(|&v| v as u32).collect()
                } else {
                    bits(&y)
                })
            };
            for raw in [true, false] {
                let (want, got) = (run(Int8Kernel::Scalar, raw)?, run(kernel, raw)?);
                mismatches += want.iter().zip(&got).filter(|(a, b)| a != b).count();
                cases += 1;
            }
        }
    }
    Ok(vec![exact(
        Int8Family::NAME,
        kernel.name().into(),
        cases,
        mismatches,
    )])
}

/// Dot interaction in both pair orders (within a tolerance) and the DCN cross step (bit for bit)
/// of implementation `index` of [`InteractionFamily`] against the scalar oracle.
pub(crate) fn interaction(index: usize, seed: u64) -> Result<Vec<CheckResult>> {
    let name = InteractionFamily::IMPLEMENTATIONS[index].name;
    let mut rng = Rng::new(seed ^ 4);
    let (mut cases, mut max_err) = (0, 0f64);
    let tol = 1e-5;
    let reference = InteractionFamily::get(0)?;
    let ops = InteractionFamily::get(index)?;
    for (batch, f, d) in [(3, 27, 16), (2, 9, 7), (1, 27, 128)] {
        let feats = rng.normal_vec(batch * f * d, 1.0);
        for order in [PairOrder::LowerByRow, PairOrder::UpperByRow] {
            for self_interaction in [false, true] {
                let p = pairs(f, order, self_interaction);
                let width = d + p.len();
                let (mut want, mut got) = (vec![0f32; batch * width], vec![0f32; batch * width]);
                reference.dot_interaction(&feats, batch, f, d, &p, &mut want)?;
                ops.dot_interaction(&feats, batch, f, d, &p, &mut got)?;
                for (a, b) in want.iter().zip(&got) {
                    max_err =
                        max_err.max(f64::from((a - b).abs()) / (d as f64).max(f64::from(a.abs())));
                }
                cases += 1;
            }
        }
    }
    let dot = CheckResult {
        family: "interaction_dot",
        implementation: name.into(),
        cases,
        max_error: max_err,
        tolerance: tol,
        passed: max_err <= tol,
    };
    let (mut cross_cases, mut mismatches) = (0, 0);
    for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 33, 100] {
        let (x0, u, x) = (
            rng.normal_vec(n, 1.0),
            rng.normal_vec(n, 1.0),
            rng.normal_vec(n, 1.0),
        );
        let (mut want, mut got) = (vec![0f32; n], vec![f32::NAN; n]);
        reference.cross_combine(&x0, &u, &x, &mut want)?;
        ops.cross_combine(&x0, &u, &x, &mut got)?;
        mismatches += usize::from(bits(&want) != bits(&got));
        cross_cases += 1;
    }
    Ok(vec![
        dot,
        exact("interaction_cross", name.into(), cross_cases, mismatches),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_level_passes_the_selfcheck() {
        let results = super::run_all(7).unwrap();
        assert!(results.len() >= 6);
        for r in &results {
            assert!(r.passed, "{r:?}");
        }
    }
}
