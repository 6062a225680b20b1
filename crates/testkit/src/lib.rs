//! Test-only helpers: where `../shared` is, and typed reads of fixture tensors.
//!
//! `shared/` sits beside the project checkout (`../shared` from the repository root). Tests find it by
//! walking up from the crate's manifest directory, or from `QUANTREC_SHARED` when that is set.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

/// The `shared/` directory, found from `QUANTREC_SHARED` or by walking up from `manifest_dir`.
/// Panics with a clear message when it is absent (tests need it).
pub fn shared_dir(manifest_dir: &str) -> PathBuf {
    if let Ok(p) = std::env::var("QUANTREC_SHARED") {
        return PathBuf::from(p);
    }
    let mut dir = Some(Path::new(manifest_dir));
    while let Some(d) = dir {
        let candidate = d.join("shared");
        if candidate.join("fixtures").is_dir() {
            return candidate;
        }
        dir = d.parent();
    }
    panic!("no shared/ directory with fixtures/ above {manifest_dir}; set QUANTREC_SHARED")
}

/// Path of `shared/fixtures/<name>`.
pub fn fixture(manifest_dir: &str, name: &str) -> PathBuf {
    shared_dir(manifest_dir).join("fixtures").join(name)
}

/// The bytes of a whole file (panics with the path on failure).
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A tensor read from a safetensors file: shape and raw little-endian bytes.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Raw bytes.
    pub bytes: Vec<u8>,
}

impl Tensor {
    /// The values as f32 (F32 tensors only).
    pub fn f32s(&self) -> Vec<f32> {
        assert_eq!(
            self.dtype,
            Dtype::F32,
            "tensor is {:?}, not F32",
            self.dtype
        );
        self.bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// The values as i64 (I64 tensors only).
    pub fn i64s(&self) -> Vec<i64> {
        assert_eq!(
            self.dtype,
            Dtype::I64,
            "tensor is {:?}, not I64",
            self.dtype
        );
        self.bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
}

/// Every tensor of a safetensors file, by name.
pub fn tensors(path: &Path) -> std::collections::BTreeMap<String, Tensor> {
    let bytes = read(path);
    let st = SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                Tensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                },
            )
        })
        .collect()
}
