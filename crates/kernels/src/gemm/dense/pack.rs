//! Weight packing into column panels for the SIMD micro-kernels.
//!
//! A layer `W` (`n×k`, row-major) becomes `ceil(n / nr)` panels of `nr` output columns. Inside a panel
//! the layout is step-major: for every k-step, `nr` consecutive column entries (zero for columns past
//! `n`), so a micro-kernel reads one contiguous, 64-byte aligned vector row per step. A k-step is one
//! `k` index for f32 and f16 weights and one pair of `k` indices (interleaved, even index in the low
//! half) for bf16, the layout `vdpbf16ps` consumes.

use half::{bf16, f16};

/// One cache line; the unit of [`AlignedBuf`].
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zero-initialised byte buffer whose start is 64-byte aligned.
#[derive(Clone)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

impl AlignedBuf {
    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        AlignedBuf {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// Start of the buffer.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.lines.as_ptr().cast()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Start of the buffer, writable.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast()
    }

    /// The buffer as a slice of `T` (`T` is u16 or u32 here; both divide 64 in size and alignment).
    fn as_mut_slice<T: Copy>(&mut self) -> &mut [T] {
        debug_assert!(64 % std::mem::align_of::<T>() == 0);
        let count = self.len / std::mem::size_of::<T>();
        // SAFETY: the lines are `self.len.div_ceil(64) * 64 >= count * size_of::<T>()` initialised bytes,
        // 64-byte aligned (a multiple of T's alignment), exclusively borrowed through `&mut self`; T is
        // only instantiated with plain integers, for which every bit pattern is valid.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), count) }
    }
}

/// Packed weights of one layer for a panel width.
#[derive(Clone, Debug)]
pub(crate) struct Panels {
    /// The panel data.
    pub(crate) buf: AlignedBuf,
    /// Output columns per panel.
    pub(crate) nr: usize,
    /// k-steps per panel (k, or ceil(k/2) for bf16 pairs).
    pub(crate) steps: usize,
    /// Bytes of one column entry at one step (4 for f32 and bf16 pairs, 2 for f16).
    pub(crate) entry_bytes: usize,
}

impl Panels {
    /// Number of panels.
    pub(crate) fn count(&self, n: usize) -> usize {
        n.div_ceil(self.nr)
    }

    /// Bytes of one k-step of one panel.
    pub(crate) fn step_bytes(&self) -> usize {
        self.nr * self.entry_bytes
    }

    /// Bytes of a whole panel.
    pub(crate) fn panel_bytes(&self) -> usize {
        self.steps * self.step_bytes()
    }
}

fn pack_with<T: Copy>(
    n: usize,
    steps: usize,
    nr: usize,
    entry: impl Fn(usize, usize) -> T,
) -> Panels {
    let size = std::mem::size_of::<T>();
    let panels = n.div_ceil(nr);
    let mut buf = AlignedBuf::zeroed(panels * steps * nr * size);
    let dst = buf.as_mut_slice::<T>();
    for p in 0..panels {
        let base = p * steps * nr;
        for j in p * nr..n.min((p + 1) * nr) {
            let c = j - p * nr;
            for s in 0..steps {
                dst[base + s * nr + c] = entry(j, s);
            }
        }
    }
    Panels {
        buf,
        nr,
        steps,
        entry_bytes: size,
    }
}

/// f32 weights, one step per `k` index.
pub(crate) fn pack_f32(w: &[f32], n: usize, k: usize, nr: usize) -> Panels {
    pack_with(n, k, nr, |j, s| w[j * k + s].to_bits())
}

/// Rounds to f16 (nearest even) after saturating to ±65504, like FBGEMM's fp16 packing.
pub(crate) fn f16_saturated(v: f32) -> f16 {
    f16::from_f32(v.clamp(-65504.0, 65504.0))
}

/// f16 weights (saturated), one step per `k` index.
pub(crate) fn pack_f16(w: &[f32], n: usize, k: usize, nr: usize) -> Panels {
    pack_with(n, k, nr, |j, s| f16_saturated(w[j * k + s]).to_bits())
}

/// bf16 weights (nearest even), one step per pair of `k` indices: even index in the low 16 bits, a
/// zero high half past an odd `k`, zero pairs up to `steps` (≥ ceil(k/2)).
pub(crate) fn pack_bf16_pairs(w: &[f32], n: usize, k: usize, steps: usize, nr: usize) -> Panels {
    let bits = |j: usize, p: usize| -> u32 {
        if p < k {
            u32::from(bf16::from_f32(w[j * k + p]).to_bits())
        } else {
            0
        }
    };
    pack_with(n, steps, nr, |j, s| {
        bits(j, 2 * s) | (bits(j, 2 * s + 1) << 16)
    })
}
