//! Training throughput of the fp32 trainer on a Criteo-Kaggle-shaped DLRM with random Zipf-ish
//! one-hot ids (26 tables, dim 16, cardinalities of Criteo Kaggle capped at 100k).
//!
//! `cargo run -p quantrec-train --release --example train_speed -- [small|tiny|kaggle|dcn] [batch] [steps] [threads]`
//!
//! `small`: bottom 13-64-16, top 367-128-64-1 (the trainer's suggested synthetic default);
//! `tiny`: bottom 13-64-16, top 367-64-1; `kaggle`: facebookresearch/dlrm's Kaggle recipe, bottom 13-512-256-64-16, top 367-512-256-1;
//! `dcn`: bottom 13-64-16, a DCN of 3 cross layers of rank 64 over the 432-wide concatenation, top 432-128-64-1
//! (exercises the cross net's products).
//! Prints samples/s (median of 5 timed rounds) for 1 and 2 threads.

use std::time::Instant;

use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::rng::Rng;
use quantrec_model::ModelConfig;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_train::{TrainOptions, Trainer};

/// Criteo Kaggle (DAC) cardinalities, as in facebookresearch/dlrm.
const KAGGLE_ROWS: [usize; 26] = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
];

fn model(kind: &str) -> ModelConfig {
    let (bottom, top) = match kind {
        "kaggle" => (vec![512, 256, 64, 16], vec![512, 256, 1]),
        "tiny" | "dcn" => (vec![64, 16], vec![64, 1]),
        _ => (vec![64, 16], vec![128, 64, 1]),
    };
    ModelConfig {
        dense_features: 13,
        bottom_mlp: bottom,
        tables: KAGGLE_ROWS
            .iter()
            .map(|&r| TableConfig {
                rows: r.min(100_000),
                dim: 16,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: if kind == "dcn" {
            Interaction::Dcn {
                layers: 3,
                rank: 64,
            }
        } else {
            Interaction::Dot {
                order: DotOrder::LowerByRow,
                self_interaction: false,
            }
        },
        top_mlp: if kind == "dcn" { vec![128, 64, 1] } else { top },
        naming: Naming::Dlrm,
    }
}

fn batch(cfg: &ModelConfig, size: usize, rng: &mut Rng) -> Batch {
    let dense = (0..size * 13)
        .map(|_| (rng.uniform() * 8.0).ln_1p() as f32)
        .collect();
    let sparse = cfg
        .tables
        .iter()
        .map(|t| {
            // Power-law skew towards small ids (roughly Zipf).
            let ids = (0..size)
                .map(|_| {
                    let u = rng.uniform();
                    ((u.powi(4)) * t.rows as f64) as i64
                })
                .collect();
            SparseFeature::one_hot(ids)
        })
        .collect();
    let labels = (0..size)
        .map(|_| if rng.uniform() < 0.25 { 1.0 } else { 0.0 })
        .collect();
    Batch {
        size,
        n_dense: 13,
        dense,
        sparse,
        labels: Some(labels),
    }
}

/// CPU seconds used by this process so far (Linux `/proc/self/stat`, 100 ticks/s), if readable.
/// On a shared machine, samples per CPU-second estimate the throughput with the cores to ourselves.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map(String::as_str).unwrap_or("small");
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2048);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let cfg = model(kind);
    let mut rng = Rng::new(1);
    let batches: Vec<Batch> = (0..steps).map(|_| batch(&cfg, size, &mut rng)).collect();
    println!(
        "model {kind}: bottom {:?} top {:?}, batch {size}, {steps} steps per round",
        cfg.bottom_mlp, cfg.top_mlp
    );
    let threads_list: Vec<usize> = match args.get(4) {
        Some(t) => vec![t.parse().expect("threads")],
        None => vec![1, 2],
    };
    for threads in threads_list {
        let options = TrainOptions {
            threads: Some(threads),
            ..TrainOptions::default()
        };
        let mut tr = Trainer::new(cfg.clone(), options).expect("valid config");
        for b in batches.iter().take(2) {
            tr.train_step(b).expect("valid batch");
        }
        let mut rates = Vec::new();
        let mut loss = 0.0;
        let cpu0 = cpu_seconds();
        for _ in 0..5 {
            let t = Instant::now();
            for b in &batches {
                loss = tr.train_step(b).expect("valid batch");
            }
            rates.push((steps * size) as f64 / t.elapsed().as_secs_f64());
        }
        let per_cpu = match (cpu0, cpu_seconds()) {
            (Some(a), Some(b)) if b > a => format!("{:.0}", (5 * steps * size) as f64 / (b - a)),
            _ => "n/a".to_string(),
        };
        rates.sort_by(f64::total_cmp);
        println!(
            "threads {threads}: {:.0} samples/s (median of 5; min {:.0}, max {:.0}); {per_cpu} samples per CPU-second; last loss {loss:.4}",
            rates[2], rates[0], rates[4]
        );
    }
}
