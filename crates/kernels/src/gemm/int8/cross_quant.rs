//! The DCN-v2 cross layer's element-wise step fused with the quantization of its output for the
//! next int8 layer: `x_next = x0 ⊙ u + x` (one fused multiply-add per element, exactly as
//! [`crate::interaction::cross_combine`]) and, in the same pass, `codes = quantize_u8(x_next)` with
//! the next layer's static input parameters (exactly as that layer quantizes an f32 input itself,
//! [`super::scalar::quantize_u8`] with `1 / scale`). The next layer then reads u8 codes instead of
//! scanning `x_next` for its range check and quantizing it again, and `u` can be produced and
//! consumed in row blocks that stay in L2.
//!
//! One portable body, compiled for each level inside a `target_feature` wrapper (the arithmetic is
//! one `mul_add`, then the quantizer's multiply, round-to-nearest-even, add and clamp, so every
//! level gives the same bits); non-finite values of `x_next` are reported as the next layer would
//! report them.

use super::scalar::quantize_u8;
use crate::gemm::{QParams, check_len, check_qparams};
use crate::{Isa, KernelError, Result};

/// `x_next = x0 ⊙ u + x` and `codes[i] = quantize_u8(x_next[i], 1 / q.scale, q.zero_point)`, over
/// rows of `cols` values (the row and column of a non-finite value are reported in those terms).
///
/// Errors: slices of different lengths, a length that is not a whole number of rows, bad `q`, and
/// any non-finite `x_next` value ([`KernelError::NonFinite`] with `what` = "int8 linear input", the
/// error the next int8 layer gives for a non-finite f32 input); `x_next` and `codes` are then
/// written but meaningless.
pub fn cross_combine_quantize(
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    cols: usize,
    q: QParams,
    x_next: &mut [f32],
    codes: &mut [u8],
) -> Result<()> {
    let len = x0.len();
    check_len("cross u", len, u.len())?;
    check_len("cross x", len, x.len())?;
    check_len("cross output", len, x_next.len())?;
    check_len("cross output codes", len, codes.len())?;
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(KernelError::Shape {
            what: "cross values (a whole number of rows)",
            index: None,
            expected: len.next_multiple_of(cols.max(1)),
            found: len,
        });
    }
    check_qparams("int8 linear input activations", q)?;
    let (inv, zp) = (1.0 / q.scale, q.zero_point);
    let finite = run(Isa::active(), x0, u, x, inv, zp, x_next, codes);
    if !finite && let Some(i) = x_next.iter().position(|v| !v.is_finite()) {
        return Err(KernelError::NonFinite {
            what: "int8 linear input",
            table: None,
            row: i / cols,
            col: i % cols,
            value: x_next[i],
        });
    }
    Ok(())
}

/// The body at `isa` (lengths checked by the caller); whether every `x_next` is finite.
#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    inv: f32,
    zp: i32,
    x_next: &mut [f32],
    codes: &mut [u8],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx512 {
            // SAFETY: `isa` is at most the detected level, which includes AVX-512 F/BW/VL/DQ here
            // (and FMA, which every AVX-512 CPU has and `Isa::Avx2` already requires).
            return unsafe { body_avx512(x0, u, x, inv, zp, x_next, codes) };
        }
        if isa >= Isa::Avx2 {
            // SAFETY: level Avx2 is only detected with AVX2 and FMA.
            return unsafe { body_avx2(x0, u, x, inv, zp, x_next, codes) };
        }
    }
    let _ = isa;
    body(x0, u, x, inv, zp, x_next, codes)
}

/// The scalar oracle (also the portable fallback): see [`cross_combine_quantize`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn body(
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    inv: f32,
    zp: i32,
    x_next: &mut [f32],
    codes: &mut [u8],
) -> bool {
    let n = x0.len();
    let (u, x, x_next, codes) = (&u[..n], &x[..n], &mut x_next[..n], &mut codes[..n]);
    let zpf = zp as f32;
    let mut finite = true;
    for i in 0..n {
        let v = x0[i].mul_add(u[i], x[i]);
        x_next[i] = v;
        finite &= v.is_finite();
        // `quantize_u8`, written so it vectorizes: `max` returns 0 for a NaN (which only arises
        // from a non-finite value, an error), so `c` is an integer in [0, 255] and the
        // conversion without saturation checks is exact; for every finite `v` this is
        // `quantize_u8(v)` (±inf after the multiply clamps to 0 or 255 either way).
        // Not `clamp`: it keeps a NaN, which the unchecked conversion below must never see.
        #[allow(clippy::manual_clamp)]
        let c = ((v * inv).round_ties_even() + zpf).max(0.0).min(255.0);
        // SAFETY: `c` is finite and in [0, 255] (above), so it is representable as an i32.
        codes[i] = unsafe { c.to_int_unchecked::<i32>() } as u8;
    }
    debug_assert!(
        !finite
            || x_next
                .iter()
                .zip(codes.iter())
                .all(|(&v, &c)| c == quantize_u8(v, inv, zp))
    );
    finite
}

/// A `target_feature` instantiation of [`body`].
macro_rules! level {
    ($name:ident, $features:literal, $doc:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        #[doc = "# Safety"]
        #[doc = $doc]
        unsafe fn $name(
            x0: &[f32],
            u: &[f32],
            x: &[f32],
            inv: f32,
            zp: i32,
            x_next: &mut [f32],
            codes: &mut [u8],
        ) -> bool {
            body(x0, u, x, inv, zp, x_next, codes)
        }
    };
}

level!(
    body_avx512,
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma",
    "The CPU must have AVX-512 F/BW/VL/DQ and FMA."
);
level!(body_avx2, "avx2,fma", "The CPU must have AVX2 and FMA.");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Every level this CPU has against the oracle (`interaction::scalar::cross_combine`, then
    /// `quantize_u8`), bit for bit, at awkward lengths and with values beyond the code range.
    #[test]
    fn every_level_matches_the_oracle_bit_for_bit() {
        let mut rng = Rng::new(3);
        let q = QParams {
            scale: 0.02,
            zero_point: 100,
        };
        for n in [0, 1, 15, 16, 17, 63, 64, 65, 1000] {
            let x0 = rng.normal_vec(n, 2.0);
            let u = rng.normal_vec(n, 2.0);
            let x = rng.normal_vec(n, 1.0);
            let mut want = vec![0.0; n];
            crate::interaction::scalar::cross_combine(&x0, &u, &x, &mut want);
            let want_codes: Vec<u8> = want
                .iter()
                .map(|&v| quantize_u8(v, 1.0 / q.scale, q.zero_point))
                .collect();
            for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
                if isa > Isa::detected() {
                    continue;
                }
                let (mut xn, mut c) = (vec![0.0; n], vec![0u8; n]);
                let finite = run(
                    isa,
                    &x0,
                    &u,
                    &x,
                    1.0 / q.scale,
                    q.zero_point,
                    &mut xn,
                    &mut c,
                );
                assert!(finite, "{isa:?} n={n}");
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&xn), bits(&want), "{isa:?} n={n}: x_next");
                assert_eq!(c, want_codes, "{isa:?} n={n}: codes");
            }
        }
    }

    #[test]
    fn non_finite_values_and_bad_shapes_are_typed_errors() {
        let q = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        let (x0, x) = (vec![1.0f32; 6], vec![0.0f32; 6]);
        let mut u = vec![1.0f32; 6];
        u[4] = f32::INFINITY;
        let (mut xn, mut c) = (vec![0.0; 6], vec![0u8; 6]);
        match cross_combine_quantize(&x0, &u, &x, 3, q, &mut xn, &mut c) {
            Err(KernelError::NonFinite { row, col, .. }) => assert_eq!((row, col), (1, 1)),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        u[4] = 1.0;
        assert!(cross_combine_quantize(&x0, &u, &x, 3, q, &mut xn, &mut c).is_ok());
        assert!(matches!(
            cross_combine_quantize(&x0, &u, &x, 4, q, &mut xn, &mut c),
            Err(KernelError::Shape { .. })
        ));
        assert!(matches!(
            cross_combine_quantize(&x0, &u[..5], &x, 3, q, &mut xn, &mut c),
            Err(KernelError::Shape { .. })
        ));
        let bad = QParams {
            scale: 0.0,
            zero_point: 0,
        };
        assert!(matches!(
            cross_combine_quantize(&x0, &u, &x, 3, bad, &mut xn, &mut c),
            Err(KernelError::BadQuantParams { .. })
        ));
    }
}
