//! The trainer's element-wise helpers. Matrix products do not live here: they run on the kernels
//! crate's SIMD GEMM, dispatched at run time (see `packs`). These loops have no ISA-specific code
//! and one fixed summation order (rows in index order), whatever the build or CPU.

/// `out[j] += Σ_i a[i×n][j]` (a bias gradient), rows in index order.
pub(crate) fn col_sum_acc(a: &[f32], m: usize, n: usize, out: &mut [f32]) {
    for row in a[..m * n].chunks_exact(n) {
        for (o, &v) in out[..n].iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// `y += alpha · x`.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn col_sum_and_axpy() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [10.0, 20.0, 30.0];
        col_sum_acc(&a, 2, 3, &mut out);
        assert_eq!(out, [15.0, 27.0, 39.0]);
        let mut y = [1.0, 1.0];
        axpy(2.0, &[3.0, -1.0], &mut y);
        assert_eq!(y, [7.0, -1.0]);
        col_sum_acc(&a, 0, 3, &mut out);
        assert_eq!(out, [15.0, 27.0, 39.0]);
    }
}
