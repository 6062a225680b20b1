//! The int8 call: argument checks, activation quantization, per-column epilogue constants, and the
//! split of large problems over rayon (rows; small `m` runs on the calling thread).

use rayon::prelude::*;

use super::{Int8Input, Int8Ops, Int8Output, Int8Scratch, Int8Weights, KG, KT};
use crate::gemm::ActivationQuant;
use crate::gemm::{QParams, check_len, check_qparams};
use crate::{KernelError, Result};

/// Runs the packed GEMM over `m` rows of `a` (rows of `kp` codes, zero-padded, in row blocks of height
/// `h`, see [`super::scalar::a_offset`]) and applies `epi_fn` to every tile, writing into `out` (rows
/// relative to `a`). Arguments: `a, kp, m, h, weights, epilogue constants, epilogue, out`.
#[allow(clippy::type_complexity)]
pub(crate) type GemmFn =
    fn(&[u8], usize, usize, usize, &Int8Weights, &Epi<'_>, EpiFn, &mut Out<'_>);

/// Turns one tile of raw accumulators (`rows` rows of stride `ldt`, `cols` valid columns starting at
/// output column `col0`) into output row `row0..row0 + rows`.
pub(crate) type EpiFn = fn(&[i32], usize, usize, usize, usize, usize, &Epi<'_>, &mut Out<'_>);

/// The AMX tile path: activations in tiles (see `amx`), a GEMM over them. Rows are padded to a
/// multiple of [`TILE_ROWS`] (the padding rows' outputs are computed and discarded) and `k` to a
/// multiple of [`KT`] (zero codes).
#[derive(Clone, Copy)]
pub(crate) struct TileOps {
    /// Fewest rows for which the tile path is used.
    pub(crate) min_rows: usize,
    /// Quantizes `m` rows of `k` f32: `(x, m, k, lda, 1/scale, zero point, out)`.
    pub(crate) quantize: TileQuantizeFn,
    /// Copies `m` rows of `k` u8 codes: `(x, m, k, lda, out)`.
    pub(crate) copy: fn(&[u8], usize, usize, usize, &mut [u8]),
    /// The GEMM over `m` rows in tiles with its own epilogue: `(a, lda, m, weights, epilogue
    /// constants, out)`.
    pub(crate) gemm: TileGemmFn,
    /// Rows per one-thread chunk for rows of `lda` codes, where the kernel wants its own
    /// (a multiple of [`TILE_ROWS`]); `None` for the default of about [`CHUNK_BYTES`].
    pub(crate) chunk_rows: fn(usize) -> Option<usize>,
}

/// See [`TileOps::quantize`] (reciprocal scales and zero points: one for every row, or one per row).
pub(crate) type TileQuantizeFn = fn(&[f32], usize, usize, usize, &[f32], &[i32], &mut [u8]);

/// See [`TileOps::gemm`].
pub(crate) type TileGemmFn = fn(&[u8], usize, usize, &Int8Weights, &Epi<'_>, &mut Out<'_>);

/// Rows per AMX tile, the row granularity of the tile layout.
pub(crate) const TILE_ROWS: usize = 16;

/// Largest register tile (rows × columns) any kernel produces.
pub(crate) const TILE_MAX: usize = 384;

/// Most columns of one tile any kernel hands to an epilogue (VNNI: 8 panels of 16).
pub(crate) const TILE_COLS: usize = 128;

/// Per-row activation parameters ([`ActivationQuant::DynamicPerRow`](crate::gemm::ActivationQuant)):
/// the zero point and scale of each row, indexed like the rows of the [`Out`] they go with.
#[derive(Clone, Copy)]
pub(crate) struct RowQ<'a> {
    /// `x_zp[i]`.
    pub(crate) zp: &'a [i32],
    /// `x_scale[i]`.
    pub(crate) scale: &'a [f32],
    /// `colsum[j]` of the weight codes.
    pub(crate) col_sums: &'a [i32],
    /// `w_scale[j]`.
    pub(crate) w_scales: &'a [f32],
}

/// Per-call epilogue constants.
#[derive(Clone, Copy)]
pub(crate) struct Epi<'a> {
    /// Output row stride.
    pub(crate) n: usize,
    /// `x_zp · colsum[j]` (per-tensor activation parameters).
    pub(crate) corr: &'a [i32],
    /// `x_scale · w_scale[j]` (per-tensor activation parameters).
    pub(crate) mult: &'a [f32],
    /// Per-row activation parameters, which replace `corr` and `mult` when present.
    pub(crate) rows: Option<RowQ<'a>>,
    /// Bias per column.
    pub(crate) bias: &'a [f32],
    /// ReLU (f32) or ReLU folded into the u8 clamp.
    pub(crate) relu: bool,
    /// `1 / out_scale` (u8 output).
    pub(crate) out_inv: f32,
    /// Output zero point (u8 output).
    pub(crate) out_zp: i32,
}

/// Where a block of rows goes.
pub(crate) enum Out<'a> {
    /// Dequantized f32.
    F32(&'a mut [f32]),
    /// Requantized u8.
    U8(&'a mut [u8]),
    /// Raw accumulators.
    I32(&'a mut [i32]),
}

/// The portable epilogue, written so it auto-vectorizes inside each level's `target_feature` wrapper.
/// The arithmetic is the documented one (multiply, then add; no fused multiply-add), so every level
/// gives bit-identical outputs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn epilogue_generic(
    tile: &[i32],
    ldt: usize,
    rows: usize,
    row0: usize,
    col0: usize,
    cols: usize,
    epi: &Epi<'_>,
    out: &mut Out<'_>,
) {
    let n = epi.n;
    let bias = &epi.bias[col0..col0 + cols];
    // Per-row parameters: this row's `x_zp · colsum[j]` and `x_scale · w_scale[j]` (the same
    // products the per-tensor path computes once per call), built per row on the stack.
    let (mut row_corr, mut row_mult) = ([0i32; TILE_COLS], [0f32; TILE_COLS]);
    for r in 0..rows {
        let (corr, mult) = match &epi.rows {
            None => (&epi.corr[col0..col0 + cols], &epi.mult[col0..col0 + cols]),
            Some(q) => {
                let (zp, scale) = (q.zp[row0 + r], q.scale[row0 + r]);
                let sums = &q.col_sums[col0..col0 + cols];
                let ws = &q.w_scales[col0..col0 + cols];
                for j in 0..cols {
                    row_corr[j] = zp * sums[j];
                    row_mult[j] = scale * ws[j];
                }
                (&row_corr[..cols], &row_mult[..cols])
            }
        };
        let t = &tile[r * ldt..r * ldt + cols];
        let base = (row0 + r) * n + col0;
        match out {
            Out::F32(o) => {
                let o = &mut o[base..base + cols];
                if epi.relu {
                    for j in 0..cols {
                        let v = t[j].wrapping_sub(corr[j]) as f32 * mult[j] + bias[j];
                        o[j] = v.max(0.0);
                    }
                } else {
                    for j in 0..cols {
                        o[j] = t[j].wrapping_sub(corr[j]) as f32 * mult[j] + bias[j];
                    }
                }
            }
            Out::U8(o) => {
                let o = &mut o[base..base + cols];
                let lo = if epi.relu { epi.out_zp as f32 } else { 0.0 };
                let zp = epi.out_zp as f32;
                for j in 0..cols {
                    let v = t[j].wrapping_sub(corr[j]) as f32 * mult[j] + bias[j];
                    o[j] = ((v * epi.out_inv).round_ties_even() + zp).clamp(lo, 255.0) as u8;
                }
            }
            Out::I32(o) => o[base..base + cols].copy_from_slice(t),
        }
    }
}

/// Rows scanned and then quantized together under per-row dynamic activations (rounded up to the
/// layout's block height): 16 rows of DLRM-v2's 3456 inputs are 221 KB, so the quantizing pass
/// reads them from L2 rather than from wherever the whole input lives.
const PER_ROW_BLOCK: usize = 16;

/// Activation bytes per row chunk on one thread (about an eighth of L2).
const CHUNK_BYTES: usize = 1 << 18;

/// The output elements `start..end` as an [`Out`] of the same kind.
pub(crate) fn rows_of<'b>(out: &'b mut Out<'_>, start: usize, end: usize) -> Out<'b> {
    match out {
        Out::F32(o) => Out::F32(&mut o[start..end]),
        Out::U8(o) => Out::U8(&mut o[start..end]),
        Out::I32(o) => Out::I32(&mut o[start..end]),
    }
}

/// Work (m·n·k MACs) below which a call stays on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 22;

/// Validates, quantizes, and runs one int8 call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    w: &Int8Weights,
    ops: &Int8Ops,
    x: Int8Input<'_>,
    m: usize,
    bias: &[f32],
    out: Int8Output<'_>,
    relu: bool,
    scratch: &mut Int8Scratch,
) -> Result<()> {
    let (n, k, kp) = (w.n, w.k, w.kp);
    match x {
        Int8Input::F32(v) => check_len("int8 linear input", m * k, v.len())?,
        Int8Input::U8(v, q) => {
            check_len("int8 linear input", m * k, v.len())?;
            check_qparams("int8 linear input activations", q)?;
        }
        Int8Input::U8PerRow { codes, zp, scale } => {
            check_len("int8 linear input", m * k, codes.len())?;
            check_len("int8 linear input row zero points", m, zp.len())?;
            check_len("int8 linear input row scales", m, scale.len())?;
            for (&zero_point, &scale) in zp.iter().zip(scale) {
                check_qparams(
                    "int8 linear input activations",
                    QParams { scale, zero_point },
                )?;
            }
        }
    }
    let (out, out_q) = match out {
        Int8Output::F32(o) => {
            check_len("int8 linear output", m * n, o.len())?;
            (Out::F32(o), None)
        }
        Int8Output::U8(o, q) => {
            check_len("int8 linear output", m * n, o.len())?;
            check_qparams("int8 linear output activations", q)?;
            (Out::U8(o), Some(q))
        }
        Int8Output::RawI32(o) => {
            check_len("int8 linear output", m * n, o.len())?;
            (Out::I32(o), None)
        }
    };
    let Int8Scratch {
        act,
        corr,
        mult,
        row_zp,
        row_scale,
        row_inv,
    } = scratch;
    let per_row = match x {
        Int8Input::F32(_) => w.spec.activations == ActivationQuant::DynamicPerRow,
        Int8Input::U8(..) => false,
        Int8Input::U8PerRow { .. } => true,
    };
    let tiles = ops.tiles.filter(|t| m >= t.min_rows);
    // Layout: AMX tiles (rows padded to 16, k to 64), or row blocks of height h for the VNNI kernels.
    let (h, lda, rows) = match tiles {
        Some(_) => (
            TILE_ROWS,
            kp.next_multiple_of(KT),
            m.next_multiple_of(TILE_ROWS),
        ),
        None => {
            let (h, lda) = (ops.a_layout)(m, kp);
            (h, lda, m)
        }
    };
    let (a, lda, xq): (&[u8], usize, Option<QParams>) = match x {
        Int8Input::F32(v) => {
            row_zp.clear();
            row_scale.clear();
            row_inv.clear();
            if act.as_slice().len() < rows * lda {
                act.resize(rows * lda);
            }
            let buf = &mut act.as_mut_slice()[..rows * lda];
            // Quantizes rows r0..r1 (r0 a multiple of the layout's block height) with the
            // parameters pushed so far (one for all rows, or one per row from r0 on).
            let quantize = |r0: usize, r1: usize, inv: &[f32], zp: &[i32], buf: &mut [u8]| {
                let (x, out) = (&v[r0 * k..r1 * k], &mut buf[r0 * lda..]);
                match tiles {
                    Some(t) => (t.quantize)(x, r1 - r0, k, lda, inv, zp, out),
                    None => (ops.quantize)(x, r1 - r0, k, lda, h, inv, zp, out),
                }
            };
            // Per-row ranges: one scan per row, which also finds any non-finite value; the
            // whole input's range is the rows' together (min and max are exact). Each block of
            // rows is quantized right after its scan, while its values are still in cache.
            let (lo, hi, finite) = if per_row {
                let (mut lo, mut hi, mut finite) = (f32::INFINITY, f32::NEG_INFINITY, true);
                let block = PER_ROW_BLOCK.next_multiple_of(h);
                let mut r0 = 0;
                while r0 < m {
                    let r1 = m.min(r0 + block);
                    for i in r0..r1 {
                        let (rlo, rhi, rfin) = (ops.min_max)(&v[i * k..(i + 1) * k]);
                        finite &= rfin;
                        lo = lo.min(rlo);
                        hi = hi.max(rhi);
                        let q = w.row_qparams(rlo, rhi);
                        row_zp.push(q.zero_point);
                        row_scale.push(q.scale);
                        row_inv.push(1.0 / q.scale);
                    }
                    // Past a non-finite value the call fails: nothing more is quantized.
                    if finite {
                        quantize(r0, r1, &row_inv[r0..r1], &row_zp[r0..r1], buf);
                    }
                    r0 = r1;
                }
                if m == 0 || k == 0 {
                    (0.0, 0.0, finite)
                } else {
                    (lo, hi, finite)
                }
            } else {
                (ops.min_max)(v)
            };
            if !finite {
                let i = v.iter().position(|x| !x.is_finite()).unwrap_or(0);
                return Err(KernelError::NonFinite {
                    what: "int8 linear input",
                    table: None,
                    row: i / k.max(1),
                    col: i % k.max(1),
                    value: v[i],
                });
            }
            let q = w.act_qparams(lo, hi);
            if !per_row {
                row_zp.push(q.zero_point);
                row_inv.push(1.0 / q.scale);
                quantize(0, m, row_inv, row_zp, buf);
            }
            (&act.as_slice()[..rows * lda], lda, Some(q))
        }
        // Codes. Per-row codes carry their own parameters, which replace the per-tensor ones in
        // every epilogue (no per-tensor `xq`).
        Int8Input::U8(v, _) | Int8Input::U8PerRow { codes: v, .. } => {
            let q = match x {
                Int8Input::U8(_, q) => Some(q),
                _ => None,
            };
            if tiles.is_none() && k == lda && h == 1 {
                (v, k, q)
            } else {
                if act.as_slice().len() < rows * lda {
                    act.resize(rows * lda);
                }
                let buf = &mut act.as_mut_slice()[..rows * lda];
                match tiles {
                    Some(t) => (t.copy)(v, m, k, lda, buf),
                    None => super::scalar::block_codes(v, m, k, lda, h, buf),
                }
                (&act.as_slice()[..rows * lda], lda, q)
            }
        }
    };
    debug_assert_eq!(lda % KG, 0);
    corr.clear();
    mult.clear();
    if let Some(xq) = xq {
        corr.extend(w.col_sums.iter().map(|&s| xq.zero_point * s));
        mult.extend(w.scales.iter().map(|&s| xq.scale * s));
    }
    let epi = Epi {
        n,
        corr,
        mult,
        rows: None,
        bias,
        relu,
        out_inv: out_q.map_or(1.0, |q| 1.0 / q.scale),
        out_zp: out_q.map_or(0, |q| q.zero_point),
    };
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = crate::parallel::threads();
    // Row chunks are a multiple of the block height, so they start on block boundaries.
    let unit = if h == 1 { 32 } else { h };
    // The activations of rows r0..r1 (with the tile layout's padding rows).
    let a_rows = |r0: usize, r1: usize| &a[r0 * lda..r1.next_multiple_of(h).min(rows) * lda];
    // Rows r0..r1 of the call; per-row parameters are sliced to them (epilogue rows are relative).
    let (row_zp, row_scale): (&[i32], &[f32]) = match x {
        Int8Input::U8PerRow { zp, scale, .. } => (zp, scale),
        _ => (row_zp, row_scale),
    };
    let gemm = |r0: usize, r1: usize, out: &mut Out<'_>| {
        let epi = Epi {
            rows: per_row.then(|| RowQ {
                zp: &row_zp[r0..r1],
                scale: &row_scale[r0..r1],
                col_sums: &w.col_sums,
                w_scales: &w.scales,
            }),
            ..epi
        };
        let a = a_rows(r0, r1);
        match tiles {
            Some(t) => (t.gemm)(a, lda, r1 - r0, w, &epi, out),
            None => (ops.gemm)(a, lda, r1 - r0, h, w, &epi, ops.epilogue, out),
        }
    };
    if m <= 16 || threads == 1 || m * n * kp < PARALLEL_MIN_WORK {
        // One thread: chunks of about CHUNK_BYTES of activations, so a chunk and the weights it
        // meets stay in L2 while every column block passes over it.
        let mc = tiles
            .and_then(|t| (t.chunk_rows)(lda))
            .unwrap_or_else(|| (CHUNK_BYTES / lda.max(1)).max(unit) / unit * unit);
        let mut out = out;
        let mut r0 = 0;
        while r0 < m {
            let r1 = m.min(r0 + mc);
            let mut part = rows_of(&mut out, r0 * n, r1 * n);
            gemm(r0, r1, &mut part);
            r0 = r1;
        }
        return Ok(());
    }
    // Several threads: about two chunks per thread.
    let chunk = m.div_ceil(threads * 2).div_ceil(unit) * unit;
    macro_rules! par_rows {
        ($o:expr, $variant:ident) => {
            $o.par_chunks_mut(chunk * n)
                .enumerate()
                .for_each(|(ci, oc)| {
                    let r0 = ci * chunk;
                    let r1 = r0 + oc.len() / n;
                    gemm(r0, r1, &mut Out::$variant(oc));
                })
        };
    }
    match out {
        Out::F32(o) => par_rows!(o, F32),
        Out::U8(o) => par_rows!(o, U8),
        Out::I32(o) => par_rows!(o, I32),
    }
    Ok(())
}
