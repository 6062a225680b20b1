//! The DCN-v2 cross net of an unobserved forward pass, fused. Each layer computes
//! `x_{l+1} = x0 ⊙ (W_l (V_l x_l) + b_l) + x_l` with `W_l` run in row blocks whose output `u`
//! stays in L2 while the element-wise step consumes it; when the layer after (the next `V`, or
//! the first top layer) is int8 with static input parameters, the element-wise step also writes
//! `x_{l+1}`'s u8 codes in those parameters ([`cross_combine_quantize`]), and when it is int8 with
//! per-row dynamic activations, each row's codes in that row's own parameters
//! ([`cross_combine_quantize_rows`], while the row is in L1), so that layer neither scans nor
//! quantizes f32 again (after the last cross layer, the f32 `x_L` is then not even written).
//! Every value is bit for bit what the observed (unfused) path computes: row blocks only split
//! row-independent layers (a per-tensor dynamic `W` runs on the whole chunk), and the codes and
//! parameters are the ones the next layer would compute from the same f32 values.

use quantrec_kernels::KernelError;
use quantrec_kernels::gemm::LinearScratch;
use quantrec_kernels::gemm::int8::Int8Output;
use quantrec_kernels::gemm::int8::cross_quant::{
    RowParams, cross_combine_quantize, cross_combine_quantize_rows,
};
use quantrec_kernels::interaction::cross_combine;

use super::codes::{CodesQ, RowCodes, forward_codes, per_row_input};
use super::{per_tensor_dynamic, static_input};
use crate::Result;
use crate::model::Model;

/// Rows of one `W` block: `u` is `ROWS × width` f32 (442 KB at DLRM-v2's width 3456), so it stays
/// in a 1 MiB L2 between the GEMM's epilogue and the element-wise step; int8 GEMMs run at full
/// speed from 16 rows.
const ROWS: usize = 32;

/// Buffers of [`Model::cross_net`].
pub(super) struct CrossBufs<'a> {
    /// `x_l` in, `x_L` out.
    pub(super) inter: &'a mut Vec<f32>,
    /// `x_{l+1}` while it is computed.
    pub(super) next: &'a mut Vec<f32>,
    /// `V x` in f32.
    pub(super) vx: &'a mut Vec<f32>,
    /// `W (V x) + b` of one row block.
    pub(super) u: &'a mut Vec<f32>,
    /// `V x` as u8 codes in `W`'s input parameters.
    pub(super) ua: &'a mut Vec<u8>,
    /// `x_l` as u8 codes in the next layer's input parameters.
    pub(super) xq: &'a mut Vec<u8>,
    /// Their per-row parameters, when the next layer is per-row dynamic.
    pub(super) rowq: &'a mut RowCodes,
    pub(super) lin: &'a mut LinearScratch,
}

/// Rows of a chunk-relative error counted from the start of the row block `r0`.
fn in_chunk(r0: usize) -> impl Fn(KernelError) -> KernelError {
    move |e| match e {
        KernelError::NonFinite {
            what,
            table,
            row,
            col,
            value,
        } => KernelError::NonFinite {
            what,
            table,
            row: row + r0,
            col,
            value,
        },
        other => other,
    }
}

impl Model {
    /// Runs the cross net on `m` rows of `x0 = feat`; `x_L` ends in `bufs.inter`. Returns the
    /// parameters of `x_L`'s codes in `bufs.xq` when the first top layer reads codes (the top MLP
    /// then starts from u8; with per-row parameters, in `bufs.rowq`, `inter` is not written).
    pub(super) fn cross_net(
        &self,
        feat: &[f32],
        m: usize,
        rank: usize,
        bufs: CrossBufs<'_>,
    ) -> Result<Option<CodesQ>> {
        let CrossBufs {
            inter,
            next,
            vx,
            u,
            ua,
            xq,
            rowq,
            lin,
        } = bufs;
        let chain = self.chain_int8;
        let width = self.config.concat_width();
        let feat = &feat[..m * width];
        // The codes of x_l in `xq` (in V_l's input parameters), when they are there.
        let mut x_q: Option<CodesQ> = None;
        for (l, c) in self.cross.iter().enumerate() {
            let x: &[f32] = if l == 0 { feat } else { &inter[..m * width] };
            // V: an int8 V feeding a static int8 W hands it u8 codes in W's input parameters.
            let w_in = match static_input(&c.w) {
                Some(q) if chain && c.v.int8_weights().is_some() => Some(q),
                _ => None,
            };
            match (x_q, w_in) {
                (None, Some(q)) => {
                    ua.resize(m * rank, 0);
                    c.v.forward_f32_to_u8(x, m, &mut ua[..m * rank], q, false, lin)?;
                }
                (None, None) => {
                    vx.resize(m * rank, 0.0);
                    c.v.forward(x, m, &mut vx[..m * rank], false, lin)?;
                }
                (Some(qi), Some(q)) => {
                    ua.resize(m * rank, 0);
                    let out = Int8Output::U8(&mut ua[..m * rank], q);
                    forward_codes(&c.v, &xq[..m * width], qi, rowq, m, out, false, lin)?;
                }
                (Some(qi), None) => {
                    vx.resize(m * rank, 0.0);
                    let out = Int8Output::F32(&mut vx[..m * rank]);
                    forward_codes(&c.v, &xq[..m * width], qi, rowq, m, out, false, lin)?;
                }
            }
            // The layer that reads x_{l+1}: codes for it when it is int8, static or per-row.
            let last = l + 1 == self.cross.len();
            let consumer = match self.cross.get(l + 1) {
                Some(n) => Some(&n.v),
                None => self.top.first(),
            };
            let static_q = consumer.and_then(static_input).filter(|_| chain);
            let rows_w = consumer.and_then(per_row_input).filter(|_| chain);
            let out_q = match (static_q, rows_w) {
                (Some(q), _) => Some(CodesQ::Tensor(q)),
                (None, Some(_)) => Some(CodesQ::Rows),
                (None, None) => None,
            };
            if out_q.is_some() {
                xq.resize(m * width, 0);
            }
            if rows_w.is_some() {
                rowq.resize(m);
            }
            // x_L is only read by the top MLP, which then reads its per-row codes instead.
            let keep_f32 = !(last && rows_w.is_some());
            if keep_f32 {
                next.resize(m * width, 0.0);
            }
            // W and the element-wise step, a row block at a time.
            let block = if per_tensor_dynamic(&c.w) {
                m
            } else {
                ROWS.min(m)
            };
            u.resize(block * width, 0.0);
            let mut r0 = 0;
            while r0 < m {
                let r1 = m.min(r0 + block);
                let rows = r1 - r0;
                let ub = &mut u[..rows * width];
                match w_in {
                    Some(q) => {
                        let codes = &ua[r0 * rank..r1 * rank];
                        c.w.forward_u8_to_f32(codes, q, rows, ub, false, lin)?;
                    }
                    None => {
                        c.w.forward(&vx[r0 * rank..r1 * rank], rows, ub, false, lin)?
                    }
                }
                let span = r0 * width..r1 * width;
                let (x0r, xr) = (&feat[span.clone()], &x[span.clone()]);
                match (static_q, rows_w) {
                    (Some(q), _) => {
                        let nr = &mut next[span.clone()];
                        cross_combine_quantize(x0r, ub, xr, width, q, nr, &mut xq[span])
                            .map_err(in_chunk(r0))?
                    }
                    (None, Some(w)) => {
                        let RowCodes { zp, scale, row } = &mut *rowq;
                        let params = RowParams {
                            zp: &mut zp[r0..r1],
                            scale: &mut scale[r0..r1],
                        };
                        let nr = keep_f32.then(|| &mut next[span.clone()]);
                        let codes = &mut xq[span];
                        cross_combine_quantize_rows(x0r, ub, xr, width, w, nr, row, codes, params)
                            .map_err(in_chunk(r0))?
                    }
                    (None, None) => cross_combine(x0r, ub, xr, &mut next[span])?,
                }
                r0 = r1;
            }
            if keep_f32 {
                std::mem::swap(inter, next);
            }
            x_q = out_q;
        }
        if self.cross.is_empty() {
            inter.clear();
            inter.extend_from_slice(feat);
        }
        Ok(x_q)
    }
}
