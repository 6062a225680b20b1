//! The forward pass: dense → bottom MLP → pooled tables → interaction → top MLP → logit → sigmoid.

mod codes;
mod cross;

use std::sync::Mutex;

use rayon::prelude::*;

use quantrec_kernels::Isa;
use quantrec_kernels::KernelError;
use quantrec_kernels::aligned::AlignedF32;
use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, Indices, Lookup, Parallelism, Pooling, TableBag, pool_tables_with_isa,
};
use quantrec_kernels::gemm::int8::Int8Output;
use quantrec_kernels::gemm::{
    ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
};
use quantrec_kernels::interaction::{cross_combine, dot_interaction};

use crate::config::Interaction;
use crate::model::Model;
use crate::tables::StoredTable;
use crate::{ModelError, Result};
use codes::{CodesQ, RowCodes, forward_codes};
use cross::CrossBufs;
use quantrec_data::batch::Batch;
use quantrec_data::view::BatchView;

/// A row-major `[rows, cols]` tensor handed to an [`Observer`].
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The values (`rows × cols`).
    pub data: &'a [f32],
    /// Rows (samples).
    pub rows: usize,
    /// Columns (features).
    pub cols: usize,
}

impl<'a> View<'a> {
    /// Views `data` as `rows × cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View { data, rows, cols }
    }

    /// An empty view (inputs that are not f32, e.g. table ids).
    pub fn empty(rows: usize) -> Self {
        View {
            data: &[],
            rows,
            cols: 0,
        }
    }
}

/// Receives each layer's input and output during [`Model::predict_observed`] (calibration,
/// debugging). Layer names: `bottom.{i}`, `table.{t}` (input empty, output the pooled rows),
/// `interaction` (input the `[bottom out, tables...]` vector), `cross.{l}.v`, `cross.{l}.w`,
/// `cross.{l}` (input `x_l`, output `x_{l+1}`), `top.{i}` (the last one's output is the logit).
/// Names of dense layers match the plan's entries, so a layer's observed input is what its static
/// activation parameters are calibrated on. Large batches arrive chunk by chunk (see
/// [`Model::set_chunk_size`]).
pub trait Observer {
    /// Called once per layer and chunk, in forward order.
    fn observe(&mut self, layer: &str, input: View<'_>, output: View<'_>);
}

/// Buffers of one chunk.
#[derive(Debug, Default, Clone)]
struct ChunkScratch {
    a: Vec<f32>,
    b: Vec<f32>,
    /// Concatenated [bottom output, pooled tables] rows: line-aligned so pooled rows (at multiples
    /// of the table width) are written without split stores.
    feat: AlignedF32,
    inter: Vec<f32>,
    vx: Vec<f32>,
    u: Vec<f32>,
    offsets: Vec<i64>,
    ua: Vec<u8>,
    ub: Vec<u8>,
    /// u8 codes of the current cross-net state for the next static int8 layer (see
    /// [`Model::cross_net`]).
    xq: Vec<u8>,
    /// Per-row parameters of `xq`'s codes (see [`codes`]).
    rowq: RowCodes,
    lin: LinearScratch,
}

/// Reusable buffers for [`Model::predict`]: one set of chunk buffers per worker thread (not per
/// chunk, so their size is bounded by the chunk size whatever the batch), plus the batch's logits
/// and probabilities; grown on first use and then reused, so steady-state calls do not allocate
/// memory that grows with the batch. One per calling thread.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    chunks: Vec<ChunkScratch>,
    logits: Vec<f32>,
    probs: Vec<f32>,
}

impl Scratch {
    /// Empty buffers.
    pub fn new() -> Self {
        Scratch::default()
    }

    /// Sets of chunk buffers held: at most the rayon threads of the largest call (never one per
    /// chunk), 0 before the first call.
    pub fn chunk_buffer_sets(&self) -> usize {
        self.chunks.len()
    }
}

type Obs<'o> = Option<&'o mut dyn Observer>;

/// Fewest rows of a chunk that [`Model::parallel_chunk`] cuts for the threads (int8 GEMMs run at
/// full speed from 16 rows).
const MIN_PARALLEL_ROWS: usize = 16;

fn observe(obs: &mut Obs<'_>, name: impl FnOnce() -> String, input: View<'_>, output: View<'_>) {
    if let Some(o) = obs.as_deref_mut() {
        o.observe(&name(), input, output);
    }
}

/// Numerically stable logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The static input parameters of an int8 layer (None for other layers and dynamic int8).
fn static_input(layer: &PackedLinear) -> Option<QParams> {
    match layer.precision() {
        Precision::Int8(Int8Spec {
            activations: ActivationQuant::Static(q),
            ..
        }) => Some(q),
        _ => None,
    }
}

/// Whether `layer` is int8 with per-tensor dynamic activations (its range is its whole input's,
/// so its rows depend on each other).
fn per_tensor_dynamic(layer: &PackedLinear) -> bool {
    matches!(
        layer.precision(),
        Precision::Int8(Int8Spec {
            activations: ActivationQuant::Dynamic,
            ..
        })
    )
}

/// `real = scale · (q − zero_point)` of every code.
fn dequantize_u8(codes: &[u8], q: QParams, out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        codes
            .iter()
            .map(|&c| q.scale * (i32::from(c) - q.zero_point) as f32),
    );
}

/// Buffers of [`mlp`].
struct MlpBufs<'a> {
    a: &'a mut Vec<f32>,
    b: &'a mut Vec<f32>,
    ua: &'a mut Vec<u8>,
    ub: &'a mut Vec<u8>,
    /// Per-row parameters of an input given as per-row codes.
    rowq: &'a RowCodes,
    lin: &'a mut LinearScratch,
}

/// Runs `layers` on `input` (`m × k0`); the output ends in `a`. ReLU after every layer, or after
/// every layer but the last when `!relu_last`.
///
/// With `chain`, an int8 layer followed by an int8 layer with static activation parameters hands
/// it u8 codes directly: it requantizes its accumulators with the next layer's input parameters
/// (ReLU folded into the clamp) instead of writing f32 that the next layer would quantize again.
/// The observer still sees f32: a chained output is shown dequantized (exactly the values the
/// next layer runs on).
///
/// With `input_q`, the input is already u8 codes in `ua` (`m × k0`, in the first layer's static
/// input parameters, or per row in `bufs.rowq`) and `input` is not read; only without an observer.
#[allow(clippy::too_many_arguments)]
fn mlp(
    layers: &[PackedLinear],
    prefix: &str,
    input: &[f32],
    input_q: Option<CodesQ>,
    m: usize,
    bufs: MlpBufs<'_>,
    relu_last: bool,
    chain: bool,
    obs: &mut Obs<'_>,
) -> Result<()> {
    let MlpBufs {
        a,
        b,
        ua,
        ub,
        rowq,
        lin,
    } = bufs;
    debug_assert!(input_q.is_none() || (obs.is_none() && !layers.is_empty()));
    if layers.is_empty() {
        a.clear();
        a.extend_from_slice(input);
        return Ok(());
    }
    // The parameters of the u8 codes in `ua` when the current input is u8.
    let mut u8_in: Option<CodesQ> = input_q;
    for (i, layer) in layers.iter().enumerate() {
        let (n, k) = (layer.n(), layer.k());
        let relu = relu_last || i + 1 < layers.len();
        let out_q = match layers.get(i + 1) {
            Some(next) if chain && layer.int8_weights().is_some() => static_input(next),
            _ => None,
        };
        let x: &[f32] = match (i, u8_in) {
            (0, None) => input,
            (_, None) => &a[..m * k],
            (0, Some(_)) => &[],
            // Only the observer reads the f32 view of a u8 input.
            (_, Some(_)) if obs.is_some() => &a[..m * k],
            _ => &[],
        };
        match (u8_in, out_q) {
            (None, None) => {
                b.resize(m * n, 0.0);
                layer.forward(x, m, &mut b[..m * n], relu, lin)?;
            }
            (None, Some(q)) => {
                ub.resize(m * n, 0);
                layer.forward_f32_to_u8(x, m, &mut ub[..m * n], q, relu, lin)?;
            }
            (Some(qi), None) => {
                b.resize(m * n, 0.0);
                let out = Int8Output::F32(&mut b[..m * n]);
                forward_codes(layer, &ua[..m * k], qi, rowq, m, out, relu, lin)?;
            }
            (Some(qi), Some(q)) => {
                ub.resize(m * n, 0);
                let out = Int8Output::U8(&mut ub[..m * n], q);
                forward_codes(layer, &ua[..m * k], qi, rowq, m, out, relu, lin)?;
            }
        }
        if let Some(q) = out_q {
            if obs.is_some() {
                // `a` holds this layer's input (when it is not `input`), so dequantize into `b`.
                dequantize_u8(&ub[..m * n], q, b);
            }
            std::mem::swap(ua, ub);
        }
        if obs.is_some() {
            let x: &[f32] = if i == 0 { input } else { &a[..m * k] };
            observe(
                obs,
                || format!("{prefix}.{i}"),
                View::new(x, m, k),
                View::new(&b[..m * n], m, n),
            );
        }
        if obs.is_some() || out_q.is_none() {
            std::mem::swap(a, b);
        }
        u8_in = out_q.map(CodesQ::Tensor);
    }
    Ok(())
}

impl Model {
    /// Click probabilities of every sample of `batch` (`batch.size` values in `scratch`).
    pub fn predict<'s>(&self, batch: &Batch, scratch: &'s mut Scratch) -> Result<&'s [f32]> {
        self.predict_view(&batch.view(), scratch)
    }

    /// Logits (before the sigmoid) of every sample of `batch`.
    pub fn predict_logits<'s>(&self, batch: &Batch, scratch: &'s mut Scratch) -> Result<&'s [f32]> {
        self.predict_logits_view(&batch.view(), scratch)
    }

    /// [`Model::predict_logits`] on at most `threads` threads of the current rayon pool (1: on the
    /// calling thread alone). The result does not depend on `threads`: chunk boundaries are cut
    /// so that no row's score changes (see [`Model::set_chunk_size`]). A server running several
    /// calls at once runs each on one thread instead of splitting every call over all of them.
    pub fn predict_logits_threads<'s>(
        &self,
        batch: &Batch,
        scratch: &'s mut Scratch,
        threads: usize,
    ) -> Result<&'s [f32]> {
        let batch = batch.view();
        self.check_batch(&batch)?;
        let threads = threads.max(1);
        quantrec_kernels::parallel::with_max_threads(threads, || {
            self.run_checked(&batch, scratch, None, threads)
        })?;
        Ok(&scratch.logits[..batch.size])
    }

    /// [`Model::predict`] on borrowed inputs: the same checks, errors and bits.
    pub fn predict_view<'s>(
        &self,
        batch: &BatchView<'_>,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [f32]> {
        self.run(batch, scratch, None)?;
        Ok(probabilities(scratch))
    }

    /// [`Model::predict_logits`] on borrowed inputs: the same checks, errors and bits.
    pub fn predict_logits_view<'s>(
        &self,
        batch: &BatchView<'_>,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [f32]> {
        self.run(batch, scratch, None)?;
        Ok(&scratch.logits[..batch.size])
    }

    /// Like [`Model::predict`], handing every layer's input and output to `observer`. Chunks run
    /// one after another (not in parallel) so the observer sees them in order; the outputs are the
    /// same as [`Model::predict`]'s.
    pub fn predict_observed<'s>(
        &self,
        batch: &Batch,
        scratch: &'s mut Scratch,
        observer: &mut dyn Observer,
    ) -> Result<&'s [f32]> {
        self.run(&batch.view(), scratch, Some(observer))?;
        Ok(probabilities(scratch))
    }

    fn run(&self, batch: &BatchView<'_>, scratch: &mut Scratch, obs: Obs<'_>) -> Result<()> {
        self.check_batch(batch)?;
        self.run_checked(batch, scratch, obs, usize::MAX)
    }

    /// Runs a checked batch on at most `max_threads` threads of the current pool.
    fn run_checked(
        &self,
        batch: &BatchView<'_>,
        scratch: &mut Scratch,
        obs: Obs<'_>,
        max_threads: usize,
    ) -> Result<()> {
        // Remote tables (crate::remote): the batch's rows are fetched into compact local tables.
        if let Some(source) = &self.row_source {
            let local = crate::remote::gather(self, source.as_ref(), batch)?;
            return self.run_tables(&local.tables, &local.view(batch), scratch, obs, max_threads);
        }
        self.run_tables(&self.tables, batch, scratch, obs, max_threads)
    }

    fn run_tables(
        &self,
        tables: &[StoredTable],
        batch: &BatchView<'_>,
        scratch: &mut Scratch,
        mut obs: Obs<'_>,
        max_threads: usize,
    ) -> Result<()> {
        let size = batch.size;
        let threads = if obs.is_some() {
            1
        } else {
            quantrec_kernels::parallel::threads().min(max_threads.max(1))
        };
        let chunk = self.parallel_chunk(size, threads);
        let n_chunks = size.div_ceil(chunk).max(1);
        // One set of chunk buffers per worker, not per chunk: a 32k-row call reuses the same
        // few megabytes instead of touching fresh pages for each of its 128 chunks.
        let workers = n_chunks.min(threads);
        if scratch.chunks.len() < workers {
            scratch.chunks.resize_with(workers, ChunkScratch::default);
        }
        scratch.logits.resize(size, 0.0);
        if size == 0 {
            return Ok(());
        }
        let logits = &mut scratch.logits[..size];
        if workers == 1 {
            let cs = &mut scratch.chunks[0];
            for (c, out) in logits.chunks_mut(chunk).enumerate() {
                let lo = c * chunk;
                self.forward_chunk(tables, batch, lo, lo + out.len(), cs, out, &mut obs)?;
            }
            return Ok(());
        }
        // Workers take the next chunk from a shared queue. Chunk boundaries depend only on the
        // chunk size, so neither the thread count nor the order chunks are taken in changes a
        // result.
        let queue = Mutex::new(logits.chunks_mut(chunk).enumerate());
        scratch.chunks[..workers].par_iter_mut().try_for_each(|cs| {
            loop {
                // Nothing panics while the lock is held, so a poisoned queue is still consistent.
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((c, out)) = next else {
                    return Ok(());
                };
                let lo = c * chunk;
                self.forward_chunk(tables, batch, lo, lo + out.len(), cs, out, &mut None)?;
            }
        })
    }

    /// Rows per chunk of a `size`-row call on `threads` threads: the model's chunk size, except
    /// when the model is row-independent (no layer takes its int8 activation range from the whole
    /// chunk) and the call has fewer chunks than a multiple of the threads: then the batch is cut
    /// into a multiple of `threads` near-equal chunks (of at least [`MIN_PARALLEL_ROWS`] rows,
    /// multiples of 8), so that a batch of 64 or 300 keeps both cores busy in every stage
    /// (tables, cross net, MLPs), not only inside the large GEMMs. Row-independent results do not
    /// depend on where chunks end, so this changes no bit.
    fn parallel_chunk(&self, size: usize, threads: usize) -> usize {
        let chunk = self.chunk;
        if threads <= 1 || size < 2 * MIN_PARALLEL_ROWS || !self.row_independent() {
            return chunk;
        }
        let base = size.div_ceil(chunk);
        let wanted = base.next_multiple_of(threads).min(size / MIN_PARALLEL_ROWS);
        if wanted <= base {
            return chunk;
        }
        size.div_ceil(wanted).next_multiple_of(8).min(chunk)
    }

    /// Whether every row's result is independent of the other rows of its chunk (no int8 layer
    /// with per-tensor dynamic activations).
    fn row_independent(&self) -> bool {
        let per_tensor = per_tensor_dynamic;
        !(self.bottom.iter().any(per_tensor)
            || self.top.iter().any(per_tensor)
            || self
                .cross
                .iter()
                .any(|c| per_tensor(&c.v) || per_tensor(&c.w)))
    }

    /// Checks the batch against the model before anything is sliced.
    fn check_batch(&self, batch: &BatchView<'_>) -> Result<()> {
        let cfg = &self.config;
        let shape = |what, expected, found| {
            if expected == found {
                Ok(())
            } else {
                Err(ModelError::BatchShape {
                    what,
                    expected,
                    found,
                })
            }
        };
        shape(
            "dense features per sample",
            cfg.dense_features,
            batch.n_dense,
        )?;
        shape(
            "dense values (samples × dense features)",
            batch.size * batch.n_dense,
            batch.dense.len(),
        )?;
        shape(
            "sparse features (one per table)",
            cfg.tables.len(),
            batch.sparse.len(),
        )?;
        for (t, f) in batch.sparse.iter().enumerate() {
            if f.offsets.len() != batch.size + 1 {
                return Err(ModelError::BagShape {
                    table: t,
                    what: "offsets (samples + 1, with the trailing end)",
                    expected: batch.size + 1,
                    found: f.offsets.len(),
                });
            }
            // Offsets run from `base` (0 for an owned batch) to `base + ids.len()`.
            let span = f.offsets[batch.size].checked_sub(f.base);
            if f.offsets[0] != f.base || span.map(|s| s as u64) != Some(f.ids.len() as u64) {
                return Err(ModelError::BagBounds {
                    table: t,
                    ids: f.ids.len(),
                    first: f.offsets[0],
                    last: f.offsets[batch.size],
                });
            }
            if let Some(i) = f.offsets.windows(2).position(|w| w[1] < w[0]) {
                return Err(ModelError::OffsetsDecrease {
                    table: t,
                    bag: i,
                    offset: f.offsets[i],
                    next: f.offsets[i + 1],
                });
            }
            match (f.weights, self.poolings[t]) {
                (None, Pooling::WeightedSum) => {
                    return Err(ModelError::MissingBagWeights { table: t });
                }
                (Some(w), _) if w.len() != f.ids.len() => {
                    return Err(ModelError::BagShape {
                        table: t,
                        what: "per-id weights (one per id)",
                        expected: f.ids.len(),
                        found: w.len(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Forward pass of samples `lo..hi`, logits into `out` (`hi - lo` values).
    #[allow(clippy::too_many_arguments)]
    fn forward_chunk(
        &self,
        tables: &[StoredTable],
        batch: &BatchView<'_>,
        lo: usize,
        hi: usize,
        cs: &mut ChunkScratch,
        out: &mut [f32],
        obs: &mut Obs<'_>,
    ) -> Result<()> {
        let m = hi - lo;
        let cfg = &self.config;
        let nd = cfg.dense_features;
        let dense = &batch.dense[lo * nd..hi * nd];
        let ChunkScratch {
            a,
            b,
            feat,
            inter,
            vx,
            u,
            offsets,
            ua,
            ub,
            xq,
            rowq,
            lin,
        } = cs;
        let chain = self.chain_int8;

        // Bottom MLP into the first `d` columns of the concatenated feature vector.
        let bufs = MlpBufs {
            a,
            b,
            ua,
            ub,
            rowq,
            lin,
        };
        mlp(
            &self.bottom,
            "bottom",
            dense,
            None,
            m,
            bufs,
            true,
            chain,
            obs,
        )?;
        let d = cfg.bottom_out();
        let width = cfg.concat_width();
        feat.resize(m * width);
        for (row, src) in feat.chunks_exact_mut(width).zip(a.chunks_exact(d)) {
            row[..d].copy_from_slice(src);
        }

        // Pooled tables into their columns: every single-format table in one table-batched call
        // (this chunk is already one task of the batch, so the call stays on this thread); tiered
        // tables (several row-wise sub-tables behind a remap) pool through their own path.
        offsets.clear();
        for f in &batch.sparse {
            let s = f.offsets[lo];
            offsets.extend(f.offsets[lo..hi].iter().map(|&o| o - s));
        }
        let lookup_of = |t: usize| {
            let f = &batch.sparse[t];
            // Checked: offsets run from `base` to `base + ids.len()` and never decrease.
            let (s, e) = (
                (f.offsets[lo] - f.base) as usize,
                (f.offsets[hi] - f.base) as usize,
            );
            Lookup {
                indices: Indices::I64(&f.ids[s..e]),
                bags: Bags::Offsets(Indices::I64(&offsets[t * m..(t + 1) * m])),
                num_bags: m,
                per_sample_weights: f.weights.map(|w| &w[s..e]),
            }
        };
        // Bag numbers in errors count from the start of the batch, not of this chunk.
        let in_batch = |e: KernelError| match e {
            KernelError::IdOutOfRange {
                table,
                bag,
                id,
                rows,
            } => KernelError::IdOutOfRange {
                table,
                bag: bag + lo,
                id,
                rows,
            },
            other => other,
        };
        let bags: Vec<TableBag<'_>> = tables
            .iter()
            .enumerate()
            .filter(|(_, table)| table.tiers.is_none())
            .map(|(t, table)| TableBag {
                bag: EmbeddingBag {
                    table: table.table_ref(),
                    pooling: self.poolings[t],
                    remap: None,
                },
                lookup: lookup_of(t),
                column: self.table_offsets[t],
            })
            .collect();
        pool_tables_with_isa(Isa::active(), &bags, feat, width, Parallelism::Single)
            .map_err(in_batch)?;
        drop(bags);
        for (t, table) in tables.iter().enumerate() {
            if let Some(tiers) = &table.tiers {
                let off = self.table_offsets[t];
                tiers
                    .pool(
                        table.dim,
                        self.poolings[t],
                        &lookup_of(t),
                        t,
                        &mut feat[off..],
                        width,
                    )
                    .map_err(in_batch)?;
            }
        }
        if obs.is_some() {
            for (t, table) in tables.iter().enumerate() {
                let (off, dim) = (self.table_offsets[t], table.dim);
                let pooled: Vec<f32> = feat
                    .chunks_exact(width)
                    .flat_map(|r| &r[off..off + dim])
                    .copied()
                    .collect();
                observe(
                    obs,
                    || format!("table.{t}"),
                    View::empty(m),
                    View::new(&pooled, m, dim),
                );
            }
        }

        // Interaction, then the top MLP; its last layer (no ReLU) gives the logit. A cross net run
        // without an observer may hand the top MLP u8 codes (in `xq`, moved to `ua`).
        let mut top_q = None;
        let top_in: &[f32] = match cfg.interaction {
            Interaction::Dot { .. } => {
                let w = d + self.pairs.len();
                inter.resize(m * w, 0.0);
                dot_interaction(feat, m, self.tables.len() + 1, d, &self.pairs, inter)?;
                observe(
                    obs,
                    || "interaction".into(),
                    View::new(feat, m, width),
                    View::new(inter, m, w),
                );
                inter
            }
            Interaction::Cat => {
                observe(
                    obs,
                    || "interaction".into(),
                    View::new(feat, m, width),
                    View::new(feat, m, width),
                );
                feat
            }
            Interaction::Dcn { rank, .. } if obs.is_none() => {
                let bufs = CrossBufs {
                    inter,
                    next: b,
                    vx,
                    u,
                    ua,
                    xq,
                    rowq,
                    lin,
                };
                top_q = self.cross_net(feat, m, rank, bufs)?;
                if top_q.is_some() {
                    std::mem::swap(ua, xq);
                }
                inter
            }
            Interaction::Dcn { rank, .. } => {
                // Observed: every layer's output in f32 for the observer (the same values as
                // `cross_net`, which fuses them). x_l lives in `inter`; x0 is `feat`.
                inter.clear();
                inter.extend_from_slice(feat);
                vx.resize(m * rank, 0.0);
                u.resize(m * width, 0.0);
                b.resize(m * width, 0.0);
                for (l, c) in self.cross.iter().enumerate() {
                    // An int8 V feeding a static int8 W hands it u8 codes in W's input
                    // parameters (as between MLP layers); the observer sees them dequantized.
                    let w_in = match static_input(&c.w) {
                        Some(q) if chain && c.v.int8_weights().is_some() => Some(q),
                        _ => None,
                    };
                    if let Some(q) = w_in {
                        ua.resize(m * rank, 0);
                        c.v.forward_f32_to_u8(inter, m, &mut ua[..m * rank], q, false, lin)?;
                        if obs.is_some() {
                            dequantize_u8(&ua[..m * rank], q, vx);
                        }
                    } else {
                        c.v.forward(inter, m, vx, false, lin)?;
                    }
                    observe(
                        obs,
                        || format!("cross.{l}.v"),
                        View::new(inter, m, width),
                        View::new(vx, m, rank),
                    );
                    match w_in {
                        Some(q) => {
                            c.w.forward_u8_to_f32(&ua[..m * rank], q, m, u, false, lin)?
                        }
                        None => c.w.forward(vx, m, u, false, lin)?,
                    }
                    observe(
                        obs,
                        || format!("cross.{l}.w"),
                        View::new(vx, m, rank),
                        View::new(u, m, width),
                    );
                    cross_combine(feat, u, inter, &mut b[..m * width])?;
                    observe(
                        obs,
                        || format!("cross.{l}"),
                        View::new(inter, m, width),
                        View::new(&b[..m * width], m, width),
                    );
                    std::mem::swap(inter, b);
                }
                observe(
                    obs,
                    || "interaction".into(),
                    View::new(feat, m, width),
                    View::new(inter, m, width),
                );
                inter
            }
        };
        let bufs = MlpBufs {
            a,
            b,
            ua,
            ub,
            rowq,
            lin,
        };
        mlp(&self.top, "top", top_in, top_q, m, bufs, false, chain, obs)?;
        out.copy_from_slice(&a[..m]);
        Ok(())
    }
}

fn probabilities(scratch: &mut Scratch) -> &[f32] {
    let Scratch { logits, probs, .. } = scratch;
    probs.clear();
    probs.extend(logits.iter().map(|&x| sigmoid(x)));
    probs
}
