//! `linear_*` lines: dense layers `Y = X·Wᵀ + b` at DLRM MLP shapes, single-threaded, in GOP/s
//! (2·m·k·n per call) with `peak_fraction` against this core's measured peak (f32 FMA for f32 and
//! fp16 weights; for bf16 AMX `tdpbf16ps`, else `vdpbf16ps`, else f32 FMA, whichever the kernel uses).
//! At m = 1 a call streams the whole weight matrix, so those lines also carry `bandwidth_fraction`:
//! weight bytes per second against the measured single-core read bandwidth from beyond L2
//! (`peak_read_bandwidth` over 4 MiB).

use std::time::Duration;

use super::line::{GemmShape, Line, LinearExtra};
use super::{BenchRecord, KernelBenchOptions, Sink, linear_shapes, peak};
use crate::Result;
use crate::timing::time_median;
use quantrec_kernels::Isa;
use quantrec_kernels::gemm::{LinearScratch, PackedLinear, Precision};
use quantrec_kernels::peak::PeakKind;
use quantrec_kernels::rng::Rng;

/// Benchmarks `linear_f32`, `linear_fp16` and `linear_bf16` on a 1-thread pool.
pub fn run(options: &KernelBenchOptions, rep: &mut Sink<'_>) -> Result<()> {
    let ops = [
        ("linear_f32", Precision::F32),
        ("linear_fp16", Precision::F16),
        ("linear_bf16", Precision::Bf16),
    ];
    if !ops.iter().any(|(name, _)| rep.wants(name)) {
        return Ok(());
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let isa = Isa::active();
    let f32_peak = peak::measure(PeakKind::F32Fma);
    // The bf16 kernel runs on AMX where the process may use it, else on vdpbf16ps, else on f32 FMA.
    let bf16_peak = peak::measure(PeakKind::Bf16Amx)
        .or_else(|| peak::measure(PeakKind::Bf16Dot))
        .or(f32_peak);
    let shapes = linear_shapes(options);
    let min_time = Duration::from_millis(if options.quick { 60 } else { 250 });
    let mut rng = Rng::new(42);
    let mut scratch = LinearScratch::default();
    let mut read_bw: Option<f64> = None;
    for (k, n, ms) in shapes {
        let w = rng.normal_vec(n * k, 0.05);
        let b = rng.normal_vec(n, 0.01);
        for &(name, precision) in &ops {
            if !rep.wants(name) {
                continue;
            }
            let layer = PackedLinear::new(&w, Some(&b), n, k, precision)?;
            let peak = if precision == Precision::Bf16 {
                bf16_peak
            } else {
                f32_peak
            };
            for &m in &ms {
                let x = rng.normal_vec(m * k, 1.0);
                let mut out = vec![0f32; m * n];
                let secs = pool.install(|| {
                    time_median(min_time, 5, || {
                        layer
                            .forward(&x, m, &mut out, false, &mut scratch)
                            .expect("shapes were built to match");
                        std::hint::black_box(&out);
                    })
                });
                let rate = 2.0 * (m * k * n) as f64 / secs / 1e9;
                let mut extra = LinearExtra {
                    peak_fraction: peak.map(|p| rate / p),
                    bandwidth_fraction: None,
                };
                if m == 1 {
                    // One row streams the whole weight matrix: read it against the measured
                    // single-core bandwidth from beyond L2 instead.
                    let weight_bytes =
                        (k * n * if precision == Precision::F32 { 4 } else { 2 }) as f64;
                    let bw = *read_bw.get_or_insert_with(|| peak::read_bandwidth(4 << 20));
                    extra.bandwidth_fraction = Some(weight_bytes / secs / 1e9 / bw);
                }
                rep.record(BenchRecord::Linear(Line::new(
                    isa.name(),
                    name,
                    GemmShape { m, k, n },
                    secs,
                    rate,
                    "GOP/s",
                    extra,
                )))?;
            }
        }
    }
    Ok(())
}
