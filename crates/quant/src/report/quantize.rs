//! What `quantize` reports: the plan, bytes and accuracy against f32, the search and the file
//! written, as one JSON object ([`serde::Serialize`]) or lines of text ([`std::fmt::Display`]).

use std::fmt;
use std::path::{Path, PathBuf};

use quantrec_model::Plan;
use serde::Serialize;

use crate::plans::summary;
use crate::search::Budget;
use crate::workflow::QuantizeOutcome;

/// The outcome of `quantize` as the binary prints it. The JSON keys are those of earlier releases;
/// the text form also names the budget, the plans searched and the chosen one.
#[derive(Clone, Debug, Serialize)]
pub struct QuantizeReport {
    /// The artifact written.
    pub output: PathBuf,
    /// The plan (static parameters calibrated).
    pub plan: Plan,
    /// Bytes of the f32 parameters.
    pub bytes_f32: u64,
    /// Bytes of the quantized parameters.
    pub bytes_quantized: u64,
    /// NE of the f32 model on the evaluation set.
    pub ne_f32: f64,
    /// NE of the quantized model.
    pub ne_quantized: f64,
    /// Relative NE change in percent (positive = worse).
    pub delta_ne_pct: f64,
    /// AUC of the f32 model.
    pub auc_f32: f64,
    /// AUC of the quantized model.
    pub auc_quantized: f64,
    /// AUC change (negative = worse).
    pub delta_auc: f64,
    /// Calibration (mean prediction / CTR) of the quantized model.
    pub calibration: f64,
    /// Seconds the search took (`None`: the plan was given).
    pub search_seconds: Option<f64>,
    /// Model evaluations the search made.
    pub model_evaluations: Option<usize>,
    /// The search's plans evaluated and the chosen one's name (text form only).
    #[serde(skip)]
    pub searched: Option<(usize, String)>,
    /// The accuracy gate, in words (text form only).
    #[serde(skip)]
    pub budget: String,
}

impl QuantizeReport {
    /// The report of `out`, written to `output`, gated by `budget`.
    pub fn new(output: &Path, budget: &Budget, out: &QuantizeOutcome) -> QuantizeReport {
        let c = &out.comparison;
        QuantizeReport {
            output: output.to_path_buf(),
            plan: out.plan.clone(),
            bytes_f32: out.bytes_f32,
            bytes_quantized: out.bytes_quantized,
            ne_f32: c.ne_reference,
            ne_quantized: c.ne,
            delta_ne_pct: c.delta_ne_pct,
            auc_f32: c.auc_reference,
            auc_quantized: c.auc,
            delta_auc: c.delta_auc,
            calibration: c.calibration,
            search_seconds: out.search.as_ref().map(|s| s.seconds),
            model_evaluations: out.search.as_ref().map(|s| s.model_evaluations),
            searched: out
                .search
                .as_ref()
                .map(|s| (s.evaluated.len(), s.chosen().name.clone())),
            budget: budget.describe(),
        }
    }
}

impl fmt::Display for QuantizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some((plans, chosen)), Some(runs), Some(seconds)) =
            (&self.searched, self.model_evaluations, self.search_seconds)
        {
            writeln!(
                f,
                "search: {plans} plans evaluated ({runs} model runs) in {seconds:.1} s; chosen {chosen}"
            )?;
        }
        writeln!(f, "plan: {}", summary(&self.plan))?;
        writeln!(
            f,
            "bytes {} -> {} ({:.1}% of f32); NE {:.6} -> {:.6} (ΔNE {:+.4}%, {}); AUC {:.5} -> {:.5}; calibration {:.4}",
            self.bytes_f32,
            self.bytes_quantized,
            100.0 * self.bytes_quantized as f64 / self.bytes_f32 as f64,
            self.ne_f32,
            self.ne_quantized,
            self.delta_ne_pct,
            self.budget,
            self.auc_f32,
            self.auc_quantized,
            self.calibration
        )?;
        write!(f, "wrote {}", self.output.display())
    }
}
