//! fp32 DLRM trainer: hand-written forward and backward passes, SGD / Adagrad (row-wise for tables),
//! data-parallel over fixed chunks of each batch, and export as a PyTorch-loadable state dict.
//!
//! # Determinism
//! A batch is cut into chunks of [`CHUNK_ROWS`] rows whatever the thread count; each chunk's
//! forward and backward run sequentially in a fixed order, chunk gradients are summed in chunk
//! order, and table-row gradients are summed in id-array order. So a given seed, data and options
//! give bit-identical parameters and losses for **any** number of threads (tested for 1 vs 2).
//! Every f32 product (MLP, cross net, weight gradients) runs on the kernels crate's SIMD GEMM,
//! chosen at run time for [`quantrec_kernels::Isa::active`] (the CPU's richest level, or
//! `QUANTREC_ISA`) like inference, so one build runs the same code on every CPU of a level. Results
//! can differ between ISA levels (each level's micro-kernels reassociate f32 sums their own way)
//! and between builds (the compiler may differ in e.g. `exp`), never between thread counts.
//!
//! # Layout
//! - [`params`](self) (private): parameter layout, dlrm initialisation, state-dict names.
//! - `pass`: forward/backward of one chunk; `packs`: the MLP and cross-net layers packed for the
//!   kernels' runtime-dispatched SIMD GEMM (forward, input and weight gradients) — the dot
//!   interaction also runs on the kernels; `linalg`: element-wise helpers (bias-gradient column
//!   sums, axpy).
//! - `optim`: [`Optimizer`] and sparse row gradients; `state`: export/import ([`NamedTensor`]).
//! - `eval`: [`EvalReport`] and [`Progress`].

pub mod error;
mod eval;
mod linalg;
mod optim;
mod packs;
mod params;
mod pass;
pub mod recipe;
pub mod run;
mod state;
mod validate;

use rayon::prelude::*;

use quantrec_data::batch::Batch;
use quantrec_model::config::ModelConfig;

pub use error::{Result, TrainError};
pub use eval::{EvalReport, Progress};
pub use optim::Optimizer;
pub use state::{NamedTensor, parse_safetensors, read_safetensors};

use optim::{OptState, table_grads, update_dense, update_row};
use packs::Packs;
use params::{Arch, Params};
use pass::{Seed, Work};

/// Which passes [`Trainer::run`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forward only (losses when labels are given).
    Forward,
    /// Forward and the batch-mean loss's backward (needs labels).
    Backward,
    /// Forward and the per-sample Gauss-Newton factors of the loss in `z` (labels not needed).
    Curvature,
}

/// Rows per chunk of a batch: the unit of parallel work and of gradient reduction.
pub const CHUNK_ROWS: usize = 128;

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// Seed of the initial parameters.
    pub seed: u64,
    /// Update rule.
    pub optimizer: Optimizer,
    /// Learning rate of the MLP and cross-net parameters.
    pub lr_dense: f32,
    /// Learning rate of the embedding tables.
    pub lr_sparse: f32,
    /// Samples per batch (used by callers that cut data into batches; [`Trainer::train_step`]
    /// accepts any batch size). The default 512 learned faster per sample than 2048 on the
    /// synthetic Criteo-like data at about the same samples/s.
    pub batch_size: usize,
    /// Passes over the training batches in [`Trainer::fit`].
    pub epochs: usize,
    /// Worker threads (`None`: rayon's default, one per core).
    pub threads: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 0,
            optimizer: Optimizer::adagrad(),
            lr_dense: 0.01,
            lr_sparse: 0.05,
            batch_size: 512,
            epochs: 1,
            threads: None,
        }
    }
}

/// The trainer's suggested architecture for Criteo-like (e.g. synthetic) data: bottom MLP
/// `dense_features-64-dim`, one sum-pooled table of `dim` per entry of `table_rows`, dot
/// interaction in facebookresearch/dlrm's order without self-interaction, top MLP `…-64-1`,
/// dlrm names. Small enough to train at tens of thousands of samples per second per core.
pub fn suggested_config(dense_features: usize, table_rows: &[usize], dim: usize) -> ModelConfig {
    ModelConfig {
        dense_features,
        bottom_mlp: vec![64, dim],
        tables: table_rows
            .iter()
            .map(|&rows| quantrec_model::config::TableConfig {
                rows,
                dim,
                pooling: quantrec_model::config::PoolingMode::Sum,
            })
            .collect(),
        interaction: quantrec_model::config::Interaction::Dot {
            order: quantrec_model::config::DotOrder::LowerByRow,
            self_interaction: false,
        },
        top_mlp: vec![64, 1],
        naming: quantrec_model::config::Naming::Dlrm,
    }
}

/// The interaction of the architecture a run trains ([`ModelArch::config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelArch {
    /// facebookresearch/dlrm's dot interaction ([`suggested_config`]; dlrm module names).
    #[default]
    Dot,
    /// TorchRec `DLRM_DCN`: a low-rank DCN-v2 cross net of `layers` layers and rank `rank` over the
    /// flattened `[bottom out, tables...]` vector, then the top MLP ([`suggested_dcn_config`];
    /// TorchRec module names).
    Dcn {
        /// Cross layers.
        layers: usize,
        /// Rank of each layer's `W (V x)` factorization.
        rank: usize,
    },
}

impl ModelArch {
    /// DCN with MLPerf DLRM-v2's 3 layers and a rank of 64 (the feature width over about 7,
    /// MLPerf's 3456 / 512).
    pub const DCN_DEFAULT: ModelArch = ModelArch::Dcn {
        layers: 3,
        rank: 64,
    };

    /// The architecture for `dense_features` dense inputs and tables of `table_rows` rows of `dim`.
    pub fn config(self, dense_features: usize, table_rows: &[usize], dim: usize) -> ModelConfig {
        match self {
            ModelArch::Dot => suggested_config(dense_features, table_rows, dim),
            ModelArch::Dcn { layers, rank } => {
                suggested_dcn_config(dense_features, table_rows, dim, layers, rank)
            }
        }
    }

    /// `dot` or `dcn(3×64)`.
    pub fn name(self) -> String {
        match self {
            ModelArch::Dot => "dot".into(),
            ModelArch::Dcn { layers, rank } => format!("dcn({layers}×{rank})"),
        }
    }
}

/// [`suggested_config`] with TorchRec `DLRM_DCN`'s interaction: a low-rank DCN-v2 cross net
/// (`layers` layers of rank `rank`) and TorchRec module names.
pub fn suggested_dcn_config(
    dense_features: usize,
    table_rows: &[usize],
    dim: usize,
    layers: usize,
    rank: usize,
) -> ModelConfig {
    ModelConfig {
        interaction: quantrec_model::config::Interaction::Dcn { layers, rank },
        naming: quantrec_model::config::Naming::TorchRec,
        ..suggested_config(dense_features, table_rows, dim)
    }
}

/// The gradient of the batch-mean loss, by state-dict name.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// Mean loss of the batch.
    pub loss: f64,
    /// Every dense tensor's gradient (same names and element order as [`Trainer::state_dict`]).
    pub dense: Vec<(String, Vec<f32>)>,
    /// Per table, the rows the batch touched.
    pub tables: Vec<TableGradient>,
}

/// Per-sample Gauss-Newton factors of the log loss in `z` ([`Trainer::curvature_factors`]).
#[derive(Clone, Debug)]
pub struct CurvatureFactors {
    /// Values per sample (the width of `z`).
    pub width: usize,
    /// First column of each table's pooled vector within a sample's row.
    pub table_cols: Vec<usize>,
    /// `samples × width`, row-major.
    pub factors: Vec<f32>,
}

/// The sparse gradient of one table.
#[derive(Clone, Debug)]
pub struct TableGradient {
    /// State-dict name of the table.
    pub name: String,
    /// Distinct touched row ids, ascending.
    pub ids: Vec<usize>,
    /// `ids.len() × dim` gradient rows.
    pub rows: Vec<f32>,
}

/// A DLRM being trained in f32.
pub struct Trainer {
    config: ModelConfig,
    options: TrainOptions,
    arch: Arch,
    params: Params,
    /// Whether `packs` holds the current parameters.
    packs_fresh: bool,
    /// The MLP and cross-net layers packed for the kernels (stale when `packs_fresh` is false).
    packs: Packs,
    pack_tmp: Vec<f32>,
    state: OptState,
    pool: rayon::ThreadPool,
    works: Vec<Work>,
    grad: Vec<f32>,
    running: eval::Running,
    samples: u64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("options", &self.options)
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// A freshly initialised model (facebookresearch/dlrm initialisation, determined by
    /// `options.seed`).
    pub fn new(config: ModelConfig, options: TrainOptions) -> Result<Trainer> {
        let arch = Arch::new(&config)?;
        let params = Params::init(&arch, options.seed);
        Trainer::with_params(config, options, arch, params)
    }

    fn with_params(
        config: ModelConfig,
        options: TrainOptions,
        arch: Arch,
        params: Params,
    ) -> Result<Trainer> {
        let ok = |lr: f32| lr.is_finite() && lr >= 0.0;
        if !ok(options.lr_dense) || !ok(options.lr_sparse) {
            return Err(TrainError::LearningRate {
                dense: options.lr_dense,
                sparse: options.lr_sparse,
            });
        }
        let mut builder = rayon::ThreadPoolBuilder::new();
        if let Some(t) = options.threads {
            if t == 0 {
                return Err(TrainError::ZeroThreads);
            }
            builder = builder.num_threads(t);
        }
        let pool = builder
            .build()
            .map_err(|source| TrainError::ThreadPool { source })?;
        let state = OptState::new(options.optimizer, arch.dense_len, &arch.tables);
        Ok(Trainer {
            packs_fresh: false,
            packs: Packs::default(),
            pack_tmp: Vec::new(),
            grad: vec![0.0; arch.dense_len],
            config,
            options,
            arch,
            params,
            state,
            pool,
            works: Vec::new(),
            running: eval::Running::default(),
            samples: 0,
        })
    }

    /// The architecture being trained.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The training options.
    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// Samples trained on so far.
    pub fn samples_seen(&self) -> u64 {
        self.samples
    }

    /// The values of one parameter tensor by state-dict name (row-major, PyTorch shapes).
    pub fn parameter(&self, name: &str) -> Option<&[f32]> {
        self.locate(name).map(|loc| match loc {
            Loc::Dense(off, len) => &self.params.dense[off..off + len],
            Loc::Table(t) => &self.params.tables[t][..],
        })
    }

    /// Mutable access to one parameter tensor by state-dict name (e.g. to perturb or fine-tune
    /// by hand). Optimizer state is left as it is.
    pub fn parameter_mut(&mut self, name: &str) -> Option<&mut [f32]> {
        let loc = self.locate(name)?;
        self.packs_fresh = false;
        Some(match loc {
            Loc::Dense(off, len) => &mut self.params.dense[off..off + len],
            Loc::Table(t) => &mut self.params.tables[t][..],
        })
    }

    fn locate(&self, name: &str) -> Option<Loc> {
        let naming = self.config.naming;
        if let Some((_, shape, off)) = self
            .arch
            .dense_tensors(naming)
            .into_iter()
            .find(|(n, _, _)| n == name)
        {
            return Some(Loc::Dense(off, shape.iter().product()));
        }
        (0..self.arch.tables.len())
            .find(|&t| Arch::table_name(naming, t) == name)
            .map(Loc::Table)
    }

    fn refresh(&mut self) -> Result<()> {
        if !self.packs_fresh {
            self.packs = Packs::build(&self.arch, &self.params.dense, &mut self.pack_tmp)?;
            self.packs_fresh = true;
        }
        Ok(())
    }

    /// Runs forward (and backward) over every chunk of `batch` in the pool; returns the summed
    /// loss when labels are present.
    fn run(&mut self, batch: &Batch, mode: Mode) -> Result<(usize, f64)> {
        self.refresh()?;
        let n = batch.size;
        let nchunks = n.div_ceil(CHUNK_ROWS);
        if self.works.len() < nchunks {
            self.works.resize_with(nchunks, Work::default);
        }
        let Trainer {
            arch,
            params,
            packs,
            pool,
            works,
            ..
        } = self;
        let (arch, params, packs) = (&*arch, &*params, &*packs);
        let labels = batch.labels.as_deref();
        let inv = 1.0 / n.max(1) as f32;
        pool.install(|| {
            works[..nchunks]
                .par_iter_mut()
                .enumerate()
                .try_for_each(|(c, w)| -> Result<()> {
                    let start = c * CHUNK_ROWS;
                    let m = CHUNK_ROWS.min(n - start);
                    pass::forward(arch, params, packs, batch, start, m, w)?;
                    match (mode, labels) {
                        (Mode::Curvature, _) => {
                            pass::backward(arch, packs, batch, Seed::Curvature, start, w)?
                        }
                        (Mode::Backward, Some(y)) => {
                            let seed = Seed::Loss(y, inv);
                            pass::backward(arch, packs, batch, seed, start, w)?
                        }
                        (_, Some(y)) => {
                            w.loss = w
                                .logits()
                                .iter()
                                .zip(&y[start..start + m])
                                .map(|(&s, &yv)| pass::bce_with_logits(s, yv).0)
                                .sum();
                        }
                        (_, None) => w.loss = 0.0,
                    }
                    Ok(())
                })
        })?;
        let loss = works[..nchunks].iter().map(|w| w.loss).sum();
        Ok((nchunks, loss))
    }

    /// Sums the chunk gradients into `self.grad`, in chunk order.
    fn reduce(&mut self, nchunks: usize) {
        const BLOCK: usize = 4096;
        let works = &self.works[..nchunks];
        let grad = &mut self.grad;
        self.pool.install(|| {
            grad.par_chunks_mut(BLOCK).enumerate().for_each(|(i, g)| {
                g.fill(0.0);
                for w in works {
                    for (a, &b) in g.iter_mut().zip(&w.grad[i * BLOCK..]) {
                        *a += b;
                    }
                }
            });
        });
    }

    /// One optimizer step on `batch` (which needs labels); returns the batch's mean loss before
    /// the update. An empty batch changes nothing and returns 0.
    pub fn train_step(&mut self, batch: &Batch) -> Result<f64> {
        validate::check_batch(&self.arch, batch, true)?;
        if batch.size == 0 {
            return Ok(0.0);
        }
        let (nchunks, loss_sum) = self.run(batch, Mode::Backward)?;
        self.reduce(nchunks);
        let opt = self.options.optimizer;
        update_dense(
            opt,
            self.options.lr_dense,
            &mut self.params.dense,
            &self.grad,
            &mut self.state,
        );
        let lr = self.options.lr_sparse;
        let Trainer {
            arch,
            params,
            state,
            pool,
            works,
            ..
        } = self;
        let works = &works[..nchunks];
        let arch = &*arch;
        let mut accs: Vec<Option<&mut Vec<f32>>> = if state.rows.is_empty() {
            (0..arch.tables.len()).map(|_| None).collect()
        } else {
            state.rows.iter_mut().map(Some).collect()
        };
        pool.install(|| {
            params
                .tables
                .par_iter_mut()
                .zip(accs.par_iter_mut())
                .enumerate()
                .for_each(|(t, (table, acc))| {
                    let ts = &arch.tables[t];
                    let d = ts.dim;
                    let rg = table_grads(
                        ts,
                        &batch.sparse[t],
                        works,
                        CHUNK_ROWS,
                        arch.width,
                        batch.size,
                    );
                    for (k, &id) in rg.ids.iter().enumerate() {
                        update_row(
                            opt,
                            lr,
                            &mut table[id * d..(id + 1) * d],
                            &rg.grads[k * d..(k + 1) * d],
                            acc.as_mut().map(|a| &mut a[id]),
                        );
                    }
                });
        });
        self.packs_fresh = false;
        self.samples += batch.size as u64;
        Ok(loss_sum / batch.size as f64)
    }

    /// The gradient of the batch-mean loss without updating anything (for checks and debugging).
    pub fn gradients(&mut self, batch: &Batch) -> Result<Gradients> {
        validate::check_batch(&self.arch, batch, true)?;
        let (nchunks, loss_sum) = self.run(batch, Mode::Backward)?;
        if nchunks == 0 {
            self.grad.fill(0.0);
        } else {
            self.reduce(nchunks);
        }
        let naming = self.config.naming;
        let dense = self
            .arch
            .dense_tensors(naming)
            .into_iter()
            .map(|(name, shape, off)| {
                let len: usize = shape.iter().product();
                (name, self.grad[off..off + len].to_vec())
            })
            .collect();
        let tables = self
            .arch
            .tables
            .iter()
            .enumerate()
            .map(|(t, ts)| {
                let rg = table_grads(
                    ts,
                    &batch.sparse[t],
                    &self.works[..nchunks],
                    CHUNK_ROWS,
                    self.arch.width,
                    batch.size,
                );
                TableGradient {
                    name: Arch::table_name(naming, t),
                    ids: rg.ids,
                    rows: rg.grads,
                }
            })
            .collect();
        Ok(Gradients {
            loss: loss_sum / batch.size.max(1) as f64,
            dense,
            tables,
        })
    }

    /// Per-sample Gauss-Newton factors of the log loss in the interaction's inputs `z` (the bottom
    /// MLP's output, then every pooled table in order): row `s` is
    /// `sqrt(p_s (1 - p_s)) · ∂logit_s/∂z_s`, so `Σ_s f_s f_sᵀ` is the Gauss-Newton approximation of
    /// the summed log loss's Hessian in `z` (its expectation when the model is calibrated). Labels
    /// are not needed.
    pub fn curvature_factors(&mut self, batch: &Batch) -> Result<CurvatureFactors> {
        validate::check_batch(&self.arch, batch, false)?;
        let (nchunks, _) = self.run(batch, Mode::Curvature)?;
        let width = self.arch.width;
        let mut factors = Vec::with_capacity(batch.size * width);
        for w in &self.works[..nchunks] {
            factors.extend_from_slice(&w.dz[..w.m * width]);
        }
        Ok(CurvatureFactors {
            width,
            table_cols: self.arch.tables.iter().map(|t| t.col).collect(),
            factors,
        })
    }

    /// Logits of every sample of `batch` (labels not needed).
    pub fn predict(&mut self, batch: &Batch) -> Result<Vec<f32>> {
        validate::check_batch(&self.arch, batch, false)?;
        let (nchunks, _) = self.run(batch, Mode::Forward)?;
        Ok(self.works[..nchunks]
            .iter()
            .flat_map(|w| w.logits().iter().copied())
            .collect())
    }

    /// Mean loss of `batch` at the current parameters (computed in f64 from f32 logits).
    pub fn loss(&mut self, batch: &Batch) -> Result<f64> {
        validate::check_batch(&self.arch, batch, true)?;
        let (_, loss) = self.run(batch, Mode::Forward)?;
        Ok(loss / batch.size.max(1) as f64)
    }

    /// Log loss, NE and AUC over holdout batches (which need labels), given by reference or by
    /// value (e.g. streamed from a file: only logits and labels are kept).
    pub fn evaluate<B: std::borrow::Borrow<Batch>>(
        &mut self,
        batches: impl IntoIterator<Item = B>,
    ) -> Result<EvalReport> {
        let (mut logits, mut labels, mut loss) = (Vec::new(), Vec::new(), 0f64);
        for b in batches {
            let b = b.borrow();
            validate::check_batch(&self.arch, b, true)?;
            let (nchunks, l) = self.run(b, Mode::Forward)?;
            loss += l;
            logits.extend(
                self.works[..nchunks]
                    .iter()
                    .flat_map(|w| w.logits().iter().copied()),
            );
            labels.extend_from_slice(b.labels.as_deref().unwrap_or(&[]));
        }
        Ok(eval::report(&logits, &labels, loss))
    }

    /// `options.epochs` passes over `batches`, calling `on_step` after every step with the running
    /// loss and NE (for a progress bar).
    pub fn fit(&mut self, batches: &[Batch], mut on_step: impl FnMut(&Progress)) -> Result<()> {
        for epoch in 0..self.options.epochs {
            for (step, b) in batches.iter().enumerate() {
                self.step_with_progress(b, epoch, step, batches.len(), &mut on_step)?;
            }
        }
        Ok(())
    }

    /// One pass over a stream of batches (e.g. read from a file or generated on another thread,
    /// so the data never has to fit in memory), calling `on_step` after every step with the
    /// running loss and NE. `options.epochs` is not used (a stream cannot be rewound);
    /// [`Progress::steps_per_epoch`] is 0. Returns the number of steps taken.
    pub fn fit_stream<B: std::borrow::Borrow<Batch>>(
        &mut self,
        batches: impl IntoIterator<Item = B>,
        mut on_step: impl FnMut(&Progress),
    ) -> Result<usize> {
        let mut steps = 0;
        for b in batches {
            self.step_with_progress(b.borrow(), 0, steps, 0, &mut on_step)?;
            steps += 1;
        }
        Ok(steps)
    }

    fn step_with_progress(
        &mut self,
        b: &Batch,
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        on_step: &mut impl FnMut(&Progress),
    ) -> Result<()> {
        let loss = self.train_step(b)?;
        let labels = b.labels.as_deref().unwrap_or(&[]);
        let ctr = labels.iter().map(|&y| f64::from(y)).sum::<f64>() / labels.len().max(1) as f64;
        let (running_loss, running_ne) = self.running.push(loss, ctr);
        on_step(&Progress {
            epoch,
            step,
            steps_per_epoch,
            samples: self.samples,
            loss,
            running_loss,
            running_ne,
        });
        Ok(())
    }
}

/// Where a named tensor lives.
enum Loc {
    Dense(usize, usize),
    Table(usize),
}
