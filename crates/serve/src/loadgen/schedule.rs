//! The open-loop arrival timeline: a Poisson process of a given rate, precomputed from a seed so
//! that a run is reproducible and sending never waits on answers (latency is measured from each
//! request's scheduled time, so a slow server cannot hide its queueing by slowing the generator:
//! no coordinated omission).

use std::time::Duration;

use quantrec_kernels::rng::Rng;

use crate::{Result, ServeError};

/// Most arrivals one timeline may hold (rate × duration), to keep its memory bounded.
pub const MAX_ARRIVALS: usize = 50_000_000;

/// Send times, as offsets from the start of the run, of a Poisson process of `rate` requests
/// per second over `duration`: inter-arrival gaps are exponential with mean `1 / rate`.
pub fn poisson_arrivals(rate: f64, duration: Duration, seed: u64) -> Result<Vec<Duration>> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(ServeError::LoadgenOption {
            option: "rate",
            reason: format!("must be a positive number of requests per second, found {rate}"),
        });
    }
    let end = duration.as_secs_f64();
    let expected = rate * end;
    if expected > MAX_ARRIVALS as f64 {
        return Err(ServeError::LoadgenOption {
            option: "rate",
            reason: format!(
                "rate × duration is {expected:.0} requests, more than the {MAX_ARRIVALS} a run may schedule"
            ),
        });
    }
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity((expected * 1.01) as usize + 16);
    let mut t = 0.0f64;
    loop {
        // 1 - U is in (0, 1]: its logarithm is finite.
        let u = 1.0 - rng.uniform();
        t += -u.ln() / rate;
        if t >= end {
            return Ok(out);
        }
        out.push(Duration::from_secs_f64(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_have_the_poisson_mean_and_spread() {
        let rate = 500.0;
        let a = poisson_arrivals(rate, Duration::from_secs(200), 7).unwrap();
        // 100,000 expected arrivals: the count's standard deviation is ~316 (0.3%).
        let n = a.len() as f64;
        assert!((n / 100_000.0 - 1.0).abs() < 0.015, "{n} arrivals");
        let gaps: Vec<f64> = std::iter::once(a[0].as_secs_f64())
            .chain(a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()))
            .collect();
        let mean = gaps.iter().sum::<f64>() / n;
        assert!((mean * rate - 1.0).abs() < 0.015, "mean gap {mean}");
        // An exponential's standard deviation equals its mean.
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        assert!((var.sqrt() / mean - 1.0).abs() < 0.03, "std {}", var.sqrt());
        // P(gap > mean) = 1/e.
        let above = gaps.iter().filter(|&&g| g > 1.0 / rate).count() as f64 / n;
        assert!((above - (-1.0f64).exp()).abs() < 0.01, "{above}");
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(a.last().unwrap() < &Duration::from_secs(200));
    }

    #[test]
    fn the_timeline_is_a_function_of_the_seed() {
        let d = Duration::from_secs(2);
        assert_eq!(
            poisson_arrivals(100.0, d, 3).unwrap(),
            poisson_arrivals(100.0, d, 3).unwrap()
        );
        assert_ne!(
            poisson_arrivals(100.0, d, 3).unwrap(),
            poisson_arrivals(100.0, d, 4).unwrap()
        );
    }

    #[test]
    fn unusable_rates_are_refused() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                poisson_arrivals(r, Duration::from_secs(1), 0),
                Err(ServeError::LoadgenOption { option: "rate", .. })
            ));
        }
        assert!(poisson_arrivals(1e9, Duration::from_secs(100), 0).is_err());
    }
}
