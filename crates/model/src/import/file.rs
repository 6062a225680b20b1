//! `quantrec import` as a library call: a state dict file (and optional overrides and plan files)
//! → a checked quantrec artifact with provenance.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ImportOverrides, import_state_dict};
use crate::artifact::{self, Provenance, sha256_hex};
use crate::config::ModelConfig;
use crate::state_dict::StateDict;
use crate::{Model, ModelError, Plan, Result};

/// What [`import_to_artifact`] reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportFileOptions {
    /// The state dict (.safetensors) with facebookresearch/dlrm or TorchRec module names.
    pub state_dict: PathBuf,
    /// The artifact to write.
    pub output: PathBuf,
    /// JSON [`ImportOverrides`] for what the weights cannot tell.
    pub config: Option<PathBuf>,
    /// A plan JSON to store the model in (all f32 when `None`).
    pub plan: Option<PathBuf>,
}

/// What [`import_to_artifact`] did: the architecture it inferred and the file it wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ImportSummary {
    /// The state dict read.
    pub source: PathBuf,
    /// The artifact written.
    pub output: PathBuf,
    /// The inferred architecture.
    pub config: ModelConfig,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))
}

/// Imports `options.state_dict` with the overrides and plan of `options`, checks that the model
/// builds with the plan, and writes the artifact (provenance: the source file, its SHA-256 and the
/// command). Nothing is written when any step fails.
pub fn import_to_artifact(options: &ImportFileOptions) -> Result<ImportSummary> {
    let src = &options.state_dict;
    let bytes = std::fs::read(src).map_err(|e| ModelError::io(src, e))?;
    let overrides = match &options.config {
        Some(p) => ImportOverrides::from_json(&read_text(p)?)?,
        None => ImportOverrides::default(),
    };
    let sd = StateDict::from_bytes(&src.display().to_string(), &bytes)?;
    let imp = import_state_dict(sd, &overrides)?;
    let plan = match &options.plan {
        Some(p) => Plan::from_json(&read_text(p)?)?,
        None => Plan::f32(&imp.config),
    };
    // Building the model checks that the plan can run before anything is written.
    Model::from_parts(&imp.config, &imp.weights, &plan)?;
    let flag = |name: &str, p: &Option<PathBuf>| {
        p.as_ref()
            .map_or(String::new(), |p| format!(" --{name} {}", p.display()))
    };
    let provenance = Provenance {
        source_file: Some(src.display().to_string()),
        source_sha256: Some(sha256_hex(&bytes)),
        notes: Some(format!(
            "quantrec import{}{}",
            flag("config", &options.config),
            flag("plan", &options.plan)
        )),
        ..Provenance::default()
    };
    artifact::save(
        &options.output,
        &imp.config,
        &imp.weights,
        &plan,
        &provenance,
    )?;
    Ok(ImportSummary {
        source: src.clone(),
        output: options.output.clone(),
        config: imp.config,
    })
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {}: {}",
            self.source.display(),
            self.config.describe()
        )?;
        write!(f, "wrote {}", self.output.display())
    }
}
