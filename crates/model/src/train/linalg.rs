//! The trainer's f32 matrix products, written as register-blocked loops the compiler vectorizes
//! at whatever ISA the crate is built for (no `unsafe`, no intrinsics).
//!
//! Every product has a fixed summation order (over the shared dimension, in index order, one
//! accumulator per output element), so results do not depend on how a batch is split into chunks
//! of rows.

/// Rows per register block.
const MR: usize = 4;
/// Columns per register block: one or two vectors per row at the build's vector width.
const NR: usize = if cfg!(target_feature = "avx512f") {
    32
} else if cfg!(target_feature = "avx") {
    16
} else {
    8
};

/// `c[m×n] = a[m×k] · b[k×n]` (or `+=` when `accumulate`), all row-major.
pub(crate) fn matmul(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    if !accumulate {
        c.fill(0.0);
    }
    if k == 0 || n == 0 {
        return;
    }
    let mut i = 0;
    while i + MR <= m {
        let a4: [&[f32]; MR] = std::array::from_fn(|r| &a[(i + r) * k..(i + r + 1) * k]);
        let mut j = 0;
        while j + NR <= n {
            let mut acc = [[0f32; NR]; MR];
            for (r, accr) in acc.iter_mut().enumerate() {
                accr.copy_from_slice(&c[(i + r) * n + j..(i + r) * n + j + NR]);
            }
            for p in 0..k {
                let bv: &[f32; NR] = b[p * n + j..p * n + j + NR]
                    .try_into()
                    .expect("an NR-wide slice");
                for r in 0..MR {
                    let av = a4[r][p];
                    for q in 0..NR {
                        acc[r][q] += av * bv[q];
                    }
                }
            }
            for (r, accr) in acc.iter().enumerate() {
                c[(i + r) * n + j..(i + r) * n + j + NR].copy_from_slice(accr);
            }
            j += NR;
        }
        if j < n {
            for (r, ar) in a4.iter().enumerate() {
                row_tail(ar, b, &mut c[(i + r) * n..(i + r + 1) * n], n, j);
            }
        }
        i += MR;
    }
    for r in i..m {
        row_tail(&a[r * k..(r + 1) * k], b, &mut c[r * n..(r + 1) * n], n, 0);
    }
}

/// `crow[j0..n] += arow · b[:, j0..n]`, one row at a time (same summation order as the blocks).
fn row_tail(arow: &[f32], b: &[f32], crow: &mut [f32], n: usize, j0: usize) {
    let cr = &mut crow[j0..n];
    for (p, &av) in arow.iter().enumerate() {
        let br = &b[p * n + j0..p * n + n];
        for (x, &y) in cr.iter_mut().zip(br) {
            *x += av * y;
        }
    }
}

/// `c[n×k] += a[m×n]ᵀ · b[m×k]` (a weight gradient `dW += dYᵀ·X`), via a transposed copy of `a` in
/// `scratch`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_tn_acc(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    scratch: &mut Vec<f32>,
) {
    scratch.resize(m * n, 0.0);
    super::params::transpose(&a[..m * n], m, n, scratch);
    matmul(scratch, b, c, n, m, k, true);
}

/// `out[j] += Σ_i a[i×n][j]` (a bias gradient).
pub(crate) fn col_sum_acc(a: &[f32], m: usize, n: usize, out: &mut [f32]) {
    for row in a[..m * n].chunks_exact(n) {
        for (o, &v) in out[..n].iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// Dot product with eight fixed partial sums (vectorizable, order fixed by the code).
#[inline]
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for q in 0..8 {
            acc[q] += a[q] * b[q];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
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
    use quantrec_kernels::rng::Rng;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += f64::from(a[i * k + p]) * f64::from(b[p * n + j]);
                }
            }
        }
        c
    }

    #[test]
    fn matmul_matches_naive_on_awkward_shapes() {
        let mut rng = Rng::new(3);
        for &(m, k, n) in &[
            (0, 3, 4),
            (1, 1, 1),
            (5, 7, 9),
            (4, 13, 64),
            (9, 0, 5),
            (7, 33, 41),
        ] {
            let a = rng.normal_vec(m * k, 1.0);
            let b = rng.normal_vec(k * n, 1.0);
            let mut c = rng.normal_vec(m * n, 1.0);
            let c0 = c.clone();
            matmul(&a, &b, &mut c, m, k, n, true);
            let r = naive(&a, &b, m, k, n);
            for i in 0..m * n {
                let want = r[i] + f64::from(c0[i]);
                assert!(
                    (f64::from(c[i]) - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{m}x{k}x{n} at {i}"
                );
            }
            let mut s = Vec::new();
            let mut g = vec![0f32; k * n];
            // gᵀ: treat a as [m×k] = dY, b' = [m×n] = X.
            let x = rng.normal_vec(m * n, 1.0);
            matmul_tn_acc(&a, &x, &mut g, m, k, n, &mut s);
            for p in 0..k {
                for j in 0..n {
                    let want: f64 = (0..m)
                        .map(|i| f64::from(a[i * k + p]) * f64::from(x[i * n + j]))
                        .sum();
                    assert!((f64::from(g[p * n + j]) - want).abs() < 1e-4 * (1.0 + want.abs()));
                }
            }
        }
    }

    #[test]
    fn dot_matches_naive() {
        let mut rng = Rng::new(5);
        for n in [0, 1, 7, 8, 16, 19] {
            let x = rng.normal_vec(n, 1.0);
            let y = rng.normal_vec(n, 1.0);
            let want: f64 = x
                .iter()
                .zip(&y)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            assert!((f64::from(dot(&x, &y)) - want).abs() < 1e-5 * (1.0 + want.abs()));
        }
    }
}
