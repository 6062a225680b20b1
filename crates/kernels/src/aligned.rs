//! [`AlignedF32`]: a growable f32 buffer whose contents start on a 64-byte (cache-line) boundary.
//!
//! Output rows written with 512-bit stores run faster when they do not straddle cache lines: a
//! pooled 128-wide embedding row written to a 16-byte-aligned `Vec<f32>` (what the allocator gives
//! large buffers) splits every store across two lines and measured about 25% slower than the same
//! row at a line boundary. PyTorch allocates tensors 64-byte aligned; callers that own their output
//! buffers (the model's forward pass, benchmarks) use this type to get the same.
//!
//! Safe code only: the buffer over-allocates one cache line and starts its slice at the first
//! aligned element.

/// f32 elements per cache line.
const LINE_FLOATS: usize = 16;

/// A growable, zero-initialised f32 buffer starting on a 64-byte boundary.
#[derive(Clone, Debug, Default)]
pub struct AlignedF32 {
    raw: Vec<f32>,
    start: usize,
    len: usize,
}

impl AlignedF32 {
    /// An empty buffer.
    pub fn new() -> Self {
        AlignedF32::default()
    }

    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        let mut b = AlignedF32::new();
        b.resize(len);
        b
    }

    /// Sets the length to `len`. Elements that existed before keep their values; new ones are zero.
    /// Growing past the capacity reallocates (and moves the contents to the new aligned start);
    /// shrinking and re-growing within the capacity does not allocate.
    pub fn resize(&mut self, len: usize) {
        if self.start + len > self.raw.len() {
            let mut raw = vec![0f32; len + LINE_FLOATS];
            let start = aligned_start(&raw);
            let keep = self.len.min(len);
            raw[start..start + keep].copy_from_slice(&self.raw[self.start..self.start + keep]);
            self.raw = raw;
            self.start = start;
        } else if len > self.len {
            self.raw[self.start + self.len..self.start + len].fill(0.0);
        }
        self.len = len;
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements.
    pub fn as_slice(&self) -> &[f32] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The elements, writable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

impl std::ops::Deref for AlignedF32 {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for AlignedF32 {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

/// Index of the first element of `raw` at a 64-byte boundary (`raw` holds at least one line more
/// than it needs, and f32 buffers are 4-byte aligned, so the boundary is within 16 elements).
fn aligned_start(raw: &[f32]) -> usize {
    let addr = raw.as_ptr() as usize;
    let misalign = addr % 64;
    if misalign == 0 {
        0
    } else {
        (64 - misalign) / 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_aligned(b: &AlignedF32) -> bool {
        b.is_empty() || (b.as_ptr() as usize).is_multiple_of(64)
    }

    #[test]
    fn every_length_starts_on_a_line_and_keeps_its_contents() {
        let mut b = AlignedF32::new();
        assert!(b.is_empty());
        for len in [1usize, 3, 16, 17, 100, 5, 1000, 0, 4097] {
            let before: Vec<f32> = b.to_vec();
            b.resize(len);
            assert_eq!(b.len(), len);
            assert!(is_aligned(&b), "len {len}");
            let keep = before.len().min(len);
            assert_eq!(&b[..keep], &before[..keep]);
            assert!(b[keep..].iter().all(|&v| v == 0.0), "new elements are zero");
            for (i, v) in b.iter_mut().enumerate() {
                *v = (i + len) as f32;
            }
        }
        let z = AlignedF32::zeroed(33);
        assert!(is_aligned(&z) && z.len() == 33 && z.iter().all(|&v| v == 0.0));
    }
}
