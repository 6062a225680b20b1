//! The one error type of the quant crate.

use std::path::PathBuf;

/// Everything the quant crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// The model crate refused a plan, weights or batch.
    #[error(transparent)]
    Model(#[from] quantrec_model::ModelError),
    /// A data source failed.
    #[error(transparent)]
    Data(#[from] quantrec_data::DataError),
    /// The trainer (curvature factors, state dicts) refused its inputs.
    #[error(transparent)]
    Train(#[from] quantrec_train::TrainError),
    /// Automatic search found no quantized plan that meets the budget.
    #[error(
        "no plan meets the budget {}: no quantized plan passes; the units whose every option is over budget alone, worst first: {}",
        budget.describe(),
        unit_list(over_budget)
    )]
    NoPlan {
        /// The accuracy gate.
        budget: crate::search::Budget,
        /// Units whose every option alone fails the gate, worst first (at most 8): the unit's name
        /// (`table.3`, `bottom.0`, ...) and its best option's gate value alone.
        over_budget: Vec<(String, f64)>,
    },
    /// A requested plan (preset or given) that does not meet the budget.
    #[error(
        "no plan meets the budget {}: {plan}: the plan reaches {gate:.4} against {}; {blame}",
        budget.describe(),
        budget.describe()
    )]
    PlanOverBudget {
        /// The accuracy gate.
        budget: crate::search::Budget,
        /// The plan's summary (see [`crate::plans::summary`]).
        plan: String,
        /// The plan's gate value (ΔNE % or AUC drop).
        gate: f64,
        /// Which layers the debugger blames, worst first (in words, with their SQNR).
        blame: String,
    },
    /// A refresh whose widenings could not bring the recipe back within the budget.
    #[error(
        "no plan meets the budget {}: the recipe could not be repaired: gate {gate:.4} after widening {}",
        budget.describe(),
        widened.iter().map(|(u, to)| format!("{u} to {to}")).collect::<Vec<_>>().join(", ")
    )]
    Unrepairable {
        /// The accuracy gate.
        budget: crate::search::Budget,
        /// Gate value of the final plan.
        gate: f64,
        /// Every widening made, in order: unit and its new precision.
        widened: Vec<(String, String)>,
    },
    /// A NaN or infinite value reached a calibration observer or an error metric.
    #[error("non-finite value {value} in tensor {tensor} at flat index {index}")]
    NonFinite {
        /// Name of the tensor that held the value.
        tensor: String,
        /// Flat index of the first bad value within the call's slice.
        index: usize,
        /// The value itself (NaN or ±inf).
        value: f32,
    },
    /// A buffer or dimension does not have the size the operation needs.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// Which argument or buffer.
        what: String,
        /// The size that was expected.
        expected: usize,
        /// The size that was given.
        found: usize,
    },
    /// An argument outside the values the operation accepts (bin count, percentile, bit width, ...).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A statistic was asked of an observer or accumulator that has seen no data.
    #[error("{what} has observed no data")]
    Empty {
        /// Which observer or accumulator.
        what: String,
    },
    /// Rendering a report plot failed.
    #[error("plotting {} failed: {reason}", path.display())]
    Plot {
        /// The output file.
        path: PathBuf,
        /// The drawing backend's message (its error types are generic over the backend).
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is neither a quantrec artifact nor an importable state dict.
    #[error(
        "model file {}: not a quantrec artifact ({artifact}) nor an importable state dict ({import})",
        path.display()
    )]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// Why it is not an artifact.
        artifact: Box<quantrec_model::ModelError>,
        /// Why it could not be imported as a state dict.
        #[source]
        import: Box<quantrec_model::ModelError>,
    },
    /// A plan argument that is neither `auto`, a preset nor a readable plan file.
    #[error(
        "invalid plan {spec:?}: is neither auto, a preset (fp16, int8-dynamic, int4-tables, aggressive) nor a readable plan file: {source}"
    )]
    PlanSpec {
        /// The argument given.
        spec: String,
        /// Why it could not be read as a file.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be serialized as JSON.
    #[error("{what} to JSON: {source}")]
    Json {
        /// What was being serialized.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A calibration id outside its table.
    #[error(
        "calibration id {id} of table {table}, sample {sample}, is outside the table's {rows} rows"
    )]
    IdOutOfRange {
        /// Table index.
        table: usize,
        /// Sample of the calibration set.
        sample: usize,
        /// The id.
        id: i64,
        /// Rows of the table.
        rows: usize,
    },
    /// An evaluation or calibration batch without labels.
    #[error("batch {batch} has no labels; evaluation and calibration sets need labels")]
    NoLabels {
        /// Index of the batch.
        batch: usize,
    },
    /// The debugger was given a quantized model and a reference of different architectures.
    #[error("debugger models: the quantized model and the reference have different architectures")]
    ArchitectureMismatch,
    /// A plan asks for curvature-rounded tables but the builder measured no curvature.
    #[error(
        "plan for table {table}: asks for curvature-encoded tables but the builder measured no curvature (no calibration data)"
    )]
    CurvatureNotMeasured {
        /// Table index.
        table: usize,
    },
    /// A data file without labels where labelled rows are needed (evaluation, training).
    #[error("{} has no labels", path.display())]
    Unlabelled {
        /// The data file.
        path: std::path::PathBuf,
    },
    /// A data file with fewer rows than the operation needs.
    #[error("{} has only {rows} rows; at least {needed} are needed", path.display())]
    TooFewRows {
        /// The data file.
        path: std::path::PathBuf,
        /// Rows it holds (or that were read).
        rows: u64,
        /// Rows the operation needs.
        needed: u64,
    },
    /// Kernels that disagree with their scalar oracle in the self-check.
    #[error("{failed} kernel self-checks disagree with the scalar oracle")]
    SelfCheck {
        /// How many (family, implementation) checks failed.
        failed: usize,
    },
    /// A saved artifact that does not predict what the in-memory model predicts.
    #[error("the saved artifact {} does not reproduce the in-memory model", path.display())]
    Reproduce {
        /// The artifact.
        path: std::path::PathBuf,
    },
    /// A thread pool could not be built (benchmarks and throughput runs pin their thread count).
    #[error(transparent)]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// A registered kernel family that `bench kernels` has no benchmark for.
    #[error("kernel family `{family}` has no benchmark")]
    UnbenchedFamily {
        /// The family's registry name.
        family: &'static str,
    },
    /// A background worker thread panicked.
    #[error("the {what} thread panicked")]
    Worker {
        /// What the thread was doing.
        what: String,
    },
}

impl QuantError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        QuantError::Io {
            path: path.into(),
            source,
        }
    }
}

fn unit_list(units: &[(String, f64)]) -> String {
    units
        .iter()
        .map(|(u, g)| format!("{u} (best option alone {g:.4})"))
        .collect::<Vec<_>>()
        .join(", ")
}
