//! `embedding_bag_*` lines: pooled lookups over one large table, single thread, in the shapes of
//! `../shared/peers/torch_bench.py` (rows, d, pool, batch, warm/cold), rate in Mrows/s (`batch·pool / s`).
//!
//! "warm" repeats one batch of ids (its rows stay cached as far as they fit); "cold" rotates over as
//! many id sets as the peer script does (up to 64, about 256 MB of f32 rows), so most rows come from
//! memory. Table values are random (speed does not depend on them): f32 from a uniform draw, f16/bf16
//! converted from it, fused rows with random codes and a random scale and bias per row.
//! Tables are held the way a [`quantrec_model::Model`] holds in-memory tables
//! ([`TableBytes::in_memory`]: transparent huge pages on Linux), which matters more than any
//! instruction-level tuning for cold rows: with 4 KiB pages nearly every random row costs a page walk.
//! PyTorch allocates with 4 KiB pages unless run with `THP_MEM_ALLOC_ENABLE=1`. The output is
//! 64-byte aligned, as PyTorch's tensors are: at pool 1 and d = 128 a pooled row written across cache
//! lines measured about 25% slower.

use std::time::Duration;

use super::BenchRecord;
use super::line::{BagShape, Line, NoExtra};
use crate::Result;
use half::{bf16, f16};
use quantrec_kernels::Isa;
use quantrec_kernels::aligned::AlignedF32;
use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, Indices, Lookup, Pooling, pool_with_isa,
};
use quantrec_kernels::formats::{TableFormat, TableRef};
use quantrec_kernels::rng::Rng;
use quantrec_model::tables::TableBytes;

use super::{KernelBenchOptions, Sink};
use crate::timing::time_median;

/// Bag size of every measured batch.
const BATCH: usize = 1024;

/// The op names of the peer script, with the table format each one measures.
const OPS: [(&str, TableFormat); 6] = [
    ("embedding_bag_f32", TableFormat::F32),
    ("embedding_bag_f16", TableFormat::F16),
    ("embedding_bag_bf16", TableFormat::Bf16),
    ("embedding_bag_byte_rowwise", TableFormat::Fused8),
    ("embedding_bag_4bit_rowwise", TableFormat::Fused4),
    ("embedding_bag_2bit_rowwise", TableFormat::Fused2),
];

/// Measures every embedding-bag op that passes the filter.
pub fn run(options: &KernelBenchOptions, rep: &mut Sink<'_>) -> Result<()> {
    let wanted: Vec<(&str, TableFormat)> =
        OPS.into_iter().filter(|(op, _)| rep.wants(op)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let isa = Isa::active();
    let rows = if options.quick { 200_000 } else { 2_000_000 };
    let dims: &[usize] = if options.quick { &[64] } else { &[16, 64, 128] };
    let pools: &[usize] = if options.quick { &[20] } else { &[1, 20, 100] };
    let min_time = Duration::from_millis(if options.quick { 100 } else { 300 });
    let mut rng = Rng::new(0x0e3b);
    for &d in dims {
        let values: Vec<f32> = (0..rows * d)
            .map(|_| rng.uniform_f32(-0.15, 0.15))
            .collect();
        let tables: Vec<(&str, TableFormat, TableBytes)> = wanted
            .iter()
            .map(|&(op, f)| Ok((op, f, table_bytes(f, &values, d, &mut rng)?)))
            .collect::<Result<_>>()?;
        drop(values);
        for &pool in pools {
            let n = BATCH * pool;
            let sets = if options.quick {
                4
            } else {
                ((256usize << 20) / (n * d * 4)).clamp(1, 64)
            };
            let id_sets: Vec<Vec<i64>> = (0..sets)
                .map(|_| (0..n).map(|_| rng.below(rows as u64) as i64).collect())
                .collect();
            let offsets: Vec<i64> = (0..BATCH).map(|b| (b * pool) as i64).collect();
            // 64-byte aligned, as PyTorch's output tensors are (see `quantrec_kernels::aligned`).
            let mut out = AlignedF32::zeroed(BATCH * d);
            for cache in ["warm", "cold"] {
                for (op, format, data) in &tables {
                    let table = TableRef::new(*format, rows, d, data.as_slice())?;
                    let bag = EmbeddingBag {
                        table,
                        pooling: Pooling::Sum,
                        remap: None,
                    };
                    let mut it = 0usize;
                    let mut failure = None;
                    let secs = time_median(min_time, 5, || {
                        let ids = if cache == "warm" {
                            &id_sets[0]
                        } else {
                            &id_sets[it % id_sets.len()]
                        };
                        it += 1;
                        let lookup = Lookup {
                            indices: Indices::I64(ids),
                            bags: Bags::Offsets(Indices::I64(&offsets)),
                            num_bags: BATCH,
                            per_sample_weights: None,
                        };
                        if let Err(e) = pool_with_isa(isa, &bag, &lookup, 0, &mut out[..], d) {
                            failure = Some(e);
                        }
                        std::hint::black_box(&out[..]);
                    });
                    if let Some(e) = failure {
                        return Err(e.into());
                    }
                    let shape = BagShape {
                        rows,
                        d,
                        pool,
                        batch: BATCH,
                        cache,
                    };
                    let rate = n as f64 / secs / 1e6;
                    rep.record(BenchRecord::EmbeddingBag(Line::new(
                        isa.name(),
                        op,
                        shape,
                        secs,
                        rate,
                        "Mrows/s",
                        NoExtra {},
                    )))?;
                }
            }
        }
    }
    Ok(())
}

/// The bytes of a `rows × d` table in `format`: float formats from `values`, fused formats as random
/// codes with a per-row scale and bias.
fn table_bytes(format: TableFormat, values: &[f32], d: usize, rng: &mut Rng) -> Result<TableBytes> {
    let rows = values.len() / d;
    let rb = format.row_bytes(d);
    let mut table = vec![0u8; rows * rb];
    let data = &mut table[..];
    match format {
        TableFormat::F32 => {
            for (o, v) in data.chunks_exact_mut(4).zip(values) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        TableFormat::F16 => {
            for (o, v) in data.chunks_exact_mut(2).zip(values) {
                o.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
        TableFormat::Bf16 => {
            for (o, v) in data.chunks_exact_mut(2).zip(values) {
                o.copy_from_slice(&bf16::from_f32(*v).to_le_bytes());
            }
        }
        _ => {
            let codes = format.code_bytes(d);
            for row in data.chunks_exact_mut(rb) {
                for chunk in row[..codes].chunks_mut(8) {
                    let r = rng.next_u64().to_le_bytes();
                    chunk.copy_from_slice(&r[..chunk.len()]);
                }
                let (scale, bias) = (rng.uniform_f32(1e-3, 0.02), rng.uniform_f32(-0.15, 0.0));
                if format == TableFormat::Fused8 {
                    row[codes..codes + 4].copy_from_slice(&scale.to_le_bytes());
                    row[codes + 4..codes + 8].copy_from_slice(&bias.to_le_bytes());
                } else {
                    row[codes..codes + 2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
                    row[codes + 2..codes + 4].copy_from_slice(&f16::from_f32(bias).to_le_bytes());
                }
            }
        }
    }
    // Held as the model holds its in-memory tables (huge pages from 2 MiB; page-aligned).
    Ok(TableBytes::in_memory(table)?)
}
