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
