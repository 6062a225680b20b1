//! Measures the automatic quantization on the synthetic default model: trains the default DLRM
//! (26 tables, d = 16) on generated Criteo-like data, then runs the search under a ΔNE budget and
//! prints the search time, the chosen plan's size against f32, its ΔNE, and every preset.
//!
//! `cargo run --release -p quantrec-quant --example synth_search -- [TRAIN_ROWS] [EVAL_ROWS] [BUDGET] [OBJECTIVE] [REPORT_DIR] [CRITEO_TSV]`
//!
//! With `CRITEO_TSV` (e.g. `../shared/data/criteo-dac-sample/train.txt`) the model is trained on
//! that click log instead (ids hashed into 10,000 rows per table): the last `EVAL_ROWS` lines are
//! the evaluation set, the rest train (for `TRAIN_ROWS / rows` epochs, at least one) and calibrate.

use std::time::Instant;

use quantrec_data::Batch;
use quantrec_data::BatchSource;
use quantrec_data::synth::{Generator, Split, SynthConfig};
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_quant::calibrate::RangeMethod;
use quantrec_quant::eval::EvalSet;
use quantrec_quant::plans::summary;
use quantrec_quant::search::pareto::Objective;
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeRequest, quantize};
use quantrec_train::{TrainOptions, Trainer, suggested_config};

fn batches(g: &Generator, split: Split, rows: u64, size: usize) -> Vec<Batch> {
    let mut s = g.stream(split, rows, size);
    let mut out = Vec::new();
    while let Some(b) = s.next_batch().expect("synthetic data") {
        out.push(b);
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let train_rows: u64 = arg(1, "400000").parse()?;
    let eval_rows: u64 = arg(2, "50000").parse()?;
    let budget: f64 = arg(3, "0.02").parse()?;
    let objective = match arg(4, "bytes").as_str() {
        "latency" => Objective::Latency,
        "both" => Objective::Both,
        _ => Objective::Bytes,
    };
    let cfg = SynthConfig::default();
    let g = Generator::new(cfg.clone())?;
    let (train, calib, eval, table_rows) = match args.get(6) {
        None => (
            batches(&g, Split::Train, train_rows, 512),
            batches(&g, Split::Calibration, 4096, 4096),
            batches(&g, Split::Evaluation, eval_rows, 4096),
            cfg.table_rows.clone(),
        ),
        Some(path) => {
            let rows = vec![10_000; 26];
            let spec = quantrec_data::SourceSpec::new(rows.clone(), 1);
            let mut src = quantrec_data::open_source(std::path::Path::new(path), &spec)?;
            let all = quantrec_data::source::read_all(src.as_mut())?;
            let n_eval = (eval_rows as usize).min(all.size / 2);
            let cut = all.size - n_eval;
            let head = quantrec_data::batch_ops::slice(&all, 0, cut);
            let tail = quantrec_data::batch_ops::slice(&all, cut, all.size);
            let mut train = Vec::new();
            for s in (0..cut).step_by(512) {
                train.push(quantrec_data::batch_ops::slice(
                    &head,
                    s,
                    (s + 512).min(cut),
                ));
            }
            (train, vec![head], vec![tail], rows)
        }
    };
    let config = suggested_config(13, &table_rows, 16);
    let t0 = Instant::now();
    let train_size: usize = train.iter().map(|b| b.size).sum();
    let options = TrainOptions {
        epochs: (train_rows as usize / train_size.max(1)).max(1),
        ..TrainOptions::default()
    };
    let mut trainer = Trainer::new(config.clone(), options)?;
    trainer.fit(&train, |_| {})?;
    let sd = StateDict::from_bytes("trained", &trainer.to_safetensors()?)?;
    let imp = import_state_dict(sd, &ImportOverrides::default())?;
    println!(
        "trained on {train_size} rows x {} epochs in {:.1} s",
        options.epochs,
        t0.elapsed().as_secs_f64()
    );
    let req = QuantizeRequest {
        config: imp.config,
        weights: imp.weights,
        calib: EvalSet::from_batches(&calib)?,
        eval: EvalSet::from_batches(&eval)?,
        plan: PlanRequest::Auto,
        search: SearchOptions {
            budget: Budget::Ne(budget),
            objective,
            table_curvature: false,
            tiers: false,
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    };
    let t1 = Instant::now();
    let out = quantize(&req)?;
    let total = t1.elapsed().as_secs_f64();
    let s = out.search.as_ref().expect("auto searches");
    println!(
        "search {:.1} s ({} model evaluations, {} plans), whole workflow {:.1} s",
        s.seconds,
        s.model_evaluations,
        s.evaluated.len(),
        total
    );
    println!(
        "NE f32 {:.5}; chosen {}: {} bytes = {:.2}% of f32 ({} bytes), ΔNE {:+.4}%, ΔAUC {:+.5}, latency {:.3} ms vs {:.3} ms (batch {})",
        out.comparison.ne_reference,
        s.chosen().name,
        out.bytes_quantized,
        100.0 * out.bytes_quantized as f64 / out.bytes_f32 as f64,
        out.bytes_f32,
        out.comparison.delta_ne_pct,
        out.comparison.delta_auc,
        s.chosen().latency_s * 1e3,
        s.evaluated[0].latency_s * 1e3,
        s.cost_model.batch_size
    );
    println!("plan: {}", summary(&out.plan));
    for e in s.evaluated.iter().filter(|e| e.name.starts_with("preset:")) {
        println!(
            "{:<22} {:>6.2}% of f32 bytes, ΔNE {:+.4}% ({}), latency {:.3} ms",
            e.name,
            100.0 * e.bytes as f64 / out.bytes_f32 as f64,
            e.comparison.delta_ne_pct,
            if e.within_budget {
                "within budget"
            } else {
                "over budget"
            },
            e.latency_s * 1e3
        );
    }
    if let Some(dir) = args.get(5) {
        quantrec_quant::report::search_report::write_report(std::path::Path::new(dir), s)?;
        println!("report in {dir}");
    }
    Ok(())
}
