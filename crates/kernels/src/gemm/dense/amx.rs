//! bf16 on AMX (`tdpbf16ps`): 32×32 output blocks held in four 16×16 f32 tiles over the whole of `k`.
//!
//! AMX is used at the Vnni level when the CPU has AMX-TILE and AMX-BF16, the OS enables the tile state
//! (XCR0 bits 17–18) and, on Linux, grants this process permission (`arch_prctl(ARCH_REQ_XCOMP_PERM)`).
//! The tile instructions are not available as stable intrinsics, so they are written as inline
//! assembly. `tdpbf16ps` multiplies bf16 pairs exactly and accumulates in f32 like `vdpbf16ps` (so the
//! same reassociation bound holds; bf16 denormal inputs count as zero, denormal sums are flushed).
//!
//! Layout: weight panels of 32 columns with k-pair steps padded to a multiple of 16 (zeros); the B
//! tiles are the panel's left and right 16 columns (row stride 128 bytes). Activations are rounded into
//! pair rows padded to a multiple of 16 pairs (zeros) with 16 spare rows below `m`, so 16-row A tiles
//! never read outside the scratch; results of spare rows are discarded.

use std::arch::asm;
use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::act::{self, Bf16Layout};
use super::{ActFeed, DenseOps, Kernel, Tile};

/// Rows per block (two A tiles).
const MR: usize = 32;
/// Columns per block (two B tiles).
const NR: usize = 32;
/// k-pairs per tile step.
pub(crate) const PAIRS: usize = 16;

/// True when AMX-BF16 can be used by this process (checked and requested once).
pub(crate) fn available() -> bool {
    static AMX: OnceLock<bool> = OnceLock::new();
    *AMX.get_or_init(|| crate::gemm::amx_state::usable(crate::gemm::amx_state::AMX_BF16))
}

/// Installs the AMX bf16 kernel (only called when [`available`]) for every batch size: `tdpbf16ps`
/// and `vdpbf16ps` round differently, so handing small batches to `vdpbf16ps` (as this kernel once
/// did for m ≤ 2) made a row's result depend on the size of its batch.
pub(super) fn install(ops: &mut DenseOps) {
    let small = None;
    ops.bf16 = Some(Kernel {
        nr: NR,
        mr: MR,
        kc: usize::MAX,
        step_multiple: PAIRS,
        small,
        widen: None,
        tile: bf16_block,
        act: ActFeed::Bf16(Bf16Layout::PairsTiled, act::tiled_avx512),
    });
}

/// Palette 1, tiles 0..8 all 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = 16;
        t += 1;
    }
    TileConfig(c)
};

/// One 32×32 (or 16×32) block over all k-pairs of the tile.
///
/// # Safety
/// The [`TileFn`](super::TileFn) contract with the AMX layout: `t.kc` a multiple of 16, activation rows
/// readable up to 16 (h ≤ 16) or 32 rows from `t.a`; AMX usable ([`available`]) and AVX-512F present.
#[target_feature(enable = "avx512f")]
unsafe fn bf16_block(t: &Tile, h: usize) {
    // Every row the epilogue reads (rows < h) is written by the tile stores below.
    let mut buf = std::mem::MaybeUninit::<[[f32; NR]; MR]>::uninit();
    let a = t.a.cast::<u8>();
    let lda = t.lda * 4;
    let lower = a.wrapping_add(16 * lda);
    let blocks = t.kc / PAIRS;
    let bufp = buf.as_mut_ptr().cast::<u8>();
    let rows = buf.as_ptr().cast::<[f32; NR]>();
    // SAFETY: AMX is enabled for this process (caller); every tile load reads 16 rows of 64 bytes
    // inside the activation scratch (rows padded by 16, pairs padded to 16) or the panel (steps padded
    // to 16, row stride 128 = 32 columns × 4 bytes); stores write `buf` (32 rows × 128 bytes). The
    // asm touches only tile registers and the given general registers; tiles are released at the end.
    unsafe {
        asm!("ldtilecfg [{}]", "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
        for kb in 0..blocks {
            let ak = a.add(kb * 64);
            let wk = t.w.add(kb * PAIRS * NR * 4);
            if h > 16 {
                asm!(
                    "tileloadd tmm4, [{a} + {lda}]",
                    "tileloadd tmm5, [{l} + {lda}]",
                    "tileloadd tmm6, [{w} + {ldw}]",
                    "tileloadd tmm7, [{w2} + {ldw}]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a = in(reg) ak, l = in(reg) lower.add(kb * 64), lda = in(reg) lda,
                    w = in(reg) wk, w2 = in(reg) wk.add(64), ldw = in(reg) NR * 4,
                    options(nostack, readonly));
            } else {
                asm!(
                    "tileloadd tmm4, [{a} + {lda}]",
                    "tileloadd tmm6, [{w} + {ldw}]",
                    "tileloadd tmm7, [{w2} + {ldw}]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    a = in(reg) ak, lda = in(reg) lda,
                    w = in(reg) wk, w2 = in(reg) wk.add(64), ldw = in(reg) NR * 4,
                    options(nostack, readonly));
            }
        }
        if h > 16 {
            asm!(
                "tilestored [{b} + {s}], tmm0",
                "tilestored [{b2} + {s}], tmm1",
                "tilestored [{b3} + {s}], tmm2",
                "tilestored [{b4} + {s}], tmm3",
                "tilerelease",
                b = in(reg) bufp, b2 = in(reg) bufp.add(64), b3 = in(reg) bufp.add(16 * NR * 4),
                b4 = in(reg) bufp.add(16 * NR * 4 + 64), s = in(reg) NR * 4,
                options(nostack));
        } else {
            // One A tile: only the upper 16 rows of the block hold results.
            asm!(
                "tilestored [{b} + {s}], tmm0",
                "tilestored [{b2} + {s}], tmm1",
                "tilerelease",
                b = in(reg) bufp, b2 = in(reg) bufp.add(64), s = in(reg) NR * 4,
                options(nostack));
        }
    }
    // SAFETY: the CPU has AVX-512 (the caller's contract).
    let (m0, m1) = unsafe { super::tile::masks::<__m512>(t.nv) };
    let zero = _mm512_setzero_ps();
    // SAFETY: masked loads/stores touch only the nv valid columns of the bias and of rows i < h of
    // the output tile (caller's contract); rows i < h of `buf` (32 floats each) were written by the
    // tile stores above.
    unsafe {
        let (b0, b1) = if t.bias.is_null() {
            (zero, zero)
        } else {
            (
                _mm512_maskz_loadu_ps(m0, t.bias),
                _mm512_maskz_loadu_ps(m1, t.bias.wrapping_add(16)),
            )
        };
        for i in 0..h {
            let row = rows.add(i).cast::<f32>();
            let c = t.c.wrapping_add(i * t.ldc);
            let (mut v0, mut v1) = (
                _mm512_add_ps(_mm512_loadu_ps(row), b0),
                _mm512_add_ps(_mm512_loadu_ps(row.add(16)), b1),
            );
            if t.bias.is_null() {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c.wrapping_add(16)));
            }
            if t.relu {
                v0 = _mm512_max_ps(v0, zero);
                v1 = _mm512_max_ps(v1, zero);
            }
            _mm512_mask_storeu_ps(c, m0, v0);
            _mm512_mask_storeu_ps(c.wrapping_add(16), m1, v1);
        }
    }
}
