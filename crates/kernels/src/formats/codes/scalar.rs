//! Scalar oracle of the row-code kernels.

use crate::formats::round::{lrintf, min_max_fbgemm};

/// FBGEMM-order min and max.
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    min_max_fbgemm(x)
}

/// `clamp(static_cast<int>(lrintf((x - bias) · inverse)), 0, qmax)` per value.
pub(crate) fn codes(x: &[f32], bias: f32, inverse: f32, qmax: i32, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (lrintf((v - bias) * inverse) as i32).clamp(0, qmax) as u8;
    }
}

/// Packs one code per byte into `bits`-bit fields, element 0 in the lowest bits (a short last byte
/// when the count is not a multiple of `8 / bits`).
pub(crate) fn pack(codes: &[u8], bits: u32, out: &mut [u8]) {
    let per_byte = (8 / bits) as usize;
    let whole = codes.len() / per_byte;
    // Fixed shifts for the common widths, so the loops vectorize.
    match bits {
        4 => {
            for (o, c) in out.iter_mut().zip(codes.chunks_exact(2)) {
                *o = c[0] | (c[1] << 4);
            }
        }
        2 => {
            for (o, c) in out.iter_mut().zip(codes.chunks_exact(4)) {
                *o = c[0] | (c[1] << 2) | (c[2] << 4) | (c[3] << 6);
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(codes.chunks_exact(per_byte)) {
                *o = c
                    .iter()
                    .enumerate()
                    .fold(0u8, |b, (k, &q)| b | (q << (k as u32 * bits)));
            }
        }
    }
    if let Some(o) = out.get_mut(whole) {
        *o = codes[whole * per_byte..]
            .iter()
            .enumerate()
            .fold(0u8, |b, (k, &q)| b | (q << (k as u32 * bits)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_handles_every_width_and_a_short_last_byte() {
        let codes = [1u8, 2, 3, 0, 1, 2, 3];
        let mut out = [0u8; 2];
        pack(&codes, 2, &mut out);
        assert_eq!(out, [0b00_11_10_01, 0b11_10_01]);
        let mut out = [0u8; 4];
        pack(&codes, 4, &mut out);
        assert_eq!(out, [0x21, 0x03, 0x21, 0x03]);
        let mut out = [0u8; 7];
        pack(&codes, 8, &mut out);
        assert_eq!(out, codes);
        let mut out = [0u8; 3];
        pack(&[1, 0, 1, 1, 0, 0, 0, 0, 1], 1, &mut out[..2]);
        assert_eq!(out[..2], [0b1101, 1]);
    }
}
