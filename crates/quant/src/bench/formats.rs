//! `quantize_*` / `dequantize_*` lines: table (de)quantization throughput in rows/s (the greedy range
//! search alone, and whole tables per format) at every ISA level on one thread, and quantization at
//! the active level on all threads.

use std::time::Duration;

use super::BenchRecord;
use super::line::{Line, NoExtra, TableShape};
use crate::Result;
use quantrec_kernels::Isa;
use quantrec_kernels::formats::greedy::{GreedyOps, search_rows};
use quantrec_kernels::formats::{
    QuantizeOptions, TableFormat, TableRef, dequantize_table_with, quantize_table_with,
};
use quantrec_kernels::rng::Rng;

use super::{KernelBenchOptions, Sink};
use crate::timing::time_median;

/// Benchmarks table quantization.
pub fn run(options: &KernelBenchOptions, rep: &mut Sink<'_>) -> Result<()> {
    let (rows, dim) = if options.quick {
        (10_000, 64)
    } else {
        (100_000, 64)
    };
    let min_time = Duration::from_millis(if options.quick { 200 } else { 1000 });
    let src = Rng::new(1).normal_vec(rows * dim, 0.05);
    let threads = rayon::current_num_threads();

    for bits in [4u32, 2] {
        let op = format!("quantize_greedy{bits}_search");
        if !rep.wants(&op) {
            continue;
        }
        let mut out = vec![(0.0f32, 0.0f32); rows];
        for isa in Isa::available() {
            let ops = GreedyOps::for_isa(isa)?;
            // Single thread: the ops table directly, no rayon.
            let secs = time_median(min_time, 3, || {
                ops.search(&src, dim, bits, &mut out).expect("valid shapes");
            });
            let shape = TableShape {
                rows,
                dim,
                threads: 1,
            };
            rep.record(rows_line(isa.name(), &op, shape, secs))?;
        }
        let ops = GreedyOps::active();
        let secs = time_median(min_time, 3, || {
            search_rows(ops, &src, dim, bits, &mut out).expect("valid shapes");
        });
        let shape = TableShape { rows, dim, threads };
        rep.record(rows_line(ops.isa.name(), &op, shape, secs))?;
    }

    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    for (format, greedy) in [
        (TableFormat::Fused8, false),
        (TableFormat::Fused4, false),
        (TableFormat::Fused2, false),
        (TableFormat::Fused4, true),
    ] {
        let op = format!(
            "quantize_{}{}",
            format.name(),
            if greedy { "_greedy" } else { "" }
        );
        if !rep.wants(&op) {
            continue;
        }
        let opts = QuantizeOptions {
            greedy,
            refine: false,
            name: "bench",
        };
        let mut out = vec![0u8; rows * format.row_bytes(dim)];
        let mut quantize = |isa: Isa| {
            quantize_table_with(isa, &src, rows, dim, format, &opts, &mut out).expect("valid");
        };
        for isa in Isa::available() {
            let secs = one_thread.install(|| time_median(min_time, 3, || quantize(isa)));
            let shape = TableShape {
                rows,
                dim,
                threads: 1,
            };
            rep.record(rows_line(isa.name(), &op, shape, secs))?;
        }
        let isa = Isa::active();
        let secs = time_median(min_time, 3, || quantize(isa));
        let shape = TableShape { rows, dim, threads };
        rep.record(rows_line(isa.name(), &op, shape, secs))?;
    }
    for format in [
        TableFormat::Fused8,
        TableFormat::Fused4,
        TableFormat::Fused2,
        TableFormat::F16,
    ] {
        let op = format!("dequantize_{}", format.name());
        if !rep.wants(&op) {
            continue;
        }
        let packed = quantize_table_with_default(&src, rows, dim, format)?;
        let table = TableRef::new(format, rows, dim, &packed)?;
        let mut out = vec![0f32; rows * dim];
        for isa in Isa::available() {
            let secs = one_thread.install(|| {
                time_median(min_time, 3, || {
                    dequantize_table_with(isa, &table, &mut out).expect("valid");
                })
            });
            let shape = TableShape {
                rows,
                dim,
                threads: 1,
            };
            rep.record(rows_line(isa.name(), &op, shape, secs))?;
        }
    }
    Ok(())
}

/// A `quantize_*` / `dequantize_*` line: `shape.rows` per median call, in rows/s.
fn rows_line(isa: &str, op: &str, shape: TableShape, secs: f64) -> BenchRecord {
    let rate = shape.rows as f64 / secs;
    BenchRecord::Table(Line::new(isa, op, shape, secs, rate, "rows/s", NoExtra {}))
}

fn quantize_table_with_default(
    src: &[f32],
    rows: usize,
    dim: usize,
    format: TableFormat,
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; rows * format.row_bytes(dim)];
    let opts = QuantizeOptions::default();
    quantize_table_with(Isa::active(), src, rows, dim, format, &opts, &mut out)?;
    Ok(out)
}
