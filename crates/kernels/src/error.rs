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
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// Which argument or buffer.
        what: String,
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
    #[error("non-finite value {value} in {what}, row {row}, column {col}")]
    NonFinite {
        /// Which tensor or table.
        what: String,
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
    #[error("bad bag boundaries in table {table}: {reason}")]
    BadBags {
        /// Index of the table in the call.
        table: usize,
        /// What is wrong, with the offending values.
        reason: String,
    },
    /// A quantization parameter that cannot be used (zero or non-finite scale, zero point out of range).
    #[error("bad quantization parameters for {what}: {reason}")]
    BadQuantParams {
        /// Which tensor.
        what: String,
        /// What is wrong.
        reason: String,
    },
}
