//! The trainer's f32 matrix products, written as register-blocked loops the compiler vectorizes
//! at whatever ISA the crate is built for (no `unsafe`, no intrinsics).
//!
//! Every product has a fixed summation order (over the shared dimension, in index order, one
//! accumulator per output element), so results do not depend on how a batch is split into chunks
//! of rows.

/// Rows per register block.
const MR: usize = if cfg!(target_feature = "avx512f") {
    8
} else {
    6
};
/// Columns per register block: two vectors per row at the build's vector width.
/// (LLVM prefers 256-bit vectors even when AVX-512 is enabled.)
const NR: usize = if cfg!(target_feature = "avx") { 16 } else { 8 };

/// `c[m×n] = a[m×k] · b[k×n]` (or `+=` when `accumulate`), all row-major.
///
/// `MR` rows of `a` are packed into a `k × MR` panel (zero-padded at the bottom edge) and
/// multiplied by `NR`-column slices of `b` (a zero-padded copy at the right edge) in a register
/// block; each output is its starting value plus the products in `p` order.
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
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let mut panel = vec![0f32; k * MR];
    let mut bpad = Vec::new();
    for i0 in (0..m).step_by(MR) {
        let rows = MR.min(m - i0);
        for r in 0..MR {
            if r < rows {
                let ar = &a[(i0 + r) * k..(i0 + r + 1) * k];
                for (p, &v) in ar.iter().enumerate() {
                    panel[p * MR + r] = v;
                }
            } else {
                for p in 0..k {
                    panel[p * MR + r] = 0.0;
                }
            }
        }
        for j0 in (0..n).step_by(NR) {
            let cols = NR.min(n - j0);
            let (bsrc, ldb, off): (&[f32], usize, usize) = if cols == NR {
                (b, n, j0)
            } else {
                bpad.clear();
                bpad.resize(k * NR, 0.0);
                for p in 0..k {
                    bpad[p * NR..p * NR + cols].copy_from_slice(&b[p * n + j0..p * n + n]);
                }
                (&bpad, NR, 0)
            };
            let mut acc = [[0f32; NR]; MR];
            for (r, accr) in acc.iter_mut().enumerate().take(rows) {
                accr[..cols].copy_from_slice(&c[(i0 + r) * n + j0..(i0 + r) * n + j0 + cols]);
            }
            kernel(&panel, &bsrc[off..], ldb, &mut acc);
            for (r, accr) in acc.iter().enumerate().take(rows) {
                c[(i0 + r) * n + j0..(i0 + r) * n + j0 + cols].copy_from_slice(&accr[..cols]);
            }
        }
    }
}

/// `acc[r][q] += Σ_p panel[p][r] · b[p·ldb + q]`, in `p` order. The accumulators are copied into
/// locals of eight-lane arrays so LLVM keeps them in vector registers.
#[inline(always)]
fn kernel(panel: &[f32], b: &[f32], ldb: usize, acc: &mut [[f32; NR]; MR]) {
    const L: usize = 8;
    const V: usize = NR / L;
    let mut t = [[[0f32; L]; V]; MR];
    for (tr, ar) in t.iter_mut().zip(acc.iter()) {
        for (tv, av) in tr.iter_mut().zip(ar.chunks_exact(L)) {
            tv.copy_from_slice(av);
        }
    }
    for (av, brow) in panel.chunks_exact(MR).zip(b.chunks(ldb)) {
        let mut bv = [[0f32; L]; V];
        for (x, y) in bv.iter_mut().zip(brow[..NR].chunks_exact(L)) {
            x.copy_from_slice(y);
        }
        for r in 0..MR {
            let x = av[r];
            for v in 0..V {
                for l in 0..L {
                    t[r][v][l] += x * bv[v][l];
                }
            }
        }
    }
    for (tr, ar) in t.iter().zip(acc.iter_mut()) {
        for (tv, av) in tr.iter().zip(ar.chunks_exact_mut(L)) {
            av.copy_from_slice(tv);
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
}
