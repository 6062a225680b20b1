//! `linear_int8` (dynamic u8 activations, f32 in and out) and `linear_int8_static` (u8 in, u8 out, the
//! chain between int8 layers) on DLRM's MLP shapes, single thread, with `peak_fraction` against the
//! measured 512-bit VNNI peak (the AMX kernel, where the CPU has it, can exceed 1) and, where AMX
//! is usable, `amx_peak_fraction` against the measured `tdpbusd` peak. Shapes and data follow
//! `../shared/peers/torch_bench.py`, plus DLRM-v2's cross-net and first top layers
//! ([`DLRMV2_KNS`]) by default; `kernel` names the int8 kernel that ran.

use std::time::Duration;

use super::line::{GemmShape, Int8Extra, Line};
use super::{BenchRecord, KernelBenchOptions, Sink, linear_shapes, peak};
use crate::Result;
use crate::timing::time_median;
use quantrec_kernels::Isa;
use quantrec_kernels::gemm::int8::Int8Kernel;
use quantrec_kernels::gemm::{
    ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
};
use quantrec_kernels::peak::PeakKind;
use quantrec_kernels::rng::Rng;

/// Runs both int8 Linear benchmarks on one thread.
pub fn run(options: &KernelBenchOptions, rep: &mut Sink<'_>) -> Result<()> {
    let ops = ["linear_int8", "linear_int8_static"];
    if !ops.iter().any(|o| rep.wants(o)) {
        return Ok(());
    }
    let want_dynamic = rep.wants("linear_int8");
    let want_static = rep.wants("linear_int8_static");
    // Timed inside a one-thread pool (the driver sizes its split by the pool it runs in); rows are
    // recorded afterwards because the reporter stays on this thread.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let rows = pool.install(|| bench(options, want_dynamic, want_static))?;
    let isa = Isa::active();
    let peaks = Peaks {
        vnni: peak::measure(PeakKind::Int8Vnni),
        amx: peak::measure(PeakKind::Int8Amx),
    };
    for (op, shape, secs, ops) in rows {
        record(rep, isa, op, shape, secs, ops, peaks)?;
    }
    Ok(())
}

/// DLRM-v2's int8 layers beyond [`super::LINEAR_KNS`] `(k, n)`: a cross layer's `V` (3456 → 512)
/// and `W` (512 → 3456), and the first top layer (3456 → 1024); timed at the default shapes' batch
/// sizes of 64 and 1024 (64 alone when quick) unless `--shapes` is given.
pub const DLRMV2_KNS: [(usize, usize); 3] = [(3456, 512), (512, 3456), (3456, 1024)];

/// The measured peaks (GOP/s) the rates are read against.
#[derive(Clone, Copy)]
struct Peaks {
    vnni: Option<f64>,
    amx: Option<f64>,
}

type Row = (&'static str, GemmShape, f64, f64);

fn bench(options: &KernelBenchOptions, want_dynamic: bool, want_static: bool) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut shapes = linear_shapes(options);
    if options.shapes.is_empty() {
        let ms: Vec<usize> = if options.quick {
            vec![64]
        } else {
            vec![64, 1024]
        };
        shapes.extend(DLRMV2_KNS.iter().map(|&(k, n)| (k, n, ms.clone())));
    }
    let min_time = Duration::from_millis(if options.quick { 100 } else { 300 });
    let mut rng = Rng::new(0);
    let mut scratch = LinearScratch::default();
    for (k, n, ms) in shapes {
        let w = rng.normal_vec(n * k, 0.05);
        let b = rng.normal_vec(n, 0.01);
        let prec = |activations| {
            Precision::Int8(Int8Spec {
                per_channel: false,
                activations,
            })
        };
        let dynamic = PackedLinear::new(&w, Some(&b), n, k, prec(ActivationQuant::Dynamic))?;
        let xq = QParams {
            scale: 4.0 / 255.0,
            zero_point: 128,
        };
        let fixed = PackedLinear::new(&w, Some(&b), n, k, prec(ActivationQuant::Static(xq)))?;
        let out_q = QParams {
            scale: 0.02,
            zero_point: 0,
        };
        for &m in &ms {
            let x = rng.normal_vec(m * k, 1.0);
            let x_u8: Vec<u8> = (0..m * k).map(|_| rng.below(256) as u8).collect();
            let ops = 2.0 * (m * k * n) as f64;
            let shape = GemmShape { m, k, n };
            if want_dynamic {
                let mut out = vec![0f32; m * n];
                let secs = time_median(min_time, 5, || {
                    dynamic
                        .forward(&x, m, &mut out, false, &mut scratch)
                        .expect("shapes were built to match");
                });
                rows.push(("linear_int8", shape.clone(), secs, ops));
            }
            if want_static {
                let mut out = vec![0u8; m * n];
                let secs = time_median(min_time, 5, || {
                    fixed
                        .forward_u8_to_u8(&x_u8, xq, m, &mut out, out_q, true, &mut scratch)
                        .expect("shapes were built to match");
                });
                rows.push(("linear_int8_static", shape, secs, ops));
            }
        }
    }
    Ok(rows)
}

fn record(
    rep: &mut Sink<'_>,
    isa: Isa,
    op: &str,
    shape: GemmShape,
    secs: f64,
    ops: f64,
    peaks: Peaks,
) -> Result<()> {
    let rate = ops / secs / 1e9;
    let kernel = Int8Kernel::active().name();
    let extra = Int8Extra {
        threads: 1,
        kernel: kernel.to_string(),
        peak_fraction: peaks.vnni.map(|p| rate / p),
        amx_peak_fraction: peaks.amx.map(|p| rate / p),
    };
    rep.record(BenchRecord::LinearInt8(Line::new(
        isa.name(),
        op,
        shape,
        secs,
        rate,
        "GOP/s",
        extra,
    )))
}
