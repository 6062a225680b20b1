//! Bit-exact emulations of the C/C++ float helpers FBGEMM and PyTorch use while quantizing rows.

/// `lrintf` as x86-64 glibc computes it: round half to even; NaN and values outside the `i64` range
/// give `i64::MIN` (what `cvtss2si` returns).
#[inline]
pub(crate) fn lrintf(v: f32) -> i64 {
    const LIMIT: f32 = 9_223_372_036_854_775_808.0; // 2^63
    if v.is_nan() || !(-LIMIT..LIMIT).contains(&v) {
        i64::MIN
    } else {
        round_even(v) as i64
    }
}

/// `nearbyint`: round half to even, exactly `f32::round_ties_even`, without the libm call that
/// baseline x86-64 (no SSE4.1) makes for it. For `|v| < 2^23`, `|v| + 2^23` lies in `[2^23, 2^24)`
/// where floats are the integers, so the addition itself rounds to nearest even and the subtraction
/// is exact; larger values (and infinities, NaN) are already integral.
#[inline]
pub(crate) fn round_even(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let a = v.abs();
    if a < TWO_23 {
        ((a + TWO_23) - TWO_23).copysign(v)
    } else {
        v
    }
}

/// `std::min(a, b)`: `b < a ? b : a` (keeps `a` on ties and when either is NaN).
#[inline]
pub(crate) fn cpp_min(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// `std::max(a, b)`: `a < b ? b : a`.
#[inline]
pub(crate) fn cpp_max(a: f32, b: f32) -> f32 {
    if a < b { b } else { a }
}

/// `float → f16 → float` with round to nearest even (`at::Half(x)`, `cpu_float2half_rn`).
#[inline]
pub(crate) fn round_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// Row minimum and maximum in the order of FBGEMM's AVX2 row quantizers: eight running lanes
/// (`vminps`/`vmaxps`, started at `±FLT_MAX`) over the first `len / 8 · 8` values, folded with
/// `std::min`/`std::max`, then the tail. Only the sign of a zero result can depend on this order.
pub(crate) fn min_max_fbgemm(x: &[f32]) -> (f32, f32) {
    let mut lo = [f32::MAX; 8];
    let mut hi = [-f32::MAX; 8];
    let body = x.len() / 8 * 8;
    for chunk in x[..body].chunks_exact(8) {
        for l in 0..8 {
            // vminps dst, a, b = a < b ? a : b; vmaxps = a > b ? a : b.
            lo[l] = if lo[l] < chunk[l] { lo[l] } else { chunk[l] };
            hi[l] = if hi[l] > chunk[l] { hi[l] } else { chunk[l] };
        }
    }
    let (mut mn, mut mx) = (f32::MAX, -f32::MAX);
    for l in 0..8 {
        mn = cpp_min(mn, lo[l]);
        mx = cpp_max(mx, hi[l]);
    }
    for &v in &x[body..] {
        mn = cpp_min(mn, v);
        mx = cpp_max(mx, v);
    }
    (mn, mx)
}

/// `*std::min_element`, `*std::max_element` (first extreme wins). Empty rows give `(0, 0)`.
pub(crate) fn min_max_first(x: &[f32]) -> (f32, f32) {
    let Some(&first) = x.first() else {
        return (0.0, 0.0);
    };
    let (mut mn, mut mx) = (first, first);
    for &v in &x[1..] {
        if v < mn {
            mn = v;
        }
        if mx < v {
            mx = v;
        }
    }
    (mn, mx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrintf_rounds_half_to_even_and_saturates_like_cvtss2si() {
        assert_eq!(lrintf(0.5), 0);
        assert_eq!(lrintf(1.5), 2);
        assert_eq!(lrintf(2.5), 2);
        assert_eq!(lrintf(-0.5), 0);
        assert_eq!(lrintf(-1.5), -2);
        assert_eq!(lrintf(f32::NAN), i64::MIN);
        assert_eq!(lrintf(f32::INFINITY), i64::MIN);
        assert_eq!(lrintf(1e19), i64::MIN);
        assert_eq!(lrintf(-1e19), i64::MIN);
    }

    #[test]
    fn round_even_equals_round_ties_even() {
        let specials = [
            0.0f32,
            -0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            0.49999997,
            8_388_607.5,
            -8_388_607.5,
            8_388_608.0,
            16_777_217.0,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut rng = crate::rng::Rng::new(5);
        let random = (0..200_000).map(|_| f32::from_bits(rng.next_u64() as u32));
        let scaled = (0..200_000).map(|i| (i as f32 - 100_000.0) * 0.25 + 0.125);
        for v in specials.into_iter().chain(random).chain(scaled) {
            let (a, b) = (round_even(v), v.round_ties_even());
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{v}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn min_max_orders_signed_zeros_like_fbgemm() {
        // Lane 0 sees -0.0 then +0.0: vminps keeps the second operand on equal zeros.
        let mut x = vec![1.0f32; 16];
        x[0] = -0.0;
        x[8] = 0.0;
        let (mn, _) = min_max_fbgemm(&x);
        assert_eq!(mn.to_bits(), 0.0f32.to_bits());
        let (mn, _) = min_max_first(&x);
        assert_eq!(mn.to_bits(), (-0.0f32).to_bits());
        assert_eq!(min_max_fbgemm(&[3.0, -2.0, 7.0]), (-2.0, 7.0));
        assert_eq!(min_max_first(&[]), (0.0, 0.0));
    }
}
