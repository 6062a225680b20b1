//! A self-check of every kernel at every ISA level this CPU supports against the scalar oracle.
//!
//! The same comparisons the test suite makes, on fresh random data, small enough to run in well
//! under a second: `quantrec demo` runs it so a user sees on their own machine that every SIMD path
//! agrees with the plain reference before trusting its speed.

use crate::embedding_bag::{self, Bags, EmbeddingBag, Indices, Lookup, Pooling};
use crate::formats::{
    QuantizeOptions, TableFormat, TableRef, dequantize_table_with, quantize_table_with,
};
use crate::gemm::int8::{Int8Input, Int8Kernel, Int8Output};
use crate::gemm::{ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision};
use crate::interaction::{InteractionOps, PairOrder, pairs};
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

/// Runs every family at every level; errors only when a kernel refuses valid arguments.
pub fn run_all(seed: u64) -> Result<Vec<CheckResult>> {
    let mut out = Vec::new();
    for isa in Isa::available() {
        out.push(check_formats(isa, seed)?);
        out.push(check_embedding_bag(isa, seed)?);
        for (family, precision) in [
            ("linear_f32", Precision::F32),
            ("linear_fp16", Precision::F16),
            ("linear_bf16", Precision::Bf16),
        ] {
            out.push(check_float_linear(family, precision, isa, seed)?);
        }
        out.push(check_interaction(isa, seed)?);
    }
    for kernel in Int8Kernel::available() {
        out.push(check_int8(kernel, seed)?);
    }
    Ok(out)
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

/// Quantize and decode a table in every fused and half format: bytes and decoded values must be identical.
fn check_formats(isa: Isa, seed: u64) -> Result<CheckResult> {
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

/// Pool bags (an empty one, a long one, odd dimension) from every format against the oracle.
fn check_embedding_bag(isa: Isa, seed: u64) -> Result<CheckResult> {
    let mut rng = Rng::new(seed ^ 1);
    let (rows, bags) = (101, 9);
    let lengths: Vec<i64> = (0..bags)
        .map(|b| if b == 3 { 0 } else { 1 + rng.below(40) as i64 })
        .collect();
    let ids: Vec<i64> = (0..lengths.iter().sum::<i64>())
        .map(|_| rng.below(rows as u64) as i64)
        .collect();
    let weights = rng.normal_vec(ids.len(), 1.0);
    let (mut cases, mut max_err) = (0, 0f64);
    let tol = 1e-5;
    for dim in [16, 20, 64] {
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
                embedding_bag::pool_with_isa(isa, &bag, &lookup, 0, &mut got, dim)?;
                let scale = want.iter().fold(1f32, |m, v| m.max(v.abs())) as f64;
                for (w, g) in want.iter().zip(&got) {
                    max_err = max_err.max(f64::from((w - g).abs()) / scale);
                }
                cases += 1;
            }
        }
    }
    Ok(CheckResult {
        family: "embedding_bag",
        implementation: isa.name().into(),
        cases,
        max_error: max_err,
        tolerance: tol,
        passed: max_err <= tol,
    })
}

/// A float linear layer at `isa` against the same precision at the scalar level; the error is
/// measured against `Σ|x·w| + |b|` per output, the scale the summation-order bound uses.
fn check_float_linear(
    family: &'static str,
    precision: Precision,
    isa: Isa,
    seed: u64,
) -> Result<CheckResult> {
    let mut rng = Rng::new(seed ^ 2);
    let (mut cases, mut max_err, mut tol_max) = (0, 0f64, 0f64);
    let mut passed = true;
    for (m, k, n) in [(1, 13, 7), (17, 64, 33), (3, 479, 16), (40, 100, 70)] {
        let w = rng.normal_vec(n * k, 0.1);
        let b = rng.normal_vec(n, 0.1);
        let x = rng.normal_vec(m * k, 1.0);
        let reference = PackedLinear::new_for_isa(&w, Some(&b), n, k, precision, Isa::Scalar)?;
        let simd = PackedLinear::new_for_isa(&w, Some(&b), n, k, precision, isa)?;
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
        implementation: isa.name().into(),
        cases,
        max_error: max_err,
        tolerance: tol_max,
        passed,
    })
}

/// int8 accumulators must be bit-exact against the scalar kernel.
fn check_int8(kernel: Int8Kernel, seed: u64) -> Result<CheckResult> {
    let mut rng = Rng::new(seed ^ 3);
    let (mut cases, mut mismatches) = (0, 0);
    for (m, k, n) in [(1, 13, 7), (17, 64, 33), (40, 479, 16), (64, 256, 48)] {
        let w = rng.normal_vec(n * k, 0.1);
        let x = rng.normal_vec(m * k, 1.0);
        let spec = Int8Spec {
            per_channel: true,
            activations: ActivationQuant::Dynamic,
        };
        let layer = PackedLinear::new(&w, None, n, k, Precision::Int8(spec))?;
        let mut scratch = LinearScratch::default();
        let (mut want, mut got) = (vec![0i32; m * n], vec![0i32; m * n]);
        layer.forward_int8(
            Int8Kernel::Scalar,
            Int8Input::F32(&x),
            m,
            Int8Output::RawI32(&mut want),
            false,
            &mut scratch,
        )?;
        layer.forward_int8(
            kernel,
            Int8Input::F32(&x),
            m,
            Int8Output::RawI32(&mut got),
            false,
            &mut scratch,
        )?;
        mismatches += want.iter().zip(&got).filter(|(a, b)| a != b).count();
        cases += 1;
    }
    Ok(exact(
        "linear_int8",
        kernel.name().into(),
        cases,
        mismatches,
    ))
}

/// Dot interaction in both pair orders against the scalar level.
fn check_interaction(isa: Isa, seed: u64) -> Result<CheckResult> {
    let mut rng = Rng::new(seed ^ 4);
    let (mut cases, mut max_err) = (0, 0f64);
    let tol = 1e-5;
    let reference = InteractionOps::for_isa(Isa::Scalar)?;
    let ops = InteractionOps::for_isa(isa)?;
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
    Ok(CheckResult {
        family: "interaction_dot",
        implementation: isa.name().into(),
        cases,
        max_error: max_err,
        tolerance: tol,
        passed: max_err <= tol,
    })
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
