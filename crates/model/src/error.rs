//! The one error type of the model crate.

use std::path::PathBuf;

/// Everything the model crate can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A kernel refused its inputs.
    #[error(transparent)]
    Kernel(#[from] quantrec_kernels::KernelError),
    /// The data layer refused a batch or a metric input.
    #[error(transparent)]
    Data(#[from] quantrec_data::DataError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A safetensors buffer is malformed (truncated, bad header, offsets that do not add up).
    #[error("{what}: not a valid safetensors file: {source}")]
    SafeTensors {
        /// Which file or buffer.
        what: String,
        /// The parser's complaint.
        source: safetensors::SafeTensorError,
    },
    /// A tensor the architecture needs is absent.
    #[error("missing tensor {name}: {expected}")]
    MissingTensor {
        /// The tensor name.
        name: String,
        /// What it would hold.
        expected: String,
    },
    /// A tensor nothing in the supported architectures uses.
    #[error("unexpected tensor {name}: {reason}")]
    UnexpectedTensor {
        /// The tensor name.
        name: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A tensor whose shape disagrees with the architecture.
    #[error("tensor {name} has shape {found:?}, expected {expected}")]
    TensorShape {
        /// The tensor name.
        name: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A tensor with an element type that cannot be used there.
    #[error("tensor {name} has dtype {found}, expected {expected}")]
    TensorDtype {
        /// The tensor name.
        name: String,
        /// The accepted dtypes.
        expected: String,
        /// The dtype found.
        found: String,
    },
    /// A NaN or infinite dense input value (refused unless the caller allows them).
    #[error(
        "sample {sample} dense feature {feature} is {value} (non-finite dense values give meaningless scores; pass --allow-nonfinite to score them anyway)"
    )]
    NonFiniteDense {
        /// Sample index (across everything scored so far).
        sample: usize,
        /// Dense feature index.
        feature: usize,
        /// The value.
        value: f32,
    },
    /// A NaN or infinite weight.
    #[error("tensor {name} holds the non-finite value {value} at flat index {index}")]
    NonFinite {
        /// The tensor name.
        name: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A state dict mixes dlrm and TorchRec module names, so its naming convention is unclear.
    #[error(
        "cannot infer the naming convention: the state dict mixes dlrm (e.g. {dlrm}) and TorchRec (e.g. {torchrec}) names"
    )]
    MixedNaming {
        /// A dlrm-style tensor name found (`emb_l.` / `bot_l.` / `top_l.`).
        dlrm: String,
        /// A TorchRec-style tensor name found (`sparse_arch.` / `dense_arch.` / ...).
        torchrec: String,
    },
    /// No tensor of a state dict has a dlrm or TorchRec module name.
    #[error(
        "cannot infer the naming convention: no tensor starts with emb_l./bot_l./top_l. (dlrm) or sparse_arch./dense_arch./over_arch. (TorchRec); found e.g. {examples:?}"
    )]
    UnknownNaming {
        /// Up to three of the tensor names found.
        examples: Vec<String>,
    },
    /// Several interactions fit the top MLP's input width; an override must choose.
    #[error(
        "cannot infer the interaction: top-MLP input width {top_in} fits {candidates:?}; pass an override such as {{\"interaction\": {{\"kind\": \"cat\"}}}}"
    )]
    AmbiguousInteraction {
        /// Input width of the first top-MLP layer.
        top_in: usize,
        /// The interactions that give that width.
        candidates: Vec<crate::config::Interaction>,
    },
    /// An import override contradicts what the state dict holds.
    #[error("the override asks for {requested:?} but the state dict holds {found:?}")]
    OverrideConflict {
        /// The interaction the override asks for.
        requested: crate::config::Interaction,
        /// The interaction the tensors define.
        found: crate::config::Interaction,
    },
    /// A list of per-table import overrides whose length is not the table count.
    #[error("{found} {what} for {expected} tables")]
    OverrideCount {
        /// Which override (`poolings`).
        what: &'static str,
        /// Tables of the state dict.
        expected: usize,
        /// Entries given.
        found: usize,
    },
    /// A TorchRec `table_order` override that is not a permutation of the state dict's tables.
    #[error("table_order {order:?} must list each table of the state dict once: {tables:?}")]
    TableOrder {
        /// The order given.
        order: Vec<String>,
        /// The tables of the state dict.
        tables: Vec<String>,
    },
    /// Layers of a state dict that are not numbered without gaps.
    #[error("unexpected tensor {name}: layer index {found} where {expected} was expected ({hint})")]
    LayerIndex {
        /// The tensor name.
        name: String,
        /// Its layer index.
        found: usize,
        /// The index the next layer must have.
        expected: usize,
        /// How the layers of this module are numbered.
        hint: String,
    },
    /// A config with no dense features.
    #[error("invalid model config: dense_features is 0")]
    NoDenseFeatures,
    /// A config with an MLP layer of width 0.
    #[error("invalid model config: layer {layer} of the {mlp} MLP has width 0 (widths {widths:?})")]
    ZeroWidthLayer {
        /// `"bottom"` or `"top"`.
        mlp: &'static str,
        /// Index of the layer within that MLP.
        layer: usize,
        /// All widths of that MLP.
        widths: Vec<usize>,
    },
    /// A top MLP that does not end in one output (the logit).
    #[error("invalid model config: the top MLP must end in one output (a logit), found {widths:?}")]
    TopMlpOutput {
        /// The top MLP's widths.
        widths: Vec<usize>,
    },
    /// A table with no rows or of dimension 0.
    #[error("invalid model config: table {table} has {rows} rows × {dim}")]
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
        "invalid model config: dot interaction needs every table dimension to equal the bottom-MLP output {expected}; table {table} has {found}"
    )]
    DotDimension {
        /// Table index.
        table: usize,
        /// The bottom MLP's output width.
        expected: usize,
        /// The table's dimension.
        found: usize,
    },
    /// A DCN with no layers or rank 0.
    #[error("invalid model config: DCN with {layers} layers of rank {rank}")]
    EmptyDcn {
        /// Cross layers.
        layers: usize,
        /// Rank of each layer.
        rank: usize,
    },
    /// Weights with more or fewer layers, tables or names than the config.
    #[error("invalid model config: {what}: the config has {expected}, the weights have {found}")]
    WeightCount {
        /// What is counted (`"bottom-MLP layers"`, `"tables"`, ...).
        what: &'static str,
        /// Count in the config.
        expected: usize,
        /// Count in the weights.
        found: usize,
    },
    /// A dense layer the kernels refused to pack for its planned precision.
    #[error("invalid model config: packing {layer} ({precision}): {source}")]
    Pack {
        /// The layer (`bottom.0`, `cross.1.v`, ...).
        layer: String,
        /// The planned precision's short name.
        precision: String,
        /// The kernel's refusal.
        #[source]
        source: Box<quantrec_kernels::KernelError>,
    },
    /// A precision plan with more or fewer entries than the model has layers or tables.
    #[error("invalid precision plan: {what}: the model has {expected}, the plan lists {found}")]
    PlanMismatch {
        /// What is counted (`"bottom-MLP layers"`, `"tables"`, ...).
        what: &'static str,
        /// Count in the model.
        expected: usize,
        /// Entries in the plan.
        found: usize,
    },
    /// Static activation parameters a kernel cannot use.
    #[error(
        "invalid precision plan: {layer}: static activation scale {scale} must be finite and > 0 and zero point {zero_point} within 0..=255"
    )]
    StaticActivation {
        /// The layer (`top.0`, `cross.1.w`, ...).
        layer: String,
        /// The scale given.
        scale: f32,
        /// The zero point given.
        zero_point: i32,
    },
    /// A table format that cannot store rows of the table's dimension.
    #[error("invalid precision plan: table {table}: {source}")]
    PlanTableFormat {
        /// Table index.
        table: usize,
        /// The kernel's reason.
        #[source]
        source: Box<quantrec_kernels::KernelError>,
    },
    /// Row tiers of a table that do not fit it (row counts, formats, remap width).
    #[error("invalid precision plan: tiers of table {table}: {reason}")]
    TierPlan {
        /// Table index.
        table: usize,
        /// What does not fit.
        reason: String,
    },
    /// A tiered table whose stored tiers or remap disagree with its plan.
    #[error("table {table}: tiered storage does not match its plan: {reason}")]
    TierData {
        /// Table index.
        table: usize,
        /// What disagrees.
        reason: String,
    },
    /// A plan with row tiers for a table supplied as plain f32 rows: tiers need the calibration
    /// data's row frequencies, so such tables come pre-tiered (from the quant crate's builder).
    #[error(
        "table {table}: the plan stores it in frequency tiers, which need calibration data; build it with the quant crate (quantize / search)"
    )]
    TiersNeedCalibration {
        /// Table index.
        table: usize,
    },
    /// A table supplied already encoded in another format than the plan stores it in.
    #[error(
        "invalid precision plan: table {table} is supplied encoded as {supplied} but the plan stores it as {planned}"
    )]
    TableFormatMismatch {
        /// Table index.
        table: usize,
        /// The format of the bytes supplied.
        supplied: quantrec_kernels::formats::TableFormat,
        /// The format of the plan.
        planned: quantrec_kernels::formats::TableFormat,
    },
    /// A plan asking for curvature-rounded table rows without the calibration data they need.
    #[error(
        "invalid precision plan: table {table}: the plan asks for curvature-encoded {format} rows, which need calibration data; supply the table encoded or build the model with the quant crate's builder"
    )]
    CurvatureNeedsCalibration {
        /// Table index.
        table: usize,
        /// The planned format.
        format: quantrec_kernels::formats::TableFormat,
    },
    /// A batch whose dense part or table count does not fit the model.
    #[error("invalid batch: {found} {what}, the model takes {expected}")]
    BatchShape {
        /// What is counted (`"dense features per sample"`, `"dense values"`, `"sparse features"`).
        what: &'static str,
        /// What the model takes.
        expected: usize,
        /// What the batch has.
        found: usize,
    },
    /// A sparse feature with the wrong number of offsets or per-id weights.
    #[error("invalid batch: table {table}: {found} {what}, expected {expected}")]
    BagShape {
        /// Table index.
        table: usize,
        /// What is counted (`"offsets (samples + 1)"`, `"per-id weights (one per id)"`).
        what: &'static str,
        /// The count expected.
        expected: usize,
        /// The count found.
        found: usize,
    },
    /// Offsets that do not run from 0 to the id count.
    #[error(
        "invalid batch: table {table}: offsets must run from 0 to the id count {ids}, found {first}..{last}"
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
    #[error("invalid batch: table {table}: offsets decrease at sample {bag} ({offset} > {next})")]
    OffsetsDecrease {
        /// Table index.
        table: usize,
        /// The sample (bag) whose end precedes its start.
        bag: usize,
        /// The bag's start offset.
        offset: i64,
        /// The next offset (the bag's end).
        next: i64,
    },
    /// A weighted-sum table given no per-id weights.
    #[error("invalid batch: table {table} pools with per-id weights but none given")]
    MissingBagWeights {
        /// Table index.
        table: usize,
    },
    /// A file that is a safetensors file but not a quantrec artifact (no quantrec metadata).
    #[error(
        "invalid artifact {file}: no __metadata__[\"{key}\"]: not a quantrec artifact (a state dict? run `quantrec import` on it first)"
    )]
    NotAnArtifact {
        /// Which file.
        file: String,
        /// The metadata key looked for.
        key: &'static str,
    },
    /// Artifact metadata without an integer `format_version`.
    #[error("invalid artifact {file}: the metadata has no integer format_version")]
    ArtifactNoVersion {
        /// Which file.
        file: String,
    },
    /// An artifact whose stored config or plan is invalid.
    #[error("invalid artifact {file}: stored {part}: {source}")]
    ArtifactMeta {
        /// Which file.
        file: String,
        /// `"config"` or `"plan"`.
        part: &'static str,
        /// Why it was refused.
        #[source]
        source: Box<ModelError>,
    },
    /// Artifact metadata with another number of table names than tables.
    #[error("invalid artifact {file}: {found} table names for {expected} tables")]
    ArtifactTableNames {
        /// Which file.
        file: String,
        /// Tables of the stored config.
        expected: usize,
        /// Names stored.
        found: usize,
    },
    /// A tensor the artifact's config and plan need is absent.
    #[error("invalid artifact {file}: tensor {tensor} is missing (expected {dtype:?} {shape:?})")]
    ArtifactTensorMissing {
        /// Which file.
        file: String,
        /// The tensor.
        tensor: String,
        /// Its expected dtype.
        dtype: safetensors::Dtype,
        /// Its expected shape.
        shape: Vec<usize>,
    },
    /// A tensor of another dtype or shape than the artifact's config and plan need.
    #[error(
        "invalid artifact {file}: tensor {tensor} is {found_dtype:?} {found_shape:?}, expected {expected_dtype:?} {expected_shape:?}"
    )]
    ArtifactTensor {
        /// Which file.
        file: String,
        /// The tensor.
        tensor: String,
        /// The dtype the config and plan need.
        expected_dtype: safetensors::Dtype,
        /// The shape the config and plan need.
        expected_shape: Vec<usize>,
        /// The dtype stored.
        found_dtype: safetensors::Dtype,
        /// The shape stored.
        found_shape: Vec<usize>,
    },
    /// A tensor the artifact's config and plan do not use.
    #[error(
        "invalid artifact {file}: unexpected tensor {tensor}: the stored config and plan do not use it"
    )]
    ArtifactUnexpectedTensor {
        /// Which file.
        file: String,
        /// The tensor.
        tensor: String,
    },
    /// An int8 weight scale that is not > 0.
    #[error("invalid artifact {file}: {tensor} holds the scale {scale}, must be > 0")]
    ArtifactScale {
        /// Which file.
        file: String,
        /// The scale tensor.
        tensor: String,
        /// The scale found.
        scale: f32,
    },
    /// Stored int8 codes the kernels refused to pack.
    #[error("invalid artifact {file}: {layer}: {source}")]
    ArtifactPack {
        /// Which file.
        file: String,
        /// The layer.
        layer: String,
        /// The kernel's refusal.
        #[source]
        source: Box<quantrec_kernels::KernelError>,
    },
    /// Tensor bytes whose digest is not the one recorded at save time.
    #[error(
        "invalid artifact {file}: tensor bytes hash to {computed}, the metadata records {recorded}"
    )]
    ArtifactDigest {
        /// Which file.
        file: String,
        /// SHA-256 of the bytes now.
        computed: String,
        /// SHA-256 recorded in the metadata.
        recorded: String,
    },
    /// An artifact written by an incompatible format version.
    #[error("artifact {what} has format_version {found}; this build reads version {supported}")]
    ArtifactVersion {
        /// Which file.
        what: String,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// JSON (config, plan, metadata) that does not parse.
    #[error("{what}: {source}")]
    Json {
        /// What was being parsed.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// An interaction the requested module names cannot express.
    #[error(
        "cannot export with {naming:?} names: the interaction {interaction:?} has no equivalent in that convention"
    )]
    ExportInteraction {
        /// The naming convention.
        naming: crate::config::Naming,
        /// The model's interaction.
        interaction: crate::config::Interaction,
    },
    /// A table stored encoded (only f32 tables can be exported).
    #[error(
        "cannot export with {naming:?} names: table {table} is stored encoded as {format}; only f32 tables can be exported"
    )]
    ExportEncodedTable {
        /// The naming convention.
        naming: crate::config::Naming,
        /// Table index.
        table: usize,
        /// The table's stored format.
        format: quantrec_kernels::formats::TableFormat,
    },
    /// Two tables that would get the same tensor name.
    #[error("cannot export with {naming:?} names: two tables would be named {name}")]
    ExportDuplicateName {
        /// The naming convention.
        naming: crate::config::Naming,
        /// The shared name.
        name: String,
    },
    /// A top MLP too short for TorchRec's over arch.
    #[error(
        "cannot export with {naming:?} names: TorchRec's OverArch needs at least two top-MLP layers, the model has {layers}"
    )]
    ExportTopMlp {
        /// The naming convention.
        naming: crate::config::Naming,
        /// Top-MLP layers of the model.
        layers: usize,
    },
    /// A data file whose features do not fit the model's inputs.
    #[error(
        "{} has {dense} dense and {sparse} sparse features, the model takes {model_dense} and {model_sparse}",
        path.display()
    )]
    DataFeatures {
        /// The data file.
        path: PathBuf,
        /// Dense features of the file.
        dense: usize,
        /// Sparse features (tables) of the file.
        sparse: usize,
        /// Dense features of the model.
        model_dense: usize,
        /// Tables of the model.
        model_sparse: usize,
    },
    /// An output file whose extension names no format this crate writes.
    #[error("output {} must end in {expected}", path.display())]
    OutputFormat {
        /// The file.
        path: PathBuf,
        /// The extensions accepted.
        expected: String,
    },
    /// A tensor that could not be converted to a table format.
    #[error("converting tensor {tensor} to {format}: {source}")]
    ConvertTensor {
        /// The tensor.
        tensor: String,
        /// The target format.
        format: String,
        /// The kernel's refusal.
        source: Box<quantrec_kernels::KernelError>,
    },
    /// A conversion that selected no tensor.
    #[error(
        "no tensor of {file} was converted: none is a 2-D f32/f16/bf16 tensor{}",
        if *filtered { " matching --tensors" } else { "" }
    )]
    NothingToConvert {
        /// The input file.
        file: String,
        /// Whether a name filter was given.
        filtered: bool,
    },
    /// A remote table backend ([`crate::remote::RowSource`]) could not supply rows.
    #[error("remote rows of table {table}: {source}")]
    RemoteRows {
        /// The first table of the request that failed.
        table: usize,
        /// The backend's error (the tables crate's `TablesError`; downcast to match on it).
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A remote table store whose tables do not match the model's.
    #[error("remote table {table} does not match the model: local {local}, remote {remote}")]
    RemoteTableMismatch {
        /// The first table that differs.
        table: usize,
        /// The model's table, in words.
        local: String,
        /// The store's table, in words.
        remote: String,
    },
    /// A remote table backend returned a byte count that does not match the rows asked for.
    #[error("remote rows of table {table}: got {found} bytes, expected {expected}")]
    RemoteRowBytes {
        /// The table.
        table: usize,
        /// `rows asked × row bytes`.
        expected: usize,
        /// Bytes returned.
        found: usize,
    },
}

impl ModelError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a safetensors parse error with what was being parsed.
    pub fn safetensors(what: impl Into<String>, source: safetensors::SafeTensorError) -> Self {
        ModelError::SafeTensors {
            what: what.into(),
            source,
        }
    }
}
