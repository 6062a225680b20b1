//! Test-only helpers: where `../shared` is, and typed reads of fixture tensors.
//!
//! `shared/` sits beside the project checkout (`../shared` from the repository root). Tests find it by
//! walking up from the crate's manifest directory, or from `QUANTREC_SHARED` when that is set.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

/// The `shared/` directory, found from `QUANTREC_SHARED` or by walking up from `manifest_dir`.
/// Panics with a message saying where the fixtures are expected when they are absent (tests need
/// them): see [`locate_shared`] for the non-panicking form.
pub fn shared_dir(manifest_dir: &str) -> PathBuf {
    locate_shared(
        manifest_dir,
        std::env::var_os("QUANTREC_SHARED").map(PathBuf::from),
    )
    .unwrap_or_else(|message| panic!("{message}"))
}

/// The `shared/` directory: `override_dir` when given (it must hold `fixtures/`), else the first
/// `shared/` with a `fixtures/` folder in `manifest_dir` or one of its ancestors. The error says
/// where the fixtures are expected: `../shared/fixtures` beside the workspace root.
pub fn locate_shared(manifest_dir: &str, override_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = override_dir {
        if p.join("fixtures").is_dir() {
            return Ok(p);
        }
        return Err(format!(
            "QUANTREC_SHARED/fixtures not found at {}: cargo test needs the shared fixtures \
             (QUANTREC_SHARED names the shared/ directory; see README)",
            absolute(&p.join("fixtures")).display()
        ));
    }
    let start = absolute(Path::new(manifest_dir));
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        let candidate = d.join("shared");
        if candidate.join("fixtures").is_dir() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    // The workspace root is the first ancestor holding a Cargo.lock; the fixtures live beside it.
    let root = start
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(&start);
    let expected = root
        .parent()
        .unwrap_or(root)
        .join("shared")
        .join("fixtures");
    Err(format!(
        "../shared/fixtures not found at {}: cargo test needs the shared fixtures beside the repo \
         (see README; or set QUANTREC_SHARED to a shared/ directory)",
        expected.display()
    ))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
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

/// A safetensors buffer with the given header JSON and `data` bytes (for tests of malformed files:
/// nothing is checked).
pub fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_fixture_folder_says_where_it_is_expected() {
        let dir = std::env::temp_dir().join(format!("testkit-nofixtures-{}", std::process::id()));
        let repo = dir.join("repo");
        std::fs::create_dir_all(repo.join("crates/x")).unwrap();
        std::fs::write(repo.join("Cargo.lock"), "").unwrap();
        let err = locate_shared(repo.join("crates/x").to_str().unwrap(), None).unwrap_err();
        let expected = dir.join("shared").join("fixtures");
        assert!(
            err.starts_with(&format!(
                "../shared/fixtures not found at {}",
                expected.display()
            )),
            "{err}"
        );
        assert!(err.contains("see README"), "{err}");
        let err = locate_shared("/", Some(dir.join("nowhere"))).unwrap_err();
        assert!(
            err.contains("QUANTREC_SHARED/fixtures not found at"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shared_fixtures_beside_this_repo_are_found() {
        let dir = locate_shared(env!("CARGO_MANIFEST_DIR"), None).unwrap();
        assert!(dir.join("fixtures").is_dir());
    }
}
