//! A zero-initialized byte buffer aligned to 64 bytes (one cache line, one AMX tile row), so that
//! tile loads of packed weights and activations never straddle cache lines.

/// One cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// Bytes starting on a 64-byte boundary; grows with zeros.
#[derive(Clone, Default)]
pub(crate) struct AlignedBytes {
    lines: Vec<Line>,
    len: usize,
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

impl AlignedBytes {
    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> AlignedBytes {
        AlignedBytes {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// Makes the buffer `len` bytes long, keeping the contents and zero-filling any growth.
    pub(crate) fn resize(&mut self, len: usize) {
        self.lines.resize(len.div_ceil(64), Line([0; 64]));
        self.len = len;
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `Line` is 64 plain bytes without padding, the vector holds at least `len` bytes
        // (`lines.len() == len.div_ceil(64)`), and the borrow of `self` keeps them alive and unaliased.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the exclusive borrow of `self` makes the slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes as `i8`.
    pub(crate) fn as_i8(&self) -> &[i8] {
        let b = self.as_slice();
        // SAFETY: `i8` and `u8` have the same size and alignment and every bit pattern is valid.
        unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) }
    }

    /// The bytes as `i8`, mutably.
    pub(crate) fn as_mut_i8(&mut self) -> &mut [i8] {
        let b = self.as_mut_slice();
        // SAFETY: as in `as_i8`; the exclusive borrow carries over.
        unsafe { std::slice::from_raw_parts_mut(b.as_mut_ptr().cast::<i8>(), b.len()) }
    }
}
