//! `interaction_cross`: the DCN-v2 cross step. `interaction_dot`: DLRM's dot interaction on the Kaggle (27 vectors of d = 16) and MLPerf (27 of
//! d = 128) configurations, batch 64 and 1024, facebookresearch/dlrm's pair order, single thread.

use std::time::Duration;

use super::BenchRecord;
use super::line::{CrossExtra, CrossShape, InteractionExtra, InteractionShape, Line};
use crate::Result;
use quantrec_kernels::Isa;
use quantrec_kernels::interaction::{PairOrder, cross_combine, dot_interaction, pairs};
use quantrec_kernels::rng::Rng;

use super::{KernelBenchOptions, Sink};
use crate::timing::time_median;

/// Runs the interaction benchmarks (samples/s): dot interaction and the DCN cross step.
pub fn run(options: &KernelBenchOptions, rep: &mut Sink<'_>) -> Result<()> {
    let min_time = Duration::from_millis(if options.quick { 100 } else { 300 });
    cross(min_time, rep)?;
    if !rep.wants("interaction_dot") {
        return Ok(());
    }
    let mut rng = Rng::new(0);
    for (config, f, d) in [("kaggle", 27usize, 16usize), ("mlperf", 27, 128)] {
        let pr = pairs(f, PairOrder::LowerByRow, false);
        for batch in [64usize, 1024] {
            let feats = rng.normal_vec(batch * f * d, 1.0);
            let mut out = vec![0f32; batch * (d + pr.len())];
            let secs = time_median(min_time, 5, || {
                dot_interaction(&feats, batch, f, d, &pr, &mut out)
                    .expect("shapes were built to match");
            });
            let shape = InteractionShape {
                config,
                f,
                d,
                batch,
            };
            let gflops = (batch * pr.len() * d * 2) as f64 / secs / 1e9;
            rep.record(BenchRecord::Interaction(Line::new(
                Isa::active().name(),
                "interaction_dot",
                shape,
                secs,
                batch as f64 / secs / 1e6,
                "Msamples/s",
                InteractionExtra { threads: 1, gflops },
            )))?;
        }
    }
    Ok(())
}

/// `interaction_cross`: the DCN-v2 cross step `x0 ⊙ u + x` on `[batch, d]` rows (GB/s of the four
/// streams it reads and writes), single thread.
fn cross(min_time: Duration, rep: &mut Sink<'_>) -> Result<()> {
    if !rep.wants("interaction_cross") {
        return Ok(());
    }
    let mut rng = Rng::new(1);
    for (batch, d) in [(64usize, 479usize), (1024, 479)] {
        let n = batch * d;
        let (x0, u, x) = (
            rng.normal_vec(n, 1.0),
            rng.normal_vec(n, 1.0),
            rng.normal_vec(n, 1.0),
        );
        let mut out = vec![0f32; n];
        let secs = time_median(min_time, 5, || {
            cross_combine(&x0, &u, &x, &mut out).expect("shapes were built to match");
        });
        rep.record(BenchRecord::Cross(Line::new(
            Isa::active().name(),
            "interaction_cross",
            CrossShape { d, batch },
            secs,
            (16 * n) as f64 / secs / 1e9,
            "GB/s",
            CrossExtra { threads: 1 },
        )))?;
    }
    Ok(())
}
