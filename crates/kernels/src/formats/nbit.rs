//! Rows of `N`-bit codes with an f16 scale and bias (`N` = 8, 4 or 2): FBGEMM's
//! `FloatOrHalfToFusedNBitRowwiseQuantizedSBHalf` and the reference path PyTorch's
//! `embedding_bag_{4,2}bit_prepack` takes with `optimized_qparams=True`.
//!
//! Given a clipping range `[lo, hi]` (the row's min and max, or the greedy search's choice):
//! `bias = f16(lo)`; `scale = f16((hi - bias) / (2^N - 1))`, or 1 when the range is 0, when the f16
//! scale underflows to 0 or when its reciprocal overflows; `code = clamp(lrintf((x - bias) / scale),
//! 0, 2^N - 1)` computed as `(x - bias) · (1 / scale)`. Codes are packed with element 0 in the lowest
//! bits of byte 0.

use half::f16;

use super::codes::CodeOps;
use super::round::round_f16;

/// Quantizes one row with its own min and max as the range; `out` holds `ceil(d·bits/8) + 4` bytes;
/// `scratch` is reused between rows.
pub(crate) fn quantize_row(
    ops: &CodeOps,
    x: &[f32],
    bits: u32,
    scratch: &mut Vec<u8>,
    out: &mut [u8],
) {
    let (mn, mx) = ops.min_max(x);
    quantize_row_with_range(ops, x, bits, mn, mx, scratch, out);
}

/// Quantizes one row clipped to `[lo, hi]`.
pub(crate) fn quantize_row_with_range(
    ops: &CodeOps,
    x: &[f32],
    bits: u32,
    lo: f32,
    hi: f32,
    scratch: &mut Vec<u8>,
    out: &mut [u8],
) {
    let qmax = (1i32 << bits) - 1;
    let bias = round_f16(lo);
    let range = hi - bias;
    let mut scale = if range == 0.0 {
        1.0
    } else {
        round_f16(range / qmax as f32)
    };
    if scale == 0.0 {
        scale = 1.0;
    }
    let mut inverse = 1.0 / scale;
    if inverse.is_infinite() {
        scale = 1.0;
        inverse = 1.0;
    }
    let per_byte = (8 / bits) as usize;
    let code_bytes = x.len().div_ceil(per_byte);
    if per_byte == 1 {
        ops.codes_into(x, bias, inverse, qmax, &mut out[..code_bytes]);
    } else {
        ops.packed_codes_into(x, bias, inverse, bits, scratch, &mut out[..code_bytes]);
    }
    out[code_bytes..code_bytes + 2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
    out[code_bytes + 2..code_bytes + 4].copy_from_slice(&f16::from_f32(bias).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    /// Runs `f` with the code kernels of every level this CPU has.
    fn each_level(f: impl Fn(&CodeOps, &mut Vec<u8>)) {
        for isa in Isa::available() {
            f(&CodeOps::for_isa(isa).unwrap(), &mut Vec::new());
        }
    }

    fn scale_bias(out: &[u8]) -> (f32, f32) {
        let n = out.len();
        (
            f16::from_le_bytes([out[n - 4], out[n - 3]]).to_f32(),
            f16::from_le_bytes([out[n - 2], out[n - 1]]).to_f32(),
        )
    }

    #[test]
    fn codes_pack_element_zero_in_the_low_bits() {
        // min 0, max 15: scale 1, codes equal the values.
        each_level(|ops, scratch| {
            let x = [0.0, 15.0, 3.0, 12.0];
            let mut out = [0u8; 6];
            quantize_row(ops, &x, 4, scratch, &mut out);
            assert_eq!(out[..2], [0xf0, 0xc3]);
            assert_eq!(scale_bias(&out), (1.0, 0.0));
            // 2 bits: min 0, max 3.
            let mut out = [0u8; 5];
            quantize_row(ops, &[1.0, 0.0, 3.0, 2.0], 2, scratch, &mut out);
            assert_eq!(out[0], 0b10_11_00_01);
        });
    }

    #[test]
    fn zero_range_and_underflowing_scale_use_scale_one() {
        each_level(|ops, scratch| {
            let mut out = [0u8; 6];
            quantize_row(ops, &[0.0; 4], 4, scratch, &mut out);
            assert_eq!(out, [0, 0, 0x00, 0x3c, 0, 0]);
            // A range whose f16 scale underflows to zero: scale 1, every code 0.
            let x = [1e-9, 0.0, 5e-10, 2e-10];
            quantize_row(ops, &x, 4, scratch, &mut out);
            assert_eq!(scale_bias(&out), (1.0, 0.0));
            assert_eq!(out[..2], [0, 0]);
        });
    }

    #[test]
    fn clipped_values_saturate_at_the_code_range() {
        each_level(|ops, scratch| {
            let mut out = [0u8; 6];
            let x = [-5.0, 0.0, 15.0, 40.0];
            quantize_row_with_range(ops, &x, 4, 0.0, 15.0, scratch, &mut out);
            assert_eq!(out[..2], [0x00, 0xff]);
        });
    }
}
