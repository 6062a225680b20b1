//! The one error type of the train crate.

use std::path::PathBuf;

/// Everything the trainer can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// The model layer refused a config, plan or tensor.
    #[error(transparent)]
    Model(#[from] quantrec_model::ModelError),
    /// The data layer refused a batch, a file or a metric input.
    #[error(transparent)]
    Data(#[from] quantrec_data::DataError),
    /// A config with neither dense features nor a bottom MLP.
    #[error("cannot train: no dense features and no bottom MLP")]
    NoDenseInput,
    /// An MLP whose widths the trainer cannot lay out.
    #[error("cannot train: {mlp} MLP {widths:?}: {rule}")]
    MlpWidths {
        /// `"bottom"` or `"top"`.
        mlp: &'static str,
        /// The MLP's widths.
        widths: Vec<usize>,
        /// The rule they break.
        rule: &'static str,
    },
    /// A table with no rows or of dimension 0.
    #[error("cannot train: table {table} has {rows} rows of dim {dim}")]
    EmptyTable {
        /// Table index.
        table: usize,
        /// Its rows.
        rows: usize,
        /// Its dimension.
        dim: usize,
    },
    /// A dot interaction over a table whose dimension is not the bottom MLP's output width.
    #[error(
        "cannot train: dot interaction needs every table dim equal to the bottom output {expected}, table {table} has dim {found}"
    )]
    DotDimension {
        /// Table index.
        table: usize,
        /// The bottom MLP's output width.
        expected: usize,
        /// The table's dimension.
        found: usize,
    },
    /// A DCN of rank 0.
    #[error("cannot train: DCN of {layers} layers with rank {rank}")]
    EmptyDcn {
        /// Cross layers.
        layers: usize,
        /// Their rank.
        rank: usize,
    },
    /// A negative or non-finite learning rate.
    #[error(
        "cannot train: learning rates must be finite and ≥ 0, got dense {dense} sparse {sparse}"
    )]
    LearningRate {
        /// `lr_dense`.
        dense: f32,
        /// `lr_sparse`.
        sparse: f32,
    },
    /// `threads = Some(0)`.
    #[error("cannot train: threads = 0")]
    ZeroThreads,
    /// The worker pool could not be started.
    #[error("cannot train: cannot start worker threads: {source}")]
    ThreadPool {
        /// rayon's error.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// A batch whose dense part, table count or label count does not fit the model.
    #[error("bad training batch: {found} {what}, expected {expected}")]
    BatchShape {
        /// What is counted (`"dense features"`, `"dense values"`, `"sparse features"`, `"labels"`).
        what: &'static str,
        /// The count the model needs.
        expected: usize,
        /// The count in the batch.
        found: usize,
    },
    /// A NaN or infinite dense feature.
    #[error("bad training batch: dense value {value} of sample {sample} is not finite")]
    NonFiniteDense {
        /// The sample.
        sample: usize,
        /// The value.
        value: f32,
    },
    /// A sparse feature with the wrong number of offsets or per-sample weights.
    #[error("bad training batch: table {table}: {found} {what}, expected {expected}")]
    BagShape {
        /// Table index.
        table: usize,
        /// What is counted (`"offsets (batch + 1)"`, `"weights (one per id)"`).
        what: &'static str,
        /// The count expected.
        expected: usize,
        /// The count found.
        found: usize,
    },
    /// Offsets that do not run from 0 to the id count.
    #[error(
        "bad training batch: table {table}: offsets must start at 0 and end at {ids} ids, found {first}..{last}"
    )]
    BagBounds {
        /// Table index.
        table: usize,
        /// Ids of the feature.
        ids: usize,
        /// The first offset.
        first: i64,
        /// The last offset.
        last: i64,
    },
    /// Offsets that decrease.
    #[error("bad training batch: table {table}: offsets decrease at bag {bag}")]
    OffsetsDecrease {
        /// Table index.
        table: usize,
        /// The bag whose end precedes its start.
        bag: usize,
    },
    /// An id outside its table.
    #[error("bad training batch: table {table}, bag {bag}: id {id} outside 0..{rows}")]
    IdOutOfRange {
        /// Table index.
        table: usize,
        /// The bag (sample) holding the id.
        bag: usize,
        /// The id.
        id: i64,
        /// Rows of the table.
        rows: usize,
    },
    /// A NaN or infinite per-sample weight.
    #[error("bad training batch: table {table}: per-sample weight {index} is {value}, not finite")]
    NonFiniteBagWeight {
        /// Table index.
        table: usize,
        /// Index of the weight (= of its id).
        index: usize,
        /// The value.
        value: f32,
    },
    /// A weighted-sum table given no per-sample weights.
    #[error("bad training batch: table {table}: weighted pooling without per-sample weights")]
    MissingBagWeights {
        /// Table index.
        table: usize,
    },
    /// Training (or the loss) needs labels and the batch has none.
    #[error("bad training batch: labels are required")]
    MissingLabels,
    /// A label outside `[0, 1]`.
    #[error("bad training batch: label of sample {sample} is {label}, not in [0, 1]")]
    LabelRange {
        /// The sample.
        sample: usize,
        /// The label.
        label: f32,
    },
    /// A state-dict tensor whose value count is not the product of its shape.
    #[error("trainer state dict: {name}: shape {shape:?} but {values} values")]
    StateDictValues {
        /// The tensor.
        name: String,
        /// Its declared shape.
        shape: Vec<usize>,
        /// Values given.
        values: usize,
    },
    /// A NaN or infinite parameter in a state dict.
    #[error("trainer state dict: {name}: value {index} is {value}, not finite")]
    StateDictNonFinite {
        /// The tensor.
        name: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A tensor given twice.
    #[error("trainer state dict: {name} given twice")]
    StateDictDuplicate {
        /// The tensor.
        name: String,
    },
    /// A parameter the config needs that the state dict lacks.
    #[error("trainer state dict: missing {name} {shape:?}")]
    StateDictMissing {
        /// The tensor.
        name: String,
        /// The shape the config needs.
        shape: Vec<usize>,
    },
    /// A parameter of another shape than the config needs.
    #[error(
        "trainer state dict: {name}: shape {found_shape:?}, the config needs {expected_shape:?}"
    )]
    StateDictTensor {
        /// The tensor.
        name: String,
        /// The shape the config needs.
        expected_shape: Vec<usize>,
        /// The shape given.
        found_shape: Vec<usize>,
    },
    /// A tensor the config has no parameter for.
    #[error("trainer state dict: unexpected tensor {name} for this config")]
    StateDictUnexpected {
        /// The tensor.
        name: String,
    },
    /// A tensor whose dtype is not a float parameter type.
    #[error("trainer state dict: {name}: dtype {dtype:?} is not a float parameter")]
    StateDictDtype {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: safetensors::Dtype,
    },
    /// The safetensors container could not be read or written.
    #[error("trainer state dict: {what}: {source}")]
    SafeTensors {
        /// What was being read or written (a tensor name, `"serialize"`, `"not a safetensors buffer"`).
        what: String,
        /// The library's error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The model config could not be written as JSON metadata.
    #[error("trainer state dict: config to JSON: {source}")]
    ConfigJson {
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a trainer checkpoint file failed.
    #[error("trainer checkpoint {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A data file without labels: it cannot be trained or evaluated on.
    #[error("{} has no labels", path.display())]
    Unlabelled {
        /// The data file.
        path: std::path::PathBuf,
    },
    /// A holdout that leaves no rows to train on.
    #[error("holding out {holdout} rows leaves none of the {rows} to train on")]
    Holdout {
        /// Rows of the data file.
        rows: u64,
        /// Rows asked to be held out.
        holdout: u64,
    },
    /// An option of a training run that cannot be used.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// Which option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// A holdout fraction outside `[0, 1)`.
    #[error("the holdout fraction must be in [0, 1), got {fraction}")]
    HoldoutFraction {
        /// The fraction given.
        fraction: f64,
    },
}

/// The train crate's result type.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
