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
    /// A ΔNE budget that is NaN, or not finite where it must be (a search walk, a plot axis).
    #[error("invalid ΔNE budget {value}: must be a finite number")]
    InvalidBudget {
        /// The budget given (percent).
        value: f64,
    },
    /// A plan point whose latency is negative or not finite, or whose ΔNE is not finite.
    #[error("invalid {metric} of plan {plan}: {value} must be finite{}", if *metric == PlanMetric::Latency { " and >= 0" } else { "" })]
    InvalidPlanPoint {
        /// The plan's name.
        plan: String,
        /// Which of its measurements.
        metric: PlanMetric,
        /// The value found.
        value: f64,
    },
    /// A search candidate whose saved cost or ΔNE alone is not finite.
    #[error(
        "invalid search candidate {candidate}: cost saved {cost_saved} and ΔNE alone {delta_ne_alone} must be finite"
    )]
    InvalidCandidate {
        /// The candidate's unit and option, as `unit = option`.
        candidate: String,
        /// Its saved cost.
        cost_saved: f64,
        /// Its ΔNE alone (percent).
        delta_ne_alone: f64,
    },
    /// The search's evaluation of a combined plan returned NaN.
    #[error("the evaluation of {assignment} returned a NaN ΔNE")]
    NanEvaluation {
        /// The assignment that was evaluated (its debug form).
        assignment: String,
    },
    /// A chosen plan index beyond the plans given.
    #[error("chosen plan index {index} is out of range: there are {plans} plans")]
    ChosenOutOfRange {
        /// The index given.
        index: usize,
        /// How many plans there are.
        plans: usize,
    },
    /// A table format set on a layer unit, or a layer precision on a table.
    #[error("choice {choice} does not apply to {unit}")]
    ChoiceMismatch {
        /// The unit's name (`table.3`, `bottom.0`, ...).
        unit: String,
        /// The choice (its debug form).
        choice: String,
    },
    /// A percentile outside `(0, 100]`.
    #[error("invalid percentile {value}: must be in (0, 100]")]
    PercentileOutOfRange {
        /// The percentile given.
        value: f64,
    },
    /// A bit width outside the range the calibration method supports.
    #[error("invalid {what} bit width {bits}: must be in {min}..={max}")]
    BitWidthOutOfRange {
        /// Which calibration method (`KL`, `MSE`, ...).
        what: &'static str,
        /// The width given.
        bits: u32,
        /// Smallest accepted width.
        min: u32,
        /// Largest accepted width.
        max: u32,
    },
    /// A KL calibration histogram with fewer bins than quantization levels.
    #[error("KL calibration histogram: {bins} bins cannot be searched with {levels} levels")]
    TooFewBins {
        /// Bins of the histogram.
        bins: usize,
        /// Quantization levels of the target width.
        levels: usize,
    },
    /// A histogram or observer asked for with zero bins.
    #[error("invalid {what} bin count 0: must be at least 1")]
    ZeroBins {
        /// What was asked for (`histogram`, `observer`).
        what: &'static str,
    },
    /// A histogram range that is not finite or has `lo > hi`.
    #[error("invalid histogram range [{lo}, {hi}]: must be finite with lo <= hi")]
    HistogramRange {
        /// Lower end.
        lo: f32,
        /// Upper end.
        hi: f32,
    },
    /// A histogram count that is negative or not finite.
    #[error("invalid histogram count {count} at bin {bin}: must be finite and >= 0")]
    HistogramCount {
        /// The bin.
        bin: usize,
        /// Its count.
        count: f64,
    },
    /// Counts outside bin 0 of a histogram over a single point.
    #[error(
        "invalid histogram counts: a histogram over the single point {lo} keeps its mass in bin 0"
    )]
    PointMassOutsideBin0 {
        /// The point (`lo == hi`).
        lo: f32,
    },
    /// Observers (or observer sets) with different bin counts that were asked to merge.
    #[error("merge of observers of {what}: bin counts differ: {ours} vs {theirs}")]
    BinsMismatch {
        /// The tensor of the observers, or `a set` for observer sets.
        what: String,
        /// Bins of the receiving side.
        ours: usize,
        /// Bins of the merged side.
        theirs: usize,
    },
    /// An observer asked to merge with an observer of another tensor.
    #[error("merge of observers of tensor {ours}: the other observer watches tensor {theirs}")]
    TensorMismatch {
        /// The receiving observer's tensor.
        ours: String,
        /// The other observer's tensor.
        theirs: String,
    },
    /// A saved observer whose count and histogram do not fit its bin count.
    #[error(
        "saved observer of tensor {tensor}: count {count} and a histogram of {hist_bins:?} bins do not fit an observer of {bins} bins"
    )]
    SavedObserver {
        /// The observer's tensor.
        tensor: String,
        /// Its saved count.
        count: u64,
        /// Bins of its saved histogram (`None`: no histogram).
        hist_bins: Option<usize>,
        /// Its saved bin count.
        bins: usize,
    },
    /// A saved observer set whose entry holds another tensor's observer or another bin count.
    #[error(
        "saved observer set entry {entry}: holds an observer of tensor {tensor} with {bins} bins; the set has {set_bins} bins"
    )]
    SavedSetEntry {
        /// The entry's key.
        entry: String,
        /// The tensor its observer watches.
        tensor: String,
        /// Bins of its observer.
        bins: usize,
        /// Bins of the set.
        set_bins: usize,
    },
    /// A weight whose `n x k` shape overflows, or whose rows have length 0.
    #[error("shape of weight {tensor}: {n} x {k} {}", if k.checked_mul(*n).is_none() { "overflows" } else { "has rows of length 0, which have no range" })]
    WeightShape {
        /// The weight tensor.
        tensor: String,
        /// Rows (output channels).
        n: usize,
        /// Row length.
        k: usize,
    },
    /// A baseline model whose inputs (dense features or table sizes) differ from the model's.
    #[error(
        "invalid baseline: its inputs differ from the model's (dense features or table sizes), so they cannot be evaluated on the same rows"
    )]
    BaselineInputs,
    /// A name that is not one of the accepted choices (synthetic model, benchmark plan, ...).
    #[error("unknown {what} {name:?}: expected {expected}")]
    UnknownName {
        /// What kind of name.
        what: &'static str,
        /// The name given.
        name: String,
        /// The accepted names, in words.
        expected: &'static str,
    },
    /// `--min-auc-ratio` outside (0, 1].
    #[error("--min-auc-ratio {value} must be in (0, 1]")]
    MinAucRatioOutOfRange {
        /// The ratio given.
        value: f64,
    },
    /// `--min-auc-ratio` given with an AUC-drop budget (it combines only with a ΔNE budget).
    #[error("--min-auc-ratio combines with a ΔNE budget, not with an AUC-drop budget")]
    MinAucRatioWithAucBudget,
    /// A table index past the model's tables.
    #[error("{what}: table {table} does not exist (the model has {tables} tables)")]
    TableOutOfRange {
        /// What named the table.
        what: &'static str,
        /// The table index given.
        table: usize,
        /// How many tables the model has.
        tables: usize,
    },
    /// A plan's tier recipe name that this version does not know.
    #[error("tier recipe {recipe:?} of table {table} is unknown; expected one of {expected}")]
    UnknownTierRecipe {
        /// The table.
        table: usize,
        /// The recipe name recorded in the plan.
        recipe: String,
        /// The known recipes, comma separated.
        expected: String,
    },
    /// A benchmark batch size of 0 or larger than the inputs file holds.
    #[error("batch size {batch}: {} holds {rows} rows; batch sizes must be between 1 and that", path.display())]
    BatchBeyondInputs {
        /// The batch size asked for.
        batch: usize,
        /// Rows in the inputs file.
        rows: usize,
        /// The inputs file.
        path: std::path::PathBuf,
    },
    /// A dense-layer shape argument that is not `MxKxN` with positive sizes.
    #[error("invalid shape `{spec}`: not MxKxN with positive sizes")]
    ShapeSpec {
        /// The argument given.
        spec: String,
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

/// Which measurement of a plan point ([`QuantError::InvalidPlanPoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMetric {
    /// Its latency in seconds.
    Latency,
    /// Its ΔNE in percent.
    DeltaNe,
}

impl std::fmt::Display for PlanMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlanMetric::Latency => "latency",
            PlanMetric::DeltaNe => "ΔNE",
        })
    }
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
