//! AMX-INT8 GEMM (`tdpbusd` on 16×64-byte tiles), used at level Vnni for batches of at least
//! [`AMX_MIN_M`] rows when the CPU has AMX-TILE and AMX-INT8 and Linux grants the process the
//! tile-data state. u8·s8 products are summed exactly into i32, like `vpdpbusd`.
//!
//! # Layouts
//! - **Weights**: a packed panel's 4-deep groups (64 bytes: 16 columns × 4 codes) are exactly the rows
//!   of an AMX `B` tile, and panels are padded to a multiple of 64 in `k`, so k-tile `t` of panel `p`
//!   is the 1 KiB at `p·pstride + t·1024` (64-byte aligned).
//! - **Activations** are quantized (or copied) once per call into tiles: rows in blocks of 16, each
//!   block a sequence of 1 KiB tiles (16 rows × 64 codes), so every `A` tile is 1 KiB contiguous
//!   and aligned. `k` is padded with zero codes to a multiple of 64; the rows that pad `m` to a
//!   multiple of 16 hold stale codes whose outputs are computed and discarded.
//!
//! # Blocking
//! Eight tile registers: four `C` accumulators plus operands. Pairs of row blocks (32 rows) are
//! the outer loop; their activations (32 × k codes: 32 KiB at k = 1024) stay in L1 while the weight
//! panels stream past from L2 in pairs (2×2: 32 rows × 32 columns per step, each loaded `A`/`B` tile
//! used twice). A single remaining row block takes panels four at a time (1×4). `k` is the
//! innermost loop, so each accumulator is finished in registers, stored once to a small scratch
//! and turned into outputs by the fused AVX-512 epilogue (zero-point correction, scale, bias, ReLU
//! or u8 requantization) while it is still in L1. Column blocks of about 256 KiB of weights are
//! the outermost loop, so the weights a block of rows meets stay in L2.
//!
//! For `k` beyond 1024 (DLRM-v2's 3456) a row pair over the whole `k` no longer fits L1 and both
//! operands of that loop stream from L2; there [`gemm_kblocked`] runs instead: weight-stationary,
//! k-blocks of 512 codes, the accumulators carried across k-blocks through an L1 scratch (exact
//! integer sums, so the result is bit for bit the same), in passes of up to 256 rows.
//!
//! Measured on the development machine: tile loads from 64-byte aligned buffers are about six
//! times faster than from unaligned ones (a 1 KiB tile at a 16-byte offset touches 32 lines), which
//! is why weights and activations live in [`AlignedBytes`](super::buf::AlignedBytes).

use std::arch::asm;
use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::driver::{Epi, Out, TILE_ROWS, TileOps};
use super::{Int8Weights, KT, NR};

/// Fewest rows for which the AMX kernel is used (one full tile of rows).
pub(crate) const AMX_MIN_M: usize = 16;

/// Weight bytes per column block (kept in L2 while the row blocks pass over it).
const B_BLOCK_BYTES: usize = 1 << 18;

/// How many k-steps ahead the 2×2 loop prefetches its `B` tiles into L1: the weights stream
/// from L2 (or further) while the activations of a row pair are reused, and a tile load that
/// misses L1 stalls the tile unit; measured on the development machine, 1-2 steps ahead gives
/// 5-10 % on DLRM-v2's k = 3456 and k = 1024 layers.
const PREFETCH_STEPS: usize = 2;

/// k-steps (64 codes each) per k-block of the weight-stationary path ([`gemm_kblocked`]): a panel
/// pair's k-slice (2 × 8 KiB) stays in L1 while every row pair of the pass meets it.
const KC_STEPS: usize = 8;

/// Fewest k-steps beyond which the weight-stationary path is used: up to 16 (k <= 1024) a row
/// pair's activations over the whole `k` (32 KiB) stay in L1 across the panels of the 2×2 loop,
/// which measured as fast or faster at DLRM's k = 1024 and m = 64.
const KB_MIN_STEPS: usize = 16;

/// Most rows one pass of the weight-stationary path accumulates: its scratch holds their partial
/// sums for one panel pair (256 rows × 32 columns of i32: 32 KiB).
const KB_ROWS: usize = 256;

/// Bytes of one tile (16 rows × 64 bytes).
const TILE_BYTES: usize = TILE_ROWS * KT;

/// Whether AMX-INT8 can be used: CPU support (CPUID leaf 7: AMX-TILE, AMX-INT8), an AVX512-VNNI
/// fallback, and permission for the tile-data state from Linux (`arch_prctl(ARCH_REQ_XCOMP_PERM)`).
pub(crate) fn usable() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if crate::Isa::detected() < crate::Isa::Vnni {
            return false;
        }
        crate::gemm::amx_state::usable(crate::gemm::amx_state::AMX_INT8)
    })
}

/// The tile path of the Amx kernel.
pub(crate) fn tile_ops() -> TileOps {
    TileOps {
        min_rows: AMX_MIN_M,
        quantize: quantize_tiles,
        copy: copy_tiles,
        gemm,
        chunk_rows,
    }
}

/// Rows per one-thread chunk for activation rows of `lda` codes: [`KB_ROWS`] where the
/// weight-stationary path runs (so each weight k-slice brought into L1 meets that many rows, and each weight byte
/// read from L3 meets as many), else `None` (the driver's default).
fn chunk_rows(lda: usize) -> Option<usize> {
    (lda / KT > KB_MIN_STEPS).then_some(KB_ROWS)
}

/// Offset of row `i`'s k-tile `t` in the tile layout with row stride `lda` (a multiple of 64).
#[inline]
fn tile_offset(i: usize, t: usize, lda: usize) -> usize {
    (i / TILE_ROWS) * TILE_ROWS * lda + t * TILE_BYTES + (i % TILE_ROWS) * KT
}

/// Quantizes `m` rows of `k` f32 into the tile layout: `clamp(round_ties_even(x·inv) + zp, 0, 255)`
/// (the oracle's formula), zero codes in `k..lda`.
fn quantize_tiles(
    x: &[f32],
    m: usize,
    k: usize,
    lda: usize,
    inv: &[f32],
    zp: &[i32],
    out: &mut [u8],
) {
    // SAFETY: only installed for the Amx kernel, which requires AVX-512 F/BW/VL/DQ (level Vnni).
    unsafe { quantize_tiles_avx512(x, m, k, lda, inv, zp, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them). The buffer sizes are
/// asserted.
unsafe fn quantize_tiles_avx512(
    x: &[f32],
    m: usize,
    k: usize,
    lda: usize,
    inv_rows: &[f32],
    zp_rows: &[i32],
    out: &mut [u8],
) {
    assert!(lda.is_multiple_of(KT) && lda >= k && lda < k + KT);
    assert!(x.len() >= m * k && out.len() >= m.next_multiple_of(TILE_ROWS) * lda);
    // Values beyond ±512 give code 0 or 255 either way; clamping first keeps the conversion in range.
    let lim = _mm512_set1_ps(512.0);
    let nlim = _mm512_set1_ps(-512.0);
    // packus interleaves 128-bit lanes: dword 4L + j of the packed bytes holds codes 4L..4L+4 of
    // input vector j; this gathers them back into input order.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let code = |v: __m512, vinv: __m512, vzp: __m512i| {
        let s = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, vinv), nlim), lim);
        _mm512_add_epi32(
            _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(s),
            vzp,
        )
    };
    let pack = |q: [__m512i; 4]| {
        let lo = _mm512_packus_epi32(q[0], q[1]);
        let hi = _mm512_packus_epi32(q[2], q[3]);
        _mm512_permutexvar_epi32(order, _mm512_packus_epi16(lo, hi))
    };
    for i in 0..m {
        let vinv = _mm512_set1_ps(super::scalar::row_param(inv_rows, i));
        let vzp = _mm512_set1_epi32(super::scalar::row_param(zp_rows, i));
        let src = x[i * k..(i + 1) * k].as_ptr();
        let mut p = 0;
        while p < k {
            let valid = (k - p).min(KT);
            let at = tile_offset(i, p / KT, lda);
            let bytes = if valid == KT {
                // SAFETY: 64 f32 at `src + p` are inside row i (`p + 64 <= k`).
                pack(std::array::from_fn(|j| unsafe {
                    code(_mm512_loadu_ps(src.add(p + 16 * j)), vinv, vzp)
                }))
            } else {
                let q = std::array::from_fn(|j| {
                    let lanes = valid.saturating_sub(16 * j).min(16);
                    let mask = ((1u32 << lanes) - 1) as __mmask16;
                    // SAFETY: only the `lanes` lanes inside row i are read.
                    code(
                        unsafe { _mm512_maskz_loadu_ps(mask, src.add(p + 16 * j)) },
                        vinv,
                        vzp,
                    )
                });
                // Padding codes (beyond k) are zero.
                _mm512_maskz_mov_epi8((1u64 << valid) - 1, pack(q))
            };
            // SAFETY: the 64 bytes at `at` are inside `out` (asserted above: row i's tile t).
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(at).cast(), bytes) };
            p += KT;
        }
    }
}

/// Copies `m` rows of `k` u8 codes into the tile layout, zero codes in `k..lda`.
fn copy_tiles(x: &[u8], m: usize, k: usize, lda: usize, out: &mut [u8]) {
    // SAFETY: only installed for the Amx kernel, which requires AVX-512 F/BW (level Vnni).
    unsafe { copy_tiles_avx512(x, m, k, lda, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/DQ (the function is compiled for them). The buffer sizes are
/// asserted.
unsafe fn copy_tiles_avx512(x: &[u8], m: usize, k: usize, lda: usize, out: &mut [u8]) {
    assert!(lda.is_multiple_of(KT) && lda >= k && lda < k + KT);
    assert!(x.len() >= m * k && out.len() >= m.next_multiple_of(TILE_ROWS) * lda);
    for i in 0..m {
        let src = x[i * k..(i + 1) * k].as_ptr();
        let mut p = 0;
        while p < k {
            let valid = (k - p).min(KT);
            let mask = if valid == KT {
                u64::MAX
            } else {
                (1u64 << valid) - 1
            };
            // SAFETY: the masked load reads only the `valid` codes inside row i; the 64 bytes at
            // the tile offset are inside `out` (asserted above).
            unsafe {
                let v = _mm512_maskz_loadu_epi8(mask, src.add(p).cast());
                _mm512_storeu_si512(out.as_mut_ptr().add(tile_offset(i, p / KT, lda)).cast(), v);
            }
            p += KT;
        }
    }
}

/// Palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn new() -> TileConfig {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
            c[48 + t] = TILE_ROWS as u8;
        }
        TileConfig(c)
    }
}

/// Accumulator scratch: 32 rows × 32 columns or 16 rows × 64 columns of i32 (4 KiB, in L1).
#[repr(C, align(64))]
struct CScratch([i32; 1024]);

/// Runs `$body` (one k-step of tile loads and products) for every k-tile. In the body, `{a0}`/`{a1}`
/// are the two row blocks' `A` tiles and `{b0}`..`{b3}` the panels' `B` tiles of this k-step;
/// `{p0}`/`{p1}` are the `B` tiles [`PREFETCH_STEPS`] k-steps ahead in `$next` order (this block's
/// first two panels, then the next block's), for a body that prefetches them.
macro_rules! k_loop {
    ($kt:expr, $a0:expr, $a1:expr, $bs:expr, $next:expr, $($body:tt)+) => {
        for t in 0..$kt {
            let o = t * TILE_BYTES;
            let ahead = t + PREFETCH_STEPS;
            let (p0, p1) = if ahead < $kt {
                let o = ahead * TILE_BYTES;
                ($bs[0].wrapping_add(o), $bs[1].wrapping_add(o))
            } else {
                let o = (ahead - $kt) * TILE_BYTES;
                ($next[0].wrapping_add(o), $next[1].wrapping_add(o))
            };
            // SAFETY: the caller checked that the A tiles of both row blocks and the B tiles of
            // the four panels (1 KiB each at offset `o`) lie inside the activations / packed
            // weights; unused pointers are not dereferenced, and prefetches never fault.
            unsafe {
                asm!(
                    $($body)+,
                    a0 = in(reg) $a0.wrapping_add(o),
                    a1 = in(reg) $a1.wrapping_add(o),
                    b0 = in(reg) $bs[0].wrapping_add(o),
                    b1 = in(reg) $bs[1].wrapping_add(o),
                    b2 = in(reg) $bs[2].wrapping_add(o),
                    b3 = in(reg) $bs[3].wrapping_add(o),
                    p0 = in(reg) p0,
                    p1 = in(reg) p1,
                    s = in(reg) KT,
                    options(nostack, readonly)
                );
            }
        }
    };
}

/// `prefetcht0` of the 16 lines of each of the 1 KiB tiles at `{p0}` and `{p1}` (an asm fragment).
macro_rules! prefetch_tiles {
    () => {
        "prefetcht0 [{p0} + 0]\nprefetcht0 [{p0} + 64]\nprefetcht0 [{p0} + 128]\nprefetcht0 [{p0} + 192]\nprefetcht0 [{p0} + 256]\nprefetcht0 [{p0} + 320]\nprefetcht0 [{p0} + 384]\nprefetcht0 [{p0} + 448]\nprefetcht0 [{p0} + 512]\nprefetcht0 [{p0} + 576]\nprefetcht0 [{p0} + 640]\nprefetcht0 [{p0} + 704]\nprefetcht0 [{p0} + 768]\nprefetcht0 [{p0} + 832]\nprefetcht0 [{p0} + 896]\nprefetcht0 [{p0} + 960]\nprefetcht0 [{p1} + 0]\nprefetcht0 [{p1} + 64]\nprefetcht0 [{p1} + 128]\nprefetcht0 [{p1} + 192]\nprefetcht0 [{p1} + 256]\nprefetcht0 [{p1} + 320]\nprefetcht0 [{p1} + 384]\nprefetcht0 [{p1} + 448]\nprefetcht0 [{p1} + 512]\nprefetcht0 [{p1} + 576]\nprefetcht0 [{p1} + 640]\nprefetcht0 [{p1} + 704]\nprefetcht0 [{p1} + 768]\nprefetcht0 [{p1} + 832]\nprefetcht0 [{p1} + 896]\nprefetcht0 [{p1} + 960]\n"
    };
}

/// One step of the block loop: row block `b` (and `b + 1` when `two`), panels `p..p + np`.
#[derive(Clone, Copy)]
struct Block {
    b: usize,
    two: bool,
    p: usize,
    np: usize,
}

/// The blocks in execution order: column blocks of `ncb` panels outermost; inside one, pairs of
/// row blocks (a last single one alone) with 2 panels per step (4 for a single row block).
struct Blocks {
    blocks: usize,
    panels: usize,
    ncb: usize,
    nb: usize,
    b: usize,
    p: usize,
}

impl Iterator for Blocks {
    type Item = Block;

    fn next(&mut self) -> Option<Block> {
        if self.nb >= self.panels || self.b >= self.blocks {
            return None;
        }
        let nend = (self.nb + self.ncb).min(self.panels);
        let two = self.blocks - self.b >= 2;
        let np = (nend - self.p).min(if two { 2 } else { 4 });
        let blk = Block {
            b: self.b,
            two,
            p: self.p,
            np,
        };
        self.p += np;
        if self.p >= nend {
            self.b += if two { 2 } else { 1 };
            self.p = self.nb;
            if self.b >= self.blocks {
                self.b = 0;
                self.nb = nend;
                self.p = nend;
            }
        }
        Some(blk)
    }
}

/// Stores the accumulator tiles `tmm0..tmm3` at `to[0..4]`, each 16 rows of 64 bytes at row
/// stride `stride` bytes.
///
/// # Safety
/// The CPU supports AMX-TILE with a palette-1 configuration loaded, and each of the four
/// destinations is writable for 16 rows of 64 bytes at that stride.
#[inline(always)]
unsafe fn store_accumulators(to: [*mut i32; 4], stride: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        asm!(
            "tilestored [{c0} + {s}*1], tmm0",
            "tilestored [{c1} + {s}*1], tmm1",
            "tilestored [{c2} + {s}*1], tmm2",
            "tilestored [{c3} + {s}*1], tmm3",
            c0 = in(reg) to[0],
            c1 = in(reg) to[1],
            c2 = in(reg) to[2],
            c3 = in(reg) to[3],
            s = in(reg) stride,
            options(nostack)
        );
    }
}

/// The tile counts of a call (k-steps, 16-row blocks, 16-column panels) and the panel stride,
/// after asserting that the activation and weight buffers hold them.
fn tile_counts(a: &[u8], lda: usize, m: usize, w: &Int8Weights) -> (usize, usize, usize, usize) {
    let kt = lda / KT;
    let blocks = m.div_ceil(TILE_ROWS);
    let panels = w.n.div_ceil(NR);
    let pstride = w.pstride;
    assert!(lda.is_multiple_of(KT) && pstride == lda * NR);
    assert!(a.len() >= blocks * TILE_ROWS * lda && w.packed().len() >= panels * pstride);
    (kt, blocks, panels, pstride)
}

/// The AMX GEMM over `m` rows of activations in the tile layout; see the module docs.
fn gemm(a: &[u8], lda: usize, m: usize, w: &Int8Weights, epi: &Epi<'_>, out: &mut Out<'_>) {
    assert!(usable(), "AMX kernel installed without AMX permission");
    // SAFETY: `usable()` established CPU support and the OS permission for AMX tile data.
    unsafe { gemm_amx(a, lda, m, w, epi, out) }
}

/// # Safety
/// The CPU must support AMX-TILE/AMX-INT8 and the process must hold the tile-data permission.
unsafe fn gemm_amx(
    a: &[u8],
    lda: usize,
    m: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    let (kt, blocks, panels, pstride) = tile_counts(a, lda, m, w);
    if m == 0 || w.n == 0 {
        return;
    }
    if kt > KB_MIN_STEPS {
        // SAFETY: forwarded (AMX usable); the sizes are asserted above.
        unsafe { gemm_kblocked(a, lda, m, w, epi, out) };
        return;
    }
    let cfg = TileConfig::new();
    let mut c = CScratch([0; 1024]);
    let (ap, wp) = (a.as_ptr(), w.packed().as_ptr());
    let block_bytes = TILE_ROWS * lda;
    let panel = |p: usize| wp.wrapping_add(p * pstride);
    let n = w.n;
    // Column blocks of `ncb` panels: a block's weights (about B_BLOCK_BYTES) stay in L2 while every
    // row block passes over them.
    let ncb = (B_BLOCK_BYTES / pstride).max(4) / 4 * 4;
    let mut order = Blocks {
        blocks,
        panels,
        ncb,
        nb: 0,
        b: 0,
        p: 0,
    };
    let extent = |blk: &Block| {
        let row0 = blk.b * TILE_ROWS;
        let rows = (m - row0).min(if blk.two { 2 } else { 1 } * TILE_ROWS);
        let cols = (blk.np * NR).min(n - blk.p * NR);
        (row0, rows, cols)
    };
    // SAFETY: `cfg` is a valid 64-byte palette-1 configuration.
    unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
    let mut cur = order.next();
    while let Some(blk) = cur {
        cur = order.next();
        let (row0, rows, cols) = extent(&blk);
        let a0 = ap.wrapping_add(blk.b * block_bytes);
        let a1 = a0.wrapping_add(block_bytes);
        let bs = [
            panel(blk.p),
            panel(blk.p + 1),
            panel(blk.p + 2),
            panel(blk.p + 3),
        ];
        // The B tiles the prefetches run into past this block's last k-step: the next block's.
        let next = match &cur {
            Some(nb) => [panel(nb.p), panel(nb.p + 1)],
            None => [bs[0], bs[1]],
        };
        // Accumulator row stride in the scratch: 32 columns for 2×2, 64 for 1×4.
        let ldt = if blk.two { 2 * NR } else { 4 * NR };
        // SAFETY: zeroing tile registers touches no memory.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            )
        };
        // Accumulators: 2×2: tmm0 = (block 0, panel 0), tmm1 = (0, 1), tmm2 = (1, 0),
        // tmm3 = (1, 1); 1×4: tmm0..tmm3 = panels 0..3. Only the panels and blocks that exist
        // are loaded.
        match (blk.two, blk.np) {
            (true, 2) => k_loop!(
                kt,
                a0,
                a1,
                bs,
                next,
                concat!(
                    prefetch_tiles!(),
                    "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm6, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm7, [{b1} + {s}*1]\ntdpbusd tmm1, tmm4, tmm7\ntileloadd tmm5, [{a1} + {s}*1]\ntdpbusd tmm2, tmm5, tmm6\ntdpbusd tmm3, tmm5, tmm7 # {b2} {b3}"
                )
            ),
            (true, _) => k_loop!(
                kt,
                a0,
                a1,
                bs,
                next,
                "tileloadd tmm6, [{b0} + {s}*1]\ntileloadd tmm4, [{a0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm5, [{a1} + {s}*1]\ntdpbusd tmm2, tmm5, tmm6 # {b1} {b2} {b3} {p0} {p1}"
            ),
            (false, 4) => k_loop!(
                kt,
                a0,
                a1,
                bs,
                next,
                "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm5, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm5\ntileloadd tmm6, [{b1} + {s}*1]\ntdpbusd tmm1, tmm4, tmm6\ntileloadd tmm7, [{b2} + {s}*1]\ntdpbusd tmm2, tmm4, tmm7\ntileloadd tmm5, [{b3} + {s}*1]\ntdpbusd tmm3, tmm4, tmm5 # {a1} {p0} {p1}"
            ),
            (false, 3) => k_loop!(
                kt,
                a0,
                a1,
                bs,
                next,
                "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm5, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm5\ntileloadd tmm6, [{b1} + {s}*1]\ntdpbusd tmm1, tmm4, tmm6\ntileloadd tmm7, [{b2} + {s}*1]\ntdpbusd tmm2, tmm4, tmm7 # {a1} {b3} {p0} {p1}"
            ),
            (false, 2) => k_loop!(
                kt,
                a0,
                a1,
                bs,
                next,
                "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm5, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm5\ntileloadd tmm6, [{b1} + {s}*1]\ntdpbusd tmm1, tmm4, tmm6 # {a1} {b2} {b3} {p0} {p1}"
            ),
            (false, _) => k_loop!(
                kt,
                a0,
                a1,
                bs,
                next,
                "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm5, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm5 # {a1} {b1} {b2} {b3} {p0} {p1}"
            ),
        }
        let t = c.0.as_mut_ptr();
        // SAFETY: `c` holds 1024 i32; with `ldt` columns (32 for 2×2, 64 for 1×4) every tile
        // stored here (16 rows of 64 bytes at row stride 4·ldt) lies inside it. Storing a tile
        // that was not used this step writes zeros or stale sums the epilogue never reads.
        unsafe {
            let (t1, t2, t3) = if blk.two {
                (
                    t.add(NR),
                    t.add(TILE_ROWS * ldt),
                    t.add(TILE_ROWS * ldt + NR),
                )
            } else {
                (t.add(NR), t.add(2 * NR), t.add(3 * NR))
            };
            store_accumulators([t, t1, t2, t3], 4 * ldt);
        }
        super::avx512::epilogue(&c.0, ldt, rows, row0, blk.p * NR, cols, epi, out);
    }
    // SAFETY: releases the tile state configured above.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// Partial sums of the weight-stationary path: [`KB_ROWS`] rows (plus one row block, where the
/// unused tiles of a last single row block are stored) × 32 columns.
#[repr(C, align(64))]
struct KScratch([i32; (KB_ROWS + TILE_ROWS) * 2 * NR]);

/// One k-step's tile loads and products (an asm template: `{a0}`/`{a1}` the row blocks' `A` tiles,
/// `{b0}`/`{b1}` the panels' `B` tiles, `{s}` the row stride) for a pair of row blocks (`two`) or
/// one, and a pair of panels (`two_p`) or one; accumulators as in the 2×2 loop of [`gemm_amx`].
macro_rules! kb_step {
    (true, true) => {
        "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm6, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm7, [{b1} + {s}*1]\ntdpbusd tmm1, tmm4, tmm7\ntileloadd tmm5, [{a1} + {s}*1]\ntdpbusd tmm2, tmm5, tmm6\ntdpbusd tmm3, tmm5, tmm7"
    };
    (true, false) => {
        "tileloadd tmm6, [{b0} + {s}*1]\ntileloadd tmm4, [{a0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm5, [{a1} + {s}*1]\ntdpbusd tmm2, tmm5, tmm6 # {b1}"
    };
    (false, true) => {
        "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm6, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm7, [{b1} + {s}*1]\ntdpbusd tmm1, tmm4, tmm7 # {a1}"
    };
    (false, false) => {
        "tileloadd tmm4, [{a0} + {s}*1]\ntileloadd tmm6, [{b0} + {s}*1]\ntdpbusd tmm0, tmm4, tmm6 # {a1} {b1}"
    };
}

/// The weight-stationary, k-blocked AMX GEMM, for `k` beyond [`KB_MIN_STEPS`] k-steps. Passes of up
/// to [`KB_ROWS`] rows; in each, for every pair of panels and every k-block of [`KC_STEPS`] steps,
/// all row pairs of the pass meet the panels' k-slice (16 KiB, kept in L1 after the first pair
/// brings it in) while their activations stream from L2. The 2×2 accumulators are carried across
/// k-blocks through a scratch in L1 (tile stores and loads at k-block boundaries; the sums are
/// exact, so the blocking changes no bit), and the epilogue runs once per panel pair and pass.
///
/// Measured on the development machine against the row-pair loop over the whole `k`, each
/// operand tile of which streams from L2 (about 64 B per cycle at the tile unit's rate), this path
/// loads half the tiles from L1.
///
/// # Safety
/// The CPU must support AMX-TILE/AMX-INT8 and the process must hold the tile-data permission;
/// `m` and `n` are positive (the buffer sizes are asserted).
// Not inlined: its 34 KiB scratch would otherwise enlarge (and stack-probe) every call's frame.
#[inline(never)]
unsafe fn gemm_kblocked(
    a: &[u8],
    lda: usize,
    m: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    let (kt, blocks, panels, pstride) = tile_counts(a, lda, m, w);
    assert!(m > 0 && w.n > 0);
    let cfg = TileConfig::new();
    let mut c = KScratch([0; (KB_ROWS + TILE_ROWS) * 2 * NR]);
    let (ap, wp) = (a.as_ptr(), w.packed().as_ptr());
    let block_bytes = TILE_ROWS * lda;
    // Scratch row stride: 32 columns of i32.
    let ldc = 2 * NR;
    let group = KB_ROWS / TILE_ROWS;
    // SAFETY: `cfg` is a valid 64-byte palette-1 configuration.
    unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
    for g0 in (0..blocks).step_by(group) {
        let g1 = (g0 + group).min(blocks);
        for p in (0..panels).step_by(2) {
            let two_p = p + 1 < panels;
            let b0 = wp.wrapping_add(p * pstride);
            let b1 = b0.wrapping_add(pstride);
            for k0 in (0..kt).step_by(KC_STEPS) {
                let ks = KC_STEPS.min(kt - k0);
                let o0 = k0 * TILE_BYTES;
                // The B tiles the last row pair's prefetches run into: the next k-block's, or the
                // next panel pair's first ones.
                let next = if k0 + ks < kt {
                    o0 + ks * TILE_BYTES
                } else {
                    2 * pstride
                };
                let mut b = g0;
                while b < g1 {
                    let two = g1 - b >= 2;
                    let (first, last) = (b == g0, b + 2 >= g1);
                    let c0 = c.0.as_mut_ptr().wrapping_add((b - g0) * TILE_ROWS * ldc);
                    let c1 = c0.wrapping_add(NR);
                    let c2 = c0.wrapping_add(TILE_ROWS * ldc);
                    let c3 = c2.wrapping_add(NR);
                    // SAFETY: the four 16-row tiles at c0..c3 (row stride 4·ldc bytes) lie inside
                    // the scratch: row block b - g0 + 1 <= group exists (the scratch has one
                    // block more than KB_ROWS); at k0 > 0 they hold the sums stored below.
                    unsafe {
                        if k0 == 0 {
                            asm!(
                                "tilezero tmm0",
                                "tilezero tmm1",
                                "tilezero tmm2",
                                "tilezero tmm3",
                                options(nostack, nomem)
                            );
                        } else {
                            asm!(
                                "tileloadd tmm0, [{c0} + {s}*1]",
                                "tileloadd tmm1, [{c1} + {s}*1]",
                                "tileloadd tmm2, [{c2} + {s}*1]",
                                "tileloadd tmm3, [{c3} + {s}*1]",
                                c0 = in(reg) c0,
                                c1 = in(reg) c1,
                                c2 = in(reg) c2,
                                c3 = in(reg) c3,
                                s = in(reg) 4 * ldc,
                                options(nostack, readonly)
                            );
                        }
                    }
                    let a0 = ap.wrapping_add(b * block_bytes + o0);
                    let a1 = a0.wrapping_add(block_bytes);
                    for t in 0..ks {
                        let o = o0 + t * TILE_BYTES;
                        let ahead = t + PREFETCH_STEPS;
                        // The first row pair brings the k-slice into L1; the last one the next.
                        let pf = if ahead < ks && first {
                            Some(o0 + ahead * TILE_BYTES)
                        } else if ahead >= ks && last {
                            Some(next + (ahead - ks) * TILE_BYTES)
                        } else {
                            None
                        };
                        if let Some(q) = pf {
                            // SAFETY: prefetches never fault and write nothing.
                            unsafe {
                                asm!(
                                    concat!(prefetch_tiles!()),
                                    p0 = in(reg) b0.wrapping_add(q),
                                    p1 = in(reg) b1.wrapping_add(q),
                                    options(nostack, readonly)
                                )
                            };
                        }
                        let ta0 = a0.wrapping_add(t * TILE_BYTES);
                        let ta1 = a1.wrapping_add(t * TILE_BYTES);
                        let (tb0, tb1) = (b0.wrapping_add(o), b1.wrapping_add(o));
                        macro_rules! step {
                            ($two:tt, $two_p:tt) => {
                                asm!(
                                    kb_step!($two, $two_p),
                                    a0 = in(reg) ta0,
                                    a1 = in(reg) ta1,
                                    b0 = in(reg) tb0,
                                    b1 = in(reg) tb1,
                                    s = in(reg) KT,
                                    options(nostack, readonly)
                                )
                            };
                        }
                        // SAFETY: gemm_amx asserted that every row block's k-tiles (1 KiB at
                        // offset t·1024 of the block) and every panel's lie inside the
                        // activations / packed weights; only the tiles of the row blocks
                        // (`two`) and panels (`two_p`) that exist are loaded.
                        unsafe {
                            match (two, two_p) {
                                (true, true) => step!(true, true),
                                (true, false) => step!(true, false),
                                (false, true) => step!(false, true),
                                (false, false) => step!(false, false),
                            }
                        }
                    }
                    // SAFETY: as for the loads above; storing a tile that was not used writes
                    // zeros or stale sums that the epilogue never reads.
                    unsafe {
                        store_accumulators([c0, c1, c2, c3], 4 * ldc);
                    }
                    b += if two { 2 } else { 1 };
                }
            }
            let row0 = g0 * TILE_ROWS;
            let rows = (m - row0).min((g1 - g0) * TILE_ROWS);
            let cols = (2 * NR).min(w.n - p * NR);
            super::avx512::epilogue(&c.0, ldc, rows, row0, p * NR, cols, epi, out);
        }
    }
    // SAFETY: releases the tile state configured above.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}
