//! Wall-clock timing shared by the cost model, the benchmark harness and the demo's throughput
//! stage: one warm-up call, then repeated runs summarized by their median or their minimum.

use std::time::{Duration, Instant};

/// Runs `f` once to warm up, then repeatedly for at least `min_time` and `min_iters` runs, and
/// returns the median wall time of one run in seconds (what benchmark lines report).
pub fn time_median(min_time: Duration, min_iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let end = Instant::now() + min_time;
    while Instant::now() < end || times.len() < min_iters.max(1) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    median(&mut times)
}

/// Fastest wall time of `f` over `runs` runs in seconds, after one warm-up call (the least
/// disturbed estimate on a shared machine: what the cost model keeps). Stops at the first error.
pub fn fastest_time<E>(runs: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The median of `times` (the upper one of an even count); sorts in place.
fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_after_sorting() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    #[test]
    fn time_median_runs_at_least_min_iters_plus_warm_up() {
        let mut calls = 0;
        let t = time_median(Duration::ZERO, 5, || calls += 1);
        assert_eq!(calls, 6);
        assert!(t >= 0.0);
    }

    #[test]
    fn fastest_time_stops_at_the_first_error() {
        let mut calls = 0;
        let r: Result<f64, &str> = fastest_time(7, || {
            calls += 1;
            if calls == 3 { Err("boom") } else { Ok(()) }
        });
        assert_eq!(r, Err("boom"));
        assert_eq!(calls, 3);
    }
}
