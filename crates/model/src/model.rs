//! A model ready to run: dense layers packed once for their precision, tables in their stored format.

use std::borrow::Cow;

use quantrec_kernels::embedding_bag::Pooling;
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::PackedLinear;
use quantrec_kernels::interaction::{PairOrder, pairs};

use crate::config::{Interaction, ModelConfig};
use crate::plan::{LayerPrecision, Plan};
use crate::tables::{StoredTable, TableBytes, encode_planned_table};
use crate::tiers::Tiers;
use crate::weights::{CrossLayer, Linear, TableData, Weights};
use crate::{ModelError, Result};

/// Default number of samples per parallel chunk (see [`Model::set_chunk_size`]).
pub const DEFAULT_CHUNK: usize = 256;

/// One packed DCN cross layer.
#[derive(Debug, Clone)]
pub(crate) struct PackedCross {
    pub(crate) v: PackedLinear,
    pub(crate) w: PackedLinear,
}

/// A DLRM-family model: immutable after construction, shared across threads by reference.
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) config: ModelConfig,
    pub(crate) plan: Plan,
    pub(crate) table_names: Vec<String>,
    pub(crate) bottom: Vec<PackedLinear>,
    pub(crate) cross: Vec<PackedCross>,
    pub(crate) top: Vec<PackedLinear>,
    pub(crate) tables: Vec<StoredTable>,
    pub(crate) poolings: Vec<Pooling>,
    /// Offset of each table in the per-sample `[bottom out, tables...]` vector.
    pub(crate) table_offsets: Vec<usize>,
    pub(crate) pairs: Vec<(usize, usize)>,
    pub(crate) chunk: usize,
    /// Whether consecutive int8 MLP layers pass u8 activations (see [`Model::set_int8_chaining`]).
    pub(crate) chain_int8: bool,
    /// Remote tables: when set, every batch's rows come from here (see [`crate::remote`]).
    pub(crate) row_source: Option<std::sync::Arc<dyn crate::remote::RowSource>>,
}

/// Stores table `t` in the plan's format: f32 rows are encoded, pre-encoded rows must already be in it.
fn store_table(
    config: &ModelConfig,
    plan: &Plan,
    t: usize,
    data: Cow<'_, TableData>,
) -> Result<StoredTable> {
    let tc = &config.tables[t];
    let format = plan.tables[t];
    if let Some(tiers) = plan.tiers_of(t) {
        let data = match data {
            Cow::Owned(TableData::Tiered(d)) => d,
            Cow::Borrowed(TableData::Tiered(d)) => d.clone(),
            Cow::Owned(TableData::F32(_)) | Cow::Borrowed(TableData::F32(_)) => {
                return Err(ModelError::TiersNeedCalibration { table: t });
            }
            _ => {
                return Err(ModelError::TierData {
                    table: t,
                    reason: "supplied as one encoded table".into(),
                });
            }
        };
        let stored = Tiers::from_data(t, tc.rows, tc.dim, tiers, data)?;
        return Ok(crate::tiers::stored(format, tc.rows, tc.dim, stored));
    }
    let bytes = match data {
        Cow::Borrowed(TableData::F32(v)) => encode_planned_table(plan, t, tc.rows, tc.dim, v)?,
        Cow::Owned(TableData::F32(v)) => encode_planned_table(plan, t, tc.rows, tc.dim, &v)?,
        Cow::Borrowed(TableData::Encoded { format: f, bytes }) if *f == format => bytes.clone(),
        Cow::Owned(TableData::Encoded { format: f, bytes }) if f == format => bytes,
        Cow::Borrowed(TableData::Encoded { format: f, .. }) => return Err(mismatch(t, *f, format)),
        Cow::Owned(TableData::Encoded { format: f, .. }) => return Err(mismatch(t, f, format)),
        Cow::Owned(TableData::Tiered(_)) | Cow::Borrowed(TableData::Tiered(_)) => {
            return Err(ModelError::TierData {
                table: t,
                reason: "supplied in tiers the plan does not have".into(),
            });
        }
    };
    StoredTable::new(format, tc.rows, tc.dim, TableBytes::in_memory(bytes)?)
}

fn mismatch(t: usize, supplied: TableFormat, planned: TableFormat) -> ModelError {
    ModelError::TableFormatMismatch {
        table: t,
        supplied,
        planned,
    }
}

/// Packs one dense layer for its planned precision (int8 layers are quantized by the kernel).
pub(crate) fn pack(l: &Linear, p: LayerPrecision, name: &str) -> Result<PackedLinear> {
    PackedLinear::new(&l.weight, Some(&l.bias), l.out, l.inp, p.to_kernel()).map_err(|source| {
        ModelError::Pack {
            layer: name.to_string(),
            precision: p.short_name(),
            source: Box::new(source),
        }
    })
}

/// Packs every dense layer for its planned precision. Inputs are already checked.
fn pack_dense(
    config: &ModelConfig,
    plan: &Plan,
    bottom: &[Linear],
    cross: &[CrossLayer],
    top: &[Linear],
) -> Result<(Vec<PackedLinear>, Vec<PackedCross>, Vec<PackedLinear>)> {
    let bottom = bottom
        .iter()
        .zip(&plan.bottom)
        .enumerate()
        .map(|(i, (l, &p))| pack(l, p, &format!("bottom.{i}")))
        .collect::<Result<Vec<_>>>()?;
    let top = top
        .iter()
        .zip(&plan.top)
        .enumerate()
        .map(|(i, (l, &p))| pack(l, p, &format!("top.{i}")))
        .collect::<Result<Vec<_>>>()?;
    let width = config.concat_width();
    let cross = match config.interaction {
        Interaction::Dcn { rank, .. } => cross
            .iter()
            .zip(&plan.cross)
            .enumerate()
            .map(|(l, (c, p))| {
                let v = Linear {
                    out: rank,
                    inp: width,
                    weight: c.v.clone(),
                    bias: vec![0.0; rank],
                };
                let w = Linear {
                    out: width,
                    inp: rank,
                    weight: c.w.clone(),
                    bias: c.bias.clone(),
                };
                Ok(PackedCross {
                    v: pack(&v, p.v, &format!("cross.{l}.v"))?,
                    w: pack(&w, p.w, &format!("cross.{l}.w"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok((bottom, cross, top))
}

impl Model {
    /// Builds a model from f32 weights (tables may be pre-encoded) and a precision plan: checks
    /// config, weights and plan against each other, packs every dense layer once and encodes every
    /// f32 table into the plan's format. The weights are only read, so one set of weights can be
    /// built under many plans.
    pub fn from_parts(config: &ModelConfig, weights: &Weights, plan: &Plan) -> Result<Model> {
        weights.check(config)?;
        plan.validate(config)?;
        let tables = weights
            .tables
            .iter()
            .enumerate()
            .map(|(t, d)| store_table(config, plan, t, Cow::Borrowed(d)))
            .collect::<Result<Vec<_>>>()?;
        let (bottom, cross, top) =
            pack_dense(config, plan, &weights.bottom, &weights.cross, &weights.top)?;
        Model::assemble(
            config.clone(),
            plan.clone(),
            weights.table_names.clone(),
            bottom,
            cross,
            top,
            tables,
        )
    }

    /// Like [`Model::from_parts`], consuming the weights so that pre-encoded tables are moved, not
    /// copied (large models).
    pub fn from_parts_owned(config: ModelConfig, weights: Weights, plan: Plan) -> Result<Model> {
        weights.check(&config)?;
        plan.validate(&config)?;
        let Weights {
            bottom,
            tables,
            table_names,
            cross,
            top,
        } = weights;
        let tables = tables
            .into_iter()
            .enumerate()
            .map(|(t, d)| store_table(&config, &plan, t, Cow::Owned(d)))
            .collect::<Result<Vec<_>>>()?;
        let (bottom, cross, top) = pack_dense(&config, &plan, &bottom, &cross, &top)?;
        Model::assemble(config, plan, table_names, bottom, cross, top, tables)
    }

    /// Derives the forward-pass constants around already-packed dense layers (checked against
    /// `config` and `plan` by the caller).
    pub(crate) fn assemble(
        config: ModelConfig,
        plan: Plan,
        table_names: Vec<String>,
        bottom: Vec<PackedLinear>,
        cross: Vec<PackedCross>,
        top: Vec<PackedLinear>,
        tables: Vec<StoredTable>,
    ) -> Result<Model> {
        let mut table_offsets = Vec::with_capacity(config.tables.len());
        let mut off = config.bottom_out();
        for t in &config.tables {
            table_offsets.push(off);
            off += t.dim;
        }
        let pairs = match config.interaction {
            Interaction::Dot {
                order,
                self_interaction,
            } => pairs(
                config.tables.len() + 1,
                PairOrder::from(order),
                self_interaction,
            ),
            _ => Vec::new(),
        };
        let poolings = config.tables.iter().map(|t| t.pooling.into()).collect();
        Ok(Model {
            config,
            plan,
            table_names,
            bottom,
            cross,
            top,
            tables,
            poolings,
            table_offsets,
            pairs,
            chunk: DEFAULT_CHUNK,
            chain_int8: true,
            row_source: None,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The precision plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Source names of the tables (empty when unknown).
    pub fn table_names(&self) -> &[String] {
        &self.table_names
    }

    /// The stored tables.
    pub fn tables(&self) -> &[StoredTable] {
        &self.tables
    }

    /// Copies tables that are file mappings into memory (huge pages from
    /// [`crate::tables::HUGE_PAGE_MIN_BYTES`] on): faster random row gathers than a mapping paged
    /// in 4 KiB at a time, at the cost of holding every table in RAM.
    pub fn load_tables_into_memory(&mut self) -> Result<()> {
        for t in &mut self.tables {
            // Cloning a mapping clones an `Arc`; a failure leaves the table as it was.
            *t = t.clone().into_memory()?;
        }
        Ok(())
    }

    /// The packed bottom-MLP layers.
    pub fn bottom_layers(&self) -> &[PackedLinear] {
        &self.bottom
    }

    /// The packed top-MLP layers.
    pub fn top_layers(&self) -> &[PackedLinear] {
        &self.top
    }

    /// The packed `(V, W)` products of each DCN cross layer.
    pub fn cross_layers(&self) -> Vec<(&PackedLinear, &PackedLinear)> {
        self.cross.iter().map(|c| (&c.v, &c.w)).collect()
    }

    /// Samples per chunk when a batch is split for parallel execution.
    pub fn chunk_size(&self) -> usize {
        self.chunk
    }

    /// Sets the samples per chunk (at least 1). Batches larger than this are split into chunks of
    /// exactly this size (the last may be shorter) that run in parallel on the rayon pool: each
    /// worker thread takes the next chunk and reuses its own buffers. On several threads, a model
    /// whose rows are independent (no per-tensor dynamic int8 layer) may cut a batch of fewer
    /// chunks than threads into smaller ones (at least 16 rows) so every thread gets work; since
    /// its rows do not depend on each other, results never depend on the thread count.
    ///
    /// A chunk is one kernel call per layer, so dynamic int8 layers choose their activation range
    /// per chunk (FBGEMM/PyTorch choose it per call): a batch predicts exactly what its chunks
    /// predict as separate batches. For PyTorch's whole-batch ranges on a batch of `B` samples,
    /// set the chunk size to at least `B` (at the cost of parallelism across chunks).
    pub fn set_chunk_size(&mut self, chunk: usize) {
        self.chunk = chunk.max(1);
    }

    /// Whether int8 MLP layers chain u8 activations (the default).
    pub fn int8_chaining(&self) -> bool {
        self.chain_int8
    }

    /// Turns int8 chaining on or off. On (the default): when an int8 MLP layer is followed by an
    /// int8 layer with static activation parameters, it requantizes its output straight to u8 with
    /// those parameters (ReLU folded into the clamp) and the next layer consumes the codes, as
    /// PyTorch's statically quantized `Linear`/`LinearReLU` modules do. Off: every layer writes
    /// f32 and the next quantizes it again. Both give the same codes up to rounding of the last
    /// f32 operation (at most one quantization step apart). The same holds inside each DCN cross
    /// layer: an int8 `V` followed by a static int8 `W` hands `W` its codes.
    pub fn set_int8_chaining(&mut self, on: bool) {
        self.chain_int8 = on;
    }

    /// Bytes of the dense layers (weights in their precision plus f32 biases).
    pub fn dense_bytes(&self) -> usize {
        self.bottom
            .iter()
            .chain(&self.top)
            .chain(self.cross.iter().flat_map(|c| [&c.v, &c.w]))
            .map(PackedLinear::weight_bytes)
            .sum()
    }

    /// Bytes of the stored tables.
    pub fn table_bytes(&self) -> usize {
        self.tables.iter().map(StoredTable::stored_bytes).sum()
    }
}
