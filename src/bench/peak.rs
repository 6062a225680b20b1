//! `peak_*` lines: this core's measured ceilings, so results can be read as a fraction of the limit.

use std::time::Duration;

use anyhow::Result;
use quantrec_kernels::Isa;
use quantrec_kernels::peak::{self, PeakKind};
use serde_json::json;

use super::{KernelBenchArgs, Reporter, time_median};

/// Measures every peak the active ISA level has and records it in GOP/s.
pub fn run(args: &KernelBenchArgs, rep: &mut Reporter) -> Result<()> {
    let isa = Isa::active();
    let iters = 200_000;
    let min_time = Duration::from_millis(if args.quick { 50 } else { 300 });
    for kind in [
        PeakKind::F32Fma,
        PeakKind::Int8Vnni,
        PeakKind::Bf16Dot,
        PeakKind::Bf16Amx,
    ] {
        if !rep.wants(kind.op_name()) {
            continue;
        }
        let Some(ops) = peak::run(kind, isa, iters) else {
            continue;
        };
        let secs = time_median(min_time, 5, || {
            std::hint::black_box(peak::run(kind, isa, iters));
        });
        rep.record(
            isa.name(),
            kind.op_name(),
            json!({"threads": 1}),
            secs,
            ops / secs / 1e9,
            "GOP/s",
        )?;
    }
    Ok(())
}

/// The measured peak in GOP/s of `kind` at the active level (short run), for `peak_fraction` fields.
pub fn measure(kind: PeakKind) -> Option<f64> {
    let isa = Isa::active();
    let iters = 100_000;
    let ops = peak::run(kind, isa, iters)?;
    let secs = time_median(Duration::from_millis(30), 5, || {
        std::hint::black_box(peak::run(kind, isa, iters));
    });
    Some(ops / secs / 1e9)
}
