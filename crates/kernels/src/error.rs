//! The one error type of the kernels crate.

use crate::isa::Isa;

/// Everything a kernel entry point can refuse. Each variant says what was expected and what was found.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum KernelError {
    /// `QUANTREC_ISA` named no known level.
    #[error("unknown ISA level {name:?}: expected one of scalar, avx2, avx512, vnni")]
    UnknownIsa {
        /// The name that was given.
        name: String,
    },
    /// `QUANTREC_ISA` asked for a level this CPU cannot run.
    #[error("ISA level {requested} was requested but this CPU supports at most {detected}")]
    IsaUnavailable {
        /// The level that was asked for.
        requested: Isa,
        /// The richest level the CPU has.
        detected: Isa,
    },
    /// A kernel family was asked for an implementation index it does not register.
    #[error("kernel family {family} has no implementation {index}")]
    UnknownImplementation {
        /// The family's registry name.
        family: &'static str,
        /// The index that was asked for.
        index: usize,
    },
    /// A buffer or dimension does not have the size the operation needs.
    #[error("shape mismatch in {what}{}: expected {expected}, found {found}", at(*index))]
    Shape {
        /// Which argument or buffer.
        what: &'static str,
        /// The table, pair or column it belongs to, when there are several.
        index: Option<usize>,
        /// The size that was expected.
        expected: usize,
        /// The size that was given.
        found: usize,
    },
    /// A table format cannot hold rows of this dimension.
    #[error("format {format} cannot store rows of dimension {dim}: {reason}")]
    UnsupportedDim {
        /// The format's name.
        format: &'static str,
        /// The row dimension.
        dim: usize,
        /// Why (e.g. "4-bit rows need an even dimension").
        reason: &'static str,
    },
    /// A NaN or infinite value where only finite values are allowed.
    #[error(
        "non-finite value {value} in {what}{}, row {row}, column {col}",
        named(table)
    )]
    NonFinite {
        /// Which tensor.
        what: &'static str,
        /// The table's name, for table quantization.
        table: Option<String>,
        /// Row of the first bad value.
        row: usize,
        /// Column of the first bad value.
        col: usize,
        /// The value itself (NaN or ±inf).
        value: f32,
    },
    /// An embedding id outside its table.
    #[error("id {id} out of range in table {table}, bag {bag}: the table has {rows} rows")]
    IdOutOfRange {
        /// Index of the table in the call.
        table: usize,
        /// Index of the bag within the batch.
        bag: usize,
        /// The offending id.
        id: i64,
        /// Number of rows of the table (or of the remap, for pruned tables).
        rows: usize,
    },
    /// Bag offsets or lengths that do not describe the index array.
    #[error("bad bag boundaries in table {table}: {problem}")]
    BadBags {
        /// Index of the table in the call.
        table: usize,
        /// What is wrong, with the offending values.
        problem: BagProblem,
    },
    /// A quantization parameter that cannot be used (zero or non-finite scale, zero point out of
    /// range, an option the format does not have).
    #[error("bad quantization parameters for {what}{}: {problem}", named(table))]
    BadQuantParams {
        /// Which tensor or operation.
        what: &'static str,
        /// The table's name, for table quantization.
        table: Option<String>,
        /// What is wrong, with the offending values.
        problem: QuantProblem,
    },
}

/// What is wrong with the bag boundaries of a lookup ([`KernelError::BadBags`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum BagProblem {
    /// Neither `bags` nor `bags + 1` offsets.
    #[error(
        "{offsets} offsets for {bags} bags (expected {bags} or one more with the trailing end)"
    )]
    OffsetCount {
        /// Offsets given.
        offsets: usize,
        /// Bags in the batch.
        bags: usize,
    },
    /// An offset below the one before it or past the ids.
    #[error("offset {index} is {value}: offsets must be non-decreasing within 0..={ids}")]
    Offset {
        /// Position of the offset.
        index: usize,
        /// Its value.
        value: i64,
        /// Number of ids.
        ids: usize,
    },
    /// The first offset is not 0.
    #[error("the first offset is {value}, expected 0")]
    FirstOffset {
        /// Its value.
        value: i64,
    },
    /// The trailing offset is not the number of ids.
    #[error("the trailing offset is {value}, expected the id count {ids}")]
    TrailingOffset {
        /// Its value.
        value: i64,
        /// Number of ids.
        ids: usize,
    },
    /// Not one length per bag.
    #[error("{lengths} lengths for {bags} bags")]
    LengthCount {
        /// Lengths given.
        lengths: usize,
        /// Bags in the batch.
        bags: usize,
    },
    /// A negative length.
    #[error("length {index} is negative ({value})")]
    NegativeLength {
        /// Position of the length.
        index: usize,
        /// Its value.
        value: i64,
    },
    /// Lengths that do not add up to the number of ids.
    #[error("lengths sum to {sum} but there are {ids} ids")]
    LengthSum {
        /// Their sum (saturating).
        sum: u64,
        /// Number of ids.
        ids: usize,
    },
    /// Weighted pooling without per-sample weights.
    #[error("weighted pooling needs per-sample weights")]
    MissingWeights,
    /// A kernel reported a bad id in a bag where the oracle finds none (an internal error).
    #[error("bag {bag} was reported to hold a bad id but none was found")]
    UnreportedBadId {
        /// The bag.
        bag: usize,
    },
}

/// What is wrong with quantization parameters ([`KernelError::BadQuantParams`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum QuantProblem {
    /// A weight scale that is not finite and > 0.
    #[error("scale {index} is {scale}: it must be finite and > 0")]
    Scale {
        /// Which scale (output channel, or 0 per tensor).
        index: usize,
        /// Its value.
        scale: f32,
    },
    /// u8 activation parameters outside their range.
    #[error("scale {scale} must be finite and > 0, zero point {zero_point} within 0..=255")]
    Activation {
        /// The scale.
        scale: f32,
        /// The zero point.
        zero_point: i32,
    },
    /// A code width the operation does not support.
    #[error("{bits} bits per code; expected {expected}")]
    Bits {
        /// The width asked for.
        bits: u32,
        /// The widths allowed.
        expected: &'static str,
    },
    /// A largest code outside `1..=255`.
    #[error("qmax {qmax} outside 1..=255")]
    Qmax {
        /// The value asked for.
        qmax: i32,
    },
    /// An int8 entry point on a layer packed for another precision.
    #[error("the layer was packed for {precision}, not int8")]
    NotInt8 {
        /// The layer's precision, as `Debug` prints it.
        precision: &'static str,
    },
    /// An option that applies only to the N-bit formats (fused8half, fused4, fused2).
    #[error("{option} applies to fused8half, fused4 and fused2 rows, not {format}")]
    NotNBit {
        /// The option (greedy search, least-squares refinement, metric rounding).
        option: &'static str,
        /// The format's name.
        format: &'static str,
    },
    /// A value beyond the largest finite value of a half format.
    #[error("row {row}, column {col}: the value overflows the format (largest finite {largest})")]
    Overflow {
        /// The row.
        row: usize,
        /// The column.
        col: usize,
        /// The format's largest finite value.
        largest: f32,
    },
    /// A row whose scale and bias are not finite in the stored format.
    #[error("row {row}: scale {scale} and bias {bias} are not representable")]
    RowScaleBias {
        /// The row.
        row: usize,
        /// Its scale, in f32.
        scale: f32,
        /// Its bias, in f32.
        bias: f32,
    },
}

fn at(index: Option<usize>) -> String {
    index.map_or_else(String::new, |i| format!(" {i}"))
}

fn named(table: &Option<String>) -> String {
    table
        .as_deref()
        .map_or_else(String::new, |t| format!(" of table {t}"))
}
