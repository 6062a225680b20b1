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
//! level gives the same bits); the per-row combine and range scan runs the explicit vector scan
//! of `simd::combine_min_max` at each level instead (its portable body, a reduction, does not
//! vectorize). Non-finite values of `x_next` are reported as the next layer would report them.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m256, __m512};

use super::Int8Weights;
use super::scalar::quantize_u8;
#[cfg(target_arch = "x86_64")]
use super::simd::combine_min_max;
use crate::gemm::{QParams, check_len, check_qparams};
use crate::{Isa, KernelError, Result};

/// A `target_feature` instantiation of a portable body (`$name` runs `$body` at `$features`), or
/// (`unsafe $body::<$v>`) of a width-generic `unsafe` body at the level's vector type `$v`.
macro_rules! level {
    ($name:ident = $body:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $features:literal, $doc:literal) => {
        level!(@fn $name($($arg: $ty),*) $(-> $ret)?, $features, $doc, { $body($($arg),*) });
    };
    ($name:ident = unsafe $body:ident::<$v:ty>($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $features:literal, $doc:literal) => {
        level!(@fn $name($($arg: $ty),*) $(-> $ret)?, $features, $doc, {
            // SAFETY: compiled for the level whose vector type `$v` is (the caller has it).
            unsafe { $body::<$v>($($arg),*) }
        });
    };
    (@fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $features:literal, $doc:literal, $call:block) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        #[doc = "# Safety"]
        #[doc = $doc]
        unsafe fn $name($($arg: $ty),*) $(-> $ret)? $call
    };
}

/// Runs `$portable(args)` at `isa`: its AVX-512 instantiation, its AVX2 one, or itself.
macro_rules! at_level {
    ($isa:expr, $avx512:ident, $avx2:ident, $portable:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $isa >= Isa::Avx512 {
                // SAFETY: `isa` is at most the detected level, which includes AVX-512 F/BW/VL/DQ
                // here (and FMA, which every AVX-512 CPU has and `Isa::Avx2` already requires).
                return unsafe { $avx512($($arg),*) };
            }
            if $isa >= Isa::Avx2 {
                // SAFETY: level Avx2 is only detected with AVX2 and FMA.
                return unsafe { $avx2($($arg),*) };
            }
        }
        let _ = $isa;
        $portable($($arg),*)
    }};
}

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
    check_rows(x0, u, x, Some(x_next.len()), codes.len(), cols)?;
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
    at_level!(
        isa,
        body_avx512,
        body_avx2,
        body(x0, u, x, inv, zp, x_next, codes)
    )
}

/// Checks the lengths of a cross step over rows of `cols` (`x_next` when kept, and the codes);
/// returns the row count.
fn check_rows(
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    x_next: Option<usize>,
    codes: usize,
    cols: usize,
) -> Result<usize> {
    let len = x0.len();
    check_len("cross u", len, u.len())?;
    check_len("cross x", len, x.len())?;
    if let Some(n) = x_next {
        check_len("cross output", len, n)?;
    }
    check_len("cross output codes", len, codes)?;
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(KernelError::Shape {
            what: "cross values (a whole number of rows)",
            index: None,
            expected: len.next_multiple_of(cols.max(1)),
            found: len,
        });
    }
    Ok(len / cols)
}

/// `quantize_u8(v, inv, zp)` written so it vectorizes: `max` returns 0 for a NaN (which only
/// arises from a non-finite value, an error), so `c` is an integer in [0, 255] and the conversion
/// without saturation checks is exact; for every finite `v` this is `quantize_u8(v)` (±inf after
/// the multiply clamps to 0 or 255 either way).
#[inline(always)]
fn code_of(v: f32, inv: f32, zpf: f32) -> u8 {
    // Not `clamp`: it keeps a NaN, which the unchecked conversion below must never see.
    #[allow(clippy::manual_clamp)]
    let c = ((v * inv).round_ties_even() + zpf).max(0.0).min(255.0);
    // SAFETY: `c` is finite and in [0, 255] (above), so it is representable as an i32.
    unsafe { c.to_int_unchecked::<i32>() as u8 }
}

/// The codes of one row in its own parameters (the row was checked finite).
#[inline(always)]
fn quantize_body(row: &[f32], inv: f32, zp: i32, codes: &mut [u8]) {
    let codes = &mut codes[..row.len()];
    let zpf = zp as f32;
    for (c, &v) in codes.iter_mut().zip(row) {
        *c = code_of(v, inv, zpf);
    }
}

/// `dst = x0 ⊙ u + x` (one fused multiply-add per element, as `interaction::cross_combine`) and
/// the range of `dst`: `(min, max, every value finite)` (exact, so the same as any `min_max`). The
/// oracle and the portable level; the vector levels run `simd::combine_min_max`.
#[inline(always)]
fn combine_row_body(x0: &[f32], u: &[f32], x: &[f32], dst: &mut [f32]) -> (f32, f32, bool) {
    let n = x0.len();
    let (u, x, dst) = (&u[..n], &x[..n], &mut dst[..n]);
    let (mut lo, mut hi, mut finite) = (f32::INFINITY, f32::NEG_INFINITY, true);
    for i in 0..n {
        let v = x0[i].mul_add(u[i], x[i]);
        dst[i] = v;
        finite &= v.is_finite();
        // The same result as `f32::min`/`max` for every finite value; a NaN fails `finite`.
        lo = if v < lo { v } else { lo };
        hi = if v > hi { v } else { hi };
    }
    (lo, hi, finite)
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
        codes[i] = code_of(v, inv, zpf);
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

level!(
    body_avx512 = body(x0: &[f32], u: &[f32], x: &[f32], inv: f32, zp: i32, x_next: &mut [f32], codes: &mut [u8]) -> bool,
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma",
    "The CPU must have AVX-512 F/BW/VL/DQ and FMA."
);
level!(
    body_avx2 = body(x0: &[f32], u: &[f32], x: &[f32], inv: f32, zp: i32, x_next: &mut [f32], codes: &mut [u8]) -> bool,
    "avx2,fma",
    "The CPU must have AVX2 and FMA."
);
level!(
    quantize_avx512 = quantize_body(row: &[f32], inv: f32, zp: i32, codes: &mut [u8]),
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma",
    "The CPU must have AVX-512 F/BW/VL/DQ and FMA."
);
level!(
    quantize_avx2 = quantize_body(row: &[f32], inv: f32, zp: i32, codes: &mut [u8]),
    "avx2,fma",
    "The CPU must have AVX2 and FMA."
);

// Not the portable body: its comparison chains do not vectorize (a reduction's order decides which
// of two equal-comparing zeros it returns), so each level runs the explicit vector scan.
level!(
    combine_row_avx512 = unsafe combine_min_max::<__m512>(x0: &[f32], u: &[f32], x: &[f32], dst: &mut [f32]) -> (f32, f32, bool),
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma",
    "The CPU must have AVX-512 F/BW/VL/DQ and FMA."
);
level!(
    combine_row_avx2 = unsafe combine_min_max::<__m256>(x0: &[f32], u: &[f32], x: &[f32], dst: &mut [f32]) -> (f32, f32, bool),
    "avx2,fma",
    "The CPU must have AVX2 and FMA."
);

/// [`quantize_body`] at `isa`.
fn quantize_row(isa: Isa, row: &[f32], inv: f32, zp: i32, codes: &mut [u8]) {
    at_level!(
        isa,
        quantize_avx512,
        quantize_avx2,
        quantize_body(row, inv, zp, codes)
    )
}

/// [`combine_row_body`] at `isa`.
fn combine_row(isa: Isa, x0: &[f32], u: &[f32], x: &[f32], dst: &mut [f32]) -> (f32, f32, bool) {
    at_level!(
        isa,
        combine_row_avx512,
        combine_row_avx2,
        combine_row_body(x0, u, x, dst)
    )
}

/// Per-row parameters of codes written by [`cross_combine_quantize_rows`]: `zp[i]`, `scale[i]`.
pub struct RowParams<'a> {
    /// Zero point of each row.
    pub zp: &'a mut [i32],
    /// Scale of each row.
    pub scale: &'a mut [f32],
}

/// The per-row dynamic form of [`cross_combine_quantize`], for a next layer with per-row dynamic
/// activations ([`ActivationQuant::DynamicPerRow`](crate::gemm::ActivationQuant)): for each row
/// of `cols` values, `x_next = x0 ⊙ u + x`, then the row's range, its parameters as `consumer`
/// chooses them ([`Int8Weights::row_qparams`]) in `params`, and its codes in `codes` — exactly
/// what `consumer` computes from the f32 row itself, while the row is still in L1.
///
/// `x_next`: `Some` to keep every row (`x0.len()` values), `None` when only the codes are wanted
/// (then `row` is the one-row buffer, grown to `cols`).
///
/// Errors: lengths that disagree or are not a whole number of rows, and a non-finite `x_next`
/// value ([`KernelError::NonFinite`], "int8 linear input", as `consumer` reports it).
#[allow(clippy::too_many_arguments)]
pub fn cross_combine_quantize_rows(
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    cols: usize,
    consumer: &Int8Weights,
    x_next: Option<&mut [f32]>,
    row: &mut Vec<f32>,
    codes: &mut [u8],
    params: RowParams<'_>,
) -> Result<()> {
    let out_len = x_next.as_deref().map(<[f32]>::len);
    let rows = check_rows(x0, u, x, out_len, codes.len(), cols)?;
    check_len("cross row zero points", rows, params.zp.len())?;
    check_len("cross row scales", rows, params.scale.len())?;
    rows_at(
        Isa::active(),
        x0,
        u,
        x,
        cols,
        consumer,
        x_next,
        row,
        codes,
        params,
    )
}

/// The body of [`cross_combine_quantize_rows`] at `isa` (lengths checked by the caller).
#[allow(clippy::too_many_arguments)]
fn rows_at(
    isa: Isa,
    x0: &[f32],
    u: &[f32],
    x: &[f32],
    cols: usize,
    consumer: &Int8Weights,
    mut x_next: Option<&mut [f32]>,
    row: &mut Vec<f32>,
    codes: &mut [u8],
    params: RowParams<'_>,
) -> Result<()> {
    if x_next.is_none() {
        row.resize(cols, 0.0);
    }
    for i in 0..x0.len() / cols {
        let span = i * cols..(i + 1) * cols;
        let dst: &mut [f32] = match x_next.as_deref_mut() {
            Some(xn) => &mut xn[span.clone()],
            None => &mut row[..cols],
        };
        let (x0r, ur, xr) = (&x0[span.clone()], &u[span.clone()], &x[span.clone()]);
        let (lo, hi, finite) = combine_row(isa, x0r, ur, xr, dst);
        if !finite {
            let col = dst.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(KernelError::NonFinite {
                what: "int8 linear input",
                table: None,
                row: i,
                col,
                value: dst[col],
            });
        }
        let q = consumer.row_qparams(lo, hi);
        params.zp[i] = q.zero_point;
        params.scale[i] = q.scale;
        quantize_row(isa, dst, 1.0 / q.scale, q.zero_point, &mut codes[span]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Int8Input, Int8Kernel, Int8Output};
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

    /// A per-row dynamic int8 layer of width `k` (its weights are what the rows' parameters are
    /// chosen for).
    fn per_row_layer(k: usize, n: usize, reduce_range: bool) -> crate::gemm::PackedLinear {
        use crate::gemm::{ActivationQuant, Int8Spec, PackedLinear, Precision};
        let mut rng = Rng::new(k as u64 + 11);
        let w = rng.normal_vec(n * k, 0.3);
        let spec = Int8Spec {
            per_channel: true,
            activations: ActivationQuant::DynamicPerRow,
        };
        PackedLinear::new(&w, None, n, k, Precision::Int8(spec))
            .unwrap()
            .int8_reduce_range(reduce_range)
            .unwrap()
    }

    /// Per-row codes at every level against the oracle (the scalar combine, the row's min and max,
    /// `choose_qparams`, `quantize_u8`), with and without keeping `x_next`; then a per-row layer fed
    /// those codes gives the bits it gives from the f32 rows itself.
    #[test]
    fn per_row_codes_match_the_oracle_and_the_layer_s_own_quantization() {
        let mut rng = Rng::new(5);
        for (rows, cols) in [
            (1, 1),
            (3, 7),
            (5, 16),
            (2, 17),
            (4, 65),
            (33, 40),
            (48, 128),
            (3, 100),
            (2, 90),
        ] {
            for reduce_range in [false, true] {
                let n = rows * cols;
                let x0 = rng.normal_vec(n, 2.0);
                let mut u = rng.normal_vec(n, 2.0);
                if n > 3 {
                    u[n / 2] = 1e30; // a value far beyond any row's code range
                }
                let x = rng.normal_vec(n, 1.0);
                let mut want = vec![0.0; n];
                crate::interaction::scalar::cross_combine(&x0, &u, &x, &mut want);
                let layer = per_row_layer(cols, 5, reduce_range);
                let w = layer.int8_weights().unwrap();
                let mut want_codes = vec![0u8; n];
                let mut want_q = Vec::new();
                for (r, vals) in want.chunks(cols).enumerate() {
                    let (lo, hi, _) = super::super::scalar::min_max(vals);
                    let q = super::super::choose_qparams(lo, hi, reduce_range);
                    for (c, &v) in want_codes[r * cols..(r + 1) * cols].iter_mut().zip(vals) {
                        *c = quantize_u8(v, 1.0 / q.scale, q.zero_point);
                    }
                    want_q.push(q);
                }
                for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
                    if isa > Isa::detected() {
                        continue;
                    }
                    for keep in [true, false] {
                        let (mut xn, mut row, mut c) = (vec![0.0; n], Vec::new(), vec![0u8; n]);
                        let (mut zp, mut scale) = (vec![0; rows], vec![0.0; rows]);
                        let params = RowParams {
                            zp: &mut zp,
                            scale: &mut scale,
                        };
                        let out = keep.then_some(&mut xn[..]);
                        rows_at(isa, &x0, &u, &x, cols, w, out, &mut row, &mut c, params).unwrap();
                        let at = format!("{isa:?} {rows}x{cols} keep={keep} rr={reduce_range}");
                        if keep {
                            let bits =
                                |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(&xn), bits(&want), "{at}: x_next");
                        }
                        assert_eq!(c, want_codes, "{at}: codes");
                        let got_q: Vec<_> = zp.iter().zip(&scale).map(|(&z, &s)| (z, s)).collect();
                        let want_q: Vec<_> =
                            want_q.iter().map(|q| (q.zero_point, q.scale)).collect();
                        assert_eq!(got_q, want_q, "{at}: parameters");
                    }
                }
                // The layer from its own f32 rows and from the codes, at every int8 kernel this
                // CPU runs (row-major, blocked and tile layouts), to f32 and to u8: the same bits.
                let (zp, scale): (Vec<i32>, Vec<f32>) =
                    want_q.iter().map(|q| (q.zero_point, q.scale)).unzip();
                let out_q = QParams {
                    scale: 0.05,
                    zero_point: 7,
                };
                for kernel in Int8Kernel::available() {
                    let at = format!("{kernel:?} {rows}x{cols} rr={reduce_range}");
                    let codes_in = || Int8Input::U8PerRow {
                        codes: &want_codes,
                        zp: &zp,
                        scale: &scale,
                    };
                    let mut from_f32 = vec![0.0; rows * 5];
                    let mut from_codes = from_f32.clone();
                    call(
                        &layer,
                        kernel,
                        Int8Input::F32(&want),
                        rows,
                        Int8Output::F32(&mut from_f32),
                    );
                    call(
                        &layer,
                        kernel,
                        codes_in(),
                        rows,
                        Int8Output::F32(&mut from_codes),
                    );
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&from_codes), bits(&from_f32), "{at}: f32 output");
                    let mut u_f32 = vec![0u8; rows * 5];
                    let mut u_codes = u_f32.clone();
                    let out = Int8Output::U8(&mut u_f32, out_q);
                    call(&layer, kernel, Int8Input::F32(&want), rows, out);
                    call(
                        &layer,
                        kernel,
                        codes_in(),
                        rows,
                        Int8Output::U8(&mut u_codes, out_q),
                    );
                    assert_eq!(u_codes, u_f32, "{at}: u8 output");
                }
            }
        }
    }

    /// `layer` at `kernel` on `rows` rows, with ReLU.
    fn call(
        layer: &crate::gemm::PackedLinear,
        kernel: Int8Kernel,
        input: Int8Input<'_>,
        rows: usize,
        out: Int8Output<'_>,
    ) {
        let mut scratch = crate::gemm::LinearScratch::default();
        layer
            .forward_int8(kernel, input, rows, out, true, &mut scratch)
            .unwrap();
    }

    #[test]
    fn per_row_errors_are_typed() {
        let layer = per_row_layer(3, 2, false);
        let w = layer.int8_weights().unwrap();
        let (x0, x) = (vec![1.0f32; 6], vec![0.0f32; 6]);
        let mut u = vec![1.0f32; 6];
        u[5] = f32::NAN;
        let (mut row, mut c) = (Vec::new(), vec![0u8; 6]);
        let (mut zp, mut scale) = (vec![0; 2], vec![0.0; 2]);
        let mut call = |u: &[f32], cols: usize, zp: &mut [i32], scale: &mut [f32]| {
            let params = RowParams { zp, scale };
            cross_combine_quantize_rows(&x0, u, &x, cols, w, None, &mut row, &mut c, params)
        };
        match call(&u, 3, &mut zp, &mut scale) {
            Err(KernelError::NonFinite { row, col, .. }) => assert_eq!((row, col), (1, 2)),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        u[5] = 1.0;
        assert!(call(&u, 3, &mut zp, &mut scale).is_ok());
        assert!(matches!(
            call(&u, 4, &mut zp, &mut scale),
            Err(KernelError::Shape { .. })
        ));
        assert!(matches!(
            call(&u, 3, &mut zp[..1], &mut scale),
            Err(KernelError::Shape { .. })
        ));
        // A layer fed per-row codes checks their parameters.
        let mut out = vec![0.0; 4];
        let bad = Int8Input::U8PerRow {
            codes: &[0; 6],
            zp: &[0, 0],
            scale: &[0.1, 0.0],
        };
        let r = layer.forward_int8(
            Int8Kernel::active(),
            bad,
            2,
            Int8Output::F32(&mut out),
            false,
            &mut crate::gemm::LinearScratch::default(),
        );
        assert!(
            matches!(r, Err(KernelError::BadQuantParams { .. })),
            "{r:?}"
        );
    }
}
