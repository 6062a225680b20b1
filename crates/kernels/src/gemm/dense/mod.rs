//! SIMD f32, fp16-weight and bf16 dense layers: packed weight panels, register-blocked micro-kernels,
//! cache blocking and threading.
//!
//! Every precision runs the same driver: weights are packed once into panels of `nr` output columns
//! ([`pack`]); a call walks row blocks × k blocks × panels and hands each `mr×nr` output tile to a
//! micro-kernel ([`Tile`]), which keeps the tile in registers for a whole k block. Blocks: `kc` k-steps
//! (1024: DLRM layers are not split along k, so each output is loaded and stored once; the panel stays
//! in L2 while every row block of the `MC`-row activation slice, also in L2, streams over it; measured
//! ~7% faster than 256-step blocks at k = 1024, where the re-read output tiles no longer fit L2).
//! Batches of at most [`SMALL_M`] rows run single-threaded (GEMV-like); large
//! problems are split over row blocks and panels with rayon. f32 activations of larger batches whose
//! rows lie a multiple of 4 KiB apart (k a multiple of 1024) are first copied with one cache line of
//! padding per row, so a tile's rows do not all map to one L1 set.
//!
//! The ops table ([`DenseOps`]) starts from the scalar oracles (no kernel) and is overridden level by
//! level: AVX2+FMA (3×16 tiles), AVX-512 (6×32 tiles), and at the Vnni level for bf16 `vdpbf16ps`
//! when the CPU has AVX512-BF16, replaced by AMX `tdpbf16ps` (32×32 blocks, every batch size) when
//! the process may use AMX tiles. Every kernel computes a row the same way whatever the batch size
//! (same k blocks, same accumulator split), so rows are independent of their batch. The scalar level uses the oracles of
//! [`super::scalar`].
//!
//! bf16 below AVX512-BF16 widens weight pairs with shifts and multiplies f32-widened bf16 activations
//! with f32 FMA (same products, exact in f32).

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

pub(crate) mod act;
#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod pack;
#[cfg(target_arch = "x86_64")]
mod tile;
#[cfg(target_arch = "x86_64")]
mod vnni;

use std::ops::Range;

use rayon::prelude::*;

use crate::registry::{FamilyCache, Implementation, KernelFamily};
use crate::{Isa, Result};
use act::{Bf16Layout, RoundFn};
#[cfg(target_arch = "x86_64")]
pub(crate) use amx::available as amx_available;
use pack::{AlignedBuf, Panels};

/// Batches up to this many rows take the single-threaded, unblocked path.
pub(crate) const SMALL_M: usize = 16;
/// Rows per cache block (a multiple of every micro-kernel height).
const MC: usize = 384;
/// f32 activation rows whose stride is a multiple of this many floats (4 KiB) alias in L1.
const ALIASING_FLOATS: usize = 1024;
/// Padding (one cache line of f32) added to each row of the copy that avoids the aliasing.
const PAD_FLOATS: usize = 16;
/// Multiply-adds (`m·n·k`) above which a call is split across rayon threads.
const PAR_MIN_WORK: usize = 1 << 21;

/// One output tile handed to a micro-kernel. Pointers are positioned at the tile's first row / column
/// and the block's first k-step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    /// Activations (f32 bits, bf16 pairs or widened bf16, per the kernel) of the tile's first row.
    pub(crate) a: *const u32,
    /// Distance between activation rows, in `u32` units.
    pub(crate) lda: usize,
    /// The panel at the block's first k-step (64-byte aligned).
    pub(crate) w: *const u8,
    /// k-steps in this block.
    pub(crate) kc: usize,
    /// Output of the tile's first row and column.
    pub(crate) c: *mut f32,
    /// Distance between output rows.
    pub(crate) ldc: usize,
    /// Valid columns, 1..=nr.
    pub(crate) nv: usize,
    /// Bias of the tile's first column to start from, or null to accumulate onto `c`.
    pub(crate) bias: *const f32,
    /// Apply ReLU when storing (set only on the last k block).
    pub(crate) relu: bool,
}

/// A micro-kernel: computes a tile of `mr` rows (1..=kernel's `mr`).
///
/// Safety contract: every pointer in the tile covers what the kernel reads and writes for `mr` rows,
/// `kc` steps and `nv` columns, and the CPU has the kernel's features.
pub(crate) type TileFn = unsafe fn(t: &Tile, mr: usize);

/// How activations are fed to a kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ActFeed {
    /// The caller's f32 input, as is.
    F32,
    /// Rounded to bf16 into scratch, in this layout, by this routine.
    Bf16(Bf16Layout, RoundFn),
}

/// A micro-kernel and the blocking it is built for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernel {
    /// Panel width (output columns per tile).
    pub(crate) nr: usize,
    /// Maximum rows per tile.
    pub(crate) mr: usize,
    /// k-steps per cache block.
    pub(crate) kc: usize,
    /// Panels' k-steps are padded (with zeros) to a multiple of this.
    pub(crate) step_multiple: usize,
    /// The tile routine.
    pub(crate) tile: TileFn,
    /// Activation feed.
    pub(crate) act: ActFeed,
    /// A kernel on the same layouts for batches of at most `.0` rows (for AMX, whose 16-row tiles
    /// waste work on one or two rows): `(max_m, mr, tile)`.
    pub(crate) small: Option<(usize, usize, TileFn)>,
    /// For narrow weights: a routine widening panel entries to f32 and the f32 tile routine to run on
    /// the widened slice. Batches of more than [`SMALL_M`] rows widen each (k block × panel) slice once
    /// into a per-thread buffer and reuse it for every row block, instead of converting per tile.
    pub(crate) widen: Option<(WidenFn, TileFn)>,
}

/// Converts `count` panel entries at `src` to f32 at `dst` (64-byte aligned, `count` a multiple of
/// the kernel's `nr`).
pub(crate) type WidenFn = unsafe fn(src: *const u8, count: usize, dst: *mut f32);

/// Kernels per precision for one implementation; `None` means the scalar oracle.
#[derive(Clone, Copy, Debug)]
pub struct DenseOps {
    /// f32 weights.
    pub(crate) f32: Option<Kernel>,
    /// f16 weights.
    pub(crate) f16: Option<Kernel>,
    /// bf16 weights and activations.
    pub(crate) bf16: Option<Kernel>,
}

/// True when the CPU has AVX512-BF16 (the probe of the `avx512bf16` implementation).
fn has_bf16() -> bool {
    crate::isa::has_avx512_bf16()
}

/// True when this process may use AMX-BF16 tiles (the probe of the `amx` implementation).
fn has_amx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        amx::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The f32 / fp16 / bf16 dense family in the [registry](crate::registry). Each implementation
/// installs its kernels over the ones below it: AVX2+FMA, AVX-512, `vdpbf16ps` for bf16 (when the
/// CPU has AVX512-BF16), AMX `tdpbf16ps` for bf16 (when the process may use AMX tiles).
pub struct DenseFamily;

static CACHE: FamilyCache<DenseOps> = FamilyCache::new();

impl KernelFamily for DenseFamily {
    const NAME: &'static str = "gemm_dense";
    type Ops = DenseOps;
    const IMPLEMENTATIONS: &'static [Implementation] = &[
        Implementation::at("scalar", Isa::Scalar),
        Implementation::at("avx2", Isa::Avx2),
        Implementation::at("avx512", Isa::Avx512),
        Implementation::probed("avx512bf16", Isa::Vnni, has_bf16),
        Implementation::probed("amx", Isa::Vnni, has_amx),
    ];

    fn build(index: usize) -> Result<DenseOps> {
        #[allow(unused_mut)]
        let mut ops = DenseOps {
            f32: None,
            f16: None,
            bf16: None,
        };
        #[cfg(target_arch = "x86_64")]
        {
            if index >= 1 {
                avx2::install(&mut ops);
            }
            if index >= 2 {
                avx512::install(&mut ops);
            }
            if index >= 3 && has_bf16() {
                vnni::install(&mut ops);
            }
            if index >= 4 {
                amx::install(&mut ops);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = index;
        Ok(ops)
    }

    fn cache() -> &'static FamilyCache<DenseOps> {
        &CACHE
    }
}

/// Weights packed for one kernel.
#[derive(Clone, Debug)]
pub(crate) struct PackedDense {
    kernel: Kernel,
    panels: Panels,
    n: usize,
    k: usize,
}

/// Raw pointers of one call, shared by the threads that each write disjoint output tiles.
#[derive(Clone, Copy)]
struct Job {
    kernel: Kernel,
    w: *const u8,
    panel_bytes: usize,
    step_bytes: usize,
    panels: usize,
    steps: usize,
    a: *const u32,
    lda: usize,
    a_per_step: usize,
    c: *mut f32,
    n: usize,
    bias: *const f32,
    relu: bool,
}

// SAFETY: a Job only carries pointers into buffers borrowed for the duration of the call; concurrent
// users run disjoint (row range × panel range) parts, so their output writes never overlap and all
// other memory is only read.
unsafe impl Send for Job {}
// SAFETY: as above.
unsafe impl Sync for Job {}

impl Job {
    /// Computes output rows `rows` × the columns of panels `panels`.
    fn run(&self, rows: Range<usize>, panels: Range<usize>) {
        match self.kernel.widen {
            Some((widen, tile)) if rows.len() > SMALL_M => WIDENED
                .with_borrow_mut(|buf| self.run_blocks(rows, panels, Some((widen, tile, buf)))),
            _ => self.run_blocks(rows, panels, None),
        }
    }

    fn run_blocks(
        &self,
        rows: Range<usize>,
        panels: Range<usize>,
        mut widened: Option<(WidenFn, TileFn, &mut AlignedBuf)>,
    ) {
        // The same k blocks for every batch size: a block boundary is where the two accumulator
        // sets of a tile are merged, so it is part of a row's summation order.
        let kc = self.kernel.kc;
        let (nr, mr) = (self.kernel.nr, self.kernel.mr);
        let mut mc0 = rows.start;
        while mc0 < rows.end {
            let mc1 = rows.end.min(mc0 + MC);
            let mut k0 = 0;
            while k0 < self.steps {
                let kb = kc.min(self.steps - k0);
                let last = k0 + kb == self.steps;
                for p in panels.clone() {
                    let j0 = p * nr;
                    let nv = nr.min(self.n - j0);
                    let mut w = self
                        .w
                        .wrapping_add(p * self.panel_bytes + k0 * self.step_bytes);
                    let mut tile_fn = self.kernel.tile;
                    if let Some((widen, f32_tile, buf)) = widened.as_mut() {
                        let bytes = kb * nr * 4;
                        if buf.len() < bytes {
                            **buf = AlignedBuf::zeroed(bytes);
                        }
                        // SAFETY: the panel slice holds kb·nr entries from `w` (inside the panel
                        // buffer); `buf` has room for kb·nr f32 and is 64-byte aligned; the widen
                        // routine comes from the same ops table as the kernel.
                        unsafe { widen(w, kb * nr, buf.as_mut_ptr().cast()) };
                        w = buf.as_ptr();
                        tile_fn = *f32_tile;
                    }
                    for (i, h) in row_blocks(mc0..mc1, mr) {
                        let tile = Tile {
                            a: self.a.wrapping_add(i * self.lda + k0 * self.a_per_step),
                            lda: self.lda,
                            w,
                            kc: kb,
                            c: self.c.wrapping_add(i * self.n + j0),
                            ldc: self.n,
                            nv,
                            bias: if k0 == 0 {
                                self.bias.wrapping_add(j0)
                            } else {
                                std::ptr::null()
                            },
                            relu: self.relu && last,
                        };
                        // SAFETY: rows i..i+h < m, columns j0..j0+nv <= n and steps k0..k0+kb <= steps
                        // lie inside the activation, output, bias and panel buffers the Job was built
                        // from (checked by `PackedDense::forward`); h <= mr; the kernel came from the
                        // ops table of a level the CPU supports.
                        unsafe { tile_fn(&tile, h) };
                    }
                }
                k0 += kb;
            }
            mc0 = mc1;
        }
    }
}

thread_local! {
    /// Per-thread f32 copy of one (k block × panel) slice of narrow weights (grows once).
    static WIDENED: std::cell::RefCell<AlignedBuf> =
        std::cell::RefCell::new(AlignedBuf::zeroed(0));
}

/// Splits `rows` into `ceil(len / mr)` nearly equal blocks of at most `mr` rows: `(start, height)`.
fn row_blocks(rows: Range<usize>, mr: usize) -> impl Iterator<Item = (usize, usize)> {
    let len = rows.len();
    let blocks = len.div_ceil(mr);
    let base = len.checked_div(blocks).unwrap_or(0);
    let extra = len.checked_rem(blocks).unwrap_or(0);
    (0..blocks).map(move |b| {
        let start = rows.start + b * base + b.min(extra);
        (start, base + usize::from(b < extra))
    })
}

impl PackedDense {
    /// Packs f32 weights for `kernel`.
    pub(crate) fn f32(kernel: Kernel, w: &[f32], n: usize, k: usize) -> Self {
        let panels = pack::pack_f32(w, n, k, kernel.nr);
        PackedDense {
            kernel,
            panels,
            n,
            k,
        }
    }

    /// Packs f16 weights (saturated) for `kernel`.
    pub(crate) fn f16(kernel: Kernel, w: &[f32], n: usize, k: usize) -> Self {
        let panels = pack::pack_f16(w, n, k, kernel.nr);
        PackedDense {
            kernel,
            panels,
            n,
            k,
        }
    }

    /// Packs bf16 weight pairs for `kernel`.
    pub(crate) fn bf16(kernel: Kernel, w: &[f32], n: usize, k: usize) -> Self {
        let steps = k.div_ceil(2).next_multiple_of(kernel.step_multiple);
        let panels = pack::pack_bf16_pairs(w, n, k, steps, kernel.nr);
        PackedDense {
            kernel,
            panels,
            n,
            k,
        }
    }

    /// `out[m×n] = x[m×k] · Wᵀ + bias`, ReLU when `relu`. Lengths were checked by the caller;
    /// `act` is scratch for rounded activations (grows once).
    pub(crate) fn forward(
        &self,
        x: &[f32],
        m: usize,
        bias: &[f32],
        out: &mut [f32],
        relu: bool,
        act: &mut Vec<u32>,
    ) {
        let (n, k) = (self.n, self.k);
        assert!(x.len() == m * k && out.len() == m * n && bias.len() == n);
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            for row in out.chunks_exact_mut(n) {
                for (o, &b) in row.iter_mut().zip(bias) {
                    *o = if relu { b.max(0.0) } else { b };
                }
            }
            return;
        }
        let (a, lda, a_per_step) = match self.kernel.act {
            // Rows 4 KiB apart (k a multiple of 1024) put every row of a tile in the same L1 set;
            // large batches get a copy with one cache line of padding per row (measured ~5% faster
            // at k = 1024; the copy is k/n of the multiply-adds' cost).
            ActFeed::F32 if m > SMALL_M && k.is_multiple_of(ALIASING_FLOATS) => {
                let lda = k + PAD_FLOATS;
                if act.len() < m * lda {
                    act.resize(m * lda, 0);
                }
                for (dst, src) in act.chunks_exact_mut(lda).zip(x.chunks_exact(k)) {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = s.to_bits();
                    }
                }
                (act.as_ptr(), lda, 1)
            }
            ActFeed::F32 => (x.as_ptr().cast::<u32>(), k, 1),
            ActFeed::Bf16(layout, round) => {
                let row = layout.row_len(k);
                let len = layout.rows(m) * row;
                if act.len() < len {
                    act.resize(len, 0);
                }
                // SAFETY: the round routine comes from the ops table of a level this CPU supports;
                // `x` holds m×k values and `act` at least m×row entries.
                unsafe { round(x, m, k, &mut act[..m * row]) };
                let per_step = if layout == Bf16Layout::Widened { 2 } else { 1 };
                (act.as_ptr(), row, per_step)
            }
        };
        let panels = self.panels.count(n);
        let mut kernel = self.kernel;
        if let Some((max_m, mr, tile)) = kernel.small
            && m <= max_m
        {
            kernel.mr = mr;
            kernel.tile = tile;
        }
        let job = Job {
            kernel,
            w: self.panels.buf.as_ptr(),
            panel_bytes: self.panels.panel_bytes(),
            step_bytes: self.panels.step_bytes(),
            panels,
            steps: self.panels.steps,
            a,
            lda,
            a_per_step,
            c: out.as_mut_ptr(),
            n,
            bias: bias.as_ptr(),
            relu,
        };
        let threads = crate::parallel::threads();
        if m <= SMALL_M || threads <= 1 || m * n * k < PAR_MIN_WORK {
            job.run(0..m, 0..panels);
        } else {
            run_parallel(&job, m, threads);
        }
    }
}

/// Splits the call into about `2 × threads` (rows × panels) tasks and runs them with rayon.
fn run_parallel(job: &Job, m: usize, threads: usize) {
    let mr = job.kernel.mr;
    let want = 2 * threads;
    // Row chunks of whole micro-kernel heights, at least 4 tiles tall.
    let row_chunks = (m / (4 * mr)).clamp(1, want);
    let panel_chunks = want.div_ceil(row_chunks).clamp(1, job.panels);
    let rows_per = m.div_ceil(row_chunks).div_ceil(mr) * mr;
    let panels_per = job.panels.div_ceil(panel_chunks);
    (0..row_chunks * panel_chunks)
        .into_par_iter()
        .for_each(|t| {
            let (rc, pc) = (t / panel_chunks, t % panel_chunks);
            let rows = (rc * rows_per).min(m)..((rc + 1) * rows_per).min(m);
            let ps = (pc * panels_per).min(job.panels)..((pc + 1) * panels_per).min(job.panels);
            if !rows.is_empty() && !ps.is_empty() {
                job.run(rows, ps);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::scalar::Bf16Weights;
    use crate::rng::Rng;

    /// Every table (with and without AMX) for every level, bf16 against the oracle within the
    /// reassociation bound of `tests/gemm_float.rs`; on AMX machines this is what reaches the
    /// `vdpbf16ps` kernel with its unpadded layout.
    #[test]
    fn bf16_kernels_without_amx_match_oracle() {
        let mut rng = Rng::new(5);
        for (index, imp) in DenseFamily::available() {
            {
                let Some(kern) = DenseFamily::get(index).unwrap().bf16 else {
                    continue;
                };
                for (m, k, n) in [(1, 13, 7), (2, 64, 33), (17, 479, 40), (40, 1024, 16)] {
                    let x = rng.normal_vec(m * k, 1.0);
                    let w = rng.normal_vec(n * k, 0.5);
                    let b = rng.normal_vec(n, 0.1);
                    let mut want = vec![0f32; m * n];
                    Bf16Weights::pack(&w, n, k).forward(&x, m, n, k, &b, &mut want, true);
                    let mut got = vec![f32::NAN; m * n];
                    let mut act = Vec::new();
                    PackedDense::bf16(kern, &w, n, k).forward(&x, m, &b, &mut got, true, &mut act);
                    let r = |v: f32| f64::from(half::bf16::from_f32(v).to_f32());
                    for i in 0..m {
                        for j in 0..n {
                            let s: f64 = (0..k)
                                .map(|p| (r(x[i * k + p]) * r(w[j * k + p])).abs())
                                .sum::<f64>()
                                + f64::from(b[j]).abs();
                            let tol = (k + 2) as f64 * 2f64.powi(-23) * s + 1e-30;
                            let d = (f64::from(got[i * n + j]) - f64::from(want[i * n + j])).abs();
                            assert!(d <= tol, "{imp} {m}x{k}x{n} ({i},{j}): {d:e}");
                        }
                    }
                }
            }
        }
    }

    /// f32 and f16 weights at every level against the oracles, within the reassociation bound of
    /// `tests/gemm_float.rs`, on mid-size batches (row blocks of several heights, one row block and
    /// many, two cache blocks of rows at k = 1024, odd k, column tails) with a dirty scratch buffer.
    #[test]
    fn f32_and_f16_kernels_match_oracle_on_mid_batches() {
        use crate::gemm::scalar::{F16Weights, F32Weights};
        let mut rng = Rng::new(11);
        for (index, imp) in DenseFamily::available() {
            let ops = DenseFamily::get(index).unwrap();
            for (m, k, n) in [
                (5, 3, 7),
                (6, 257, 33),
                (12, 64, 32),
                (13, 600, 40),
                (97, 515, 65),
                (400, 1024, 40),
            ] {
                let x = rng.normal_vec(m * k, 1.0);
                let w = rng.normal_vec(n * k, 0.5);
                let b = rng.normal_vec(n, 0.1);
                for half in [false, true] {
                    let (kern, mut want) =
                        (if half { ops.f16 } else { ops.f32 }, vec![0f32; m * n]);
                    let Some(kern) = kern else { continue };
                    let packed = if half {
                        F16Weights::pack(&w, n, k).forward(&x, m, n, k, &b, &mut want, true);
                        PackedDense::f16(kern, &w, n, k)
                    } else {
                        F32Weights::pack(&w, n, k).forward(&x, m, n, k, &b, &mut want, true);
                        PackedDense::f32(kern, &w, n, k)
                    };
                    let mut got = vec![f32::NAN; m * n];
                    let mut act = vec![7u32; 3];
                    packed.forward(&x, m, &b, &mut got, true, &mut act);
                    let wr = |v: f32| {
                        if half {
                            f64::from(pack::f16_saturated(v).to_f32())
                        } else {
                            f64::from(v)
                        }
                    };
                    for i in 0..m {
                        for j in 0..n {
                            let s: f64 = (0..k)
                                .map(|p| (f64::from(x[i * k + p]) * wr(w[j * k + p])).abs())
                                .sum::<f64>()
                                + f64::from(b[j]).abs();
                            let tol = (k + 2) as f64 * 2f64.powi(-23) * s + 1e-30;
                            let d = (f64::from(got[i * n + j]) - f64::from(want[i * n + j])).abs();
                            assert!(d <= tol, "{imp} half={half} {m}x{k}x{n} ({i},{j}): {d:e}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn row_blocks_cover_exactly() {
        for len in 0..70 {
            for mr in [1, 6, 12, 32] {
                let blocks: Vec<_> = row_blocks(3..3 + len, mr).collect();
                let mut next = 3;
                for (start, h) in blocks {
                    assert_eq!(start, next);
                    assert!((1..=mr).contains(&h));
                    next += h;
                }
                assert_eq!(next, 3 + len);
            }
        }
    }
}
