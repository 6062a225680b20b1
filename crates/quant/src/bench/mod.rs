//! The benchmark harness: median timings of every kernel family and of the whole model, as
//! [`BenchRecord`] lines (JSON lines comparable with `../shared/peers/*.py`, joined on `op` and
//! `shape`; a table row through `Display`).
//!
//! Kernel families: [`peak`] (this core's ceilings), [`formats`] (table (de)quantization),
//! [`linear_int8`], [`interaction`], [`linear`], [`embedding`]; [`model`]: whole-model predict
//! (on [`synthetic`] models and batches or on an artifact and inputs file).
//! Lines go to a [`Sink`] as they are measured; [`output`] writes them as a table and JSON lines.

pub mod embedding;
pub mod formats;
pub mod interaction;
pub mod line;
pub mod linear;
pub mod linear_int8;
pub mod model;
pub mod output;
pub mod peak;
pub mod synthetic;

pub use line::BenchRecord;
pub use output::BenchOutput;

use crate::{QuantError, Result};

/// Options of the kernel benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelBenchOptions {
    /// Fewer shapes and shorter timings (seconds instead of minutes).
    pub quick: bool,
    /// Only run benchmarks whose op name contains this substring.
    pub filter: Option<String>,
    /// Dense-layer shapes `(m, k, n)` to time instead of the defaults.
    pub shapes: Vec<(usize, usize, usize)>,
}

/// Where benchmark lines go: a filter on op names and the caller's handler.
pub struct Sink<'a> {
    filter: Option<String>,
    on_record: &'a mut dyn FnMut(&BenchRecord) -> std::io::Result<()>,
}

impl<'a> Sink<'a> {
    /// Lines of ops containing `filter` (all when `None`) go to `on_record`.
    pub fn new(
        filter: Option<String>,
        on_record: &'a mut dyn FnMut(&BenchRecord) -> std::io::Result<()>,
    ) -> Self {
        Sink { filter, on_record }
    }

    /// Whether an op passes the filter.
    pub fn wants(&self, op: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| op.contains(f))
    }

    /// Hands one line to the handler.
    pub fn record(&mut self, r: BenchRecord) -> Result<()> {
        (self.on_record)(&r).map_err(|e| QuantError::io("<benchmark output>", e))
    }
}

/// The DLRM MLP `(k, n)` pairs `../shared/peers/torch_bench.py` times.
pub const LINEAR_KNS: [(usize, usize); 5] = [
    (512, 256),
    (256, 128),
    (1024, 1024),
    (1024, 512),
    (479, 1024),
];

/// Parses a dense-layer shape `MxKxN` (positive sizes).
pub fn parse_shape(s: &str) -> Result<(usize, usize, usize)> {
    let dims: Option<Vec<usize>> = s.split('x').map(|d| d.trim().parse().ok()).collect();
    match dims.as_deref() {
        Some(&[m, k, n]) if m > 0 && k > 0 && n > 0 => Ok((m, k, n)),
        _ => Err(QuantError::ShapeSpec {
            spec: s.to_string(),
        }),
    }
}

/// Dense-layer shapes to time, grouped by weight shape: `(k, n, batch sizes)`. The defaults (every
/// [`LINEAR_KNS`] pair at m ∈ {1, 16, 64, 256, 1024}, or {1, 256} when quick), or `options.shapes`.
pub fn linear_shapes(options: &KernelBenchOptions) -> Vec<(usize, usize, Vec<usize>)> {
    if options.shapes.is_empty() {
        let ms: Vec<usize> = if options.quick {
            vec![1, 256]
        } else {
            vec![1, 16, 64, 256, 1024]
        };
        return LINEAR_KNS
            .iter()
            .map(|&(k, n)| (k, n, ms.clone()))
            .collect();
    }
    let mut groups: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for &(m, k, n) in &options.shapes {
        match groups.iter_mut().find(|g| g.0 == k && g.1 == n) {
            Some(g) => g.2.push(m),
            None => groups.push((k, n, vec![m])),
        }
    }
    groups
}

/// Runs every kernel benchmark family (those the sink's filter wants), in the order peaks,
/// formats, int8 Linear, interaction, Linear, embedding bags.
pub fn run_kernels(options: &KernelBenchOptions, sink: &mut Sink<'_>) -> Result<()> {
    peak::run(options, sink)?;
    let mut done: Vec<BenchFn> = Vec::new();
    for family in quantrec_kernels::registry::FAMILIES {
        let bench = bench_for(family.name).ok_or(QuantError::UnbenchedFamily {
            family: family.name,
        })?;
        if !done.iter().any(|f| std::ptr::fn_addr_eq(*f, bench)) {
            bench(options, sink)?;
            done.push(bench);
        }
    }
    Ok(())
}

/// A benchmark routine of one or more kernel families.
type BenchFn = fn(&KernelBenchOptions, &mut Sink<'_>) -> Result<()>;

/// The benchmark of a registered kernel family (`quantrec_kernels::registry::FAMILIES`), by name.
/// A family without one is an error, so a newly registered family cannot be left out.
fn bench_for(family: &str) -> Option<BenchFn> {
    Some(match family {
        "formats_codes" | "formats_decode" | "formats_greedy" => formats::run,
        "embedding_bag" => embedding::run,
        "gemm_dense" => linear::run,
        "gemm_int8" => linear_int8::run,
        "interaction" => interaction::run,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_kernel_family_has_a_benchmark() {
        for family in quantrec_kernels::registry::FAMILIES {
            assert!(bench_for(family.name).is_some(), "{}", family.name);
        }
    }

    #[test]
    fn shapes_parse_and_group_by_weight() {
        assert_eq!(parse_shape("16x479x1024").unwrap(), (16, 479, 1024));
        assert!(parse_shape("0x1x1").is_err());
        assert!(parse_shape("1x1").is_err());
        assert!(parse_shape("axbxc").is_err());
        let o = KernelBenchOptions {
            shapes: vec![(1, 8, 4), (16, 8, 4), (2, 3, 5)],
            ..KernelBenchOptions::default()
        };
        assert_eq!(linear_shapes(&o), [(8, 4, vec![1, 16]), (3, 5, vec![2])]);
        let quick = KernelBenchOptions {
            quick: true,
            ..KernelBenchOptions::default()
        };
        assert_eq!(linear_shapes(&quick).len(), LINEAR_KNS.len());
        assert_eq!(linear_shapes(&quick)[0].2, [1, 256]);
    }

    #[test]
    fn the_sink_filters_by_op_substring() {
        let mut handler = |_: &BenchRecord| Ok(());
        let sink = Sink::new(Some("linear".into()), &mut handler);
        assert!(sink.wants("linear_int8") && !sink.wants("peak_f32_fma"));
    }
}
