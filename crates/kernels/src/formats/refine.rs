//! Least-squares refinement of an N-bit row's scale and bias (`fused8half`, `fused4`, `fused2`).
//!
//! The FBGEMM N-bit layout fixes only how a row decodes, `code · scale + bias` with an f16 scale and
//! bias; it does not fix how they are chosen. PyTorch picks `bias = f16(lo)` and
//! `scale = f16((hi - bias) / (2^N - 1))` for a clipping range `[lo, hi]` (the row's min and max, or
//! the greedy search's choice), which leaves error on the table at 2 and 4 bits: the grid is anchored
//! at the range's ends rather than fitted to where the values are.
//!
//! Starting from an already quantized row, [`refine_row`] alternates the two steps of a Lloyd-style
//! fit on the uniform grid, accepting a step only when the row's squared decode error
//! `Σ (x_i - (code_i · scale + bias))²` (decoded in f32 exactly as the kernels do) goes down:
//! 1. codes fixed: the least-squares `scale`, `bias` (a linear regression of the values on their
//!    codes), rounded to f16;
//! 2. scale and bias fixed: each code the nearest grid level, clamped to `[0, 2^N - 1]`;
//!
//! then a local search over the f16 neighbours (±1 ulp) of the scale and bias, recoding each
//! candidate. The result is never worse than the starting row (so never worse than PyTorch's greedy
//! choice), stays in the exact byte layout FBGEMM and PyTorch read, and is deterministic. Only a
//! finite non-zero scale and a finite bias are ever written.

use half::f16;

use super::round::round_f16;

/// Least-squares steps tried before the neighbour search.
const LS_STEPS: usize = 8;
/// Rounds of the ±1 ulp neighbour search.
const NEIGHBOUR_ROUNDS: usize = 4;

/// Refines `out` (one `bits`-bit row of `x.len()` values, as `nbit::quantize_row*` wrote it) in
/// place; `codes` is scratch reused between rows.
pub(crate) fn refine_row(x: &[f32], bits: u32, codes: &mut Vec<u8>, out: &mut [u8]) {
    let d = x.len();
    if d == 0 {
        return;
    }
    let qmax = (1u32 << bits) - 1;
    let per_byte = (8 / bits) as usize;
    let code_bytes = d.div_ceil(per_byte);
    let scale = f16::from_le_bytes([out[code_bytes], out[code_bytes + 1]]).to_f32();
    let bias = f16::from_le_bytes([out[code_bytes + 2], out[code_bytes + 3]]).to_f32();
    codes.clear();
    codes.extend((0..d).map(|i| {
        let byte = out[i / per_byte];
        (byte >> ((i % per_byte) as u32 * bits)) & qmax as u8
    }));
    let mut best = Grid {
        scale,
        bias,
        error: error_with(x, codes, scale, bias),
    };
    let start_error = best.error;
    let mut trial = Vec::with_capacity(d);

    for _ in 0..LS_STEPS {
        let Some((s, b)) = least_squares(x, codes) else {
            break;
        };
        if !try_grid(
            x,
            (round_f16(s), round_f16(b)),
            qmax,
            &mut best,
            codes,
            &mut trial,
        ) {
            break;
        }
    }
    for _ in 0..NEIGHBOUR_ROUNDS {
        let mut improved = false;
        let (s0, b0) = (best.scale, best.bias);
        for ds in [-1, 0, 1] {
            for db in [-1, 0, 1] {
                if ds == 0 && db == 0 {
                    continue;
                }
                let grid = (f16_step(s0, ds), f16_step(b0, db));
                improved |= try_grid(x, grid, qmax, &mut best, codes, &mut trial);
            }
        }
        if !improved {
            break;
        }
    }
    if best.error < start_error {
        write_row(codes, bits, best.scale, best.bias, out);
    }
}

/// Writes an N-bit row: `codes` packed element 0 in the low bits, then the f16 scale and bias
/// (f16 values held in f32).
pub(super) fn write_row(codes: &[u8], bits: u32, scale: f32, bias: f32, out: &mut [u8]) {
    let per_byte = (8 / bits) as usize;
    let code_bytes = codes.len().div_ceil(per_byte);
    out[..code_bytes].fill(0);
    for (i, &c) in codes.iter().enumerate() {
        out[i / per_byte] |= c << ((i % per_byte) as u32 * bits);
    }
    out[code_bytes..code_bytes + 2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
    out[code_bytes + 2..code_bytes + 4].copy_from_slice(&f16::from_f32(bias).to_le_bytes());
}

/// Recodes `x` for `(scale, bias)` into `trial`; when that is usable and beats `best`, it becomes
/// `best` (its codes swapped into `codes`) and the result is true.
fn try_grid(
    x: &[f32],
    (scale, bias): (f32, f32),
    qmax: u32,
    best: &mut Grid,
    codes: &mut Vec<u8>,
    trial: &mut Vec<u8>,
) -> bool {
    if !usable(scale, bias) {
        return false;
    }
    let error = recode(x, scale, bias, qmax, trial);
    if error >= best.error {
        return false;
    }
    *best = Grid { scale, bias, error };
    std::mem::swap(codes, trial);
    true
}

/// A scale and bias (f16 values held in f32) with the squared error of the row they decode to.
#[derive(Clone, Copy)]
struct Grid {
    scale: f32,
    bias: f32,
    error: f64,
}

/// Whether a scale and bias may be written: a finite non-zero scale and a finite bias. (A negative
/// scale is legitimate: PyTorch writes one when `f16(min)` rounds above the row's max.)
pub(super) fn usable(scale: f32, bias: f32) -> bool {
    scale.is_finite() && scale != 0.0 && bias.is_finite()
}

/// The f16 value `steps` (−1, 0 or +1) ulps above `v` (an f16 value held in f32), or NaN past the
/// finite range.
fn f16_step(v: f32, steps: i32) -> f32 {
    if steps == 0 {
        return v;
    }
    let h = f16::from_f32(v);
    let bits = h.to_bits();
    let up = steps > 0;
    let next = if bits & 0x7fff == 0 {
        // ±0: the smallest subnormal on the side we move to.
        if up { 0x0001 } else { 0x8001 }
    } else if (bits & 0x8000 == 0) == up {
        bits + 1 // away from zero
    } else {
        bits - 1 // towards zero
    };
    let r = f16::from_bits(next).to_f32();
    if r.is_finite() { r } else { f32::NAN }
}

/// Squared decode error of `codes` under `scale`, `bias` (decoded in f32, summed in f64).
fn error_with(x: &[f32], codes: &[u8], scale: f32, bias: f32) -> f64 {
    x.iter()
        .zip(codes)
        .map(|(&v, &c)| {
            let e = (v - (c as f32 * scale + bias)) as f64;
            e * e
        })
        .sum()
}

/// Nearest codes for `scale`, `bias` into `codes`; returns their squared decode error.
fn recode(x: &[f32], scale: f32, bias: f32, qmax: u32, codes: &mut Vec<u8>) -> f64 {
    codes.clear();
    let inv = 1.0 / scale as f64;
    let mut error = 0.0;
    for &v in x {
        let q = ((v as f64 - bias as f64) * inv)
            .round()
            .clamp(0.0, qmax as f64) as u32;
        // The nearest level in real arithmetic can lose to its neighbour once the decode is
        // rounded to f32; check both sides.
        let mut best = (q, sq(v - (q as f32 * scale + bias)));
        for c in [q.wrapping_sub(1), q + 1] {
            if c <= qmax {
                let e = sq(v - (c as f32 * scale + bias));
                if e < best.1 {
                    best = (c, e);
                }
            }
        }
        codes.push(best.0 as u8);
        error += best.1;
    }
    error
}

fn sq(e: f32) -> f64 {
    (e as f64) * (e as f64)
}

/// The least-squares `(scale, bias)` for fixed codes, or `None` when every code is equal and the
/// mean alone is fitted (returned as the bias with the current scale left to the caller: `None`
/// keeps the row as it is).
fn least_squares(x: &[f32], codes: &[u8]) -> Option<(f32, f32)> {
    let n = x.len() as f64;
    let (mut sq_, mut sqq, mut sx, mut sqx) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&v, &c) in x.iter().zip(codes) {
        let (q, v) = (c as f64, v as f64);
        sq_ += q;
        sqq += q * q;
        sx += v;
        sqx += q * v;
    }
    let det = n * sqq - sq_ * sq_;
    if det <= 0.0 {
        return None;
    }
    let scale = (n * sqx - sq_ * sx) / det;
    let bias = (sx - scale * sq_) / n;
    Some((scale as f32, bias as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::codes::CodeOps;
    use crate::formats::{TableFormat, dequantize_row, nbit};
    use crate::rng::Rng;

    fn row_error(format: TableFormat, x: &[f32], row: &[u8]) -> f64 {
        let mut back = vec![0f32; x.len()];
        dequantize_row(format, row, &mut back);
        x.iter().zip(&back).map(|(&a, &b)| sq(a - b)).sum()
    }

    #[test]
    fn refinement_never_loses_and_usually_wins_at_2_and_4_bits() {
        let ops = CodeOps::for_isa(crate::Isa::Scalar).unwrap();
        let mut rng = Rng::new(7);
        for (format, bits) in [
            (TableFormat::Fused2, 2),
            (TableFormat::Fused4, 4),
            (TableFormat::Fused8Half, 8),
        ] {
            let (mut before, mut after) = (0.0, 0.0);
            for d in [1usize, 2, 4, 8, 16, 20, 64] {
                if format.check_dim(d).is_err() {
                    continue;
                }
                for r in 0..200 {
                    let x: Vec<f32> = match r % 4 {
                        0 => rng.normal_vec(d, 0.1),
                        1 => (0..d).map(|_| rng.uniform() as f32 * 3.0 - 1.0).collect(),
                        2 => vec![0.3; d],
                        _ => rng
                            .normal_vec(d, 1.0)
                            .iter()
                            .map(|v| v * v * v * 0.01)
                            .collect(),
                    };
                    let mut row = vec![0u8; format.row_bytes(d)];
                    nbit::quantize_row(&ops, &x, bits, &mut Vec::new(), &mut row);
                    let e0 = row_error(format, &x, &row);
                    refine_row(&x, bits, &mut Vec::new(), &mut row);
                    let e1 = row_error(format, &x, &row);
                    assert!(e1 <= e0, "{format} d {d} row {r}: {e1} > {e0}");
                    let (scale, bias) = crate::formats::row_scale_bias(format, d, &row);
                    assert!(
                        scale != 0.0 && scale.is_finite() && bias.is_finite(),
                        "{format} d {d} row {r}: scale {scale}, bias {bias}"
                    );
                    before += e0;
                    after += e1;
                }
            }
            // Min/max grids leave a lot on the table at 2 and 4 bits.
            if bits < 8 {
                assert!(after < 0.9 * before, "{format}: {after} vs {before}");
            }
        }
    }

    #[test]
    fn f16_steps_move_one_ulp_either_way_through_zero() {
        assert_eq!(f16_step(1.0, 1), 1.0 + 2f32.powi(-10));
        assert_eq!(f16_step(1.0, -1), 1.0 - 2f32.powi(-11));
        assert_eq!(f16_step(-1.0, 1), -1.0 + 2f32.powi(-11));
        assert_eq!(f16_step(0.0, 1), 2f32.powi(-24));
        assert_eq!(f16_step(0.0, -1), -(2f32.powi(-24)));
        assert!(f16_step(65504.0, 1).is_nan());
        assert_eq!(f16_step(0.5, 0), 0.5);
    }
}
