//! Loading an f32 model from either a quantrec artifact or a PyTorch / TorchRec state dict, and
//! evaluation data from any file the data crate reads.

use std::path::Path;

use quantrec_data::{Schema, SourceSpec};
use quantrec_model::artifact::{Artifact, ArtifactMeta, sha256_hex};
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::{ModelConfig, Weights};

use crate::eval::EvalSet;
use crate::{QuantError, Result};

/// A model as loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The architecture.
    pub config: ModelConfig,
    /// The weights (f32 tables for state dicts and f32 artifacts).
    pub weights: Weights,
    /// The artifact's metadata, when the file was an artifact.
    pub meta: Option<ArtifactMeta>,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// Reads `path` as a quantrec artifact, or else as a state dict to import.
pub fn load_model(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| QuantError::io(path, e))?;
    let sha256 = sha256_hex(&bytes);
    let artifact_err = match Artifact::from_bytes(bytes.clone()) {
        Ok(a) => {
            return Ok(Loaded {
                config: a.meta.config.clone(),
                weights: a.weights(),
                meta: Some(a.meta),
                sha256,
            });
        }
        Err(e) => e,
    };
    let sd = StateDict::from_bytes(&path.display().to_string(), &bytes)?;
    let imp =
        import_state_dict(sd, &ImportOverrides::default()).map_err(|e| QuantError::NotAModel {
            path: path.to_path_buf(),
            artifact: Box::new(artifact_err),
            import: Box::new(e),
        })?;
    Ok(Loaded {
        config: imp.config,
        weights: imp.weights,
        meta: None,
        sha256,
    })
}

/// Reads at most `max_rows` samples of `path` for `config`'s tables (schema: Criteo unless given).
pub fn load_data(
    path: &Path,
    config: &ModelConfig,
    schema: Option<&Path>,
    max_rows: Option<usize>,
) -> Result<EvalSet> {
    let mut spec = SourceSpec::new(config.tables.iter().map(|t| t.rows).collect(), 4096);
    if let Some(s) = schema {
        spec.schema = Some(Schema::from_json_file(s)?);
    }
    EvalSet::from_file(path, &spec, max_rows)
}

/// SHA-256 of a data file (hex).
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| QuantError::io(path, e))?;
    Ok(sha256_hex(&bytes))
}

/// The data files' provenance (path, SHA-256 and rows used of the calibration and evaluation
/// files), as `quantize` and `refresh` record it in an artifact's notes.
pub fn data_provenance(
    calib: &Path,
    calib_rows: usize,
    eval: &Path,
    eval_rows: usize,
) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "calibration": {"file": calib.display().to_string(), "sha256": file_sha256(calib)?, "rows": calib_rows},
        "evaluation": {"file": eval.display().to_string(), "sha256": file_sha256(eval)?, "rows": eval_rows},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::PlanRequest;

    #[test]
    fn unreadable_files_are_io_errors_naming_the_path() {
        let missing = std::env::temp_dir().join("quantrec-load-test-does-not-exist.bin");
        for r in [
            load_model(&missing).map(|_| ()),
            file_sha256(&missing).map(|_| ()),
        ] {
            match r {
                Err(QuantError::Io { path, source }) => {
                    assert_eq!(path, missing);
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                }
                other => panic!("{other:?}"),
            }
        }
        let spec = missing.display().to_string();
        match PlanRequest::parse(&spec) {
            Err(e @ QuantError::PlanSpec { .. }) => {
                assert!(e.to_string().contains("neither auto, a preset"), "{e}");
                assert!(
                    std::error::Error::source(&e).is_some(),
                    "the io error chains"
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
