//! The numeric debugger: runs a quantized model and its f32 reference on the same samples and
//! reports, per dense layer and per table (pooled output), SQNR, relative L2, max abs error and
//! cosine — with propagation (each model on its own pipeline) and without (the quantized layer fed
//! the reference model's input of that layer) — ranked by isolated error, plus ΔNE, ΔAUC and
//! calibration.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quantrec_data::Batch;
use quantrec_kernels::gemm::{LinearScratch, PackedLinear};
use quantrec_model::forward::View;
use quantrec_model::{Model, Observer, Scratch};

use crate::eval::{Comparison, EvalSet, metrics_of};
use crate::metrics::ErrorStats;
use crate::plans::{Unit, choice_of};
use crate::{QuantError, Result};

/// Records every layer's input and output of one batch (chunks appended in order).
#[derive(Default)]
struct Recorder {
    tensors: BTreeMap<String, (Vec<f32>, Vec<f32>)>,
}

impl Observer for Recorder {
    fn observe(&mut self, layer: &str, input: View<'_>, output: View<'_>) {
        let e = self.tensors.entry(layer.to_string()).or_default();
        e.0.extend_from_slice(input.data);
        e.1.extend_from_slice(output.data);
    }
}

/// The four error figures of one tensor.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorSummary {
    /// SQNR in dB (`null` in JSON when there is no error at all).
    pub sqnr_db: f64,
    /// Relative L2 error.
    pub rel_l2: f64,
    /// Largest absolute error.
    pub max_abs: f64,
    /// Cosine similarity.
    pub cosine: f64,
}

impl From<&ErrorStats> for ErrorSummary {
    fn from(s: &ErrorStats) -> Self {
        ErrorSummary {
            sqnr_db: s.sqnr_db(),
            rel_l2: s.rel_l2(),
            max_abs: s.max_abs(),
            cosine: s.cosine(),
        }
    }
}

/// Errors of one layer or table.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerReport {
    /// Observer name (`bottom.0`, `table.3`, `interaction`, ...).
    pub name: String,
    /// Its precision in the quantized plan (`-` for layers without parameters).
    pub precision: String,
    /// The quantized layer fed the reference input (`None` for layers without their own
    /// parameters, e.g. the interaction).
    pub isolated: Option<ErrorSummary>,
    /// Each model on its own pipeline.
    pub propagated: ErrorSummary,
}

/// What the debugger found.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DebugReport {
    /// Layers and tables with parameters, worst isolated SQNR first.
    pub ranked: Vec<LayerReport>,
    /// Parameter-free stages (interaction, cross combine), forward order.
    pub stages: Vec<LayerReport>,
    /// Final accuracy against the reference.
    pub comparison: Comparison,
    /// Samples compared.
    pub rows: usize,
}

fn relu_of(unit: Unit, model: &Model) -> bool {
    match unit {
        Unit::Bottom(_) => true,
        Unit::Top(i) => i + 1 < model.top_layers().len(),
        _ => false,
    }
}

fn packed(model: &Model, unit: Unit) -> Option<&PackedLinear> {
    match unit {
        Unit::Bottom(i) => model.bottom_layers().get(i),
        Unit::Top(i) => model.top_layers().get(i),
        Unit::CrossV(l) => model.cross_layers().get(l).map(|c| c.0),
        Unit::CrossW(l) => model.cross_layers().get(l).map(|c| c.1),
        Unit::Table(_) => None,
    }
}

fn record(model: &Model, batch: &Batch, scratch: &mut Scratch) -> Result<(Recorder, Vec<f32>)> {
    let mut rec = Recorder::default();
    let probs = model.predict_observed(batch, scratch, &mut rec)?.to_vec();
    Ok((rec, probs))
}

/// Compares `quantized` against `reference` on `data` (same architecture required).
pub fn debug(quantized: &Model, reference: &Model, data: &EvalSet) -> Result<DebugReport> {
    if quantized.config() != reference.config() {
        return Err(QuantError::ArchitectureMismatch);
    }
    let mut isolated: BTreeMap<String, ErrorStats> = BTreeMap::new();
    let mut propagated: BTreeMap<String, ErrorStats> = BTreeMap::new();
    let (mut probs_q, mut probs_r) = (Vec::new(), Vec::new());
    let (mut sq, mut sr) = (Scratch::new(), Scratch::new());
    let mut lin = LinearScratch::default();
    let mut out = Vec::new();
    for b in &data.batches {
        let (rq, pq) = record(quantized, b, &mut sq)?;
        let (rr, pr) = record(reference, b, &mut sr)?;
        probs_q.extend(pq);
        probs_r.extend(pr);
        for (name, (r_in, r_out)) in &rr.tensors {
            let Some((_, q_out)) = rq.tensors.get(name) else {
                continue;
            };
            propagated
                .entry(name.clone())
                .or_default()
                .update(name, r_out, q_out)?;
            let Some(unit) = Unit::parse(name) else {
                continue;
            };
            if let Some(layer) = packed(quantized, unit) {
                let m = b.size;
                out.resize(m * layer.n(), 0.0);
                layer.forward(r_in, m, &mut out, relu_of(unit, quantized), &mut lin)?;
                isolated
                    .entry(name.clone())
                    .or_default()
                    .update(name, r_out, &out)?;
            }
        }
    }
    let metrics_q = metrics_of(&probs_q, data)?;
    let metrics_r = metrics_of(&probs_r, data)?;
    let plan = quantized.plan();
    let mut ranked = Vec::new();
    let mut stages = Vec::new();
    for (name, prop) in &propagated {
        match Unit::parse(name) {
            Some(unit) => {
                let iso = match unit {
                    Unit::Table(_) => Some(ErrorSummary::from(prop)),
                    _ => isolated.get(name).map(ErrorSummary::from),
                };
                let precision = match choice_of(plan, unit) {
                    crate::plans::Choice::Table(f) => f.name().to_string(),
                    _ => match unit {
                        Unit::Bottom(i) => plan.bottom[i].short_name(),
                        Unit::Top(i) => plan.top[i].short_name(),
                        Unit::CrossV(l) => plan.cross[l].v.short_name(),
                        Unit::CrossW(l) => plan.cross[l].w.short_name(),
                        Unit::Table(_) => unreachable!("tables handled above"),
                    },
                };
                ranked.push(LayerReport {
                    name: name.clone(),
                    precision,
                    isolated: iso,
                    propagated: prop.into(),
                });
            }
            None => stages.push(LayerReport {
                name: name.clone(),
                precision: "-".into(),
                isolated: None,
                propagated: prop.into(),
            }),
        }
    }
    let key = |r: &LayerReport| r.isolated.map_or(f64::INFINITY, |s| s.sqnr_db);
    ranked.sort_by(|a, b| key(a).total_cmp(&key(b)));
    Ok(DebugReport {
        ranked,
        stages,
        comparison: Comparison::new(&metrics_q, &metrics_r)?,
        rows: data.rows,
    })
}

impl DebugReport {
    /// A plain-text table, worst layer first.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let c = &self.comparison;
        let _ = writeln!(
            s,
            "{} samples: NE {:.6} (ref {:.6}, ΔNE {:+.4}%), AUC {:.5} (ref {:.5}, ΔAUC {:+.5}), calibration {:.4}",
            self.rows,
            c.ne,
            c.ne_reference,
            c.delta_ne_pct,
            c.auc,
            c.auc_reference,
            c.delta_auc,
            c.calibration
        );
        let _ = writeln!(
            s,
            "{:<5} {:<14} {:<18} {:>10} {:>10} {:>10} {:>9} | {:>10} {:>10} {:>9}",
            "rank",
            "layer",
            "precision",
            "SQNR dB",
            "rel L2",
            "max abs",
            "cosine",
            "prop SQNR",
            "prop relL2",
            "prop cos"
        );
        let row = |s: &mut String, rank: String, r: &LayerReport| {
            let iso = r.isolated.map_or_else(
                || format!("{:>10} {:>10} {:>10} {:>9}", "-", "-", "-", "-"),
                |e| {
                    format!(
                        "{:>10.2} {:>10.3e} {:>10.3e} {:>9.6}",
                        e.sqnr_db, e.rel_l2, e.max_abs, e.cosine
                    )
                },
            );
            let p = &r.propagated;
            let _ = writeln!(
                s,
                "{rank:<5} {:<14} {:<18} {iso} | {:>10.2} {:>10.3e} {:>9.6}",
                r.name, r.precision, p.sqnr_db, p.rel_l2, p.cosine
            );
        };
        for (i, r) in self.ranked.iter().enumerate() {
            row(&mut s, (i + 1).to_string(), r);
        }
        for r in &self.stages {
            row(&mut s, "-".into(), r);
        }
        s
    }
}
