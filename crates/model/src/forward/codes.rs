//! u8 activation codes handed from one int8 layer to the next without an f32 round trip: in one
//! pair of parameters (a static next layer), or one pair per row (a per-row dynamic next layer,
//! written by the cross net's element-wise step while each row is in L1).

use quantrec_kernels::gemm::int8::{Int8Input, Int8Kernel, Int8Output, Int8Weights};
use quantrec_kernels::gemm::{
    ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
};

use crate::Result;

/// The parameters of codes in a buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum CodesQ {
    /// One pair for every row (the next layer's static input parameters).
    Tensor(QParams),
    /// One pair per row, in [`RowCodes`].
    Rows,
}

/// Per-row parameters of the codes in flight, and a one-row f32 buffer for rows whose f32 values
/// are not kept.
#[derive(Debug, Default, Clone)]
pub(super) struct RowCodes {
    /// Zero point of each row.
    pub(super) zp: Vec<i32>,
    /// Scale of each row.
    pub(super) scale: Vec<f32>,
    /// One row of f32 values.
    pub(super) row: Vec<f32>,
}

impl RowCodes {
    /// Room for `m` rows' parameters.
    pub(super) fn resize(&mut self, m: usize) {
        self.zp.resize(m, 0);
        self.scale.resize(m, 0.0);
    }
}

/// The packed weights of `layer` when it is int8 with per-row dynamic activations (a layer the
/// cross net can hand per-row codes).
pub(super) fn per_row_input(layer: &PackedLinear) -> Option<&Int8Weights> {
    match layer.precision() {
        Precision::Int8(Int8Spec {
            activations: ActivationQuant::DynamicPerRow,
            ..
        }) => layer.int8_weights(),
        _ => None,
    }
}

/// Runs int8 `layer` on `m` rows of `codes` in parameters `q` (per-row ones from `rows`).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_codes(
    layer: &PackedLinear,
    codes: &[u8],
    q: CodesQ,
    rows: &RowCodes,
    m: usize,
    out: Int8Output<'_>,
    relu: bool,
    lin: &mut LinearScratch,
) -> Result<()> {
    let input = match q {
        CodesQ::Tensor(q) => Int8Input::U8(codes, q),
        CodesQ::Rows => Int8Input::U8PerRow {
            codes,
            zp: &rows.zp[..m],
            scale: &rows.scale[..m],
        },
    };
    Ok(layer.forward_int8(Int8Kernel::active(), input, m, out, relu, lin)?)
}
