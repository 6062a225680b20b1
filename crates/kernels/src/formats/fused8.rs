//! 8-bit rows with an f32 scale and bias: FBGEMM's `FloatOrHalfToFused8BitRowwiseQuantizedSBFloat`
//! (what `torch.ops.quantized.embedding_bag_byte_prepack` returns).
//!
//! `scale = range / 255`, `bias = min`, `code = lrintf((x - min) · 255 / (range + 1e-8))`. The codes
//! cannot leave `0..=255` for finite rows (the reciprocal is taken of `range + 1e-8 ≥ range`), and a
//! NaN product (infinite range) gives code 0 exactly like FBGEMM's vector path.

use super::codes::CodeOps;

/// FBGEMM's `kEpsilon` added to the range before taking the reciprocal.
const EPSILON: f32 = 1e-8;

/// Quantizes one row; `out` holds `x.len() + 8` bytes. FBGEMM stores the low byte of each code
/// unclamped; the codes are in `0..=255` for every finite range, so the clamp of the code kernels
/// never changes them.
pub(crate) fn quantize_row(ops: &CodeOps, x: &[f32], out: &mut [u8]) {
    let d = x.len();
    let (mn, mx) = ops.min_max(x);
    let range = mx - mn;
    let scale = range / 255.0;
    let inverse = 255.0 / (range + EPSILON);
    ops.codes_into(x, mn, inverse, 255, &mut out[..d]);
    out[d..d + 4].copy_from_slice(&scale.to_le_bytes());
    out[d + 4..d + 8].copy_from_slice(&mn.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    #[test]
    fn matches_pytorchs_documented_example() {
        // From the comment on `qembeddingbag_byte_prepack_out`: [10, 20] packs to codes [0, 255],
        // scale bytes [161, 160, 32, 61] (10/255) and bias bytes [0, 0, 32, 65] (10.0).
        for isa in Isa::available() {
            let mut out = [0u8; 10];
            quantize_row(&CodeOps::for_isa(isa).unwrap(), &[10.0, 20.0], &mut out);
            assert_eq!(out, [0, 255, 161, 160, 32, 61, 0, 0, 32, 65], "{isa}");
        }
    }

    #[test]
    fn constant_rows_get_zero_codes_and_zero_scale() {
        for isa in Isa::available() {
            let mut out = [0u8; 11];
            quantize_row(&CodeOps::for_isa(isa).unwrap(), &[-2.5; 3], &mut out);
            assert_eq!(out[..3], [0, 0, 0]);
            assert_eq!(f32::from_le_bytes(out[3..7].try_into().unwrap()), 0.0);
            assert_eq!(f32::from_le_bytes(out[7..11].try_into().unwrap()), -2.5);
        }
    }
}
