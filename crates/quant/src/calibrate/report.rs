//! What `calibrate` writes: the selected range of every tensor, the plan with calibrated static
//! parameters when one was given, and optionally every observer (so calibrations can be merged).

use std::collections::BTreeMap;
use std::fmt;

use quantrec_model::Plan;
use serde::Serialize;

use super::{Calibration, ObserverSet, Range, RangeMethod};

/// A calibration as the binary writes it: JSON `{"rows", "method", "ranges": {tensor: {lo, hi}},
/// "plan", "observers"?}` ([`serde::Serialize`]) and a one-line summary ([`std::fmt::Display`]).
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationReport<'a> {
    /// Samples the model ran on.
    pub rows: usize,
    /// The range rule used.
    pub method: RangeMethod,
    /// The selected range of every observed tensor.
    pub ranges: &'a BTreeMap<String, Range>,
    /// The given plan with calibrated static int8 parameters (`null` when none was given).
    pub plan: Option<Plan>,
    /// Every observer, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observers: Option<&'a ObserverSet>,
}

impl Calibration {
    /// The report of this calibration, with `plan` (already calibrated) and, if `observers`, every
    /// observer.
    pub fn report(&self, plan: Option<Plan>, observers: bool) -> CalibrationReport<'_> {
        CalibrationReport {
            rows: self.rows,
            method: self.method,
            ranges: &self.ranges,
            plan,
            observers: observers.then_some(&self.observers),
        }
    }
}

impl fmt::Display for CalibrationReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tensors calibrated on {} samples",
            self.ranges.len(),
            self.rows
        )?;
        if self.plan.is_some() {
            write!(f, ", plan calibrated")?;
        }
        Ok(())
    }
}
