//! AVX-512 micro-kernels: up to 12 rows × 32 columns (24 zmm accumulators), with f32 weights, f16
//! weights widened by `vcvtph2ps`, and bf16 weight pairs widened by shifts (for CPUs without
//! AVX512-BF16). Column tails use masked loads and stores. Tiles of at most 2 rows keep two accumulator
//! sets (even / odd k-steps) to hide FMA latency.

use std::arch::x86_64::*;

use super::act::{self, Bf16Layout};
use super::{ActFeed, DenseOps, Kernel, PackedAct, Tile};

/// Rows per tile.
pub(super) const MR: usize = 12;
/// Columns per tile (two zmm).
pub(super) const NR: usize = 32;
/// k-steps per cache block (see the driver's docs).
const KC: usize = 1024;
/// k-steps per cache block on packed activations: a 256×32 f32 weight slice (32 KiB) stays in L1
/// while every row block of the cache block streams over it.
const PACKED_KC: usize = 256;
/// Weight bytes the GEMV tile prefetches ahead of its loads.
const GEMV_PREFETCH: usize = 4096;

/// Installs the AVX-512 kernels.
pub(super) fn install(ops: &mut DenseOps) {
    let k = |tile, act| Kernel {
        nr: NR,
        mr: MR,
        kc: KC,
        step_multiple: 1,
        small: None,
        widen: None,
        packed: None,
        tile,
        act,
    };
    let packed = Some(PackedAct {
        pack: pack_rows,
        tile: f32p_tile,
        kc: PACKED_KC,
    });
    ops.f32 = Some(Kernel {
        packed,
        ..k(f32_tile, ActFeed::F32)
    });
    ops.f16 = Some(Kernel {
        widen: Some((widen_f16, f32_tile)),
        packed,
        ..k(f16_tile, ActFeed::F32)
    });
    ops.bf16 = Some(k(
        bf16w_tile,
        ActFeed::Bf16(Bf16Layout::Widened, act::widened_avx512),
    ));
}

pub(super) type Acc<const R: usize> = [[__m512; 2]; R];

/// Calls `$f::<mr>` for a runtime `mr` in 1..=12.
macro_rules! by_rows {
    ($f:ident, $t:expr, $mr:expr) => {
        match $mr {
            1 => $f::<1>($t),
            2 => $f::<2>($t),
            3 => $f::<3>($t),
            4 => $f::<4>($t),
            5 => $f::<5>($t),
            6 => $f::<6>($t),
            7 => $f::<7>($t),
            8 => $f::<8>($t),
            9 => $f::<9>($t),
            10 => $f::<10>($t),
            11 => $f::<11>($t),
            12 => $f::<12>($t),
            _ => unreachable!("tile height {} exceeds the AVX-512 kernel", $mr),
        }
    };
}

/// Column masks of the two halves of a tile with `nv` valid columns.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn masks(nv: usize) -> (__mmask16, __mmask16) {
    let lo = if nv >= 16 { 0xFFFF } else { (1u32 << nv) - 1 };
    let hi = if nv >= 32 {
        0xFFFF
    } else if nv > 16 {
        (1u32 << (nv - 16)) - 1
    } else {
        0
    };
    (lo as u16, hi as u16)
}

/// Starting accumulators: the bias broadcast to every row, or the partial sums already in `c`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn init<const R: usize>(t: &Tile, m: (__mmask16, __mmask16)) -> Acc<R> {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    // SAFETY: masked loads touch only the nv valid columns of the bias or of rows 0..R of `c`
    // (caller's contract); wrapping_add keeps the address arithmetic defined for masked-out halves.
    unsafe {
        if !t.bias.is_null() {
            let b0 = _mm512_maskz_loadu_ps(m.0, t.bias);
            let b1 = _mm512_maskz_loadu_ps(m.1, t.bias.wrapping_add(16));
            for r in acc.iter_mut() {
                *r = [b0, b1];
            }
        } else {
            for (i, r) in acc.iter_mut().enumerate() {
                let c = t.c.wrapping_add(i * t.ldc);
                *r = [
                    _mm512_maskz_loadu_ps(m.0, c),
                    _mm512_maskz_loadu_ps(m.1, c.wrapping_add(16)),
                ];
            }
        }
    }
    acc
}

/// Adds the second accumulator set into the first.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn merge<const R: usize>(acc: &mut Acc<R>, other: &Acc<R>) {
    for (a, o) in acc.iter_mut().zip(other) {
        a[0] = _mm512_add_ps(a[0], o[0]);
        a[1] = _mm512_add_ps(a[1], o[1]);
    }
}

/// Stores the tile (ReLU first when asked).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn store<const R: usize>(t: &Tile, acc: &Acc<R>, m: (__mmask16, __mmask16)) {
    let zero = _mm512_setzero_ps();
    for (i, r) in acc.iter().enumerate() {
        let (mut v0, mut v1) = (r[0], r[1]);
        if t.relu {
            v0 = _mm512_max_ps(v0, zero);
            v1 = _mm512_max_ps(v1, zero);
        }
        let c = t.c.wrapping_add(i * t.ldc);
        // SAFETY: masked stores write only the nv valid columns of row i < R of the tile.
        unsafe {
            _mm512_mask_storeu_ps(c, m.0, v0);
            _mm512_mask_storeu_ps(c.wrapping_add(16), m.1, v1);
        }
    }
}

/// Defines a tile routine from a per-step body `$step(acc, a, lda, p, w)` that consumes one k-step
/// of `$wstep` weight elements of type `$wty`.
macro_rules! tile_fn {
    ($name:ident, $inner:ident, $step:ident, $wty:ty, $wstep:expr) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")]
        unsafe fn $inner<const R: usize>(t: &Tile) {
            let m = masks(t.nv);
            // SAFETY: the caller guarantees the tile's pointers cover R rows, kc steps and nv columns.
            unsafe {
                let mut acc = init::<R>(t, m);
                let a = t.a;
                let mut w = t.w.cast::<$wty>();
                let mut p = 0;
                if R <= 2 {
                    let mut acc2 = [[_mm512_setzero_ps(); 2]; R];
                    while p + 2 <= t.kc {
                        $step(&mut acc, a, t.lda, p, w);
                        $step(&mut acc2, a, t.lda, p + 1, w.add($wstep));
                        w = w.add(2 * $wstep);
                        p += 2;
                    }
                    merge(&mut acc, &acc2);
                }
                while p < t.kc {
                    $step(&mut acc, a, t.lda, p, w);
                    w = w.add($wstep);
                    p += 1;
                }
                store(t, &acc, m);
            }
        }

        /// Tile routine (see the module docs).
        ///
        /// # Safety
        /// The [`TileFn`](super::TileFn) contract; the CPU must support AVX-512 F/BW/VL/DQ.
        pub(super) unsafe fn $name(t: &Tile, mr: usize) {
            // SAFETY: forwarded contract; mr is checked against the kernel height.
            unsafe { by_rows!($inner, t, mr) }
        }
    };
}

/// One k-step with f32 weights.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn step_f32<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const f32,
) {
    // SAFETY: w points at an aligned 32-float panel step; row i step p is inside the activations.
    unsafe {
        let w0 = _mm512_load_ps(w);
        let w1 = _mm512_load_ps(w.add(16));
        for (i, r) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(f32::from_bits(*a.add(i * lda + p)));
            r[0] = _mm512_fmadd_ps(x, w0, r[0]);
            r[1] = _mm512_fmadd_ps(x, w1, r[1]);
        }
    }
}

/// One k-step with f16 weights.
#[inline]
#[target_feature(enable = "avx512f,fma,f16c")]
unsafe fn step_f16<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u16,
) {
    // SAFETY: w points at an aligned 32-half panel step; row i step p is inside the activations.
    unsafe {
        let w0 = _mm512_cvtph_ps(_mm256_load_si256(w.cast()));
        let w1 = _mm512_cvtph_ps(_mm256_load_si256(w.add(16).cast()));
        for (i, r) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(f32::from_bits(*a.add(i * lda + p)));
            r[0] = _mm512_fmadd_ps(x, w0, r[0]);
            r[1] = _mm512_fmadd_ps(x, w1, r[1]);
        }
    }
}

/// One pair step with bf16 weight pairs widened to f32 and widened bf16 activations (even index
/// first, like the oracle's k order).
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn step_bf16w<const R: usize>(
    acc: &mut Acc<R>,
    a: *const u32,
    lda: usize,
    p: usize,
    w: *const u32,
) {
    // SAFETY: w points at an aligned 32-pair panel step; activations are widened rows of 2·steps.
    unsafe {
        let hi = _mm512_set1_epi32(0xFFFF_0000_u32 as i32);
        let v0 = _mm512_load_si512(w.cast());
        let v1 = _mm512_load_si512(w.add(16).cast());
        let e0 = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v0));
        let e1 = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v1));
        let o0 = _mm512_castsi512_ps(_mm512_and_si512(v0, hi));
        let o1 = _mm512_castsi512_ps(_mm512_and_si512(v1, hi));
        for (i, r) in acc.iter_mut().enumerate() {
            let row = a.add(i * lda + 2 * p);
            let xe = _mm512_set1_ps(f32::from_bits(*row));
            let xo = _mm512_set1_ps(f32::from_bits(*row.add(1)));
            r[0] = _mm512_fmadd_ps(xe, e0, r[0]);
            r[1] = _mm512_fmadd_ps(xe, e1, r[1]);
            r[0] = _mm512_fmadd_ps(xo, o0, r[0]);
            r[1] = _mm512_fmadd_ps(xo, o1, r[1]);
        }
    }
}

tile_fn!(f32_tile_rows, f32_rows, step_f32, f32, NR);

/// f32 tile routine on row-major activations: the GEMV routine for one row, else the register tile.
///
/// # Safety
/// The [`TileFn`](super::TileFn) contract; the CPU must support AVX-512 F/BW/VL/DQ.
pub(super) unsafe fn f32_tile(t: &Tile, mr: usize) {
    // SAFETY: forwarded contract.
    unsafe {
        if mr == 1 {
            f32_gemv(t)
        } else {
            f32_tile_rows(t, mr)
        }
    }
}

/// One row against one f32 panel: four independent accumulator pairs (FMA latency) and software
/// prefetch [`GEMV_PREFETCH`] bytes ahead, since a GEMV streams the weights once from L2/L3.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
unsafe fn f32_gemv(t: &Tile) {
    let m = masks(t.nv);
    let zero = _mm512_setzero_ps();
    // SAFETY: the caller guarantees the tile covers one row, kc steps and nv columns; prefetches
    // do not access memory (their addresses are formed with wrapping arithmetic).
    unsafe {
        let init = init::<1>(t, m);
        let mut acc = [init[0], [zero; 2], [zero; 2], [zero; 2]];
        let a = t.a.cast::<f32>();
        let mut w = t.w.cast::<f32>();
        let mut p = 0;
        while p + 4 <= t.kc {
            let ahead = w.cast::<i8>().wrapping_add(GEMV_PREFETCH);
            for l in 0..8 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * l));
            }
            for (j, s) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(p + j));
                let ws = w.add(j * NR);
                s[0] = _mm512_fmadd_ps(x, _mm512_load_ps(ws), s[0]);
                s[1] = _mm512_fmadd_ps(x, _mm512_load_ps(ws.add(16)), s[1]);
            }
            w = w.add(4 * NR);
            p += 4;
        }
        while p < t.kc {
            let x = _mm512_set1_ps(*a.add(p));
            acc[0][0] = _mm512_fmadd_ps(x, _mm512_load_ps(w), acc[0][0]);
            acc[0][1] = _mm512_fmadd_ps(x, _mm512_load_ps(w.add(16)), acc[0][1]);
            w = w.add(NR);
            p += 1;
        }
        let sum = [[
            _mm512_add_ps(
                _mm512_add_ps(acc[0][0], acc[1][0]),
                _mm512_add_ps(acc[2][0], acc[3][0]),
            ),
            _mm512_add_ps(
                _mm512_add_ps(acc[0][1], acc[1][1]),
                _mm512_add_ps(acc[2][1], acc[3][1]),
            ),
        ]];
        store(t, &sum, m);
    }
}

/// Rows of an f32 tile on packed activations (`MR` values per k-step, see [`pack_rows`]): one
/// pointer, every broadcast folded into its FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
unsafe fn f32p_rows<const R: usize>(t: &Tile) {
    let m = masks(t.nv);
    // SAFETY: the caller guarantees the tile's pointers cover R rows (packed at stride MR per
    // step), kc steps and nv columns.
    unsafe {
        let mut acc = init::<R>(t, m);
        let mut a = t.a.cast::<f32>();
        let mut w = t.w.cast::<f32>();
        for _ in 0..t.kc {
            let w0 = _mm512_load_ps(w);
            let w1 = _mm512_load_ps(w.add(16));
            for (i, r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(i));
                r[0] = _mm512_fmadd_ps(x, w0, r[0]);
                r[1] = _mm512_fmadd_ps(x, w1, r[1]);
            }
            a = a.add(MR);
            w = w.add(NR);
        }
        store(t, &acc, m);
    }
}

/// Tile routine on packed activations (`t.a` at the block's first packed step, `t.lda` = [`MR`]).
///
/// # Safety
/// The [`TileFn`](super::TileFn) contract; the CPU must support AVX-512 F/BW/VL/DQ.
pub(super) unsafe fn f32p_tile(t: &Tile, mr: usize) {
    debug_assert_eq!(t.lda, MR);
    // SAFETY: forwarded contract; mr is checked against the kernel height.
    unsafe { by_rows!(f32p_rows, t, mr) }
}

/// Packs `rows` (≤ [`MR`]) activation rows of `k` values (row stride `ldx`) into `k` steps of
/// `MR` values (row r of step p at `dst[p·MR + r]`; entries of rows ≥ `rows` are left as they
/// are), transposing 4×4 blocks in registers.
///
/// # Safety
/// `x` covers `rows` rows of `k` values at stride `ldx`; `dst` has room for `k·MR` f32; the CPU
/// has AVX-512 F.
#[target_feature(enable = "avx512f")]
unsafe fn pack_rows(x: *const f32, ldx: usize, rows: usize, k: usize, dst: *mut f32) {
    debug_assert!(rows <= MR);
    // SAFETY: every load reads row r < rows, column < k; every store writes step < k, row < MR.
    unsafe {
        let mut r = 0;
        while r + 4 <= rows {
            let src = [0, 1, 2, 3].map(|i| x.add((r + i) * ldx));
            let mut p = 0;
            while p + 4 <= k {
                let v = src.map(|s| _mm_loadu_ps(s.add(p)));
                let t0 = _mm_unpacklo_ps(v[0], v[1]);
                let t1 = _mm_unpacklo_ps(v[2], v[3]);
                let t2 = _mm_unpackhi_ps(v[0], v[1]);
                let t3 = _mm_unpackhi_ps(v[2], v[3]);
                let d = dst.add(p * MR + r);
                _mm_storeu_ps(d, _mm_movelh_ps(t0, t1));
                _mm_storeu_ps(d.add(MR), _mm_movehl_ps(t1, t0));
                _mm_storeu_ps(d.add(2 * MR), _mm_movelh_ps(t2, t3));
                _mm_storeu_ps(d.add(3 * MR), _mm_movehl_ps(t3, t2));
                p += 4;
            }
            for p in p..k {
                for (i, s) in src.iter().enumerate() {
                    *dst.add(p * MR + r + i) = *s.add(p);
                }
            }
            r += 4;
        }
        for r in r..rows {
            let s = x.add(r * ldx);
            for p in 0..k {
                *dst.add(p * MR + r) = *s.add(p);
            }
        }
    }
}
tile_fn!(f16_tile, f16_rows, step_f16, u16, NR);
tile_fn!(bf16w_tile, bf16w_rows, step_bf16w, u32, NR);

/// Widens `count` f16 panel entries (a multiple of 16) to f32.
///
/// # Safety
/// `src` holds `count` halves, 32-byte aligned; `dst` has room for `count` f32, 64-byte aligned; the
/// CPU has the module's features.
#[target_feature(enable = "avx512f,f16c")]
unsafe fn widen_f16(src: *const u8, count: usize, dst: *mut f32) {
    let src = src.cast::<u16>();
    for c in (0..count).step_by(16) {
        // SAFETY: c + 16 <= count entries on both sides; alignment per the contract.
        unsafe {
            _mm512_store_ps(
                dst.add(c),
                _mm512_cvtph_ps(_mm256_load_si256(src.add(c).cast())),
            )
        };
    }
}
