//! Command-line arguments shared by several commands (`quantize`, `search`, `refresh`,
//! `calibrate`), mapped onto the quant crate's types.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use quantrec_quant::calibrate::RangeMethod;
use quantrec_quant::load::data_provenance;
use quantrec_quant::search::pareto::Objective;
use quantrec_quant::search::{Budget, SearchOptions};

/// Range rule of static activations.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CalibMethod {
    /// Observed min and max.
    Minmax,
    /// 99.99th percentile (and 0.01th).
    Percentile,
    /// L2-error-minimizing window (PyTorch HistogramObserver).
    L2,
    /// KL divergence (TensorRT entropy calibration).
    Kl,
}

impl CalibMethod {
    /// The library's range rule.
    pub fn method(self) -> RangeMethod {
        match self {
            CalibMethod::Minmax => RangeMethod::MinMax,
            CalibMethod::Percentile => RangeMethod::Percentile(99.99),
            CalibMethod::L2 => RangeMethod::L2 { bits: 8 },
            CalibMethod::Kl => RangeMethod::Kl { bits: 8 },
        }
    }
}

/// Which cost the search minimizes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ObjectiveArg {
    /// Model bytes.
    Bytes,
    /// Predicted latency.
    Latency,
    /// Both, normalized and summed.
    Both,
}

impl ObjectiveArg {
    /// The library's objective.
    pub fn objective(self) -> Objective {
        match self {
            ObjectiveArg::Bytes => Objective::Bytes,
            ObjectiveArg::Latency => Objective::Latency,
            ObjectiveArg::Both => Objective::Both,
        }
    }
}

/// How N-bit table rows are rounded (`quantize --table-rounding`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TableRounding {
    /// PyTorch's exact bytes: greedy L2 clipping range, nearest codes.
    Pytorch,
    /// PyTorch's range, then the f16 scale and bias refitted by least squares (less row error).
    Refit,
    /// PyTorch's range, then codes, scale and bias re-rounded to minimize the log loss each row
    /// costs on the calibration data (its Gauss-Newton curvature from the f32 model's backward
    /// pass), not its plain error.
    Curvature,
    /// The least-squares refit, then the curvature re-rounding.
    RefitCurvature,
}

impl TableRounding {
    /// Whether the least-squares refit runs (`Plan::table_refit`).
    pub fn refit(self) -> bool {
        matches!(self, TableRounding::Refit | TableRounding::RefitCurvature)
    }

    /// Whether the curvature re-rounding runs (`Plan::table_curvature`).
    pub fn curvature(self) -> bool {
        matches!(
            self,
            TableRounding::Curvature | TableRounding::RefitCurvature
        )
    }
}

/// Data and gate arguments shared by `quantize` and `refresh`.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// Calibration data (Criteo TSV, schema TSV/CSV, gzip, or a batch file).
    #[arg(long)]
    pub calib: PathBuf,
    /// Evaluation data (labelled; same forms).
    #[arg(long)]
    pub eval: PathBuf,
    /// Schema JSON of text data files (default: Criteo TSV).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Calibration samples to use.
    #[arg(long, default_value_t = 4096)]
    pub calib_rows: usize,
    /// Evaluation samples to use.
    #[arg(long, default_value_t = 50_000)]
    pub eval_rows: usize,
    /// ΔNE budget in percent (relative NE increase).
    #[arg(long, default_value_t = 0.02)]
    pub budget_ne: f64,
    /// Gate on the AUC drop (AUC units) instead of ΔNE.
    #[arg(long)]
    pub budget_auc: Option<f64>,
    /// MLPerf's accuracy criterion beside the ΔNE budget: quantized AUC at least this ratio of
    /// the f32 AUC (MLPerf's DLRM rule: 0.999).
    #[arg(long, conflicts_with = "budget_auc")]
    pub min_auc_ratio: Option<f64>,
    /// Do not try frequency-aware row tiers (hot rows 8-bit, warm 4-bit, cold 2-bit, never-seen
    /// rows pruned) on the searched plan's tables.
    #[arg(long)]
    pub no_row_tiers: bool,
    /// Range rule of static activations.
    #[arg(long, value_enum, default_value = "l2")]
    pub calib_method: CalibMethod,
}

impl DataArgs {
    /// The gate.
    pub fn budget(&self) -> Result<Budget> {
        let base = match self.budget_auc {
            Some(a) => Budget::Auc(a),
            None => Budget::Ne(self.budget_ne),
        };
        Ok(base.with_min_auc_ratio(self.min_auc_ratio)?)
    }

    /// Hashes and row counts of the data files, for provenance.
    pub fn provenance(&self, calib_rows: usize, eval_rows: usize) -> Result<serde_json::Value> {
        Ok(data_provenance(
            &self.calib,
            calib_rows,
            &self.eval,
            eval_rows,
        )?)
    }
}

/// Interaction of a trained model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchKind {
    /// facebookresearch/dlrm's dot interaction (dlrm module names).
    Dot,
    /// TorchRec `DLRM_DCN`'s low-rank DCN-v2 cross net (TorchRec module names).
    Dcn,
}

/// The architecture `train` and `demo` train.
#[derive(Args, Debug, Clone, Copy)]
pub struct ArchArgs {
    /// Interaction: `dot` (DLRM) or `dcn` (DLRM-v2's low-rank DCN-v2 cross net).
    #[arg(long, value_enum, default_value = "dot")]
    pub arch: ArchKind,
    /// Cross layers of `--arch dcn` (MLPerf DLRM-v2: 3).
    #[arg(long, default_value_t = 3)]
    pub cross_layers: usize,
    /// Rank of each cross layer of `--arch dcn`.
    #[arg(long, default_value_t = 64)]
    pub cross_rank: usize,
}

impl ArchArgs {
    /// The trainer's architecture choice.
    pub fn arch(&self) -> quantrec_train::ModelArch {
        match self.arch {
            ArchKind::Dot => quantrec_train::ModelArch::Dot,
            ArchKind::Dcn => quantrec_train::ModelArch::Dcn {
                layers: self.cross_layers,
                rank: self.cross_rank,
            },
        }
    }
}

/// What the precision search minimizes and how, shared by `quantize` and `search`.
#[derive(Args, Debug)]
pub struct SearchTuning {
    /// What the search minimizes.
    #[arg(long, value_enum, default_value = "bytes")]
    pub objective: ObjectiveArg,
    /// Samples per batch of the latency model.
    #[arg(long, default_value_t = 256)]
    pub latency_batch: usize,
    /// Samples the one-unit-at-a-time sensitivity runs on (combined plans are validated on all
    /// evaluation samples).
    #[arg(long, default_value_t = 16_384)]
    pub sensitivity_rows: usize,
    /// How fused8half / fused4 / fused2 table rows are rounded. Every choice keeps FBGEMM's byte
    /// layout (PyTorch and every kernel read it); only `pytorch` reproduces PyTorch's bytes. On the
    /// synthetic default, all-4-bit tables measure ΔNE +0.068% (pytorch), +0.055% (refit),
    /// +0.046% (curvature). Recorded in the plan, so `refresh` re-applies it (on its new data).
    #[arg(long, value_enum, default_value = "curvature")]
    pub table_rounding: TableRounding,
}

impl SearchTuning {
    /// The search options under `budget` (presets included; row tiers searched when `tiers`).
    pub fn options(&self, budget: Budget, tiers: bool) -> SearchOptions {
        SearchOptions {
            budget,
            objective: self.objective.objective(),
            latency_batch: self.latency_batch,
            presets: true,
            sensitivity_rows: self.sensitivity_rows,
            table_refit: self.table_rounding.refit(),
            table_curvature: self.table_rounding.curvature(),
            tiers,
        }
    }
}
