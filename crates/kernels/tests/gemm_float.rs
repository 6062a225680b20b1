//! f32, fp16-weight and bf16 dense layers at every implementation this CPU has, against the scalar
//! oracles (through [`kernel_suite!`], with the row-independence property).
//!
//! Error bounds (u = 2⁻²⁴, S = Σₚ |x̂ₚ·ŵₚ| + |b| over the values the precision actually multiplies):
//! - The SIMD kernels multiply exactly the same operands as the oracle (f32; the same f16-rounded
//!   weights; the same bf16-rounded weights and activations, whose products are exact in f32) and only
//!   change the order of the f32 additions (bias first instead of last, k blocks, even/odd split sums,
//!   `vdpbf16ps` adding odd before even). Any order of an n-term f32 sum is within γₙ·S ≈ n·u·S of the
//!   exact sum, so the two results differ by at most 2·(k+2)·u·S = (k+2)·2⁻²³·S; ReLU does not widen it.
//! - `vdpbf16ps` also reads bf16 denormals as zero and flushes denormal results: at most 2⁻¹²⁶ per
//!   step, so bf16 adds (2k+2)·2⁻¹²⁶ to the bound (only visible for values near f32's range floor).
//! - Rounding to the precision itself (f16: relative 2⁻¹¹ per weight; bf16: 2⁻⁸ per weight and per
//!   activation) is in the oracle too, so it is not part of the comparison; `fp16_and_bf16_near_f32`
//!   checks that rounding error separately against f32 with those bounds.

use half::{bf16, f16};
use quantrec_kernels::gemm::{DenseFamily, LinearScratch, PackedLinear, Precision};
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise, extremes};
use quantrec_kernels::{Isa, KernelError, kernel_suite};

const MS: [usize; 7] = [0, 1, 2, 15, 16, 17, 255];
const KS: [usize; 6] = [1, 3, 13, 64, 479, 1024];
/// 57 leaves 9 columns in the last AVX2 panel (16) and 25 in the last AVX-512 one (32), so the upper
/// half-masks are exercised too.
const NS: [usize; 6] = [1, 7, 16, 33, 57, 256];

/// Every (k, n) pair, each with two m values cycling through `MS` (so every m appears with many
/// k and n), keeping the oracle work modest, plus two shapes longer than a k block.
fn shapes() -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    let mut idx = 0;
    for &k in &KS {
        for &n in &NS {
            for off in [0, 3] {
                let m = MS[(idx + off) % MS.len()];
                v.push((m, k, n));
            }
            idx += 1;
        }
    }
    // Beyond one k block of every kernel (1024 k indices), so partial sums are stored and reloaded.
    v.extend([(17, 2100, 57), (33, 1030, 7)]);
    v
}

fn data(rng: &mut Rng, len: usize) -> Vec<f32> {
    // Mixed magnitudes so that cancellation and tails of the sum both occur.
    (0..len)
        .map(|i| {
            let v = rng.normal() as f32;
            if i % 7 == 3 { v * 8.0 } else { v * 0.5 }
        })
        .collect()
}

/// The values a precision multiplies: (activation, weight) rounded as the oracle rounds them.
fn operands(p: Precision, x: f32, w: f32) -> (f64, f64) {
    match p {
        Precision::F32 => (f64::from(x), f64::from(w)),
        Precision::F16 => (
            f64::from(x),
            f64::from(f16::from_f32(w.clamp(-65504.0, 65504.0)).to_f32()),
        ),
        Precision::Bf16 => (
            f64::from(bf16::from_f32(x).to_f32()),
            f64::from(bf16::from_f32(w).to_f32()),
        ),
        Precision::Int8(_) => unreachable!("int8 is tested elsewhere"),
    }
}

/// One dense call: `m×k` input, `n×k` weights, bias, precision, ReLU.
struct Dense {
    precision: Precision,
    m: usize,
    k: usize,
    n: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    relu: bool,
}

/// f32, fp16 and bf16 layers of [`DenseFamily`] against the scalar implementation, within the
/// reassociation bound of the module docs; every call runs twice on one scratch (the second call
/// reuses grown buffers).
struct DenseSuite<const P: u8>;

const F32: u8 = 0;
const F16: u8 = 1;
const BF16: u8 = 2;

fn precision(p: u8) -> Precision {
    [Precision::F32, Precision::F16, Precision::Bf16][p as usize]
}

fn forward(index: usize, c: &Dense) -> Vec<f32> {
    let layer =
        PackedLinear::new_for_implementation(&c.w, Some(&c.b), c.n, c.k, c.precision, index)
            .unwrap();
    let mut got = vec![f32::NAN; c.m * c.n];
    let mut scratch = LinearScratch::default();
    for _ in 0..2 {
        layer
            .forward(&c.x, c.m, &mut got, c.relu, &mut scratch)
            .unwrap();
    }
    got
}

impl<const P: u8> OracleSuite for DenseSuite<P> {
    type Family = DenseFamily;
    type Case = Dense;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<Dense> {
        let precision = precision(P);
        let mut v = Vec::new();
        for (m, k, n) in shapes() {
            let x = data(rng, m * k);
            let w = data(rng, n * k);
            let b = data(rng, n);
            for relu in [false, true] {
                v.push(Dense {
                    precision,
                    m,
                    k,
                    n,
                    x: x.clone(),
                    w: w.clone(),
                    b: b.clone(),
                    relu,
                });
            }
        }
        // Extreme activations (the weights stay moderate so f16 does not saturate).
        for (_, x) in extremes(rng, 5 * 67, 1e18) {
            v.push(Dense {
                precision,
                m: 5,
                k: 67,
                n: 20,
                x,
                w: data(rng, 20 * 67),
                b: data(rng, 20),
                relu: false,
            });
        }
        v
    }

    fn describe(c: &Dense) -> String {
        format!(
            "{:?} m={} k={} n={} relu={}",
            c.precision, c.m, c.k, c.n, c.relu
        )
    }

    fn reference(c: &Dense) -> Vec<f32> {
        forward(0, c)
    }

    fn run(index: usize, c: &Dense) -> Vec<f32> {
        forward(index, c)
    }

    fn check(c: &Dense, want: &[f32], got: &[f32]) -> Result<(), String> {
        let (m, k, n) = (c.m, c.k, c.n);
        let ftz = if c.precision == Precision::Bf16 {
            (2 * k + 2) as f64 * 2f64.powi(-126)
        } else {
            0.0
        };
        for i in 0..m {
            for j in 0..n {
                // S, from the oracle's operands.
                let mut s = f64::from(c.b[j]).abs();
                for p in 0..k {
                    let (xv, wv) = operands(c.precision, c.x[i * k + p], c.w[j * k + p]);
                    s += (xv * wv).abs();
                }
                let idx = i * n + j;
                let tol = (k + 2) as f64 * 2f64.powi(-23) * s + ftz;
                let diff = (f64::from(got[idx]) - f64::from(want[idx])).abs();
                if !(diff <= tol || got[idx] == want[idx]) {
                    return Err(format!(
                        "({i}, {j}): got {} want {} (diff {diff:e} > tol {tol:e})",
                        got[idx], want[idx]
                    ));
                }
                if c.relu && got[idx].partial_cmp(&0.0).is_none_or(|o| o.is_lt()) {
                    return Err(format!("({i}, {j}): {} after ReLU", got[idx]));
                }
            }
        }
        Ok(())
    }
}

impl<const P: u8> RowWise for DenseSuite<P> {
    fn row_cases(rng: &mut Rng) -> Vec<Dense> {
        // One k block and beyond it (k > 1024), odd k, column tails of every kernel.
        [(67, 40), (256, 57), (1030, 33)]
            .into_iter()
            .map(|(k, n)| Dense {
                precision: precision(P),
                m: 300,
                k,
                n,
                x: data(rng, 300 * k),
                w: data(rng, n * k),
                b: data(rng, n),
                relu: false,
            })
            .collect()
    }

    fn rows(c: &Dense) -> usize {
        c.m
    }

    fn take_rows(c: &Dense, start: usize, len: usize) -> Dense {
        Dense {
            precision: c.precision,
            m: len,
            k: c.k,
            n: c.n,
            x: c.x[start * c.k..(start + len) * c.k].to_vec(),
            w: c.w.clone(),
            b: c.b.clone(),
            relu: c.relu,
        }
    }

    fn row_len(c: &Dense) -> usize {
        c.n
    }
}

kernel_suite!(f32_layers: DenseSuite<F32>, rows);
kernel_suite!(fp16_layers: DenseSuite<F16>, rows);
kernel_suite!(bf16_layers: DenseSuite<BF16>, rows);

/// The precisions' own rounding, against exact (f64) f32-weight results: f16 weights carry a relative
/// error ≤ 2⁻¹¹ (normal range; these weights are far from f16's subnormals), bf16 weights and
/// activations ≤ 2⁻⁸ each, so a product is off by ≤ (2⁻⁸ + 2⁻⁸ + 2⁻¹⁶)·|x·w|.
#[test]
fn fp16_and_bf16_near_f32() {
    let mut rng = Rng::new(11);
    let (m, k, n) = (17, 479, 33);
    let x = data(&mut rng, m * k);
    let w = data(&mut rng, n * k);
    for (precision, rel) in [
        (Precision::F16, 2f64.powi(-11)),
        (Precision::Bf16, 2.0 * 2f64.powi(-8) + 2f64.powi(-16)),
    ] {
        let layer = PackedLinear::new(&w, None, n, k, precision).unwrap();
        let mut got = vec![0f32; m * n];
        layer
            .forward(&x, m, &mut got, false, &mut LinearScratch::default())
            .unwrap();
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut s) = (0f64, 0f64);
                for p in 0..k {
                    let t = f64::from(x[i * k + p]) * f64::from(w[j * k + p]);
                    exact += t;
                    s += t.abs();
                }
                let tol = rel * s + (k + 2) as f64 * 2f64.powi(-23) * s * (1.0 + rel);
                let diff = (f64::from(got[i * n + j]) - exact).abs();
                assert!(diff <= tol, "{precision:?} ({i},{j}): {diff:e} > {tol:e}");
            }
        }
    }
}

#[test]
fn fp16_saturates_and_counts() {
    let (n, k) = (3, 5);
    let mut w = vec![0.25f32; n * k];
    w[1] = 70000.0; // saturated
    w[6] = -1.0e6; // saturated
    w[7] = 65504.0; // exactly the largest f16: kept
    w[13] = 65519.0; // beyond 65504: counted, clamped
    let x = [1.0f32, 0.5, -0.25, 2.0, 1.0];
    let mut clamped = w.clone();
    for v in &mut clamped {
        *v = v.clamp(-65504.0, 65504.0);
    }
    for isa in Isa::available() {
        let layer = PackedLinear::new_for_isa(&w, None, n, k, Precision::F16, isa).unwrap();
        assert_eq!(layer.saturated_weights(), 3, "{isa}");
        let reference =
            PackedLinear::new_for_isa(&clamped, None, n, k, Precision::F16, isa).unwrap();
        assert_eq!(reference.saturated_weights(), 0);
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        let mut scratch = LinearScratch::default();
        layer.forward(&x, 1, &mut a, false, &mut scratch).unwrap();
        reference
            .forward(&x, 1, &mut b, false, &mut scratch)
            .unwrap();
        assert_eq!(a, b, "{isa}");
        assert!(a.iter().all(|v| v.is_finite()));
        assert_eq!(a[0], 0.25 + 0.5 * 65504.0 - 0.25 * 0.25 + 2.0 * 0.25 + 0.25);
    }
    let f32_layer = PackedLinear::new(&w, None, n, k, Precision::F32).unwrap();
    assert_eq!(f32_layer.saturated_weights(), 0);
}

#[test]
fn non_finite_weights_and_bias_are_errors() {
    let (n, k) = (4, 6);
    for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
        for isa in Isa::available() {
            let mut w = vec![0.5f32; n * k];
            w[2 * k + 3] = f32::NAN;
            let err = PackedLinear::new_for_isa(&w, None, n, k, precision, isa).unwrap_err();
            match err {
                KernelError::NonFinite { row, col, .. } => assert_eq!((row, col), (2, 3)),
                other => panic!("{other:?}"),
            }
            w[2 * k + 3] = 0.0;
            let mut b = vec![0f32; n];
            b[1] = f32::NEG_INFINITY;
            assert!(matches!(
                PackedLinear::new_for_isa(&w, Some(&b), n, k, precision, isa),
                Err(KernelError::NonFinite { col: 1, .. })
            ));
        }
    }
}

#[test]
fn bad_lengths_are_errors() {
    let layer = PackedLinear::new(&[1.0; 6], None, 2, 3, Precision::F32).unwrap();
    let mut scratch = LinearScratch::default();
    let mut out = vec![0f32; 4];
    assert!(matches!(
        layer.forward(&[1.0; 5], 2, &mut out, false, &mut scratch),
        Err(KernelError::Shape {
            expected: 6,
            found: 5,
            ..
        })
    ));
    assert!(matches!(
        layer.forward(&[1.0; 6], 2, &mut out[..3], false, &mut scratch),
        Err(KernelError::Shape {
            expected: 4,
            found: 3,
            ..
        })
    ));
    if Isa::detected() < Isa::Vnni {
        assert!(matches!(
            PackedLinear::new_for_isa(&[1.0; 6], None, 2, 3, Precision::F32, Isa::Vnni),
            Err(KernelError::IsaUnavailable { .. })
        ));
    }
}

/// k = 0: the output is the bias (ReLU applied); n = 0 and m = 0 do nothing.
#[test]
fn degenerate_dimensions() {
    for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
        for isa in Isa::available() {
            let layer =
                PackedLinear::new_for_isa(&[], Some(&[1.5, -2.0]), 2, 0, precision, isa).unwrap();
            let mut out = vec![9f32; 6];
            let mut scratch = LinearScratch::default();
            layer.forward(&[], 3, &mut out, true, &mut scratch).unwrap();
            assert_eq!(out, [1.5, 0.0, 1.5, 0.0, 1.5, 0.0], "{precision:?} {isa}");
            let empty = PackedLinear::new_for_isa(&[], None, 0, 4, precision, isa).unwrap();
            empty
                .forward(&[1.0; 8], 2, &mut [], false, &mut scratch)
                .unwrap();
        }
    }
}
