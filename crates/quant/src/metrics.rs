//! Streaming error metrics between a reference tensor (e.g. the f32 model's layer output) and a
//! test tensor (the same layer under quantization), for the numeric debugger.
//!
//! [`ErrorStats`] accumulates sums in f64 over any number of [`ErrorStats::update`] calls and can
//! be merged with another accumulator (parallel batches); merging is exact up to f64 rounding.
//!
//! With `r` the reference, `t` the test values and `e = t - r`:
//! - SQNR (dB) = `10 · log10(Σr² / Σe²)` (+inf when `e` is all zero),
//! - relative L2 error = `sqrt(Σe² / Σr²)`,
//! - max abs error = `max |e|`,
//! - cosine similarity = `Σ r·t / sqrt(Σr² · Σt²)`.

use crate::{QuantError, Result};

/// Streaming accumulator of reference-vs-test error statistics.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorStats {
    count: u64,
    sum_ref_sq: f64,
    sum_test_sq: f64,
    sum_err_sq: f64,
    sum_dot: f64,
    max_abs: f64,
}

impl ErrorStats {
    /// An empty accumulator.
    pub fn new() -> ErrorStats {
        ErrorStats::default()
    }

    /// Adds matching slices of reference and test values of the tensor `name`. Refuses slices of
    /// different lengths and non-finite values (the error names the tensor, which side, and the
    /// index); nothing is recorded from a refused call.
    pub fn update(&mut self, name: &str, reference: &[f32], test: &[f32]) -> Result<()> {
        if reference.len() != test.len() {
            return Err(QuantError::Shape {
                what: format!("test values of {name}"),
                expected: reference.len(),
                found: test.len(),
            });
        }
        for (side, values) in [("reference", reference), ("test", test)] {
            if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                return Err(QuantError::NonFinite {
                    tensor: format!("{name} ({side})"),
                    index: i,
                    value: values[i],
                });
            }
        }
        for (&r, &t) in reference.iter().zip(test) {
            let (r, t) = (f64::from(r), f64::from(t));
            let e = t - r;
            self.sum_ref_sq += r * r;
            self.sum_test_sq += t * t;
            self.sum_err_sq += e * e;
            self.sum_dot += r * t;
            self.max_abs = self.max_abs.max(e.abs());
        }
        self.count += reference.len() as u64;
        Ok(())
    }

    /// Adds everything `other` has accumulated.
    pub fn merge(&mut self, other: &ErrorStats) {
        self.count += other.count;
        self.sum_ref_sq += other.sum_ref_sq;
        self.sum_test_sq += other.sum_test_sq;
        self.sum_err_sq += other.sum_err_sq;
        self.sum_dot += other.sum_dot;
        self.max_abs = self.max_abs.max(other.max_abs);
    }

    /// Number of value pairs seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Signal-to-quantization-noise ratio in dB: +inf for no error, -inf for a zero reference
    /// with a non-zero error; NaN before any data.
    pub fn sqnr_db(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        if self.sum_err_sq == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (self.sum_ref_sq / self.sum_err_sq).log10()
    }

    /// `‖t - r‖ / ‖r‖`: 0 for no error, +inf for a zero reference with a non-zero error; NaN
    /// before any data.
    pub fn rel_l2(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        if self.sum_err_sq == 0.0 {
            return 0.0;
        }
        (self.sum_err_sq / self.sum_ref_sq).sqrt()
    }

    /// Largest `|t - r|` (0 before any data).
    pub fn max_abs(&self) -> f64 {
        self.max_abs
    }

    /// Cosine similarity of the two tensors: 1 when both are all zero, 0 when exactly one is;
    /// NaN before any data.
    pub fn cosine(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        match (self.sum_ref_sq == 0.0, self.sum_test_sq == 0.0) {
            (true, true) => 1.0,
            (true, false) | (false, true) => 0.0,
            (false, false) => {
                (self.sum_dot / (self.sum_ref_sq.sqrt() * self.sum_test_sq.sqrt())).clamp(-1.0, 1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_kernels::rng::Rng;

    #[test]
    fn hand_computed_values() {
        // r = (3, 4), t = (3, 5): e = (0, 1).
        let mut s = ErrorStats::new();
        s.update("x", &[3.0, 4.0], &[3.0, 5.0]).unwrap();
        assert_eq!(s.count(), 2);
        assert!((s.sqnr_db() - 10.0 * 25f64.log10()).abs() < 1e-12);
        assert!((s.rel_l2() - 0.2).abs() < 1e-12);
        assert_eq!(s.max_abs(), 1.0);
        assert!((s.cosine() - 29.0 / (5.0 * 34f64.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn edge_cases() {
        let empty = ErrorStats::new();
        assert!(empty.sqnr_db().is_nan() && empty.rel_l2().is_nan() && empty.cosine().is_nan());
        let mut same = ErrorStats::new();
        same.update("x", &[1.0, -2.0], &[1.0, -2.0]).unwrap();
        assert_eq!(same.sqnr_db(), f64::INFINITY);
        assert_eq!((same.rel_l2(), same.max_abs()), (0.0, 0.0));
        assert!((same.cosine() - 1.0).abs() < 1e-15);
        let mut zero_ref = ErrorStats::new();
        zero_ref.update("x", &[0.0, 0.0], &[0.5, 0.0]).unwrap();
        assert_eq!(zero_ref.sqnr_db(), f64::NEG_INFINITY);
        assert_eq!((zero_ref.rel_l2(), zero_ref.cosine()), (f64::INFINITY, 0.0));
        let mut zeros = ErrorStats::new();
        zeros.update("x", &[0.0], &[0.0]).unwrap();
        assert_eq!(zeros.cosine(), 1.0);
        let mut opposite = ErrorStats::new();
        opposite.update("x", &[1.0, 2.0], &[-1.0, -2.0]).unwrap();
        assert!((opposite.cosine() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_refused_and_not_recorded() {
        let mut s = ErrorStats::new();
        assert!(matches!(
            s.update("x", &[1.0, 2.0], &[1.0]),
            Err(QuantError::Shape { .. })
        ));
        match s.update("layer3", &[1.0, 2.0], &[1.0, f32::NAN]) {
            Err(QuantError::NonFinite { tensor, index, .. }) => {
                assert_eq!(tensor, "layer3 (test)");
                assert_eq!(index, 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(s.update("x", &[f32::INFINITY], &[1.0]).is_err());
        assert_eq!(s, ErrorStats::new());
    }

    #[test]
    fn streaming_and_merge_equal_one_pass() {
        let mut rng = Rng::new(4);
        let r = rng.normal_vec(1000, 1.0);
        let t: Vec<f32> = r.iter().map(|x| x + 0.01 * rng.normal() as f32).collect();
        let mut whole = ErrorStats::new();
        whole.update("x", &r, &t).unwrap();
        let mut a = ErrorStats::new();
        let mut b = ErrorStats::new();
        a.update("x", &r[..300], &t[..300]).unwrap();
        b.update("x", &r[300..700], &t[300..700]).unwrap();
        b.update("x", &r[700..], &t[700..]).unwrap();
        a.merge(&b);
        assert_eq!(a.count(), whole.count());
        for (x, y) in [
            (a.sqnr_db(), whole.sqnr_db()),
            (a.rel_l2(), whole.rel_l2()),
            (a.max_abs(), whole.max_abs()),
            (a.cosine(), whole.cosine()),
        ] {
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
        }
        // Noise of 1% of a unit signal: SQNR ~ 40 dB.
        assert!((whole.sqnr_db() - 40.0).abs() < 1.0, "{}", whole.sqnr_db());
    }
}
