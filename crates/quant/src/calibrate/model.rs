//! Calibration of a whole model: run the f32 model over calibration batches with an observer that
//! feeds an [`ObserverSet`] (every dense layer's input and output, every pooled table, the
//! interaction output), then select a range per tensor and turn the plan's static int8 layers into
//! calibrated ones.
//!
//! Tensor names are `{layer}.input` / `{layer}.output` with the layer names of
//! [`quantrec_model::Observer`] (`bottom.0.input`, `top.1.output`, `interaction.output`, ...).
//! Net-aware narrowing: a dense layer whose input is the output of a ReLU (every bottom layer but
//! the first, every top layer but the first, which reads the interaction) is calibrated over
//! `[0, max]`; the observed values are already non-negative there, the narrowing makes it exact
//! when a range rule would reach below 0.

use std::collections::BTreeMap;

use quantrec_model::forward::View;
use quantrec_model::plan::{ActivationPlan, LayerPrecision};
use quantrec_model::{Model, Observer, Plan, Scratch};

use super::range::{Range, RangeMethod};
use super::set::ObserverSet;
use crate::eval::EvalSet;
use crate::{QuantError, Result};

/// Feeds every observed tensor into an [`ObserverSet`]; the first error is kept.
struct SetObserver {
    set: ObserverSet,
    error: Option<QuantError>,
}

impl Observer for SetObserver {
    fn observe(&mut self, layer: &str, input: View<'_>, output: View<'_>) {
        if self.error.is_some() {
            return;
        }
        let dense = layer.starts_with("bottom.")
            || layer.starts_with("top.")
            || (layer.starts_with("cross.") && (layer.ends_with(".v") || layer.ends_with(".w")));
        let r = if dense && !input.data.is_empty() {
            self.set.observe(&format!("{layer}.input"), input.data)
        } else {
            Ok(())
        };
        let r = r.and_then(|_| self.set.observe(&format!("{layer}.output"), output.data));
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

/// What a calibration pass saw and the ranges chosen from it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Observers of every tensor.
    pub observers: ObserverSet,
    /// The range rule used.
    pub method: RangeMethod,
    /// The selected range of every observed tensor (narrowed where the input is a ReLU output).
    pub ranges: BTreeMap<String, Range>,
    /// Samples the model ran on.
    pub rows: usize,
}

/// Whether dense layer `layer`'s input is the output of a ReLU.
pub fn input_after_relu(layer: &str) -> bool {
    let idx = |p: &str| layer.strip_prefix(p).and_then(|s| s.parse::<usize>().ok());
    matches!(idx("bottom."), Some(i) if i > 0) || matches!(idx("top."), Some(i) if i > 0)
}

/// Observes `model` (normally the f32 one) on every batch of `data`, in parallel over batches
/// (one observer set per thread, merged), and selects ranges with `method`.
pub fn calibrate(model: &Model, data: &EvalSet, method: RangeMethod) -> Result<Calibration> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = data.batches.len().div_ceil(threads.max(1)).max(1);
    let sets = std::thread::scope(|s| {
        let handles: Vec<_> = data
            .batches
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || -> Result<ObserverSet> {
                    let mut obs = SetObserver {
                        set: ObserverSet::new(),
                        error: None,
                    };
                    let mut scratch = Scratch::new();
                    for b in chunk {
                        model.predict_observed(b, &mut scratch, &mut obs)?;
                        if let Some(e) = obs.error.take() {
                            return Err(e);
                        }
                    }
                    Ok(obs.set)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("calibration worker panicked"))
            .collect::<Result<Vec<_>>>()
    })?;
    let mut observers = ObserverSet::new();
    for s in &sets {
        observers.merge(s)?;
    }
    let mut ranges = observers.select_all(method)?;
    for (name, r) in ranges.iter_mut() {
        if let Some(layer) = name.strip_suffix(".input")
            && input_after_relu(layer)
        {
            *r = r.relu_narrowed();
        }
    }
    Ok(Calibration {
        observers,
        method,
        ranges,
        rows: data.rows,
    })
}

impl Calibration {
    /// The static u8 activation parameters of dense layer `layer` (its calibrated input range).
    pub fn activation(&self, layer: &str) -> Result<ActivationPlan> {
        let r = self
            .ranges
            .get(&format!("{layer}.input"))
            .ok_or_else(|| QuantError::Empty {
                what: format!("calibration of the input of {layer}"),
            })?;
        let q = r.u8_qparams();
        Ok(ActivationPlan::Static {
            scale: q.scale,
            zero_point: q.zero_point,
        })
    }

    /// `plan` with every static int8 layer's activation parameters replaced by calibrated ones.
    pub fn apply(&self, plan: &Plan) -> Result<Plan> {
        let mut out = plan.clone();
        let fix = |p: &mut LayerPrecision, name: String| -> Result<()> {
            if let LayerPrecision::Int8 {
                activations: a @ ActivationPlan::Static { .. },
                ..
            } = p
            {
                *a = self.activation(&name)?;
            }
            Ok(())
        };
        for (i, p) in out.bottom.iter_mut().enumerate() {
            fix(p, format!("bottom.{i}"))?;
        }
        for (i, p) in out.top.iter_mut().enumerate() {
            fix(p, format!("top.{i}"))?;
        }
        for (l, c) in out.cross.iter_mut().enumerate() {
            fix(&mut c.v, format!("cross.{l}.v"))?;
            fix(&mut c.w, format!("cross.{l}.w"))?;
        }
        Ok(out)
    }
}
