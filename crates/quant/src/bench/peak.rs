//! `peak_*` lines: this core's measured ceilings, so results can be read as a fraction of the limit:
//! arithmetic peaks in GOP/s, and `peak_read_bandwidth` (GB/s, one core summing a buffer beyond L2
//! and one beyond the last-level cache).

use std::time::Duration;

use super::BenchRecord;
use super::line::{Line, NoExtra, PeakShape};
use crate::Result;
use quantrec_kernels::Isa;
use quantrec_kernels::peak::{self, PeakKind};

use super::{KernelBenchOptions, Sink};
use crate::timing::time_median;

/// Measures every peak the active ISA level has and records it in GOP/s.
pub fn run(options: &KernelBenchOptions, rep: &mut Sink<'_>) -> Result<()> {
    let isa = Isa::active();
    let iters = 200_000;
    let min_time = Duration::from_millis(if options.quick { 50 } else { 300 });
    for kind in [
        PeakKind::F32Fma,
        PeakKind::Int8Vnni,
        PeakKind::Bf16Dot,
        PeakKind::Bf16Amx,
        PeakKind::Int8Amx,
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
        rep.record(BenchRecord::Peak(Line::new(
            isa.name(),
            kind.op_name(),
            PeakShape {
                threads: 1,
                bytes: None,
            },
            secs,
            ops / secs / 1e9,
            "GOP/s",
            NoExtra {},
        )))?;
    }
    if rep.wants(READ_OP) {
        for bytes in READ_BYTES {
            let secs = read_seconds(bytes, min_time);
            rep.record(BenchRecord::Peak(Line::new(
                isa.name(),
                READ_OP,
                PeakShape {
                    threads: 1,
                    bytes: Some(bytes),
                },
                secs,
                bytes as f64 / secs / 1e9,
                "GB/s",
                NoExtra {},
            )))?;
        }
    }
    Ok(())
}

/// Op name of the single-core read-bandwidth line.
const READ_OP: &str = "peak_read_bandwidth";
/// Buffers read: the size of a 1024×1024 f32 weight matrix (twice this core's L2, so every pass
/// comes from L3), and one far beyond the last-level cache.
const READ_BYTES: [usize; 2] = [4 << 20, 1 << 30];

/// Median seconds of one full read of a `bytes` buffer (after a first touch).
fn read_seconds(bytes: usize, min_time: Duration) -> f64 {
    let isa = Isa::active();
    let buf = vec![1.0f32; bytes / 4];
    time_median(min_time, 5, || {
        std::hint::black_box(peak::read_sum(isa, &buf));
    })
}

/// Single-core read bandwidth (GB/s) over a buffer of `bytes` (short run), for the
/// `bandwidth_fraction` of weight-streaming benchmarks.
pub fn read_bandwidth(bytes: usize) -> f64 {
    bytes as f64 / read_seconds(bytes, Duration::from_millis(50)) / 1e9
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
