//! `import_state_dict`, `quantize` and `evaluate`: the library functions `quantrec import`,
//! `quantrec quantize` and `quantrec eval` call, run with the GIL released. Results cross into
//! Python as JSON, which the pure-Python layer turns into report objects.

use std::path::{Path, PathBuf};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use quantrec_model::artifact::{self, Provenance, sha256_hex};
use quantrec_model::import::{ImportOverrides, import_state_dict as import_sd};
use quantrec_model::state_dict::StateDict;
use quantrec_model::{ModelError, Plan};
use quantrec_quant::QuantError;
use quantrec_quant::calibrate::RangeMethod;
use quantrec_quant::eval::{FileEvalOptions, evaluate_file};
use quantrec_quant::load::{file_sha256, load_data, load_model};
use quantrec_quant::plans::summary;
use quantrec_quant::report::search_report::write_report;
use quantrec_quant::search::{Budget, Objective, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize as quantize_model};

use crate::errors::{json_err, model_err, quant_err};

/// Imports a PyTorch / TorchRec state dict (`.safetensors`) and writes the artifact `output`.
/// `overrides` and `plan` are JSON texts.
#[pyfunction]
#[pyo3(signature = (state_dict, output, overrides=None, plan=None))]
pub fn import_state_dict(
    py: Python<'_>,
    state_dict: PathBuf,
    output: PathBuf,
    overrides: Option<String>,
    plan: Option<String>,
) -> PyResult<()> {
    py.detach(|| {
        let run = || -> Result<(), ModelError> {
            let bytes = std::fs::read(&state_dict).map_err(|e| ModelError::io(&state_dict, e))?;
            let overrides = overrides
                .as_deref()
                .map(ImportOverrides::from_json)
                .transpose()?
                .unwrap_or_default();
            let name = state_dict.display().to_string();
            let imported = import_sd(StateDict::from_bytes(&name, &bytes)?, &overrides)?;
            let plan = match plan.as_deref() {
                Some(json) => Plan::from_json(json)?,
                None => Plan::f32(&imported.config),
            };
            // Building the model checks that the plan can run before anything is written.
            quantrec_model::Model::from_parts(&imported.config, &imported.weights, &plan)?;
            let provenance = Provenance {
                source_file: Some(name.clone()),
                source_sha256: Some(sha256_hex(&bytes)),
                notes: Some("quantrec.import_state_dict (Python)".into()),
                ..Provenance::default()
            };
            artifact::save(
                &output,
                &imported.config,
                &imported.weights,
                &plan,
                &provenance,
            )?;
            Ok(())
        };
        run().map_err(model_err)
    })
}

/// The search settings of [`quantize`], as Python passes them.
fn search_options(
    budget_ne: f64,
    budget_auc: Option<f64>,
    objective: &str,
    table_rounding: &str,
    latency_batch: usize,
    sensitivity_rows: usize,
) -> PyResult<SearchOptions> {
    let objective = match objective {
        "bytes" => Objective::Bytes,
        "latency" => Objective::Latency,
        "both" => Objective::Both,
        other => {
            return Err(PyValueError::new_err(format!(
                "objective {other:?}: expected 'bytes', 'latency' or 'both'"
            )));
        }
    };
    let (refit, curvature) = match table_rounding {
        "pytorch" => (false, false),
        "refit" => (true, false),
        "curvature" => (false, true),
        "refit-curvature" => (true, true),
        other => {
            return Err(PyValueError::new_err(format!(
                "table_rounding {other:?}: expected 'pytorch', 'refit', 'curvature' or 'refit-curvature'"
            )));
        }
    };
    Ok(SearchOptions {
        budget: budget_auc.map_or(Budget::Ne(budget_ne), Budget::Auc),
        objective,
        latency_batch,
        presets: true,
        sensitivity_rows,
        table_refit: refit,
        table_curvature: curvature,
        // Row tiers are searched as `quantrec quantize` does by default.
        tiers: true,
    })
}

/// The range rule of static activations by name.
fn range_method(name: &str) -> PyResult<RangeMethod> {
    Ok(match name {
        "minmax" => RangeMethod::MinMax,
        "percentile" => RangeMethod::Percentile(99.99),
        "l2" => RangeMethod::L2 { bits: 8 },
        "kl" => RangeMethod::Kl { bits: 8 },
        other => {
            return Err(PyValueError::new_err(format!(
                "calib_method {other:?}: expected 'minmax', 'percentile', 'l2' or 'kl'"
            )));
        }
    })
}

/// File name, hash and rows of a data file, for provenance.
fn data_record(path: &Path, rows: usize) -> Result<serde_json::Value, QuantError> {
    Ok(serde_json::json!({
        "file": path.display().to_string(),
        "sha256": file_sha256(path)?,
        "rows": rows,
    }))
}

/// Quantizes `model` (artifact or state dict) with calibration and evaluation data and writes
/// the artifact `output`. Returns the outcome as JSON.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (model, calib, eval, output, plan, budget_ne, budget_auc, calib_rows, eval_rows, schema, objective, calib_method, table_rounding, latency_batch, sensitivity_rows, report_dir))]
pub fn quantize(
    py: Python<'_>,
    model: PathBuf,
    calib: PathBuf,
    eval: PathBuf,
    output: PathBuf,
    plan: String,
    budget_ne: f64,
    budget_auc: Option<f64>,
    calib_rows: usize,
    eval_rows: usize,
    schema: Option<PathBuf>,
    objective: String,
    calib_method: String,
    table_rounding: String,
    latency_batch: usize,
    sensitivity_rows: usize,
    report_dir: Option<PathBuf>,
) -> PyResult<String> {
    let search = search_options(
        budget_ne,
        budget_auc,
        &objective,
        &table_rounding,
        latency_batch,
        sensitivity_rows,
    )?;
    let calib_method = range_method(&calib_method)?;
    py.detach(|| {
        let run = || -> Result<serde_json::Value, QuantError> {
            let loaded = load_model(&model)?;
            let schema = schema.as_deref();
            let req = QuantizeRequest {
                calib: load_data(&calib, &loaded.config, schema, Some(calib_rows))?,
                eval: load_data(&eval, &loaded.config, schema, Some(eval_rows))?,
                config: loaded.config.clone(),
                weights: loaded.weights.clone(),
                plan: PlanRequest::parse(&plan)?,
                search,
                calib_method,
            };
            let out = quantize_model(&req)?;
            if let (Some(dir), Some(s)) = (&report_dir, &out.search) {
                write_report(dir, s)?;
            }
            let data = serde_json::json!({
                "calibration": data_record(&calib, req.calib.rows)?,
                "evaluation": data_record(&eval, req.eval.rows)?,
            });
            let source = Some((model.display().to_string(), loaded.sha256.clone()));
            artifact::save(
                &output,
                &req.config,
                &out.weights,
                &out.plan,
                &out.provenance(source, data),
            )?;
            let c = &out.comparison;
            Ok(serde_json::json!({
                "output": output.display().to_string(),
                "plan": out.plan,
                "plan_summary": summary(&out.plan),
                "bytes_f32": out.bytes_f32,
                "bytes_quantized": out.bytes_quantized,
                "ne_f32": c.ne_reference, "ne_quantized": c.ne, "delta_ne_pct": c.delta_ne_pct,
                "auc_f32": c.auc_reference, "auc_quantized": c.auc, "delta_auc": c.delta_auc,
                "calibration": c.calibration,
                "budget": req.search.budget.describe(),
                "chosen": out.search.as_ref().map(|s| s.chosen().name.clone()),
                "search_seconds": out.search.as_ref().map(|s| s.seconds),
                "model_evaluations": out.search.as_ref().map(|s| s.model_evaluations),
            }))
        };
        serde_json::to_string(&run().map_err(quant_err)?).map_err(json_err)
    })
}

/// Streams labelled `data` through `model` (and `baseline`): NE, log loss, AUC, calibration.
/// Returns `(json, text)`: the report as JSON and as the table `quantrec eval` prints.
#[pyfunction]
#[pyo3(signature = (model, data, baseline=None, rows=None, schema=None, batch_size=4096))]
pub fn evaluate(
    py: Python<'_>,
    model: PathBuf,
    data: PathBuf,
    baseline: Option<PathBuf>,
    rows: Option<u64>,
    schema: Option<PathBuf>,
    batch_size: usize,
) -> PyResult<(String, String)> {
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    let options = FileEvalOptions {
        model,
        data,
        baseline,
        rows,
        schema,
        batch_size,
    };
    py.detach(|| {
        let report = evaluate_file(&options).map_err(quant_err)?;
        Ok((
            serde_json::to_string(&report).map_err(json_err)?,
            report.to_string(),
        ))
    })
}
