//! `quantrec demo`: the whole story on this machine, offline, in a few minutes.
//!
//! 1. a self-check of every kernel at every ISA level against the scalar oracle;
//! 2. data: Criteo-like synthetic rows (train / calibration / evaluation splits from independent
//!    streams) or, with `--data FILE`, a real click log split into train / calibration / holdout;
//! 3. training the default fp32 DLRM (its NE against the generator's teacher, the attainable optimum);
//! 4. automatic quantization under the NE budget (the chosen precision of every layer and table);
//! 5. f32 vs quantized on the evaluation rows (NE, AUC, calibration, ΔNE, bytes);
//! 6. predict throughput and latency at batch 1, 64 and 1024, f32 vs quantized (the size-optimal
//!    plan and the latency-optimal plan: a second search, or with `--quick` the validated plan of
//!    least predicted latency), 1 and 2 threads;
//! 7. day 2 (synthetic data): drifted rows, the fp32 model trained further on them, and `refresh`
//!    of the day-1 artifact with its plan diff and gate ([`day2`]);
//! 8. `demo-out/`: the models, `report.md`, `report.json`, the frontier plot and the search report.

mod day2;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quantrec_data::Batch;
use quantrec_data::batch_ops;
use quantrec_data::metrics::Metrics;
use quantrec_data::source::{self, SourceSpec};
use quantrec_data::synth::{Generator, Split};
use quantrec_model::artifact::{self, Provenance};
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::StateDict;
use quantrec_model::{Model, ModelConfig, Plan, Scratch, Weights};
use quantrec_quant::builder::ModelBuilder;
use quantrec_quant::calibrate::RangeMethod;
use quantrec_quant::eval::EvalSet;
use quantrec_quant::plans::summary;
use quantrec_quant::report::plot::render_png;
use quantrec_quant::report::search_report;
use quantrec_quant::search::pareto::Objective;
use quantrec_quant::search::{Budget, SearchOptions};
use quantrec_quant::workflow::{PlanRequest, QuantizeOutcome, QuantizeRequest, quantize};
use quantrec_train::recipe::SynthRecipe;
use quantrec_train::{Progress, TrainOptions, Trainer, suggested_config};
use serde_json::{Value, json};

use crate::bench::time_median;

/// Arguments of `quantrec demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The short version (under two minutes): fewer training rows, shorter timings.
    #[arg(long)]
    pub quick: bool,
    /// Run the story on a real click log (Criteo DAC TSV) instead of synthetic data.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where the models and reports go.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Accuracy budget: largest relative NE increase, in percent.
    #[arg(long, default_value_t = 0.02)]
    pub budget_ne: f64,
    /// Training rows (synthetic data); default 8M, 1.5M with --quick.
    #[arg(long)]
    pub train_rows: Option<u64>,
    /// Skip the kernel self-check and benchmarks.
    #[arg(long)]
    pub skip_kernels: bool,
}

/// Data, trained model and evaluation rows, whatever their source.
struct Trained {
    config: ModelConfig,
    weights: Weights,
    calib: EvalSet,
    eval: EvalSet,
    source: Value,
    teacher_ne: Option<f64>,
    train_seconds: f64,
    train_rows: u64,
    /// The trainer and recipe of synthetic data (day 2 continues from them).
    synthetic: Option<(Trainer, SynthRecipe)>,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let start = Instant::now();
    println!("quantrec demo — {}", quantrec_kernels::isa::describe());
    if !args.skip_kernels {
        step("1/7 kernel self-check: every ISA level against the scalar oracle");
        selfcheck()?;
    }
    step("2/7 data and fp32 training");
    let trained = match &args.data {
        None => train_synthetic(&args)?,
        Some(path) => train_file(path)?,
    };
    let f32_plan = Plan::f32(&trained.config);
    let f32_model = Model::from_parts(&trained.config, &trained.weights, &f32_plan)?;

    step(&format!(
        "3/7 automatic quantization under ΔNE ≤ {}%",
        args.budget_ne
    ));
    let spinner = spinner("calibrating, measuring sensitivities, searching plans");
    let outcome = quantize(&QuantizeRequest {
        config: trained.config.clone(),
        weights: trained.weights.clone(),
        calib: trained.calib.clone(),
        eval: trained.eval.clone(),
        plan: PlanRequest::Auto,
        search: SearchOptions {
            budget: Budget::Ne(args.budget_ne),
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    });
    spinner.finish_and_clear();
    let outcome = outcome.context("automatic quantization")?;
    print_plan(&trained.config, &outcome);

    step("4/7 f32 vs quantized on the evaluation rows");
    let c = &outcome.comparison;
    println!(
        "{:<12} {:>10} {:>10} {:>12} {:>14}",
        "model", "NE", "AUC", "calibration", "bytes"
    );
    println!(
        "{:<12} {:>10.5} {:>10.5} {:>12.4} {:>14}",
        "f32",
        c.ne_reference,
        c.auc_reference,
        outcome.reference.calibration.unwrap_or(f64::NAN),
        outcome.bytes_f32
    );
    println!(
        "{:<12} {:>10.5} {:>10.5} {:>12.4} {:>14}",
        "quantized", c.ne, c.auc, c.calibration, outcome.bytes_quantized
    );
    println!(
        "ΔNE {:+.4}% (budget {}%), ΔAUC {:+.5}, size {:.1}% of f32",
        c.delta_ne_pct,
        args.budget_ne,
        c.delta_auc,
        100.0 * outcome.bytes_quantized as f64 / outcome.bytes_f32 as f64
    );
    if let Some(t) = trained.teacher_ne {
        println!(
            "teacher (attainable optimum) NE {t:.5}; f32 model / teacher = {:.4}",
            c.ne_reference / t
        );
    }

    step("5/7 predict throughput and latency");
    // The plan above minimizes bytes. The latency-optimal plan under the same budget: a second
    // search minimizing the predicted latency of a 1024-sample batch (with --quick, the plan of
    // least predicted latency among those the first search validated on the whole set).
    let lat = latency_optimal(&args, &trained, &outcome)?;
    let same_plan = lat.plan == outcome.plan;
    println!(
        "size-optimal plan:    {} (ΔNE {:+.4}%, {} bytes)",
        summary(&outcome.plan),
        outcome.comparison.delta_ne_pct,
        outcome.bytes_quantized
    );
    println!(
        "latency-optimal plan: {} (ΔNE {:+.4}%, {} bytes; {}){}",
        summary(&lat.plan),
        lat.delta_ne_pct,
        lat.bytes,
        lat.how,
        if same_plan { " — the same plan" } else { "" }
    );
    let mut models = vec![("f32", &f32_model), ("quantized", &outcome.model)];
    if !same_plan {
        models.push(("q-latency", &lat.model));
    }
    let throughput = bench_predict(&models, &trained.eval, args.quick)?;
    let latency_plan = json!({
        "plan": summary(&lat.plan),
        "same_as_size_optimal": same_plan,
        "delta_ne_pct": lat.delta_ne_pct,
        "bytes": lat.bytes,
        "how": lat.how,
        "seconds": lat.seconds,
    });

    step("6/7 refresh: day-2 data, the model trained further, the day-1 recipe re-validated");
    let refreshed = match &trained.synthetic {
        Some((trainer, recipe)) => Some(day2::run(
            &day2::Day1 {
                trainer,
                recipe,
                config: &trained.config,
                weights: &trained.weights,
                plan: &outcome.plan,
                delta_ne_pct: outcome.comparison.delta_ne_pct,
            },
            Budget::Ne(args.budget_ne),
            args.quick,
            &args.out,
        )?),
        None => {
            println!("skipped: day-2 data is synthetic (run without --data)");
            None
        }
    };

    step("7/7 writing the reports");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let f32_path = args.out.join("model-f32.safetensors");
    let q_path = args.out.join("model-quantized.safetensors");
    let provenance = Provenance {
        notes: Some(json!({"tool": "quantrec demo", "data": trained.source}).to_string()),
        ..Provenance::default()
    };
    artifact::save(
        &f32_path,
        &trained.config,
        &trained.weights,
        &f32_plan,
        &provenance,
    )?;
    artifact::save(
        &q_path,
        &trained.config,
        &outcome.weights,
        &outcome.plan,
        &outcome.provenance(None, trained.source.clone()),
    )?;
    // The saved artifact must predict exactly what the in-memory quantized model does.
    let reloaded = Model::load(&q_path)?;
    let probe = &trained.eval.batches[0];
    let (mut s1, mut s2) = (Scratch::new(), Scratch::new());
    if reloaded.predict(probe, &mut s1)? != outcome.model.predict(probe, &mut s2)? {
        bail!("the saved quantized artifact does not reproduce the in-memory model");
    }
    let mut report = report_json(
        &args,
        &trained,
        &outcome,
        &throughput,
        start.elapsed().as_secs_f64(),
    );
    report["latency_optimal"] = latency_plan;
    report["refresh"] = refreshed.as_ref().map_or(Value::Null, |r| r.0.clone());
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let search = outcome
        .search
        .as_ref()
        .context("the automatic plan records its search")?;
    let (mut points, chosen) = search_report::plotted(search);
    // Label only the landmarks (f32, presets, the chosen plan); the greedy steps stay unlabelled dots.
    for (i, p) in points.iter_mut().enumerate() {
        if Some(i) != chosen && p.name != "f32" && !p.name.starts_with("preset") {
            p.name.clear();
        }
    }
    render_png(
        &args.out.join("frontier.png"),
        &points,
        search.objective,
        search.budget.limit(),
        chosen,
    )?;
    std::fs::write(
        args.out.join("report.md"),
        report_md(
            &report,
            refreshed.as_ref().map_or("", |r| r.1.as_str()),
            &search_report::markdown(search)?,
        ),
    )?;
    println!(
        "models:  {}\n         {}",
        f32_path.display(),
        q_path.display()
    );
    println!(
        "reports: {}\n         {}\n         {}",
        args.out.join("report.md").display(),
        args.out.join("report.json").display(),
        args.out.join("frontier.png").display()
    );
    if !args.skip_kernels {
        println!("\nkernel benchmarks (quick): `quantrec bench kernels --quick`");
    }
    println!("done in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The latency-optimal plan within the budget and its model.
struct LatencyPlan {
    plan: Plan,
    model: Model,
    delta_ne_pct: f64,
    bytes: u64,
    how: &'static str,
    seconds: f64,
}

fn latency_optimal(
    args: &DemoArgs,
    trained: &Trained,
    outcome: &QuantizeOutcome,
) -> Result<LatencyPlan> {
    let t0 = Instant::now();
    if args.quick {
        let search = outcome
            .search
            .as_ref()
            .context("the automatic plan records its search")?;
        let best = search
            .evaluated
            .iter()
            .filter(|e| e.within_budget && e.full_set)
            .min_by(|a, b| a.latency_s.total_cmp(&b.latency_s))
            .context("the search validated no plan within the budget")?;
        let builder = ModelBuilder::new(trained.config.clone(), trained.weights.clone())?;
        return Ok(LatencyPlan {
            model: builder.build(&best.plan)?,
            plan: best.plan.clone(),
            delta_ne_pct: best.comparison.delta_ne_pct,
            bytes: best.bytes,
            how: "least predicted latency among the plans the search validated",
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    let bar = spinner("searching the latency-optimal plan");
    let latency = quantize(&QuantizeRequest {
        config: trained.config.clone(),
        weights: trained.weights.clone(),
        calib: trained.calib.clone(),
        eval: trained.eval.clone(),
        plan: PlanRequest::Auto,
        search: SearchOptions {
            budget: Budget::Ne(args.budget_ne),
            objective: Objective::Latency,
            latency_batch: 1024,
            ..SearchOptions::default()
        },
        calib_method: RangeMethod::L2 { bits: 8 },
    });
    bar.finish_and_clear();
    let latency = latency.context("latency-optimal quantization")?;
    Ok(LatencyPlan {
        plan: latency.plan,
        model: latency.model,
        delta_ne_pct: latency.comparison.delta_ne_pct,
        bytes: latency.bytes_quantized,
        how: "a search minimizing the predicted latency of a 1024-sample batch",
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn step(title: &str) {
    println!("\n== {title} ==");
}

fn spinner(msg: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(msg);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn train_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} samples ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

fn on_progress(bar: &ProgressBar) -> impl FnMut(&Progress) + '_ {
    move |p: &Progress| {
        bar.set_position(p.samples);
        if p.step.is_multiple_of(16) {
            bar.set_message(format!("loss {:.4} NE {:.4}", p.running_loss, p.running_ne));
        }
    }
}

/// Prints one line per kernel family and implementation; fails if any disagrees with its oracle.
pub fn selfcheck() -> Result<()> {
    let results = quantrec_kernels::selfcheck::run_all(0x5eed)?;
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    let mut by_family: Vec<(&str, Vec<String>)> = Vec::new();
    for r in &results {
        match by_family.iter_mut().find(|(f, _)| *f == r.family) {
            Some((_, v)) => v.push(r.implementation.clone()),
            None => by_family.push((r.family, vec![r.implementation.clone()])),
        }
    }
    for (family, impls) in &by_family {
        println!("{family:<16} ok at {}", impls.join(", "));
    }
    for r in &failed {
        println!(
            "{:<16} {:<12} MISMATCH: error {:.3e} > tolerance {:.3e}",
            r.family, r.implementation, r.max_error, r.tolerance
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} kernel self-checks disagree with the scalar oracle",
            failed.len()
        );
    }
    println!("all {} checks agree with the oracle", results.len());
    Ok(())
}

/// The (config, weights) of a trainer, through its state dict and the importer (what a PyTorch
/// user's model goes through too).
fn import_trained(trainer: &Trainer) -> Result<(ModelConfig, Weights)> {
    let bytes = trainer.to_safetensors()?;
    let sd = StateDict::from_bytes("trained model", &bytes)?;
    let imported = import_state_dict(sd, &ImportOverrides::default())?;
    Ok((imported.config, imported.weights))
}

fn collect(mut src: impl source::BatchSource) -> Result<Vec<Batch>> {
    let mut out = Vec::new();
    while let Some(b) = src.next_batch()? {
        out.push(b);
    }
    Ok(out)
}

fn train_synthetic(args: &DemoArgs) -> Result<Trained> {
    let mut recipe = SynthRecipe::default();
    recipe.train_rows = args.train_rows.unwrap_or(if args.quick {
        1_500_000
    } else {
        recipe.train_rows
    });
    recipe.eval_rows = if args.quick { 50_000 } else { 100_000 };
    let tables = &recipe.synth.table_rows;
    println!(
        "synthetic Criteo-like data: 13 dense, {} tables ({}–{} rows, Zipf {}), {} train / {} eval rows",
        tables.len(),
        tables.iter().min().unwrap_or(&0),
        tables.iter().max().unwrap_or(&0),
        recipe.synth.zipf_exponent,
        recipe.train_rows,
        recipe.eval_rows
    );
    let bar = train_bar(recipe.train_rows);
    let out = quantrec_train::recipe::train_synthetic(&recipe, on_progress(&bar))?;
    bar.finish_and_clear();
    let teacher_ne = out.teacher.ne;
    println!(
        "trained in {:.1} s ({:.0} samples/s): holdout NE {:.5}, AUC {:.4}; teacher NE {} (ratio {:.4})",
        out.train_seconds,
        recipe.train_rows as f64 / out.train_seconds.max(1e-9),
        out.holdout.ne,
        out.holdout.auc,
        teacher_ne.map_or("undefined".into(), |v| format!("{v:.5}")),
        out.ne_ratio
    );
    let (config, weights) = import_trained(&out.trainer)?;
    let generator = Generator::new(recipe.synth.clone())?;
    let calib_rows = 8192;
    let calib = EvalSet::from_batches(&collect(generator.stream(
        Split::Calibration,
        calib_rows,
        1024,
    ))?)?;
    let eval = EvalSet::from_batches(&collect(generator.stream(
        Split::Evaluation,
        recipe.eval_rows,
        1024,
    ))?)?;
    Ok(Trained {
        config,
        weights,
        calib,
        eval,
        source: json!({"kind": "synthetic", "seed": recipe.synth.seed, "table_rows": recipe.synth.table_rows,
                       "zipf": recipe.synth.zipf_exponent, "train_rows": recipe.train_rows,
                       "calibration_rows": calib_rows, "eval_rows": recipe.eval_rows}),
        teacher_ne,
        train_seconds: out.train_seconds,
        train_rows: recipe.train_rows,
        synthetic: Some((out.trainer, recipe)),
    })
}

/// A click log: the last 20% of rows are held out for evaluation, calibration takes the first
/// training rows, and the model trains one pass over the rest.
fn train_file(path: &Path) -> Result<Trained> {
    let table_rows = vec![20_000usize; 26];
    let spec = SourceSpec::new(table_rows.clone(), 1024);
    let mut src =
        source::open_source(path, &spec).with_context(|| format!("opening {}", path.display()))?;
    let all = source::read_all(&mut *src).with_context(|| format!("reading {}", path.display()))?;
    if all.labels.is_none() {
        bail!("{} has no labels", path.display());
    }
    let n = all.size;
    if n < 100 {
        bail!(
            "{} has only {n} rows; the demo needs at least 100",
            path.display()
        );
    }
    let hold = n / 5;
    let train = batch_ops::slice(&all, 0, n - hold);
    let holdout = batch_ops::slice(&all, n - hold, n);
    println!(
        "{}: {n} rows ({} train, {hold} held out), tables hashed to {} rows",
        path.display(),
        n - hold,
        table_rows[0]
    );
    let config = suggested_config(all.n_dense, &table_rows, 16);
    // The trainer's defaults with the synthetic recipe's batch size: measured better on the
    // 8k-row Criteo sample (holdout NE 0.884) than the synthetic recipe's larger learning rates.
    let options = TrainOptions {
        batch_size: 256,
        ..TrainOptions::default()
    };
    let mut trainer = Trainer::new(config, options)?;
    let batches: Vec<Batch> = (0..train.size)
        .step_by(options.batch_size)
        .map(|s| batch_ops::slice(&train, s, (s + options.batch_size).min(train.size)))
        .collect();
    let bar = train_bar(train.size as u64);
    let t = Instant::now();
    trainer.fit(&batches, on_progress(&bar))?;
    bar.finish_and_clear();
    let train_seconds = t.elapsed().as_secs_f64();
    let report = trainer.evaluate(std::iter::once(&holdout))?;
    println!(
        "trained in {train_seconds:.1} s: holdout NE {:.5}, AUC {:.4}",
        report.ne, report.auc
    );
    let (config, weights) = import_trained(&trainer)?;
    let chunks = |b: &Batch| -> Vec<Batch> {
        (0..b.size)
            .step_by(1024)
            .map(|s| batch_ops::slice(b, s, (s + 1024).min(b.size)))
            .collect()
    };
    let calib = EvalSet::from_batches(&chunks(&batch_ops::slice(&train, 0, train.size.min(8192))))?;
    let eval = EvalSet::from_batches(&chunks(&holdout))?;
    Ok(Trained {
        config,
        weights,
        calib,
        eval,
        source: json!({"kind": "file", "path": path, "rows": n, "holdout_rows": hold, "table_rows": table_rows[0]}),
        teacher_ne: None,
        train_seconds,
        train_rows: train.size as u64,
        synthetic: None,
    })
}

fn print_plan(config: &ModelConfig, outcome: &QuantizeOutcome) {
    let plan = &outcome.plan;
    let layers = |v: &[quantrec_model::LayerPrecision]| {
        v.iter()
            .map(|p| p.short_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("bottom MLP: {}", layers(&plan.bottom));
    if !plan.cross.is_empty() {
        let cross: Vec<String> = plan
            .cross
            .iter()
            .map(|c| format!("{}/{}", c.v.short_name(), c.w.short_name()))
            .collect();
        println!("cross:      {}", cross.join(", "));
    }
    println!("top MLP:    {}", layers(&plan.top));
    let tables: Vec<String> = plan
        .tables
        .iter()
        .zip(&config.tables)
        .enumerate()
        .map(|(t, (f, tc))| format!("t{t}({}×{})={f}", tc.rows, tc.dim))
        .collect();
    for chunk in tables.chunks(6) {
        println!("tables:     {}", chunk.join("  "));
    }
    if let Some(s) = &outcome.search {
        println!(
            "search: {} plans evaluated ({} model runs, {} cache hits) in {:.1} s; chosen {}",
            s.evaluated.len(),
            s.model_evaluations,
            s.cache_hits,
            s.seconds,
            s.chosen().name
        );
    }
}

/// Samples/s and median latency of `predict` for both models at batch 1, 64, 1024 on 1 and 2 threads.
fn bench_predict(models: &[(&str, &Model)], eval: &EvalSet, quick: bool) -> Result<Vec<Value>> {
    let all = eval.batches.iter().skip(1).try_fold(
        eval.batches[0].clone(),
        |mut acc, b| -> Result<Batch> {
            batch_ops::append(&mut acc, b)?;
            Ok(acc)
        },
    )?;
    let min_time = Duration::from_millis(if quick { 150 } else { 400 });
    let mut rows = Vec::new();
    println!(
        "{:<10} {:>7} {:>7} {:>14} {:>14}",
        "model", "batch", "threads", "samples/s", "p50 latency"
    );
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        for batch in [1usize, 64, 1024] {
            if batch > all.size {
                continue;
            }
            // Eight different slices in rotation, so table rows are not all cache-hot.
            let slices: Vec<Batch> = (0..8)
                .map(|i| {
                    let start = (i * 7919 * batch) % (all.size - batch + 1);
                    batch_ops::slice(&all, start, start + batch)
                })
                .collect();
            for &(name, model) in models {
                let mut scratch = Scratch::new();
                let mut i = 0;
                let mut failure = None;
                let secs = pool.install(|| {
                    time_median(min_time, 10, || {
                        if let Err(e) = model.predict(&slices[i % slices.len()], &mut scratch) {
                            failure.get_or_insert(e);
                        }
                        i += 1;
                    })
                });
                if let Some(e) = failure {
                    return Err(e.into());
                }
                let rate = batch as f64 / secs;
                println!(
                    "{name:<10} {batch:>7} {threads:>7} {rate:>14.0} {:>11.1} µs",
                    secs * 1e6
                );
                rows.push(json!({"model": name, "batch": batch, "threads": threads,
                                 "samples_per_second": rate, "latency_p50_us": secs * 1e6}));
            }
        }
    }
    Ok(rows)
}

fn metric(m: &Metrics) -> Value {
    json!({"count": m.count, "ctr": m.ctr, "log_loss": m.log_loss, "ne": m.ne, "auc": m.auc, "calibration": m.calibration})
}

fn report_json(
    args: &DemoArgs,
    t: &Trained,
    o: &QuantizeOutcome,
    throughput: &[Value],
    seconds: f64,
) -> Value {
    let c = &o.comparison;
    let names = |prefix: &str, v: &[quantrec_model::LayerPrecision]| -> Vec<(String, String)> {
        v.iter()
            .enumerate()
            .map(|(i, p)| (format!("{prefix}.{i}"), p.short_name()))
            .collect()
    };
    let mut plan = serde_json::Map::new();
    for (k, v) in names("bottom", &o.plan.bottom)
        .into_iter()
        .chain(names("top", &o.plan.top))
    {
        plan.insert(k, Value::String(v));
    }
    for (l, cp) in o.plan.cross.iter().enumerate() {
        plan.insert(format!("cross.{l}.v"), Value::String(cp.v.short_name()));
        plan.insert(format!("cross.{l}.w"), Value::String(cp.w.short_name()));
    }
    for (i, f) in o.plan.tables.iter().enumerate() {
        plan.insert(format!("table.{i}"), Value::String(f.name().into()));
    }
    json!({
        "quantrec_version": env!("CARGO_PKG_VERSION"),
        "isa": quantrec_kernels::isa::describe(),
        "quick": args.quick,
        "data": t.source,
        "train_rows": t.train_rows,
        "train_seconds": t.train_seconds,
        "teacher_ne": t.teacher_ne,
        "budget_ne_pct": args.budget_ne,
        "ne_f32": c.ne_reference,
        "ne_quantized": c.ne,
        "delta_ne_pct": c.delta_ne_pct,
        "auc_f32": c.auc_reference,
        "auc_quantized": c.auc,
        "delta_auc": c.delta_auc,
        "calibration_f32": o.reference.calibration,
        "calibration_quantized": c.calibration,
        "metrics_f32": metric(&o.reference),
        "bytes_f32": o.bytes_f32,
        "bytes_quantized": o.bytes_quantized,
        "size_fraction": o.bytes_quantized as f64 / o.bytes_f32 as f64,
        "plan": plan,
        "search": o.search.as_ref().map(|s| json!({
            "plans_evaluated": s.evaluated.len(), "seconds": s.seconds, "chosen": s.chosen().name,
            "objective": format!("{:?}", s.objective), "budget": s.budget.describe(),
        })),
        "throughput": throughput,
        "seconds": seconds,
    })
}

fn report_md(r: &Value, refresh_md: &str, search_md: &str) -> String {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let mut s = String::from("# quantrec demo report\n\n");
    s += &format!("Machine: {}\n\n", r["isa"].as_str().unwrap_or(""));
    s += &format!("Data: `{}`\n\n", r["data"]);
    s += "| model | NE | AUC | calibration | bytes |\n|---|---|---|---|---|\n";
    s += &format!(
        "| f32 | {:.5} | {:.5} | {:.4} | {} |\n",
        f("ne_f32"),
        f("auc_f32"),
        f("calibration_f32"),
        r["bytes_f32"]
    );
    s += &format!(
        "| quantized | {:.5} | {:.5} | {:.4} | {} |\n\n",
        f("ne_quantized"),
        f("auc_quantized"),
        f("calibration_quantized"),
        r["bytes_quantized"]
    );
    s += &format!(
        "ΔNE {:+.4}% against a budget of {}%; ΔAUC {:+.5}; the quantized model is {:.1}% of the f32 bytes.\n\n",
        f("delta_ne_pct"),
        f("budget_ne_pct"),
        f("delta_auc"),
        100.0 * f("size_fraction")
    );
    if let Some(t) = r["teacher_ne"].as_f64() {
        s += &format!(
            "Teacher NE (attainable optimum): {t:.5}; f32 model / teacher = {:.4}.\n\n",
            f("ne_f32") / t
        );
    }
    s += "## Plan\n\n";
    s += "N-bit table rows are rounded for the model's loss on the calibration rows (Gauss-Newton \
          curvature; `quantize --table-rounding`): FBGEMM's layout, which PyTorch reads unchanged, \
          but not the bytes PyTorch's own quantizer writes (`--table-rounding pytorch`).\n\n";
    s += "| unit | precision |\n|---|---|\n";
    if let Some(plan) = r["plan"].as_object() {
        // Natural order: bottom.0, bottom.1, ..., table.2 before table.10.
        let mut units: Vec<_> = plan.iter().collect();
        units.sort_by_key(|(k, _)| {
            let (prefix, index) = k.split_once('.').unwrap_or((k.as_str(), ""));
            let rank = ["bottom", "cross", "top", "table"]
                .iter()
                .position(|p| *p == prefix);
            let number: usize = index
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (rank, number, k.to_string())
        });
        for (k, v) in units {
            s += &format!("| {k} | {} |\n", v.as_str().unwrap_or(""));
        }
    }
    s += "\n## Predict throughput\n\n| model | batch | threads | samples/s | p50 latency (µs) |\n|---|---|---|---|---|\n";
    if let Some(rows) = r["throughput"].as_array() {
        for t in rows {
            s += &format!(
                "| {} | {} | {} | {:.0} | {:.1} |\n",
                t["model"].as_str().unwrap_or(""),
                t["batch"],
                t["threads"],
                t["samples_per_second"].as_f64().unwrap_or(0.0),
                t["latency_p50_us"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(l) = r["latency_optimal"].as_object() {
        s += &format!(
            "\nModels: `quantized` is the size-optimal plan above; the latency-optimal plan within the same \
             budget ({}) is `{}` (ΔNE {:+.4}%, {} bytes){}.\n",
            l["how"].as_str().unwrap_or(""),
            l["plan"].as_str().unwrap_or(""),
            l["delta_ne_pct"].as_f64().unwrap_or(f64::NAN),
            l["bytes"],
            if l["same_as_size_optimal"].as_bool() == Some(true) {
                ", the same plan, so it is not measured twice"
            } else {
                ", measured as `q-latency`"
            }
        );
    }
    s += "\n";
    s += refresh_md;
    s += "![Pareto frontier](frontier.png)\n\n## Precision search\n\n";
    s += search_md;
    s
}
