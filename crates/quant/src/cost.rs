//! Cost model of a plan: bytes (exact, from the plan) and latency predicted from timings measured
//! on this machine for the model's actual shapes and batch size.
//!
//! Latency of a plan = latency of the f32 model at the benchmark batch size
//! + Σ over dense layers (time of the layer in its precision − time in f32, each layer packed from
//!   the model's weights and timed alone)
//! + Σ over tables (time of all tables in the table's format − time of all tables in f32, measured
//!   on the whole model and shared among tables in proportion to their dimension).
//!
//! Every figure is the fastest of several runs (the machine is shared: the minimum is the least
//! disturbed estimate); measurements are made once per [`CostModel`] and kept in memory.

use quantrec_data::Batch;
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::gemm::{LinearScratch, PackedLinear};
use quantrec_kernels::rng::Rng;
use quantrec_model::weights::Linear;
use quantrec_model::{Plan, Scratch};
use std::collections::BTreeMap;

use crate::Result;
use crate::builder::ModelBuilder;
use crate::plans::{
    Choice, LAYER_OPTIONS, LayerChoice, TABLE_OPTIONS, Unit, choice_of, plan_bytes,
};

/// Runs per measurement (the fastest is kept).
const RUNS: usize = 7;

/// Fastest wall time of `f` in seconds over [`RUNS`] runs, after one warm-up call.
fn fastest_time(f: impl FnMut() -> Result<()>) -> Result<f64> {
    crate::timing::fastest_time(RUNS, f)
}

/// Key of a dense unit's choice in [`CostModel::layer_saving_s`].
fn key(unit: Unit, c: LayerChoice) -> String {
    format!("{}={}", unit.name(), c.precision().short_name())
}

/// Measured timings of one model at one batch size.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CostModel {
    /// Samples per benchmark batch.
    pub batch_size: usize,
    /// Latency of the f32 model on one batch (s).
    pub base_latency_s: f64,
    /// Per dense unit and choice: seconds saved against f32 (negative when slower).
    pub layer_saving_s: BTreeMap<String, f64>,
    /// Per table format: seconds saved on the whole set of tables against f32.
    pub table_saving_s: BTreeMap<String, f64>,
    /// Share of each table in the table time (proportional to its dimension).
    pub table_share: Vec<f64>,
}

fn dense_layer(builder: &ModelBuilder, unit: Unit) -> Option<Linear> {
    let w = builder.weights();
    let width = builder.config().concat_width();
    match unit {
        Unit::Bottom(i) => w.bottom.get(i).cloned(),
        Unit::Top(i) => w.top.get(i).cloned(),
        Unit::CrossV(l) => w.cross.get(l).map(|c| Linear {
            out: c.v.len() / width,
            inp: width,
            weight: c.v.clone(),
            bias: vec![0.0; c.v.len() / width],
        }),
        Unit::CrossW(l) => w.cross.get(l).map(|c| Linear {
            out: width,
            inp: c.w.len() / width,
            weight: c.w.clone(),
            bias: c.bias.clone(),
        }),
        Unit::Table(_) => None,
    }
}

impl CostModel {
    /// Measures the model of `builder` on the first `batch_size` samples of `batch`.
    pub fn measure(builder: &ModelBuilder, batch: &Batch, batch_size: usize) -> Result<CostModel> {
        let b = quantrec_data::batch_ops::slice(batch, 0, batch_size.min(batch.size));
        let m = b.size.max(1);
        let config = builder.config();
        let mut scratch = Scratch::new();
        let f32_plan = Plan::f32(config);
        let f32_model = builder.build(&f32_plan)?;
        let mut time_plan = |plan: &Plan| -> Result<f64> {
            let model = if plan == &f32_plan {
                f32_model.clone()
            } else {
                builder.build(plan)?
            };
            fastest_time(|| {
                model.predict(&b, &mut scratch)?;
                Ok(())
            })
        };
        let base = time_plan(&f32_plan)?;
        let mut table_saving_s = BTreeMap::new();
        for f in TABLE_OPTIONS {
            let mut p = f32_plan.clone();
            if config.tables.iter().any(|t| f.check_dim(t.dim).is_err()) {
                continue;
            }
            p.tables.iter_mut().for_each(|t| *t = f);
            table_saving_s.insert(f.name().to_string(), base - time_plan(&p)?);
        }
        let dims: f64 = config.tables.iter().map(|t| t.dim as f64).sum();
        let table_share = config
            .tables
            .iter()
            .map(|t| t.dim as f64 / dims.max(1.0))
            .collect();
        let mut layer_saving_s = BTreeMap::new();
        let mut rng = Rng::new(7);
        let mut lin = LinearScratch::default();
        for unit in Unit::all(config) {
            let Some(l) = dense_layer(builder, unit) else {
                continue;
            };
            let x: Vec<f32> = (0..m * l.inp).map(|_| rng.uniform_f32(0.0, 1.0)).collect();
            let mut out = vec![0.0; m * l.out];
            let mut time = |c: LayerChoice| -> Result<f64> {
                let mut p = c.precision();
                if let quantrec_model::plan::LayerPrecision::Int8 {
                    activations: a @ quantrec_model::plan::ActivationPlan::Static { .. },
                    ..
                } = &mut p
                {
                    let q = quantrec_kernels::gemm::QParams::for_u8_range(0.0, 1.0);
                    *a = quantrec_model::plan::ActivationPlan::Static {
                        scale: q.scale,
                        zero_point: q.zero_point,
                    };
                }
                let packed =
                    PackedLinear::new(&l.weight, Some(&l.bias), l.out, l.inp, p.to_kernel())?;
                fastest_time(|| {
                    for _ in 0..3 {
                        packed.forward(&x, m, &mut out, false, &mut lin)?;
                    }
                    Ok(())
                })
            };
            let t32 = time(LayerChoice::F32)?;
            for c in LAYER_OPTIONS {
                layer_saving_s.insert(key(unit, c), (t32 - time(c)?) / 3.0);
            }
        }
        Ok(CostModel {
            batch_size: m,
            base_latency_s: base,
            layer_saving_s,
            table_saving_s,
            table_share,
        })
    }

    /// Predicted seconds saved by giving `unit` the choice `choice` (0 for f32).
    pub fn saving(&self, unit: Unit, choice: Choice) -> f64 {
        match (unit, choice) {
            (Unit::Table(t), Choice::Table(f)) => {
                if f == TableFormat::F32 {
                    return 0.0;
                }
                self.table_saving_s.get(f.name()).copied().unwrap_or(0.0) * self.table_share[t]
            }
            (_, Choice::Layer(c)) => self
                .layer_saving_s
                .get(&key(unit, c))
                .copied()
                .unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Predicted latency of `plan` on one benchmark batch (s), never below 1% of the f32 latency.
    pub fn latency(&self, plan: &Plan) -> f64 {
        let saved: f64 = crate::plans::units_of(plan)
            .into_iter()
            .map(|u| self.saving(u, choice_of(plan, u)))
            .sum();
        (self.base_latency_s - saved).max(0.01 * self.base_latency_s)
    }

    /// Bytes of `plan` (exact).
    pub fn bytes(&self, builder: &ModelBuilder, plan: &Plan) -> u64 {
        plan_bytes(builder.config(), plan)
    }
}
