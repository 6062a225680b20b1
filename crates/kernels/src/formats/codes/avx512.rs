//! AVX-512 row codes: sixteen per step, the tail under a mask.

use std::arch::x86_64::*;

/// Ops-table entry (installed only for AVX-512 levels, which `CodeOps::for_isa` checks).
pub(crate) fn codes(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    // SAFETY: the table holding this entry was built for a level whose features the CPU has;
    // every caller (`CodeOps::codes`, `CodeOps::codes_into`) checked `out.len() == x.len()`.
    unsafe { codes_avx512(x, bias, inverse, qmax, out) }
}

/// Ops-table entry (installed only for AVX-512 levels, which `CodeOps::for_isa` checks).
pub(crate) fn packed_codes(
    x: &[f32],
    bias: f32,
    inverse: f32,
    bits: u32,
    scratch: &mut Vec<u8>,
    out: &mut [u8],
) {
    if bits != 4 && bits != 2 {
        scratch.resize(x.len(), 0);
        codes(x, bias, inverse, (1 << bits) - 1, scratch);
        super::scalar::pack(scratch, bits, out);
        return;
    }
    let steps = x.len() / 16;
    let step_bytes = 2 * bits as usize;
    // SAFETY: as above; every caller checked `out.len() == ceil(x.len() · bits / 8)`, so the
    // `steps · step_bytes` bytes written are inside `out`.
    unsafe { packed_codes_avx512(&x[..16 * steps], bias, inverse, bits, out) };
    let tail = &x[16 * steps..];
    scratch.resize(tail.len(), 0);
    codes(tail, bias, inverse, (1 << bits) - 1, scratch);
    super::scalar::pack(scratch, bits, &mut out[steps * step_bytes..]);
}

/// Sixteen codes per step packed in registers (`x.len()` a multiple of 16; `bits` 4 or 2).
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/DQ and `out` holds at least `x.len() · bits / 8` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn packed_codes_avx512(x: &[f32], bias: f32, inverse: f32, bits: u32, out: &mut [u8]) {
    let b = _mm512_set1_ps(bias);
    let inv = _mm512_set1_ps(inverse);
    let zero = _mm512_setzero_si512();
    let top = _mm512_set1_epi32((1 << bits) - 1);
    for s in 0..x.len() / 16 {
        // SAFETY: 16 values at `16 s` are inside `x`; the 8 (4-bit) or 4 (2-bit) bytes at
        // `2 · bits · s` are inside `out`.
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr().add(16 * s));
            let c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(v, b), inv));
            let c = _mm512_min_epi32(_mm512_max_epi32(c, zero), top);
            // One code per byte, in order.
            let w = _mm512_cvtepi32_epi8(c);
            if bits == 4 {
                // Per 16-bit lane: low code | high code << 4.
                let p = _mm_or_si128(
                    _mm_and_si128(w, _mm_set1_epi16(0x000f)),
                    _mm_and_si128(_mm_srli_epi16::<4>(w), _mm_set1_epi16(0x00f0)),
                );
                _mm_storel_epi64(out.as_mut_ptr().add(8 * s).cast(), _mm_packus_epi16(p, p));
            } else {
                // Per 32-bit lane: c0 | c1 << 2 | c2 << 4 | c3 << 6.
                let p = _mm_and_si128(
                    _mm_or_si128(
                        _mm_or_si128(w, _mm_srli_epi32::<6>(w)),
                        _mm_or_si128(_mm_srli_epi32::<12>(w), _mm_srli_epi32::<18>(w)),
                    ),
                    _mm_set1_epi32(0xff),
                );
                let p = _mm_packus_epi16(_mm_packus_epi32(p, p), p);
                let four = _mm_cvtsi128_si32(p).to_le_bytes();
                out[4 * s..4 * s + 4].copy_from_slice(&four);
            }
        }
    }
}

/// # Safety
/// The CPU has AVX-512 F/BW/VL/DQ and `out.len() == x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn codes_avx512(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    let b = _mm512_set1_ps(bias);
    let inv = _mm512_set1_ps(inverse);
    let zero = _mm512_setzero_si512();
    let top = _mm512_set1_epi32(qmax);
    let mut i = 0;
    while i < x.len() {
        let n = (x.len() - i).min(16);
        let mask: __mmask16 = if n == 16 { !0 } else { (1u16 << n) - 1 };
        // SAFETY: the mask covers the `n` values left at `i` in both `x` and `out`.
        unsafe {
            let v = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i));
            // vcvtps2dq rounds half to even (MXCSR default) and gives i32::MIN for NaN.
            let c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(v, b), inv));
            let c = _mm512_min_epi32(_mm512_max_epi32(c, zero), top);
            _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(i).cast(), mask, c);
        }
        i += n;
    }
}
