//! AMX-INT8 GEMM (`tdpbusd` on 16×64-byte tiles), used at level Vnni when the CPU has AMX-TILE and
//! AMX-INT8 and Linux grants the process the tile-data state. u8·s8 products are summed exactly into
//! i32, like `vpdpbusd`.
//!
//! A weight panel's 4-deep groups (64 bytes: 16 columns × 4 codes) are exactly the rows of an AMX
//! `B` tile, so 16 consecutive groups (1 KiB) load as one tile with stride 64. Activations are plain
//! row-major with rows padded with zero codes to a multiple of 64 bytes, one `A` tile per 16 rows;
//! row blocks of 32 are the outer loop (their activations stay in L1), weight panels stream past.
//! Each step multiplies 2 `A` × 2 `B` tiles into 4 `C` accumulators (32 rows × 32 columns). The last
//! k-tile may read up to 15 groups past a panel (into the next panel, or the zero padding at the end
//! of the packed weights): those weights meet zero activation codes and add nothing. Rows beyond the
//! last multiple of 16, and calls with fewer than [`AMX_MIN_M`] rows, run on the AVX512-VNNI kernel.

use std::arch::asm;
use std::sync::OnceLock;

use super::avx512::vnni;
use super::driver::{Epi, EpiFn, Out, rows_of};
use super::{Int8Weights, KG, NR, WEIGHT_PAD};

/// Fewest rows for which the AMX kernel is used.
pub(crate) const AMX_MIN_M: usize = 16;

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

/// Activation layout `(block height, row stride)` for `m` rows of `kp` codes.
pub(crate) fn a_layout(m: usize, kp: usize) -> (usize, usize) {
    if m >= AMX_MIN_M {
        (1, kp.next_multiple_of(64))
    } else {
        vnni::a_layout(m, kp)
    }
}

/// The AMX GEMM (rows in multiples of 16) plus the VNNI kernel for the rest; see the module docs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    a: &[u8],
    lda: usize,
    m: usize,
    h: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    if h != 1 || m < AMX_MIN_M || !lda.is_multiple_of(64) {
        return vnni::gemm(a, lda, m, h, w, epi, epi_fn, out);
    }
    let m16 = m / 16 * 16;
    assert!(usable(), "AMX kernel installed without AMX permission");
    // SAFETY: `usable()` established CPU support and the OS permission for AMX tile data.
    unsafe { amx_rows(a, lda, m16, w, epi, epi_fn, out) };
    if m16 < m {
        let n = epi.n;
        let mut rest = rows_of(out, m16 * n, m * n);
        vnni::gemm(&a[m16 * lda..], lda, m - m16, 1, w, epi, epi_fn, &mut rest);
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
            c[48 + t] = 16;
        }
        TileConfig(c)
    }
}

/// Accumulates `C[rows × cols] = A · B` over all k-tiles into tmm0..tmm3 (tmm0: rows 0–15 × panel 0,
/// tmm1: rows 0–15 × panel 1, tmm2: rows 16–31 × panel 0, tmm3: rows 16–31 × panel 1).
macro_rules! k_loop {
    ($ktiles:expr, $a0:expr, $a1:expr, $b0:expr, $b1:expr, $lda:expr, $body:literal) => {
        for kt in 0..$ktiles {
            // SAFETY: the caller checked that every A tile (16 rows of 64 bytes at stride lda) and B
            // tile (1 KiB) read here lies inside the activation buffer / padded weight buffer.
            unsafe {
                asm!(
                    $body,
                    a0 = in(reg) $a0.wrapping_add(kt * 64),
                    a1 = in(reg) $a1.wrapping_add(kt * 64),
                    b0 = in(reg) $b0.wrapping_add(kt * 1024),
                    b1 = in(reg) $b1.wrapping_add(kt * 1024),
                    lda = in(reg) $lda,
                    s64 = in(reg) 64usize,
                    options(nostack, readonly)
                );
            }
        }
    };
}

/// Rows `0..m16` (a multiple of 16) with AMX tiles.
///
/// # Safety
/// The CPU must support AMX-TILE/AMX-INT8 and the process must hold the tile-data permission.
unsafe fn amx_rows(
    a: &[u8],
    lda: usize,
    m16: usize,
    w: &Int8Weights,
    epi: &Epi<'_>,
    epi_fn: EpiFn,
    out: &mut Out<'_>,
) {
    let groups = w.kp / KG;
    let pstride = groups * NR * KG;
    let panels = w.n.div_ceil(NR);
    let ktiles = lda / 64;
    assert!(
        m16.is_multiple_of(16) && a.len() >= m16 * lda && lda.is_multiple_of(64) && lda >= w.kp
    );
    // The last k-tile of the last panel ends at most WEIGHT_PAD bytes past the panels.
    assert!(ktiles * 16 <= groups + 15 && w.packed.len() >= panels * pstride + WEIGHT_PAD);
    let cfg = TileConfig::new();
    let mut tile = [0i32; 32 * 32];
    let (ap, wp) = (a.as_ptr(), w.packed.as_ptr());
    // SAFETY: `cfg` is a valid 64-byte palette-1 configuration.
    unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
    // Row blocks outside: a block's activations (32 rows) stay in L1 while the weight panels stream
    // past sequentially.
    let mut i0 = 0;
    while i0 < m16 {
        let nr = (m16 - i0).min(32);
        let a0 = ap.wrapping_add(i0 * lda);
        let a1 = ap.wrapping_add((i0 + 16) * lda);
        let mut p0 = 0;
        while p0 < panels {
            let np = (panels - p0).min(2);
            let cols = (np * NR).min(w.n - p0 * NR);
            let b0 = wp.wrapping_add(p0 * pstride);
            let b1 = wp.wrapping_add((p0 + 1) * pstride);
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
            match (nr == 32, np == 2) {
                (true, true) => k_loop!(
                    ktiles,
                    a0,
                    a1,
                    b0,
                    b1,
                    lda,
                    "tileloadd tmm4, [{a0} + {lda}*1]\ntileloadd tmm6, [{b0} + {s64}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm7, [{b1} + {s64}*1]\ntdpbusd tmm1, tmm4, tmm7\ntileloadd tmm5, [{a1} + {lda}*1]\ntdpbusd tmm2, tmm5, tmm6\ntdpbusd tmm3, tmm5, tmm7"
                ),
                (true, false) => k_loop!(
                    ktiles,
                    a0,
                    a1,
                    b0,
                    b1,
                    lda,
                    "tileloadd tmm4, [{a0} + {lda}*1]\ntileloadd tmm6, [{b0} + {s64}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm5, [{a1} + {lda}*1]\ntdpbusd tmm2, tmm5, tmm6  # {b1}"
                ),
                (false, true) => k_loop!(
                    ktiles,
                    a0,
                    a1,
                    b0,
                    b1,
                    lda,
                    "tileloadd tmm4, [{a0} + {lda}*1]\ntileloadd tmm6, [{b0} + {s64}*1]\ntdpbusd tmm0, tmm4, tmm6\ntileloadd tmm7, [{b1} + {s64}*1]\ntdpbusd tmm1, tmm4, tmm7  # {a1}"
                ),
                (false, false) => k_loop!(
                    ktiles,
                    a0,
                    a1,
                    b0,
                    b1,
                    lda,
                    "tileloadd tmm4, [{a0} + {lda}*1]\ntileloadd tmm6, [{b0} + {s64}*1]\ntdpbusd tmm0, tmm4, tmm6  # {a1} {b1}"
                ),
            }
            let t = tile.as_mut_ptr();
            // SAFETY: `tile` holds 32 rows × 32 i32 (128-byte stride); each store writes 16 rows of
            // 64 bytes inside it.
            unsafe {
                asm!(
                    "tilestored [{t} + {s}*1], tmm0",
                    "tilestored [{t1} + {s}*1], tmm1",
                    "tilestored [{t2} + {s}*1], tmm2",
                    "tilestored [{t3} + {s}*1], tmm3",
                    t = in(reg) t,
                    t1 = in(reg) t.add(16),
                    t2 = in(reg) t.add(16 * 32),
                    t3 = in(reg) t.add(16 * 32 + 16),
                    s = in(reg) 128usize,
                    options(nostack)
                );
            }
            epi_fn(&tile, 32, nr, i0, p0 * NR, cols, epi, out);
            p0 += np;
        }
        i0 += nr;
    }
    // SAFETY: releases the tile state configured above.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}
